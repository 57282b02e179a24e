//! [`Trainer`]: its state, construction and resume. The fit loop is in `fit.rs`, one optimizer
//! step in `step.rs`, validation in `validation.rs`, checkpoint writing in `save.rs`.

mod fit;
mod save;
mod state;
mod step;
mod validation;

use state::{CheckpointMeta, TrainState};

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use super::checkpoint::{Position, Tracker};
use super::config::TrainerConfig;
use super::metrics::MetricRow;
use super::task::Task;
use crate::Result;
use crate::data::Batches;
use crate::optim::{LrSchedule, LrScheduler, OptimizerConfig};

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
pub struct Trainer<B: crate::TrainBackend, T: Task<B>> {
    pub(crate) config: TrainerConfig,
    task: T,
    /// Everything a checkpoint holds.
    state: TrainState<B, T>,
    device: B::Device,
    hooks: Vec<Box<dyn Hook>>,
    /// Saved into the run directory, for [`load_run`](crate::train::load_run).
    tokenizer: Option<crate::train::RunTokenizer>,
}

/// Which replica this trainer is in data-parallel training: it reads batches
/// `rank, rank + world, rank + 2·world, ...` of each epoch and all-reduces its gradients.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Shard {
    pub rank: usize,
    pub world: usize,
    /// Writes the run directory (rank 0; with several nodes, the first replica of each).
    pub writer: bool,
}

impl<B: crate::TrainBackend, T: Task<B>> Trainer<B, T> {
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
        let reported = task.reported_metrics();
        let metric = config.monitor.metric.as_str();
        if (metric == "ppl" && !reported.perplexity) || (metric == "bpc" && !reported.bits) {
            return Err(crate::Error::Config {
                module: "TrainerConfig",
                message: format!(
                    "monitor.metric is `{metric}`, which this task does not report (its loss is not a \
                     cross-entropy per token); monitor `loss` or `acc`"
                ),
            });
        }
        // Weights still to be drawn are drawn now, from the seed (see `seed.rs`).
        super::seed::seed_initialisation::<B, T::Model>(&model, config.seed, device);
        let optim = optimizer.init::<B, T::Model>(&model)?;
        let scheduler = LrScheduler::try_new(optimizer.lr, schedule)?;
        Ok(Self {
            config,
            task,
            state: TrainState {
                model,
                optim,
                scheduler,
                pos: Position::default(),
                tracker: Tracker::default(),
                carry: None,
            },
            device: device.clone(),
            hooks: Vec::new(),
            tokenizer: None,
        })
    }

    /// The tokenizer of the run's data: written to the run directory's `tokenizer.json` when
    /// training starts, so that [`load_run`](crate::train::load_run) rebuilds it with the model.
    pub fn with_tokenizer(mut self, tokenizer: impl Into<crate::train::RunTokenizer>) -> Self {
        self.tokenizer = Some(tokenizer.into());
        self
    }

    /// Adds a hook.
    pub fn with_hook(mut self, hook: impl Hook + 'static) -> Self {
        self.hooks.push(Box::new(hook));
        self
    }

    /// The model.
    pub fn model(&self) -> &T::Model {
        self.state.model()
    }

    /// The model, consuming the trainer.
    pub fn into_model(self) -> T::Model {
        self.state.model
    }

    /// What every node of a multi-node run must agree on: the model and optimizer
    /// configurations, the seed and step limits, the position (a resumed run), the tokenizer.
    #[allow(dead_code)]
    pub(crate) fn run_description(&self) -> serde_json::Value {
        let pos = &self.state.pos;
        serde_json::json!({
            "model": self.task.config_json(),
            "optimizer": serde_json::to_value(self.state.optim.config()).unwrap_or_default(),
            "seed": self.config.seed,
            "grad_accum": self.config.grad_accum,
            "max_steps": self.config.max_steps,
            "max_epochs": self.config.max_epochs,
            "position": { "step": pos.step, "epoch": pos.epoch, "batch_index": pos.batch_index },
            "tokenizer": self.tokenizer.as_ref().map(crate::train::run::fingerprint),
        })
    }

    /// Replaces the model by `f(model)` (used to synchronise data-parallel replicas).
    #[allow(dead_code)]
    pub(crate) fn map_model(&mut self, f: impl FnOnce(T::Model) -> T::Model) {
        self.state.map_model(f);
    }

    /// The task.
    pub fn task(&self) -> &T {
        &self.task
    }

    /// Optimizer steps completed.
    pub fn step(&self) -> u64 {
        self.state.pos.step
    }

    /// The learning-rate scheduler (its state included).
    pub fn scheduler(&self) -> &LrScheduler {
        &self.state.scheduler
    }

    /// Restores a checkpoint: `path` is a checkpoint directory, or a run directory whose latest
    /// complete checkpoint is taken. Everything is read and checked (sizes, checksums, model
    /// configuration, parameter shapes, optimizer configuration) before anything is replaced, so
    /// an error leaves the trainer as it was.
    pub fn resume(mut self, path: impl AsRef<Path>) -> Result<Self> {
        let (state, seed) = self
            .state
            .load(path.as_ref(), &self.task.config_json(), &self.device)?;
        self.state = state;
        self.config.seed = seed;
        Ok(self)
    }

    /// Trains until `max_steps` / `max_epochs`, early stopping or a hook says stop.
    ///
    /// `valid` is validated every `valid_every` steps (or at each epoch's end), and at the end.
    pub fn fit(
        &mut self,
        train: &dyn Batches<T::Batch>,
        valid: Option<&dyn Batches<T::Batch>>,
    ) -> Result<FitReport> {
        self.fit_shard(
            train,
            valid,
            Shard {
                rank: 0,
                world: 1,
                writer: true,
            },
        )
    }
}
