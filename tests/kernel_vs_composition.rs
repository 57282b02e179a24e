//! The fused CPU kernel (forward and hand-written backward) against the tensor-op composition
//! differentiated by burn's autodiff, on `NdArray<f64>`: every cell, both directions, with and
//! without bias, projection and ragged lengths. The composition is what wgpu runs, and it is
//! checked against PyTorch there; here the two paths must agree to rounding.

mod common;

use burn::backend::{Autodiff, NdArray};
use burn::tensor::backend::Backend as _;
use burn::tensor::{Distribution, Tensor};
use ember_lm::Backend;
use ember_lm::backend::{CellKind, SequenceArgs, SequenceOutput, composed_sequence};

type Ad = Autodiff<NdArray<f64>>;

fn random<const D: usize>(shape: [usize; D]) -> Tensor<Ad, D> {
    Tensor::random(shape, Distribution::Normal(0.0, 0.7), &Default::default()).require_grad()
}

struct Case {
    kind: CellKind,
    bias: bool,
    proj: usize,
    lengths: Option<Vec<usize>>,
    reverse: bool,
}

fn args(case: &Case) -> SequenceArgs<Ad> {
    let (t, n, i, h) = (5, 3, 4, 6);
    let g = case.kind.gates();
    let r = if case.proj > 0 { case.proj } else { h };
    SequenceArgs {
        kind: case.kind,
        input: random([n, t, i]),
        weight_ih: random([g * h, i]),
        bias_ih: case.bias.then(|| random([g * h])),
        weight_hh: random([g * h, r]),
        bias_hh: case.bias.then(|| random([g * h])),
        weight_hr: (case.proj > 0).then(|| random([case.proj, h])),
        h0: random([n, r]),
        c0: (case.kind == CellKind::Lstm).then(|| random([n, h])),
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

fn compare(what: &str, a: Tensor<NdArray<f64>, 1>, b: Tensor<NdArray<f64>, 1>) {
    common::assert_close(what, a.into_data(), b.into_data(), 1e-10, 1e-8);
}

#[test]
fn fused_kernel_matches_the_composition() {
    Ad::seed(&Default::default(), 11);
    let mut checked = 0;
    for kind in [
        CellKind::RnnTanh,
        CellKind::RnnRelu,
        CellKind::Lstm,
        CellKind::Gru,
    ] {
        for (bias, proj, lengths, reverse) in [
            (true, 0, None, false),
            (true, 0, Some(vec![5, 2, 4]), true),
            (false, 0, Some(vec![3, 5, 1]), false),
            (true, 2, Some(vec![2, 5, 3]), true),
        ] {
            if proj > 0 && kind != CellKind::Lstm {
                continue;
            }
            let case = Case {
                kind,
                bias,
                proj,
                lengths,
                reverse,
            };
            let a = args(&case);
            let r = a.h0.dims()[1];
            let w = [random([3, 5, r]), random([1, 3, r]), random([1, 3, 6])];
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
            );
            compare(
                &format!("{name} h_n"),
                fused.h_n.clone().inner().reshape([-1]),
                reference.h_n.clone().inner().reshape([-1]),
            );
            let g_fused = loss(&fused, &w).backward();
            let g_ref = loss(&reference, &w).backward();
            macro_rules! grad {
                ($name:literal, $t:expr) => {
                    let t = $t;
                    compare(
                        &format!("{name} d{}", $name),
                        t.grad(&g_fused).expect("fused grad").reshape([-1]),
                        t.grad(&g_ref).expect("reference grad").reshape([-1]),
                    );
                    checked += 1;
                };
            }
            grad!("input", a.input.clone());
            grad!("weight_ih", a.weight_ih.clone());
            grad!("weight_hh", a.weight_hh.clone());
            grad!("h0", a.h0.clone());
            if let Some(b) = a.bias_ih.clone() {
                grad!("bias_ih", b);
            }
            if let Some(b) = a.bias_hh.clone() {
                grad!("bias_hh", b);
            }
            if let Some(w) = a.weight_hr.clone() {
                grad!("weight_hr", w);
            }
            if let Some(c) = a.c0.clone() {
                grad!("c0", c);
            }
        }
    }
    assert!(checked > 60, "checked {checked} gradients");
}
