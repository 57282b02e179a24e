//! Batches for sequence-to-sequence training: padded sources, and targets with BOS/EOS for
//! teacher forcing.

use super::order::{batches, pad};
use super::{Batches, Tokenizer};
use crate::{Error, Result};

/// A padded batch of `(source, target)` pairs.
///
/// The decoder reads `tgt_in = [bos, y₁ … yₙ]` and is trained to predict `tgt_out = [y₁ … yₙ, eos]`
/// (teacher forcing); both are `[batch, tgt_len]`, padded.
#[derive(Debug, Clone, PartialEq)]
pub struct PairBatch {
    /// `[batch, src_len]` source ids, padded.
    pub src: Vec<i64>,
    /// The longest source.
    pub src_len: usize,
    /// Real source lengths.
    pub src_lengths: Vec<usize>,
    /// `[batch, tgt_len]` decoder inputs `[bos, y…]`, padded.
    pub tgt_in: Vec<i64>,
    /// `[batch, tgt_len]` targets `[y…, eos]`, padded.
    pub tgt_out: Vec<i64>,
    /// The longest target (+1 for BOS/EOS).
    pub tgt_len: usize,
    /// Real target lengths (+1).
    pub tgt_lengths: Vec<usize>,
    /// Rows.
    pub batch: usize,
}

/// `(source, target)` id pairs served as [`PairBatch`]es.
#[derive(Debug, Clone)]
pub struct PairBatches {
    pairs: Vec<(Vec<i64>, Vec<i64>)>,
    batch_size: usize,
    pad: i64,
    bos: i64,
    eos: i64,
    shuffle: bool,
    bucket: bool,
}

impl PairBatches {
    /// Tokenized pairs; `pad`, `bos`, `eos` are the target side's special ids (the source is padded
    /// with `pad` too). An empty side is an error naming the pair.
    pub fn new(
        pairs: Vec<(Vec<u32>, Vec<u32>)>,
        batch_size: usize,
        pad: u32,
        bos: u32,
        eos: u32,
    ) -> Result<Self> {
        if pairs.is_empty() || batch_size == 0 {
            return Err(Error::Data(format!(
                "PairBatches: {} pairs, batch size {batch_size}; both must be > 0",
                pairs.len()
            )));
        }
        if let Some(i) = pairs.iter().position(|(s, t)| s.is_empty() || t.is_empty()) {
            return Err(Error::Data(format!("pair {i} has an empty source or target")));
        }
        let conv = |v: Vec<u32>| v.into_iter().map(i64::from).collect();
        Ok(Self {
            pairs: pairs.into_iter().map(|(s, t)| (conv(s), conv(t))).collect(),
            batch_size,
            pad: pad as i64,
            bos: bos as i64,
            eos: eos as i64,
            shuffle: true,
            bucket: false,
        })
    }

    /// Tokenizes text pairs with one tokenizer per side (the target's special tokens are used;
    /// a missing BOS/EOS/pad is a configuration error), truncating each side to `max_len`.
    pub fn from_texts(
        src_tokenizer: &dyn Tokenizer,
        tgt_tokenizer: &dyn Tokenizer,
        texts: &[(String, String)],
        batch_size: usize,
        max_len: usize,
    ) -> Result<Self> {
        let sp = tgt_tokenizer.special_tokens();
        let (Some(pad), Some(bos), Some(eos)) = (sp.pad, sp.bos, sp.eos) else {
            return Err(Error::Config {
                module: "PairBatches",
                message: "the target tokenizer needs pad, bos and eos tokens".into(),
            });
        };
        let pairs = texts
            .iter()
            .map(|(s, t)| {
                let mut s = src_tokenizer.encode(s)?;
                let mut t = tgt_tokenizer.encode(t)?;
                s.truncate(max_len.max(1));
                t.truncate(max_len.max(1));
                Ok((s, t))
            })
            .collect::<Result<Vec<_>>>()?;
        Self::new(pairs, batch_size, pad, bos, eos)
    }

    /// Shuffle each epoch (default true).
    pub fn with_shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }

    /// Group pairs of similar source lengths (default false).
    pub fn with_bucketing(mut self, bucket: bool) -> Self {
        self.bucket = bucket;
        self
    }

    /// The pairs, as ids.
    pub fn pairs(&self) -> &[(Vec<i64>, Vec<i64>)] {
        &self.pairs
    }
}

impl Batches<PairBatch> for PairBatches {
    fn num_batches(&self) -> usize {
        self.pairs.len().div_ceil(self.batch_size)
    }

    fn get(&self, epoch: u64, index: usize, seed: u64) -> Result<PairBatch> {
        let lengths: Vec<usize> = self.pairs.iter().map(|(s, _)| s.len()).collect();
        let order = batches(&lengths, self.batch_size, self.shuffle, self.bucket, seed, epoch);
        let rows = order
            .get(index)
            .ok_or_else(|| Error::Data(format!("batch {index} of an epoch of {}", order.len())))?;
        let srcs: Vec<&[i64]> = rows.iter().map(|&i| self.pairs[i].0.as_slice()).collect();
        let (src, src_len, src_lengths) = pad(&srcs, self.pad);
        let ins: Vec<Vec<i64>> = rows
            .iter()
            .map(|&i| {
                std::iter::once(self.bos)
                    .chain(self.pairs[i].1.iter().copied())
                    .collect()
            })
            .collect();
        let outs: Vec<Vec<i64>> = rows
            .iter()
            .map(|&i| {
                self.pairs[i]
                    .1
                    .iter()
                    .copied()
                    .chain(std::iter::once(self.eos))
                    .collect()
            })
            .collect();
        let (tgt_in, tgt_len, tgt_lengths) =
            pad(&ins.iter().map(Vec::as_slice).collect::<Vec<_>>(), self.pad);
        let (tgt_out, _, _) = pad(&outs.iter().map(Vec::as_slice).collect::<Vec<_>>(), self.pad);
        Ok(PairBatch {
            src,
            src_len,
            src_lengths,
            tgt_in,
            tgt_out,
            tgt_len,
            tgt_lengths,
            batch: rows.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_get_bos_eos_and_padding() {
        let p = PairBatches::new(
            vec![(vec![5, 6, 7], vec![8]), (vec![9], vec![10, 11])],
            2,
            0,
            1,
            2,
        )
        .unwrap()
        .with_shuffle(false);
        let b = p.get(0, 0, 0).unwrap();
        assert_eq!(
            (b.src, b.src_len, b.src_lengths),
            (vec![5, 6, 7, 9, 0, 0], 3, vec![3, 1])
        );
        assert_eq!(b.tgt_in, vec![1, 8, 0, 1, 10, 11]);
        assert_eq!(b.tgt_out, vec![8, 2, 0, 10, 11, 2]);
        assert_eq!((b.tgt_len, b.tgt_lengths), (3, vec![2, 3]));
        assert!(PairBatches::new(vec![(vec![], vec![1])], 1, 0, 1, 2).is_err());
    }
}
