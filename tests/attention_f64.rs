//! Attention checks in f64 on NdArray. They live in their own test binary because burn 0.21 keeps
//! one default float dtype per device for the whole process (the first backend to touch the CPU
//! device sets it), so `NdArray<f32>` and `NdArray<f64>` tests must not share a binary.

mod common;

use burn::backend::{Autodiff, NdArray};
use burn::tensor::Tensor;
use common::assert_close;
use common::attention::{check_fused_equals_explicit, check_gqa_rotary};
use ember_lm::nn::{AttentionMasks, MultiHeadAttentionConfig};

#[test]
fn gqa_with_rotary_matches_the_torch_reference_in_f64() {
    check_gqa_rotary::<Autodiff<NdArray<f64>>>(&Default::default(), 1e-7, 1e-6);
}

#[test]
fn fused_attention_equals_the_explicit_path_in_f64() {
    check_fused_equals_explicit::<NdArray<f64>>(&Default::default(), 1e-12);
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
