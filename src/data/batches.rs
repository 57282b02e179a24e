//! [`Batches`]: what the trainer reads.

/// A source of batches addressed by position, so that training can stop and resume exactly.
///
/// An epoch is `num_batches()` batches. A source that shuffles derives its order from `seed` and
/// `epoch` only (see [`SplitMix64::derive`](super::SplitMix64::derive)), so the batch at
/// `(epoch, index)` is the same in a straight run and in a resumed one; the trainer saves that
/// position in its checkpoints.
pub trait Batches<T> {
    /// Batches in one epoch.
    fn num_batches(&self) -> usize;

    /// Batch `index` (`< num_batches()`) of `epoch`.
    fn get(&self, epoch: u64, index: usize, seed: u64) -> crate::Result<T>;
}
