//! Parity with `torch.nn.MultiheadAttention` (batch_first, eval mode): outputs, head-averaged
//! attention weights and the gradients w.r.t. inputs and every parameter, on the cases written by
//! `tests/fixtures/make_attention.py`, within `1e-5 + 1e-4 |b|` on f32.

mod common;

use burn::backend::{Autodiff, NdArray};
use burn::tensor::{Bool, Tensor};
use common::assert_close;
use common::attention::check_attention;
use ember_lm::nn::{AttentionMasks, MultiHeadAttentionConfig};

#[test]
fn ndarray_matches_pytorch() {
    check_attention::<Autodiff<NdArray<f32>>>(&Default::default(), 1e-5, 1e-4);
}

#[cfg(feature = "flex")]
#[test]
fn flex_matches_pytorch() {
    check_attention::<Autodiff<burn::backend::Flex>>(&Default::default(), 1e-5, 1e-4);
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
