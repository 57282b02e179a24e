//! The masks of one attention call, and a memory's keys and values projected once.

use burn::tensor::{Bool, Tensor};

use crate::Backend;

/// Masks for one attention call. Boolean masks use burn's polarity, which is also PyTorch's for
/// `nn.MultiheadAttention`: `true` means "masked out" (padding, or a future position).
#[derive(Clone, Debug, Default)]
pub struct AttentionMasks<B: Backend> {
    /// `[batch, key_len]`, `true` at padded keys.
    pub key_padding: Option<Tensor<B, 2, Bool>>,
    /// `[query_len, key_len]`, `true` where a query may not attend to a key.
    pub attn_bool: Option<Tensor<B, 2, Bool>>,
    /// `[query_len, key_len]`, added to the attention scores (PyTorch's float `attn_mask`).
    pub attn_additive: Option<Tensor<B, 2>>,
    /// Mask every key after the query's own position (with the query at the end of the keys when
    /// `key_len > query_len`, as in incremental decoding).
    pub causal: bool,
}

/// Keys and values of a fixed memory, projected and split into heads once by
/// [`MultiHeadAttention::project_memory`](crate::nn::MultiHeadAttention::project_memory).
///
/// # Shapes
/// `keys`, `values`: `[batch, n_kv_heads, key_len, d_head]`
#[derive(Clone, Debug)]
pub struct AttentionMemory<B: Backend> {
    /// Projected keys (rotated when the attention has rotary positions).
    pub keys: Tensor<B, 4>,
    /// Projected values.
    pub values: Tensor<B, 4>,
}
