//! The bad-input probe, one test per category of public entry point: loaders, forwards,
//! generation settings, tokenizers, data and tasks, optimizer and trainer configurations. Each case
//! was a panic, an abort or a silently wrong result before; each must be a typed `Err` that says
//! what was expected and what was found.
#![cfg(feature = "ndarray")]

mod common;

use std::io::Write;

use burn::backend::{Autodiff, NdArray};
use burn::tensor::{Int, Tensor, TensorData};
use ember_lm::Error;
use ember_lm::data::{CharTokenizer, ClassBatch, PairBatch, TokenBatch, Tokenizer};
use ember_lm::generate::{GenerationConfig, Generator};
use ember_lm::io::{StateDict, TorchWeights};
use ember_lm::models::{
    EncoderKind, GptConfig, LanguageModel, RnnLmConfig, RnnSeq2SeqConfig, SequenceClassifierConfig,
    TransformerSeq2SeqConfig,
};
use ember_lm::nn::{
    CellType, LstmConfig, LstmState, MultiHeadAttentionConfig, PositionsConfig, RecurrentState,
    TorchLayerNorm, TorchLinear,
};
use ember_lm::optim::{Algorithm, LrSchedule, LrScheduler, OptimizerConfig};
use ember_lm::train::{
    ClassificationTask, EarlyStopping, GptLmTask, RnnLmTask, Task, TrainerConfig, TranslationTask,
};

type B = NdArray<f32>;
type AD = Autodiff<NdArray<f32>>;

fn dev() -> burn::backend::ndarray::NdArrayDevice {
    Default::default()
}

fn tmp_file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ember-bad-input-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// `[[[...]]]` `depth` deep as a protocol-2 pickle: EMPTY_LIST × depth, APPEND × (depth − 1).
fn nested_list_pickle(depth: usize) -> Vec<u8> {
    let mut p = vec![0x80, 2];
    p.extend(std::iter::repeat_n(b']', depth));
    p.extend(std::iter::repeat_n(b'a', depth - 1));
    p.push(b'.');
    p
}

#[test]
fn loaders() {
    // A legacy (non-zip) torch.save file whose object nests 150 000 lists deep (about 300 KB):
    // burn-store's reader overflowed the stack dropping it and aborted the process.
    let mut legacy = vec![
        0x80, 2, 0x8a, 10, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, b'.',
    ];
    legacy.extend(nested_list_pickle(150_000));
    let err = StateDict::from_file(tmp_file("deep.pt", &legacy)).unwrap_err();
    assert!(
        matches!(err, Error::Load { .. }) && err.to_string().contains("nests"),
        "{err}"
    );
    // The same pickle as a zip checkpoint's data.pkl.
    let mut zipped = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut zipped);
        let stored =
            zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        zip.start_file("archive/data.pkl", stored).unwrap();
        zip.write_all(&nested_list_pickle(150_000)).unwrap();
        zip.finish().unwrap();
    }
    let path = tmp_file("deep-zip.pt", zipped.get_ref());
    let err = StateDict::from_torch_checkpoint(&path, "model").unwrap_err();
    assert!(err.to_string().contains("nests"), "{err}");
    // A real legacy checkpoint passes the guard and loads the values torch saved.
    let legacy = StateDict::from_file(common::fixture_path("legacy/linear_legacy.pt")).unwrap();
    let twin = StateDict::from_file(common::fixture_path("legacy/linear.safetensors")).unwrap();
    let weight = |d: &StateDict| {
        d.tensor::<B, 2>("weight", &dev())
            .unwrap()
            .into_data()
            .to_vec::<f32>()
            .unwrap()
    };
    let bias = |d: &StateDict| {
        d.tensor::<B, 1>("bias", &dev())
            .unwrap()
            .into_data()
            .to_vec::<f32>()
            .unwrap()
    };
    assert_eq!(weight(&legacy), weight(&twin));
    assert_eq!(bias(&legacy), bias(&twin));
    // Memo references doubled 40 times would build 2^40 values.
    let mut bomb = vec![0x80, 2, b')', 0x94];
    for i in 0..40u8 {
        bomb.extend_from_slice(&[b'h', i, b'h', i, 0x86, 0x94]);
    }
    bomb.push(b'.');
    let err = StateDict::from_file(tmp_file("bomb.pt", &bomb)).unwrap_err();
    assert!(err.to_string().contains("values"), "{err}");

    // A safetensors file holding NaN: the key is named.
    let values: Vec<u8> = [1.0f32, f32::NAN, 2.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![3], &values).unwrap();
    let bytes = safetensors::serialize([("layer.bias", view)], None).unwrap();
    let dict = StateDict::from_file(tmp_file("nan.safetensors", &bytes)).unwrap();
    let err = dict.tensor::<B, 1>("layer.bias", &dev()).unwrap_err();
    assert!(
        matches!(&err, Error::NotFinite { what } if what.contains("`layer.bias`")),
        "{err}"
    );

    // GPT-2 config.json: a field of the wrong type and n_embd / n_head are named as the file has them.
    let config = std::fs::read_to_string(common::fixture_path("gpt2-tiny/config.json")).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&config).unwrap();
    json["n_embd"] = "64".into();
    let err =
        GptConfig::from_hf_config(tmp_file("config-type.json", json.to_string().as_bytes())).unwrap_err();
    assert!(
        err.to_string()
            .contains("field `n_embd`: invalid type: string \"64\""),
        "{err}"
    );
    json["n_embd"] = 66.into();
    let err =
        GptConfig::from_hf_config(tmp_file("config-heads.json", json.to_string().as_bytes())).unwrap_err();
    assert!(
        err.to_string()
            .contains("n_embd (66) must be a positive multiple of n_head (4)"),
        "{err}"
    );
}

#[test]
fn forwards() {
    let x = Tensor::<B, 3>::zeros([2, 3, 5], &dev());
    let err = TorchLinear::<B>::new(4, 2, true, &dev())
        .forward(x.clone())
        .unwrap_err();
    assert!(
        matches!(&err, Error::Shape { found, .. } if found == &vec![2, 3, 5]),
        "{err}"
    );
    let err = TorchLayerNorm::<B>::new(4, 1e-5, true, &dev())
        .forward(x.clone())
        .unwrap_err();
    assert!(err.to_string().contains("[batch, len, 4]"), "{err}");

    // Positions past the table, the offset near usize::MAX included.
    let positions = PositionsConfig::new(5, 8).init_sinusoidal::<B>(&dev()).unwrap();
    assert!(positions.forward(x.clone(), usize::MAX).is_err());
    assert!(positions.forward(x.clone(), 6).is_err());
    assert!(positions.forward(x.clone(), 5).is_ok());

    // Recurrent states: flags and indices that do not fit the batch.
    let state = RecurrentState::<B> {
        hidden: Tensor::zeros([1, 2, 4], &dev()),
        cell: None,
    };
    assert!(state.clone().mask_rows(Tensor::ones([3], &dev())).is_err());
    let err = state.clone().select(&[0, 2]).unwrap_err();
    assert!(matches!(err, Error::Index { index: 2, len: 2, .. }), "{err}");

    // Reordering decoding states: the bad index is named, the state is untouched.
    let rnn_lm = RnnLmConfig::new(10, 4, 4).init::<B>(&dev()).unwrap();
    let mut s = rnn_lm.init_state(2, &dev());
    let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(vec![1i64, 2], [2, 1]), &dev());
    rnn_lm.step(ids, &mut s).unwrap();
    let err = rnn_lm.reorder_state(&mut s, &[1, 5]).unwrap_err();
    assert!(matches!(err, Error::Index { index: 5, len: 2, .. }), "{err}");
    assert_eq!(s.as_ref().unwrap().batch(), 2);
    let gpt = common::gpt::tiny_config().init::<B>(&dev()).unwrap();
    let mut cache = gpt.init_state(2, &dev());
    let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(vec![1i64, 2], [2, 1]), &dev());
    gpt.step(ids, &mut cache).unwrap();
    let err = gpt.reorder_state(&mut cache, &[0, 3]).unwrap_err();
    assert!(err.to_string().contains("index 3 is outside 0..2"), "{err}");
    let seq2seq = RnnSeq2SeqConfig::new(6, 7, 4).init::<B>(&dev()).unwrap();
    let src = Tensor::<B, 2, Int>::from_data(TensorData::new(vec![1i64, 2, 3, 4], [2, 2]), &dev());
    let mut st = seq2seq.start_decoding(src, &[2, 2]).unwrap();
    assert!(matches!(
        seq2seq.reorder(&mut st, &[2]),
        Err(Error::Index { index: 2, .. })
    ));
    let three = Tensor::<B, 2, Int>::from_data(TensorData::new(vec![1i64, 1, 1], [3, 1]), &dev());
    let err = seq2seq.decode_step(three, &mut st).unwrap_err();
    assert!(err.to_string().contains("[2, new]"), "{err}");

    // A token batch too short to predict anything.
    let empty = TokenBatch {
        ids: vec![],
        batch: 2,
        len: 0,
        reset: vec![],
    };
    assert!(empty.inputs_targets().is_err());

    // A projected LSTM's hidden state is proj_size wide: the message says so.
    let lstm = LstmConfig::new(3, 6).with_proj_size(2).init::<B>(&dev()).unwrap();
    let bad = LstmState {
        hidden: Tensor::zeros([1, 2, 6], &dev()),
        cell: Tensor::zeros([1, 2, 6], &dev()),
    };
    let err = lstm
        .forward(Tensor::zeros([2, 3, 3], &dev()), Some(bad))
        .unwrap_err();
    assert!(err.to_string().contains("proj_size"), "{err}");
}

#[test]
fn configurations_that_cannot_be_built() {
    // Sizes whose parameters cannot be allocated: refused by init, not aborted at the first forward.
    let err = LstmConfig::new(4, 1 << 40).init::<B>(&dev()).unwrap_err();
    assert!(err.to_string().contains("weight_ih"), "{err}");
    assert!(LstmConfig::new(4, 1 << 20).init::<B>(&dev()).is_err()); // 2^42 elements
    assert!(
        GptConfig::new()
            .with_vocab_size(1 << 40)
            .with_block_size(8)
            .with_n_layer(1)
            .with_n_head(2)
            .with_n_embd(8)
            .init::<B>(&dev())
            .is_err()
    );
    assert!(RnnLmConfig::new(1 << 33, 8, 8).init::<B>(&dev()).is_err());
    assert!(
        PositionsConfig::new(1 << 20, 1 << 20)
            .init_learned::<B>(&dev())
            .is_err()
    );
    assert!(
        TransformerSeq2SeqConfig::new(1 << 40, 8)
            .init::<B>(&dev())
            .is_err()
    );
    // NaN where a finite value is needed.
    let err = MultiHeadAttentionConfig::new(8, 2)
        .with_rotary_base(Some(f64::NAN))
        .init::<B>(&dev())
        .unwrap_err();
    assert!(err.to_string().contains("base"), "{err}");
    // GptConfig speaks of its own fields.
    let err = GptConfig::new()
        .with_vocab_size(10)
        .with_block_size(8)
        .with_n_layer(1)
        .with_n_head(3)
        .with_n_embd(8)
        .init::<B>(&dev())
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("n_embd (8) must be a positive multiple of n_head (3)"),
        "{err}"
    );
}

#[test]
fn generation_settings() {
    let gpt = common::gpt::tiny_config().init::<B>(&dev()).unwrap();
    // Greedy decoding cannot return several different sequences (transformers raises too).
    let greedy3 = GenerationConfig::greedy(4).with_num_return_sequences(3);
    assert!(matches!(
        Generator::new(&gpt, greedy3, &dev()),
        Err(Error::Config { .. })
    ));
    // Stop strings need a tokenizer to match anything.
    let stops = GenerationConfig::greedy(4).with_stop_strings(vec!["x".into()]);
    let err = Generator::new(&gpt, stops, &dev())
        .unwrap()
        .generate(&[vec![1]])
        .unwrap_err();
    assert!(err.to_string().contains("tokenizer"), "{err}");
    assert!(
        Generator::new(
            &gpt,
            GenerationConfig::greedy(4).with_length_penalty(f64::NAN),
            &dev()
        )
        .is_err()
    );

    // A model with NaN weights: every decoding mode says the logits are not finite.
    let mut broken = gpt.clone();
    broken.wte = burn::module::Param::from_tensor(broken.wte.val().mul_scalar(f32::NAN));
    let modes = [
        GenerationConfig::greedy(4),
        GenerationConfig::greedy(4).with_do_sample(true),
        GenerationConfig::greedy(4).with_num_beams(2),
    ];
    for config in modes {
        let err = Generator::new(&broken, config.clone(), &dev())
            .unwrap()
            .generate(&[vec![1, 2]])
            .unwrap_err();
        assert!(matches!(err, Error::NotFinite { .. }), "{config:?}: {err}");
    }
}

#[test]
fn tokenizers() {
    let tok = CharTokenizer::from_corpus("abc").unwrap();
    assert!(matches!(tok.decode(&[99]), Err(Error::TokenId { found: 99, .. })));
    assert!(CharTokenizer::load(tmp_file("tok.json", b"{\"not\": \"a tokenizer\"")).is_err());
    assert!(CharTokenizer::load(tmp_file("tok-missing.json", b"")).is_err());
    assert!(CharTokenizer::from_corpus("").is_err());
}

#[test]
fn data_and_tasks() {
    // Batches from a user's own source are checked against the model before any tensor is built.
    let classifier_config = SequenceClassifierConfig::new(
        8,
        4,
        2,
        EncoderKind::Recurrent {
            cell: CellType::Gru,
            hidden_size: 4,
            num_layers: 1,
            bidirectional: false,
        },
    );
    let classifier = classifier_config.init::<AD>(&dev()).unwrap();
    let task = ClassificationTask::new(classifier_config.clone());
    let batch = |labels: Vec<i64>, ids: Vec<i64>| ClassBatch {
        ids,
        batch: 2,
        len: 2,
        lengths: vec![2, 1],
        labels,
    };
    assert!(Task::<AD>::train_step(&task, &classifier, &batch(vec![0, 1], vec![1, 2, 3, 0]), None).is_ok());
    for (labels, ids, says) in [
        (vec![0, 5], vec![1, 2, 3, 0], "`labels`[1] = 5"),
        (vec![-1, 0], vec![1, 2, 3, 0], "`labels`[0] = -1"),
        (vec![0, 1], vec![1, 2, 3], "found 3 ids"),
        (vec![0, 1], vec![1, 2, 3, 8], "token id 8"),
    ] {
        let Err(err) = Task::<AD>::train_step(&task, &classifier, &batch(labels, ids), None) else {
            panic!("{says}: accepted");
        };
        assert!(err.to_string().contains(says), "{says}: {err}");
    }

    let s2s_config = RnnSeq2SeqConfig::new(6, 7, 4);
    let s2s = s2s_config.init::<AD>(&dev()).unwrap();
    let task = TranslationTask::<ember_lm::models::RnnSeq2Seq<AD>>::new(&s2s_config, 0);
    let pairs = PairBatch {
        src: vec![3, 4, 5, 0],
        src_len: 2,
        src_lengths: vec![2, 1],
        tgt_in: vec![1, 6, 1, 0],
        tgt_out: vec![6, 9, 2, 0],
        tgt_len: 2,
        tgt_lengths: vec![2, 1],
        batch: 2,
    };
    let Err(err) = Task::<AD>::train_step(&task, &s2s, &pairs, None) else {
        panic!("a target id outside the vocabulary was accepted");
    };
    assert!(
        matches!(
            err,
            Error::TokenId {
                found: 9,
                vocab_size: 7
            }
        ),
        "{err}"
    );

    let lm_config = RnnLmConfig::new(10, 4, 4);
    let lm = lm_config.init::<AD>(&dev()).unwrap();
    let task = RnnLmTask::new(lm_config);
    let tokens = TokenBatch {
        ids: vec![1, 2, 3, 4, 5, 6],
        batch: 2,
        len: 3,
        reset: vec![true],
    };
    let Err(err) = Task::<AD>::train_step(&task, &lm, &tokens, None) else {
        panic!("one reset flag for two rows was accepted");
    };
    assert!(err.to_string().contains("`reset`"), "{err}");
    let gpt_config = common::gpt::tiny_config();
    let gpt = gpt_config.init::<AD>(&dev()).unwrap();
    let first_id_out = TokenBatch {
        ids: vec![12, 2, 3, 4, 5, 6],
        batch: 2,
        len: 3,
        reset: vec![],
    };
    let Err(err) = Task::<AD>::train_step(&GptLmTask::new(gpt_config), &gpt, &first_id_out, None) else {
        panic!("an input id outside the vocabulary was accepted");
    };
    assert!(matches!(err, Error::TokenId { found: 12, .. }), "{err}");

    // Metrics: predictions and labels must pair up.
    let err = ember_lm::eval::classification_report(&[0, 1], &[0, 1, 1], 2).unwrap_err();
    assert!(err.to_string().contains("2 predictions and 3 labels"), "{err}");
    assert!(ember_lm::eval::classification_report(&[0, 2], &[0, 1], 2).is_err());
}

#[test]
fn optimizer_and_trainer_configurations() {
    let adam_eps = |eps: f64| Algorithm::Adam {
        beta1: 0.9,
        beta2: 0.999,
        eps,
        amsgrad: false,
    };
    // NaN must fail every range check (torch: "Invalid epsilon value: nan").
    for algorithm in [
        adam_eps(f64::NAN),
        adam_eps(-1.0),
        Algorithm::RmsProp {
            alpha: f64::NAN,
            eps: 1e-8,
            momentum: 0.0,
            centered: false,
        },
        Algorithm::Sgd {
            momentum: f64::NAN,
            dampening: 0.0,
            nesterov: false,
        },
        Algorithm::Adagrad {
            lr_decay: 0.0,
            eps: f64::NAN,
        },
    ] {
        let config = OptimizerConfig::new(algorithm.clone(), 1e-3);
        assert!(
            matches!(config.validate(), Err(Error::Config { .. })),
            "{algorithm:?}"
        );
    }
    assert!(
        OptimizerConfig::adamw()
            .with_weight_decay(f64::NAN)
            .validate()
            .is_err()
    );
    assert!(OptimizerConfig::adamw().with_lr(f64::NAN).validate().is_err());
    // Schedules torch refuses.
    for schedule in [
        LrSchedule::Linear {
            warmup_steps: 0,
            total_steps: 10,
            end_factor: -1.0,
        },
        LrSchedule::Linear {
            warmup_steps: 0,
            total_steps: 10,
            end_factor: f64::NAN,
        },
        LrSchedule::Exponential { gamma: f64::NAN },
        LrSchedule::Step {
            step_size: 2,
            gamma: -0.5,
        },
        LrSchedule::warmup_cosine(2, 10, f64::NAN),
    ] {
        assert!(
            LrScheduler::try_new(1e-3, schedule.clone()).is_err(),
            "{schedule:?}"
        );
    }
    // The trainer's own configuration.
    let early = TrainerConfig::new()
        .with_max_steps(Some(10))
        .with_early_stopping(Some(EarlyStopping {
            patience: 2,
            min_delta: f64::NAN,
        }));
    let gpt_config = common::gpt::tiny_config();
    let Err(err) = ember_lm::train::Trainer::new(
        early,
        GptLmTask::new(gpt_config.clone()),
        gpt_config.init::<AD>(&dev()).unwrap(),
        &OptimizerConfig::adamw(),
        LrSchedule::Constant,
        &dev(),
    ) else {
        panic!("min_delta NaN accepted");
    };
    assert!(err.to_string().contains("min_delta"), "{err}");
}

#[test]
fn recurrent_config_keeps_every_option_or_refuses_it() {
    use ember_lm::nn::RecurrentConfig;
    // bias, proj_size and initializer reach the cell (they were dropped before).
    let lstm = RecurrentConfig::new(CellType::Lstm, 3, 6)
        .with_bias(false)
        .with_proj_size(2)
        .with_initializer(Some(burn::module::Initializer::Constant { value: 0.5 }))
        .init::<B>(&dev())
        .unwrap();
    let (out, state) = lstm.forward(Tensor::ones([2, 4, 3], &dev()), None, None).unwrap();
    assert_eq!(out.dims(), [2, 4, 2], "projected to proj_size");
    assert_eq!(state.hidden.dims(), [1, 2, 2]);
    assert_eq!(state.cell.unwrap().dims(), [1, 2, 6]);
    assert_eq!(lstm.cell_type(), CellType::Lstm, "an LSTM cell builds an LSTM");
    let keys: Vec<String> = lstm.pytorch_keys().into_iter().map(|(k, _)| k).collect();
    assert!(keys.iter().all(|k| !k.starts_with("bias")), "{keys:?}");
    assert!(keys.contains(&"weight_hr_l0".to_string()), "{keys:?}");
    // A projection on another cell is refused, naming the field.
    let err = RecurrentConfig::new(CellType::Gru, 3, 6)
        .with_proj_size(2)
        .init::<B>(&dev())
        .unwrap_err();
    assert!(err.to_string().contains("proj_size"), "{err}");
}
