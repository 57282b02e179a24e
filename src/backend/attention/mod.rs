//! Scaled dot-product attention as one backend operation: `softmax(Q Kᵀ · scale + mask) V`
//! over every head, with causal, key-padding and additive masks, grouped-query heads and dropout
//! on the probabilities.
//!
//! | backend | forward | backward (under `Autodiff`) |
//! |---|---|---|
//! | `NdArray`, `Flex` | tiled CPU kernel with an online softmax: no `[B, H, Tq, Tk]` tensor, one task per (batch, key/value head) | FlashAttention-2's backward: probabilities recomputed per tile from the saved log-sum-exp |
//! | `Wgpu`, any other | [`composed_attention`]: burn's `attention` op (fused on wgpu), or the explicit softmax with dropout | autodiff through the composition |
//!
//! The CPU kernel draws its dropout mask from [`AttentionDropout::seed`]; the composition draws it
//! on the device from the backend's generator (`B::seed` makes it reproducible).

pub(super) mod autodiff;
mod composed;
mod saved;

use burn::tensor::{Bool, Tensor, TensorData};

pub(crate) use composed::masked_softmax;
pub use composed::{forward as composed_attention, forward_dropped as composed_attention_dropped};
pub use saved::backward as saved_attention_backward;

/// Dropout on the attention probabilities, reproducible from `seed`: whether probability
/// `(b, h, i, j)` is kept is a hash of the seed and that index, so the backward pass recomputes
/// the mask instead of storing it, and every backend draws the same mask.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttentionDropout {
    /// Probability of zeroing a weight, in `[0, 1)`; kept weights are scaled by `1 / (1 - prob)`.
    pub prob: f64,
    /// The mask's seed.
    pub seed: u64,
}

impl AttentionDropout {
    /// Whether the weight at flat index `((b·H + h)·Tq + i)·Tk + j` is kept.
    #[inline]
    pub fn keep(&self, index: u64) -> bool {
        // splitmix64 of (seed, index): a counter-based draw, uniform in [0, 1) from 53 bits.
        let mut z = self.seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z >> 11) as f64 / (1u64 << 53) as f64) >= self.prob
    }

    /// The factor applied to a weight at `index`: `1 / (1 - prob)` if kept, else 0.
    #[inline]
    pub fn factor(&self, index: u64) -> f64 {
        if self.keep(index) {
            1.0 / (1.0 - self.prob)
        } else {
            0.0
        }
    }

    /// Every factor of a call, `[B, H, Tq, Tk]`, built on the host: the mask the CPU kernel
    /// applies, for checking it against [`composed_attention_dropped`].
    pub fn factors<B: burn::tensor::backend::Backend>(
        &self,
        dims: AttentionDims,
        device: &B::Device,
    ) -> Tensor<B, 4> {
        let shape = dims.scores_shape();
        let n = shape.iter().product::<usize>() as u64;
        let values: Vec<f64> = (0..n).map(|i| self.factor(i)).collect();
        Tensor::from_data(TensorData::new(values, shape), device)
    }
}

/// The arguments of [`Backend::sdpa`](super::Backend::sdpa).
///
/// # Shapes
/// `B` batch, `Tq` queries, `Tk` keys, `H` query heads, `Hkv` key/value heads (dividing `H`;
/// query head `h` reads key/value head `h / (H / Hkv)`), `d` head width.
/// - `query`: `[B, Tq, H, d]`; `key`: `[B, Tk, Hkv, d]`; `value`: `[B, Tk, Hkv, d]` (the
///   projections' own layout, so no head transpose is needed)
/// - `key_padding`: `[B, Tk]`, `true` at keys no query may see
/// - `bias`: `[Tq, Tk]`, added to the scaled scores (`-inf` blocks); a constant (no gradient)
/// - output: `[B, Tq, H, d]`; a query that sees no key gets zeros
#[derive(Clone, Debug)]
pub struct AttentionArgs<B: burn::tensor::backend::Backend> {
    /// Queries.
    pub query: Tensor<B, 4>,
    /// Keys.
    pub key: Tensor<B, 4>,
    /// Values.
    pub value: Tensor<B, 4>,
    /// Keys masked out per sequence.
    pub key_padding: Option<Tensor<B, 2, Bool>>,
    /// Additive mask.
    pub bias: Option<Tensor<B, 2>>,
    /// Query `i` sees keys `j <= i + Tk - Tq` only (the queries are the last `Tq` positions).
    pub causal: bool,
    /// Multiplies `Q Kᵀ`; usually `1 / sqrt(d)`.
    pub scale: f64,
    /// Dropout on the probabilities.
    pub dropout: Option<AttentionDropout>,
}

/// Sizes of one attention call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttentionDims {
    /// `B`.
    pub batch: usize,
    /// `Tq`.
    pub queries: usize,
    /// `Tk`.
    pub keys: usize,
    /// `H`.
    pub heads: usize,
    /// `Hkv`.
    pub kv_heads: usize,
    /// `d`.
    pub d: usize,
}

impl AttentionDims {
    /// `(B, Tq, Tk, H, Hkv, d)`.
    pub fn sizes(&self) -> (usize, usize, usize, usize, usize, usize) {
        (
            self.batch,
            self.queries,
            self.keys,
            self.heads,
            self.kv_heads,
            self.d,
        )
    }

    /// The shape of the scores and probabilities, `[B, H, Tq, Tk]`.
    pub fn scores_shape(&self) -> [usize; 4] {
        [self.batch, self.heads, self.queries, self.keys]
    }
}

impl<B: burn::tensor::backend::Backend> AttentionArgs<B> {
    /// The sizes, read from `query` and `key`.
    pub fn dims(&self) -> AttentionDims {
        let [batch, queries, heads, d] = self.query.dims();
        let [_, keys, kv_heads, _] = self.key.dims();
        AttentionDims {
            batch,
            queries,
            keys,
            heads,
            kv_heads,
            d,
        }
    }
}

impl<B: burn::tensor::backend::AutodiffBackend> AttentionArgs<B> {
    /// The same arguments on the inner backend, off the autodiff graph.
    pub fn inner(&self) -> AttentionArgs<B::InnerBackend> {
        AttentionArgs {
            query: self.query.clone().inner(),
            key: self.key.clone().inner(),
            value: self.value.clone().inner(),
            key_padding: self.key_padding.clone().map(Tensor::inner),
            bias: self.bias.clone().map(Tensor::inner),
            causal: self.causal,
            scale: self.scale,
            dropout: self.dropout,
        }
    }
}

/// Gradients of a loss with respect to the query, key and value of an [`AttentionArgs`] (the same
/// shapes).
#[derive(Clone, Debug)]
pub struct AttentionGrads<B: burn::tensor::backend::Backend> {
    /// `[B, Tq, H, d]`.
    pub query: Tensor<B, 4>,
    /// `[B, Tk, Hkv, d]`.
    pub key: Tensor<B, 4>,
    /// `[B, Tk, Hkv, d]`.
    pub value: Tensor<B, 4>,
}
