//! Shared parity check (used by the CPU tests and the wgpu suite).
#![allow(dead_code)]

use super::{Fixture, assert_close, fixture_path};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Bool, Tensor};
use ember_lm::io::StateDict;
use ember_lm::nn::{AttentionMasks, MultiHeadAttentionConfig};
use serde::Deserialize;

#[derive(Deserialize)]
struct Case {
    name: String,
    d_model: usize,
    n_heads: usize,
    bias: bool,
    self_attention: bool,
    causal: bool,
}

pub fn check_attention<B: AutodiffBackend + ember_lm::Backend>(device: &B::Device, atol: f64, rtol: f64) {
    let text = std::fs::read_to_string(fixture_path("attention/manifest.json")).unwrap();
    let cases: Vec<Case> = serde_json::from_str(&text).unwrap();
    assert_eq!(cases.len(), 6);
    for case in cases {
        let io = Fixture::load(&format!("attention/{}.io.safetensors", case.name));
        let dict = StateDict::from_file(fixture_path(&format!(
            "attention/{}.weights.safetensors",
            case.name
        )))
        .unwrap();
        let mha = MultiHeadAttentionConfig::new(case.d_model, case.n_heads)
            .with_bias(case.bias)
            .init::<B>(device)
            .unwrap()
            .load_state_dict(&dict, "")
            .unwrap();
        let bool_mask = |key: &str| {
            io.has(key)
                .then(|| Tensor::<B, 2, Bool>::from_data(io.data(key), device))
        };
        let masks = AttentionMasks {
            key_padding: bool_mask("key_padding_mask"),
            // The fixture's causal cases pass PyTorch a boolean upper-triangular mask; we test our
            // `causal` flag against it, and the explicit boolean mask elsewhere.
            attn_bool: None,
            attn_additive: io
                .has("attn_mask_float")
                .then(|| io.tensor::<B, 2>("attn_mask_float", device)),
            causal: case.causal,
        };
        let q = io.tensor::<B, 3>("query", device).require_grad();
        let (k, v) = if case.self_attention {
            (None, None)
        } else {
            (
                Some(io.tensor::<B, 3>("key", device).require_grad()),
                Some(io.tensor::<B, 3>("value", device).require_grad()),
            )
        };
        let (out, weights) = match (&k, &v) {
            (Some(k), Some(v)) => mha
                .forward(q.clone(), k.clone(), v.clone(), &masks, true)
                .unwrap(),
            _ => mha.forward_self(q.clone(), &masks, true).unwrap(),
        };
        let name = &case.name;
        assert_close(
            &format!("{name} output"),
            out.to_data(),
            io.data("output"),
            1e-5,
            1e-4,
        );
        assert_close(
            &format!("{name} weights"),
            weights.unwrap().to_data(),
            io.data("weights"),
            1e-5,
            1e-4,
        );
        let grads = (out * io.tensor::<B, 3>("w_out", device)).sum().backward();
        let cmp = |what: &str, actual: burn::tensor::TensorData| {
            assert_close(&format!("{name} {what}"), actual, io.data(what), atol, rtol)
        };
        cmp("grad.query", q.grad(&grads).unwrap().to_data());
        if let (Some(k), Some(v)) = (&k, &v) {
            cmp("grad.key", k.grad(&grads).unwrap().to_data());
            cmp("grad.value", v.grad(&grads).unwrap().to_data());
        }
        cmp(
            "grad.in_proj_weight",
            mha.in_proj_weight.val().grad(&grads).unwrap().to_data(),
        );
        cmp(
            "grad.out_proj.weight",
            mha.out_proj_weight.val().grad(&grads).unwrap().to_data(),
        );
        if case.bias {
            cmp(
                "grad.in_proj_bias",
                mha.in_proj_bias
                    .as_ref()
                    .unwrap()
                    .val()
                    .grad(&grads)
                    .unwrap()
                    .to_data(),
            );
            cmp(
                "grad.out_proj.bias",
                mha.out_proj_bias
                    .as_ref()
                    .unwrap()
                    .val()
                    .grad(&grads)
                    .unwrap()
                    .to_data(),
            );
        }
    }
}
