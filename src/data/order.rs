//! The order of examples in an epoch: shuffled by `(seed, epoch)`, optionally bucketed by length.

use super::SplitMix64;

/// Splits examples `0..lengths.len()` into batches of `batch_size` for `epoch`.
///
/// Shuffled: a permutation drawn from `(seed, epoch)`. Bucketed: within windows of 50 batches of
/// the (shuffled) order, examples are sorted by length so that each batch holds similar lengths
/// and pads little, then the batches are shuffled again (torchtext's `BucketIterator`).
pub(crate) fn batches(
    lengths: &[usize],
    batch_size: usize,
    shuffle: bool,
    bucket: bool,
    seed: u64,
    epoch: u64,
) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    let mut rng = SplitMix64::derive(seed, &[0xB0, epoch]);
    if shuffle {
        rng.shuffle(&mut order);
    }
    if bucket {
        for window in order.chunks_mut(batch_size * 50) {
            window.sort_by_key(|&i| lengths[i]);
        }
    }
    let mut out: Vec<Vec<usize>> = order.chunks(batch_size).map(<[usize]>::to_vec).collect();
    if bucket && shuffle {
        rng.shuffle(&mut out);
    }
    out
}

/// Pads `rows` to the longest with `pad`: `(flat ids [rows, len], len, lengths)`.
pub(crate) fn pad(rows: &[&[i64]], pad: i64) -> (Vec<i64>, usize, Vec<usize>) {
    let len = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let mut ids = Vec::with_capacity(rows.len() * len);
    for r in rows {
        ids.extend_from_slice(r);
        ids.extend(std::iter::repeat_n(pad, len - r.len()));
    }
    (ids, len, rows.iter().map(|r| r.len()).collect())
}
