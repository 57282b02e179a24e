//! [`TrainerConfig`]: the loop's budget, cadence, logging, checkpoints and policies.

use std::path::PathBuf;

use burn::config::Config;
use serde::{Deserialize, Serialize};

use crate::optim::PlateauMode;

/// What to do when the loss or the gradient norm of a step is NaN or infinite. Either way the
/// weights are not touched by that step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NonFinitePolicy {
    /// Stop with [`Error::NonFinite`](crate::Error::NonFinite), naming the step.
    Error,
    /// Skip the optimizer update, count it (`skipped_steps`), reset carried state, go on.
    Skip,
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProgressMode {
    /// A progress bar on a terminal, plain lines otherwise.
    Auto,
    /// Always a progress bar (indicatif).
    Bar,
    /// Plain lines on stderr, one per log interval and validation.
    Lines,
    /// Nothing printed.
    Off,
}

/// The metric that picks the best checkpoint and drives early stopping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Monitor {
    /// A validation metric: `"loss"`, `"ppl"`, `"bpc"` or `"acc"`.
    pub metric: String,
    /// Whether lower or higher is better.
    pub mode: PlateauMode,
}

impl Default for Monitor {
    fn default() -> Self {
        Self {
            metric: "loss".into(),
            mode: PlateauMode::Min,
        }
    }
}

/// Lightning's `EarlyStopping(monitor, patience, min_delta)`: stop after `patience` validations in
/// a row without an improvement of more than `min_delta`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EarlyStopping {
    /// Validations without improvement tolerated.
    pub patience: u64,
    /// The smallest change that counts as an improvement.
    pub min_delta: f64,
}

/// The training loop's settings. Defaults follow PyTorch Lightning's `Trainer` where it has one.
#[derive(Config, Debug)]
pub struct TrainerConfig {
    /// Stop after this many optimizer steps. Default none (then `max_epochs` must be set).
    #[config(default = "None")]
    pub max_steps: Option<u64>,
    /// Stop after this many passes over the training batches. Default none.
    #[config(default = "None")]
    pub max_epochs: Option<u64>,
    /// Micro-batches per optimizer step; their losses are averaged (Lightning's
    /// `accumulate_grad_batches`). A partial group at the end of an epoch is averaged over the
    /// micro-batches it has. Default 1.
    #[config(default = 1)]
    pub grad_accum: usize,
    /// Validate every this many optimizer steps, and always at the end. Default none (only at the
    /// end of each epoch and of training).
    #[config(default = "None")]
    pub valid_every: Option<u64>,
    /// Validation batches per validation (`None`: the whole validation source).
    #[config(default = "None")]
    pub valid_batches: Option<usize>,
    /// Write a training metrics row every this many optimizer steps (Lightning:
    /// `log_every_n_steps = 50`). Default 10.
    #[config(default = 10)]
    pub log_every: u64,
    /// The run directory (metrics.csv, TensorBoard events, plot, checkpoints). Default none: nothing
    /// is written.
    #[config(default = "None")]
    pub run_dir: Option<PathBuf>,
    /// Checkpoint every this many optimizer steps (and at the end, and on a new best). Default
    /// none: only at the end and on a new best.
    #[config(default = "None")]
    pub checkpoint_every: Option<u64>,
    /// Periodic checkpoints to keep (the best is kept besides). Default 3.
    #[config(default = 3)]
    pub keep_last: usize,
    /// The metric for the best checkpoint and early stopping. Default validation loss, lower is
    /// better.
    #[config(default = "Monitor::default()")]
    pub monitor: Monitor,
    /// Early stopping. Default none.
    #[config(default = "None")]
    pub early_stopping: Option<EarlyStopping>,
    /// What a NaN/infinite loss or gradient norm does. Default [`NonFinitePolicy::Error`].
    #[config(default = "NonFinitePolicy::Error")]
    pub non_finite: NonFinitePolicy,
    /// The seed of everything the trainer owns: the initial value of every parameter not yet
    /// initialised when the trainer is built (burn initialises lazily; call
    /// [`seed_everything`](super::seed_everything) before `init` for the others), the data order,
    /// and the backend's random state (dropout), reseeded per micro-batch from
    /// `(seed, micro-batch)`. Default 42.
    #[config(default = 42)]
    pub seed: u64,
    /// Progress display. Default [`ProgressMode::Auto`].
    #[config(default = "ProgressMode::Auto")]
    pub progress: ProgressMode,
    /// Write TensorBoard event files in the run directory. Default true.
    #[config(default = true)]
    pub tensorboard: bool,
    /// Write `loss.svg` (train and validation curves) at each validation and at the end.
    /// Default true.
    #[config(default = true)]
    pub plot: bool,
    /// `loss.svg`'s loss axis on a log scale. Default false (linear).
    #[config(default = false)]
    pub plot_log_scale: bool,
}

impl TrainerConfig {
    pub(crate) fn validate(&self) -> crate::Result<()> {
        let bad = |message: String| {
            Err(crate::Error::Config {
                module: "TrainerConfig",
                message,
            })
        };
        if self.max_steps.is_none() && self.max_epochs.is_none() {
            return bad("set max_steps, max_epochs or both".into());
        }
        if self.grad_accum == 0 {
            return bad("grad_accum must be >= 1".into());
        }
        if self.log_every == 0 || self.valid_every == Some(0) || self.checkpoint_every == Some(0) {
            return bad("log_every, valid_every and checkpoint_every must be >= 1".into());
        }
        if !["loss", "ppl", "bpc", "acc"].contains(&self.monitor.metric.as_str()) {
            return bad(format!(
                "monitor.metric must be one of loss, ppl, bpc, acc; found `{}`",
                self.monitor.metric
            ));
        }
        if let Some(e) = &self.early_stopping
            && !(e.min_delta >= 0.0 && e.min_delta.is_finite())
        {
            return bad(format!(
                "early_stopping.min_delta must be a finite value >= 0, found {}",
                e.min_delta
            ));
        }
        Ok(())
    }
}
