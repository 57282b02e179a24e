//! [`EncoderTokenizer`]: a pretrained encoder's `tokenizer.json` (BERT's WordPiece, RoBERTa's
//! byte-level BPE) through Hugging Face `tokenizers`, encoding batches of texts or text pairs
//! with special tokens, truncation and padding as transformers' tokenizer call does.

use std::path::Path;

use tokenizers::{
    PaddingDirection, PaddingParams, PaddingStrategy, Tokenizer as HfTokenizer, TruncationDirection,
    TruncationParams, TruncationStrategy,
};

use super::encoded::EncodedBatch;
use super::tokenizer::{SpecialTokens, Tokenizer};
use crate::{Error, Result};

/// How a batch is padded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// To the longest row of the batch (transformers' `padding="longest"`).
    Longest,
    /// To `max_length` (transformers' `padding="max_length"`); needs a `max_length`.
    MaxLength,
}

/// Options of [`EncoderTokenizer::encode_batch`], transformers' tokenizer-call arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeOptions {
    /// Truncate every row to this many tokens (special tokens included), shortening the longer
    /// text of a pair first (`truncation="longest_first"`); `None`: no truncation.
    pub max_length: Option<usize>,
    /// How rows are padded on the right.
    pub padding: Padding,
    /// Add `[CLS]`/`[SEP]` (`<s>`/`</s>`) as the tokenizer's post-processor says.
    pub add_special_tokens: bool,
}

impl Default for EncodeOptions {
    /// No truncation, padding to the longest row, special tokens added.
    fn default() -> Self {
        Self {
            max_length: None,
            padding: Padding::Longest,
            add_special_tokens: true,
        }
    }
}

/// A batch encoded with everything transformers returns beside the ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encodings {
    /// Ids, attention mask and token types, padded.
    pub batch: EncodedBatch,
    /// Per row and position, the `(start, end)` character offsets of the token in its text
    /// (Unicode scalar values, as transformers' `offset_mapping`); `(0, 0)` for special tokens
    /// and padding.
    pub offsets: Vec<Vec<(usize, usize)>>,
    /// Per row and position, the index of the word the token belongs to (`word_ids()`); `None`
    /// for special tokens and padding.
    pub word_ids: Vec<Vec<Option<u32>>>,
}

/// A pretrained encoder's tokenizer; see the module documentation.
#[derive(Clone)]
pub struct EncoderTokenizer {
    inner: HfTokenizer,
    pad: (u32, String),
    mask: Option<u32>,
    special: SpecialTokens,
}

impl std::fmt::Debug for EncoderTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncoderTokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("pad", &self.pad)
            .finish()
    }
}

/// A special token's text from `tokenizer_config.json` (a string, or an added-token object).
fn config_token(config: &serde_json::Value, key: &str) -> Option<String> {
    match config.get(key)? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Object(o) => o.get("content")?.as_str().map(String::from),
        _ => None,
    }
}

impl EncoderTokenizer {
    /// Loads a `save_pretrained` directory: `tokenizer.json`, and the special tokens of
    /// `tokenizer_config.json` when it is there.
    pub fn from_pretrained(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let config_path = dir.join("tokenizer_config.json");
        let config = match std::fs::read_to_string(&config_path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| Error::Load {
                path: config_path.clone(),
                message: e.to_string(),
            })?,
            Err(_) => serde_json::Value::Null,
        };
        Self::load(&dir.join("tokenizer.json"), &config)
    }

    /// Loads a `tokenizer.json` alone; the padding and mask tokens are found by their usual
    /// spellings (`[PAD]`/`<pad>`, `[MASK]`/`<mask>`).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        Self::load(path.as_ref(), &serde_json::Value::Null)
    }

    fn load(path: &Path, config: &serde_json::Value) -> Result<Self> {
        let inner = HfTokenizer::from_file(path).map_err(|e| Error::Load {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Self::from_parts(inner, config).map_err(|message| Error::Load {
            path: path.to_path_buf(),
            message,
        })
    }

    /// A wrapper around `inner`, with the special tokens `config` (a `tokenizer_config.json`)
    /// names, else their usual spellings.
    pub(super) fn from_parts(
        inner: HfTokenizer,
        config: &serde_json::Value,
    ) -> std::result::Result<Self, String> {
        let find = |key: &str, spellings: &[&str]| -> Option<(u32, String)> {
            config_token(config, key)
                .into_iter()
                .chain(spellings.iter().map(|s| s.to_string()))
                .find_map(|t| inner.token_to_id(&t).map(|id| (id, t)))
        };
        let pad = inner
            .get_padding()
            .map(|p| (p.pad_id, p.pad_token.clone()))
            .or_else(|| find("pad_token", &["[PAD]", "<pad>"]))
            .ok_or(
                "no padding token: neither tokenizer_config.json's pad_token nor [PAD] or <pad> is in \
                    the vocabulary",
            )?;
        let id = |key: &str, spellings: &[&str]| find(key, spellings).map(|(id, _)| id);
        let special = SpecialTokens {
            pad: Some(pad.0),
            bos: id("cls_token", &["[CLS]", "<s>"]),
            eos: id("sep_token", &["[SEP]", "</s>"]),
            unk: id("unk_token", &["[UNK]", "<unk>"]),
        };
        let mask = id("mask_token", &["[MASK]", "<mask>"]);
        let mut inner = inner;
        // Padding and truncation are set per call.
        inner.with_padding(None);
        inner.with_truncation(None).map_err(|e| e.to_string())?;
        Ok(Self {
            mask,
            inner,
            pad,
            special,
        })
    }

    /// The id of the mask token (`[MASK]`, `<mask>`), if the vocabulary has one.
    pub fn mask_token_id(&self) -> Option<u32> {
        self.mask
    }

    /// The wrapped `tokenizers::Tokenizer`.
    pub fn inner(&self) -> &HfTokenizer {
        &self.inner
    }

    /// Encodes single texts as transformers' `tokenizer(texts, truncation=..., max_length=...,
    /// padding=...)`.
    pub fn encode_batch(&self, texts: &[&str], options: &EncodeOptions) -> Result<Encodings> {
        let inputs = texts
            .iter()
            .map(|t| tokenizers::EncodeInput::Single((*t).into()))
            .collect();
        self.encode_inputs(inputs, options)
    }

    /// Encodes text pairs (`[CLS] a [SEP] b [SEP]`, token type 1 for `b` in BERT) as
    /// transformers' `tokenizer(firsts, seconds, ...)`.
    pub fn encode_pairs(&self, pairs: &[(&str, &str)], options: &EncodeOptions) -> Result<Encodings> {
        let inputs = pairs
            .iter()
            .map(|(a, b)| tokenizers::EncodeInput::Dual((*a).into(), (*b).into()))
            .collect();
        self.encode_inputs(inputs, options)
    }

    /// Encodes one pre-split sentence (transformers' `is_split_into_words=True`) with special
    /// tokens, truncated to `max_length`: its ids, token types and which positions are special
    /// tokens, and each position's word index (`None` for special tokens).
    #[allow(clippy::type_complexity)]
    pub fn encode_words(
        &self,
        words: &[String],
        max_length: usize,
    ) -> Result<((Vec<u32>, Vec<u32>, Vec<bool>), Vec<Option<u32>>)> {
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let input = tokenizers::EncodeInput::Single(tokenizers::InputSequence::PreTokenized(words.into()));
        let options = EncodeOptions {
            max_length: Some(max_length),
            ..Default::default()
        };
        let enc = self.encode_inputs(vec![input], &options)?;
        let word_ids = enc.word_ids.into_iter().next().unwrap_or_default();
        let special = word_ids.iter().map(Option::is_none).collect();
        Ok(((enc.batch.input_ids, enc.batch.token_type_ids, special), word_ids))
    }

    fn encode_inputs(
        &self,
        inputs: Vec<tokenizers::EncodeInput<'_>>,
        options: &EncodeOptions,
    ) -> Result<Encodings> {
        if inputs.is_empty() {
            return Err(Error::Data("EncoderTokenizer: no texts to encode".into()));
        }
        let fail = |e: tokenizers::Error| Error::Tokenizer(e.to_string());
        let mut tok = self.inner.clone();
        if let Some(max_length) = options.max_length {
            if max_length == 0 {
                return Err(Error::Config {
                    module: "EncodeOptions",
                    message: "max_length must be positive, found 0".into(),
                });
            }
            tok.with_truncation(Some(TruncationParams {
                max_length,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(fail)?;
        }
        let strategy = match (options.padding, options.max_length) {
            (Padding::Longest, _) => PaddingStrategy::BatchLongest,
            (Padding::MaxLength, Some(n)) => PaddingStrategy::Fixed(n),
            (Padding::MaxLength, None) => {
                return Err(Error::Config {
                    module: "EncodeOptions",
                    message: "padding MaxLength needs a max_length".into(),
                });
            }
        };
        tok.with_padding(Some(PaddingParams {
            strategy,
            direction: PaddingDirection::Right,
            pad_to_multiple_of: None,
            pad_id: self.pad.0,
            pad_type_id: 0,
            pad_token: self.pad.1.clone(),
        }));
        let encodings = tok
            .encode_batch_char_offsets(inputs, options.add_special_tokens)
            .map_err(fail)?;
        let seq_len = encodings.first().map_or(0, |e| e.len());
        let flat = |f: &dyn Fn(&tokenizers::Encoding) -> &[u32]| -> Vec<u32> {
            encodings.iter().flat_map(|e| f(e).iter().copied()).collect()
        };
        let batch = EncodedBatch {
            batch: encodings.len(),
            seq_len,
            input_ids: flat(&|e| e.get_ids()),
            attention_mask: flat(&|e| e.get_attention_mask()),
            token_type_ids: flat(&|e| e.get_type_ids()),
        };
        batch.validate()?;
        Ok(Encodings {
            offsets: encodings.iter().map(|e| e.get_offsets().to_vec()).collect(),
            word_ids: encodings.iter().map(|e| e.get_word_ids().to_vec()).collect(),
            batch,
        })
    }
}

impl Tokenizer for EncoderTokenizer {
    /// The ids of `text` without special tokens.
    fn encode(&self, text: &str) -> Result<Vec<u32>> {
        super::hf_calls::encode(&self.inner, text)
    }

    /// The text of `ids`, special tokens skipped (transformers' `skip_special_tokens=True`).
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
