//! `Gpt` against Hugging Face's `GPT2LMHeadModel` (`tests/fixtures/make_gpt2.py`): logits, loss,
//! gradients and greedy decoding; incremental decoding against the full forward; errors.

mod common;

use burn::backend::{Autodiff, NdArray};
use burn::tensor::{Int, Tensor, TensorData};
use common::assert_close;
use common::gpt::{check_gpt2, tiny_dir};
use ember_lm::Error;
use ember_lm::io::StateDict;
use ember_lm::models::{Gpt, GptConfig};
use ember_lm::nn::FeedForwardActivation;

type B = NdArray<f32>;

#[test]
fn ndarray_matches_hugging_face_gpt2() {
    check_gpt2::<Autodiff<B>>(&Default::default(), 1e-4, 1e-4);
}

#[cfg(feature = "flex")]
#[test]
fn flex_matches_hugging_face_gpt2() {
    check_gpt2::<Autodiff<burn::backend::Flex>>(&Default::default(), 1e-4, 1e-4);
}

fn ids(values: Vec<i64>, shape: [usize; 2]) -> Tensor<B, 2, Int> {
    Tensor::from_data(TensorData::new(values, shape), &Default::default())
}

#[test]
fn cached_decoding_equals_the_full_forward() {
    let device = Default::default();
    // An untied head and no biases, to cover the other configuration too.
    let model = GptConfig::new()
        .with_vocab_size(50)
        .with_block_size(16)
        .with_n_layer(2)
        .with_n_head(4)
        .with_n_embd(32)
        .with_tie_weights(false)
        .with_bias(false)
        .init::<B>(&device)
        .unwrap();
    let seq: Vec<i64> = (0..2 * 9).map(|i| (i * 7 % 50) as i64).collect();
    let full = model.forward(ids(seq.clone(), [2, 9])).unwrap();
    let mut cache = model.new_cache(2, &device);
    let all = Tensor::<B, 2, Int>::from_data(TensorData::new(seq, [2, 9]), &device);
    let mut parts = vec![
        model
            .forward_cached(all.clone().slice([0..2, 0..4]), &mut cache)
            .unwrap(),
    ];
    for t in 4..9 {
        parts.push(
            model
                .forward_cached(all.clone().slice([0..2, t..t + 1]), &mut cache)
                .unwrap(),
        );
    }
    assert_eq!(cache.len(), 9);
    assert_close(
        "cached",
        Tensor::cat(parts, 1).into_data(),
        full.into_data(),
        1e-5,
        1e-4,
    );
}

#[test]
fn bad_ids_and_lengths_are_errors() {
    let device = Default::default();
    let model = Gpt::<B>::from_pretrained(tiny_dir(), &device).unwrap();
    let err = model.forward(ids(vec![1, 512], [1, 2])).unwrap_err();
    assert!(
        matches!(
            err,
            Error::TokenId {
                found: 512,
                vocab_size: 512
            }
        ),
        "{err}"
    );
    let err = model.forward(ids(vec![-1, 3], [1, 2])).unwrap_err();
    assert!(matches!(err, Error::TokenId { found: -1, .. }), "{err}");
    let err = model.forward(ids(vec![1; 65], [1, 65])).unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooLong {
                found: 65,
                offset: 0,
                max: 64
            }
        ),
        "{err}"
    );
    let mut cache = model.new_cache(1, &device);
    model
        .forward_cached(ids(vec![1; 60], [1, 60]), &mut cache)
        .unwrap();
    let err = model
        .forward_cached(ids(vec![1; 5], [1, 5]), &mut cache)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooLong {
                found: 5,
                offset: 60,
                max: 64
            }
        ),
        "{err}"
    );
    let err = GptConfig::new()
        .with_vocab_size(10)
        .with_block_size(8)
        .with_n_layer(1)
        .with_n_head(3)
        .with_n_embd(32)
        .init::<B>(&device)
        .unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err}");
}

#[test]
fn mismatched_checkpoints_name_the_keys() {
    let device = Default::default();
    let dict = StateDict::from_file(tiny_dir().join("model.safetensors")).unwrap();
    let config = GptConfig::from_hf_config(tiny_dir().join("config.json")).unwrap();
    let deeper = GptConfig {
        n_layer: 3,
        ..config.clone()
    }
    .init::<B>(&device)
    .unwrap();
    let err = deeper.load_hf_state_dict(&dict).unwrap_err();
    assert!(
        matches!(&err, Error::StateDict { report, .. } if report.missing.contains(&"transformer.h.2.attn.c_attn.weight".to_string())),
        "{err}"
    );
    let shallower = GptConfig {
        n_layer: 1,
        ..config.clone()
    }
    .init::<B>(&device)
    .unwrap();
    let err = shallower.load_hf_state_dict(&dict).unwrap_err();
    assert!(
        matches!(&err, Error::StateDict { report, .. } if report.unexpected.contains(&"transformer.h.1.ln_1.weight".to_string())),
        "{err}"
    );
    let narrower = GptConfig {
        vocab_size: 500,
        ..config.clone()
    }
    .init::<B>(&device)
    .unwrap();
    let err = narrower.load_hf_state_dict(&dict).unwrap_err();
    assert!(
        matches!(&err, Error::StateDict { report, .. } if report.mismatched.iter().any(|m|
            m.key == "transformer.wte.weight" && m.expected == vec![500, 64] && m.found == vec![512, 64])),
        "{err}"
    );
    let untied = config.with_tie_weights(false).init::<B>(&device).unwrap();
    let err = untied.load_hf_state_dict(&dict).unwrap_err();
    assert!(
        matches!(&err, Error::StateDict { report, .. } if report.missing == vec!["lm_head.weight".to_string()]),
        "{err}"
    );
    let err = Gpt::<B>::from_pretrained(common::fixture_path("attention"), &device).unwrap_err();
    assert!(matches!(err, Error::Load { .. }), "{err}");
}

/// The nanoGPT-format checkpoints of `tests/fixtures/make_nanogpt.py`: 23 tokens, block 16, 2
/// layers of 2 heads, 12 wide, exact GELU.
fn nanogpt_config(bias: bool, tied: bool) -> GptConfig {
    GptConfig::new()
        .with_vocab_size(23)
        .with_block_size(16)
        .with_n_layer(2)
        .with_n_head(2)
        .with_n_embd(12)
        .with_bias(bias)
        .with_tie_weights(tied)
        .with_activation(FeedForwardActivation::Gelu)
}

#[test]
fn nanogpt_checkpoints_match_pytorch() {
    let device = Default::default();
    let reference = common::Fixture::load("nanogpt/reference.safetensors");
    let ids: Tensor<B, 2, Int> = Tensor::from_data(reference.data("ids"), &device);
    // With biases; without them and saved under torch.compile (`_orig_mod.`); with its own head.
    for (name, bias, tied) in [
        ("bias", true, true),
        ("nobias", false, true),
        ("untied", false, false),
    ] {
        let path = common::fixture_path(&format!("nanogpt/ckpt_{name}.pt"));
        let gpt = nanogpt_config(bias, tied)
            .init::<B>(&device)
            .unwrap()
            .load_nanogpt_checkpoint(&path)
            .unwrap();
        let logits = gpt.forward(ids.clone()).unwrap();
        assert_close(
            &format!("nanoGPT {name} logits"),
            logits.into_data(),
            reference.data(&format!("logits.{name}")),
            1e-5,
            1e-4,
        );
    }
}

#[test]
fn mismatched_nanogpt_checkpoints_are_errors() {
    let device = Default::default();
    let path = |name: &str| common::fixture_path(&format!("nanogpt/ckpt_{name}.pt"));
    let load = |config: GptConfig, name: &str| {
        config
            .init::<B>(&device)
            .unwrap()
            .load_nanogpt_checkpoint(path(name))
            .unwrap_err()
    };
    // Biases in the file, none in the model.
    let err = load(nanogpt_config(false, true), "bias");
    assert!(
        matches!(&err, Error::StateDict { report, .. } if report.unexpected.contains(&"transformer.ln_f.bias".to_string())),
        "{err}"
    );
    // A model built without biases meets a file without them but with another width.
    let err = load(
        GptConfig::new()
            .with_vocab_size(23)
            .with_block_size(16)
            .with_n_layer(2)
            .with_n_head(2)
            .with_n_embd(16)
            .with_bias(false),
        "nobias",
    );
    assert!(
        matches!(&err, Error::StateDict { report, .. } if report.mismatched.iter().any(|m|
            m.key == "transformer.wte.weight" && m.expected == vec![23, 16] && m.found == vec![23, 12])),
        "{err}"
    );
    // A head of its own cannot be dropped into a tied model.
    let err = load(nanogpt_config(false, true), "untied");
    assert!(matches!(&err, Error::Data(m) if m.contains("not tied")), "{err}");
    // Hugging Face's Conv1D layout is not nanoGPT's: the transposed shape is named.
    let err = GptConfig::from_hf_config(tiny_dir().join("config.json"))
        .unwrap()
        .init::<B>(&device)
        .unwrap()
        .load_nanogpt_state_dict(&StateDict::from_file(tiny_dir().join("model.safetensors")).unwrap())
        .unwrap_err();
    assert!(
        matches!(&err, Error::StateDict { report, .. } if report.mismatched.iter().any(|m|
            m.key == "transformer.h.0.attn.c_attn.weight" && m.expected == vec![192, 64] && m.found == vec![64, 192])),
        "{err}"
    );
    // A file without the `model` key, and a file that is not there.
    let err = StateDict::from_torch_checkpoint(path("bias"), "state_dict").unwrap_err();
    assert!(matches!(err, Error::Load { .. }), "{err}");
    let err = StateDict::from_torch_checkpoint(path("missing"), "model").unwrap_err();
    assert!(matches!(err, Error::Load { .. }), "{err}");
}

/// The language-model loss skips `ignore_index` labels (padding) like Hugging Face's `labels`, and
/// refuses labels that do not match the logits or leave nothing to predict.
#[test]
fn language_model_loss_ignores_masked_labels_and_checks_shapes() {
    use ember_lm::nn::CrossEntropyLossConfig;
    let device = Default::default();
    let model = Gpt::<B>::from_pretrained(tiny_dir(), &device).unwrap();
    let ids =
        Tensor::<B, 2, Int>::from_data(TensorData::new(vec![5i64, 9, 3, 7, 1, 8, 2, 4], [2, 4]), &device);
    let logits = model.forward(ids.clone()).unwrap();
    let ce = CrossEntropyLossConfig::new().init().unwrap();
    // Row 1's last two positions are padding (-100): only 4 of the 6 predictions count.
    let labels = Tensor::<B, 2, Int>::from_data(
        TensorData::new(vec![5i64, 9, 3, 7, 1, 8, -100, -100], [2, 4]),
        &device,
    );
    let got: f32 = ce.language_model(logits.clone(), labels).unwrap().into_scalar();
    // By hand: -log softmax(logits[b, t])[label[b, t + 1]] over the 4 kept positions.
    let lp = burn::tensor::activation::log_softmax(logits.clone(), 2);
    let pick = |b: usize, t: usize, id: usize| -> f32 {
        lp.clone().slice([b..b + 1, t..t + 1, id..id + 1]).into_scalar()
    };
    let want = -(pick(0, 0, 9) + pick(0, 1, 3) + pick(0, 2, 7) + pick(1, 0, 8)) / 4.0;
    assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    let err = ce
        .language_model(logits.clone(), ids.clone().slice([0..2, 0..3]))
        .unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
    let one = model.forward(ids.clone().slice([0..2, 0..1])).unwrap();
    assert!(ce.language_model(one, ids.slice([0..2, 0..1])).is_err());
}
