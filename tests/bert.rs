//! The BERT family (BERT, RoBERTa, DistilBERT) against transformers on tiny random models
//! (`tests/fixtures/make_bert.py`): hidden states, pooler, head logits, the three sequence
//! losses, MLM and token losses and the gradients of the embeddings and layer 0, on NdArray and
//! Flex in f32 within `1e-5 + 1e-4 |ref|`; padding that changes nothing; loading across
//! prefixes and heads; save and reload; bad input.

mod common;

use burn::backend::{Autodiff, NdArray};
use common::bert::{FAMILIES, batch, check_against_transformers, check_padding_changes_nothing};
use common::{Fixture, fixture_path};
use ember_lm::Error;
use ember_lm::data::EncodedBatch;
use ember_lm::models::bert::{
    BertConfig, BertForMaskedLM, BertForSequenceClassification, BertForTokenClassification, BertModel,
};

type B = NdArray<f32>;
const TOL: (f64, f64) = (1e-5, 1e-4);

#[test]
fn ndarray_matches_transformers() {
    check_against_transformers::<Autodiff<B>>(&Default::default(), TOL);
}

#[cfg(feature = "flex")]
#[test]
fn flex_matches_transformers() {
    check_against_transformers::<Autodiff<burn::backend::Flex>>(&Default::default(), TOL);
}

#[test]
fn padding_changes_nothing_at_real_positions() {
    check_padding_changes_nothing::<B>(&Default::default(), TOL);
    #[cfg(feature = "flex")]
    check_padding_changes_nothing::<burn::backend::Flex>(&Default::default(), TOL);
}

fn dir(name: &str) -> std::path::PathBuf {
    fixture_path(&format!("encoders/{name}"))
}

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("ember-bert-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The configured dropouts act while training (on the autodiff backend) and not in `valid()`,
/// which computes transformers' eval-mode numbers.
#[test]
fn dropout_acts_in_training_only() {
    use burn::module::AutodiffModule;
    let device = Default::default();
    for family in FAMILIES {
        let name = format!("{family}-mlm");
        let path = with_config(&name, |c| {
            for key in [
                "hidden_dropout_prob",
                "attention_probs_dropout_prob",
                "dropout",
                "attention_dropout",
            ] {
                if c.get(key).is_some() {
                    c[key] = serde_json::json!(0.3);
                }
            }
        });
        let mlm = BertForMaskedLM::<Autodiff<B>>::from_pretrained(&path, &device).unwrap();
        let f = Fixture::load(&format!("encoders/{name}/reference.safetensors"));
        let input = batch(&f);
        let a = mlm.forward(&input).unwrap();
        let b = mlm.forward(&input).unwrap();
        let diff: f32 = (a - b).abs().max().into_scalar();
        assert!(diff > 1e-3, "{family}: two training forwards agree ({diff})");
        let eval = mlm.valid().forward(&input).unwrap();
        common::assert_close(
            &format!("{family} eval"),
            eval.into_data().convert::<f64>(),
            f.data("logits"),
            TOL.0,
            TOL.1,
        );
    }
}

#[test]
fn heads_load_from_other_checkpoints_as_transformers_reports() {
    let device = Default::default();
    for family in FAMILIES {
        let prefix = match family {
            "bert" => "bert",
            "roberta" => "roberta",
            _ => "distilbert",
        };
        // A bare encoder into a sequence classifier: the head is new, the body loads.
        let (cls, info) = BertForSequenceClassification::<B>::from_pretrained_with_info(
            dir(&format!("{family}-base")),
            &device,
        )
        .unwrap();
        assert!(!info.newly_initialized.is_empty(), "{family}");
        assert!(
            info.newly_initialized
                .iter()
                .all(|k| !k.starts_with(&format!("{prefix}.")) || k.contains("pooler")),
            "{family}: {:?}",
            info.newly_initialized
        );
        assert!(
            info.newly_initialized.iter().any(|k| k.starts_with("classifier")),
            "{family}: {info:?}"
        );
        // The bare model's pooler is not used by RoBERTa's and DistilBERT's classifier.
        if family == "roberta" {
            assert_eq!(
                info.unused,
                vec![
                    "roberta.pooler.dense.bias".to_string(),
                    "roberta.pooler.dense.weight".to_string()
                ]
            );
        }
        // Its encoder is the base model's: the same states.
        let base = BertModel::<B>::from_pretrained(dir(&format!("{family}-base")), &device).unwrap();
        let f = Fixture::load(&format!("encoders/{family}-base/reference.safetensors"));
        let input = batch(&f);
        let a: Vec<f32> = cls.bert.forward(&input).unwrap().into_data().to_vec().unwrap();
        let b: Vec<f32> = base.forward(&input).unwrap().into_data().to_vec().unwrap();
        assert_eq!(a, b, "{family}");

        // A masked-LM checkpoint into the bare encoder: the head is unused, nothing is new but
        // the pooler.
        let (_, info) =
            BertModel::<B>::from_pretrained_with_info(dir(&format!("{family}-mlm")), &device).unwrap();
        assert!(!info.unused.is_empty(), "{family}");
        assert!(
            info.unused.iter().all(|k| !k.starts_with(&format!("{prefix}."))),
            "{info:?}"
        );
        assert!(
            info.newly_initialized.iter().all(|k| k.starts_with("pooler.")),
            "{info:?}"
        );
    }
}

/// An old `pytorch_model.bin` (LayerNorm `gamma`/`beta`, the tied decoder saved, an index buffer,
/// a next-sentence head): the masked-LM model loads it to the same numbers, the unused head
/// reported.
#[test]
fn legacy_pytorch_checkpoints_load() {
    let device = Default::default();
    let (mlm, info) = BertForMaskedLM::<B>::from_pretrained_with_info(dir("bert-legacy"), &device).unwrap();
    assert!(info.newly_initialized.is_empty(), "{info:?}");
    assert_eq!(
        info.unused,
        vec![
            "cls.seq_relationship.bias".to_string(),
            "cls.seq_relationship.weight".to_string()
        ]
    );
    let f = Fixture::load("encoders/bert-mlm/reference.safetensors");
    let logits = mlm.forward(&batch(&f)).unwrap();
    common::assert_close(
        "legacy logits",
        logits.into_data().convert::<f64>(),
        f.data("logits"),
        TOL.0,
        TOL.1,
    );
}

#[test]
fn save_pretrained_then_from_pretrained_reproduces_the_predictions() {
    let device = Default::default();
    for family in FAMILIES {
        let f = Fixture::load(&format!("encoders/{family}-seqcls/reference.safetensors"));
        let input = batch(&f);
        let cls =
            BertForSequenceClassification::<B>::from_pretrained(dir(&format!("{family}-seqcls")), &device)
                .unwrap();
        let out = tmp(&format!("{family}-seqcls"));
        cls.save_pretrained(&out).unwrap();
        let (back, info) =
            BertForSequenceClassification::<B>::from_pretrained_with_info(&out, &device).unwrap();
        assert!(
            info.newly_initialized.is_empty() && info.unused.is_empty(),
            "{info:?}"
        );
        assert_eq!(back.bert.config().family, cls.bert.config().family);
        let a: Vec<f32> = cls.forward(&input).unwrap().into_data().to_vec().unwrap();
        let b: Vec<f32> = back.forward(&input).unwrap().into_data().to_vec().unwrap();
        assert_eq!(a, b, "{family}");

        let mlm = BertForMaskedLM::<B>::from_pretrained(dir(&format!("{family}-mlm")), &device).unwrap();
        let out = tmp(&format!("{family}-mlm"));
        mlm.save_pretrained(&out).unwrap();
        let back = BertForMaskedLM::<B>::from_pretrained(&out, &device).unwrap();
        let a: Vec<f32> = mlm.forward(&input).unwrap().into_data().to_vec().unwrap();
        let b: Vec<f32> = back.forward(&input).unwrap().into_data().to_vec().unwrap();
        assert_eq!(a, b, "{family}");
    }
}

/// A copy of a fixture directory with its `config.json` edited.
fn with_config(name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> std::path::PathBuf {
    let out = tmp(&format!("{name}-edited"));
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir(name).join("config.json")).unwrap()).unwrap();
    edit(&mut config);
    std::fs::write(out.join("config.json"), config.to_string()).unwrap();
    std::fs::copy(dir(name).join("model.safetensors"), out.join("model.safetensors")).unwrap();
    out
}

#[test]
fn bad_checkpoints_configs_and_inputs_are_typed_errors() {
    let device = Default::default();
    let load = |path: &std::path::Path| BertForSequenceClassification::<B>::from_pretrained(path, &device);

    // An architecture outside the family, and settings that would change the numbers.
    for (field, value, named) in [
        ("model_type", serde_json::json!("gpt2"), "model_type"),
        (
            "position_embedding_type",
            serde_json::json!("relative_key"),
            "position_embedding_type",
        ),
        ("hidden_act", serde_json::json!("swish"), "hidden_act"),
        ("is_decoder", serde_json::json!(true), "is_decoder"),
        ("hidden_size", serde_json::json!("32"), "hidden_size"),
    ] {
        let path = with_config("bert-seqcls", |c| c[field] = value);
        let err = load(&path).unwrap_err();
        assert!(matches!(err, Error::Load { .. }), "{field}: {err}");
        assert!(err.to_string().contains(named), "{field}: {err}");
    }
    let path = with_config("distilbert-seqcls", |c| {
        c["sinusoidal_pos_embds"] = serde_json::json!(true)
    });
    assert!(
        load(&path)
            .unwrap_err()
            .to_string()
            .contains("sinusoidal_pos_embds")
    );
    // A size that does not match the weights: every misshaped key is named.
    let path = with_config("bert-seqcls", |c| c["intermediate_size"] = serde_json::json!(40));
    let err = load(&path).unwrap_err();
    assert!(matches!(err, Error::StateDict { .. }), "{err}");
    assert!(err.to_string().contains("intermediate.dense.weight"), "{err}");
    // A missing encoder weight.
    let out = tmp("bert-missing");
    std::fs::copy(dir("bert-seqcls").join("config.json"), out.join("config.json")).unwrap();
    let bytes = std::fs::read(dir("bert-seqcls").join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let kept: Vec<(String, safetensors::tensor::TensorView<'_>)> = st
        .tensors()
        .into_iter()
        .filter(|(k, _)| k != "bert.encoder.layer.1.output.dense.bias")
        .collect();
    safetensors::serialize_to_file(kept, None, &out.join("model.safetensors")).unwrap();
    let err = load(&out).unwrap_err();
    assert!(
        err.to_string().contains("bert.encoder.layer.1.output.dense.bias"),
        "{err}"
    );
    // No config at all.
    assert!(matches!(load(&tmp("empty")).unwrap_err(), Error::Load { .. }));

    // Inputs: too long, a token type outside the table, an id outside the vocabulary, an
    // inconsistent batch.
    let bert = BertForTokenClassification::<B>::from_pretrained(dir("bert-tokcls"), &device).unwrap();
    let long = EncodedBatch::from_sequences(&[vec![5; 25]], 0).unwrap();
    assert!(matches!(
        bert.forward(&long),
        Err(Error::TooLong {
            found: 25,
            max: 24,
            ..
        })
    ));
    let mut types = EncodedBatch::from_sequences(&[vec![5, 6, 7]], 0).unwrap();
    types.token_type_ids = vec![0, 2, 0];
    let err = bert.forward(&types).unwrap_err();
    assert!(err.to_string().contains("token_type_ids"), "{err}");
    let ids = EncodedBatch::from_sequences(&[vec![5, 60]], 0).unwrap();
    assert!(matches!(
        bert.forward(&ids),
        Err(Error::TokenId {
            found: 60,
            vocab_size: 60
        })
    ));
    let mut ragged = EncodedBatch::from_sequences(&[vec![5, 6]], 0).unwrap();
    ragged.attention_mask.pop();
    assert!(matches!(bert.forward(&ragged), Err(Error::Data(_))));
    let roberta = BertModel::<B>::from_pretrained(dir("roberta-base"), &device).unwrap();
    // RoBERTa's table of 26 rows holds 24 positions after its offset of pad + 1 = 2.
    let long = EncodedBatch::from_sequences(&[vec![5; 25]], 1).unwrap();
    assert!(matches!(
        roberta.forward(&long),
        Err(Error::TooLong { max: 24, .. })
    ));
    // A label outside the classes.
    let err = bert
        .loss(bert.forward(&types_ok()).unwrap(), &[0, 7, -100])
        .unwrap_err();
    assert!(matches!(err, Error::Index { index: 7, len: 5, .. }), "{err}");
    // Bad configurations built in code.
    assert!(matches!(
        BertConfig::new()
            .with_hidden_size(30)
            .with_num_attention_heads(4)
            .init::<B>(false, &device),
        Err(Error::Config { .. })
    ));
    assert!(
        BertConfig::new()
            .with_hidden_dropout_prob(f64::NAN)
            .init::<B>(false, &device)
            .is_err()
    );
}

fn types_ok() -> EncodedBatch {
    EncodedBatch::from_sequences(&[vec![5, 6, 7]], 0).unwrap()
}

/// The fine-tuning recipe against PyTorch (`tests/fixtures/make_bert_finetune.py`): AdamW with
/// no decay on biases and norm weights, layer-wise learning-rate decay and transformers' linear
/// warmup schedule, four steps on the fixture batch: the losses before each step and every
/// parameter after them.
#[test]
fn fine_tuning_recipe_matches_pytorch() {
    use burn::optim::GradientsParams;
    use ember_lm::io::TorchWeights;
    use ember_lm::models::bert::SequenceLabels;
    use ember_lm::optim::{DecayGroups, LrSchedule, OptimizerConfig};
    type A = Autodiff<B>;
    let device = Default::default();
    let reference = Fixture::load("encoders/finetune.safetensors");
    for family in FAMILIES {
        let f = Fixture::load(&format!("encoders/{family}-seqcls/reference.safetensors"));
        let input = batch(&f);
        let labels = SequenceLabels::Classes(common::bert::labels(&f, "labels"));
        let mut model =
            BertForSequenceClassification::<A>::from_pretrained(dir(&format!("{family}-seqcls")), &device)
                .unwrap();
        let mut optim = OptimizerConfig::adamw()
            .with_lr(1e-3)
            .with_weight_decay(0.01)
            .with_decay_groups(DecayGroups::NoRank1)
            .with_layer_lr_decay(Some(0.8))
            .init::<A, _>(&model)
            .unwrap()
            .with_schedule(LrSchedule::Linear {
                warmup_steps: 2,
                total_steps: 5,
                end_factor: 0.0,
            })
            .unwrap();
        let mut losses = Vec::new();
        for _ in 0..4 {
            let loss = model.loss(model.forward(&input).unwrap(), &labels).unwrap();
            losses.push(loss.clone().into_scalar() as f64);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(model, grads);
        }
        common::assert_close(
            &format!("{family} losses"),
            burn::tensor::TensorData::new(losses, [4]),
            reference.data(&format!("{family}.loss")),
            1e-5,
            1e-4,
        );
        let params = model.named_parameters().unwrap();
        assert!(params.len() > 30, "{family}");
        for (key, value) in params {
            common::assert_close(
                &format!("{family} {key}"),
                value.convert::<f64>(),
                reference.data(&format!("{family}.{key}")),
                1e-5,
                1e-4,
            );
        }
    }
}
