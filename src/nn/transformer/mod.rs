//! PyTorch's Transformer modules (batch-first): [`TransformerEncoderLayer`],
//! [`TransformerDecoderLayer`] and their stacks [`TransformerEncoder`] / [`TransformerDecoder`],
//! with PyTorch's state-dict names.

mod decoder;
mod encoder;
mod layer_config;
mod stack;

use burn::nn::Dropout;
use burn::tensor::Tensor;

pub use decoder::{TransformerDecoderLayer, TransformerDecoderLayerConfig};
pub use encoder::{TransformerEncoderLayer, TransformerEncoderLayerConfig};
pub use stack::{TransformerDecoder, TransformerDecoderConfig, TransformerEncoder, TransformerEncoderConfig};

use super::activation::FeedForwardActivation;
use super::linear::TorchLinear;
use crate::Backend;

/// The feed-forward block `linear2(dropout(act(linear1(x))))`, shared by the encoder and decoder
/// layers.
pub(super) fn feed_forward<B: Backend>(
    linear1: &TorchLinear<B>,
    linear2: &TorchLinear<B>,
    activation: FeedForwardActivation,
    dropout: &Dropout,
    x: Tensor<B, 3>,
) -> Tensor<B, 3> {
    let h = linear1.apply(x);
    linear2.apply(dropout.forward(activation.apply(h)))
}
