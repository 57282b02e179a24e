//! [`EncodedBatch`]: token ids with their attention mask and token types, on the host, as a
//! Hugging Face tokenizer returns them (`input_ids`, `attention_mask`, `token_type_ids`) and as
//! the BERT-family encoders read them.

use crate::{Error, Result};

/// A padded batch of encoded sequences, row after row: `batch × seq_len` values each.
///
/// `attention_mask` is 1 at tokens and 0 at padding (either side); `token_type_ids` says which
/// segment of a pair each token belongs to (all 0 for single sequences).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedBatch {
    /// Rows.
    pub batch: usize,
    /// Positions per row (padding included).
    pub seq_len: usize,
    /// Token ids, `[batch, seq_len]` row-major.
    pub input_ids: Vec<u32>,
    /// 1 at tokens, 0 at padding, `[batch, seq_len]`.
    pub attention_mask: Vec<u32>,
    /// Segment of each position, `[batch, seq_len]`.
    pub token_type_ids: Vec<u32>,
}

impl EncodedBatch {
    /// Sequences of any lengths (none empty), padded on the right with `pad_id` to the longest;
    /// token types all 0.
    pub fn from_sequences(sequences: &[Vec<u32>], pad_id: u32) -> Result<Self> {
        if sequences.is_empty() {
            return Err(Error::Data("EncodedBatch: no sequences".into()));
        }
        if let Some(r) = sequences.iter().position(Vec::is_empty) {
            return Err(Error::Data(format!(
                "EncodedBatch: sequence {r} is empty (every sequence needs at least one token)"
            )));
        }
        let seq_len = sequences.iter().map(Vec::len).max().unwrap_or(0);
        let mut input_ids = Vec::with_capacity(sequences.len() * seq_len);
        let mut attention_mask = Vec::with_capacity(sequences.len() * seq_len);
        for s in sequences {
            input_ids.extend(
                s.iter()
                    .copied()
                    .chain(std::iter::repeat_n(pad_id, seq_len - s.len())),
            );
            attention_mask
                .extend(std::iter::repeat_n(1, s.len()).chain(std::iter::repeat_n(0, seq_len - s.len())));
        }
        Ok(Self {
            batch: sequences.len(),
            seq_len,
            token_type_ids: vec![0; input_ids.len()],
            input_ids,
            attention_mask,
        })
    }

    /// Checks that every field holds `batch × seq_len` values, the mask only 0 and 1, and no
    /// row is all padding (an [`Error::Data`] naming the field).
    pub fn validate(&self) -> Result<()> {
        let n = self.batch * self.seq_len;
        if n == 0 {
            return Err(Error::Data(format!(
                "EncodedBatch: batch ({}) and seq_len ({}) must be positive",
                self.batch, self.seq_len
            )));
        }
        for (name, len) in [
            ("input_ids", self.input_ids.len()),
            ("attention_mask", self.attention_mask.len()),
            ("token_type_ids", self.token_type_ids.len()),
        ] {
            if len != n {
                return Err(Error::Data(format!(
                    "EncodedBatch {name}: expected batch × seq_len = {} × {} = {n} values, found {len}",
                    self.batch, self.seq_len
                )));
            }
        }
        if let Some(bad) = self.attention_mask.iter().find(|&&m| m > 1) {
            return Err(Error::Data(format!(
                "EncodedBatch attention_mask: expected 0 (padding) or 1 (token), found {bad}"
            )));
        }
        if let Some(r) = self
            .attention_mask
            .chunks(self.seq_len)
            .position(|row| row.iter().all(|&m| m == 0))
        {
            return Err(Error::Data(format!(
                "EncodedBatch attention_mask: row {r} is all padding (every row needs a token)"
            )));
        }
        Ok(())
    }

    /// Row `r`'s tokens (the positions its mask marks), in order.
    pub fn tokens(&self, r: usize) -> Vec<u32> {
        let range = r * self.seq_len..(r + 1) * self.seq_len;
        self.input_ids[range.clone()]
            .iter()
            .zip(&self.attention_mask[range])
            .filter(|&(_, &m)| m == 1)
            .map(|(&t, _)| t)
            .collect()
    }
}
