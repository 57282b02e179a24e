//! [`Trainer`]: its state, construction and resume. The fit loop is in `fit.rs`, one optimizer
//! step in `step.rs`, validation in `validation.rs`, checkpoint writing in `save.rs`.

mod fit;
mod save;
mod step;
mod validation;

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use burn::tensor::backend::AutodiffBackend;

use super::checkpoint::{self, Position, Tracker};
use super::config::TrainerConfig;
use super::metrics::MetricRow;
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
}
