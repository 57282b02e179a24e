//! [`KvCache`]: keys and values of past positions for incremental decoding.

use burn::tensor::{ElementConversion, Int, Tensor};

use crate::{Backend, Error, Result};

/// The keys and values one attention layer has seen, preallocated up to `max_len` positions, so
/// that decoding a new token attends over the cached prefix instead of recomputing it: O(N)
/// attention work per step.
///
/// # Shapes
/// Keys and values are stored `[batch, n_kv_heads, max_len, d_head]`; [`KvCache::len`] positions
/// are filled. The position offset of the next token is `len()` (for learned, sinusoidal and
/// rotary positions).
#[derive(Clone, Debug)]
pub struct KvCache<B: Backend> {
    keys: Tensor<B, 4>,
    values: Tensor<B, 4>,
    len: usize,
}

impl<B: Backend> KvCache<B> {
    /// An empty cache for `batch` sequences of at most `max_len` positions.
    pub fn new(batch: usize, n_kv_heads: usize, d_head: usize, max_len: usize, device: &B::Device) -> Self {
        let shape = [batch, n_kv_heads, max_len, d_head];
        Self {
            keys: Tensor::zeros(shape, device),
            values: Tensor::zeros(shape, device),
            len: 0,
        }
    }

    /// Number of cached positions.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no position is cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Maximum number of positions.
    pub fn capacity(&self) -> usize {
        self.keys.dims()[2]
    }

    /// Forgets every cached position (the buffers are kept).
    pub fn reset(&mut self) {
        self.len = 0;
    }

    /// Reorders the batch: sequence `i` of the result is sequence `indices[i]` of this cache
    /// (beam search keeps its best beams this way; repeating an index copies a sequence, so one
    /// prompt's cache can become `num_beams` of them). Every index must be `< batch`.
    pub fn reorder(&mut self, indices: Tensor<B, 1, Int>) -> Result<()> {
        Self::reorder_all(std::slice::from_mut(self), indices)
    }

    /// [`reorder`](Self::reorder) for the caches of every layer of one model (same batch): the
    /// indices are checked once — two values read back from the device — not once per layer, and
    /// on a bad index no cache is changed.
    pub(crate) fn reorder_all(caches: &mut [Self], indices: Tensor<B, 1, Int>) -> Result<()> {
        let Some(first) = caches.first() else {
            return Ok(());
        };
        let batch = first.keys.dims()[0];
        let n = indices.dims()[0];
        let (lo, hi): (i64, i64) = if n == 0 {
            (-1, -1)
        } else {
            (
                indices.clone().min().into_scalar().elem(),
                indices.clone().max().into_scalar().elem(),
            )
        };
        if n == 0 {
            return Err(Error::Data(
                "KvCache::reorder: no indices (at least one row must be kept)".into(),
            ));
        }
        if lo < 0 || hi >= batch as i64 {
            return Err(Error::Index {
                what: "KvCache::reorder".into(),
                index: if lo < 0 { lo } else { hi },
                len: batch,
            });
        }
        for cache in caches {
            cache.keys = cache.keys.clone().select(0, indices.clone());
            cache.values = cache.values.clone().select(0, indices.clone());
        }
        Ok(())
    }

    /// Appends `keys`/`values` of new positions (`[batch, n_kv_heads, new, d_head]`) and returns
    /// every cached position's keys and values (`[batch, n_kv_heads, len, d_head]`), or
    /// [`Error::CacheFull`] when they do not fit.
    pub(crate) fn append(
        &mut self,
        keys: Tensor<B, 4>,
        values: Tensor<B, 4>,
    ) -> Result<(Tensor<B, 4>, Tensor<B, 4>)> {
        let [batch, heads, cap, d] = self.keys.dims();
        let new = keys.dims()[2];
        if keys.dims() != [batch, heads, new, d] || values.dims() != keys.dims() {
            return Err(Error::shape(
                "KvCache keys/values",
                format!("[{batch}, {heads}, new, {d}]"),
                &keys.dims(),
            ));
        }
        if self.len + new > cap {
            return Err(Error::CacheFull {
                capacity: cap,
                needed: self.len + new,
            });
        }
        let range = [0..batch, 0..heads, self.len..self.len + new, 0..d];
        self.keys = self.keys.clone().slice_assign(range.clone(), keys);
        self.values = self.values.clone().slice_assign(range, values);
        self.len += new;
        let filled = [0..batch, 0..heads, 0..self.len, 0..d];
        Ok((
            self.keys.clone().slice(filled.clone()),
            self.values.clone().slice(filled),
        ))
    }
}
