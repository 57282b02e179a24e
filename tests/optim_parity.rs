//! Optimizers, clipping and schedules against `torch.optim` (fixtures from
//! `tests/fixtures/make_optim.py`), on `NdArray<f64>` so that the comparison sees burn-optim's
//! arithmetic, not f32 rounding. One binary per float type (burn fixes the dtype per process).
#![cfg(feature = "ndarray")]

mod common;

use burn::backend::{Autodiff, NdArray};
use burn::module::{Module, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Tensor, TensorData, backend::Backend};
use common::{Fixture, assert_close};
use ember_lm::optim::{
    Algorithm, DecayGroups, GradClip, LrSchedule, LrScheduler, OptimizerConfig, PlateauMode, ThresholdMode,
    clip_grad_norm, clip_grad_value,
};
use serde_json::Value;

type B = Autodiff<NdArray<f64>>;
type Inner = NdArray<f64>;

/// The fixture's four parameters; the names make the decay groups: `w` decays, the bias, the
/// embedding table and the norm weight do not.
#[derive(Module, Debug)]
struct Params<B: Backend> {
    w: Param<Tensor<B, 2>>,
    b: Param<Tensor<B, 1>>,
    embedding: Param<Tensor<B, 2>>,
    ln: Param<Tensor<B, 1>>,
}

const NAMES: [(&str, &str); 4] = [("w", "w"), ("b", "b"), ("embedding", "emb"), ("ln", "ln")];

fn fixture() -> Fixture {
    Fixture::load("optim/optim.safetensors")
}

fn manifest() -> Value {
    let text = std::fs::read_to_string(common::fixture_path("optim/manifest.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn params(fx: &Fixture) -> Params<B> {
    let device = Default::default();
    Params {
        w: Param::from_tensor(fx.tensor("init.w", &device)),
        b: Param::from_tensor(fx.tensor("init.b", &device)),
        embedding: Param::from_tensor(fx.tensor("init.emb", &device)),
        ln: Param::from_tensor(fx.tensor("init.ln", &device)),
    }
}

fn grads(fx: &Fixture, prefix: &str, p: &Params<B>) -> GradientsParams {
    let device = Default::default();
    let mut g = GradientsParams::new();
    g.register::<Inner, 2>(p.w.id, fx.tensor(&format!("{prefix}.w"), &device));
    g.register::<Inner, 1>(p.b.id, fx.tensor(&format!("{prefix}.b"), &device));
    g.register::<Inner, 2>(p.embedding.id, fx.tensor(&format!("{prefix}.emb"), &device));
    g.register::<Inner, 1>(p.ln.id, fx.tensor(&format!("{prefix}.ln"), &device));
    g
}

fn values(p: &Params<B>) -> [TensorData; 4] {
    [
        p.w.val().into_data(),
        p.b.val().into_data(),
        p.embedding.val().into_data(),
        p.ln.val().into_data(),
    ]
}

fn f(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("manifest: {key}"))
}

/// The `OptimizerConfig` for a manifest entry (every hyper-parameter torch used is recorded there).
fn config(entry: &Value) -> OptimizerConfig {
    let algorithm = match entry["algorithm"].as_str().unwrap() {
        "sgd" => Algorithm::Sgd {
            momentum: f(entry, "momentum"),
            dampening: f(entry, "dampening"),
            nesterov: entry["nesterov"].as_bool().unwrap(),
        },
        a @ ("adam" | "adamw") => {
            let (beta1, beta2) = (
                entry["betas"][0].as_f64().unwrap(),
                entry["betas"][1].as_f64().unwrap(),
            );
            let (eps, amsgrad) = (f(entry, "eps"), entry["amsgrad"].as_bool().unwrap());
            if a == "adam" {
                Algorithm::Adam {
                    beta1,
                    beta2,
                    eps,
                    amsgrad,
                }
            } else {
                Algorithm::AdamW {
                    beta1,
                    beta2,
                    eps,
                    amsgrad,
                }
            }
        }
        "rmsprop" => Algorithm::RmsProp {
            alpha: f(entry, "alpha"),
            eps: f(entry, "eps"),
            momentum: f(entry, "momentum"),
            centered: entry["centered"].as_bool().unwrap(),
        },
        "adagrad" => {
            assert_eq!(f(entry, "initial_accumulator_value"), 0.0);
            Algorithm::Adagrad {
                lr_decay: f(entry, "lr_decay"),
                eps: f(entry, "eps"),
            }
        }
        other => panic!("unknown algorithm {other}"),
    };
    let groups = if entry["groups"].as_bool().unwrap() {
        DecayGroups::NoBiasNormEmbedding
    } else {
        DecayGroups::All
    };
    OptimizerConfig::new(algorithm, f(entry, "lr"))
        .with_weight_decay(f(entry, "weight_decay"))
        .with_decay_groups(groups)
}

#[test]
fn every_optimizer_matches_torch_optim_for_three_steps() {
    let fx = fixture();
    let manifest = manifest();
    let steps = manifest["steps"].as_u64().unwrap() as usize;
    let optimizers = manifest["optimizers"].as_array().unwrap();
    assert_eq!(optimizers.len(), 11);
    for entry in optimizers {
        let name = entry["name"].as_str().unwrap();
        let cfg = config(entry);
        let mut model = params(&fx);
        let init = values(&model);
        let mut optim = cfg.init::<B, _>(&model).unwrap();
        for s in 0..steps {
            let g = grads(&fx, &format!("grad{s}"), &model);
            model = optim.step(model, g);
            for ((field, key), (got, init)) in NAMES.iter().zip(values(&model).into_iter().zip(&init)) {
                let expected = fx.data(&format!("{name}.step{s}.{key}"));
                // 1e-6 relative to how far torch moved the parameter from its start on the first
                // step. Later steps of Adam/AdamW carry burn-optim's f32 bias corrections
                // (`beta.powi(t)` in f32), a few 1e-6 of the update: measured against the
                // largest move in the tensor (an element can come back near its start), 2e-5.
                let moved: Vec<f64> = expected
                    .iter::<f64>()
                    .zip(init.iter::<f64>())
                    .map(|(e, i)| (e - i).abs())
                    .collect();
                let largest = moved.iter().cloned().fold(0.0, f64::max);
                let got: Vec<f64> = got.iter::<f64>().collect();
                for (i, ((g, e), m)) in got.iter().zip(expected.iter::<f64>()).zip(&moved).enumerate() {
                    assert!(
                        (g - e).abs() <= if s == 0 { 1e-6 * m } else { 2e-5 * largest } + 1e-15,
                        "{name} step {s} {field}[{i}]: {g} vs torch {e} (moved {m})"
                    );
                }
            }
        }
    }
}

#[test]
fn decay_groups_follow_the_gpt_convention() {
    let fx = fixture();
    let model = params(&fx);
    let optim = OptimizerConfig::adamw()
        .with_decay_groups(DecayGroups::NoBiasNormEmbedding)
        .init::<B, _>(&model)
        .unwrap();
    assert!(!optim.is_no_decay(&model.w.id));
    assert!(optim.is_no_decay(&model.b.id));
    assert!(optim.is_no_decay(&model.embedding.id));
    assert!(optim.is_no_decay(&model.ln.id));
    let nano = OptimizerConfig::adamw()
        .with_decay_groups(DecayGroups::NoRank1)
        .init::<B, _>(&model)
        .unwrap();
    assert!(!nano.is_no_decay(&model.embedding.id));
    assert!(nano.is_no_decay(&model.ln.id));

    // On a real model: GPT's token/position embeddings and LayerNorms are excluded, the attention
    // and MLP matrices are not.
    let device = Default::default();
    let gpt = ember_lm::models::GptConfig::new()
        .with_vocab_size(32)
        .with_block_size(8)
        .with_n_layer(1)
        .with_n_head(2)
        .with_n_embd(16)
        .init::<B>(&device)
        .unwrap();
    let optim = OptimizerConfig::adamw()
        .with_decay_groups(DecayGroups::NoBiasNormEmbedding)
        .init::<B, _>(&gpt)
        .unwrap();
    assert!(optim.is_no_decay(&gpt.wte.id));
    assert!(optim.is_no_decay(&gpt.ln_f.weight.id));
    assert!(!optim.is_no_decay(&gpt.h[0].linear1.weight.id));
}

#[test]
fn optimizer_state_round_trips_through_bytes() {
    let fx = fixture();
    let entry = manifest()["optimizers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "adamw_groups")
        .unwrap()
        .clone();
    let cfg = config(&entry);
    let device = Default::default();
    // Straight: three steps.
    let mut straight = params(&fx);
    let mut optim = cfg.init::<B, _>(&straight).unwrap();
    for s in 0..3 {
        let g = grads(&fx, &format!("grad{s}"), &straight);
        straight = optim.step(straight, g);
    }
    // One step, state saved, a fresh optimizer loads it, two more steps.
    let mut resumed = params(&fx);
    let mut optim = cfg.init::<B, _>(&resumed).unwrap();
    let g = grads(&fx, "grad0", &resumed);
    resumed = optim.step(resumed, g);
    let bytes = optim.state_bytes().unwrap();
    assert_eq!(bytes.len(), 2, "two parameter groups");
    let fresh = cfg.init::<B, _>(&resumed).unwrap();
    assert!(fresh.load_state_bytes(vec![bytes[0].clone()], &device).is_err());
    let mut optim = cfg
        .init::<B, _>(&resumed)
        .unwrap()
        .load_state_bytes(bytes, &device)
        .unwrap();
    for s in 1..3 {
        let g = grads(&fx, &format!("grad{s}"), &resumed);
        resumed = optim.step(resumed, g);
    }
    for (a, b) in values(&straight).into_iter().zip(values(&resumed)) {
        assert_eq!(a, b);
    }
}

#[test]
fn global_norm_clipping_matches_a_hand_computed_norm_and_torch() {
    let fx = fixture();
    let model = params(&fx);
    // Hand-computed: sqrt of the sum of squares of every gradient element.
    let hand: f64 = NAMES
        .iter()
        .flat_map(|(_, key)| fx.data(&format!("grad0.{key}")).iter::<f64>().collect::<Vec<_>>())
        .map(|v| v * v)
        .sum::<f64>()
        .sqrt();
    let mut g = grads(&fx, "grad0", &model);
    let norm = clip_grad_norm::<B, _>(&model, &mut g, 1.0);
    assert!((norm - hand).abs() <= 1e-12 * hand, "{norm} vs {hand}");
    let torch_total = fx.data("clip_norm.total").iter::<f64>().next().unwrap();
    assert!((norm - torch_total).abs() <= 1e-12 * hand);
    assert!(hand > 1.0, "the fixture's gradients must need clipping");
    let check = |g: &mut GradientsParams, prefix: &str| {
        let w: Tensor<Inner, 2> = g.remove(model.w.id).unwrap();
        let b: Tensor<Inner, 1> = g.remove(model.b.id).unwrap();
        let e: Tensor<Inner, 2> = g.remove(model.embedding.id).unwrap();
        let l: Tensor<Inner, 1> = g.remove(model.ln.id).unwrap();
        for (what, got, key) in [
            ("w", w.into_data(), "w"),
            ("b", b.into_data(), "b"),
            ("emb", e.into_data(), "emb"),
            ("ln", l.into_data(), "ln"),
        ] {
            assert_close(
                &format!("{prefix}.{what}"),
                got,
                fx.data(&format!("{prefix}.{key}")),
                1e-15,
                1e-12,
            );
        }
    };
    check(&mut g, "clip_norm");
    let mut g = grads(&fx, "grad0", &model);
    clip_grad_value::<B, _>(&model, &mut g, 0.05);
    check(&mut g, "clip_value");

    // Through the optimizer's own clip, which reports the norm before clipping.
    let optim = OptimizerConfig::sgd(1.0)
        .with_clip(Some(GradClip::Norm(1.0)))
        .init::<B, _>(&model)
        .unwrap();
    let mut g = grads(&fx, "grad0", &model);
    assert!((optim.clip(&model, &mut g) - hand).abs() <= 1e-12 * hand);
    check(&mut g, "clip_norm");
}

#[test]
fn schedules_match_torch_step_by_step() {
    let fx = fixture();
    let manifest = manifest();
    let schedules = manifest["schedules"].as_array().unwrap();
    assert_eq!(schedules.len(), 7);
    for entry in schedules {
        let name = entry["name"].as_str().unwrap();
        let u = |k: &str| entry[k].as_u64().unwrap_or_else(|| panic!("{name}: {k}"));
        let schedule = match entry["kind"].as_str().unwrap() {
            "step" => LrSchedule::Step {
                step_size: u("step_size"),
                gamma: f(entry, "gamma"),
            },
            "exponential" => LrSchedule::Exponential {
                gamma: f(entry, "gamma"),
            },
            "linear" => LrSchedule::Linear {
                warmup_steps: u("warmup_steps"),
                total_steps: u("total_steps"),
                end_factor: f(entry, "end_factor"),
            },
            "warmup_cosine" => {
                LrSchedule::warmup_cosine(u("warmup_steps"), u("decay_steps"), f(entry, "min_lr"))
            }
            "plateau" => LrSchedule::Plateau {
                mode: if entry["mode"] == "min" {
                    PlateauMode::Min
                } else {
                    PlateauMode::Max
                },
                factor: f(entry, "factor"),
                patience: u("patience"),
                threshold: f(entry, "threshold"),
                threshold_mode: if entry["threshold_mode"] == "abs" {
                    ThresholdMode::Abs
                } else {
                    ThresholdMode::Rel
                },
                cooldown: u("cooldown"),
                min_lr: f(entry, "min_lr"),
                eps: 1e-8,
            },
            other => panic!("unknown schedule {other}"),
        };
        let mut sched = LrScheduler::try_new(f(entry, "base_lr"), schedule).unwrap();
        let expected: Vec<f64> = fx.data(&format!("schedule.{name}")).iter::<f64>().collect();
        let metrics: Vec<f64> = entry["metrics"]
            .as_array()
            .map(|m| m.iter().map(|v| v.as_f64().unwrap()).collect())
            .unwrap_or_default();
        let mut changed = false;
        for (s, want) in expected.iter().enumerate() {
            let lr = sched.step();
            assert!(
                (lr - want).abs() <= 1e-12 * want.abs().max(1e-12),
                "{name} step {s}: {lr} vs torch {want}"
            );
            changed |= (lr - expected[0]).abs() > 1e-9;
            if let Some(m) = metrics.get(s) {
                sched.report(*m);
            }
        }
        assert!(changed, "{name}: the fixture should move the learning rate");
        // The state is plain data: a serialised copy resumes identically.
        let copy: LrScheduler = serde_json::from_str(&serde_json::to_string(&sched).unwrap()).unwrap();
        assert_eq!(copy, sched);
    }
}

#[test]
fn out_of_range_hyper_parameters_are_errors() {
    let fx = fixture();
    let model = params(&fx);
    for cfg in [
        OptimizerConfig::sgd(-1.0),
        OptimizerConfig::new(
            Algorithm::Adam {
                beta1: 1.0,
                beta2: 0.999,
                eps: 1e-8,
                amsgrad: false,
            },
            1e-3,
        ),
        OptimizerConfig::new(
            Algorithm::Sgd {
                momentum: 0.0,
                dampening: 0.0,
                nesterov: true,
            },
            0.1,
        ),
        OptimizerConfig::adamw().with_clip(Some(GradClip::Norm(0.0))),
    ] {
        let err = cfg.init::<B, _>(&model).err().expect("an error");
        assert!(matches!(err, ember_lm::Error::Config { .. }), "{err}");
    }
    assert!(LrScheduler::try_new(1.0, LrSchedule::warmup_cosine(10, 5, 0.0)).is_err());
}
