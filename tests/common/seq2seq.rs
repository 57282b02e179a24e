//! The `TransformerSeq2Seq` parity check (used by the CPU tests and the wgpu suite).
#![allow(dead_code)]

use super::{Fixture, assert_close, fixture_path};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Bool, Int, Tensor};
use ember_lm::io::{StateDict, TorchWeights};
use ember_lm::models::{TransformerSeq2Seq, TransformerSeq2SeqConfig};

pub fn config() -> TransformerSeq2SeqConfig {
    TransformerSeq2SeqConfig::new(23, 19)
        .with_d_model(16)
        .with_n_heads(2)
        .with_num_encoder_layers(2)
        .with_num_decoder_layers(2)
        .with_d_ff(32)
        .with_dropout(0.0)
        .with_max_len(64)
}

pub fn load<B: ember_lm::Backend>(device: &B::Device) -> TransformerSeq2Seq<B> {
    let dict = StateDict::from_file(fixture_path("seq2seq/weights.safetensors")).unwrap();
    config()
        .init::<B>(device)
        .unwrap()
        .load_state_dict(&dict, "")
        .unwrap()
}

pub fn check<B: ember_lm::TrainBackend>(device: &B::Device, atol: f64, rtol: f64) {
    let io = Fixture::load("seq2seq/io.safetensors");
    let model = load::<B>(device);
    let src = Tensor::<B, 2, Int>::from_data(io.data("src"), device);
    let pad = Tensor::<B, 2, Bool>::from_data(io.data("src_padding"), device);
    let tgt = Tensor::<B, 2, Int>::from_data(io.data("tgt"), device);
    let logits = model.forward(src, Some(pad), tgt.clone(), None).unwrap();
    assert_close("seq2seq logits", logits.to_data(), io.data("logits"), atol, rtol);
    let [b, t, v] = logits.dims();
    let loss = CrossEntropyLossConfig::new().init(device).forward(
        logits.slice([0..b, 0..t - 1]).reshape([b * (t - 1), v]),
        tgt.slice([0..b, 1..t]).reshape([b * (t - 1)]),
    );
    assert_close("seq2seq loss", loss.to_data(), io.data("loss"), atol, rtol);
    let grads = loss.backward();
    for (name, p) in [
        ("src_embed.weight", &model.src_embed),
        ("tgt_embed.weight", &model.tgt_embed),
    ] {
        assert_close(
            &format!("seq2seq grad {name}"),
            p.val().grad(&grads).unwrap().to_data(),
            io.data(&format!("grad.{name}")),
            atol,
            rtol,
        );
    }
}
