//! Task models built from the layers in [`crate::nn`].
mod gpt;
mod gpt_hf;
mod seq2seq;

pub(crate) use gpt::check_ids;
pub use gpt::{Gpt, GptCache, GptConfig};
pub use seq2seq::{Seq2SeqDecodeState, TransformerSeq2Seq, TransformerSeq2SeqConfig};
