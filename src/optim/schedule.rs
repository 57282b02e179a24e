//! Learning-rate schedules, stepped once per optimizer step.

use serde::{Deserialize, Serialize};

/// Whether a lower or a higher monitored metric is better (`ReduceLROnPlateau`'s `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlateauMode {
    /// Lower is better (a loss).
    Min,
    /// Higher is better (an accuracy).
    Max,
}

/// How `threshold` is read by [`LrSchedule::Plateau`] (`ReduceLROnPlateau`'s `threshold_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ThresholdMode {
    /// Better means beyond `best · (1 ∓ threshold)`.
    Rel,
    /// Better means beyond `best ∓ threshold`.
    Abs,
}

/// The learning rate as a function of the optimizer step (and, for `Plateau`, of a metric).
///
/// Step `s` counts optimizer steps from 0; the learning rate for step `s` is what PyTorch's
/// optimizer holds after `s` calls to `scheduler.step()`. With gradient accumulation the schedule
/// advances once per optimizer step, not per micro-batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LrSchedule {
    /// The base learning rate throughout.
    Constant,
    /// Linear warmup then a linear ramp of the factor from 1 to `end_factor` at `total_steps`,
    /// constant after. With `warmup_steps = 0` this is `LinearLR(start_factor=1, end_factor,
    /// total_iters=total_steps)`; with `end_factor = 0` it is Hugging Face's
    /// `get_linear_schedule_with_warmup` (warmup factor `s / warmup_steps`).
    Linear {
        /// Steps of warmup from 0.
        warmup_steps: u64,
        /// The step at which the factor reaches `end_factor`.
        total_steps: u64,
        /// The final factor.
        end_factor: f64,
    },
    /// nanoGPT's `get_lr`: linear warmup `lr · (s + 1) / (warmup_steps + 1)`, cosine decay to
    /// `min_lr` at `decay_steps`, then `min_lr`.
    WarmupCosine {
        /// Warmup steps.
        warmup_steps: u64,
        /// The step at which the cosine reaches `min_lr` (nanoGPT's `lr_decay_iters`).
        decay_steps: u64,
        /// The floor (an absolute learning rate).
        min_lr: f64,
    },
    /// `StepLR`: multiply by `gamma` every `step_size` steps.
    Step {
        /// Steps between decays.
        step_size: u64,
        /// The factor.
        gamma: f64,
    },
    /// `ExponentialLR`: multiply by `gamma` every step.
    Exponential {
        /// The factor.
        gamma: f64,
    },
    /// `ReduceLROnPlateau`: multiply by `factor` when the metric passed to
    /// [`LrScheduler::report`] has not improved for more than `patience` reports.
    Plateau {
        /// Lower or higher is better.
        mode: PlateauMode,
        /// The factor (PyTorch: 0.1).
        factor: f64,
        /// Reports without improvement tolerated (PyTorch: 10).
        patience: u64,
        /// Minimal improvement (PyTorch: 1e-4).
        threshold: f64,
        /// Relative or absolute threshold (PyTorch: relative).
        threshold_mode: ThresholdMode,
        /// Reports to wait after a reduction (PyTorch: 0).
        cooldown: u64,
        /// The floor (PyTorch: 0).
        min_lr: f64,
        /// Reductions smaller than this are skipped (PyTorch: 1e-8).
        eps: f64,
    },
}

impl LrSchedule {
    /// [`LrSchedule::WarmupCosine`].
    pub fn warmup_cosine(warmup_steps: u64, decay_steps: u64, min_lr: f64) -> Self {
        Self::WarmupCosine {
            warmup_steps,
            decay_steps,
            min_lr,
        }
    }

    /// `ReduceLROnPlateau` with PyTorch's defaults for `mode`.
    pub fn plateau(mode: PlateauMode) -> Self {
        Self::Plateau {
            mode,
            factor: 0.1,
            patience: 10,
            threshold: 1e-4,
            threshold_mode: ThresholdMode::Rel,
            cooldown: 0,
            min_lr: 0.0,
            eps: 1e-8,
        }
    }

    fn validate(&self) -> crate::Result<()> {
        let bad = |message: String| {
            Err(crate::Error::Config {
                module: "LrSchedule",
                message,
            })
        };
        // Every float is checked as `!(x in range)`, so that NaN fails as well.
        match *self {
            Self::Linear {
                warmup_steps,
                total_steps,
                ..
            } if total_steps <= warmup_steps && total_steps > 0 => bad(format!(
                "total_steps ({total_steps}) must exceed warmup_steps ({warmup_steps})"
            )),
            // torch's LinearLR: "Ending multiplicative factor expected to be between 0 and 1."
            Self::Linear { end_factor, .. } if !(0.0..=1.0).contains(&end_factor) => {
                bad(format!("end_factor must be in [0, 1], found {end_factor}"))
            }
            Self::WarmupCosine {
                warmup_steps,
                decay_steps,
                ..
            } if decay_steps <= warmup_steps => bad(format!(
                "decay_steps ({decay_steps}) must exceed warmup_steps ({warmup_steps})"
            )),
            Self::WarmupCosine { min_lr, .. } if !(min_lr >= 0.0 && min_lr.is_finite()) => {
                bad(format!("min_lr must be a finite value >= 0, found {min_lr}"))
            }
            Self::Step { step_size: 0, .. } => bad("step_size must be > 0".into()),
            Self::Step { gamma, .. } | Self::Exponential { gamma } if !(gamma > 0.0 && gamma.is_finite()) => {
                bad(format!("gamma must be a finite value > 0, found {gamma}"))
            }
            Self::Plateau { factor, .. } if !(0.0..1.0).contains(&factor) => {
                bad(format!("factor must be in [0, 1), found {factor}"))
            }
            Self::Plateau {
                threshold,
                min_lr,
                eps,
                ..
            } if ![threshold, min_lr, eps]
                .iter()
                .all(|x| *x >= 0.0 && x.is_finite()) =>
            {
                bad(format!(
                    "threshold, min_lr and eps must be finite values >= 0, found {threshold}, {min_lr}, {eps}"
                ))
            }
            _ => Ok(()),
        }
    }
}

/// A schedule with its state: the base learning rate, the step count, and the plateau tracker.
///
/// Serialisable, so that a checkpoint resumes the schedule exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LrScheduler {
    /// The base (peak) learning rate.
    pub base_lr: f64,
    /// The schedule.
    pub schedule: LrSchedule,
    /// Optimizer steps taken so far.
    pub step: u64,
    /// `Plateau` only: the current learning rate.
    plateau_lr: f64,
    /// `Plateau` only: the best metric so far (`None` before the first report).
    best: Option<f64>,
    /// `Plateau` only: reports without improvement.
    num_bad: u64,
    /// `Plateau` only: reports left in the cooldown.
    cooldown_left: u64,
}

impl LrScheduler {
    /// A scheduler at step 0.
    pub fn new(base_lr: f64, schedule: LrSchedule) -> Self {
        Self {
            base_lr,
            schedule,
            step: 0,
            plateau_lr: base_lr,
            best: None,
            num_bad: 0,
            cooldown_left: 0,
        }
    }

    /// [`LrScheduler::new`] after checking the schedule's parameters.
    pub fn try_new(base_lr: f64, schedule: LrSchedule) -> crate::Result<Self> {
        schedule.validate()?;
        Ok(Self::new(base_lr, schedule))
    }

    /// The learning rate of step `s`, without changing the state (plateau: the current rate).
    pub fn lr_at(&self, s: u64) -> f64 {
        let base = self.base_lr;
        match self.schedule {
            LrSchedule::Constant => base,
            LrSchedule::Linear {
                warmup_steps,
                total_steps,
                end_factor,
            } => {
                if s < warmup_steps {
                    return base * s as f64 / warmup_steps as f64;
                }
                let span = total_steps.saturating_sub(warmup_steps).max(1) as f64;
                let t = ((s - warmup_steps) as f64 / span).min(1.0);
                base * (1.0 + (end_factor - 1.0) * t)
            }
            LrSchedule::WarmupCosine {
                warmup_steps,
                decay_steps,
                min_lr,
            } => {
                if s < warmup_steps {
                    return base * (s + 1) as f64 / (warmup_steps + 1) as f64;
                }
                if s > decay_steps {
                    return min_lr;
                }
                let ratio = (s - warmup_steps) as f64 / (decay_steps - warmup_steps) as f64;
                let coeff = 0.5 * (1.0 + (std::f64::consts::PI * ratio).cos());
                min_lr + coeff * (base - min_lr)
            }
            LrSchedule::Step { step_size, gamma } => base * gamma.powi((s / step_size.max(1)) as i32),
            LrSchedule::Exponential { gamma } => base * gamma.powi(s as i32),
            LrSchedule::Plateau { .. } => self.plateau_lr,
        }
    }

    /// The learning rate for the next optimizer step; advances the step count.
    pub fn step(&mut self) -> f64 {
        let lr = self.lr_at(self.step);
        self.step += 1;
        lr
    }

    /// The learning rate the next [`step`](Self::step) returns.
    pub fn current(&self) -> f64 {
        self.lr_at(self.step)
    }

    /// Reports a validation metric (only `Plateau` uses it; PyTorch's `scheduler.step(metric)`).
    pub fn report(&mut self, metric: f64) {
        let LrSchedule::Plateau {
            mode,
            factor,
            patience,
            threshold,
            threshold_mode,
            cooldown,
            min_lr,
            eps,
        } = self.schedule
        else {
            return;
        };
        let better = match self.best {
            None => !metric.is_nan(),
            Some(best) => match (mode, threshold_mode) {
                (PlateauMode::Min, ThresholdMode::Rel) => metric < best * (1.0 - threshold),
                (PlateauMode::Min, ThresholdMode::Abs) => metric < best - threshold,
                (PlateauMode::Max, ThresholdMode::Rel) => metric > best * (1.0 + threshold),
                (PlateauMode::Max, ThresholdMode::Abs) => metric > best + threshold,
            },
        };
        if better {
            self.best = Some(metric);
            self.num_bad = 0;
        } else {
            self.num_bad += 1;
        }
        if self.cooldown_left > 0 {
            self.cooldown_left -= 1;
            self.num_bad = 0;
        }
        if self.num_bad > patience {
            let new_lr = (self.plateau_lr * factor).max(min_lr);
            if self.plateau_lr - new_lr > eps {
                self.plateau_lr = new_lr;
            }
            self.cooldown_left = cooldown;
            self.num_bad = 0;
        }
    }
}
