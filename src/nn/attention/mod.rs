//! [`MultiHeadAttention`]: PyTorch's `torch.nn.MultiheadAttention` (batch-first), with a causal
//! flag, key padding and attention masks, optional attention weights and grouped-query heads.

use burn::config::Config;
use burn::module::{Initializer, Module, Param};
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::Tensor;

use crate::io::{TorchWeights, WeightPath};
use crate::nn::{KvCache, RotaryConfig, RotaryPositions};
use crate::{Backend, Error, Result};

mod masks;
mod scores;

pub use masks::{AttentionMasks, AttentionMemory};

/// Configuration of a [`MultiHeadAttention`]; PyTorch's options and defaults.
#[derive(Config, Debug)]
pub struct MultiHeadAttentionConfig {
    /// Model width (`embed_dim`).
    pub d_model: usize,
    /// Number of query heads; `d_model` must be divisible by it.
    pub n_heads: usize,
    /// Number of key/value heads for grouped-query attention; `None` (the default) is `n_heads`.
    /// Must divide `n_heads`.
    #[config(default = "None")]
    pub n_kv_heads: Option<usize>,
    /// Dropout on the attention weights, only while training. Default 0.
    #[config(default = 0.0)]
    pub dropout: f64,
    /// Whether the input and output projections have biases. Default true.
    #[config(default = true)]
    pub bias: bool,
    /// Rotary positions (RoPE, see [`RotaryPositions`]) applied to queries and keys with this
    /// base (usually 10000); `None` (the default) for none.
    #[config(default = "None")]
    pub rotary_base: Option<f64>,
    /// Use burn's fused `attention` op (flash attention on backends that have one) whenever no
    /// weights are asked for and dropout is inactive; the explicit `softmax(QKᵀ)V` otherwise.
    /// Both give the same result. Default true.
    #[config(default = true)]
    pub fused: bool,
}

/// Multi-head attention as PyTorch computes it:
/// `softmax(Q Kᵀ / sqrt(d_head) + mask) V`, per head, then the output projection.
///
/// A query whose keys are all masked attends to nothing and gets zeros (PyTorch gives NaN there),
/// on the explicit and the fused path alike.
///
/// Parameters keep PyTorch's names and layout (`in_proj_weight [(H + 2 H_kv) d_head, d_model]`,
/// `in_proj_bias`, `out_proj.weight [d_model, d_model]`, `out_proj.bias`), so a state dict of
/// `torch.nn.MultiheadAttention` loads with [`TorchWeights::load_state_dict`](crate::io::TorchWeights::load_state_dict).
#[derive(Module, Debug)]
pub struct MultiHeadAttention<B: Backend> {
    /// Q, K and V projections stacked: `[(n_heads + 2 n_kv_heads) d_head, d_model]`.
    pub in_proj_weight: Param<Tensor<B, 2>>,
    /// Their biases.
    pub in_proj_bias: Option<Param<Tensor<B, 1>>>,
    /// Output projection, PyTorch layout `[d_model, d_model]`.
    pub out_proj_weight: Param<Tensor<B, 2>>,
    /// Its bias.
    pub out_proj_bias: Option<Param<Tensor<B, 1>>>,
    dropout: Dropout,
    rotary: Option<RotaryPositions>,
    n_heads: usize,
    n_kv_heads: usize,
    d_model: usize,
    fused: bool,
}

impl MultiHeadAttentionConfig {
    /// Builds the module with PyTorch's initialisation (Xavier-uniform input projection, zero
    /// biases, Kaiming-uniform output projection), or an [`Error::Config`] when `d_model` is not
    /// divisible by `n_heads`, `n_kv_heads` does not divide `n_heads`, or `dropout` is outside `[0, 1)`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<MultiHeadAttention<B>> {
        let err = |message: String| {
            Err(Error::Config {
                module: "MultiHeadAttentionConfig",
                message,
            })
        };
        let n_kv = self.n_kv_heads.unwrap_or(self.n_heads);
        if self.d_model == 0 || self.n_heads == 0 || !self.d_model.is_multiple_of(self.n_heads) {
            return err(format!(
                "d_model ({}) must be a positive multiple of n_heads ({})",
                self.d_model, self.n_heads
            ));
        }
        if n_kv == 0 || !self.n_heads.is_multiple_of(n_kv) {
            return err(format!(
                "n_kv_heads ({n_kv}) must divide n_heads ({})",
                self.n_heads
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return err(format!("dropout must be in [0, 1), found {}", self.dropout));
        }
        // in_proj_weight is at most [3·d_model, d_model].
        super::check_param_size(
            "MultiHeadAttentionConfig",
            "in_proj_weight (3·d_model × d_model)",
            &[3, self.d_model, self.d_model],
        )?;
        let d = self.d_model;
        let rotary = self
            .rotary_base
            .map(|base| RotaryConfig::new(d / self.n_heads).with_base(base).init())
            .transpose()?;
        let rows = d + 2 * n_kv * (d / self.n_heads);
        let zeros = |n: usize| Initializer::Zeros.init([n], device);
        Ok(MultiHeadAttention {
            in_proj_weight: Initializer::XavierUniform { gain: 1.0 }.init_with(
                [rows, d],
                Some(d),
                Some(d),
                device,
            ),
            in_proj_bias: self.bias.then(|| zeros(rows)),
            out_proj_weight: Initializer::KaimingUniform {
                gain: 1.0 / 3.0f64.sqrt(),
                fan_out_only: false,
            }
            .init_with([d, d], Some(d), Some(d), device),
            out_proj_bias: self.bias.then(|| zeros(d)),
            dropout: DropoutConfig::new(self.dropout).init(),
            rotary,
            n_heads: self.n_heads,
            n_kv_heads: n_kv,
            d_model: d,
            fused: self.fused,
        })
    }
}

impl<B: Backend> MultiHeadAttention<B> {
    fn d_head(&self) -> usize {
        self.d_model / self.n_heads
    }

    /// An empty [`KvCache`] sized for this attention's key/value heads.
    pub fn new_cache(&self, batch: usize, max_len: usize, device: &B::Device) -> KvCache<B> {
        KvCache::new(batch, self.n_kv_heads, self.d_head(), max_len, device)
    }

    /// Self-attention: queries, keys and values all come from `x`, through one fused projection.
    ///
    /// # Shapes
    /// - `x`: `[batch, time, d_model]`
    /// - output: `[batch, time, d_model]`; weights (when asked): `[batch, time, time]`, averaged
    ///   over heads
    pub fn forward_self(
        &self,
        x: Tensor<B, 3>,
        masks: &AttentionMasks<B>,
        need_weights: bool,
    ) -> Result<(Tensor<B, 3>, Option<Tensor<B, 3>>)> {
        self.check_input("x", &x)?;
        let (q, k, v) = self.project_qkv(x);
        let (q, k) = self.rotate_pair(q, k, 0);
        self.attend(q, k, v, masks, need_weights)
    }

    /// Self-attention of new positions over themselves and the positions in `cache`, which it
    /// extends: incremental decoding. With `masks.causal`, each new position sees the cache and
    /// the new positions up to itself, exactly as in a full causal forward. Rotary positions
    /// continue from `cache.len()`.
    ///
    /// # Shapes
    /// - `x`: `[batch, new, d_model]`; output `[batch, new, d_model]`
    /// - `masks.key_padding` (if any): `[batch, cache.len() + new]`
    pub fn forward_cached(
        &self,
        x: Tensor<B, 3>,
        cache: &mut KvCache<B>,
        masks: &AttentionMasks<B>,
    ) -> Result<Tensor<B, 3>> {
        self.check_input("x", &x)?;
        let offset = cache.len();
        let (q, k, v) = self.project_qkv(x);
        let (q, k) = self.rotate_pair(q, k, offset);
        let (k_all, v_all) = cache.append(k, v)?;
        Ok(self.attend(q, k_all, v_all, masks, false)?.0)
    }

    /// Attention of `query` over `key`/`value` (cross-attention), with the projections applied
    /// separately.
    ///
    /// # Shapes
    /// - `query`: `[batch, query_len, d_model]`; `key`, `value`: `[batch, key_len, d_model]`
    /// - output: `[batch, query_len, d_model]`; weights (when asked): `[batch, query_len, key_len]`
    pub fn forward(
        &self,
        query: Tensor<B, 3>,
        key: Tensor<B, 3>,
        value: Tensor<B, 3>,
        masks: &AttentionMasks<B>,
        need_weights: bool,
    ) -> Result<(Tensor<B, 3>, Option<Tensor<B, 3>>)> {
        let memory = self.project_memory(key, value)?;
        self.forward_memory(query, &memory, masks, need_weights)
    }

    /// Projects the keys and values of a fixed memory (an encoder's output) once, so that a
    /// decoder attending to it at every step does not project it again.
    ///
    /// # Shapes
    /// - `key`, `value`: `[batch, key_len, d_model]`
    pub fn project_memory(&self, key: Tensor<B, 3>, value: Tensor<B, 3>) -> Result<AttentionMemory<B>> {
        self.check_input("key", &key)?;
        self.check_input("value", &value)?;
        if key.dims() != value.dims() {
            return Err(Error::shape(
                "MultiHeadAttention value",
                format!("the key's shape {:?}", key.dims()),
                &value.dims(),
            ));
        }
        let (q_len, kv_len) = (self.d_model, self.n_kv_heads * self.d_head());
        let k = self.heads(self.project(key, q_len..q_len + kv_len), self.n_kv_heads);
        let v = self.heads(
            self.project(value, q_len + kv_len..q_len + 2 * kv_len),
            self.n_kv_heads,
        );
        Ok(AttentionMemory {
            keys: self.rotate(k, 0),
            values: v,
        })
    }

    /// Cross-attention of `query` over a memory projected by [`Self::project_memory`].
    ///
    /// # Shapes
    /// - `query`: `[batch, query_len, d_model]`, the memory's batch
    /// - output: `[batch, query_len, d_model]`; weights (when asked): `[batch, query_len, key_len]`
    pub fn forward_memory(
        &self,
        query: Tensor<B, 3>,
        memory: &AttentionMemory<B>,
        masks: &AttentionMasks<B>,
        need_weights: bool,
    ) -> Result<(Tensor<B, 3>, Option<Tensor<B, 3>>)> {
        self.check_input("query", &query)?;
        let batch = memory.keys.dims()[0];
        if query.dims()[0] != batch {
            return Err(Error::shape(
                "MultiHeadAttention query",
                format!("[{batch} (the memory's batch), query_len, {}]", self.d_model),
                &query.dims(),
            ));
        }
        let q = self.heads(self.project(query, 0..self.d_model), self.n_heads);
        let q = self.rotate(q, 0);
        self.attend(q, memory.keys.clone(), memory.values.clone(), masks, need_weights)
    }

    fn check_input(&self, what: &str, x: &Tensor<B, 3>) -> Result<()> {
        let dims = x.dims();
        if dims[2] != self.d_model || dims[0] == 0 || dims[1] == 0 {
            return Err(Error::shape(
                format!("MultiHeadAttention {what}"),
                format!("[batch, len, {}] with batch, len > 0", self.d_model),
                &dims,
            ));
        }
        Ok(())
    }

    /// `x W[rows]ᵀ + b[rows]`.
    fn project(&self, x: Tensor<B, 3>, rows: std::ops::Range<usize>) -> Tensor<B, 3> {
        let [batch, len, d] = x.dims();
        let n = rows.len();
        let w = self.in_proj_weight.val().slice([rows.clone(), 0..d]); // [rows, D]
        // [B, T, D] -> [B*T, D] -> [B*T, rows] (2-D matmuls: broadcast batched matmuls gave
        // nondeterministic results on burn-wgpu 0.21 under llvmpipe)
        let mut y = x.reshape([batch * len, d]).matmul(w.transpose());
        if let Some(b) = &self.in_proj_bias {
            y = y + b.val().slice([rows]).unsqueeze::<2>();
        }
        y.reshape([batch, len, n])
    }

    /// The fused self-attention projection, split into heads: `q [B, H, T, d]`,
    /// `k`, `v` `[B, H_kv, T, d]`.
    fn project_qkv(&self, x: Tensor<B, 3>) -> (Tensor<B, 4>, Tensor<B, 4>, Tensor<B, 4>) {
        let [batch, len, _] = x.dims();
        let (h, h_kv, dh) = (self.n_heads, self.n_kv_heads, self.d_head());
        // One matmul for Q, K and V: [B, T, D] -> [B, T, (H + 2 H_kv) d]
        let rows = self.in_proj_weight.dims()[0];
        let qkv = self.project(x, 0..rows);
        let part = |from: usize, n: usize| {
            let t = qkv.clone().slice([0..batch, 0..len, from * dh..(from + n) * dh]);
            self.heads(t, n)
        };
        (part(0, h), part(h, h_kv), part(h + h_kv, h_kv))
    }

    /// `[B, T, n d] -> [B, T, n, d] -> [B, n, T, d]`
    fn heads(&self, t: Tensor<B, 3>, n: usize) -> Tensor<B, 4> {
        let [batch, len, _] = t.dims();
        t.reshape([batch, len, n, self.d_head()]).swap_dims(1, 2)
    }

    fn rotate_pair(&self, q: Tensor<B, 4>, k: Tensor<B, 4>, offset: usize) -> (Tensor<B, 4>, Tensor<B, 4>) {
        match &self.rotary {
            Some(r) => r.forward_pair(q, k, offset),
            None => (q, k),
        }
    }

    fn rotate(&self, t: Tensor<B, 4>, offset: usize) -> Tensor<B, 4> {
        match &self.rotary {
            Some(r) => r.forward(t, offset),
            None => t,
        }
    }
}

impl<B: Backend> TorchWeights for MultiHeadAttention<B> {
    /// `torch.nn.MultiheadAttention`'s keys: `in_proj_weight`, `in_proj_bias`,
    /// `out_proj.weight`, `out_proj.bias`.
    fn visit_weights(&mut self, w: &mut WeightPath<'_, '_>) -> Result<()> {
        w.tensor("in_proj_weight", &mut self.in_proj_weight)?;
        w.optional("in_proj_bias", &mut self.in_proj_bias)?;
        let mut out = w.pp("out_proj");
        out.tensor("weight", &mut self.out_proj_weight)?;
        out.optional("bias", &mut self.out_proj_bias)
    }
}
