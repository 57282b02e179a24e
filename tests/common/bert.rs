//! The BERT-family checks against transformers (`tests/fixtures/make_bert.py`), generic over
//! the backend so that NdArray and Flex run the same ones.

use burn::module::AutodiffModule;
use burn::tensor::Tensor;
use ember_lm::data::EncodedBatch;
use ember_lm::io::{TorchWeights, named_grads};
use ember_lm::models::bert::{
    BertForMaskedLM, BertForSequenceClassification, BertForTokenClassification, BertModel, SequenceLabels,
};

use super::{Fixture, assert_close, fixture_path};

pub const FAMILIES: [&str; 3] = ["bert", "roberta", "distilbert"];

/// The fixture's padded batch.
pub fn batch(f: &Fixture) -> EncodedBatch {
    let ids: Vec<u32> = f.data("input_ids").iter::<i64>().map(|v| v as u32).collect();
    let shape = f.data("input_ids").shape.to_vec();
    EncodedBatch {
        batch: shape[0],
        seq_len: shape[1],
        input_ids: ids,
        attention_mask: f.data("attention_mask").iter::<i64>().map(|v| v as u32).collect(),
        token_type_ids: f.data("token_type_ids").iter::<i64>().map(|v| v as u32).collect(),
    }
}

pub fn labels(f: &Fixture, key: &str) -> Vec<i64> {
    f.data(key).iter::<i64>().collect()
}

fn values(f: &Fixture, key: &str) -> Vec<f32> {
    f.data(key).iter::<f64>().map(|v| v as f32).collect()
}

fn close<B: ember_lm::Backend, const D: usize>(
    what: &str,
    t: Tensor<B, D>,
    f: &Fixture,
    key: &str,
    tol: (f64, f64),
) {
    assert_close(what, t.into_data().convert::<f64>(), f.data(key), tol.0, tol.1);
}

fn hidden_states<B: ember_lm::Backend>(
    what: &str,
    bert: &BertModel<B>,
    input: &EncodedBatch,
    f: &Fixture,
    tol: (f64, f64),
) {
    let states = bert.forward_hidden_states(input).unwrap();
    assert_eq!(states.len(), 3, "{what}: embeddings + 2 layers");
    for (i, s) in states.into_iter().enumerate() {
        close(&format!("{what} hidden_{i}"), s, f, &format!("hidden_{i}"), tol);
    }
}

/// Every gradient the fixture holds (embeddings and layer 0), by checkpoint key.
fn gradients<B: ember_lm::TrainBackend, M: TorchWeights + AutodiffModule<B> + Clone>(
    what: &str,
    model: &M,
    grads: &B::Gradients,
    f: &Fixture,
    tol: (f64, f64),
) {
    let named = named_grads(model, grads);
    let mut checked = 0;
    for key in f.keys().filter(|k| k.starts_with("grad.")) {
        let name = &key["grad.".len()..];
        let (_, g) = named
            .iter()
            .find(|(k, _)| k == name)
            .unwrap_or_else(|| panic!("{what}: no gradient for {name}"));
        assert_close(
            &format!("{what} grad {name}"),
            g.clone().convert::<f64>(),
            f.data(&key),
            tol.0,
            tol.1,
        );
        checked += 1;
    }
    assert!(checked >= 15, "{what}: only {checked} gradients checked");
}

/// Outputs, hidden states, losses and gradients of every family and head against transformers.
pub fn check_against_transformers<B: ember_lm::TrainBackend>(device: &B::Device, tol: (f64, f64)) {
    for family in FAMILIES {
        let dir = |head: &str| fixture_path(&format!("encoders/{family}-{head}"));
        let reference =
            |head: &str| Fixture::load(&format!("encoders/{family}-{head}/reference.safetensors"));

        // The bare encoder (keys without the prefix), with the pooler where the family has one.
        let f = reference("base");
        let (bert, info) = BertModel::<B>::from_pretrained_with_info(dir("base"), device).unwrap();
        assert!(
            info.newly_initialized.is_empty() && info.unused.is_empty(),
            "{family} base: {info:?}"
        );
        let input = batch(&f);
        hidden_states(&format!("{family} base"), &bert, &input, &f, tol);
        if f.has("pooler") {
            let pooled = bert.pool(bert.forward(&input).unwrap()).unwrap();
            close(&format!("{family} pooler"), pooled, &f, "pooler", tol);
        }

        let f = reference("mlm");
        let (mlm, info) = BertForMaskedLM::<B>::from_pretrained_with_info(dir("mlm"), device).unwrap();
        assert!(
            info.newly_initialized.is_empty() && info.unused.is_empty(),
            "{family} mlm: {info:?}"
        );
        hidden_states(&format!("{family} mlm"), &mlm.bert, &input, &f, tol);
        let logits = mlm.forward(&input).unwrap();
        close(&format!("{family} mlm logits"), logits.clone(), &f, "logits", tol);
        let loss = mlm.loss(logits, &labels(&f, "labels")).unwrap();
        close(&format!("{family} mlm loss"), loss.clone(), &f, "loss", tol);
        gradients(&format!("{family} mlm"), &mlm, &loss.backward(), &f, tol);

        let f = reference("seqcls");
        let (cls, info) =
            BertForSequenceClassification::<B>::from_pretrained_with_info(dir("seqcls"), device).unwrap();
        assert!(
            info.newly_initialized.is_empty() && info.unused.is_empty(),
            "{family} seqcls: {info:?}"
        );
        let logits = cls.forward(&input).unwrap();
        close(
            &format!("{family} seqcls logits"),
            logits.clone(),
            &f,
            "logits",
            tol,
        );
        let loss = cls
            .loss(logits.clone(), &SequenceLabels::Classes(labels(&f, "labels")))
            .unwrap();
        close(&format!("{family} seqcls loss"), loss.clone(), &f, "loss", tol);
        gradients(&format!("{family} seqcls"), &cls, &loss.backward(), &f, tol);
        for (problem, labels_key, loss_key) in [
            (
                ember_lm::models::bert::ProblemType::MultiLabel,
                "labels_multi",
                "loss_multi",
            ),
            (
                ember_lm::models::bert::ProblemType::Regression,
                "labels_regression",
                "loss_regression",
            ),
        ] {
            let other = cls.clone().with_problem_type(Some(problem));
            let loss = other
                .loss(logits.clone(), &SequenceLabels::Values(values(&f, labels_key)))
                .unwrap();
            close(&format!("{family} seqcls {loss_key}"), loss, &f, loss_key, tol);
        }

        let f = reference("tokcls");
        let tok = BertForTokenClassification::<B>::from_pretrained(dir("tokcls"), device).unwrap();
        let logits = tok.forward(&input).unwrap();
        close(
            &format!("{family} tokcls logits"),
            logits.clone(),
            &f,
            "logits",
            tol,
        );
        let loss = tok.loss(logits, &labels(&f, "labels")).unwrap();
        close(&format!("{family} tokcls loss"), loss, &f, "loss", tol);
    }
}

/// Each row run alone gives, at its real positions, the states it has in the padded batch.
pub fn check_padding_changes_nothing<B: ember_lm::Backend>(device: &B::Device, tol: (f64, f64)) {
    for family in FAMILIES {
        let f = Fixture::load(&format!("encoders/{family}-base/reference.safetensors"));
        let bert = BertModel::<B>::from_pretrained(fixture_path(&format!("encoders/{family}-base")), device)
            .unwrap();
        let input = batch(&f);
        let batched = bert.forward(&input).unwrap();
        let [_, _, d] = batched.dims();
        for r in 0..input.batch {
            let tokens = input.tokens(r);
            let n = tokens.len();
            let mut alone = EncodedBatch::from_sequences(&[tokens], 0).unwrap();
            alone.token_type_ids = input.token_type_ids[r * input.seq_len..r * input.seq_len + n].to_vec();
            let single = bert.forward(&alone).unwrap();
            let row = batched.clone().slice([r..r + 1, 0..n, 0..d]);
            assert_close(
                &format!("{family} row {r} alone"),
                single.into_data().convert::<f64>(),
                row.into_data().convert::<f64>(),
                tol.0,
                tol.1,
            );
        }
    }
}
