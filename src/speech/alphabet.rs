//! [`CharAlphabet`]: the output classes of a character CTC model, the blank first.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Characters as CTC classes: class 0 is the blank, class `i + 1` the `i`-th character.
///
/// Transcripts are encoded character by character; a character outside the alphabet is an
/// [`Error::Data`] naming it and where it is, never dropped, since a silently shortened target
/// trains the model to skip what was said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CharAlphabet {
    chars: Vec<char>,
}

impl CharAlphabet {
    /// The blank class.
    pub const BLANK: usize = 0;

    /// An alphabet of `chars` in the order given. An [`Error::Config`] for an empty list or a
    /// character given twice.
    pub fn new(chars: impl IntoIterator<Item = char>) -> Result<Self> {
        let chars: Vec<char> = chars.into_iter().collect();
        let fail = |message: String| Error::Config {
            module: "CharAlphabet",
            message,
        };
        if chars.is_empty() {
            return Err(fail(
                "an alphabet needs at least one character, found none".into(),
            ));
        }
        for (i, c) in chars.iter().enumerate() {
            if chars[..i].contains(c) {
                return Err(fail(format!("character {c:?} is given twice")));
            }
        }
        Ok(Self { chars })
    }

    /// The characters of `transcripts`, sorted (a space included if any transcript has one).
    pub fn from_transcripts<'a>(transcripts: impl IntoIterator<Item = &'a str>) -> Result<Self> {
        let mut chars: Vec<char> = transcripts.into_iter().flat_map(str::chars).collect();
        chars.sort_unstable();
        chars.dedup();
        Self::new(chars)
    }

    /// Classes of the model's output: the characters and the blank.
    pub fn classes(&self) -> usize {
        self.chars.len() + 1
    }

    /// The characters, in class order (class `i + 1` is `chars()[i]`).
    pub fn chars(&self) -> &[char] {
        &self.chars
    }

    /// The labels of `text` (never the blank). An [`Error::Data`] names the first character
    /// outside the alphabet, its position and the text; an empty text is an error too, since CTC
    /// needs a label to align.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        if text.is_empty() {
            return Err(Error::Data(
                "CharAlphabet: an empty transcript has nothing to learn".into(),
            ));
        }
        text.chars()
            .enumerate()
            .map(|(i, c)| {
                self.chars
                    .iter()
                    .position(|&a| a == c)
                    .map(|p| p as u32 + 1)
                    .ok_or_else(|| {
                        Error::Data(format!(
                            "CharAlphabet: character {c:?} at position {i} of {text:?} is not in the alphabet {:?}",
                            self.chars.iter().collect::<String>()
                        ))
                    })
            })
            .collect()
    }

    /// The text of `labels`; the blank and labels outside the alphabet give nothing (decoders
    /// never emit either).
    pub fn decode(&self, labels: &[u32]) -> String {
        labels
            .iter()
            .filter_map(|&l| (l as usize).checked_sub(1).and_then(|i| self.chars.get(i)))
            .collect()
    }

    /// Writes the alphabet as JSON (`{"chars": [...]}`).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let json = serde_json::to_string_pretty(self).map_err(|e| Error::Save {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        std::fs::write(path, json).map_err(|e| Error::Save {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// Reads an alphabet [`save`](Self::save) wrote; a file that does not parse or holds an
    /// invalid alphabet is an [`Error::Load`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let fail = |message: String| Error::Load {
            path: path.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let raw: Self = serde_json::from_str(&text).map_err(|e| fail(e.to_string()))?;
        Self::new(raw.chars).map_err(|e| fail(e.to_string()))
    }
}
