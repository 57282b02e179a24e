//! Parity with `torch.nn.MultiheadAttention` (batch_first, eval mode): outputs, head-averaged
//! attention weights and the gradients w.r.t. inputs and every parameter, on the cases written by
//! `tests/fixtures/make_attention.py`, within `1e-5 + 1e-4 |b|` on f32.

mod common;

use burn::backend::{Autodiff, NdArray};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Bool, Tensor};
use common::{Fixture, assert_close, fixture_path};
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

fn check<B: AutodiffBackend + ember_lm::Backend>(device: &B::Device) {
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
            assert_close(&format!("{name} {what}"), actual, io.data(what), 1e-5, 1e-4)
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

#[test]
fn ndarray_matches_pytorch() {
    check::<Autodiff<NdArray<f32>>>(&Default::default());
}

#[cfg(feature = "flex")]
#[test]
fn flex_matches_pytorch() {
    check::<Autodiff<burn::backend::Flex>>(&Default::default());
}

/// The explicit boolean mask and the causal flag mask the same positions.
#[test]
fn causal_flag_equals_the_explicit_mask() {
    type B = NdArray<f32>;
    let device = Default::default();
    let mha = MultiHeadAttentionConfig::new(8, 2).init::<B>(&device).unwrap();
    let x = Tensor::<B, 3>::random([2, 5, 8], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
    let flag = AttentionMasks {
        causal: true,
        ..Default::default()
    };
    let explicit = AttentionMasks {
        attn_bool: Some(Tensor::<B, 2, Bool>::tril_mask([5, 5], 0, &device)),
        ..Default::default()
    };
    let (a, _) = mha.forward_self(x.clone(), &flag, false).unwrap();
    let (b, _) = mha.forward_self(x, &explicit, false).unwrap();
    assert_close("causal", a.into_data(), b.into_data(), 0.0, 0.0);
}

/// Grouped-query attention equals full multi-head attention whose key/value heads are copies:
/// each of the 2 key/value heads serves 2 consecutive query heads.
#[test]
fn grouped_query_heads_equal_repeated_full_heads() {
    use burn::module::Param;
    type B = NdArray<f64>;
    let device = Default::default();
    let (d, h, h_kv) = (8, 4, 2);
    let dh = d / h;
    let gqa = MultiHeadAttentionConfig::new(d, h)
        .with_n_kv_heads(Some(h_kv))
        .init::<B>(&device)
        .unwrap();
    let mut full = MultiHeadAttentionConfig::new(d, h).init::<B>(&device).unwrap();
    let w = gqa.in_proj_weight.val(); // [d + 2 h_kv dh, d]
    let b = gqa.in_proj_bias.as_ref().unwrap().val();
    let (mut rows, mut bias) = (vec![w.clone().slice(0..d)], vec![b.clone().slice(0..d)]);
    for part in 0..2 {
        for head in 0..h {
            let start = d + part * h_kv * dh + (head / (h / h_kv)) * dh;
            rows.push(w.clone().slice(start..start + dh));
            bias.push(b.clone().slice(start..start + dh));
        }
    }
    full.in_proj_weight = Param::from_tensor(Tensor::cat(rows, 0));
    full.in_proj_bias = Some(Param::from_tensor(Tensor::cat(bias, 0)));
    full.out_proj_weight = Param::from_tensor(gqa.out_proj_weight.val());
    full.out_proj_bias = Some(Param::from_tensor(gqa.out_proj_bias.as_ref().unwrap().val()));
    let x = Tensor::<B, 3>::random([2, 5, d], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
    let masks = AttentionMasks {
        causal: true,
        ..Default::default()
    };
    let (a, _) = gqa.forward_self(x.clone(), &masks, false).unwrap();
    let (b, _) = full.forward_self(x, &masks, false).unwrap();
    assert_close("gqa", a.into_data(), b.into_data(), 1e-12, 1e-12);
}
