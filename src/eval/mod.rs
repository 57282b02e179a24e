//! Evaluation metrics: accuracy, precision/recall/F1, perplexity and bits per character, and
//! corpus BLEU (sacrebleu's defaults), word and character error rates (jiwer's).
mod bleu;
mod classification;
mod wer;

pub use bleu::{Bleu, corpus_bleu, tokenize_13a};
pub use classification::{ClassificationReport, Prf, bits_per_char, classification_report, perplexity};
pub use wer::{ErrorRate, char_error_rate, word_error_rate};
