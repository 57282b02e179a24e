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

/// `nn.TransformerEncoder` and `nn.TransformerDecoder` (2 pre-norm layers each, final norms)
/// loaded from one checkpoint under `encoder.` and `decoder.`: the memory, the decoder output and
/// the gradients w.r.t. source and target.
#[test]
fn encoder_and_decoder_stacks_match_pytorch() {
    use burn::tensor::{Bool, Tensor};
    use common::{Fixture, assert_close, fixture_path};
    use ember_lm::io::{StateDict, TorchWeights};
    use ember_lm::nn::{
        AttentionMasks, TransformerDecoderConfig, TransformerDecoderLayerConfig, TransformerEncoderConfig,
        TransformerEncoderLayerConfig,
    };
    type B = Autodiff<NdArray<f32>>;
    let device = Default::default();
    let io = Fixture::load("transformer/stacks.io.safetensors");
    let dict = StateDict::from_file(fixture_path("transformer/stacks.weights.safetensors")).unwrap();
    let encoder = TransformerEncoderConfig::new(
        TransformerEncoderLayerConfig::new(8, 2)
            .with_d_ff(16)
            .with_dropout(0.0)
            .with_norm_first(true),
        2,
    )
    .with_final_norm(true)
    .init::<B>(&device)
    .unwrap()
    .load_state_dict(&dict, "encoder.")
    .unwrap();
    let decoder = TransformerDecoderConfig::new(
        TransformerDecoderLayerConfig::new(8, 2)
            .with_d_ff(16)
            .with_dropout(0.0)
            .with_norm_first(true),
        2,
    )
    .with_final_norm(true)
    .init::<B>(&device)
    .unwrap()
    .load_state_dict(&dict, "decoder.")
    .unwrap();
    let padding = AttentionMasks {
        key_padding: Some(Tensor::<B, 2, Bool>::from_data(
            io.data("key_padding_mask"),
            &device,
        )),
        ..Default::default()
    };
    let causal = AttentionMasks {
        causal: true,
        ..Default::default()
    };
    let src = io.tensor::<B, 3>("src", &device).require_grad();
    let tgt = io.tensor::<B, 3>("tgt", &device).require_grad();
    let memory = encoder.forward(src.clone(), &padding).unwrap();
    let out = decoder
        .forward(tgt.clone(), memory.clone(), &causal, &padding)
        .unwrap();
    assert_close("memory", memory.to_data(), io.data("memory"), 1e-5, 1e-4);
    assert_close("output", out.to_data(), io.data("output"), 1e-5, 1e-4);
    let loss = (memory * io.tensor::<B, 3>("w_mem", &device)).sum()
        + (out * io.tensor::<B, 3>("w_out", &device)).sum();
    let grads = loss.backward();
    assert_close(
        "grad.src",
        src.grad(&grads).unwrap().to_data(),
        io.data("grad.src"),
        1e-5,
        1e-4,
    );
    assert_close(
        "grad.tgt",
        tgt.grad(&grads).unwrap().to_data(),
        io.data("grad.tgt"),
        1e-5,
        1e-4,
    );
    // The whole checkpoint is accounted for: loading the encoder alone under the empty prefix
    // names the decoder's keys as unexpected.
    let err = TransformerEncoderConfig::new(TransformerEncoderLayerConfig::new(8, 2).with_d_ff(16), 2)
        .with_final_norm(true)
        .init::<B>(&device)
        .unwrap()
        .load_state_dict(&dict, "")
        .unwrap_err();
    assert!(matches!(err, ember_lm::Error::StateDict { .. }), "{err}");
}
