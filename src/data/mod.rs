//! Text in: tokenizers, datasets and batching, and the [`Batches`] interface the trainer reads.
//!
//! Tokenizers implement [`Tokenizer`]: [`CharTokenizer`] (characters of a corpus),
//! [`WordTokenizer`] (words with a frequency cut-off and `<unk>`), [`BpeTokenizer`] (byte-level
//! BPE through Hugging Face `tokenizers`, which also loads GPT-2's `tokenizer.json`).
//! [`DecodeStream`] decodes generated ids piece by piece without splitting a character.
mod batch_check;
mod batches;
mod bpe;
mod char_tokenizer;
mod classification;
mod csv;
mod encoded;
mod encoder_batches;
mod encoder_tokenizer;
mod grammar;
mod hf_calls;
mod lm;
mod order;
mod pairs;
mod rng;
mod text;
mod tokenizer;
mod word_tokenizer;
mod wordpiece;

pub use batches::Batches;
pub use bpe::{BpeTokenizer, END_OF_TEXT};
pub use char_tokenizer::CharTokenizer;
pub use classification::{ClassBatch, ClassificationBatches};
pub use csv::read_text_label_csv;
pub use encoded::EncodedBatch;
pub use encoder_batches::{EncoderBatch, EncoderBatches, EncoderLabels};
pub use encoder_tokenizer::{EncodeOptions, EncoderTokenizer, Encodings, Padding};
pub use grammar::ToyGrammar;
pub use lm::{LmShape, LmStreams, LmWindows, TokenBatch};
pub(crate) use order::batches as order_batches;
pub use pairs::{PairBatch, PairBatches};
pub use rng::SplitMix64;
pub use text::{read_labeled_tsv, read_lines, read_pairs, read_text, split_tail};
pub(crate) use tokenizer::check_ids as check_token_ids;
pub use tokenizer::{DecodeStream, SpecialTokens, Tokenizer};
pub use word_tokenizer::{WORD_SPECIALS, WordTokenizer};
