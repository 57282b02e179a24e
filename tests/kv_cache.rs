//! Incremental decoding with a [`KvCache`] gives the outputs of the full causal forward at every
//! position; the cache refuses to overflow, resets, and reorders its batch.

mod common;

use burn::backend::NdArray;
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use common::assert_close;
use ember_lm::Error;
use ember_lm::nn::{AttentionMasks, KvCache, MultiHeadAttentionConfig};

type B = NdArray<f64>;

fn setup(n_kv: usize) -> (ember_lm::nn::MultiHeadAttention<B>, Tensor<B, 3>) {
    setup_rotary(n_kv, None)
}

fn setup_rotary(n_kv: usize, rotary: Option<f64>) -> (ember_lm::nn::MultiHeadAttention<B>, Tensor<B, 3>) {
    let device = Default::default();
    let mha = MultiHeadAttentionConfig::new(8, 4)
        .with_n_kv_heads(Some(n_kv))
        .with_rotary_base(rotary)
        .init::<B>(&device)
        .unwrap();
    let x = Tensor::<B, 3>::random([2, 7, 8], Distribution::Normal(0.0, 1.0), &device);
    (mha, x)
}

#[test]
fn incremental_decoding_equals_the_full_causal_forward() {
    // Rotary positions must continue from the cache's length.
    for (n_kv, rotary) in [(4, None), (2, None), (2, Some(10000.0))] {
        let (mha, x) = setup_rotary(n_kv, rotary);
        let causal = AttentionMasks {
            causal: true,
            ..Default::default()
        };
        let (full, _) = mha.forward_self(x.clone(), &causal, false).unwrap();
        let mut cache = KvCache::new(2, n_kv, 2, 16, &Default::default());
        // A prompt of 3 positions at once, then one position at a time.
        let mut parts = vec![
            mha.forward_cached(x.clone().slice([0..2, 0..3]), &mut cache, &causal)
                .unwrap(),
        ];
        for t in 3..7 {
            parts.push(
                mha.forward_cached(x.clone().slice([0..2, t..t + 1]), &mut cache, &causal)
                    .unwrap(),
            );
        }
        assert_eq!(cache.len(), 7);
        let stepped = Tensor::cat(parts, 1);
        assert_close(
            &format!("n_kv={n_kv}, rotary {rotary:?}"),
            stepped.into_data(),
            full.into_data(),
            1e-12,
            1e-10,
        );
    }
}

#[test]
fn a_full_cache_is_an_error_and_reset_empties_it() {
    let (mha, x) = setup(4);
    let causal = AttentionMasks {
        causal: true,
        ..Default::default()
    };
    let mut cache = KvCache::new(2, 4, 2, 4, &Default::default());
    mha.forward_cached(x.clone().slice([0..2, 0..3]), &mut cache, &causal)
        .unwrap();
    let err = mha
        .forward_cached(x.clone().slice([0..2, 3..5]), &mut cache, &causal)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::CacheFull {
                capacity: 4,
                needed: 5
            }
        ),
        "{err}"
    );
    assert_eq!(cache.len(), 3, "a refused append leaves the cache as it was");
    cache.reset();
    assert!(cache.is_empty());
    mha.forward_cached(x.slice([0..2, 0..4]), &mut cache, &causal)
        .unwrap();
    assert_eq!(cache.len(), 4);
}

#[test]
fn reordering_the_cache_equals_decoding_the_reordered_batch() {
    let (mha, x) = setup(2);
    let device = Default::default();
    let causal = AttentionMasks {
        causal: true,
        ..Default::default()
    };
    let swap = Tensor::<B, 1, Int>::from_data(TensorData::new(vec![1i64, 0], [2]), &device);
    // Decode 4 positions, swap the two sequences, decode the 5th.
    let mut cache = KvCache::new(2, 2, 2, 8, &device);
    mha.forward_cached(x.clone().slice([0..2, 0..4]), &mut cache, &causal)
        .unwrap();
    cache.reorder(swap.clone()).unwrap();
    let swapped = x.clone().select(0, swap);
    let last = mha
        .forward_cached(swapped.clone().slice([0..2, 4..5]), &mut cache, &causal)
        .unwrap();
    let (full, _) = mha
        .forward_self(swapped.slice([0..2, 0..5]), &causal, false)
        .unwrap();
    assert_close(
        "reordered",
        last.into_data(),
        full.slice([0..2, 4..5]).into_data(),
        1e-12,
        1e-10,
    );
    assert!(
        cache
            .reorder(Tensor::<B, 1, Int>::from_data(
                TensorData::new(vec![0i64, 2], [2]),
                &device
            ))
            .is_err()
    );
}
