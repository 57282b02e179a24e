//! The fit loop: step, log, validate, checkpoint, until a limit, early stopping or a hook stops
//! it; then the last log row, a final validation and checkpoint, and the plot.

use std::path::PathBuf;
use std::time::Instant;

use super::save::prepare_run_dir;
use super::{FitReport, Shard, StepInfo, Trainer};
use crate::data::Batches;
use crate::train::config::ProgressMode;
use crate::train::logging::RunLog;
use crate::train::metrics::Window;
use crate::train::plot::plot_losses_with;
use crate::train::task::Task;
use crate::{Error, Result};

/// What one call of `fit` keeps between steps.
struct Run {
    /// Batches per epoch for this replica.
    batches: usize,
    /// The run directory, on the replica that writes it.
    dir: Option<PathBuf>,
    log: RunLog,
    started: Instant,
    /// The training steps since the last log row (their time only, so that validation and
    /// checkpoints between two rows do not count against its throughput).
    window: Window,
    report: FitReport,
    last_valid_step: Option<u64>,
    last_ckpt_step: Option<u64>,
    last_lr: f64,
}

impl<B: crate::TrainBackend, T: Task<B>> Trainer<B, T> {
    /// [`fit`](Self::fit) as replica `shard.rank` of `shard.world` in data-parallel training:
    /// it reads every `world`-th batch and all-reduces its gradients; only rank 0 writes the run
    /// directory and shows progress.
    pub(crate) fn fit_shard(
        &mut self,
        train: &dyn Batches<T::Batch>,
        valid: Option<&dyn Batches<T::Batch>>,
        shard: Shard,
    ) -> Result<FitReport> {
        let mut run = self.start_run(train, valid, shard)?;
        while !self.at_limit() {
            let step_start = Instant::now();
            let info = self.train_step(train, run.batches, shard, &mut run.window)?;
            run.window.time += step_start.elapsed();
            let epoch_ended = self.state.pos.batch_index == 0;
            let mut stop = self.after_step(&mut run, &info)?;
            let due = match self.config.valid_every {
                Some(every) => self.state.pos.step.is_multiple_of(every),
                None => epoch_ended,
            };
            let mut new_best = false;
            if let (Some(v), true) = (valid, due) {
                let (improved, early, hook_stop) = self.validate_in_run(&mut run, v)?;
                if early {
                    run.log
                        .message(&format!("early stopping at step {}", self.state.pos.step));
                    run.report.stopped_early = true;
                }
                new_best = improved;
                stop |= early || hook_stop;
            }
            let periodic = self
                .config
                .checkpoint_every
                .is_some_and(|c| self.state.pos.step.is_multiple_of(c));
            if periodic || new_best {
                self.checkpoint_in_run(&mut run)?;
            }
            if stop {
                run.report.stopped_early = true;
                break;
            }
        }
        self.finish_run(run, valid)
    }

    /// Checks the data against the shard, prepares the run directory and opens the logs.
    fn start_run(
        &mut self,
        train: &dyn Batches<T::Batch>,
        valid: Option<&dyn Batches<T::Batch>>,
        shard: Shard,
    ) -> Result<Run> {
        self.config.validate()?;
        if train.num_batches() == 0 {
            return Err(Error::Data("the training data has no batches".into()));
        }
        // Each replica takes every `world`-th batch; a tail shorter than `world` is left out of
        // the epoch so that all replicas take the same number of steps.
        let batches = train.num_batches() / shard.world;
        if batches == 0 {
            return Err(Error::Data(format!(
                "{} training batches cannot feed {} data-parallel replicas",
                train.num_batches(),
                shard.world
            )));
        }
        if valid.is_some_and(|v| v.num_batches() == 0) {
            return Err(Error::Data("the validation data has no batches".into()));
        }
        let dir = self.config.run_dir.clone().filter(|_| shard.writer);
        if let Some(dir) = &dir {
            prepare_run_dir(
                dir,
                &self.config,
                self.state.optim.config(),
                &self.task.config_json(),
                self.tokenizer.as_ref(),
            )?;
        }
        let steps_per_epoch = batches.div_ceil(self.config.grad_accum) as u64;
        let total = match (self.config.max_steps, self.config.max_epochs) {
            (Some(s), Some(e)) => Some(s.min(e * steps_per_epoch)),
            (Some(s), None) => Some(s),
            (None, Some(e)) => Some(e * steps_per_epoch),
            (None, None) => None,
        };
        let progress = if shard.rank == 0 {
            self.config.progress
        } else {
            ProgressMode::Off
        };
        let log = RunLog::open(
            dir.as_deref(),
            self.config.tensorboard,
            progress,
            total,
            self.state.pos.step,
        )?;
        log.set_position(self.state.pos.step);
        Ok(Run {
            batches,
            dir,
            log,
            started: Instant::now(),
            window: Window::default(),
            report: FitReport {
                steps: self.state.pos.step,
                epoch: self.state.pos.epoch,
                skipped_steps: self.state.tracker.skipped_steps,
                last_train: None,
                last_valid: None,
                best: None,
                stopped_early: false,
                checkpoint: None,
            },
            last_valid_step: None,
            last_ckpt_step: None,
            last_lr: self.state.scheduler.current(),
        })
    }

    fn at_limit(&self) -> bool {
        self.config.max_steps.is_some_and(|m| self.state.pos.step >= m)
            || self.config.max_epochs.is_some_and(|m| self.state.pos.epoch >= m)
    }

    /// The hooks' `on_step`, and a training row every `log_every` steps. Whether a hook asked
    /// to stop.
    fn after_step(&mut self, run: &mut Run, info: &StepInfo) -> Result<bool> {
        run.last_lr = info.lr;
        run.log.set_position(self.state.pos.step);
        let mut stop = false;
        for h in &mut self.hooks {
            stop |= h.on_step(info).is_break();
        }
        if self.state.pos.step.is_multiple_of(self.config.log_every) && !run.window.is_empty() {
            let window = std::mem::take(&mut run.window);
            let row = self.finish_row(
                window.row(
                    self.task.reported_metrics(),
                    "train",
                    self.state.pos.step,
                    info.epoch,
                    Some(info.lr),
                ),
                run.started,
            );
            run.log.row(&row)?;
            for h in &mut self.hooks {
                h.on_log(&row);
            }
            run.report.last_train = Some(row);
        }
        Ok(stop)
    }

    /// Validates, logs the row and tells the hooks. `(improved, early, hook_stop)`: a new best,
    /// early stopping's verdict, and whether a hook asked to stop.
    fn validate_in_run(
        &mut self,
        run: &mut Run,
        valid: &dyn Batches<T::Batch>,
    ) -> Result<(bool, bool, bool)> {
        let (row, improved, early) = self.validate_and_track(valid, run.started)?;
        run.log.row(&row)?;
        // The curves so far, redrawn at each validation (the CSV is written row by row).
        if let Some(dir) = &run.dir
            && self.config.plot
            && let Some(csv) = run.log.csv_path()
        {
            plot_losses_with(csv, &dir.join("loss.svg"), self.config.plot_log_scale)?;
        }
        let mut hook_stop = false;
        for h in &mut self.hooks {
            hook_stop |= h.on_validation(&row).is_break();
        }
        run.report.last_valid = Some(row);
        run.last_valid_step = Some(self.state.pos.step);
        Ok((improved, early, hook_stop))
    }

    /// Writes a checkpoint (on the replica that writes the run directory) and tells the hooks.
    fn checkpoint_in_run(&mut self, run: &mut Run) -> Result<()> {
        let Some(dir) = run.dir.clone() else {
            return Ok(());
        };
        let path = self.save_checkpoint(&dir, run.report.last_valid.as_ref(), run.last_valid_step)?;
        for h in &mut self.hooks {
            h.on_checkpoint(&path, self.state.pos.step);
        }
        run.report.checkpoint = Some(path);
        run.last_ckpt_step = Some(self.state.pos.step);
        Ok(())
    }

    /// The last training row, a validation of the final model if the last step had none, the
    /// final checkpoint, the plot, and the report.
    fn finish_run(&mut self, mut run: Run, valid: Option<&dyn Batches<T::Batch>>) -> Result<FitReport> {
        if !run.window.is_empty() {
            let row = self.finish_row(
                run.window.row(
                    self.task.reported_metrics(),
                    "train",
                    self.state.pos.step,
                    self.state.pos.epoch,
                    Some(run.last_lr),
                ),
                run.started,
            );
            run.log.row(&row)?;
            run.report.last_train = Some(row);
        }
        if let Some(v) = valid
            && run.last_valid_step != Some(self.state.pos.step)
        {
            // At the end neither early stopping nor a hook has anything left to stop.
            self.validate_in_run(&mut run, v)?;
        }
        if run.last_ckpt_step != Some(self.state.pos.step) || run.last_valid_step == Some(self.state.pos.step)
        {
            self.checkpoint_in_run(&mut run)?;
        }
        run.log.finish()?;
        if let Some(dir) = &run.dir
            && self.config.plot
            && let Some(csv) = run.log.csv_path()
        {
            plot_losses_with(csv, &dir.join("loss.svg"), self.config.plot_log_scale)?;
        }
        let mut report = run.report;
        report.steps = self.state.pos.step;
        report.epoch = self.state.pos.epoch;
        report.skipped_steps = self.state.tracker.skipped_steps;
        report.best = self.state.tracker.best_step.zip(self.state.tracker.best);
        Ok(report)
    }
}
