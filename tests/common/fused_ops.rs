//! The fused operations against PyTorch's fixtures (`tests/fixtures/make_fused_ops.py`, f64) on any
//! training backend: each op's output and the gradients of `Σ out ∘ w` (the loss itself for
//! cross-entropy) with respect to its inputs, within `atol + rtol |b|`.

use burn::tensor::{Int, Tensor, TensorData};
use ember_lm::TrainBackend;
use ember_lm::backend::{Activation, ActivationArgs, AttentionArgs, CrossEntropyArgs, NormArgs, NormKind};

use super::{Fixture, assert_close};

fn fixture(name: &str) -> Fixture {
    Fixture::load(&format!("fused_ops/{name}.safetensors"))
}

fn leaf<B: TrainBackend, const D: usize>(f: &Fixture, key: &str) -> Tensor<B, D> {
    f.tensor::<B, D>(key, &Default::default()).require_grad()
}

/// Compares a tensor with a fixture key, flattened.
fn against<B: TrainBackend, const D: usize>(
    what: &str,
    t: Tensor<B::InnerBackend, D>,
    f: &Fixture,
    key: &str,
    tol: (f64, f64),
) {
    let expected = f.data(key);
    let values: Vec<f64> = t.into_data().iter::<f64>().collect();
    let found = TensorData::new(values, expected.shape.clone());
    assert_close(what, found, expected, tol.0, tol.1);
}

/// Every fixture through `B`'s ops.
pub fn check_fused_ops<B: TrainBackend>(atol: f64, rtol: f64) {
    let tol = (atol, rtol);
    let device = Default::default();
    for name in ["sdpa_causal", "sdpa_gqa_mask"] {
        let f = fixture(name);
        let [q, k, v] = ["query", "key", "value"].map(|key| leaf::<B, 4>(&f, key));
        let out = B::sdpa(AttentionArgs {
            query: q.clone(),
            key: k.clone(),
            value: v.clone(),
            key_padding: None,
            bias: f.has("bias").then(|| f.tensor::<B, 2>("bias", &device)),
            causal: f.data("causal").iter::<i64>().next() == Some(1),
            scale: 1.0 / (q.dims()[3] as f64).sqrt(),
            dropout: None,
        });
        against::<B, 4>(&format!("{name} output"), out.clone().inner(), &f, "output", tol);
        let grads = (out * f.tensor::<B, 4>("w", &device)).sum().backward();
        for (key, t) in [("query", q), ("key", k), ("value", v)] {
            against::<B, 4>(
                &format!("{name} d{key}"),
                t.grad(&grads).unwrap(),
                &f,
                &format!("grad_{key}"),
                tol,
            );
        }
    }
    for (name, kind, eps) in [
        ("rms_norm", NormKind::Rms, 1e-6),
        ("layer_norm_nobias", NormKind::Layer, 1e-5),
    ] {
        let f = fixture(name);
        let (x, w) = (leaf::<B, 2>(&f, "x"), leaf::<B, 1>(&f, "weight"));
        let (out, _) = B::norm(NormArgs {
            input: x.clone(),
            weight: w.clone(),
            bias: None,
            eps,
            kind,
        });
        against::<B, 2>(&format!("{name} output"), out.clone().inner(), &f, "output", tol);
        let grads = (out * f.tensor::<B, 2>("w", &device)).sum().backward();
        against::<B, 2>(&format!("{name} dx"), x.grad(&grads).unwrap(), &f, "grad_x", tol);
        against::<B, 1>(
            &format!("{name} dweight"),
            w.grad(&grads).unwrap(),
            &f,
            "grad_weight",
            tol,
        );
    }
    for (name, activation) in [
        ("gelu_bias", Activation::Gelu),
        ("gelu_tanh_bias", Activation::GeluTanh),
        ("relu_bias", Activation::Relu),
    ] {
        let f = fixture(name);
        let (x, b) = (leaf::<B, 2>(&f, "x"), leaf::<B, 1>(&f, "bias"));
        let out = B::bias_activation(ActivationArgs {
            input: x.clone(),
            bias: Some(b.clone()),
            activation,
        });
        against::<B, 2>(&format!("{name} output"), out.clone().inner(), &f, "output", tol);
        let grads = (out * f.tensor::<B, 2>("w", &device)).sum().backward();
        against::<B, 2>(&format!("{name} dx"), x.grad(&grads).unwrap(), &f, "grad_x", tol);
        against::<B, 1>(
            &format!("{name} dbias"),
            b.grad(&grads).unwrap(),
            &f,
            "grad_bias",
            tol,
        );
    }
    for name in [
        "cross_entropy_plain",
        "cross_entropy_ignore",
        "cross_entropy_smoothing",
        "cross_entropy_smoothing_full",
    ] {
        let f = fixture(name);
        let logits = leaf::<B, 2>(&f, "logits");
        let scalar = |k: &str| f.data(k).iter::<f64>().next().unwrap();
        let targets: Vec<i64> = f.data("targets").iter::<i64>().collect();
        let n = targets.len();
        let (loss, _) = B::cross_entropy(CrossEntropyArgs {
            logits: logits.clone(),
            targets: Tensor::<B, 1, Int>::from_data(TensorData::new(targets, [n]), &device),
            ignore_index: scalar("ignore_index") as i64,
            label_smoothing: scalar("label_smoothing"),
        });
        against::<B, 1>(&format!("{name} loss"), loss.clone().inner(), &f, "loss", tol);
        let grads = loss.backward();
        against::<B, 2>(
            &format!("{name} dlogits"),
            logits.grad(&grads).unwrap(),
            &f,
            "grad_logits",
            tol,
        );
    }
}
