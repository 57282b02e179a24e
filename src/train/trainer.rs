//! [`Trainer`]: the loop.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::{AutodiffModule, Module};
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::ElementConversion;
use burn::tensor::backend::AutodiffBackend;

use super::checkpoint::{self, Manifest, Position, Tracker};
use super::config::{NonFinitePolicy, TrainerConfig};
use super::logging::RunLog;
use super::metrics::{MetricRow, Window};
use super::plot::plot_losses;
use super::task::{BatchStats, Task};
use crate::data::{Batches, SplitMix64};
use crate::io::{atomic_write, record};
use crate::optim::{LrSchedule, LrScheduler, ModelOptimizer, OptimizerConfig, PlateauMode};
use crate::{Error, Result};

/// What one optimizer step did, for [`Hook::on_step`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepInfo {
    /// The step just completed (1-based count of optimizer steps).
    pub step: u64,
    /// Its epoch.
    pub epoch: u64,
    /// The mean loss of its micro-batches.
    pub loss: f64,
    /// The learning rate it used.
    pub lr: f64,
    /// The global gradient norm before clipping.
    pub grad_norm: f64,
    /// Whether the update was skipped (non-finite loss or gradient).
    pub skipped: bool,
}

/// User code run by the trainer (Lightning's callbacks). Every method has an empty default;
/// returning `ControlFlow::Break(())` stops training after the current step, cleanly (validation,
/// final checkpoint and plot still happen).
pub trait Hook {
    /// After every optimizer step.
    fn on_step(&mut self, _info: &StepInfo) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
    /// After each training metrics row (every `log_every` steps).
    fn on_log(&mut self, _row: &MetricRow) {}
    /// After each validation.
    fn on_validation(&mut self, _row: &MetricRow) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
    /// After a checkpoint is complete on disk.
    fn on_checkpoint(&mut self, _dir: &Path, _step: u64) {}
}

/// What [`Trainer::fit`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct FitReport {
    /// Optimizer steps completed in total (including those of a resumed run).
    pub steps: u64,
    /// The epoch the run ended in.
    pub epoch: u64,
    /// Steps whose update was skipped for a non-finite loss or gradient.
    pub skipped_steps: u64,
    /// The last training metrics row.
    pub last_train: Option<MetricRow>,
    /// The last validation row.
    pub last_valid: Option<MetricRow>,
    /// The best monitored value and its step.
    pub best: Option<(u64, f64)>,
    /// Whether early stopping (or a hook) ended the run.
    pub stopped_early: bool,
    /// The last checkpoint written.
    pub checkpoint: Option<PathBuf>,
}

/// The training loop: accumulation, clipping, schedule, validation, logs, checkpoints, resume.
///
/// Generic over any autodiff backend and any [`Task`]. See `docs/training.md` for how each
/// PyTorch Lightning habit maps onto it.
pub struct Trainer<B: AutodiffBackend, T: Task<B>> {
    pub(crate) config: TrainerConfig,
    task: T,
    /// `None` only inside an optimizer step, which takes the model by value.
    model: Option<T::Model>,
    optim: ModelOptimizer<B, T::Model>,
    scheduler: LrScheduler,
    device: B::Device,
    pos: Position,
    tracker: Tracker,
    carry: Option<T::Carry>,
    hooks: Vec<Box<dyn Hook>>,
    /// This replica's share of each epoch in data-parallel training (rank 0 of 1 otherwise).
    pub(crate) shard: Shard,
}

/// Which replica this trainer is in data-parallel training: it reads batches
/// `rank, rank + world, rank + 2·world, ...` of each epoch and all-reduces its gradients.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Shard {
    pub rank: usize,
    pub world: usize,
}

impl<B: AutodiffBackend, T: Task<B>> Trainer<B, T> {
    /// A trainer at step 0 for `model`, with the optimizer `optimizer` and the learning-rate
    /// `schedule` (whose base rate is `optimizer.lr`).
    pub fn new(
        config: TrainerConfig,
        task: T,
        model: T::Model,
        optimizer: &OptimizerConfig,
        schedule: LrSchedule,
        device: &B::Device,
    ) -> Result<Self> {
        config.validate()?;
        // Weights still to be drawn are drawn now, from the seed (see `seed.rs`).
        super::seed::seed_initialisation::<B, T::Model>(&model, config.seed, device);
        let optim = optimizer.init::<B, T::Model>(&model)?;
        let scheduler = LrScheduler::try_new(optimizer.lr, schedule)?;
        Ok(Self {
            config,
            task,
            model: Some(model),
            optim,
            scheduler,
            device: device.clone(),
            pos: Position::default(),
            tracker: Tracker::default(),
            carry: None,
            hooks: Vec::new(),
            shard: Shard { rank: 0, world: 1 },
        })
    }

    /// Adds a hook.
    pub fn with_hook(mut self, hook: impl Hook + 'static) -> Self {
        self.hooks.push(Box::new(hook));
        self
    }

    /// The model.
    pub fn model(&self) -> &T::Model {
        self.model
            .as_ref()
            .expect("the model is only absent inside an optimizer step")
    }

    /// The model, consuming the trainer.
    pub fn into_model(self) -> T::Model {
        self.model
            .expect("the model is only absent inside an optimizer step")
    }

    /// Replaces the model by `f(model)` (used to synchronise data-parallel replicas).
    #[allow(dead_code)]
    pub(crate) fn map_model(&mut self, f: impl FnOnce(T::Model) -> T::Model) {
        let model = self.model.take().expect("model present between steps");
        self.model = Some(f(model));
    }

    /// The task.
    pub fn task(&self) -> &T {
        &self.task
    }

    /// Optimizer steps completed.
    pub fn step(&self) -> u64 {
        self.pos.step
    }

    /// The learning-rate scheduler (its state included).
    pub fn scheduler(&self) -> &LrScheduler {
        &self.scheduler
    }

    /// Restores a checkpoint: `path` is a checkpoint directory, or a run directory whose latest
    /// complete checkpoint is taken. Everything is read and checked (sizes, checksums, model
    /// configuration, parameter shapes, optimizer configuration) before anything is replaced, so
    /// an error leaves the trainer as it was.
    pub fn resume(mut self, path: impl AsRef<Path>) -> Result<Self> {
        let dir = checkpoint::resolve(path.as_ref())?;
        let (manifest, blobs) = checkpoint::read(&dir)?;
        let bad = |message: String| Error::Checkpoint {
            path: dir.clone(),
            message,
        };
        let model_config = self.task.config_json();
        if manifest.model_config != model_config {
            return Err(bad(format!(
                "saved for model configuration {}, this model's is {}",
                manifest.model_config, model_config
            )));
        }
        if serde_json::to_value(&manifest.optimizer).ok() != serde_json::to_value(self.optim.config()).ok() {
            return Err(bad(format!(
                "saved with optimizer {:?}, this trainer uses {:?}",
                manifest.optimizer,
                self.optim.config()
            )));
        }
        let model = checkpoint::restore_model(&dir, &manifest, &blobs, self.model().clone(), &self.device)?;
        let blob = |name: &str| blobs.iter().find(|(n, _)| n == name).map(|(_, b)| b.clone());
        let groups: Vec<Vec<u8>> = (0..).map_while(|i| blob(&format!("optimizer-{i}.bin"))).collect();
        let fresh = self.optimizer_config().init::<B, T::Model>(&model)?;
        let optim = fresh
            .load_state_bytes(groups, &self.device)
            .map_err(|e| bad(format!("optimizer state: {e}")))?;
        let carry = match blob("carry.bin") {
            Some(bytes) => Some(
                record::decode::<B, T::Carry>(&bytes, &self.device)
                    .map_err(|e| bad(format!("carry.bin {e}")))?,
            ),
            None => None,
        };
        // Everything decoded: commit.
        self.model = Some(model);
        self.optim = optim;
        self.scheduler = manifest.scheduler;
        self.pos = manifest.position;
        self.tracker = manifest.tracker;
        self.carry = carry;
        self.config.seed = manifest.seed;
        Ok(self)
    }

    fn optimizer_config(&self) -> OptimizerConfig {
        self.optim.config().clone()
    }

    /// Trains until `max_steps` / `max_epochs`, early stopping or a hook says stop.
    ///
    /// `valid` is validated every `valid_every` steps (or at each epoch's end), and at the end.
    pub fn fit(
        &mut self,
        train: &dyn Batches<T::Batch>,
        valid: Option<&dyn Batches<T::Batch>>,
    ) -> Result<FitReport> {
        self.config.validate()?;
        if train.num_batches() == 0 {
            return Err(Error::Data("the training data has no batches".into()));
        }
        // Each replica takes every `world`-th batch; a tail shorter than `world` is left out of
        // the epoch so that all replicas take the same number of steps.
        let n = train.num_batches() / self.shard.world;
        if n == 0 {
            return Err(Error::Data(format!(
                "{} training batches cannot feed {} data-parallel replicas",
                train.num_batches(),
                self.shard.world
            )));
        }
        if valid.is_some_and(|v| v.num_batches() == 0) {
            return Err(Error::Data("the validation data has no batches".into()));
        }
        let run_dir = self.config.run_dir.clone();
        if let Some(dir) = &run_dir {
            prepare_run_dir(dir, &self.config, self.optim.config(), &self.task.config_json())?;
        }
        let k = self.config.grad_accum;
        let steps_per_epoch = n.div_ceil(k) as u64;
        let total = match (self.config.max_steps, self.config.max_epochs) {
            (Some(s), Some(e)) => Some(s.min(e * steps_per_epoch)),
            (Some(s), None) => Some(s),
            (None, Some(e)) => Some(e * steps_per_epoch),
            (None, None) => None,
        };
        let mut log = RunLog::open(
            run_dir.as_deref(),
            self.config.tensorboard,
            self.config.progress,
            total,
            self.pos.step,
        )?;
        log.set_position(self.pos.step);
        let started = Instant::now();
        // A window's time is the time spent in its training steps only, so that validation and
        // checkpoints between two log lines do not count against (or reset) its throughput.
        let mut window = Window::default();
        let mut report = FitReport {
            steps: self.pos.step,
            epoch: self.pos.epoch,
            skipped_steps: self.tracker.skipped_steps,
            last_train: None,
            last_valid: None,
            best: None,
            stopped_early: false,
            checkpoint: None,
        };
        let mut last_valid_step = None;
        let mut last_ckpt_step = None;
        let mut last_lr = self.scheduler.current();
        loop {
            if self.config.max_steps.is_some_and(|m| self.pos.step >= m)
                || self.config.max_epochs.is_some_and(|m| self.pos.epoch >= m)
            {
                break;
            }
            let step_start = Instant::now();
            let info = self.train_step(train, n, &mut window)?;
            window.time += step_start.elapsed();
            last_lr = info.lr;
            log.set_position(self.pos.step);
            let epoch_ended = self.pos.batch_index == 0;
            let mut stop = false;
            for h in &mut self.hooks {
                stop |= h.on_step(&info).is_break();
            }

            if self.pos.step.is_multiple_of(self.config.log_every) && !window.is_empty() {
                let row = self.finish_row(
                    window.row("train", self.pos.step, info.epoch, Some(info.lr)),
                    started,
                );
                log.row(&row)?;
                for h in &mut self.hooks {
                    h.on_log(&row);
                }
                report.last_train = Some(row);
                window = Window::default();
            }

            let due = match self.config.valid_every {
                Some(every) => self.pos.step.is_multiple_of(every),
                None => epoch_ended,
            };
            let mut new_best = false;
            if let (Some(v), true) = (valid, due) {
                let (row, improved, early) = self.validate_and_track(v, started)?;
                log.row(&row)?;
                for h in &mut self.hooks {
                    stop |= h.on_validation(&row).is_break();
                }
                if early {
                    log.message(&format!("early stopping at step {}", self.pos.step));
                    report.stopped_early = true;
                    stop = true;
                }
                new_best = improved;
                report.last_valid = Some(row);
                last_valid_step = Some(self.pos.step);
            }

            let periodic = self
                .config
                .checkpoint_every
                .is_some_and(|c| self.pos.step.is_multiple_of(c));
            if let Some(dir) = &run_dir
                && (periodic || new_best)
            {
                let path = self.save_checkpoint(dir, report.last_valid.as_ref(), last_valid_step)?;
                for h in &mut self.hooks {
                    h.on_checkpoint(&path, self.pos.step);
                }
                report.checkpoint = Some(path);
                last_ckpt_step = Some(self.pos.step);
            }
            if stop {
                report.stopped_early = true;
                break;
            }
        }

        if !window.is_empty() {
            let row = self.finish_row(
                window.row("train", self.pos.step, self.pos.epoch, Some(last_lr)),
                started,
            );
            log.row(&row)?;
            report.last_train = Some(row);
        }
        if let Some(v) = valid
            && last_valid_step != Some(self.pos.step)
        {
            let (row, _, _) = self.validate_and_track(v, started)?;
            log.row(&row)?;
            for h in &mut self.hooks {
                let _ = h.on_validation(&row);
            }
            report.last_valid = Some(row);
            last_valid_step = Some(self.pos.step);
        }
        if let Some(dir) = &run_dir {
            if last_ckpt_step != Some(self.pos.step) || last_valid_step == Some(self.pos.step) {
                let path = self.save_checkpoint(dir, report.last_valid.as_ref(), last_valid_step)?;
                for h in &mut self.hooks {
                    h.on_checkpoint(&path, self.pos.step);
                }
                report.checkpoint = Some(path);
            }
            log.finish()?;
            if self.config.plot
                && let Some(csv) = log.csv_path()
            {
                plot_losses(csv, &dir.join("loss.svg"))?;
            }
        } else {
            log.finish()?;
        }
        report.steps = self.pos.step;
        report.epoch = self.pos.epoch;
        report.skipped_steps = self.tracker.skipped_steps;
        report.best = self.tracker.best_step.zip(self.tracker.best);
        Ok(report)
    }

    /// One optimizer step: up to `grad_accum` micro-batches, clipping, the non-finite policy, the
    /// update, the schedule.
    fn train_step(
        &mut self,
        train: &dyn Batches<T::Batch>,
        n: usize,
        window: &mut Window,
    ) -> Result<StepInfo> {
        if self.pos.batch_index == 0 {
            self.carry = None;
        }
        let epoch = self.pos.epoch;
        let group = self.config.grad_accum.min(n - self.pos.batch_index);
        let mut accumulator = GradientsAccumulator::<T::Model>::new();
        let mut stats = Vec::with_capacity(group);
        let mut non_finite_loss = None;
        let model = self.model.as_ref().expect("model present between steps");
        for _ in 0..group {
            // Dropout and any other backend randomness: a pure function of (seed, micro-batch).
            B::seed(
                &self.device,
                SplitMix64::derive(self.config.seed, &[0xD0, self.pos.micro_step]).next_u64(),
            );
            let index = self.pos.batch_index * self.shard.world + self.shard.rank;
            let batch = train.get(epoch, index, self.config.seed)?;
            let out = self.task.train_step(model, &batch, self.carry.take())?;
            let loss: f64 = out.loss.clone().into_scalar().elem();
            if !loss.is_finite() && non_finite_loss.is_none() {
                non_finite_loss = Some(loss);
            }
            stats.push(BatchStats {
                loss,
                items: out.items,
                correct: out.correct,
            });
            // Averaged over the micro-batches of this step, partial groups included.
            let grads = out.loss.div_scalar(group as f64).backward();
            accumulator.accumulate::<B>(model, GradientsParams::from_grads(grads, model));
            self.carry = out.carry.map(|c| self.task.detach_carry(c));
            self.pos.batch_index += 1;
            self.pos.micro_step += 1;
        }
        let mut grads = accumulator.grads();
        let mut mean_loss = stats.iter().map(|s| s.loss).sum::<f64>() / group as f64;
        if self.shard.world > 1 {
            // Every replica leaves with the mean gradient and the mean loss, so all of them take
            // the same decisions (clipping, the non-finite policy) and the same update.
            (grads, mean_loss) = super::parallel::all_reduce::<B, T::Model>(
                &self.device,
                self.shard.rank,
                model,
                grads,
                mean_loss,
            )?;
            if !mean_loss.is_finite() && non_finite_loss.is_none() {
                non_finite_loss = Some(mean_loss);
            }
        }
        let grad_norm = self.optim.clip(model, &mut grads);
        let lr = self.scheduler.step();
        let step = self.pos.step;
        let problem = match non_finite_loss {
            Some(v) => Some(("loss", v)),
            None if !grad_norm.is_finite() => Some(("gradient norm", grad_norm)),
            None => None,
        };
        let skipped = problem.is_some();
        match problem {
            Some((what, value)) => match self.config.non_finite {
                NonFinitePolicy::Error => {
                    return Err(Error::NonFinite { what, value, step });
                }
                NonFinitePolicy::Skip => {
                    self.tracker.skipped_steps += 1;
                    // The carried state came from the bad batch.
                    self.carry = None;
                }
            },
            None => {
                let model = self.model.take().expect("model present between steps");
                self.model = Some(self.optim.step(lr, model, grads));
                for s in stats {
                    window.add(s);
                }
                window.add_step(grad_norm);
            }
        }
        self.pos.step += 1;
        if self.pos.batch_index >= n {
            self.pos.epoch += 1;
            self.pos.batch_index = 0;
        }
        Ok(StepInfo {
            step: self.pos.step,
            epoch,
            loss: mean_loss,
            lr,
            grad_norm,
            skipped,
        })
    }

    fn finish_row(&self, mut row: MetricRow, started: Instant) -> MetricRow {
        row.skipped_steps = self.tracker.skipped_steps;
        row.elapsed = started.elapsed().as_secs_f64();
        row
    }

    /// Validates on the inner backend, reports the metric to a plateau schedule, updates the best
    /// value and the early-stopping count. Returns `(row, improved, stop)`.
    fn validate_and_track(
        &mut self,
        valid: &dyn Batches<T::Batch>,
        started: Instant,
    ) -> Result<(MetricRow, bool, bool)> {
        let t0 = Instant::now();
        let inner = self.model().valid();
        let count = self
            .config
            .valid_batches
            .map_or(valid.num_batches(), |c| c.min(valid.num_batches()));
        let mut window = Window::default();
        let mut carry = None;
        for i in 0..count {
            let batch = valid.get(0, i, self.config.seed)?;
            let (stats, next) = self.task.valid_step(&inner, &batch, carry.take())?;
            carry = next;
            window.add(stats);
        }
        window.time = t0.elapsed();
        let row = self.finish_row(window.row("valid", self.pos.step, self.pos.epoch, None), started);
        let metric = row.get(&self.config.monitor.metric).ok_or_else(|| {
            Error::Data(format!(
                "the monitored metric `{}` is not reported by this task",
                self.config.monitor.metric
            ))
        })?;
        self.scheduler.report(metric);
        let mode = self.config.monitor.mode;
        let min_delta = self.config.early_stopping.map_or(0.0, |e| e.min_delta);
        let improved = metric.is_finite()
            && match self.tracker.best {
                None => true,
                Some(best) => match mode {
                    PlateauMode::Min => metric < best - min_delta,
                    PlateauMode::Max => metric > best + min_delta,
                },
            };
        if improved {
            self.tracker.best = Some(metric);
            self.tracker.best_step = Some(self.pos.step);
            self.tracker.bad_validations = 0;
        } else {
            self.tracker.bad_validations += 1;
        }
        let stop = self
            .config
            .early_stopping
            .is_some_and(|e| self.tracker.bad_validations >= e.patience.max(1));
        Ok((row, improved, stop))
    }

    fn save_checkpoint(
        &mut self,
        run_dir: &Path,
        last_valid: Option<&MetricRow>,
        last_valid_step: Option<u64>,
    ) -> Result<PathBuf> {
        let save_err = |message: String| Error::Save {
            path: run_dir.to_path_buf(),
            message,
        };
        let mut blobs = vec![(
            "model.bin".to_string(),
            record::encode::<B, _>(self.model().clone().into_record()).map_err(save_err)?,
        )];
        for (i, bytes) in self.optim.state_bytes()?.into_iter().enumerate() {
            blobs.push((format!("optimizer-{i}.bin"), bytes));
        }
        if let Some(carry) = &self.carry {
            blobs.push((
                "carry.bin".to_string(),
                record::encode::<B, _>(carry.clone()).map_err(save_err)?,
            ));
        }
        let metric = (last_valid_step == Some(self.pos.step))
            .then(|| last_valid.and_then(|r| r.get(&self.config.monitor.metric)))
            .flatten();
        let manifest = Manifest {
            format: checkpoint::FORMAT,
            position: self.pos,
            seed: self.config.seed,
            scheduler: self.scheduler.clone(),
            optimizer: self.optim.config().clone(),
            model_config: self.task.config_json(),
            params: checkpoint::param_shapes::<B, _>(self.model()),
            tracker: self.tracker.clone(),
            metric,
            files: Vec::new(),
        };
        let dir = checkpoint::write(run_dir, manifest, blobs)?;
        checkpoint::prune(run_dir, self.config.keep_last, self.tracker.best_step);
        Ok(dir)
    }
}

/// Creates the run directory, checks that it is writable, and records the configuration.
fn prepare_run_dir(
    dir: &Path,
    config: &TrainerConfig,
    optim: &OptimizerConfig,
    model: &serde_json::Value,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::Save {
        path: dir.to_path_buf(),
        message: format!("cannot create the run directory: {e}"),
    })?;
    // A process killed mid-write left its temporary files behind (the files they would have
    // replaced are intact): remove them, in the run directory and in every checkpoint.
    crate::io::remove_stale_temporaries(dir);
    for (_, step_dir) in checkpoint::list_all_dirs(dir) {
        crate::io::remove_stale_temporaries(&step_dir);
    }
    let json = serde_json::json!({
        "trainer": config,
        "optimizer": optim,
        "model": model,
    });
    let bytes = serde_json::to_vec_pretty(&json).map_err(|e| Error::Save {
        path: dir.join("config.json"),
        message: e.to_string(),
    })?;
    atomic_write(&dir.join("config.json"), &bytes)
}
