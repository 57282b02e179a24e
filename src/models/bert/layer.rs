//! [`BertLayer`]: one post-norm encoder layer of the BERT family, with transformers' dropout
//! placement (on the attention weights, and after each residual branch; none inside the
//! feed-forward block, unlike `torch.nn.TransformerEncoderLayer`).

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::Tensor;

use super::config::BertConfig;
use super::embeddings::normal_table;
use crate::nn::{
    AttentionMasks, FeedForwardActivation, MultiHeadAttention, MultiHeadAttentionConfig, TorchLayerNorm,
    TorchLinear,
};
use crate::{Backend, Result};

/// One encoder layer:
///
/// ```text
/// x = attention_norm(x + dropout(attention(x)))          BERT: attention.output.LayerNorm
/// x = output_norm(x + dropout(output(act(intermediate(x)))))   BERT: output.LayerNorm
/// ```
#[derive(Module, Debug)]
pub struct BertLayer<B: Backend> {
    /// Self-attention: Q, K and V stacked in `in_proj_weight` (`query`, `key`, `value` in the
    /// checkpoint), the output projection in `out_proj_weight` (`attention.output.dense`).
    pub attention: MultiHeadAttention<B>,
    /// The norm after attention.
    pub attention_norm: TorchLayerNorm<B>,
    /// The first feed-forward linear (`intermediate.dense`).
    pub intermediate: TorchLinear<B>,
    /// The second feed-forward linear (`output.dense`).
    pub output: TorchLinear<B>,
    /// The norm after the feed-forward block.
    pub output_norm: TorchLayerNorm<B>,
    dropout: Dropout,
    #[module(skip)]
    activation: FeedForwardActivation,
}

/// A linear layer with transformers' initialisation: `N(0, std)` weight, zero bias.
pub(super) fn normal_linear<B: Backend>(
    d_in: usize,
    d_out: usize,
    std: f64,
    device: &B::Device,
) -> TorchLinear<B> {
    let mut linear = TorchLinear::new(d_in, d_out, true, device);
    linear.weight = normal_table([d_out, d_in], std, None, device);
    linear.bias = Some(burn::module::Param::from_tensor(Tensor::zeros([d_out], device)));
    linear
}

impl<B: Backend> BertLayer<B> {
    /// A layer with transformers' initialisation (checked by [`BertConfig::validate`] first).
    pub(super) fn new(c: &BertConfig, device: &B::Device) -> Result<Self> {
        let (d, ff, std) = (c.hidden_size, c.intermediate_size, c.initializer_range);
        let mut attention = MultiHeadAttentionConfig::new(d, c.num_attention_heads)
            .with_dropout(c.attention_probs_dropout_prob)
            .init(device)?;
        attention.in_proj_weight = normal_table([3 * d, d], std, None, device);
        attention.out_proj_weight = normal_table([d, d], std, None, device);
        Ok(Self {
            attention,
            attention_norm: TorchLayerNorm::new(d, c.layer_norm_eps, true, device),
            intermediate: normal_linear(d, ff, std, device),
            output: normal_linear(ff, d, std, device),
            output_norm: TorchLayerNorm::new(d, c.layer_norm_eps, true, device),
            dropout: DropoutConfig::new(c.hidden_dropout_prob).init(),
            activation: c.hidden_act,
        })
    }

    /// # Shapes
    /// - `x`: `[batch, time, hidden]`, `masks.key_padding` `[batch, time]`; output the same as `x`
    pub fn forward(&self, x: Tensor<B, 3>, masks: &AttentionMasks<B>) -> Result<Tensor<B, 3>> {
        let attended = self.attention.forward_self(x.clone(), masks, false)?.0;
        let x = self.attention_norm.apply(x + self.dropout.forward(attended));
        let h = crate::nn::feed_forward(&self.intermediate, &self.output, self.activation, None, x.clone());
        Ok(self.output_norm.apply(x + self.dropout.forward(h)))
    }
}
