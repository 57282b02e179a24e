//! Evaluation metrics: accuracy, precision/recall/F1, perplexity and bits per character, and
//! corpus BLEU (sacrebleu's defaults).
mod bleu;
mod classification;

pub use bleu::{Bleu, corpus_bleu, tokenize_13a};
pub use classification::{ClassificationReport, Prf, bits_per_char, classification_report, perplexity};
