//! The training loop: a [`Task`] trait that language modelling, classification and translation
//! implement, and a [`Trainer`] that runs it with gradient accumulation, global-norm clipping,
//! learning-rate schedules, validation, metrics (CSV, TensorBoard, a loss plot, a progress bar),
//! atomic checkpoints with exact resume, early stopping and a policy for non-finite losses.
//!
//! ```
//! # #[cfg(feature = "ndarray")] {
//! use burn::backend::{Autodiff, NdArray};
//! use ember_lm::data::{LmShape, LmWindows};
//! use ember_lm::models::GptConfig;
//! use ember_lm::optim::{LrSchedule, OptimizerConfig};
//! use ember_lm::train::{GptLmTask, ProgressMode, Trainer, TrainerConfig};
//!
//! type B = Autodiff<NdArray>;
//! let device = Default::default();
//! let config = GptConfig::new()
//!     .with_vocab_size(16)
//!     .with_block_size(8)
//!     .with_n_layer(1)
//!     .with_n_head(2)
//!     .with_n_embd(16);
//! let model = config.init::<B>(&device)?;
//! // A corpus that repeats 0, 1, ..., 15.
//! let tokens: Vec<i64> = (0..800).map(|i| i % 16).collect();
//! let train = LmWindows::new(tokens.clone(), LmShape { batch_size: 4, seq_len: 8 })?;
//! let valid = LmWindows::new(tokens, LmShape { batch_size: 4, seq_len: 8 })?.with_batches_per_epoch(2);
//! let mut trainer = Trainer::new(
//!     TrainerConfig::new().with_max_steps(Some(60)).with_progress(ProgressMode::Off),
//!     GptLmTask::new(config),
//!     model,
//!     &OptimizerConfig::adamw().with_lr(1e-2),
//!     LrSchedule::Constant,
//!     &device,
//! )?;
//! let report = trainer.fit(&train, Some(&valid))?;
//! assert!(report.last_valid.unwrap().loss < 1.0); // the sequence is learnt
//! # }
//! # Ok::<(), ember_lm::Error>(())
//! ```
mod checkpoint;
mod classify;
mod config;
mod ctc;
mod distributed;
mod encoder;
mod lm;
mod logging;
mod metrics;
mod model_file;
mod parallel;
mod plot;
mod run;
mod seed;
mod task;
mod tensorboard;
mod trainer;
mod translate;

/// Also at [`crate::io::crc32c`], where it lives.
pub use crate::io::crc32c;
pub use checkpoint::load_model;
pub use classify::{ClassificationTask, predict_classes};
pub use config::{EarlyStopping, Monitor, NonFinitePolicy, ProgressMode, TrainerConfig};
pub use ctc::CtcTask;
pub use distributed::{DistributedConfig, default_data_port};
#[cfg(feature = "collective")]
pub use distributed::{fit_distributed, run_orchestrator};
pub use encoder::{EncoderClassificationTask, MaskedLmTask, TokenClassificationTask};
pub use lm::{GptFamily, GptLmTask, LmFamily, LmTask, RnnLmFamily, RnnLmTask, TrainableLm};
pub use metrics::{MetricRow, ReportedMetrics};
#[cfg(feature = "collective")]
pub use parallel::fit_data_parallel;
pub use plot::{plot_losses, plot_losses_with};
pub use run::{LoadedRun, RunModelConfig, RunTokenizer, load_run};
pub use seed::seed_everything;
pub use task::{BatchStats, Task, TrainOutput};
pub use tensorboard::{EventWriter, frame_record, read_records};
pub use trainer::{FitReport, Hook, StepInfo, Trainer};
pub use translate::TranslationTask;
