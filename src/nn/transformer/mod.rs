//! PyTorch's Transformer modules (batch-first): [`TransformerEncoderLayer`],
//! [`TransformerDecoderLayer`] and their stacks [`TransformerEncoder`] / [`TransformerDecoder`],
//! with PyTorch's state-dict names.

mod decoder;
mod encoder;
mod layer_config;
mod stack;

use burn::module::Param;
use burn::nn::Dropout;
use burn::tensor::Tensor;

pub use decoder::{TransformerDecoderLayer, TransformerDecoderLayerConfig};
pub use encoder::{TransformerEncoderLayer, TransformerEncoderLayerConfig};
pub use stack::{TransformerDecoder, TransformerDecoderConfig, TransformerEncoder, TransformerEncoderConfig};

use super::activation::FeedForwardActivation;
use super::linear::TorchLinear;
use crate::Backend;
use crate::backend::ActivationArgs;

/// The feed-forward block `linear2(dropout(act(linear1(x))))`, shared by the encoder and decoder
/// layers (and, without the dropout, BERT's layer).
pub(crate) fn feed_forward<B: Backend>(
    linear1: &TorchLinear<B>,
    linear2: &TorchLinear<B>,
    activation: FeedForwardActivation,
    dropout: Option<&Dropout>,
    x: Tensor<B, 3>,
) -> Tensor<B, 3> {
    let [batch, len, d] = x.dims();
    let d_ff = linear1.weight.dims()[0];
    // [B, T, D] -> [B*T, D] x [D, F] -> [B*T, F]; the bias joins the activation in one op.
    let h = x
        .reshape([batch * len, d])
        .matmul(linear1.weight.val().transpose());
    let h = B::bias_activation(ActivationArgs {
        input: h,
        bias: linear1.bias.as_ref().map(Param::val),
        activation: activation.kind(),
    });
    // [B*T, F] -> [B, T, F]
    let h = h.reshape([batch, len, d_ff]);
    linear2.apply(match dropout {
        Some(d) => d.forward(h),
        None => h,
    })
}
