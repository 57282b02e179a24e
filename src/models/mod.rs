//! Task models built from the layers in [`crate::nn`].
pub mod bert;
mod classifier;
mod conditioned;
mod gpt;
mod gpt_hf;
mod gpt_names;
mod gpt_padded;
pub(crate) mod init;
mod language_model;
mod rnn_lm;
mod rnn_seq2seq;
mod seq2seq;

pub use classifier::{
    Encoder, EncoderKind, Pooling, SequenceClassifier, SequenceClassifierConfig, TransformerBody,
};
pub use conditioned::{Conditioned, Seq2SeqModel};
pub use gpt::{Gpt, GptCache, GptConfig};
pub use init::ModelInit;
pub use language_model::{LanguageModel, RnnLmState};
pub(crate) use language_model::{check_prompts, check_row_indices, index_tensor};
pub use rnn_lm::{RnnLm, RnnLmConfig};
pub use rnn_seq2seq::{AttentionScore, RnnDecodeState, RnnSeq2Seq, RnnSeq2SeqConfig};
pub use seq2seq::{Seq2SeqDecodeState, TransformerSeq2Seq, TransformerSeq2SeqConfig};
