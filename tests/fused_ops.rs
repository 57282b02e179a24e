//! The fused CPU operations (forward and hand-written backward) against their tensor-op
//! compositions differentiated by burn's autodiff, on `NdArray<f64>`, where the two must agree
//! to rounding: attention (causal, padding, additive masks, GQA, dropout, several tiles), and the
//! default tensor-op backward of a saved attention.

mod common;

use burn::backend::autodiff::grads::Gradients;
use burn::backend::{Autodiff, NdArray};
use burn::tensor::backend::Backend as _;
use burn::tensor::{Bool, Distribution, Tensor, TensorData};
use ember_lm::Backend;
use ember_lm::backend::{
    AttentionArgs, AttentionDropout, composed_attention_dropped, saved_attention_backward,
};

type Inner = NdArray<f64>;
type Ad = Autodiff<Inner>;

fn random<const D: usize>(shape: [usize; D]) -> Tensor<Ad, D> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), &Default::default()).require_grad()
}

fn close<const D: usize>(what: &str, a: Tensor<Inner, D>, b: Tensor<Inner, D>) {
    // burn 0.21's f64 `erf` is an approximation good to about 1e-8, so the compositions of the
    // exact GELU agree to that only (and their bias gradients, sums over rows, to 1e-6); the
    // kernel uses libm's `erf` and matches PyTorch to rounding.
    let (atol, rtol) = if what.starts_with("Gelu,") || what.starts_with("gelu_bias (composition)") {
        (1e-7, 1e-6)
    } else {
        (1e-10, 1e-9)
    };
    common::assert_close(what, a.into_data(), b.into_data(), atol, rtol);
}

/// One attention call: batch, queries, keys, heads, key/value heads, head width, and its masks.
struct Case {
    dims: (usize, usize, usize, usize, usize, usize),
    causal: bool,
    /// Keys padded at the end of each sequence (`Tk - valid`).
    valid: Option<Vec<usize>>,
    bias: bool,
    dropout: Option<f64>,
}

fn args_for(case: &Case) -> AttentionArgs<Ad> {
    let (b, tq, tk, h, h_kv, d) = case.dims;
    let device = Default::default();
    let key_padding = case.valid.as_ref().map(|valid| {
        let blocked: Vec<bool> = valid.iter().flat_map(|&v| (0..tk).map(move |j| j >= v)).collect();
        Tensor::<Ad, 2, Bool>::from_data(TensorData::new(blocked, [b, tk]), &device)
    });
    // An additive mask with some -inf entries (ALiBi-like slopes plus blocked pairs).
    let bias = case.bias.then(|| {
        let values: Vec<f64> = (0..tq * tk)
            .map(|n| {
                let (i, j) = (n / tk, n % tk);
                if (i + 2 * j) % 7 == 3 {
                    f64::NEG_INFINITY
                } else {
                    -0.1 * (i as f64 - j as f64).abs()
                }
            })
            .collect();
        Tensor::<Ad, 2>::from_data(TensorData::new(values, [tq, tk]), &device)
    });
    AttentionArgs {
        query: random([b, tq, h, d]),
        key: random([b, tk, h_kv, d]),
        value: random([b, tk, h_kv, d]),
        key_padding,
        bias,
        causal: case.causal,
        scale: 1.0 / (d as f64).sqrt(),
        dropout: case.dropout.map(|prob| AttentionDropout { prob, seed: 1234 }),
    }
}

fn check(name: &str, case: &Case) {
    let a = args_for(case);
    let factors = a.dropout.map(|p| p.factors::<Ad>(a.dims(), &Default::default()));
    let fused = Ad::sdpa(a.clone());
    let reference = composed_attention_dropped(a.clone(), factors);
    close(
        &format!("{name} output"),
        fused.clone().inner(),
        reference.clone().inner(),
    );
    let w = random(fused.dims());
    let g_fused = (fused * w.clone()).sum().backward();
    let g_ref = (reference * w).sum().backward();
    for (what, t) in [("query", &a.query), ("key", &a.key), ("value", &a.value)] {
        close(
            &format!("{name} d{what}"),
            t.grad(&g_fused).expect("fused gradient"),
            t.grad(&g_ref).expect("reference gradient"),
        );
    }
    // The inner backend alone (no autodiff) runs the forward-only kernel.
    let inner = a.inner();
    let factors = inner
        .dropout
        .map(|p| p.factors::<Inner>(inner.dims(), &Default::default()));
    close(
        &format!("{name} inference output"),
        Inner::sdpa(inner.clone()),
        composed_attention_dropped(inner, factors),
    );
}

#[test]
fn attention_kernel_matches_the_composition() {
    Ad::seed(&Default::default(), 21);
    let cases = [
        (
            "causal",
            Case {
                dims: (2, 5, 5, 2, 2, 4),
                causal: true,
                valid: None,
                bias: false,
                dropout: None,
            },
        ),
        (
            "full",
            Case {
                dims: (2, 4, 6, 2, 2, 3),
                causal: false,
                valid: None,
                bias: false,
                dropout: None,
            },
        ),
        (
            "gqa + padding, queries at the end",
            Case {
                dims: (2, 3, 7, 4, 2, 8),
                causal: true,
                valid: Some(vec![7, 4]),
                bias: false,
                dropout: None,
            },
        ),
        (
            "bias with -inf",
            Case {
                dims: (1, 6, 6, 3, 1, 4),
                causal: false,
                valid: None,
                bias: true,
                dropout: None,
            },
        ),
        (
            "dropout",
            Case {
                dims: (2, 6, 6, 2, 2, 4),
                causal: true,
                valid: None,
                bias: false,
                dropout: Some(0.3),
            },
        ),
        // One query over one key, and a decoding step: one query over a padded cache.
        (
            "one query, one key",
            Case {
                dims: (1, 1, 1, 2, 2, 4),
                causal: true,
                valid: None,
                bias: false,
                dropout: None,
            },
        ),
        (
            "decoding step",
            Case {
                dims: (2, 1, 9, 4, 2, 8),
                causal: true,
                valid: Some(vec![9, 5]),
                bias: true,
                dropout: None,
            },
        ),
        // More queries than keys: the first queries see no key and get zeros.
        (
            "causal, fewer keys",
            Case {
                dims: (1, 6, 3, 2, 2, 4),
                causal: true,
                valid: None,
                bias: false,
                dropout: None,
            },
        ),
        // A sequence whose every key is padded: its queries see nothing.
        (
            "all padded",
            Case {
                dims: (2, 3, 3, 1, 1, 4),
                causal: false,
                valid: Some(vec![3, 0]),
                bias: false,
                dropout: None,
            },
        ),
        // Several query and key tiles (64 x 128), everything on at once.
        (
            "tiles",
            Case {
                dims: (1, 150, 150, 2, 1, 5),
                causal: true,
                valid: Some(vec![140]),
                bias: true,
                dropout: Some(0.2),
            },
        ),
        // Large enough for the kernel to run its tasks on several threads.
        (
            "threads",
            Case {
                dims: (4, 70, 70, 4, 2, 16),
                causal: true,
                valid: None,
                bias: false,
                dropout: None,
            },
        ),
    ];
    for (name, case) in &cases {
        check(name, case);
    }
}

/// The default tensor-op backward of a saved forward (what a backend gets that saves the
/// log-sum-exp but has no backward kernel) against the kernel's backward.
#[test]
fn tensor_op_backward_matches_the_kernel() {
    Ad::seed(&Default::default(), 22);
    let case = Case {
        dims: (2, 5, 9, 4, 2, 4),
        causal: true,
        valid: Some(vec![9, 6]),
        bias: true,
        dropout: Some(0.25),
    };
    let a = args_for(&case).inner();
    let (output, lse) = Inner::sdpa_saved(a.clone()).expect("NdArray saves");
    let grad = Tensor::<Inner, 4>::random(output.dims(), Distribution::Normal(0.0, 1.0), &Default::default());
    let kernel = Inner::sdpa_backward(a.clone(), output.clone(), lse.clone(), grad.clone());
    let ops = saved_attention_backward(a, output, lse, grad);
    close("dquery", kernel.query, ops.query);
    close("dkey", kernel.key, ops.key);
    close("dvalue", kernel.value, ops.value);
}

/// The dropout mask is a function of the seed: the same seed, the same output; another seed,
/// another output; and about `prob` of the weights dropped.
#[test]
fn attention_dropout_is_reproducible_from_the_seed() {
    Ad::seed(&Default::default(), 23);
    let case = Case {
        dims: (1, 8, 8, 1, 1, 4),
        causal: false,
        valid: None,
        bias: false,
        dropout: Some(0.5),
    };
    let a = args_for(&case).inner();
    let run = |seed: u64| {
        let mut a = a.clone();
        a.dropout = Some(AttentionDropout { prob: 0.5, seed });
        Inner::sdpa(a).into_data()
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
    let p = AttentionDropout { prob: 0.3, seed: 99 };
    let dropped = (0..100_000u64).filter(|&i| !p.keep(i)).count() as f64 / 100_000.0;
    assert!((dropped - 0.3).abs() < 0.01, "dropped {dropped}");
}

// ---------------------------------------------------------------------------------------------
// Row ops: norm, bias + activation, cross-entropy.

use burn::tensor::Int;
use ember_lm::backend::{
    Activation, ActivationArgs, CrossEntropyArgs, NormArgs, NormKind, composed_activation,
    composed_activation_backward, composed_cross_entropy, composed_cross_entropy_backward, composed_norm,
    composed_norm_backward,
};

fn fixture(name: &str) -> common::Fixture {
    common::Fixture::load(&format!("fused_ops/{name}.safetensors"))
}

fn leaf<const D: usize>(f: &common::Fixture, key: &str) -> Tensor<Ad, D> {
    f.tensor::<Ad, D>(key, &Default::default()).require_grad()
}

/// Runs `op` (the fused op under autodiff, then the composition) on the fixture's inputs and
/// compares the output and the input gradients with PyTorch's.
fn against_torch<const D: usize, const N: usize>(
    name: &str,
    inputs: [&str; N],
    op: impl Fn(bool, &[Tensor<Ad, 2>], &common::Fixture) -> Tensor<Ad, D>,
) {
    let f = fixture(name);
    for fused in [true, false] {
        // Every input as a 2-D leaf (1-D ones as one row), so that its gradient is read there.
        let roots: Vec<Tensor<Ad, 2>> = inputs
            .iter()
            .map(|k| {
                let t: Tensor<Ad, 2> = match f.data(k).shape.len() {
                    1 => f.tensor::<Ad, 1>(k, &Default::default()).unsqueeze::<2>(),
                    _ => f.tensor::<Ad, 2>(k, &Default::default()),
                };
                t.require_grad()
            })
            .collect();
        let out = op(fused, &roots, &f);
        let what = format!("{name} ({})", if fused { "fused" } else { "composition" });
        close(
            &format!("{what} output"),
            out.clone().inner(),
            f.tensor::<Inner, D>("output", &Default::default()),
        );
        let grads = (out * f.tensor::<Ad, D>("w", &Default::default()))
            .sum()
            .backward();
        for (key, root) in inputs.iter().zip(&roots) {
            let g = root.grad(&grads).expect("gradient");
            let expected: Vec<f64> = f.data(&format!("grad_{key}")).iter::<f64>().collect();
            let len = expected.len();
            close::<1>(
                &format!("{what} d{key}"),
                g.reshape([-1]),
                Tensor::from_data(TensorData::new(expected, [len]), &Default::default()),
            );
        }
    }
}

fn row(t: &Tensor<Ad, 2>) -> Tensor<Ad, 1> {
    t.clone().reshape([-1])
}

#[test]
fn norms_and_activations_match_pytorch() {
    let norm = |kind: NormKind| {
        move |fused: bool, t: &[Tensor<Ad, 2>], _: &common::Fixture| {
            let args = NormArgs {
                input: t[0].clone(),
                weight: row(&t[1]),
                bias: None,
                eps: 0.0,
                kind,
            };
            let eps = if kind == NormKind::Rms { 1e-6 } else { 1e-5 };
            let args = NormArgs { eps, ..args };
            if fused {
                Ad::norm(args).0
            } else {
                composed_norm(args).0
            }
        }
    };
    against_torch("rms_norm", ["x", "weight"], norm(NormKind::Rms));
    against_torch("layer_norm_nobias", ["x", "weight"], norm(NormKind::Layer));
    for (name, activation) in [
        ("gelu_bias", Activation::Gelu),
        ("gelu_tanh_bias", Activation::GeluTanh),
        ("relu_bias", Activation::Relu),
    ] {
        against_torch(name, ["x", "bias"], move |fused, t, _| {
            let args = ActivationArgs {
                input: t[0].clone(),
                bias: Some(row(&t[1])),
                activation,
            };
            if fused {
                Ad::bias_activation(args)
            } else {
                composed_activation(args)
            }
        });
    }
}

fn ce_args(f: &common::Fixture, logits: Tensor<Ad, 2>) -> CrossEntropyArgs<Ad> {
    let scalar = |k: &str| f.data(k).iter::<f64>().next().expect("one value");
    CrossEntropyArgs {
        logits,
        targets: f.tensor::<Ad, 1>("targets", &Default::default()).int(),
        ignore_index: scalar("ignore_index") as i64,
        label_smoothing: scalar("label_smoothing"),
    }
}

#[test]
fn cross_entropy_matches_pytorch() {
    for name in [
        "cross_entropy_plain",
        "cross_entropy_ignore",
        "cross_entropy_smoothing",
        "cross_entropy_smoothing_full",
        "cross_entropy_all_ignored",
    ] {
        let f = fixture(name);
        for fused in [true, false] {
            let logits = leaf::<2>(&f, "logits");
            let args = ce_args(&f, logits.clone());
            let (loss, _) = if fused {
                Ad::cross_entropy(args)
            } else {
                composed_cross_entropy(args)
            };
            let what = format!("{name} ({})", if fused { "fused" } else { "composition" });
            let expected = f.data("loss");
            if expected.iter::<f64>().all(f64::is_nan) {
                let found = loss.into_scalar();
                assert!(
                    found.is_nan(),
                    "{what}: every row ignored gives NaN, as PyTorch; found {found}"
                );
                continue;
            }
            close(
                &format!("{what} loss"),
                loss.clone().inner(),
                Tensor::from_data(expected, &Default::default()),
            );
            let grads = loss.backward();
            close(
                &format!("{what} dlogits"),
                logits.grad(&grads).expect("gradient"),
                f.tensor::<Inner, 2>("grad_logits", &Default::default()),
            );
        }
    }
}

#[test]
fn attention_matches_pytorch() {
    for name in ["sdpa_causal", "sdpa_gqa_mask"] {
        let f = fixture(name);
        let [query, key, value] = ["query", "key", "value"].map(|k| leaf::<4>(&f, k));
        let d = query.dims()[3];
        let args = AttentionArgs {
            query: query.clone(),
            key: key.clone(),
            value: value.clone(),
            key_padding: None,
            bias: f
                .has("bias")
                .then(|| f.tensor::<Ad, 2>("bias", &Default::default())),
            causal: f.data("causal").iter::<i64>().next() == Some(1),
            scale: 1.0 / (d as f64).sqrt(),
            dropout: None,
        };
        let out = Ad::sdpa(args);
        close(
            &format!("{name} output"),
            out.clone().inner(),
            f.tensor("output", &Default::default()),
        );
        let grads = (out * f.tensor::<Ad, 4>("w", &Default::default()))
            .sum()
            .backward();
        for (k, t) in [("query", &query), ("key", &key), ("value", &value)] {
            close(
                &format!("{name} d{k}"),
                t.grad(&grads).expect("gradient"),
                f.tensor(&format!("grad_{k}"), &Default::default()),
            );
        }
    }
}

/// Compares the fused and reference outputs, then back-propagates `Σ out ∘ w` through each.
fn outputs_then_backward<const D: usize>(
    what: &str,
    fused: Tensor<Ad, D>,
    reference: Tensor<Ad, D>,
    w: &Tensor<Ad, D>,
) -> (Gradients, Gradients) {
    close(
        &format!("{what} output"),
        fused.clone().inner(),
        reference.clone().inner(),
    );
    let gf = (fused * w.clone()).sum().backward();
    let gr = (reference * w.clone()).sum().backward();
    (gf, gr)
}

/// Compares one leaf's gradients from the two graphs.
fn same_grad<const D: usize>(what: &str, t: &Tensor<Ad, D>, (gf, gr): &(Gradients, Gradients)) {
    close(
        what,
        t.grad(gf).expect("fused gradient"),
        t.grad(gr).expect("reference gradient"),
    );
}

/// The kernels against the compositions differentiated by autodiff, and the default tensor-op
/// backwards against the kernels' backwards, on random inputs with every option.
#[test]
fn row_kernels_match_the_compositions() {
    Ad::seed(&Default::default(), 24);
    let device = Default::default();
    // 70 rows: several parallel tasks of the norm kernel.
    let (n, d) = (70, 12);
    for kind in [NormKind::Layer, NormKind::Rms] {
        for bias in [true, false] {
            let args = NormArgs {
                input: random([n, d]),
                weight: random([d]),
                bias: (bias && kind == NormKind::Layer).then(|| random([d])),
                eps: 1e-5,
                kind,
            };
            let what = format!("{kind:?} norm, bias {bias}");
            let w = random([n, d]);
            let (fused, stats) = Ad::norm(args.clone());
            let grads = outputs_then_backward(&what, fused, composed_norm(args.clone()).0, &w);
            same_grad(&format!("{what} dx"), &args.input, &grads);
            same_grad(&format!("{what} dw"), &args.weight, &grads);
            if let Some(b) = &args.bias {
                same_grad(&format!("{what} db"), b, &grads);
            }
            let (inner, stats) = (args.inner(), stats.inner());
            let kernel = Inner::norm_backward(inner.clone(), stats.clone(), w.clone().inner());
            let ops = composed_norm_backward(inner, stats, w.inner());
            close(&format!("{what} tensor-op dx"), kernel.input, ops.input);
            close(&format!("{what} tensor-op dw"), kernel.weight, ops.weight);
        }
    }
    for activation in [Activation::Relu, Activation::Gelu, Activation::GeluTanh] {
        for bias in [true, false] {
            let args = ActivationArgs {
                input: random([n, d]),
                bias: bias.then(|| random([d])),
                activation,
            };
            let what = format!("{activation:?}, bias {bias}");
            let w = random([n, d]);
            let fused = Ad::bias_activation(args.clone());
            let grads = outputs_then_backward(&what, fused, composed_activation(args.clone()), &w);
            same_grad(&format!("{what} dx"), &args.input, &grads);
            if let Some(b) = &args.bias {
                same_grad(&format!("{what} db"), b, &grads);
            }
            let inner = args.inner();
            let (kx, _) = Inner::bias_activation_backward(inner.clone(), w.clone().inner());
            let (ox, _) = composed_activation_backward(inner, w.inner());
            close(&format!("{what} tensor-op dx"), kx, ox);
        }
    }
    // 100 rows over 7 classes: some ignored, smoothing on and off.
    let targets: Vec<i64> = (0..100)
        .map(|i| if i % 9 == 4 { -1 } else { (i * 5 % 7) as i64 })
        .collect();
    for smoothing in [0.0, 0.2] {
        let logits = random([100, 7]);
        let args = CrossEntropyArgs {
            logits: logits.clone(),
            targets: Tensor::<Ad, 1, Int>::from_data(TensorData::new(targets.clone(), [100]), &device),
            ignore_index: -1,
            label_smoothing: smoothing,
        };
        let (fused, lse) = Ad::cross_entropy(args.clone());
        let (reference, _) = composed_cross_entropy(args.clone());
        close(
            "cross-entropy loss",
            fused.clone().inner(),
            reference.clone().inner(),
        );
        let gf = (fused * 1.7).backward();
        let gr = (reference * 1.7).backward();
        close(
            "cross-entropy dlogits",
            logits.grad(&gf).unwrap(),
            logits.grad(&gr).unwrap(),
        );
        let inner = args.inner();
        let grad = Tensor::<Inner, 1>::from_data(TensorData::new(vec![1.7], [1]), &device);
        close(
            "cross-entropy tensor-op dlogits",
            Inner::cross_entropy_backward(inner.clone(), lse.clone().inner(), grad.clone()),
            composed_cross_entropy_backward(inner, lse.inner(), grad),
        );
    }
}

/// The public loss checks what the op assumes.
#[test]
fn cross_entropy_loss_rejects_bad_input() {
    use ember_lm::Error;
    use ember_lm::nn::CrossEntropyLossConfig;
    let device = Default::default();
    let logits = Tensor::<Inner, 2>::zeros([3, 4], &device);
    let targets =
        |v: Vec<i64>| Tensor::<Inner, 1, Int>::from_data(TensorData::new(v.clone(), [v.len()]), &device);
    let loss = CrossEntropyLossConfig::new().init().unwrap();
    let err = loss.forward(logits.clone(), targets(vec![0, 4, 1])).unwrap_err();
    assert!(matches!(err, Error::Index { index: 4, len: 4, .. }), "{err}");
    let err = loss.forward(logits.clone(), targets(vec![0, -5, 1])).unwrap_err();
    assert!(matches!(err, Error::Index { index: -5, .. }), "{err}");
    let err = loss.forward(logits.clone(), targets(vec![0, 1])).unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
    // The ignored index itself is fine, whatever its value.
    assert!(loss.forward(logits, targets(vec![0, -100, 3])).is_ok());
    for bad in [-0.1, 1.5, f64::NAN] {
        let err = CrossEntropyLossConfig::new()
            .with_label_smoothing(bad)
            .init()
            .unwrap_err();
        assert!(matches!(err, Error::Config { .. }), "{err}");
    }
}

/// Rows of width zero (an empty feature axis, an empty vocabulary) give empty outputs and
/// gradients instead of a panic; a vocabulary of zero with every row ignored gives NaN, as an
/// all-ignored batch does in PyTorch.
#[test]
fn zero_width_rows_do_not_panic() {
    let device = Default::default();
    let x = Tensor::<Ad, 2>::zeros([3, 0], &device).require_grad();
    let weight = Tensor::<Ad, 1>::zeros([0], &device).require_grad();
    for kind in [NormKind::Layer, NormKind::Rms] {
        let (y, _) = Ad::norm(NormArgs {
            input: x.clone(),
            weight: weight.clone(),
            bias: None,
            eps: 1e-5,
            kind,
        });
        assert_eq!(y.dims(), [3, 0]);
        let grads = y.sum().backward();
        assert_eq!(x.grad(&grads).map(|g| g.dims()), Some([3, 0]));
    }
    let y = Ad::bias_activation(ActivationArgs {
        input: x.clone(),
        bias: Some(weight.clone()),
        activation: Activation::Gelu,
    });
    assert_eq!(y.dims(), [3, 0]);
    let grads = y.sum().backward();
    assert_eq!(weight.grad(&grads).map(|g| g.dims()), Some([0]));
    let (loss, _) = Ad::cross_entropy(CrossEntropyArgs {
        logits: x.clone(),
        targets: Tensor::<Ad, 1, Int>::from_data(TensorData::new(vec![-100i64; 3], [3]), &device),
        ignore_index: -100,
        label_smoothing: 0.0,
    });
    assert!(loss.clone().into_scalar().is_nan());
    let grads = loss.backward();
    assert_eq!(x.grad(&grads).map(|g| g.dims()), Some([3, 0]));
}

/// A NaN in the input comes out as NaN where the composition (and PyTorch) puts it, never as a
/// finite number: in the loss, and in the attention output of every query that sees the NaN key.
#[test]
fn nan_inputs_stay_nan() {
    let device = Default::default();
    let mut values: Vec<f64> = (0..12).map(|i| i as f64 / 7.0).collect();
    values[5] = f64::NAN;
    let logits = Tensor::<Ad, 2>::from_data(TensorData::new(values, [3, 4]), &device);
    let args = CrossEntropyArgs {
        logits,
        targets: Tensor::<Ad, 1, Int>::from_data(TensorData::new(vec![0i64, 2, 3], [3]), &device),
        ignore_index: -100,
        label_smoothing: 0.1,
    };
    assert!(Ad::cross_entropy(args.clone()).0.into_scalar().is_nan());
    assert!(composed_cross_entropy(args).0.into_scalar().is_nan());

    Ad::seed(&device, 25);
    let mut a = args_for(&Case {
        dims: (1, 10, 10, 1, 1, 4),
        causal: true,
        valid: None,
        bias: false,
        dropout: None,
    });
    // Key 4 is NaN: queries 0..4 do not see it (causal), queries 4.. do.
    let mut key: Vec<f64> = a.key.clone().inner().into_data().iter::<f64>().collect();
    key[4 * 4] = f64::NAN;
    a.key = Tensor::from_data(TensorData::new(key, [1, 10, 1, 4]), &device);
    let nan_rows = |t: Tensor<Ad, 4>| -> Vec<bool> {
        let v: Vec<f64> = t.inner().into_data().iter::<f64>().collect();
        v.chunks(4).map(|row| row.iter().any(|x| x.is_nan())).collect()
    };
    let kernel = nan_rows(Ad::sdpa(a.clone()));
    let reference = nan_rows(composed_attention_dropped(a, None));
    assert_eq!(kernel, reference);
    assert_eq!(kernel, (0..10).map(|i| i >= 4).collect::<Vec<_>>());
}
