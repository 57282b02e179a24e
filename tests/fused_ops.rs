//! The fused CPU operations (forward and hand-written backward) against their tensor-op
//! compositions differentiated by burn's autodiff, on `NdArray<f64>`, where the two must agree
//! to rounding: attention (causal, padding, additive masks, GQA, dropout, several tiles), and the
//! default tensor-op backward of a saved attention.

mod common;

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
    common::assert_close(what, a.into_data(), b.into_data(), 1e-10, 1e-9);
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

fn args(case: &Case) -> AttentionArgs<Ad> {
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
    let a = args(case);
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
    let a = args(&case).inner();
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
    let a = args(&case).inner();
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
