//! Parity with `torch.nn.TransformerEncoderLayer` (batch_first, dropout 0, eval mode): outputs and
//! the gradients w.r.t. the input and every parameter, relu/gelu/gelu-tanh, post- and pre-norm, with padding
//! and causal masks, on the cases written by `tests/fixtures/make_transformer.py`.

mod common;

use burn::backend::{Autodiff, NdArray};
use common::transformer::{check_decoder_layer, check_encoder_layer};

#[test]
fn ndarray_matches_pytorch() {
    check_encoder_layer::<Autodiff<NdArray<f32>>>(&Default::default(), 1e-5, 1e-4);
}

#[cfg(feature = "flex")]
#[test]
fn flex_matches_pytorch() {
    check_encoder_layer::<Autodiff<burn::backend::Flex>>(&Default::default(), 1e-5, 1e-4);
}

#[test]
fn decoder_layer_ndarray_matches_pytorch() {
    check_decoder_layer::<Autodiff<NdArray<f32>>>(&Default::default(), 1e-5, 1e-4);
}

#[cfg(feature = "flex")]
#[test]
fn decoder_layer_flex_matches_pytorch() {
    check_decoder_layer::<Autodiff<burn::backend::Flex>>(&Default::default(), 1e-5, 1e-4);
}
