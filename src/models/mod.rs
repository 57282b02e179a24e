//! Task models built from the layers in [`crate::nn`].
mod classifier;
mod gpt;
mod gpt_hf;
mod language_model;
mod rnn_lm;
mod seq2seq;

pub use classifier::{
    Encoder, EncoderKind, Pooling, SequenceClassifier, SequenceClassifierConfig, TransformerBody,
};
pub(crate) use gpt::check_ids;
pub use gpt::{Gpt, GptCache, GptConfig};
pub use language_model::{LanguageModel, RnnLmState};
pub use rnn_lm::{RnnLm, RnnLmConfig};
pub use seq2seq::{Seq2SeqDecodeState, TransformerSeq2Seq, TransformerSeq2SeqConfig};
