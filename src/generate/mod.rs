//! Text generation: greedy decoding, sampling (temperature, top-k, top-p, min-p), repetition
//! penalties, beam search, several EOS tokens and stop strings, seeds, streaming — for any
//! [`LanguageModel`](crate::models::LanguageModel).
//!
//! ```
//! # #[cfg(feature = "ndarray")] {
//! use burn::backend::NdArray;
//! use ember_lm::generate::{GenerationConfig, Generator};
//! use ember_lm::models::Gpt;
//!
//! let device = Default::default();
//! let gpt = Gpt::<NdArray>::from_pretrained("tests/fixtures/gpt2-tiny", &device)?;
//! let config = GenerationConfig::new()
//!     .with_do_sample(true)
//!     .with_temperature(0.8)
//!     .with_top_p(0.9)
//!     .with_max_new_tokens(10)
//!     .with_seed(7);
//! let out = Generator::new(&gpt, config, &device)?.generate(&[vec![1, 2, 3]])?;
//! assert_eq!(out[0][0].tokens.len(), 10);
//! # }
//! # Ok::<(), ember_lm::Error>(())
//! ```
mod batched;
mod config;
mod pretrained;
pub mod processors;
mod search;

pub use config::{BeamStopping, ContextOverflow, GenerationConfig};
pub use search::{FinishReason, Generation, Generator};
