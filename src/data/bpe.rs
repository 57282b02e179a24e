//! [`BpeTokenizer`]: byte-level BPE through Hugging Face's `tokenizers` crate.
//!
//! ember-lm builds `tokenizers` with its pure-Rust `fancy-regex` backend instead of the default
//! C library Oniguruma (`onig`), so no C toolchain is needed; the GPT-2 pre-tokenisation pattern
//! behaves the same with both (`tests/tokenizers.rs` checks encodings against the Python
//! `tokenizers` library, which uses Oniguruma).

use std::path::Path;

use tokenizers::decoders::byte_level::ByteLevel;
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::{AddedToken, Tokenizer as HfTokenizer};

use super::tokenizer::{SpecialTokens, Tokenizer};
use crate::{Error, Result};

/// Byte-level BPE (GPT-2's scheme): every UTF-8 string encodes, and decodes back exactly.
///
/// Trained here from a corpus ([`train`](Self::train)), or loaded from any `tokenizer.json`
/// written by Hugging Face `tokenizers` ([`from_file`](Self::from_file)) — GPT-2's included.
#[derive(Clone)]
pub struct BpeTokenizer {
    inner: HfTokenizer,
    /// The same tokenizer with special tokens encoded as text, for `encode_literal`.
    literal: HfTokenizer,
    special: SpecialTokens,
}

impl std::fmt::Debug for BpeTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BpeTokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("special", &self.special)
            .finish()
    }
}

/// GPT-2's end-of-text token, used as BOS, EOS and padding by tokenizers trained here.
pub const END_OF_TEXT: &str = "<|endoftext|>";

impl BpeTokenizer {
    /// Trains a byte-level BPE of `vocab_size` ids (256 bytes, `<|endoftext|>`, and merges) on
    /// `texts`, merging pairs seen at least `min_frequency` times.
    pub fn train<'a>(
        texts: impl IntoIterator<Item = &'a str>,
        vocab_size: usize,
        min_frequency: u64,
    ) -> Result<Self> {
        if vocab_size < 257 {
            return Err(Error::Config {
                module: "BpeTokenizer",
                message: format!(
                    "vocab_size must be at least 257 (256 bytes + {END_OF_TEXT}), found {vocab_size}"
                ),
            });
        }
        let mut tokenizer = HfTokenizer::new(BPE::default());
        // GPT-2's setup: no prefix space (so decoding gives back exactly the input), its regex.
        let byte_level = tokenizers::pre_tokenizers::byte_level::ByteLevel::new(false, true, true);
        tokenizer
            .with_pre_tokenizer(Some(byte_level))
            .with_decoder(Some(ByteLevel::default()));
        let trainer = BpeTrainerBuilder::new()
            .vocab_size(vocab_size)
            .min_frequency(min_frequency)
            .show_progress(false)
            .initial_alphabet(
                tokenizers::pre_tokenizers::byte_level::ByteLevel::alphabet()
                    .into_iter()
                    .collect(),
            )
            .special_tokens(vec![AddedToken::from(END_OF_TEXT, true)])
            .build();
        super::hf_calls::train(&mut tokenizer, trainer, texts, "BPE")?;
        Ok(Self::wrap(tokenizer))
    }

    /// Loads a `tokenizer.json` (Hugging Face `tokenizers` format).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let inner = HfTokenizer::from_file(path).map_err(|e| Error::Load {
            path: path.to_path_buf(),
            message: format!("not a tokenizers JSON file: {e}"),
        })?;
        Ok(Self::wrap(inner))
    }

    /// Writes `tokenizer.json` (atomically), loadable by Hugging Face `tokenizers` and
    /// `transformers.PreTrainedTokenizerFast(tokenizer_file=...)`.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let json = self.inner.to_string(true).map_err(|e| Error::Save {
            path: path.as_ref().to_path_buf(),
            message: e.to_string(),
        })?;
        crate::io::atomic_write(path.as_ref(), json.as_bytes())
    }

    /// The wrapped `tokenizers::Tokenizer`.
    pub fn inner(&self) -> &HfTokenizer {
        &self.inner
    }

    fn wrap(inner: HfTokenizer) -> Self {
        let eot = inner.token_to_id(END_OF_TEXT);
        let find = |names: &[&str]| names.iter().find_map(|n| inner.token_to_id(n));
        let special = SpecialTokens {
            pad: find(&["<pad>", "[PAD]"]).or(eot),
            bos: find(&["<s>", "<bos>", "[CLS]"]).or(eot),
            eos: find(&["</s>", "<eos>", "[SEP]"]).or(eot),
            unk: find(&["<unk>", "[UNK]"]),
        };
        let mut literal = inner.clone();
        literal.set_encode_special_tokens(true);
        Self {
            inner,
            literal,
            special,
        }
    }
}

impl Tokenizer for BpeTokenizer {
    fn encode(&self, text: &str) -> Result<Vec<u32>> {
        super::hf_calls::encode(&self.inner, text)
    }

    fn encode_literal(&self, text: &str) -> Result<Vec<u32>> {
        super::hf_calls::encode(&self.literal, text)
    }

    fn decode(&self, ids: &[u32]) -> Result<String> {
        super::hf_calls::decode(&self.inner, ids)
    }

    fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    fn special_tokens(&self) -> SpecialTokens {
        self.special
    }

    fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }
}
