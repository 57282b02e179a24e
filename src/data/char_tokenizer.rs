//! [`CharTokenizer`]: one id per character, vocabulary built from a corpus.

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::tokenizer::{SpecialTokens, Tokenizer, check_ids, load_json, save_json};
use crate::{Error, Result};

/// Character-level tokenizer (nanoGPT's Shakespeare-char): the sorted set of a corpus's
/// characters, optionally with an `<unk>` id (the last) for characters not seen.
///
/// Saved and loaded as JSON: `{"chars": ["\n", " ", "!", ...], "unk": true}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CharTokenizer {
    chars: Vec<char>,
    /// Whether unseen characters map to an extra `<unk>` id instead of an error.
    unk: bool,
}

impl CharTokenizer {
    /// The characters of `corpus`, sorted; unknown characters are an error when encoding.
    pub fn from_corpus(corpus: &str) -> Result<Self> {
        let chars: Vec<char> = corpus.chars().collect::<BTreeSet<_>>().into_iter().collect();
        if chars.is_empty() {
            return Err(Error::Data("CharTokenizer: the corpus is empty".into()));
        }
        Ok(Self { chars, unk: false })
    }

    /// Adds an `<unk>` id (the last one) for characters outside the corpus.
    pub fn with_unk(mut self) -> Self {
        self.unk = true;
        self
    }

    /// Reads a tokenizer saved with [`save`](Self::save).
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        load_json(path.as_ref(), "CharTokenizer", |t: &Self| {
            let sorted = t.chars.windows(2).all(|w| w[0] < w[1]);
            if t.chars.is_empty() || !sorted {
                return Err("the character list must be non-empty, sorted and without repeats".into());
            }
            Ok(())
        })
    }

    /// Writes the tokenizer as JSON (atomically).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        save_json(path.as_ref(), self)
    }

    fn unk_id(&self) -> Option<u32> {
        self.unk.then_some(self.chars.len() as u32)
    }
}

impl Tokenizer for CharTokenizer {
    fn encode(&self, text: &str) -> Result<Vec<u32>> {
        text.char_indices()
            .map(|(at, c)| match self.chars.binary_search(&c) {
                Ok(i) => Ok(i as u32),
                Err(_) => self.unk_id().ok_or_else(|| {
                    Error::Data(format!(
                        "CharTokenizer: character {c:?} at byte {at} is not in the vocabulary"
                    ))
                }),
            })
            .collect()
    }

    fn decode(&self, ids: &[u32]) -> Result<String> {
        check_ids(ids, self.vocab_size())?;
        Ok(ids
            .iter()
            .map(|&id| self.chars.get(id as usize).copied().unwrap_or('\u{FFFD}'))
            .collect())
    }

    fn vocab_size(&self) -> usize {
        self.chars.len() + self.unk as usize
    }

    fn special_tokens(&self) -> SpecialTokens {
        SpecialTokens {
            unk: self.unk_id(),
            ..Default::default()
        }
    }

    fn id_to_token(&self, id: u32) -> Option<String> {
        match self.chars.get(id as usize) {
            Some(c) => Some(c.to_string()),
            None if Some(id) == self.unk_id() => Some("<unk>".into()),
            None => None,
        }
    }
}
