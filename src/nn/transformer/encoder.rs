//! [`TransformerEncoderLayer`]: PyTorch's `torch.nn.TransformerEncoderLayer` (batch-first).

use burn::config::Config;
use burn::module::Module;
use burn::nn::Dropout;
use burn::tensor::Tensor;

use super::feed_forward;
use super::layer_config::layer_config;
use crate::io::{TorchWeights, WeightPath};
use crate::nn::activation::FeedForwardActivation;
use crate::nn::attention::{AttentionMasks, MultiHeadAttention};
use crate::nn::kv_cache::KvCache;
use crate::nn::linear::TorchLinear;
use crate::nn::norm::TorchLayerNorm;
use crate::{Backend, Result};

layer_config!(
    TransformerEncoderLayerConfig,
    TransformerEncoderLayer,
    "TransformerEncoderLayer"
);

/// One Transformer encoder layer, computed as PyTorch's:
///
/// ```text
/// post-norm: x = norm1(x + dropout(self_attn(x)));  x = norm2(x + dropout(ff(x)))
/// pre-norm:  x = x + dropout(self_attn(norm1(x)));  x = x + dropout(ff(norm2(x)))
/// ff(x) = linear2(dropout(act(linear1(x))))
/// ```
///
/// Field names follow PyTorch's state dict (`self_attn.*`, `linear1.*`, `linear2.*`, `norm1.*`,
/// `norm2.*`); [`TorchWeights::load_state_dict`](crate::io::TorchWeights::load_state_dict) loads one.
#[derive(Module, Debug)]
pub struct TransformerEncoderLayer<B: Backend> {
    /// Self-attention.
    pub self_attn: MultiHeadAttention<B>,
    /// First feed-forward linear, `[d_ff, d_model]`.
    pub linear1: TorchLinear<B>,
    /// Second feed-forward linear, `[d_model, d_ff]`.
    pub linear2: TorchLinear<B>,
    /// Norm around attention.
    pub norm1: TorchLayerNorm<B>,
    /// Norm around the feed-forward block.
    pub norm2: TorchLayerNorm<B>,
    dropout: Dropout,
    #[module(skip)]
    activation: FeedForwardActivation,
    norm_first: bool,
}

impl TransformerEncoderLayerConfig {
    /// Builds the layer, or an [`Error::Config`](crate::Error::Config) for invalid sizes or
    /// dropout.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<TransformerEncoderLayer<B>> {
        let parts = self.parts::<B>(device)?;
        Ok(TransformerEncoderLayer {
            self_attn: parts.attention()?,
            norm1: parts.norm(),
            norm2: parts.norm(),
            linear1: parts.linear1,
            linear2: parts.linear2,
            dropout: parts.dropout,
            activation: self.activation,
            norm_first: self.norm_first,
        })
    }
}

impl<B: Backend> TransformerEncoderLayer<B> {
    /// # Shapes
    /// - `x`: `[batch, time, d_model]`; masks as in [`AttentionMasks`] with `key_len = time`
    /// - output: `[batch, time, d_model]`
    pub fn forward(&self, x: Tensor<B, 3>, masks: &AttentionMasks<B>) -> Result<Tensor<B, 3>> {
        self.block(x, |h| Ok(self.self_attn.forward_self(h, masks, false)?.0))
    }

    /// The layer over new positions, attending to them and to the positions in `cache`, which
    /// it extends (incremental decoding; see [`MultiHeadAttention::forward_cached`]).
    ///
    /// # Shapes
    /// - `x`: `[batch, new, d_model]`; output: `[batch, new, d_model]`
    pub fn forward_cached(
        &self,
        x: Tensor<B, 3>,
        cache: &mut KvCache<B>,
        masks: &AttentionMasks<B>,
    ) -> Result<Tensor<B, 3>> {
        self.block(x, |h| self.self_attn.forward_cached(h, cache, masks))
    }

    /// The residual block around a given attention.
    fn block(
        &self,
        x: Tensor<B, 3>,
        attention: impl FnOnce(Tensor<B, 3>) -> Result<Tensor<B, 3>>,
    ) -> Result<Tensor<B, 3>> {
        let attend = |x| -> Result<Tensor<B, 3>> { Ok(self.dropout.forward(attention(x)?)) };
        if self.norm_first {
            let x = x.clone() + attend(self.norm1.apply(x))?;
            Ok(x.clone() + self.feed_forward(self.norm2.apply(x)))
        } else {
            let x = self.norm1.apply(x.clone() + attend(x)?);
            Ok(self.norm2.apply(x.clone() + self.feed_forward(x)))
        }
    }

    fn feed_forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let y = feed_forward(
            &self.linear1,
            &self.linear2,
            self.activation,
            Some(&self.dropout),
            x,
        );
        self.dropout.forward(y)
    }
}

impl<B: Backend> TorchWeights for TransformerEncoderLayer<B> {
    /// `torch.nn.TransformerEncoderLayer`'s keys.
    fn visit_weights(&mut self, w: &mut WeightPath<'_, '_>) -> Result<()> {
        w.module("self_attn", &mut self.self_attn)?;
        w.module("linear1", &mut self.linear1)?;
        w.module("linear2", &mut self.linear2)?;
        w.module("norm1", &mut self.norm1)?;
        w.module("norm2", &mut self.norm2)
    }
}
