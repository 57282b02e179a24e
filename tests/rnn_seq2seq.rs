//! `RnnSeq2Seq` against PyTorch's translation tutorial (fixture `tests/fixtures/make_rnn_seq2seq.py`):
//! teacher-forced logits, loss and embedding gradients; greedy translation through `Generator`;
//! source padding changes nothing; both encoder-decoders learn a toy task with `TranslationTask`.
#![cfg(feature = "ndarray")]

mod common;

use burn::backend::{Autodiff, NdArray};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Int, Tensor};
use common::{Fixture, assert_close, fixture_path};
use ember_lm::data::PairBatches;
use ember_lm::generate::{GenerationConfig, Generator};
use ember_lm::io::{StateDict, TorchWeights};
use ember_lm::models::{
    AttentionScore, Conditioned, RnnSeq2Seq, RnnSeq2SeqConfig, TransformerSeq2Seq, TransformerSeq2SeqConfig,
};
use ember_lm::optim::{LrSchedule, OptimizerConfig};
use ember_lm::train::{ProgressMode, Trainer, TrainerConfig, TranslationTask};

type A = Autodiff<NdArray>;

fn tutorial() -> RnnSeq2Seq<A> {
    let dict = StateDict::from_file(fixture_path("rnn_seq2seq/weights.safetensors")).unwrap();
    RnnSeq2SeqConfig::new(20, 25, 16)
        .with_dropout(0.0)
        .init::<A>(&Default::default())
        .unwrap()
        .load_state_dict(&dict, "")
        .unwrap()
}

#[test]
fn matches_the_pytorch_translation_tutorial() {
    let device = Default::default();
    let fx = Fixture::load("rnn_seq2seq/io.safetensors");
    let model = tutorial();
    let src: Tensor<A, 2, Int> = Tensor::from_data(fx.data("src"), &device);
    let tgt_in: Tensor<A, 2, Int> = Tensor::from_data(fx.data("tgt_in"), &device);
    let tgt_out: Tensor<A, 2, Int> = Tensor::from_data(fx.data("tgt_out"), &device);
    let logits = model.forward(src, &[6, 6, 6], tgt_in).unwrap();
    assert_close(
        "logits",
        logits.clone().into_data(),
        fx.data("logits"),
        1e-5,
        1e-4,
    );
    let [b, t, v] = logits.dims();
    let loss = CrossEntropyLossConfig::new()
        .init(&device)
        .forward(logits.reshape([b * t, v]), tgt_out.reshape([b * t]));
    assert_close("loss", loss.clone().into_data(), fx.data("loss"), 1e-5, 1e-4);
    let grads = loss.backward();
    assert_close(
        "encoder embedding grad",
        model.encoder_embedding.grad(&grads).unwrap().into_data(),
        fx.data("grad.encoder.embedding"),
        1e-5,
        1e-3,
    );
    assert_close(
        "decoder embedding grad",
        model.decoder_embedding.grad(&grads).unwrap().into_data(),
        fx.data("grad.decoder.embedding"),
        1e-5,
        1e-3,
    );

    // Greedy translation of the first source, through the generic Generator.
    let src0: Vec<u32> = fx.data("src").iter::<i64>().take(6).map(|v| v as u32).collect();
    let expected: Vec<u32> = fx.data("greedy").iter::<i64>().map(|v| v as u32).collect();
    let lm = Conditioned::new(&model, &src0, 32, &device).unwrap();
    let out = Generator::new(&lm, GenerationConfig::greedy(6), &device)
        .unwrap()
        .generate(&[vec![0]])
        .unwrap();
    assert_eq!(out[0][0].tokens, expected);
    // Beam search runs on the same interface.
    let beams = GenerationConfig::new()
        .with_num_beams(3)
        .with_num_return_sequences(3)
        .with_max_new_tokens(6);
    let out = Generator::new(&lm, beams, &device)
        .unwrap()
        .generate(&[vec![0]])
        .unwrap();
    assert_eq!(out[0].len(), 3);
    assert!(out[0][0].score >= out[0][1].score && out[0][1].score >= out[0][2].score);
}

#[test]
fn source_padding_changes_nothing() {
    let device = Default::default();
    for score in [
        AttentionScore::Bahdanau,
        AttentionScore::LuongGeneral,
        AttentionScore::LuongDot,
    ] {
        let model = RnnSeq2SeqConfig::new(12, 12, 8)
            .with_score(score)
            .with_dropout(0.0)
            .init::<NdArray>(&device)
            .unwrap();
        let tgt = Tensor::<NdArray, 2, Int>::from_ints([[1, 4, 5]], &device);
        let alone = model
            .forward(Tensor::from_ints([[3, 7, 9]], &device), &[3], tgt.clone())
            .unwrap();
        let padded = model
            .forward(Tensor::from_ints([[3, 7, 9, 0, 0, 0]], &device), &[3], tgt)
            .unwrap();
        let err: f32 = (alone - padded).abs().max().into_scalar();
        assert!(err < 1e-5, "{score:?}: padding changed the logits by {err}");
        assert!(
            model
                .start_decoding(Tensor::from_ints([[3, 7]], &device), &[3])
                .is_err()
        );
    }
}

#[test]
fn both_encoder_decoders_learn_to_reverse_short_sequences() {
    let device = Default::default();
    // Reverse sequences of 2–4 symbols from 4..10; pad 0, bos 1, eos 2.
    let mut rng = ember_lm::data::SplitMix64::new(1);
    let pairs: Vec<(Vec<u32>, Vec<u32>)> = (0..200)
        .map(|_| {
            let n = 2 + rng.below(3) as usize;
            let s: Vec<u32> = (0..n).map(|_| 4 + rng.below(6) as u32).collect();
            let t = s.iter().rev().copied().collect();
            (s, t)
        })
        .collect();
    let data = PairBatches::new(pairs.clone(), 16, 0, 1, 2).unwrap();
    let valid = PairBatches::new(pairs[..32].to_vec(), 16, 0, 1, 2)
        .unwrap()
        .with_shuffle(false);
    let cfg = TrainerConfig::new()
        .with_max_epochs(Some(15))
        .with_progress(ProgressMode::Off);
    let adam = OptimizerConfig::adam().with_lr(1e-2);

    let rnn_config = RnnSeq2SeqConfig::new(10, 10, 32).with_dropout(0.0);
    let mut rnn = Trainer::new(
        cfg.clone(),
        TranslationTask::<RnnSeq2Seq<A>>::new(&rnn_config, 0),
        rnn_config.init::<A>(&device).unwrap(),
        &adam,
        LrSchedule::Constant,
        &device,
    )
    .unwrap();
    let r = rnn.fit(&data, Some(&valid)).unwrap();
    let last = r.last_valid.unwrap();
    let rnn_acc = last.acc.unwrap();
    // Translation reports perplexity per target token, not bits per character.
    assert_eq!(last.ppl, Some(last.loss.exp()));
    assert_eq!(last.bpc, None);

    let tf_config = TransformerSeq2SeqConfig::new(10, 10)
        .with_d_model(32)
        .with_n_heads(2)
        .with_num_encoder_layers(1)
        .with_num_decoder_layers(1)
        .with_d_ff(64)
        .with_dropout(0.0)
        .with_max_len(16);
    let mut tf = Trainer::new(
        cfg.with_max_epochs(Some(30)),
        TranslationTask::<TransformerSeq2Seq<A>>::new(&tf_config, 0),
        tf_config.init::<A>(&device).unwrap(),
        &OptimizerConfig::adam().with_lr(2e-3),
        LrSchedule::Constant,
        &device,
    )
    .unwrap();
    let r = tf.fit(&data, Some(&valid)).unwrap();
    let tf_acc = r.last_valid.unwrap().acc.unwrap();
    assert!(
        rnn_acc > 0.6 && tf_acc > 0.6,
        "next-token accuracy: rnn {rnn_acc}, transformer {tf_acc}"
    );
}
