//! The layers on `Autodiff<Wgpu>`: PyTorch parity on a few recurrent fixture cases (one per cell
//! type, ragged and bidirectional), on every attention and encoder-layer case and on the BERT
//! family against transformers, and the behaviour that differs between training and inference.
//!
//! All in one binary because each wgpu test binary pays tens of seconds of kernel compilation on
//! Mesa's software Vulkan driver (llvmpipe), which is what CI runs this on.
#![cfg(feature = "wgpu")]

mod common;

use burn::backend::{Autodiff, Wgpu};
use burn::module::AutodiffModule;
use burn::tensor::{Distribution, Tensor};
use common::attention::{check_attention, check_fused_equals_explicit, check_gqa_rotary};
use common::recurrent::check_all;
use common::transformer::{check_decoder_layer, check_encoder_layer};
use ember_lm::nn::{
    AttentionMasks, KvCache, LstmConfig, MultiHeadAttentionConfig, TransformerEncoderLayerConfig,
};

type Ad = Autodiff<Wgpu>;

#[test]
fn wgpu_matches_pytorch_and_behaves() {
    let device = Default::default();
    // GPU transcendental functions are less exact than the CPU's; still far below any real bug.
    check_all::<Ad>(
        &device,
        1e-4,
        1e-3,
        Some(&[
            "lstm_2l_bi_proj",
            "lstm_2l_bi_ragged",
            "gru_2l_bi_ragged",
            "rnn_relu_2l_bi_ragged",
        ]),
    );

    // Attention and the Transformer encoder layer against PyTorch.
    check_attention::<Ad>(&device, 1e-4, 1e-3);
    check_gqa_rotary::<Ad>(&device, 1e-4, 1e-3);
    common::gpt::check_gpt2::<Ad>(&device, 1e-4, 1e-3);
    // BERT, RoBERTa and DistilBERT with every head, losses and gradients; padding invariance.
    common::bert::check_against_transformers::<Ad>(&device, (1e-4, 1e-3));
    common::bert::check_padding_changes_nothing::<Wgpu>(&device, (1e-4, 1e-3));
    // CTC through burn's GPU kernel: losses and the logits' gradients against PyTorch.
    common::ctc::check_against_pytorch::<Ad>(&device, (1e-4, 1e-3));
    common::seq2seq::check::<Ad>(&device, 1e-4, 1e-3);
    // burn's fused attention (cubecl's flash kernel) against the explicit path.
    check_fused_equals_explicit::<Wgpu>(&device, 1e-4);
    check_encoder_layer::<Ad>(&device, 1e-4, 1e-3);
    check_decoder_layer::<Ad>(&device, 1e-4, 1e-3);

    // Repeated calls agree, and asking for the weights does not change the output. (Broadcast
    // batched matmuls made both fail on this driver; the layers use 2-D matmuls.)
    let mha = MultiHeadAttentionConfig::new(8, 2).init::<Ad>(&device).unwrap();
    let x = Tensor::<Ad, 3>::random([2, 5, 8], Distribution::Normal(0.0, 1.0), &device);
    let x2 = x.clone();
    let none = AttentionMasks::default();
    let (a, _) = mha.forward_self(x.clone(), &none, true).unwrap();
    let (b, _) = mha.forward_self(x.clone(), &none, false).unwrap();
    assert_eq!(
        a.into_data(),
        b.into_data(),
        "attention output does not depend on need_weights"
    );
    let layer = TransformerEncoderLayerConfig::new(8, 2)
        .with_d_ff(16)
        .with_dropout(0.0)
        .init::<Ad>(&device)
        .unwrap();
    let once = layer.forward(x.clone(), &none).unwrap();
    let twice = layer.forward(x, &none).unwrap();
    assert_eq!(
        once.into_data(),
        twice.into_data(),
        "the encoder layer is deterministic"
    );

    // Incremental decoding with a KV cache equals the full causal forward.
    let causal = AttentionMasks {
        causal: true,
        ..Default::default()
    };
    let (full, _) = mha.forward_self(x2.clone(), &causal, false).unwrap();
    let mut cache = KvCache::new(2, 2, 4, 8, &device);
    let steps: Vec<_> = (0..5)
        .map(|t| {
            mha.forward_cached(x2.clone().slice([0..2, t..t + 1]), &mut cache, &causal)
                .unwrap()
        })
        .collect();
    let err: f32 = (Tensor::cat(steps, 1) - full).abs().max().into_scalar();
    assert!(err < 1e-4, "cached decoding differs by {err}");

    // Dropout between layers acts while training (autodiff backend) and not in inference.
    let lstm = LstmConfig::new(3, 8)
        .with_num_layers(2)
        .with_dropout(0.5)
        .init::<Ad>(&device)
        .unwrap();
    let x = Tensor::<Ad, 3>::random([2, 5, 3], Distribution::Normal(0.0, 1.0), &device);
    let (a, _) = lstm.forward(x.clone(), None).unwrap();
    let (b, _) = lstm.forward(x.clone(), None).unwrap();
    let diff: f32 = (a - b).abs().sum().into_scalar();
    assert!(diff > 1e-4, "two training passes with dropout 0.5 differ");
    let inference = lstm.valid();
    let (c, _) = inference.forward(x.clone().inner(), None).unwrap();
    let (d, _) = inference.forward(x.inner(), None).unwrap();
    let diff: f32 = (c - d).abs().sum().into_scalar();
    assert_eq!(diff, 0.0, "inference is deterministic");

    check_trainer(&device);
    check_text_models(&device);
    // The speech model trains and transcribes through CtcTask.
    common::speech::check_learns_two_utterances::<Ad>(&device);
}

/// The text models and generation on the GPU backend: RnnLm and RnnSeq2Seq against their PyTorch
/// fixtures, classifier padding invariance, beam search against transformers' on GPT-2.
fn check_text_models(device: &burn::backend::wgpu::WgpuDevice) {
    use burn::tensor::{Int, TensorData};
    use common::{Fixture, assert_close, fixture_path};
    use ember_lm::generate::{GenerationConfig, Generator};
    use ember_lm::io::{StateDict, TorchWeights};
    use ember_lm::models::{
        Conditioned, EncoderKind, Gpt, LanguageModel, RnnLmConfig, RnnSeq2SeqConfig, SequenceClassifierConfig,
    };
    use ember_lm::nn::CellType;

    // A single sequence gives the same as in a batch of two (burn-wgpu's fusion got batch 1 wrong;
    // ember-lm runs it as two rows).
    for cell in [CellType::Gru, CellType::Lstm, CellType::RnnTanh] {
        let rnn = ember_lm::nn::RecurrentConfig::new(cell, 16, 16)
            .init::<Wgpu>(device)
            .unwrap();
        let values: Vec<f32> = (0..96).map(|i| (i as f32 * 0.37).sin()).collect();
        let x1 = Tensor::<Wgpu, 3>::from_data(TensorData::new(values, [1, 6, 16]), device);
        let (one, _) = rnn.forward(x1.clone(), None, None).unwrap();
        let (two, _) = rnn
            .forward(Tensor::cat(vec![x1.clone(), x1], 0), None, None)
            .unwrap();
        let err: f32 = (one - two.slice([0..1, 0..6, 0..16])).abs().max().into_scalar();
        assert!(err < 1e-5, "{cell:?}: batch 1 differs from batch 2 by {err}");
        // And under autodiff (the device backward's forward).
        let rnn = ember_lm::nn::RecurrentConfig::new(cell, 16, 16)
            .init::<Ad>(device)
            .unwrap();
        let values: Vec<f32> = (0..96).map(|i| (i as f32 * 0.37).sin()).collect();
        let x1 =
            Tensor::<Ad, 3>::from_data(TensorData::new(values.clone(), [1, 6, 16]), device).require_grad();
        let (one, _) = rnn.forward(x1.clone(), None, None).unwrap();
        let x2 = Tensor::<Ad, 3>::from_data(
            TensorData::new([values.clone(), values].concat(), [2, 6, 16]),
            device,
        )
        .require_grad();
        let (two, _) = rnn.forward(x2.clone(), None, None).unwrap();
        let err: f32 = (one.clone() - two.clone().slice([0..1, 0..6, 0..16]))
            .abs()
            .max()
            .into_scalar();
        assert!(
            err < 1e-5,
            "{cell:?} (autodiff): batch 1 differs from batch 2 by {err}"
        );
        // The gradients agree too: d(sum of row 0)/d(input row 0).
        let g1 = x1.grad(&(one * 0.5).sum().backward()).unwrap();
        let g2 = x2
            .grad(&(two.slice([0..1, 0..6, 0..16]) * 0.5).sum().backward())
            .unwrap();
        let err: f32 = (g1 - g2.slice([0..1, 0..6, 0..16])).abs().max().into_scalar();
        assert!(
            err < 1e-5,
            "{cell:?} (autodiff): batch-1 input gradient differs by {err}"
        );
    }

    // RnnLm (tied LSTM) against PyTorch's word-language-model, and stepping = the full forward.
    let dict = StateDict::from_file(fixture_path("rnn_lm/lstm_tied.weights.safetensors")).unwrap();
    let lm = RnnLmConfig::new(50, 16, 16)
        .with_dropout(0.0)
        .with_tie_weights(true)
        .init::<Ad>(device)
        .unwrap()
        .load_state_dict(&dict, "")
        .unwrap();
    let fx = Fixture::load("rnn_lm/lstm_tied.io.safetensors");
    let ids: Tensor<Ad, 2, Int> = Tensor::from_data(fx.data("ids"), device);
    let (logits, _) = lm.forward(ids.clone(), None).unwrap();
    assert_close(
        "wgpu RnnLm logits",
        logits.clone().into_data(),
        fx.data("logits"),
        1e-4,
        1e-3,
    );
    let mut state = lm.init_state(3, device);
    let steps: Vec<_> = (0..7)
        .map(|t| lm.step(ids.clone().slice([0..3, t..t + 1]), &mut state).unwrap())
        .collect();
    let err: f32 = (Tensor::cat(steps, 1) - logits).abs().max().into_scalar();
    assert!(err < 1e-4, "wgpu RnnLm stepping differs by {err}");

    // RnnSeq2Seq against the PyTorch tutorial, and its greedy translation through the Generator.
    let dict = StateDict::from_file(fixture_path("rnn_seq2seq/weights.safetensors")).unwrap();
    let s2s = RnnSeq2SeqConfig::new(20, 25, 16)
        .with_dropout(0.0)
        .init::<Wgpu>(device)
        .unwrap()
        .load_state_dict(&dict, "")
        .unwrap();
    let fx = Fixture::load("rnn_seq2seq/io.safetensors");
    let logits = s2s
        .forward(
            Tensor::from_data(fx.data("src"), device),
            &[6, 6, 6],
            Tensor::from_data(fx.data("tgt_in"), device),
        )
        .unwrap();
    assert_close(
        "wgpu RnnSeq2Seq logits",
        logits.into_data(),
        fx.data("logits"),
        1e-4,
        1e-3,
    );
    let src0: Vec<u32> = fx.data("src").iter::<i64>().take(6).map(|v| v as u32).collect();
    let cond = Conditioned::new(&s2s, &src0, 16, device).unwrap();
    let out = Generator::new(&cond, GenerationConfig::greedy(6), device)
        .unwrap()
        .generate(&[vec![0]])
        .unwrap();
    let expected: Vec<u32> = fx.data("greedy").iter::<i64>().map(|v| v as u32).collect();
    assert_eq!(out[0][0].tokens, expected);

    // Classifier: padding never changes the prediction.
    for encoder in [
        EncoderKind::Recurrent {
            cell: CellType::Lstm,
            hidden_size: 8,
            num_layers: 1,
            bidirectional: true,
        },
        EncoderKind::Transformer {
            n_heads: 2,
            d_ff: 16,
            num_layers: 1,
            max_len: 16,
        },
    ] {
        let clf = SequenceClassifierConfig::new(12, 8, 3, encoder)
            .init::<Wgpu>(device)
            .unwrap();
        let short = clf
            .forward(
                Tensor::from_data(TensorData::new(vec![5i64, 9, 2], [1, 3]), device),
                &[3],
            )
            .unwrap();
        let padded = clf
            .forward(
                Tensor::from_data(TensorData::new(vec![5i64, 9, 2, 0, 0, 0, 0], [1, 7]), device),
                &[3],
            )
            .unwrap();
        let err: f32 = (short - padded).abs().max().into_scalar();
        assert!(err < 1e-4, "wgpu classifier: padding changed the logits by {err}");
    }

    // Beam search on the tiny GPT-2 against transformers' generate (the fixture's first case).
    let gpt = Gpt::<Wgpu>::from_pretrained(fixture_path("gpt2-tiny"), device).unwrap();
    let beams: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture_path("generation/beams.json")).unwrap())
            .unwrap();
    let v = |x: &serde_json::Value| -> Vec<u32> {
        x.as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_u64().unwrap() as u32)
            .collect()
    };
    let case = &beams["cases"][0];
    let config = GenerationConfig::new()
        .with_num_beams(4)
        .with_max_new_tokens(12)
        .with_num_return_sequences(3)
        .with_eos_token_ids(v(&case["settings"]["eos_token_id"]));
    let out = Generator::new(&gpt, config, device)
        .unwrap()
        .generate(&[v(&beams["prompt"])])
        .unwrap();
    let got: Vec<Vec<u32>> = out[0].iter().map(|g| g.tokens.clone()).collect();
    let expected: Vec<Vec<u32>> = case["sequences"].as_array().unwrap().iter().map(v).collect();
    assert_eq!(got, expected, "wgpu beam search");
}

/// The trainer on the GPU backend: accumulation, clipping, a schedule, validation, a checkpoint,
/// and a resume that restores the trained parameters exactly.
fn check_trainer(device: &burn::backend::wgpu::WgpuDevice) {
    use common::train::{param_values, quiet, tmp};
    use ember_lm::data::{LmShape, LmWindows};
    use ember_lm::models::GptConfig;
    use ember_lm::optim::{GradClip, LrSchedule, OptimizerConfig};
    use ember_lm::train::{GptLmTask, Trainer};

    let config = GptConfig::new()
        .with_vocab_size(16)
        .with_block_size(8)
        .with_n_layer(1)
        .with_n_head(2)
        .with_n_embd(16);
    let tokens: Vec<i64> = (0..800).map(|i| i % 16).collect();
    let train = LmWindows::new(
        tokens.clone(),
        LmShape {
            batch_size: 4,
            seq_len: 8,
        },
    )
    .unwrap();
    let valid = LmWindows::new(
        tokens,
        LmShape {
            batch_size: 4,
            seq_len: 8,
        },
    )
    .unwrap()
    .with_batches_per_epoch(2);
    let dir = tmp("wgpu");
    let optim = OptimizerConfig::adamw()
        .with_lr(1e-2)
        .with_clip(Some(GradClip::Norm(1.0)));
    let make = |steps| {
        Trainer::new(
            quiet()
                .with_max_steps(Some(steps))
                .with_grad_accum(2)
                .with_valid_every(Some(10))
                .with_run_dir(Some(dir.clone())),
            GptLmTask::new(config.clone()),
            config.init::<Ad>(device).unwrap(),
            &optim,
            LrSchedule::warmup_cosine(2, 20, 1e-3),
            device,
        )
        .unwrap()
    };
    let mut trainer = make(20);
    let report = trainer.fit(&train, Some(&valid)).unwrap();
    let last_train = report.last_train.as_ref().unwrap();
    let valid_loss = report.last_valid.as_ref().unwrap().loss;
    // An untrained model scores about ln 16 = 2.77 nats; 20 steps of warmup-cosine learn a good part.
    assert!(
        valid_loss < 0.8 * 16f64.ln(),
        "the repeating sequence is being learnt (valid loss {valid_loss})"
    );
    assert!(last_train.grad_norm.unwrap().is_finite());
    let resumed = make(30).resume(&dir).unwrap();
    assert_eq!(resumed.step(), 20);
    assert!(param_values(resumed.model()) == param_values(trainer.model()));
    let _ = std::fs::remove_dir_all(&dir);
}
