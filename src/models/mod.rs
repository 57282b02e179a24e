//! Task models built from the layers in [`crate::nn`].
mod gpt;
mod gpt_hf;

pub use gpt::{Gpt, GptCache, GptConfig};
