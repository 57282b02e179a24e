//! PyTorch export: every module family's fixture is loaded, saved with `save_pytorch` (the tiny
//! GPT-2 with `Gpt::save_pretrained`), and the file is checked against torch's side:
//!
//! - its keys and shapes are exactly those of the torch module's `state_dict()`
//!   (`tests/fixtures/export/expected.json`, written by `make_export.py` from the torch modules), which
//!   is what `load_state_dict(strict=True)` checks;
//! - every tensor is bit for bit the fixture's tensor under the same key, so the strictly loaded
//!   torch module is the fixture's module and computes the fixture's outputs;
//! - loading the file back gives bitwise-equal parameters.
//!
//! When `.venv/bin/python` exists, `make_export.py --check` also loads every file into torch
//! strictly and compares its outputs with the fixtures' (CI, without Python, relies on the above).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::backend::NdArray;
use burn::tensor::TensorData;
use common::fixture_path;
use common::gpt::tiny_dir;
use ember_lm::Error;
use ember_lm::io::{StateDict, TorchWeights};
use ember_lm::models::{Gpt, GptConfig, RnnLmConfig, RnnSeq2SeqConfig};
use ember_lm::nn::{
    CellType, FeedForwardActivation, GruConfig, LstmConfig, RnnConfig, TransformerDecoderLayerConfig,
    TransformerEncoderConfig, TransformerEncoderLayerConfig,
};
use serde::Deserialize;

type B = NdArray<f32>;

#[derive(Deserialize)]
struct Family {
    source: String,
    keys: BTreeMap<String, Vec<usize>>,
}

fn expected() -> BTreeMap<String, Family> {
    serde_json::from_str(&std::fs::read_to_string(fixture_path("export/expected.json")).unwrap()).unwrap()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ember-lm-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn bits(data: &TensorData) -> (Vec<usize>, Vec<u32>) {
    let values = data.clone().convert::<f32>().to_vec::<f32>().unwrap();
    (data.shape.to_vec(), values.iter().map(|v| v.to_bits()).collect())
}

/// The file's keys and shapes are torch's, and each tensor is the source's under `prefix + key`.
fn check_file(file: &Path, family: &Family, source: &StateDict, prefix: &str) {
    let saved = StateDict::from_file(file).unwrap();
    let keys: BTreeMap<String, Vec<usize>> = saved
        .keys()
        .map(|k| (k.to_string(), saved.shape(k).unwrap()))
        .collect();
    assert_eq!(
        keys,
        family.keys,
        "{}: keys and shapes differ from torch's state_dict",
        file.display()
    );
    for key in saved.keys() {
        let theirs = match source.shape(&format!("{prefix}{key}")) {
            Some(_) => source.data(&format!("{prefix}{key}")).unwrap(),
            // Hugging Face leaves a tied head out of its file: it is the embedding.
            None if key == "lm_head.weight" => source.data("transformer.wte.weight").unwrap(),
            None => panic!("{key} is not in {}", family.source),
        };
        assert_eq!(
            bits(&saved.data(key).unwrap()),
            bits(&theirs),
            "{key} differs from the fixture"
        );
    }
}

/// Saves `module`, checks the file against torch's side, and loads it back into `fresh`:
/// every parameter comes back bitwise equal.
fn round_trip<M: TorchWeights + Clone>(dir: &Path, name: &str, module: &M, fresh: M, prefix: &str) {
    let families = expected();
    let family = &families[name];
    let file = dir.join(format!("{name}.safetensors"));
    module.save_pytorch(&file).unwrap();
    let source = if family.source.ends_with(".pt") {
        StateDict::from_torch_checkpoint(fixture_path(&family.source), "model").unwrap()
    } else {
        StateDict::from_file(fixture_path(&family.source)).unwrap()
    };
    check_file(&file, family, &source, prefix);
    let back = fresh.load_pytorch_file(&file).unwrap();
    let ours = module.pytorch_state_dict("").unwrap();
    let again = back.pytorch_state_dict("").unwrap();
    assert_eq!(ours.len(), again.len());
    for ((k1, a), (k2, b)) in ours.iter().zip(&again) {
        assert_eq!(k1, k2);
        assert_eq!(bits(a), bits(b), "{name}: {k1} changed in the round trip");
    }
}

/// Loads the fixture `path` (under `prefix`) into a module from `make`, then [`round_trip`].
fn case<M: TorchWeights + Clone>(
    dir: &Path,
    name: &str,
    path: &str,
    prefix: &str,
    make: impl Fn() -> ember_lm::Result<M>,
) {
    let module = load(make().unwrap(), path, prefix);
    round_trip(dir, name, &module, make().unwrap(), prefix);
}

/// Writes f32 `tensors` under their keys as they are, with the `safetensors` crate (not our
/// writer): a state dict of any keys, as a PyTorch script could save it.
fn write_f32(file: &Path, tensors: &[(String, TensorData)]) {
    let views: Vec<_> = tensors
        .iter()
        .map(|(k, d)| {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, d.shape.to_vec(), d.as_bytes())
                    .unwrap();
            (k.clone(), view)
        })
        .collect();
    safetensors::serialize_to_file(views, None, file).unwrap();
}

fn load<M: TorchWeights>(module: M, path: &str, prefix: &str) -> M {
    let dict = StateDict::from_file(fixture_path(path)).unwrap();
    module.load_state_dict(&dict, prefix).unwrap()
}

#[test]
fn every_family_saves_a_state_dict_torch_loads_strictly() {
    let device = Default::default();
    let dir = temp_dir("export");

    case(
        &dir,
        "lstm_2l_bi_proj",
        "recurrent/lstm_2l_bi_proj.weights.safetensors",
        "",
        || {
            LstmConfig::new(4, 6)
                .with_num_layers(2)
                .with_bidirectional(true)
                .with_proj_size(3)
                .init::<B>(&device)
        },
    );
    case(
        &dir,
        "gru_2l_bi_ragged",
        "recurrent/gru_2l_bi_ragged.weights.safetensors",
        "",
        || {
            GruConfig::new(4, 6)
                .with_num_layers(2)
                .with_bidirectional(true)
                .init::<B>(&device)
        },
    );
    case(
        &dir,
        "rnn_tanh_3l_nobias_bi",
        "recurrent/rnn_tanh_3l_nobias_bi.weights.safetensors",
        "",
        || {
            RnnConfig::new(4, 6)
                .with_num_layers(3)
                .with_bidirectional(true)
                .with_bias(false)
                .init::<B>(&device)
        },
    );
    case(
        &dir,
        "encoder_layer",
        "transformer/enc_gelu_pre_padding.weights.safetensors",
        "",
        || {
            TransformerEncoderLayerConfig::new(8, 2)
                .with_d_ff(16)
                .with_activation(FeedForwardActivation::Gelu)
                .with_norm_first(true)
                .init::<B>(&device)
        },
    );
    case(
        &dir,
        "decoder_layer",
        "transformer/dec_relu_post.weights.safetensors",
        "",
        || {
            TransformerDecoderLayerConfig::new(8, 2)
                .with_d_ff(16)
                .init::<B>(&device)
        },
    );
    // A submodule of a larger checkpoint, saved on its own.
    case(
        &dir,
        "encoder_stack",
        "transformer/stacks.weights.safetensors",
        "encoder.",
        || {
            let layer = TransformerEncoderLayerConfig::new(8, 2)
                .with_d_ff(16)
                .with_norm_first(true);
            TransformerEncoderConfig::new(layer, 2)
                .with_final_norm(true)
                .init::<B>(&device)
        },
    );
    case(
        &dir,
        "rnn_lm_tied",
        "rnn_lm/lstm_tied.weights.safetensors",
        "",
        || {
            RnnLmConfig::new(50, 16, 16)
                .with_dropout(0.0)
                .with_num_layers(2)
                .with_tie_weights(true)
                .init::<B>(&device)
        },
    );
    case(
        &dir,
        "rnn_lm_untied",
        "rnn_lm/gru_untied.weights.safetensors",
        "",
        || {
            RnnLmConfig::new(50, 12, 16)
                .with_cell(CellType::Gru)
                .with_dropout(0.0)
                .with_num_layers(2)
                .with_tie_weights(false)
                .init::<B>(&device)
        },
    );
    case(&dir, "rnn_seq2seq", "rnn_seq2seq/weights.safetensors", "", || {
        RnnSeq2SeqConfig::new(20, 25, 16)
            .with_dropout(0.0)
            .init::<B>(&device)
    });
    case(&dir, "seq2seq", "seq2seq/weights.safetensors", "", || {
        common::seq2seq::config().init::<B>(&device)
    });

    let nano = GptConfig::new()
        .with_vocab_size(23)
        .with_block_size(16)
        .with_n_layer(2)
        .with_n_head(2)
        .with_n_embd(12)
        .with_activation(FeedForwardActivation::Gelu);
    let m = nano
        .init::<B>(&device)
        .unwrap()
        .load_nanogpt_checkpoint(fixture_path("nanogpt/ckpt_bias.pt"))
        .unwrap();
    round_trip(&dir, "nanogpt", &m, nano.init::<B>(&device).unwrap(), "");

    // GPT-2 in Hugging Face's layout, with its config.json.
    let gpt2 = Gpt::<B>::from_pretrained(tiny_dir(), &device).unwrap();
    let hf_dir = dir.join("gpt2_hf");
    gpt2.save_pretrained(&hf_dir).unwrap();
    let families = expected();
    let source = StateDict::from_file(tiny_dir().join("model.safetensors")).unwrap();
    check_file(
        &hf_dir.join("model.safetensors"),
        &families["gpt2_hf"],
        &source,
        "",
    );
    let back = Gpt::<B>::from_pretrained(&hf_dir, &device).unwrap();
    assert_eq!(format!("{:?}", back.config()), format!("{:?}", gpt2.config()));
    for ((k, a), (_, b)) in gpt2
        .pytorch_state_dict("")
        .unwrap()
        .iter()
        .zip(&back.pytorch_state_dict("").unwrap())
    {
        assert_eq!(bits(a), bits(b), "gpt2: {k} changed in the round trip");
    }

    // torch's own side, where the reference environment exists (not in CI).
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    if python.exists() {
        let out = std::process::Command::new(&python)
            .arg(fixture_path("make_export.py"))
            .arg("--check")
            .arg(&dir)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "torch rejected an export:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(text.matches("ok ").count(), 12, "{text}");
    } else {
        eprintln!("no .venv: torch's side of the export not run (expected.json still checked)");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_model_nests_under_any_prefix() {
    let device = Default::default();
    let dir = temp_dir("nest");
    let config = RnnLmConfig::new(50, 16, 16).with_dropout(0.0).with_num_layers(2);
    let lm = load(
        config.init::<B>(&device).unwrap(),
        "rnn_lm/lstm_tied.weights.safetensors",
        "",
    );
    // The language model as the `lm` attribute of a bigger PyTorch module.
    let tensors = lm.pytorch_state_dict("model.lm.").unwrap();
    assert!(tensors.iter().all(|(k, _)| k.starts_with("model.lm.")));
    let file = dir.join("nested.safetensors");
    write_f32(&file, &tensors);
    let dict = StateDict::from_file(&file).unwrap();
    let back = config
        .init::<B>(&device)
        .unwrap()
        .load_state_dict(&dict, "model.lm.")
        .unwrap();
    for ((k, a), (_, b)) in lm
        .pytorch_state_dict("")
        .unwrap()
        .iter()
        .zip(&back.pytorch_state_dict("").unwrap())
    {
        assert_eq!(bits(a), bits(b), "{k}");
    }
    // Under the wrong prefix, everything the model needs is missing.
    let err = config
        .init::<B>(&device)
        .unwrap()
        .load_state_dict(&dict, "model.")
        .unwrap_err();
    assert!(
        matches!(&err, Error::StateDict { report, .. } if report.missing.len() == lm.pytorch_keys().len() && !report.unexpected.is_empty()),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn every_mismatch_is_reported_at_once() {
    let device = Default::default();
    let dir = temp_dir("mismatch");
    let lstm = LstmConfig::new(4, 6).init::<B>(&device).unwrap();
    let mut tensors = lstm.pytorch_state_dict("").unwrap();
    tensors.retain(|(k, _)| k != "bias_hh_l0"); // missing
    tensors.push(("weight_ih_l1".into(), TensorData::new(vec![0f32; 4], [2, 2]))); // unexpected
    tensors[0].1 = TensorData::new(vec![0f32; 20], [5, 4]); // weight_ih_l0: wrong shape
    let file = dir.join("bad.safetensors");
    write_f32(&file, &tensors);
    let err = LstmConfig::new(4, 6)
        .init::<B>(&device)
        .unwrap()
        .load_pytorch_file(&file)
        .unwrap_err();
    match &err {
        Error::StateDict { report, .. } => {
            assert_eq!(report.missing, vec!["bias_hh_l0".to_string()]);
            assert_eq!(report.unexpected, vec!["weight_ih_l1".to_string()]);
            assert_eq!(report.mismatched.len(), 1);
            assert_eq!(report.mismatched[0].key, "weight_ih_l0");
            // torch.nn.LSTM(4, 6).weight_ih_l0 is [4 gates · 6 hidden, 4 inputs] = [24, 4].
            assert_eq!(
                (
                    report.mismatched[0].expected.clone(),
                    report.mismatched[0].found.clone()
                ),
                (vec![24, 4], vec![5, 4])
            );
        }
        other => panic!("expected one report, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("bias_hh_l0")
            && msg.contains("weight_ih_l1")
            && msg.contains("[5, 4]")
            && msg.contains("[24, 4]"),
        "{msg}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn saving_refuses_what_it_cannot_write() {
    let device = Default::default();
    let dir = temp_dir("refuse");
    let lstm = LstmConfig::new(4, 6).init::<B>(&device).unwrap();
    // Only safetensors is written; a .pt name would promise torch.save's format.
    let err = lstm.save_pytorch(dir.join("lstm.pt")).unwrap_err();
    assert!(
        matches!(&err, Error::Save { message, .. } if message.contains(".safetensors")),
        "{err}"
    );
    assert!(!dir.join("lstm.pt").exists());
    // A directory that does not exist.
    let err = lstm
        .save_pytorch(dir.join("absent/lstm.safetensors"))
        .unwrap_err();
    assert!(matches!(err, Error::Save { .. }), "{err}");
    // GPT-2 always has biases: a bias-free model has no Hugging Face layout.
    let gpt = GptConfig::new()
        .with_vocab_size(23)
        .with_block_size(16)
        .with_n_layer(2)
        .with_n_head(2)
        .with_n_embd(12)
        .with_bias(false)
        .init::<B>(&device)
        .unwrap();
    let err = gpt.save_pretrained(dir.join("nobias")).unwrap_err();
    assert!(
        matches!(&err, Error::Config { message, .. } if message.contains("bias")),
        "{err}"
    );
    assert!(!dir.join("nobias/model.safetensors").exists());
    // ... but it saves in nanoGPT's layout.
    gpt.save_pytorch(dir.join("nobias.safetensors")).unwrap();
    std::fs::remove_dir_all(&dir).ok();
}
