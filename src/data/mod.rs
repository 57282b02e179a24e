//! Data for training: the [`Batches`] interface the trainer reads, and token batches for language
//! modelling (random windows for Transformers, parallel streams for truncated BPTT).
mod batches;
mod lm;
mod rng;

pub use batches::Batches;
pub use lm::{LmStreams, LmWindows, TokenBatch};
pub use rng::SplitMix64;
