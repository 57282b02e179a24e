//! `TransformerSeq2Seq` against PyTorch's translation-tutorial model around `nn.Transformer`
//! (`tests/fixtures/make_seq2seq.py`); cached decoding against teacher forcing; padding.

mod common;

use burn::backend::{Autodiff, NdArray};
use burn::tensor::{Bool, Int, Tensor, TensorData};
use common::seq2seq::config;
use common::seq2seq::{check, load};
use common::{Fixture, assert_close};
use ember_lm::Error;

#[test]
fn ndarray_matches_pytorch() {
    check::<Autodiff<NdArray<f32>>>(&Default::default(), 1e-5, 1e-4);
}

#[cfg(feature = "flex")]
#[test]
fn flex_matches_pytorch() {
    check::<Autodiff<burn::backend::Flex>>(&Default::default(), 1e-5, 1e-4);
}

type B = NdArray<f32>;

#[test]
fn cached_decoding_equals_teacher_forcing() {
    let device = Default::default();
    let io = Fixture::load("seq2seq/io.safetensors");
    let model = load::<B>(&device);
    let src = Tensor::<B, 2, Int>::from_data(io.data("src"), &device);
    let pad = Tensor::<B, 2, Bool>::from_data(io.data("src_padding"), &device);
    let tgt = Tensor::<B, 2, Int>::from_data(io.data("tgt"), &device);
    let full = model
        .forward(src.clone(), Some(pad.clone()), tgt.clone(), None)
        .unwrap();
    let mut state = model.start_decoding(src, Some(pad), 8).unwrap();
    let mut parts = vec![
        model
            .decode_step(tgt.clone().slice([0..2, 0..2]), &mut state)
            .unwrap(),
    ];
    for t in 2..6 {
        parts.push(
            model
                .decode_step(tgt.clone().slice([0..2, t..t + 1]), &mut state)
                .unwrap(),
        );
    }
    assert_close(
        "cached",
        Tensor::cat(parts, 1).into_data(),
        full.into_data(),
        1e-5,
        1e-4,
    );
}

#[test]
fn source_padding_does_not_change_the_translation() {
    let device = Default::default();
    let io = Fixture::load("seq2seq/io.safetensors");
    let model = load::<B>(&device);
    // Sequence 1 of the fixture has 4 real source tokens out of 7.
    let src = Tensor::<B, 2, Int>::from_data(io.data("src"), &device).slice([1..2, 0..7]);
    let tgt = Tensor::<B, 2, Int>::from_data(io.data("tgt"), &device).slice([1..2, 0..6]);
    let padded = Tensor::<B, 2, Bool>::from_data(
        TensorData::new((0..7).map(|t| t >= 4).collect::<Vec<_>>(), [1, 7]),
        &device,
    );
    let a = model
        .forward(src.clone(), Some(padded), tgt.clone(), None)
        .unwrap();
    let b = model.forward(src.slice([0..1, 0..4]), None, tgt, None).unwrap();
    assert_close("padding", a.into_data(), b.into_data(), 1e-5, 1e-4);
}

#[test]
fn bad_ids_are_errors() {
    let device = Default::default();
    let model = config().init::<B>(&device).unwrap();
    let ids = |v: Vec<i64>| Tensor::<B, 2, Int>::from_data(TensorData::new(v, [1, 2]), &device);
    let err = model
        .forward(ids(vec![1, 23]), None, ids(vec![1, 2]), None)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::TokenId {
                found: 23,
                vocab_size: 23
            }
        ),
        "{err}"
    );
    let err = model
        .forward(ids(vec![1, 2]), None, ids(vec![1, 19]), None)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::TokenId {
                found: 19,
                vocab_size: 19
            }
        ),
        "{err}"
    );
}
