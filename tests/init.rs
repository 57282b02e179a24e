//! Initialisation schemes against PyTorch: each task model's parameters, drawn over several
//! seeds, have the statistics (mean, standard deviation, extremes) of the same modules
//! initialised by torch (`tests/fixtures/make_init.py`). A distribution test: the generators
//! differ, so the tolerances come from the sample sizes, derived at [`compare`].

mod common;

use std::collections::BTreeMap;

use burn::backend::NdArray;
use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;
use ember_lm::Error;
use ember_lm::io::TorchWeights;
use ember_lm::models::bert::BertConfig;
use ember_lm::models::{
    AttentionScore, Encoder, EncoderKind, GptConfig, ModelInit, RnnLmConfig, RnnSeq2SeqConfig,
    SequenceClassifierConfig, TransformerSeq2SeqConfig,
};
use ember_lm::nn::{CellType, FeedForwardActivation};
use ember_lm::train::seed_everything;
use serde_json::Value;

type B = NdArray;

/// Pooled values of each parameter, by name.
type Pool = BTreeMap<String, Vec<f64>>;

fn fixture() -> Value {
    let path = common::fixture_path("init/stats.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn seeds(fixture: &Value) -> u64 {
    fixture["seeds"].as_u64().unwrap()
}

/// Adds `model`'s parameters under their PyTorch keys, each after `prefix`.
fn pool_torch<M: TorchWeights + Clone>(pool: &mut Pool, prefix: &str, model: &M) {
    for (name, data) in model.named_parameters().unwrap() {
        pool.entry(format!("{prefix}{name}"))
            .or_default()
            .extend(data.iter::<f64>());
    }
}

/// Every float parameter of a module, in visiting order.
fn values<M: Module<B>>(module: &M) -> Vec<Vec<f64>> {
    struct V(Vec<Vec<f64>>);
    impl ModuleVisitor<B> for V {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
            self.0.push(p.val().into_data().iter::<f64>().collect());
        }
    }
    let mut v = V(Vec::new());
    module.visit(&mut v);
    v.0
}

struct Stats {
    n: usize,
    mean: f64,
    std: f64,
    min: f64,
    max: f64,
}

fn stats(x: &[f64]) -> Stats {
    let n = x.len();
    let mean = x.iter().sum::<f64>() / n as f64;
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
    Stats {
        n,
        mean,
        std: var.sqrt(),
        min: x.iter().cloned().fold(f64::INFINITY, f64::min),
        max: x.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
    }
}

/// Compares each parameter's pooled statistics with torch's.
///
/// - Constants (torch's standard deviation 0: zero biases, unit norms) must be equal.
/// - Means: each sample mean has standard error `σ/√n`, their difference `σ·√(2/n)`; allowed
///   5 of those (a false alarm about once in 1.7 million comparisons).
/// - Standard deviations: a sample deviation's standard error is `σ·√((κ−1)/(4n))` with κ the
///   kurtosis, at most 3 here (normal; uniform 1.8), so `σ·√(1/(2n))`, the difference's
///   `σ·√(1/n)`; allowed 5 of those.
/// - Extremes: a bounded (uniform) law shows in torch's extremes, within `√3·σ`; ours must stay
///   within torch's bound, widened by the expected gap to the true bound (`2b/n`, allowed 20 of
///   those), and reach it as closely. An unbounded (normal) law's largest magnitude over `n`
///   draws sits near `σ·√(2 ln n)` with a spread below σ; allowed 2σ.
fn compare(what: &str, ours: &Pool, torch: &Value) {
    let torch = torch.as_object().unwrap();
    let names: Vec<_> = ours.keys().cloned().collect();
    let expected: Vec<_> = torch.keys().cloned().collect();
    assert_eq!(names, expected, "{what}: parameter names");
    for (name, values) in ours {
        let t = &torch[name];
        let f = |k: &str| t[k].as_f64().unwrap();
        let (tn, tmean, tstd, tmin, tmax) = (
            t["n"].as_u64().unwrap() as usize,
            f("mean"),
            f("std"),
            f("min"),
            f("max"),
        );
        let o = stats(values);
        assert_eq!(o.n, tn, "{what} {name}: element count");
        if tstd == 0.0 {
            assert!(
                o.min == tmin && o.max == tmax,
                "{what} {name}: constant {tmin}, ours in [{}, {}]",
                o.min,
                o.max
            );
            continue;
        }
        let n = tn as f64;
        assert!(
            (o.mean - tmean).abs() <= 5.0 * tstd * (2.0 / n).sqrt(),
            "{what} {name}: mean {} against torch's {tmean} (σ {tstd}, n {tn})",
            o.mean
        );
        assert!(
            (o.std - tstd).abs() <= 5.0 * tstd * (1.0 / n).sqrt(),
            "{what} {name}: std {} against torch's {tstd} (n {tn})",
            o.std
        );
        let (reach, treach) = (o.min.abs().max(o.max.abs()), tmin.abs().max(tmax.abs()));
        if treach <= 3f64.sqrt() * tstd * 1.01 {
            let slack = 20.0 * 2.0 * treach / n;
            assert!(
                (reach - treach).abs() <= slack,
                "{what} {name}: bounded law, largest |x| {reach} against torch's {treach} (n {tn})"
            );
        } else {
            assert!(
                (reach - treach).abs() <= 2.0 * tstd,
                "{what} {name}: largest |x| {reach} against torch's {treach} (σ {tstd}, n {tn})"
            );
        }
    }
}

/// Draws `make(seed)` for every seed of the fixture, pooling with `add`.
fn pooled<M>(seeds: u64, make: impl Fn() -> M, add: impl Fn(&mut Pool, M)) -> Pool {
    let mut pool = Pool::new();
    for seed in 0..seeds {
        seed_everything::<B>(seed, &Default::default());
        add(&mut pool, make());
    }
    pool
}

/// Each `(scheme, fixture key)`: the model `make(scheme)` builds, drawn over the fixture's seeds
/// and pooled by PyTorch key, against torch's statistics for the same modules.
fn schemes_match_torch<S: Copy, M: TorchWeights + Clone>(
    schemes: &[(S, &str)],
    make: impl Fn(S) -> ember_lm::Result<M>,
) {
    let f = fixture();
    for &(init, key) in schemes {
        let pool = pooled(seeds(&f), || make(init).unwrap(), |p, m| pool_torch(p, "", &m));
        compare(key, &pool, &f[key]);
    }
}

fn rnn_lm(init: ModelInit) -> RnnLmConfig {
    RnnLmConfig::new(65, 32, 48)
        .with_num_layers(2)
        .with_dropout(0.0)
        .with_init(Some(init))
}

#[test]
fn rnn_lm_schemes_match_torch() {
    schemes_match_torch(
        &[
            (ModelInit::TorchModules, "rnn_lm/torch_modules"),
            (ModelInit::WordLanguageModel, "rnn_lm/word_language_model"),
        ],
        |init| rnn_lm(init).init::<B>(&Default::default()),
    );
}

/// `SequenceClassifier` has no PyTorch state dict: its parts are pooled under the names of the
/// fixture's `nn.Module` (embedding, encoder, head).
#[test]
fn classifier_schemes_match_torch() {
    let f = fixture();
    for (init, key) in [
        (ModelInit::TorchModules, "classifier/torch_modules"),
        (ModelInit::WordLanguageModel, "classifier/word_language_model"),
    ] {
        let config = SequenceClassifierConfig::new(
            200,
            32,
            3,
            EncoderKind::Recurrent {
                cell: CellType::Lstm,
                hidden_size: 24,
                num_layers: 1,
                bidirectional: true,
            },
        )
        .with_init(Some(init));
        let pool = pooled(
            seeds(&f),
            || config.init::<B>(&Default::default()).unwrap(),
            |p, m| {
                p.entry("embedding.weight".into())
                    .or_default()
                    .extend(values(&m.embedding).concat());
                let Encoder::Recurrent(rnn) = &m.encoder else {
                    unreachable!()
                };
                pool_torch(p, "encoder.", rnn);
                pool_torch(p, "head.", &m.head);
            },
        );
        compare(key, &pool, &f[key]);
    }
}

#[test]
fn rnn_seq2seq_schemes_match_torch() {
    schemes_match_torch(
        &[
            (ModelInit::TorchModules, "rnn_seq2seq/torch_modules"),
            (ModelInit::WordLanguageModel, "rnn_seq2seq/word_language_model"),
        ],
        |init| {
            RnnSeq2SeqConfig::new(60, 70, 32)
                .with_score(AttentionScore::Bahdanau)
                .with_init(Some(init))
                .init::<B>(&Default::default())
        },
    );
}

#[test]
fn gpt_schemes_match_torch() {
    schemes_match_torch(
        &[
            (ModelInit::Gpt2, "gpt/gpt2"),
            (ModelInit::TorchModules, "gpt/torch_modules"),
        ],
        |init| {
            GptConfig::new()
                .with_vocab_size(65)
                .with_block_size(32)
                .with_n_layer(2)
                .with_n_head(4)
                .with_n_embd(32)
                .with_activation(FeedForwardActivation::Gelu)
                .with_init(Some(init))
                .init::<B>(&Default::default())
        },
    );
}

#[test]
fn transformer_seq2seq_schemes_match_torch() {
    schemes_match_torch(
        &[
            (ModelInit::TorchModules, "transformer_seq2seq/torch_modules"),
            (
                ModelInit::TransformerTutorial,
                "transformer_seq2seq/transformer_tutorial",
            ),
        ],
        |init| {
            TransformerSeq2SeqConfig::new(60, 70)
                .with_d_model(32)
                .with_n_heads(4)
                .with_num_encoder_layers(1)
                .with_num_decoder_layers(1)
                .with_d_ff(64)
                .with_dropout(0.0)
                .with_init(Some(init))
                .init::<B>(&Default::default())
        },
    );
}

/// The statistics tell the schemes apart: the word-language-model's embedding against
/// `nn.Embedding`'s fails the comparison (so the comparison can fail).
#[test]
fn the_comparison_tells_the_schemes_apart() {
    let f = fixture();
    let pool = pooled(
        seeds(&f),
        || {
            rnn_lm(ModelInit::WordLanguageModel)
                .init::<B>(&Default::default())
                .unwrap()
        },
        |p, m| pool_torch(p, "", &m),
    );
    let wrong = std::panic::catch_unwind(|| compare("rnn_lm", &pool, &f["rnn_lm/torch_modules"]));
    assert!(wrong.is_err());
}

/// A scheme a model does not take is an error naming the field.
#[test]
fn a_scheme_a_model_does_not_take_is_an_error() {
    let device = Default::default();
    let err = rnn_lm(ModelInit::Gpt2).init::<B>(&device).unwrap_err();
    assert!(
        matches!(err, Error::Config { .. }) && err.to_string().contains("init is Gpt2"),
        "{err}"
    );
    let err = GptConfig::new()
        .with_vocab_size(65)
        .with_block_size(8)
        .with_n_layer(1)
        .with_n_head(2)
        .with_n_embd(8)
        .with_init(Some(ModelInit::WordLanguageModel))
        .init::<B>(&device)
        .unwrap_err();
    assert!(err.to_string().contains("init is WordLanguageModel"), "{err}");
}

/// A configuration saved before the field existed (a checkpoint's manifest, a run's) still reads,
/// and builds with the model's default scheme.
#[test]
fn a_configuration_without_init_reads_as_the_default() {
    let json = r#"{"vocab_size": 65, "embed_size": 32, "hidden_size": 48, "cell": "Lstm", "num_layers": 2, "dropout": 0.0, "tie_weights": false}"#;
    let config: RnnLmConfig = serde_json::from_str(json).unwrap();
    assert_eq!(config.init, None);
    let f = fixture();
    let pool = pooled(
        seeds(&f),
        || config.init::<B>(&Default::default()).unwrap(),
        |p, m| pool_torch(p, "", &m),
    );
    compare("rnn_lm default", &pool, &f["rnn_lm/torch_modules"]);
}

/// The BERT family keeps transformers' `_init_weights` (`N(0, initializer_range)`, the padding
/// row 0, zero biases, unit norms), its only scheme: `BertForSequenceClassification` against
/// transformers' own.
#[test]
fn bert_matches_transformers_init() {
    schemes_match_torch(&[((), "bert/transformers")], |()| {
        BertConfig::new()
            .with_vocab_size(100)
            .with_hidden_size(32)
            .with_num_hidden_layers(2)
            .with_num_attention_heads(4)
            .with_intermediate_size(64)
            .with_max_position_embeddings(40)
            .with_num_labels(3)
            .init_sequence_classification::<B>(&Default::default())
    });
}

/// `init` draws nothing: every parameter stays lazy until the generator is seeded, so that
/// `Trainer::new` (which seeds it, then draws the lazy parameters in module order) or a user's
/// `seed_everything` decides the initial weights. A draw inside `init` would come from an
/// unseeded generator (the operating system's entropy) and differ between processes.
#[test]
fn init_leaves_every_language_and_translation_model_lazy() {
    struct Lazy(Vec<bool>);
    impl ModuleVisitor<B> for Lazy {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
            self.0.push(!p.is_initialized());
        }
    }
    fn all_lazy<M: Module<B>>(m: &M) -> bool {
        let mut v = Lazy(Vec::new());
        m.visit(&mut v);
        v.0.iter().all(|&lazy| lazy)
    }
    let device = Default::default();
    for init in [ModelInit::TorchModules, ModelInit::TransformerTutorial] {
        let m = TransformerSeq2SeqConfig::new(60, 70)
            .with_d_model(32)
            .with_n_heads(4)
            .with_num_encoder_layers(1)
            .with_num_decoder_layers(1)
            .with_d_ff(64)
            .with_init(Some(init))
            .init::<B>(&device)
            .unwrap();
        // The sinusoidal table is a constant, not a draw.
        assert!(all_lazy(&m.encoder) && all_lazy(&m.decoder), "{init:?}");
        assert!(all_lazy(&m.src_embed) && all_lazy(&m.generator), "{init:?}");
    }
    for init in [ModelInit::Gpt2, ModelInit::TorchModules] {
        let gpt = GptConfig::new()
            .with_vocab_size(65)
            .with_block_size(32)
            .with_n_layer(2)
            .with_n_head(4)
            .with_n_embd(32)
            .with_init(Some(init))
            .init::<B>(&device)
            .unwrap();
        assert!(all_lazy(&gpt), "{init:?}");
    }
    for init in [ModelInit::TorchModules, ModelInit::WordLanguageModel] {
        assert!(all_lazy(&rnn_lm(init).init::<B>(&device).unwrap()), "{init:?}");
        let m = RnnSeq2SeqConfig::new(60, 70, 32)
            .with_init(Some(init))
            .init::<B>(&device)
            .unwrap();
        assert!(all_lazy(&m), "{init:?}");
    }
}
