//! [`Trainer`]: the loop. One optimizer step is in `step.rs`, validation in `validation.rs`,
//! checkpoint writing in `save.rs`.

mod save;
mod step;
mod validation;

use save::prepare_run_dir;

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;

use super::checkpoint::{self, Position, Tracker};
use super::config::{ProgressMode, TrainerConfig};
use super::logging::RunLog;
use super::metrics::{MetricRow, Window};
use super::plot::plot_losses;
use super::task::Task;
use crate::data::Batches;
use crate::io::record;
use crate::optim::{LrSchedule, LrScheduler, ModelOptimizer, OptimizerConfig};
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
        let (manifest, contents) = checkpoint::read(&dir)?;
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
        let model = checkpoint::restore_model(
            &dir,
            &manifest,
            &contents.model,
            self.model().clone(),
            &self.device,
        )?;
        let fresh = self.optimizer_config().init::<B, T::Model>(&model)?;
        let optim = fresh
            .load_state_bytes(contents.optimizer, &self.device)
            .map_err(|e| bad(format!("optimizer state: {e}")))?;
        let carry = match contents.carry {
            Some(bytes) => Some(
                record::decode::<B, T::Carry>(&bytes, &self.device)
                    .map_err(|e| bad(format!("carry state {e}")))?,
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
        self.fit_shard(train, valid, Shard { rank: 0, world: 1 })
    }

    /// [`fit`](Self::fit) as replica `shard.rank` of `shard.world` in data-parallel training:
    /// it reads every `world`-th batch and all-reduces its gradients; only rank 0 writes the run
    /// directory and shows progress.
    pub(crate) fn fit_shard(
        &mut self,
        train: &dyn Batches<T::Batch>,
        valid: Option<&dyn Batches<T::Batch>>,
        shard: Shard,
    ) -> Result<FitReport> {
        self.config.validate()?;
        if train.num_batches() == 0 {
            return Err(Error::Data("the training data has no batches".into()));
        }
        // Each replica takes every `world`-th batch; a tail shorter than `world` is left out of
        // the epoch so that all replicas take the same number of steps.
        let n = train.num_batches() / shard.world;
        if n == 0 {
            return Err(Error::Data(format!(
                "{} training batches cannot feed {} data-parallel replicas",
                train.num_batches(),
                shard.world
            )));
        }
        if valid.is_some_and(|v| v.num_batches() == 0) {
            return Err(Error::Data("the validation data has no batches".into()));
        }
        let writer = shard.rank == 0;
        let run_dir = self.config.run_dir.clone().filter(|_| writer);
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
            if writer {
                self.config.progress
            } else {
                ProgressMode::Off
            },
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
            let info = self.train_step(train, n, shard, &mut window)?;
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
}
