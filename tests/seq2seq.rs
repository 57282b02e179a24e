//! `TransformerSeq2Seq` against PyTorch's translation-tutorial model around `nn.Transformer`
//! (`tests/fixtures/make_seq2seq.py`); cached decoding against teacher forcing; padding.

mod common;

use burn::backend::{Autodiff, NdArray};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Bool, Int, Tensor, TensorData};
use common::{Fixture, assert_close, fixture_path};
use ember_lm::Error;
use ember_lm::io::StateDict;
use ember_lm::models::{TransformerSeq2Seq, TransformerSeq2SeqConfig};

fn config() -> TransformerSeq2SeqConfig {
    TransformerSeq2SeqConfig::new(23, 19)
        .with_d_model(16)
        .with_n_heads(2)
        .with_num_encoder_layers(2)
        .with_num_decoder_layers(2)
        .with_d_ff(32)
        .with_dropout(0.0)
        .with_max_len(64)
}

fn load<B: ember_lm::Backend>(device: &B::Device) -> TransformerSeq2Seq<B> {
    let dict = StateDict::from_file(fixture_path("seq2seq/weights.safetensors")).unwrap();
    config()
        .init::<B>(device)
        .unwrap()
        .load_state_dict(&dict, "")
        .unwrap()
}

fn check<B: AutodiffBackend + ember_lm::Backend>(device: &B::Device) {
    let io = Fixture::load("seq2seq/io.safetensors");
    let model = load::<B>(device);
    let src = Tensor::<B, 2, Int>::from_data(io.data("src"), device);
    let pad = Tensor::<B, 2, Bool>::from_data(io.data("src_padding"), device);
    let tgt = Tensor::<B, 2, Int>::from_data(io.data("tgt"), device);
    let logits = model.forward(src, Some(pad), tgt.clone(), None).unwrap();
    assert_close("seq2seq logits", logits.to_data(), io.data("logits"), 1e-5, 1e-4);
    let [b, t, v] = logits.dims();
    let loss = CrossEntropyLossConfig::new().init(device).forward(
        logits.slice([0..b, 0..t - 1]).reshape([b * (t - 1), v]),
        tgt.slice([0..b, 1..t]).reshape([b * (t - 1)]),
    );
    assert_close("seq2seq loss", loss.to_data(), io.data("loss"), 1e-5, 1e-4);
    let grads = loss.backward();
    for (name, p) in [
        ("src_embed.weight", &model.src_embed),
        ("tgt_embed.weight", &model.tgt_embed),
    ] {
        assert_close(
            &format!("seq2seq grad {name}"),
            p.val().grad(&grads).unwrap().to_data(),
            io.data(&format!("grad.{name}")),
            1e-5,
            1e-4,
        );
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
