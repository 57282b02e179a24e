//! Batches for sequence classification: padded ids, lengths and labels.

use super::order::{batches, pad};
use super::{Batches, Tokenizer};
use crate::{Error, Result};

/// A padded batch of token sequences with their class labels.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassBatch {
    /// `[batch, len]` ids, row-major, padded with the pad id.
    pub ids: Vec<i64>,
    /// Rows.
    pub batch: usize,
    /// The longest sequence in the batch.
    pub len: usize,
    /// The real length of each row (≥ 1).
    pub lengths: Vec<usize>,
    /// The class of each row.
    pub labels: Vec<i64>,
}

impl ClassBatch {
    /// `[batch, len]` booleans, `true` at padding (burn's polarity, as everywhere in ember-lm).
    pub fn padding_mask(&self) -> Vec<bool> {
        self.lengths
            .iter()
            .flat_map(|&l| (0..self.len).map(move |t| t >= l))
            .collect()
    }
}

/// Labelled sequences served as [`ClassBatch`]es: shuffled per epoch, optionally bucketed by
/// length, truncated to `max_len`.
#[derive(Debug, Clone)]
pub struct ClassificationBatches {
    examples: Vec<(Vec<i64>, usize)>,
    batch_size: usize,
    pad_id: i64,
    shuffle: bool,
    bucket: bool,
}

impl ClassificationBatches {
    /// Tokenized examples `(ids, class)`. A class `>= num_classes` or an empty sequence is an
    /// error naming the example.
    pub fn new(
        examples: Vec<(Vec<u32>, usize)>,
        num_classes: usize,
        batch_size: usize,
        pad_id: u32,
    ) -> Result<Self> {
        if examples.is_empty() || batch_size == 0 {
            return Err(Error::Data(format!(
                "ClassificationBatches: {} examples, batch size {batch_size}; both must be > 0",
                examples.len()
            )));
        }
        for (i, (ids, class)) in examples.iter().enumerate() {
            if *class >= num_classes {
                return Err(Error::Data(format!(
                    "example {i}: class {class} is outside 0..{num_classes}"
                )));
            }
            if ids.is_empty() {
                return Err(Error::Data(format!("example {i} has no tokens")));
            }
        }
        Ok(Self {
            examples: examples
                .into_iter()
                .map(|(ids, c)| (ids.into_iter().map(i64::from).collect(), c))
                .collect(),
            batch_size,
            pad_id: pad_id as i64,
            shuffle: true,
            bucket: false,
        })
    }

    /// Tokenizes `(text, class)` pairs with `tokenizer` (whose pad token, or 0, pads), truncating
    /// each to `max_len` tokens.
    pub fn from_texts(
        tokenizer: &dyn Tokenizer,
        texts: &[(String, usize)],
        num_classes: usize,
        batch_size: usize,
        max_len: usize,
    ) -> Result<Self> {
        let examples = texts
            .iter()
            .map(|(t, c)| {
                let mut ids = tokenizer.encode(t)?;
                ids.truncate(max_len.max(1));
                Ok((ids, *c))
            })
            .collect::<Result<Vec<_>>>()?;
        let pad = tokenizer.special_tokens().pad.unwrap_or(0);
        Self::new(examples, num_classes, batch_size, pad)
    }

    /// Shuffle each epoch (default true).
    pub fn with_shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }

    /// Group examples of similar lengths (default false).
    pub fn with_bucketing(mut self, bucket: bool) -> Self {
        self.bucket = bucket;
        self
    }

    /// The examples.
    pub fn len(&self) -> usize {
        self.examples.len()
    }

    /// Never true (construction refuses an empty set).
    pub fn is_empty(&self) -> bool {
        self.examples.is_empty()
    }

    fn lengths(&self) -> Vec<usize> {
        self.examples.iter().map(|(ids, _)| ids.len()).collect()
    }
}

impl Batches<ClassBatch> for ClassificationBatches {
    fn num_batches(&self) -> usize {
        self.examples.len().div_ceil(self.batch_size)
    }

    fn get(&self, epoch: u64, index: usize, seed: u64) -> Result<ClassBatch> {
        let order = batches(
            &self.lengths(),
            self.batch_size,
            self.shuffle,
            self.bucket,
            seed,
            epoch,
        );
        let rows = order
            .get(index)
            .ok_or_else(|| Error::Data(format!("batch {index} of an epoch of {}", order.len())))?;
        let seqs: Vec<&[i64]> = rows.iter().map(|&i| self.examples[i].0.as_slice()).collect();
        let (ids, len, lengths) = pad(&seqs, self.pad_id);
        Ok(ClassBatch {
            ids,
            batch: rows.len(),
            len,
            lengths,
            labels: rows.iter().map(|&i| self.examples[i].1 as i64).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_batches_cover_every_example_once_per_epoch() {
        let examples: Vec<(Vec<u32>, usize)> = (0..23).map(|i| (vec![1; 1 + i % 7], i % 2)).collect();
        let plain = ClassificationBatches::new(examples.clone(), 2, 5, 0).unwrap();
        let data = plain.clone().with_bucketing(true);
        let padding_of = |d: &ClassificationBatches| -> usize {
            (0..5)
                .map(|i| {
                    d.get(3, i, 9)
                        .unwrap()
                        .padding_mask()
                        .iter()
                        .filter(|&&m| m)
                        .count()
                })
                .sum()
        };
        assert_eq!(data.num_batches(), 5);
        let mut seen = 0;
        let mut padding = 0;
        for i in 0..5 {
            let b = data.get(3, i, 9).unwrap();
            seen += b.batch;
            padding += b.padding_mask().iter().filter(|&&m| m).count();
            for (row, &l) in b.lengths.iter().enumerate() {
                assert!(b.ids[row * b.len..row * b.len + l].iter().all(|&t| t == 1));
            }
        }
        assert_eq!(seen, 23);
        assert_eq!(padding, padding_of(&data));
        assert!(
            2 * padding < padding_of(&plain),
            "bucketing pads less ({padding} vs {})",
            padding_of(&plain)
        );
        assert_ne!(
            data.get(3, 0, 9).unwrap(),
            data.get(4, 0, 9).unwrap(),
            "reshuffled per epoch"
        );
        let err = ClassificationBatches::new(vec![(vec![1], 2)], 2, 1, 0).unwrap_err();
        assert!(err.to_string().contains("class 2"), "{err}");
    }
}
