//! [`WordTokenizer`]: whitespace-separated words with a frequency cut-off and `<unk>`.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::tokenizer::{SpecialTokens, Tokenizer, check_ids, load_json, save_json};
use crate::{Error, Result};

/// The special tokens every `WordTokenizer` has, at ids 0–3.
pub const WORD_SPECIALS: [&str; 4] = ["<pad>", "<unk>", "<bos>", "<eos>"];

/// Word-level tokenizer: words are maximal runs of non-whitespace; the vocabulary is the words
/// seen at least `min_freq` times, ordered by frequency (ties alphabetically), after the four
/// specials `<pad>`, `<unk>`, `<bos>`, `<eos>`. Unknown words encode to `<unk>`. Decoding joins
/// words with single spaces, so the round trip holds for text made of known words separated by
/// single spaces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WordTokenizer {
    words: Vec<String>,
    #[serde(skip)]
    index: HashMap<String, u32>,
    lowercase: bool,
}

impl WordTokenizer {
    /// Builds the vocabulary from `corpus` (one or many texts), keeping words seen `min_freq`
    /// times or more; `lowercase` folds case before counting and encoding.
    pub fn from_corpus<'a>(
        texts: impl IntoIterator<Item = &'a str>,
        min_freq: usize,
        lowercase: bool,
    ) -> Result<Self> {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for text in texts {
            for w in text.split_whitespace() {
                let w = if lowercase {
                    w.to_lowercase()
                } else {
                    w.to_string()
                };
                *counts.entry(w).or_default() += 1;
            }
        }
        let mut kept: Vec<(String, usize)> = counts
            .into_iter()
            .filter(|(w, c)| *c >= min_freq.max(1) && !WORD_SPECIALS.contains(&w.as_str()))
            .collect();
        if kept.is_empty() {
            return Err(Error::Data(format!(
                "WordTokenizer: no word occurs at least {min_freq} times in the corpus"
            )));
        }
        kept.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let words = WORD_SPECIALS
            .iter()
            .map(|s| s.to_string())
            .chain(kept.into_iter().map(|(w, _)| w))
            .collect();
        Ok(Self::with_words(words, lowercase))
    }

    fn with_words(words: Vec<String>, lowercase: bool) -> Self {
        let index = words
            .iter()
            .enumerate()
            .map(|(i, w)| (w.clone(), i as u32))
            .collect();
        Self {
            words,
            index,
            lowercase,
        }
    }

    /// Reads a tokenizer saved with [`save`](Self::save).
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let tok: Self = load_json(path.as_ref(), "WordTokenizer", |t: &Self| {
            if t.words.len() < 4 || t.words[..4] != WORD_SPECIALS {
                return Err(format!("the vocabulary must start with {WORD_SPECIALS:?}"));
            }
            Ok(())
        })?;
        Ok(Self::with_words(tok.words, tok.lowercase))
    }

    /// Writes the tokenizer as JSON (atomically).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        save_json(path.as_ref(), self)
    }
}

impl Tokenizer for WordTokenizer {
    fn encode(&self, text: &str) -> Result<Vec<u32>> {
        Ok(text
            .split_whitespace()
            .map(|w| {
                let w = if self.lowercase {
                    w.to_lowercase()
                } else {
                    w.to_string()
                };
                self.index.get(&w).copied().unwrap_or(1)
            })
            .collect())
    }

    /// Words spelled like a special token (`<pad>`, `<bos>`, ...) become `<unk>`: they are not
    /// in the vocabulary as words.
    fn encode_literal(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = self.encode(text)?;
        ids.iter_mut()
            .filter(|id| **id != 1 && **id < 4)
            .for_each(|id| *id = 1);
        Ok(ids)
    }

    fn decode(&self, ids: &[u32]) -> Result<String> {
        check_ids(ids, self.vocab_size())?;
        let words: Vec<&str> = ids
            .iter()
            .filter(|&&id| id == 1 || id >= 4)
            .map(|&id| self.words[id as usize].as_str())
            .collect();
        Ok(words.join(" "))
    }

    fn vocab_size(&self) -> usize {
        self.words.len()
    }

    fn special_tokens(&self) -> SpecialTokens {
        SpecialTokens {
            pad: Some(0),
            unk: Some(1),
            bos: Some(2),
            eos: Some(3),
        }
    }

    fn id_to_token(&self, id: u32) -> Option<String> {
        self.words.get(id as usize).cloned()
    }
}
