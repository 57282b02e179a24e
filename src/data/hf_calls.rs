//! The calls into Hugging Face `tokenizers` that every wrapper of a `tokenizers::Tokenizer`
//! makes, with ember-lm's errors: ids checked before decoding (`tokenizers` silently drops
//! unknown ids).

use tokenizers::Tokenizer as HfTokenizer;

use super::tokenizer::check_ids;
use crate::{Error, Result};

/// The ids of `text`, without special tokens.
pub(super) fn encode(inner: &HfTokenizer, text: &str) -> Result<Vec<u32>> {
    let encoding = inner
        .encode(text, false)
        .map_err(|e| Error::Tokenizer(format!("encoding failed: {e}")))?;
    Ok(encoding.get_ids().to_vec())
}

/// The text of `ids`, special tokens skipped; an id outside the vocabulary is an
/// [`Error::TokenId`].
pub(super) fn decode(inner: &HfTokenizer, ids: &[u32]) -> Result<String> {
    check_ids(ids, inner.get_vocab_size(true))?;
    inner
        .decode(ids, true)
        .map_err(|e| Error::Tokenizer(format!("decoding failed: {e}")))
}
