//! The [`Tokenizer`] trait and streaming decoding.

use crate::Result;

/// The special tokens a tokenizer defines, by id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpecialTokens {
    /// Padding.
    pub pad: Option<u32>,
    /// Beginning of sequence.
    pub bos: Option<u32>,
    /// End of sequence.
    pub eos: Option<u32>,
    /// Unknown (out-of-vocabulary) input.
    pub unk: Option<u32>,
}

/// Text to token ids and back.
///
/// Implemented by [`CharTokenizer`](super::CharTokenizer), [`WordTokenizer`](super::WordTokenizer)
/// and [`BpeTokenizer`](super::BpeTokenizer).
///
/// # Round trip
/// `decode(encode_literal(s)) == s` for every string the tokenizer can represent: every UTF-8
/// string for byte-level BPE; for a [`CharTokenizer`](super::CharTokenizer), strings of its
/// characters; for a [`WordTokenizer`](super::WordTokenizer), lowercase words of its vocabulary
/// separated by single spaces. `encode` differs only on text that spells a special token (BPE's
/// `<|endoftext|>`, the word tokenizer's `<pad>`, ...): like Hugging Face's tokenizers, it turns
/// that spelling into the special token, which `decode` then drops. Encode untrusted text with
/// `encode_literal`.
pub trait Tokenizer {
    /// The ids of `text` (no special tokens added; a special token's spelling in `text` becomes
    /// that special token, as Hugging Face's tokenizers do).
    fn encode(&self, text: &str) -> Result<Vec<u32>>;

    /// The ids of `text` with special tokens' spellings taken as ordinary text (transformers'
    /// `split_special_tokens=True`): what untrusted input should go through. The default is
    /// [`encode`](Self::encode), for tokenizers whose special tokens have no spelling.
    fn encode_literal(&self, text: &str) -> Result<Vec<u32>> {
        self.encode(text)
    }

    /// The text of `ids`. An id outside the vocabulary is an
    /// [`Error::TokenId`](crate::Error::TokenId); special tokens other than `unk` decode to
    /// nothing.
    fn decode(&self, ids: &[u32]) -> Result<String>;

    /// Ids `0..vocab_size()` are valid.
    fn vocab_size(&self) -> usize;

    /// The special tokens.
    fn special_tokens(&self) -> SpecialTokens;

    /// An id's token string, if the id is in the vocabulary.
    fn id_to_token(&self, id: u32) -> Option<String>;

    /// `decode`, with ids outside the vocabulary replaced by `U+FFFD` instead of an error.
    fn decode_lossy(&self, ids: &[u32]) -> String {
        let n = self.vocab_size() as u32;
        let mut out = String::new();
        let mut run = Vec::new();
        for &id in ids {
            if id < n {
                run.push(id);
            } else {
                out += &self.decode(&run).unwrap_or_default();
                run.clear();
                out.push('\u{FFFD}');
            }
        }
        out + &self.decode(&run).unwrap_or_default()
    }
}

/// Checks every id against the vocabulary size.
pub(crate) fn check_ids(ids: &[u32], vocab_size: usize) -> Result<()> {
    match ids.iter().find(|&&id| id as usize >= vocab_size) {
        Some(&id) => Err(crate::Error::TokenId {
            found: id as i64,
            vocab_size,
        }),
        None => Ok(()),
    }
}

/// Decodes a stream of ids piece by piece without ever splitting a UTF-8 character (or a word a
/// tokenizer joins with the next one): each [`push`](Self::push) returns the text that has become
/// final, if any.
///
/// It decodes a short window of recent ids and emits the new suffix once it no longer ends in the
/// replacement character `U+FFFD` that an incomplete byte sequence decodes to (the approach of
/// Hugging Face's text-generation-inference).
pub struct DecodeStream<'a, T: Tokenizer + ?Sized> {
    tokenizer: &'a T,
    ids: Vec<u32>,
    prefix_offset: usize,
    read_offset: usize,
}

impl<'a, T: Tokenizer + ?Sized> DecodeStream<'a, T> {
    /// An empty stream.
    pub fn new(tokenizer: &'a T) -> Self {
        Self {
            tokenizer,
            ids: Vec::new(),
            prefix_offset: 0,
            read_offset: 0,
        }
    }

    /// Adds one id; returns the newly final text, if any.
    pub fn push(&mut self, id: u32) -> Result<Option<String>> {
        check_ids(&[id], self.tokenizer.vocab_size())?;
        self.ids.push(id);
        let prefix = self
            .tokenizer
            .decode(&self.ids[self.prefix_offset..self.read_offset])?;
        let text = self.tokenizer.decode(&self.ids[self.prefix_offset..])?;
        if text.len() > prefix.len() && !text.ends_with('\u{FFFD}') && text.starts_with(&prefix) {
            let piece = text[prefix.len()..].to_string();
            self.prefix_offset = self.read_offset;
            self.read_offset = self.ids.len();
            Ok(Some(piece))
        } else {
            Ok(None)
        }
    }

    /// The text still pending at the end of the stream (possibly with `U+FFFD` for an
    /// incomplete character).
    pub fn finish(self) -> Result<String> {
        let prefix = self
            .tokenizer
            .decode(&self.ids[self.prefix_offset..self.read_offset])?;
        let text = self.tokenizer.decode(&self.ids[self.prefix_offset..])?;
        Ok(text.get(prefix.len()..).unwrap_or("").to_string())
    }
}

/// Reads a tokenizer's JSON file; `check` validates the parsed value (its message becomes the
/// error).
pub(crate) fn load_json<T: serde::de::DeserializeOwned>(
    path: &std::path::Path,
    what: &str,
    check: impl FnOnce(&T) -> std::result::Result<(), String>,
) -> Result<T> {
    let err = |message: String| crate::Error::Load {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let value: T = serde_json::from_str(&text).map_err(|e| err(format!("not a {what} JSON file: {e}")))?;
    check(&value).map_err(err)?;
    Ok(value)
}

/// Writes a tokenizer as JSON, atomically.
pub(crate) fn save_json<T: serde::Serialize>(path: &std::path::Path, value: &T) -> Result<()> {
    let json = serde_json::to_vec(value).map_err(|e| crate::Error::Save {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    crate::io::atomic_write(path, &json)
}
