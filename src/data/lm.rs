//! Token batches for language modelling.

use std::sync::Arc;

use super::{Batches, SplitMix64};
use crate::{Error, Result};

/// A `[batch, len]` block of token ids on the host, row-major; a language-model task predicts
/// `ids[:, 1:]` from `ids[:, :-1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenBatch {
    /// `batch · len` ids.
    pub ids: Vec<i64>,
    /// Rows.
    pub batch: usize,
    /// Tokens per row (inputs and targets overlap: `len - 1` predictions per row).
    pub len: usize,
    /// Per row: whether state carried from the previous batch must be reset before this one (the
    /// first batch of an epoch, or a document boundary since the previous window). Empty for
    /// sources without carried state.
    pub reset: Vec<bool>,
}

impl TokenBatch {
    /// Inputs `ids[:, :-1]` and targets `ids[:, 1:]` as flat vectors of `batch · (len − 1)`; an
    /// [`Error::Data`] unless the batch holds `batch · len` ids with `len >= 2`.
    pub fn inputs_targets(&self) -> Result<(Vec<i64>, Vec<i64>)> {
        self.check_block()?;
        let (mut inputs, mut targets) = (Vec::new(), Vec::new());
        for row in self.ids.chunks(self.len) {
            inputs.extend_from_slice(&row[..self.len - 1]);
            targets.extend_from_slice(&row[1..]);
        }
        Ok((inputs, targets))
    }
}

/// How [`LmWindows`] and [`LmStreams`] cut a corpus: `batch_size` rows of `seq_len` tokens to
/// predict. Named fields, since two bare `usize`s in either order would compile.
///
/// ```
/// use ember_lm::data::{LmShape, LmWindows};
/// let windows = LmWindows::new((0..1000).collect::<Vec<i64>>(), LmShape { batch_size: 12, seq_len: 64 })?;
/// # Ok::<(), ember_lm::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LmShape {
    /// Rows per batch: windows ([`LmWindows`]) or parallel streams ([`LmStreams`]).
    pub batch_size: usize,
    /// Positions predicted per row: nanoGPT's `block_size` ([`LmWindows`]; a row holds
    /// `seq_len + 1` tokens), or the truncated-BPTT length `bptt` ([`LmStreams`]).
    pub seq_len: usize,
}

/// Random windows of `block_size + 1` tokens (nanoGPT's `get_batch`): each batch draws
/// `batch_size` start offsets uniformly from the corpus, seeded by `(seed, epoch, index)`.
#[derive(Debug, Clone)]
pub struct LmWindows {
    tokens: Arc<[i64]>,
    block_size: usize,
    batch_size: usize,
    batches: usize,
}

impl LmWindows {
    /// Windows of `shape.seq_len + 1` tokens over `tokens`, `shape.batch_size` per batch; an
    /// epoch defaults to as many batches as cover the corpus once.
    pub fn new(tokens: impl Into<Arc<[i64]>>, shape: LmShape) -> Result<Self> {
        let LmShape {
            batch_size,
            seq_len: block_size,
        } = shape;
        let tokens = tokens.into();
        if block_size == 0 || batch_size == 0 {
            return Err(Error::Data(format!(
                "LmWindows: seq_len (block_size) and batch_size must be > 0, found {block_size} and {batch_size}"
            )));
        }
        if tokens.len() < block_size + 1 {
            return Err(Error::Data(format!(
                "LmWindows: the corpus has {} tokens, a window needs seq_len + 1 = {}",
                tokens.len(),
                block_size + 1
            )));
        }
        let batches = (tokens.len() / (block_size * batch_size)).max(1);
        Ok(Self {
            tokens,
            block_size,
            batch_size,
            batches,
        })
    }

    /// Sets the number of batches per epoch (at least 1).
    pub fn with_batches_per_epoch(mut self, n: usize) -> Self {
        self.batches = n.max(1);
        self
    }
}

impl Batches<TokenBatch> for LmWindows {
    fn num_batches(&self) -> usize {
        self.batches
    }

    fn get(&self, epoch: u64, index: usize, seed: u64) -> Result<TokenBatch> {
        let mut rng = SplitMix64::derive(seed, &[epoch, index as u64]);
        let len = self.block_size + 1;
        let starts = (self.tokens.len() - len + 1) as u64;
        let mut ids = Vec::with_capacity(self.batch_size * len);
        for _ in 0..self.batch_size {
            let s = rng.below(starts) as usize;
            ids.extend_from_slice(&self.tokens[s..s + len]);
        }
        Ok(TokenBatch {
            ids,
            batch: self.batch_size,
            len,
            reset: Vec::new(),
        })
    }
}

/// The corpus cut into `batch_size` contiguous streams, read `bptt` tokens at a time, for truncated
/// backpropagation through time: row `r` of batch `i + 1` continues row `r` of batch `i`, so a
/// recurrent model carries its (detached) state from one batch to the next.
///
/// The last batch of an epoch may be shorter. `reset` is set on every row of batch 0 and, when
/// document starts are given, on a row whose incoming state was computed on an earlier document.
#[derive(Debug, Clone)]
pub struct LmStreams {
    tokens: Arc<[i64]>,
    batch_size: usize,
    bptt: usize,
    stream_len: usize,
    doc_starts: Vec<usize>,
}

impl LmStreams {
    /// `shape.batch_size` streams over `tokens`, read `shape.seq_len` (bptt) tokens at a time
    /// (the tail that does not fill a stream is dropped, as in PyTorch's word-language-model
    /// example).
    pub fn new(tokens: impl Into<Arc<[i64]>>, shape: LmShape) -> Result<Self> {
        let LmShape {
            batch_size,
            seq_len: bptt,
        } = shape;
        let tokens = tokens.into();
        if batch_size == 0 || bptt == 0 {
            return Err(Error::Data(format!(
                "LmStreams: batch_size and seq_len (bptt) must be > 0, found {batch_size} and {bptt}"
            )));
        }
        let stream_len = tokens.len() / batch_size;
        if stream_len < 2 {
            return Err(Error::Data(format!(
                "LmStreams: {} tokens cannot fill {batch_size} streams of at least 2 tokens",
                tokens.len()
            )));
        }
        Ok(Self {
            tokens,
            batch_size,
            bptt,
            stream_len,
            doc_starts: Vec::new(),
        })
    }

    /// Positions in the corpus where documents start; state is reset across them.
    pub fn with_document_starts(mut self, mut starts: Vec<usize>) -> Self {
        starts.sort_unstable();
        self.doc_starts = starts;
        self
    }

    fn crosses_document(&self, from: usize, to: usize) -> bool {
        // A document starting in (from, to]: the state entering position `to` saw another one.
        let i = self.doc_starts.partition_point(|&d| d <= from);
        self.doc_starts.get(i).is_some_and(|&d| d <= to)
    }
}

impl Batches<TokenBatch> for LmStreams {
    fn num_batches(&self) -> usize {
        (self.stream_len - 1).div_ceil(self.bptt)
    }

    fn get(&self, _epoch: u64, index: usize, _seed: u64) -> Result<TokenBatch> {
        let n = self.num_batches();
        if index >= n {
            return Err(Error::Data(format!(
                "LmStreams: batch {index} of an epoch of {n}"
            )));
        }
        let start = index * self.bptt;
        let len = self.bptt.min(self.stream_len - 1 - start) + 1;
        let mut ids = Vec::with_capacity(self.batch_size * len);
        let mut reset = Vec::with_capacity(self.batch_size);
        for r in 0..self.batch_size {
            let base = r * self.stream_len;
            ids.extend_from_slice(&self.tokens[base + start..base + start + len]);
            let prev = base + start.saturating_sub(self.bptt);
            reset.push(index == 0 || self.crosses_document(prev, base + start));
        }
        Ok(TokenBatch {
            ids,
            batch: self.batch_size,
            len,
            reset,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_continue_row_by_row_and_cover_the_corpus() {
        let tokens: Vec<i64> = (0..23).collect();
        let s = LmStreams::new(
            tokens,
            LmShape {
                batch_size: 2,
                seq_len: 4,
            },
        )
        .unwrap();
        // Two streams of 11: 0..11 and 11..22 (token 22 dropped); 10 targets each → 3 batches.
        assert_eq!(s.num_batches(), 3);
        let b0 = s.get(0, 0, 0).unwrap();
        assert_eq!((b0.batch, b0.len), (2, 5));
        assert_eq!(b0.ids, vec![0, 1, 2, 3, 4, 11, 12, 13, 14, 15]);
        assert_eq!(b0.reset, vec![true, true]);
        let b1 = s.get(0, 1, 0).unwrap();
        assert_eq!(b1.ids, vec![4, 5, 6, 7, 8, 15, 16, 17, 18, 19]);
        assert_eq!(b1.reset, vec![false, false]);
        let b2 = s.get(0, 2, 0).unwrap();
        assert_eq!((b2.len, b2.ids.clone()), (3, vec![8, 9, 10, 19, 20, 21]));
        assert!(s.get(0, 3, 0).is_err());
        let (x, y) = b2.inputs_targets().unwrap();
        assert_eq!((x, y), (vec![8, 9, 19, 20], vec![9, 10, 20, 21]));
        // A document starting at 17 (inside stream 1's second window) resets row 1 at batch 2.
        let s = s.with_document_starts(vec![17]);
        assert_eq!(s.get(0, 1, 0).unwrap().reset, vec![false, false]);
        assert_eq!(s.get(0, 2, 0).unwrap().reset, vec![false, true]);
    }

    #[test]
    fn windows_are_a_function_of_seed_epoch_and_index() {
        let tokens: Vec<i64> = (0..100).collect();
        let w = LmWindows::new(
            tokens,
            LmShape {
                batch_size: 3,
                seq_len: 8,
            },
        )
        .unwrap();
        let a = w.get(1, 2, 9).unwrap();
        assert_eq!(a, w.get(1, 2, 9).unwrap());
        assert_ne!(a, w.get(2, 2, 9).unwrap());
        for row in a.ids.chunks(9) {
            assert!(row.windows(2).all(|p| p[1] == p[0] + 1), "contiguous windows");
        }
        assert!(
            LmWindows::new(
                vec![1, 2, 3],
                LmShape {
                    batch_size: 1,
                    seq_len: 8
                }
            )
            .is_err()
        );
    }
}
