//! Shared parity check (used by the CPU tests and the wgpu suite).
#![allow(dead_code)]

use super::{Fixture, assert_close, fixture_path};
use burn::module::Param;
use burn::tensor::{Bool, Tensor};
use ember_lm::io::{StateDict, TorchWeights};
use ember_lm::nn::{AttentionMasks, FeedForwardActivation, TransformerEncoderLayerConfig};
use serde::Deserialize;

#[derive(Deserialize)]
struct Case {
    name: String,
    d_model: usize,
    n_heads: usize,
    d_ff: usize,
    activation: String,
    norm_first: bool,
    causal: bool,
}

pub fn check_encoder_layer<B: ember_lm::TrainBackend>(device: &B::Device, atol: f64, rtol: f64) {
    let text = std::fs::read_to_string(fixture_path("transformer/manifest.json")).unwrap();
    let cases: Vec<Case> = serde_json::from_str(&text).unwrap();
    assert_eq!(cases.len(), 5);
    for case in cases {
        let io = Fixture::load(&format!("transformer/{}.io.safetensors", case.name));
        let path = fixture_path(&format!("transformer/{}.weights.safetensors", case.name));
        let activation = match case.activation.as_str() {
            "gelu" => FeedForwardActivation::Gelu,
            "gelu_tanh" => FeedForwardActivation::GeluTanh,
            _ => FeedForwardActivation::Relu,
        };
        let layer = TransformerEncoderLayerConfig::new(case.d_model, case.n_heads)
            .with_d_ff(case.d_ff)
            .with_dropout(0.0)
            .with_activation(activation)
            .with_norm_first(case.norm_first)
            .init::<B>(device)
            .unwrap()
            .load_state_dict(&StateDict::from_file(path).unwrap(), "")
            .unwrap();
        let masks = AttentionMasks {
            key_padding: io
                .has("key_padding_mask")
                .then(|| Tensor::<B, 2, Bool>::from_data(io.data("key_padding_mask"), device)),
            causal: case.causal,
            ..Default::default()
        };
        let x = io.tensor::<B, 3>("input", device).require_grad();
        let out = layer.forward(x.clone(), &masks).unwrap();
        let name = &case.name;
        assert_close(
            &format!("{name} output"),
            out.to_data(),
            io.data("output"),
            atol,
            rtol,
        );
        let grads = (out * io.tensor::<B, 3>("w_out", device)).sum().backward();
        let cmp = |what: &str, actual: burn::tensor::TensorData| {
            assert_close(&format!("{name} {what}"), actual, io.data(what), atol, rtol)
        };
        let g2 = |p: &Param<Tensor<B, 2>>| p.val().grad(&grads).unwrap().to_data();
        let g1 = |p: &Option<Param<Tensor<B, 1>>>| p.as_ref().unwrap().val().grad(&grads).unwrap().to_data();
        cmp("grad.input", x.grad(&grads).unwrap().to_data());
        cmp(
            "grad.self_attn.in_proj_weight",
            g2(&layer.self_attn.in_proj_weight),
        );
        cmp("grad.self_attn.in_proj_bias", g1(&layer.self_attn.in_proj_bias));
        cmp(
            "grad.self_attn.out_proj.weight",
            g2(&layer.self_attn.out_proj_weight),
        );
        cmp("grad.self_attn.out_proj.bias", g1(&layer.self_attn.out_proj_bias));
        cmp("grad.linear1.weight", g2(&layer.linear1.weight));
        cmp("grad.linear1.bias", g1(&layer.linear1.bias));
        cmp("grad.linear2.weight", g2(&layer.linear2.weight));
        cmp("grad.linear2.bias", g1(&layer.linear2.bias));
        cmp(
            "grad.norm1.weight",
            layer.norm1.weight.val().grad(&grads).unwrap().to_data(),
        );
        cmp("grad.norm1.bias", g1(&layer.norm1.bias));
        cmp(
            "grad.norm2.weight",
            layer.norm2.weight.val().grad(&grads).unwrap().to_data(),
        );
        cmp("grad.norm2.bias", g1(&layer.norm2.bias));
    }
}

#[derive(Deserialize)]
struct DecoderCase {
    name: String,
    d_model: usize,
    n_heads: usize,
    d_ff: usize,
    activation: String,
    norm_first: bool,
}

/// `torch.nn.TransformerDecoderLayer` parity: outputs and the gradients w.r.t. target, memory and
/// every parameter, with a causal target mask and optional target and memory padding.
pub fn check_decoder_layer<B: ember_lm::TrainBackend>(device: &B::Device, atol: f64, rtol: f64) {
    use ember_lm::nn::TransformerDecoderLayerConfig;
    let text = std::fs::read_to_string(fixture_path("transformer/decoder_manifest.json")).unwrap();
    let cases: Vec<DecoderCase> = serde_json::from_str(&text).unwrap();
    assert_eq!(cases.len(), 2);
    for case in cases {
        let io = Fixture::load(&format!("transformer/{}.io.safetensors", case.name));
        let path = fixture_path(&format!("transformer/{}.weights.safetensors", case.name));
        let activation = if case.activation == "gelu" {
            FeedForwardActivation::Gelu
        } else {
            FeedForwardActivation::Relu
        };
        let layer = TransformerDecoderLayerConfig::new(case.d_model, case.n_heads)
            .with_d_ff(case.d_ff)
            .with_dropout(0.0)
            .with_activation(activation)
            .with_norm_first(case.norm_first)
            .init::<B>(device)
            .unwrap()
            .load_state_dict(&StateDict::from_file(path).unwrap(), "")
            .unwrap();
        let mask = |key: &str| {
            io.has(key)
                .then(|| Tensor::<B, 2, Bool>::from_data(io.data(key), device))
        };
        let self_masks = AttentionMasks {
            key_padding: mask("tgt_key_padding_mask"),
            causal: true,
            ..Default::default()
        };
        let cross_masks = AttentionMasks {
            key_padding: mask("memory_key_padding_mask"),
            ..Default::default()
        };
        let x = io.tensor::<B, 3>("input", device).require_grad();
        let memory = io.tensor::<B, 3>("memory", device).require_grad();
        let out = layer
            .forward(x.clone(), memory.clone(), &self_masks, &cross_masks)
            .unwrap();
        let name = &case.name;
        assert_close(
            &format!("{name} output"),
            out.to_data(),
            io.data("output"),
            atol,
            rtol,
        );
        let grads = (out * io.tensor::<B, 3>("w_out", device)).sum().backward();
        let cmp = |what: &str, actual: burn::tensor::TensorData| {
            assert_close(&format!("{name} {what}"), actual, io.data(what), atol, rtol)
        };
        let g2 = |p: &Param<Tensor<B, 2>>| p.val().grad(&grads).unwrap().to_data();
        let g1 = |p: &Option<Param<Tensor<B, 1>>>| p.as_ref().unwrap().val().grad(&grads).unwrap().to_data();
        cmp("grad.input", x.grad(&grads).unwrap().to_data());
        cmp("grad.memory", memory.grad(&grads).unwrap().to_data());
        for (prefix, attn) in [
            ("self_attn", &layer.self_attn),
            ("multihead_attn", &layer.multihead_attn),
        ] {
            cmp(&format!("grad.{prefix}.in_proj_weight"), g2(&attn.in_proj_weight));
            cmp(&format!("grad.{prefix}.in_proj_bias"), g1(&attn.in_proj_bias));
            cmp(
                &format!("grad.{prefix}.out_proj.weight"),
                g2(&attn.out_proj_weight),
            );
            cmp(&format!("grad.{prefix}.out_proj.bias"), g1(&attn.out_proj_bias));
        }
        for (prefix, lin) in [("linear1", &layer.linear1), ("linear2", &layer.linear2)] {
            cmp(&format!("grad.{prefix}.weight"), g2(&lin.weight));
            cmp(&format!("grad.{prefix}.bias"), g1(&lin.bias));
        }
        for (prefix, norm) in [
            ("norm1", &layer.norm1),
            ("norm2", &layer.norm2),
            ("norm3", &layer.norm3),
        ] {
            cmp(
                &format!("grad.{prefix}.weight"),
                norm.weight.val().grad(&grads).unwrap().to_data(),
            );
            cmp(&format!("grad.{prefix}.bias"), g1(&norm.bias));
        }
    }
}
