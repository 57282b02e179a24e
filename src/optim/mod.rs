//! Optimizers, parameter groups, gradient clipping and learning-rate schedules.
//!
//! [`OptimizerConfig`] is one serialisable description of SGD, Adam, AdamW, RMSprop or Adagrad with
//! PyTorch's default hyper-parameters; [`OptimizerConfig::init`] builds a [`ModelOptimizer`] on
//! burn-optim's implementations, with weight decay split into parameter groups and global-norm or
//! per-value gradient clipping. [`LrSchedule`] / [`LrScheduler`] give the learning rate of each
//! optimizer step (PyTorch's `StepLR`, `ExponentialLR`, `LinearLR`, `ReduceLROnPlateau`, and
//! nanoGPT's warmup + cosine).
//!
//! ```
//! # #[cfg(feature = "ndarray")] {
//! use burn::backend::{Autodiff, NdArray};
//! use burn::optim::GradientsParams;
//! use burn::tensor::Tensor;
//! use ember_lm::models::GptConfig;
//! use ember_lm::optim::{DecayGroups, GradClip, LrSchedule, LrScheduler, OptimizerConfig};
//!
//! type B = Autodiff<NdArray>;
//! let device = Default::default();
//! let model = GptConfig::new()
//!     .with_vocab_size(64)
//!     .with_block_size(16)
//!     .with_n_layer(1)
//!     .with_n_head(2)
//!     .with_n_embd(32)
//!     .init::<B>(&device)?;
//! // PyTorch's AdamW defaults, no decay on biases/norms/embeddings, clip_grad_norm_(1.0).
//! // The schedule's peak rate is the configuration's lr (1e-3, PyTorch's AdamW default).
//! let mut optim = OptimizerConfig::adamw()
//!     .with_decay_groups(DecayGroups::NoBiasNormEmbedding)
//!     .with_clip(Some(GradClip::Norm(1.0)))
//!     .init::<B, _>(&model)?
//!     .with_schedule(LrSchedule::warmup_cosine(10, 100, 1e-4))?;
//!
//! let ids = Tensor::<B, 2, burn::tensor::Int>::from_ints([[1, 2, 3, 4]], &device);
//! let loss = model.forward(ids)?.sum();
//! let mut grads = GradientsParams::from_grads(loss.backward(), &model);
//! let norm = optim.clip(&model, &mut grads); // the total norm before clipping
//! assert_eq!(optim.lr(), 1e-3 / 11.0); // warmup step 0 of 10
//! let model = optim.step(model, grads); // at that rate; the schedule moves on
//! assert_eq!(optim.lr(), 2e-3 / 11.0);
//! assert!(norm.is_finite());
//! // Or keep the scheduler apart and pass each rate: `optim.step_lr(lr, model, grads)`.
//! let _ = LrScheduler::new(1e-3, LrSchedule::Constant);
//! # let _ = model;
//! # }
//! # Ok::<(), ember_lm::Error>(())
//! ```
mod clip;
mod config;
mod fused_adamw;
mod optimizer;
mod schedule;

pub use clip::{GradClip, clip_grad_norm, clip_grad_value, grad_norm};
pub use config::{Algorithm, DecayGroups, OptimizerConfig};
pub use optimizer::ModelOptimizer;
pub use schedule::{LrSchedule, LrScheduler, PlateauMode, ThresholdMode};
