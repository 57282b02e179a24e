//! [`TransformerDecoderLayer`]: PyTorch's `torch.nn.TransformerDecoderLayer` (batch-first).

use burn::config::Config;
use burn::module::Module;
use burn::nn::Dropout;
use burn::tensor::Tensor;

use super::feed_forward;
use super::layer_config::layer_config;
use crate::io::{TorchWeights, WeightPath};
use crate::nn::activation::FeedForwardActivation;
use crate::nn::attention::{AttentionMasks, AttentionMemory, MultiHeadAttention};
use crate::nn::kv_cache::KvCache;
use crate::nn::linear::TorchLinear;
use crate::nn::norm::TorchLayerNorm;
use crate::{Backend, Result};

layer_config!(
    TransformerDecoderLayerConfig,
    TransformerDecoderLayer,
    "TransformerDecoderLayer"
);

/// One Transformer decoder layer, computed as PyTorch's:
///
/// ```text
/// post-norm: x = norm1(x + sa(x));  x = norm2(x + mha(x, memory));  x = norm3(x + ff(x))
/// pre-norm:  x = x + sa(norm1(x));  x = x + mha(norm2(x), memory);  x = x + ff(norm3(x))
/// ```
///
/// Field names follow PyTorch's state dict (`self_attn.*`, `multihead_attn.*`, `linear1.*`,
/// `linear2.*`, `norm1.*` to `norm3.*`); [`TorchWeights::load_state_dict`](crate::io::TorchWeights::load_state_dict) loads one.
#[derive(Module, Debug)]
pub struct TransformerDecoderLayer<B: Backend> {
    /// Self-attention over the target.
    pub self_attn: MultiHeadAttention<B>,
    /// Cross-attention from the target to the memory.
    pub multihead_attn: MultiHeadAttention<B>,
    /// First feed-forward linear, `[d_ff, d_model]`.
    pub linear1: TorchLinear<B>,
    /// Second feed-forward linear, `[d_model, d_ff]`.
    pub linear2: TorchLinear<B>,
    /// Norm around self-attention.
    pub norm1: TorchLayerNorm<B>,
    /// Norm around cross-attention.
    pub norm2: TorchLayerNorm<B>,
    /// Norm around the feed-forward block.
    pub norm3: TorchLayerNorm<B>,
    dropout: Dropout,
    #[module(skip)]
    activation: FeedForwardActivation,
    norm_first: bool,
}

impl TransformerDecoderLayerConfig {
    /// Builds the layer, or an [`Error::Config`](crate::Error::Config) for invalid sizes or
    /// dropout.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<TransformerDecoderLayer<B>> {
        let parts = self.parts::<B>(device)?;
        Ok(TransformerDecoderLayer {
            self_attn: parts.attention()?,
            multihead_attn: parts.attention()?,
            norm1: parts.norm(),
            norm2: parts.norm(),
            norm3: parts.norm(),
            linear1: parts.linear1,
            linear2: parts.linear2,
            dropout: parts.dropout,
            activation: self.activation,
            norm_first: self.norm_first,
        })
    }
}

impl<B: Backend> TransformerDecoderLayer<B> {
    /// # Shapes
    /// - `x`: `[batch, tgt_len, d_model]`; `memory`: `[batch, src_len, d_model]`
    /// - `self_masks`: key length `tgt_len` (usually `causal: true`); `cross_masks`: key length
    ///   `src_len` (usually the source padding)
    /// - output: `[batch, tgt_len, d_model]`
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        memory: Tensor<B, 3>,
        self_masks: &AttentionMasks<B>,
        cross_masks: &AttentionMasks<B>,
    ) -> Result<Tensor<B, 3>> {
        let memory = self.multihead_attn.project_memory(memory.clone(), memory)?;
        self.block(
            x,
            |h| Ok(self.self_attn.forward_self(h, self_masks, false)?.0),
            &memory,
            cross_masks,
        )
    }

    /// The layer over new target positions, attending to them and to the positions in `cache`
    /// (which it extends), and to a memory projected once by [`Self::project_memory`]:
    /// incremental decoding.
    ///
    /// # Shapes
    /// - `x`: `[batch, new, d_model]`; output: `[batch, new, d_model]`
    pub fn forward_cached(
        &self,
        x: Tensor<B, 3>,
        memory: &AttentionMemory<B>,
        cache: &mut KvCache<B>,
        self_masks: &AttentionMasks<B>,
        cross_masks: &AttentionMasks<B>,
    ) -> Result<Tensor<B, 3>> {
        self.block(
            x,
            |h| self.self_attn.forward_cached(h, cache, self_masks),
            memory,
            cross_masks,
        )
    }

    /// The cross-attention keys and values of `memory` (`[batch, src_len, d_model]`).
    pub fn project_memory(&self, memory: Tensor<B, 3>) -> Result<AttentionMemory<B>> {
        self.multihead_attn.project_memory(memory.clone(), memory)
    }

    fn block(
        &self,
        x: Tensor<B, 3>,
        self_attention: impl FnOnce(Tensor<B, 3>) -> Result<Tensor<B, 3>>,
        memory: &AttentionMemory<B>,
        cross_masks: &AttentionMasks<B>,
    ) -> Result<Tensor<B, 3>> {
        let sa = |x| -> Result<Tensor<B, 3>> { Ok(self.dropout.forward(self_attention(x)?)) };
        let ca = |x: Tensor<B, 3>| -> Result<Tensor<B, 3>> {
            let (y, _) = self
                .multihead_attn
                .forward_memory(x, memory, cross_masks, false)?;
            Ok(self.dropout.forward(y))
        };
        let ff = |x: Tensor<B, 3>| {
            let y = feed_forward(
                &self.linear1,
                &self.linear2,
                self.activation,
                Some(&self.dropout),
                x,
            );
            self.dropout.forward(y)
        };
        if self.norm_first {
            let x = x.clone() + sa(self.norm1.apply(x))?;
            let x = x.clone() + ca(self.norm2.apply(x))?;
            Ok(x.clone() + ff(self.norm3.apply(x)))
        } else {
            let x = self.norm1.apply(x.clone() + sa(x)?);
            let x = self.norm2.apply(x.clone() + ca(x)?);
            Ok(self.norm3.apply(x.clone() + ff(x)))
        }
    }
}

impl<B: Backend> TorchWeights for TransformerDecoderLayer<B> {
    /// `torch.nn.TransformerDecoderLayer`'s keys.
    fn visit_weights(&mut self, w: &mut WeightPath<'_, '_>) -> Result<()> {
        w.module("self_attn", &mut self.self_attn)?;
        w.module("multihead_attn", &mut self.multihead_attn)?;
        w.module("linear1", &mut self.linear1)?;
        w.module("linear2", &mut self.linear2)?;
        w.module("norm1", &mut self.norm1)?;
        w.module("norm2", &mut self.norm2)?;
        w.module("norm3", &mut self.norm3)
    }
}
