//! The calls into Hugging Face `tokenizers` that every wrapper of a `tokenizers::Tokenizer`
//! makes, with ember-lm's errors: ids checked before decoding (`tokenizers` silently drops
//! unknown ids).

use tokenizers::Tokenizer as HfTokenizer;
use tokenizers::models::TrainerWrapper;

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

/// Trains `tokenizer`'s model on `texts` with `trainer`; `what` names the kind in errors.
pub(super) fn train<'t>(
    tokenizer: &mut HfTokenizer,
    trainer: impl Into<TrainerWrapper>,
    texts: impl IntoIterator<Item = &'t str>,
    what: &str,
) -> Result<()> {
    let texts: Vec<String> = texts.into_iter().map(str::to_string).collect();
    tokenizer
        .train(&mut trainer.into(), texts.into_iter())
        .map_err(|e| Error::Tokenizer(format!("{what} training failed: {e}")))?;
    Ok(())
}
