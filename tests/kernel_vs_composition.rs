//! The fused CPU kernel (forward and hand-written backward) against the tensor-op composition
//! differentiated by burn's autodiff, on `NdArray<f64>`: every cell, both directions, with and
//! without bias, projection and ragged lengths. The composition is what wgpu runs, and it is
//! checked against PyTorch there; here the two paths must agree to rounding.

mod common;

use burn::backend::{Autodiff, NdArray};
use burn::tensor::backend::Backend as _;
use burn::tensor::{Distribution, Tensor, s};
use ember_lm::Backend;
use ember_lm::backend::{
    CellType, SequenceArgs, SequenceOutput, SequenceOutputGrads, SequenceWeights, composed_sequence,
    device_sequence_saved,
};

type Ad = Autodiff<NdArray<f64>>;

fn random<const D: usize>(shape: [usize; D]) -> Tensor<Ad, D> {
    random_std(shape, 0.7)
}

fn random_std<const D: usize>(shape: [usize; D], std: f64) -> Tensor<Ad, D> {
    Tensor::random(shape, Distribution::Normal(0.0, std), &Default::default()).require_grad()
}

struct Case {
    /// time, batch, input, hidden
    dims: (usize, usize, usize, usize),
    kind: CellType,
    bias: bool,
    proj: usize,
    lengths: Option<Vec<usize>>,
    reverse: bool,
}

fn args(case: &Case) -> SequenceArgs<Ad> {
    let (t, n, i, h) = case.dims;
    let g = case.kind.gates();
    let r = if case.proj > 0 { case.proj } else { h };
    // Weights on PyTorch's scale (1/sqrt(fan-in)): larger ones make the recurrence chaotic, and
    // rounding differences between two exact-in-f64 paths then grow exponentially with time.
    let w = |rows: usize, cols: usize| random_std([rows, cols], 1.0 / (cols as f64).sqrt());
    SequenceArgs {
        kind: case.kind,
        input: random([n, t, i]),
        weights: SequenceWeights {
            weight_ih: w(g * h, i),
            bias_ih: case.bias.then(|| random([g * h])),
            weight_hh: w(g * h, r),
            bias_hh: case.bias.then(|| random([g * h])),
            weight_hr: (case.proj > 0).then(|| w(case.proj, h)),
        },
        h0: random([n, r]),
        c0: (case.kind == CellType::Lstm).then(|| random([n, h])),
        lengths: case.lengths.clone(),
        reverse: case.reverse,
    }
}

/// The loss weights every output element with a fixed random tensor.
fn loss(out: &SequenceOutput<Ad>, w: &[Tensor<Ad, 3>; 3]) -> Tensor<Ad, 1> {
    let mut l =
        (out.output.clone() * w[0].clone()).sum() + (out.h_n.clone() * w[1].clone().squeeze_dim(0)).sum();
    if let Some(c) = &out.c_n {
        l = l + (c.clone() * w[2].clone().squeeze_dim(0)).sum();
    }
    l
}

fn compare(what: &str, a: Tensor<NdArray<f64>, 1>, b: Tensor<NdArray<f64>, 1>, rtol: f64) {
    common::assert_close(what, a.into_data(), b.into_data(), 1e-10, rtol);
}

/// Every cell, with and without bias, projection (LSTM), ragged lengths and reversal, on a
/// 5-step batch of 3.
fn small_cases() -> Vec<Case> {
    let kinds = [
        CellType::RnnTanh,
        CellType::RnnRelu,
        CellType::Lstm,
        CellType::Gru,
    ];
    let variants = [
        (true, 0, None, false),
        (true, 0, Some(vec![5, 2, 4]), true),
        (false, 0, Some(vec![3, 5, 1]), false),
        (true, 2, Some(vec![2, 5, 3]), true),
    ];
    kinds
        .into_iter()
        .flat_map(|kind| variants.clone().into_iter().map(move |v| (kind, v)))
        .filter(|(kind, (_, proj, _, _))| *proj == 0 || *kind == CellType::Lstm)
        .map(|(kind, (bias, proj, lengths, reverse))| Case {
            dims: (5, 3, 4, 6),
            kind,
            bias,
            proj,
            lengths,
            reverse,
        })
        .collect()
}

#[test]
fn fused_kernel_matches_the_composition() {
    Ad::seed(&Default::default(), 11);
    let mut checked = 0;
    for case in small_cases() {
        let a = args(&case);
        let r = a.h0.dims()[1];
        let w = [random([3, 5, r]), random([1, 3, r]), random([1, 3, 6])];
        check(&case, &a, &w, 1e-8);
        checked += 1;
    }
    assert!(checked >= 13, "checked {checked} cases");
}

/// A batch large enough for the kernel to split it into one shard per thread.
#[test]
fn sharded_batches_match_the_composition() {
    Ad::seed(&Default::default(), 12);
    for kind in [CellType::RnnTanh, CellType::Lstm, CellType::Gru] {
        for reverse in [false, true] {
            let lengths: Vec<usize> = (0..16).map(|b| 1 + (b * 5) % 16).collect();
            let case = Case {
                // At least 2^20 multiply-adds of recurrence per direction: the kernel shards it.
                dims: (16, 16, 8, 64),
                kind,
                bias: true,
                proj: if kind == CellType::Lstm { 40 } else { 0 },
                lengths: Some(lengths),
                reverse,
            };
            let a = args(&case);
            let r = a.h0.dims()[1];
            let w = [random([16, 16, r]), random([1, 16, r]), random([1, 16, 64])];
            check(&case, &a, &w, 1e-8);
        }
    }
}

fn check(case: &Case, a: &SequenceArgs<Ad>, w: &[Tensor<Ad, 3>; 3], rtol: f64) {
    let (kind, bias, proj, reverse) = (case.kind, case.bias, case.proj, case.reverse);
    let mut checked = 0;
    {
        let fused = Ad::recurrent_sequence(a.clone());
        let reference = composed_sequence(a.clone());
        let name = format!(
            "{kind:?} bias={bias} proj={proj} lengths={:?} reverse={reverse}",
            case.lengths
        );
        compare(
            &format!("{name} output"),
            fused.output.clone().inner().reshape([-1]),
            reference.output.clone().inner().reshape([-1]),
            rtol,
        );
        compare(
            &format!("{name} h_n"),
            fused.h_n.clone().inner().reshape([-1]),
            reference.h_n.clone().inner().reshape([-1]),
            rtol,
        );
        let g_fused = loss(&fused, w).backward();
        let g_ref = loss(&reference, w).backward();
        macro_rules! grad {
            ($name:literal, $t:expr) => {
                let t = $t;
                compare(
                    &format!("{name} d{}", $name),
                    t.grad(&g_fused).expect("fused grad").reshape([-1]),
                    t.grad(&g_ref).expect("reference grad").reshape([-1]),
                    rtol,
                );
                checked += 1;
            };
        }
        grad!("input", a.input.clone());
        grad!("weight_ih", a.weights.weight_ih.clone());
        grad!("weight_hh", a.weights.weight_hh.clone());
        grad!("h0", a.h0.clone());
        if let Some(b) = a.weights.bias_ih.clone() {
            grad!("bias_ih", b);
        }
        if let Some(b) = a.weights.bias_hh.clone() {
            grad!("bias_hh", b);
        }
        if let Some(w) = a.weights.weight_hr.clone() {
            grad!("weight_hr", w);
        }
        if let Some(c) = a.c0.clone() {
            grad!("c0", c);
        }
    }
    assert!(checked >= 4, "checked {checked} gradients");
}

/// The device path (tensor-op forward that saves its gates, hand-written backward: what wgpu runs
/// under autodiff) against the composition differentiated by autodiff.
#[test]
fn device_path_matches_the_composition() {
    type Inner = NdArray<f64>;
    Ad::seed(&Default::default(), 13);
    let mut checked = 0;
    for case in small_cases() {
        {
            let (kind, bias, proj, reverse) = (case.kind, case.bias, case.proj, case.reverse);
            let a = args(&case);
            let r = a.h0.dims()[1];
            let w = [random([3, 5, r]), random([1, 3, r]), random([1, 3, 6])];
            let reference = composed_sequence(a.clone());
            let g_ref = loss(&reference, &w).backward();
            let inner: SequenceArgs<Inner> = a.inner();
            let (out, saved) = device_sequence_saved(inner);
            let name = format!(
                "device {kind:?} bias={bias} proj={proj} lengths={:?} reverse={reverse}",
                case.lengths
            );
            compare(
                &format!("{name} output"),
                out.output.reshape([-1]),
                reference.output.clone().inner().reshape([-1]),
                1e-10,
            );
            compare(
                &format!("{name} h_n"),
                out.h_n.reshape([-1]),
                reference.h_n.clone().inner().reshape([-1]),
                1e-10,
            );
            let grads = <Inner as ember_lm::Backend>::recurrent_sequence_backward(
                saved,
                SequenceOutputGrads {
                    output: w[0].clone().inner(),
                    h_n: w[1].clone().inner().squeeze_dim(0),
                    c_n: (kind == CellType::Lstm).then(|| w[2].clone().inner().squeeze_dim(0)),
                    need_input: true,
                },
            );
            let want = |t: Tensor<Ad, 2>| t.grad(&g_ref).expect("reference grad").reshape([-1]);
            let want1 = |t: Tensor<Ad, 1>| t.grad(&g_ref).expect("reference grad");
            compare(
                &format!("{name} dinput"),
                grads.input.expect("asked").reshape([-1]),
                a.input.grad(&g_ref).unwrap().reshape([-1]),
                1e-8,
            );
            compare(
                &format!("{name} dweight_ih"),
                grads.weight_ih.reshape([-1]),
                want(a.weights.weight_ih.clone()),
                1e-8,
            );
            compare(
                &format!("{name} dweight_hh"),
                grads.weight_hh.reshape([-1]),
                want(a.weights.weight_hh.clone()),
                1e-8,
            );
            compare(
                &format!("{name} dh0"),
                grads.h0.reshape([-1]),
                want(a.h0.clone()),
                1e-8,
            );
            if let (Some(g), Some(b)) = (grads.bias_ih, a.weights.bias_ih.clone()) {
                compare(&format!("{name} dbias_ih"), g, want1(b), 1e-8);
            }
            if let (Some(g), Some(b)) = (grads.bias_hh, a.weights.bias_hh.clone()) {
                compare(&format!("{name} dbias_hh"), g, want1(b), 1e-8);
            }
            if let (Some(g), Some(t)) = (grads.weight_hr, a.weights.weight_hr.clone()) {
                compare(&format!("{name} dweight_hr"), g.reshape([-1]), want(t), 1e-8);
            }
            if let (Some(g), Some(t)) = (grads.c0, a.c0.clone()) {
                compare(&format!("{name} dc0"), g.reshape([-1]), want(t), 1e-8);
            }
            checked += 1;
        }
    }
    assert!(checked >= 13, "checked {checked} cases");
}

/// One step (a decoding call): the kernel reads `W_hh` and `W_hr` as they are instead of
/// transposing them, and a batch of one over a wide layer splits its GEMV between threads.
#[test]
fn single_steps_match_the_composition() {
    type Inner = NdArray<f64>;
    Ad::seed(&Default::default(), 14);
    let kinds = [CellType::RnnTanh, CellType::Lstm, CellType::Gru];
    // (batch, hidden, proj): 4·256·256 = 2^18 multiply-adds is where the LSTM's GEMV splits.
    for (n, h, proj) in [
        (1, 6, 0),
        (3, 6, 0),
        (1, 6, 2),
        (1, 256, 0),
        (2, 256, 0),
        (1, 256, 200),
    ] {
        for kind in kinds {
            if proj > 0 && kind != CellType::Lstm {
                continue;
            }
            let case = Case {
                dims: (1, n, 4, h),
                kind,
                bias: true,
                proj,
                lengths: None,
                reverse: false,
            };
            let a = args(&case);
            let r = a.h0.dims()[1];
            let w = [random([n, 1, r]), random([1, n, r]), random([1, n, h])];
            check(&case, &a, &w, 1e-8);
            // Without autodiff: the forward-only kernel, which saves nothing.
            let inner: SequenceArgs<Inner> = a.inner();
            let fused = Inner::recurrent_sequence(inner.clone());
            let reference = composed_sequence(inner);
            let name = format!("forward-only {kind:?} n={n} h={h} proj={proj}");
            compare(
                &format!("{name} output"),
                fused.output.reshape([-1]),
                reference.output.reshape([-1]),
                1e-10,
            );
            if let (Some(c), Some(want)) = (fused.c_n, reference.c_n) {
                compare(&format!("{name} c_n"), c.reshape([-1]), want.reshape([-1]), 1e-10);
            }
        }
    }
}

/// Weights that are views into larger tensors (not contiguous from their buffer's start) are
/// read through a copy, not borrowed: the same results as contiguous weights.
#[test]
fn weights_that_are_views_give_the_same_results() {
    type Inner = NdArray<f64>;
    Ad::seed(&Default::default(), 15);
    for t in [1, 4] {
        let case = Case {
            dims: (t, 2, 4, 6),
            kind: CellType::Lstm,
            bias: true,
            proj: 3,
            lengths: None,
            reverse: false,
        };
        let a: SequenceArgs<Inner> = args(&case).inner();
        // A column slice of a wider tensor, and a row slice starting past the buffer's start.
        let view_of = |w: Tensor<Inner, 2>| {
            let [rows, cols] = w.dims();
            let wide = Tensor::cat(vec![w.clone(), w.clone()], 1);
            let col_view = wide.slice([0..rows, 0..cols]);
            let tall = Tensor::cat(vec![w.clone(), col_view], 0);
            tall.slice([rows..2 * rows, 0..cols])
        };
        let columns_of = |w: Tensor<Inner, 2>| {
            let [rows, cols] = w.dims();
            Tensor::cat(vec![w.clone(), w], 1).slice([0..rows, 0..cols])
        };
        let mut viewed = a.clone();
        viewed.weights.weight_ih = view_of(a.weights.weight_ih.clone());
        viewed.weights.weight_hh = columns_of(a.weights.weight_hh.clone());
        viewed.weights.weight_hr = a.weights.weight_hr.clone().map(view_of);
        viewed.input = Tensor::cat(vec![a.input.clone(), a.input.clone()], 0).slice(s![2..4]);
        let want = Inner::recurrent_sequence(a);
        let got = Inner::recurrent_sequence(viewed);
        compare(
            &format!("views t={t} output"),
            got.output.reshape([-1]),
            want.output.reshape([-1]),
            0.0,
        );
        compare(
            &format!("views t={t} h_n"),
            got.h_n.reshape([-1]),
            want.h_n.reshape([-1]),
            0.0,
        );
    }
}
