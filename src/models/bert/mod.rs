//! The BERT family of pretrained encoders: BERT, RoBERTa and DistilBERT, loaded from Hugging
//! Face directories by transformers' key names, with transformers' heads and numbers.
//!
//! - [`BertConfig`]: one configuration for the three families ([`EncoderFamily`]), read from
//!   `config.json` by [`BertConfig::from_hf_config`];
//! - [`BertModel`]: the encoder (embeddings, post-norm layers, optional pooler);
//! - [`BertForMaskedLM`], [`BertForSequenceClassification`], [`BertForTokenClassification`]:
//!   the heads, with transformers' losses;
//! - `from_pretrained` / `save_pretrained` on each, reading checkpoints with or without the
//!   family prefix and reporting a new head's weights ([`LoadInfo`](crate::io::LoadInfo)).
//!
//! Inputs are [`EncodedBatch`](crate::data::EncodedBatch)es: ids, attention mask and token
//! types on the host, as a tokenizer returns them.
mod classify;
mod config;
mod embeddings;
mod fill_mask;
mod hf_config;
mod layer;
mod mlm;
mod model;
mod names;
mod pretrained;

pub use classify::{BertForSequenceClassification, BertForTokenClassification, SequenceLabels};
pub use config::{BertConfig, EncoderFamily, ProblemType};
pub use embeddings::BertEmbeddings;
pub use fill_mask::MaskCandidate;
pub use layer::BertLayer;
pub use mlm::BertForMaskedLM;
pub use model::BertModel;
