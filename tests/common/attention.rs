//! Shared parity check (used by the CPU tests and the wgpu suite).
#![allow(dead_code)]

use super::{Fixture, assert_close, fixture_path};
use burn::module::Module;
use burn::tensor::{Bool, Tensor};
use ember_lm::io::{StateDict, TorchWeights};
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

pub fn check_attention<B: ember_lm::TrainBackend>(device: &B::Device, atol: f64, rtol: f64) {
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

/// Grouped-query attention with rotary positions against the torch reference written out in
/// `make_attention.py` (Hugging Face Llama's formulation).
pub fn check_gqa_rotary<B: ember_lm::TrainBackend>(device: &B::Device, atol: f64, rtol: f64) {
    let io = Fixture::load("attention/gqa_rotary.io.safetensors");
    let dict = StateDict::from_file(fixture_path("attention/gqa_rotary.weights.safetensors")).unwrap();
    let mha = MultiHeadAttentionConfig::new(16, 4)
        .with_n_kv_heads(Some(2))
        .with_rotary_base(Some(10000.0))
        .init::<B>(device)
        .unwrap()
        .load_state_dict(&dict, "")
        .unwrap();
    let x = io.tensor::<B, 3>("query", device).require_grad();
    let masks = AttentionMasks {
        causal: true,
        ..Default::default()
    };
    let (out, _) = mha.forward_self(x.clone(), &masks, false).unwrap();
    assert_close("gqa_rotary output", out.to_data(), io.data("output"), atol, rtol);
    let grads = (out * io.tensor::<B, 3>("w_out", device)).sum().backward();
    let cmp = |what: &str, actual: burn::tensor::TensorData| {
        assert_close(&format!("gqa_rotary {what}"), actual, io.data(what), atol, rtol)
    };
    cmp("grad.query", x.grad(&grads).unwrap().to_data());
    cmp(
        "grad.in_proj_weight",
        mha.in_proj_weight.val().grad(&grads).unwrap().to_data(),
    );
    let bias = |p: &Option<burn::module::Param<Tensor<B, 1>>>| {
        p.as_ref().unwrap().val().grad(&grads).unwrap().to_data()
    };
    cmp("grad.in_proj_bias", bias(&mha.in_proj_bias));
    cmp(
        "grad.out_proj.weight",
        mha.out_proj_weight.val().grad(&grads).unwrap().to_data(),
    );
    cmp("grad.out_proj.bias", bias(&mha.out_proj_bias));
}

/// burn's fused `attention` op and the explicit `softmax(QKᵀ)V` agree under every kind of mask,
/// with grouped-query heads and rotary positions, and on a query whose keys are all masked.
pub fn check_fused_equals_explicit<B: ember_lm::Backend>(device: &B::Device, tol: f64) {
    use burn::tensor::{Distribution, TensorData};
    let (batch, t, d) = (2, 5, 16);
    let x = Tensor::<B, 3>::random([batch, t, d], Distribution::Normal(0.0, 1.0), device);
    // Sequence 1 has all its keys padded: its rows attend to nothing.
    let padding = TensorData::new(
        (0..batch * t)
            .map(|i| (i / t == 1) || (i % t >= 4))
            .collect::<Vec<_>>(),
        [batch, t],
    );
    let additive = Tensor::<B, 2>::random([t, t], Distribution::Normal(0.0, 1.0), device);
    let mask_sets: Vec<(&str, AttentionMasks<B>)> = vec![
        ("none", AttentionMasks::default()),
        (
            "causal",
            AttentionMasks {
                causal: true,
                ..Default::default()
            },
        ),
        (
            "padding+bool+additive+causal",
            AttentionMasks {
                key_padding: Some(Tensor::from_data(padding, device)),
                attn_bool: Some(Tensor::<B, 2, Bool>::tril_mask([t, t], 1, device).bool_not()),
                attn_additive: Some(additive),
                causal: true,
            },
        ),
    ];
    for (n_kv, rotary) in [(4, None), (2, Some(10000.0))] {
        let config = MultiHeadAttentionConfig::new(d, 4)
            .with_n_kv_heads(Some(n_kv))
            .with_rotary_base(rotary);
        // One record for both: burn initialises parameters lazily, so a clone of an untouched
        // module would draw its own weights; a loaded one holds them.
        let drawn = config.init::<B>(device).unwrap().into_record();
        let fused = config.init::<B>(device).unwrap().load_record(drawn);
        let explicit = config
            .clone()
            .with_fused(false)
            .init::<B>(device)
            .unwrap()
            .load_record(fused.clone().into_record());
        for (name, masks) in &mask_sets {
            let (a, _) = fused.forward_self(x.clone(), masks, false).unwrap();
            let (b, _) = explicit.forward_self(x.clone(), masks, false).unwrap();
            let a = a.into_data();
            assert!(
                a.iter::<f64>().all(f64::is_finite),
                "{name}: fused output not finite"
            );
            assert_close(
                &format!("fused vs explicit, n_kv {n_kv}, {name}"),
                a,
                b.into_data(),
                tol,
                tol,
            );
        }
    }
}
