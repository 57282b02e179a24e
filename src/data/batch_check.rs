//! Checks of a batch against the model it is for, on the host, before any tensor is built.
//!
//! A batch can come from a user's own [`Batches`](super::Batches) source, so every task checks
//! the batch it is given: sizes that agree, lengths within the padded length, ids inside the
//! vocabulary and labels inside the classes. A bad batch is an `Err` naming the field and the
//! first offending row, instead of a panic in a reshape or an embedding lookup.

use super::{ClassBatch, PairBatch, TokenBatch};
use crate::{Error, Result};

fn batch_err(kind: &str, message: String) -> Error {
    Error::Data(format!("{kind}: {message}"))
}

/// `ids.len() == batch · len` with `batch >= 1` and `len >= min_len`: an [`Error::Shape`] whose
/// `found` is `[batch, len, ids]`.
fn check_block(kind: &str, field: &str, ids: usize, batch: usize, len: usize, min_len: usize) -> Result<()> {
    if batch == 0 || len < min_len || batch.checked_mul(len) != Some(ids) {
        return Err(Error::shape(
            format!("{kind} `{field}` (batch, len, number of ids)"),
            format!(
                "batch · len ids with batch >= 1 and len >= {min_len}; found {ids} ids for batch = {batch}, len = {len}"
            ),
            &[batch, len, ids],
        ));
    }
    Ok(())
}

/// Every id in `0..vocab_size`.
fn check_vocab(ids: &[i64], vocab_size: usize) -> Result<()> {
    match ids.iter().find(|&&id| id < 0 || id as u64 >= vocab_size as u64) {
        Some(&found) => Err(Error::TokenId { found, vocab_size }),
        None => Ok(()),
    }
}

/// One length per row, each in `1..=len`.
fn check_lengths(kind: &str, field: &str, lengths: &[usize], batch: usize, len: usize) -> Result<()> {
    if lengths.len() != batch {
        return Err(batch_err(
            kind,
            format!(
                "`{field}` needs one length per row ({batch}), found {}",
                lengths.len()
            ),
        ));
    }
    if let Some((row, l)) = lengths.iter().enumerate().find(|(_, l)| **l == 0 || **l > len) {
        return Err(batch_err(
            kind,
            format!("`{field}`[{row}] = {l} is outside 1..={len} (the padded length)"),
        ));
    }
    Ok(())
}

impl TokenBatch {
    /// `batch · len` ids with `len >= 2`: the shape alone, which `inputs_targets` needs.
    pub(crate) fn check_block(&self) -> Result<()> {
        check_block("TokenBatch", "ids", self.ids.len(), self.batch, self.len, 2)
    }

    /// Checks the batch for a language model of `vocab_size` tokens: `batch · len` ids with
    /// `len >= 2` (one prediction at least), ids in the vocabulary, and no `reset` flags or one
    /// per row.
    pub fn validate(&self, vocab_size: usize) -> Result<()> {
        self.check_block()?;
        if !self.reset.is_empty() && self.reset.len() != self.batch {
            return Err(batch_err(
                "TokenBatch",
                format!(
                    "`reset` needs one flag per row ({}) or none, found {}",
                    self.batch,
                    self.reset.len()
                ),
            ));
        }
        check_vocab(&self.ids, vocab_size)
    }
}

impl ClassBatch {
    /// Checks the batch for a classifier of `vocab_size` tokens and `num_classes` classes:
    /// `batch · len` ids in the vocabulary, one length in `1..=len` and one label in
    /// `0..num_classes` per row.
    pub fn validate(&self, vocab_size: usize, num_classes: usize) -> Result<()> {
        check_block("ClassBatch", "ids", self.ids.len(), self.batch, self.len, 1)?;
        check_lengths("ClassBatch", "lengths", &self.lengths, self.batch, self.len)?;
        if self.labels.len() != self.batch {
            return Err(batch_err(
                "ClassBatch",
                format!(
                    "`labels` needs one label per row ({}), found {}",
                    self.batch,
                    self.labels.len()
                ),
            ));
        }
        if let Some((row, l)) = self
            .labels
            .iter()
            .enumerate()
            .find(|(_, l)| **l < 0 || **l as u64 >= num_classes as u64)
        {
            return Err(batch_err(
                "ClassBatch",
                format!("`labels`[{row}] = {l} is outside the {num_classes} classes (0..{num_classes})"),
            ));
        }
        check_vocab(&self.ids, vocab_size)
    }
}

impl PairBatch {
    /// Checks the batch for an encoder-decoder with `src_vocab` source and `tgt_vocab` target
    /// tokens: source and target blocks of `batch` rows, lengths within them, ids in each
    /// vocabulary (padding included).
    pub fn validate(&self, src_vocab: usize, tgt_vocab: usize) -> Result<()> {
        check_block("PairBatch", "src", self.src.len(), self.batch, self.src_len, 1)?;
        check_block(
            "PairBatch",
            "tgt_in",
            self.tgt_in.len(),
            self.batch,
            self.tgt_len,
            1,
        )?;
        check_block(
            "PairBatch",
            "tgt_out",
            self.tgt_out.len(),
            self.batch,
            self.tgt_len,
            1,
        )?;
        check_lengths(
            "PairBatch",
            "src_lengths",
            &self.src_lengths,
            self.batch,
            self.src_len,
        )?;
        check_lengths(
            "PairBatch",
            "tgt_lengths",
            &self.tgt_lengths,
            self.batch,
            self.tgt_len,
        )?;
        check_vocab(&self.src, src_vocab)?;
        check_vocab(&self.tgt_in, tgt_vocab)?;
        check_vocab(&self.tgt_out, tgt_vocab)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> TokenBatch {
        TokenBatch {
            ids: vec![0, 1, 2, 3, 4, 5],
            batch: 2,
            len: 3,
            reset: vec![],
        }
    }

    #[test]
    fn token_batches() {
        tokens().validate(6).unwrap();
        assert!(matches!(
            tokens().validate(5),
            Err(Error::TokenId {
                found: 5,
                vocab_size: 5
            })
        ));
        let mut b = tokens();
        b.ids[0] = -1;
        assert!(matches!(b.validate(6), Err(Error::TokenId { found: -1, .. })));
        let b = TokenBatch { len: 0, ..tokens() };
        assert!(b.validate(6).unwrap_err().to_string().contains("len >= 2"));
        let b = TokenBatch {
            reset: vec![true],
            ..tokens()
        };
        assert!(b.validate(6).unwrap_err().to_string().contains("`reset`"));
        let b = TokenBatch { batch: 3, ..tokens() };
        assert!(
            b.validate(6)
                .unwrap_err()
                .to_string()
                .contains("found 6 ids for batch = 3")
        );
    }

    #[test]
    fn class_batches() {
        let ok = ClassBatch {
            ids: vec![1, 2, 0, 3, 0, 0],
            batch: 2,
            len: 3,
            lengths: vec![2, 1],
            labels: vec![0, 1],
        };
        ok.validate(4, 2).unwrap();
        for (labels, row) in [(vec![0, 2], 1), (vec![-1, 0], 0), (vec![5, 0], 0)] {
            let err = ClassBatch { labels, ..ok.clone() }
                .validate(4, 2)
                .unwrap_err()
                .to_string();
            assert!(err.contains(&format!("`labels`[{row}]")), "{err}");
        }
        let err = ClassBatch {
            labels: vec![0],
            ..ok.clone()
        }
        .validate(4, 2)
        .unwrap_err();
        assert!(err.to_string().contains("one label per row"), "{err}");
        let err = ClassBatch {
            lengths: vec![4, 1],
            ..ok.clone()
        }
        .validate(4, 2)
        .unwrap_err();
        assert!(err.to_string().contains("`lengths`[0] = 4"), "{err}");
        let err = ClassBatch {
            ids: vec![1; 5],
            ..ok.clone()
        }
        .validate(4, 2)
        .unwrap_err();
        assert!(err.to_string().contains("found 5 ids"), "{err}");
        assert!(matches!(ok.validate(3, 2), Err(Error::TokenId { found: 3, .. })));
    }

    #[test]
    fn pair_batches() {
        let ok = PairBatch {
            src: vec![3, 4, 5, 0],
            src_len: 2,
            src_lengths: vec![2, 1],
            tgt_in: vec![1, 6, 1, 0],
            tgt_out: vec![6, 2, 2, 0],
            tgt_len: 2,
            tgt_lengths: vec![2, 1],
            batch: 2,
        };
        ok.validate(6, 7).unwrap();
        assert!(matches!(ok.validate(6, 6), Err(Error::TokenId { found: 6, .. })));
        assert!(matches!(ok.validate(5, 7), Err(Error::TokenId { found: 5, .. })));
        let err = PairBatch {
            tgt_lengths: vec![2],
            ..ok.clone()
        }
        .validate(6, 7)
        .unwrap_err();
        assert!(err.to_string().contains("`tgt_lengths`"), "{err}");
        let err = PairBatch {
            tgt_out: vec![1; 3],
            ..ok
        }
        .validate(6, 7)
        .unwrap_err();
        assert!(err.to_string().contains("`tgt_out`"), "{err}");
    }
}
