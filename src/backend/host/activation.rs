//! The CPU bias + activation kernel: one pass over the rows forward, one backward (the input is
//! saved, not the output), with the bias gradient as per-task column sums.

use burn::tensor::{DType, Tensor};
use rayon::prelude::*;

use super::math::{Real, simd};
use super::{tensor, to_vec};
use crate::backend::activation::{Activation, ActivationArgs, GELU_TANH_C};

/// Elements per parallel task.
const CHUNK: usize = 1 << 14;

/// `1 / sqrt(2π)`.
const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// The activation (`SLOPE = false`) or its derivative (`SLOPE = true`) at `x`, for the kind
/// numbered `K` (0 relu, 1 exact GELU, 2 tanh GELU): constants, so that each loop is compiled for
/// one function with no branch per element.
#[inline(always)]
fn act<T: Real, const K: u8, const SLOPE: bool>(x: T) -> T {
    let half = T::from_f64(0.5);
    match K {
        0 => {
            let on = if x > T::ZERO { T::ONE } else { T::ZERO };
            if SLOPE { on } else { on * x }
        }
        1 => {
            let cdf = half * (T::ONE + (x * T::from_f64(std::f64::consts::FRAC_1_SQRT_2)).erf());
            if SLOPE {
                cdf + x * (-(half * x * x)).exp() * T::from_f64(INV_SQRT_2PI)
            } else {
                x * cdf
            }
        }
        _ => {
            let c = T::from_f64(GELU_TANH_C);
            let k = T::from_f64(0.044715);
            let t = (c * (x + k * x * x * x)).tanh();
            if SLOPE {
                let du = c * (T::ONE + T::from_f64(3.0) * k * x * x);
                half * (T::ONE + t) + half * x * (T::ONE - t * t) * du
            } else {
                half * x * (T::ONE + t)
            }
        }
    }
}

/// `rows[r][j] = act(rows[r][j] + bias[j])`, or with `SLOPE`, `rows[r][j] *= act'(x[r][j] +
/// bias[j])` and the column sums of the result added to `sums` (when it is not empty).
#[inline(always)]
fn apply_rows<T: Real, const K: u8, const SLOPE: bool>(rows: &mut [T], x: &[T], bias: &[T], sums: &mut [T]) {
    let f = bias.len();
    for (r, row) in rows.chunks_exact_mut(f).enumerate() {
        if SLOPE {
            let x = &x[r * f..][..f];
            for ((v, x), b) in row.iter_mut().zip(x).zip(bias) {
                *v *= act::<T, K, true>(*x + *b);
            }
            sums.iter_mut().zip(row.iter()).for_each(|(s, v)| *s += *v);
        } else {
            row.iter_mut()
                .zip(bias)
                .for_each(|(v, b)| *v = act::<T, K, false>(*v + *b));
        }
    }
}

/// [`apply_rows`] for the kind at run time, vectorised for the CPU.
fn dispatch<T: Real, const SLOPE: bool>(
    kind: Activation,
    rows: &mut [T],
    x: &[T],
    bias: &[T],
    sums: &mut [T],
) {
    simd(
        #[inline(always)]
        || match kind {
            Activation::Relu => apply_rows::<T, 0, SLOPE>(rows, x, bias, sums),
            Activation::Gelu => apply_rows::<T, 1, SLOPE>(rows, x, bias, sums),
            Activation::GeluTanh => apply_rows::<T, 2, SLOPE>(rows, x, bias, sums),
        },
    )
}

/// `act(x + b)` on the host.
pub fn forward<B: crate::Backend>(args: ActivationArgs<B>) -> Tensor<B, 2> {
    if args.input.dtype() == DType::F64 {
        forward_typed::<B, f64>(args)
    } else {
        forward_typed::<B, f32>(args)
    }
}

fn forward_typed<B: crate::Backend, T: Real>(args: ActivationArgs<B>) -> Tensor<B, 2> {
    let device = args.input.device();
    let [n, f] = args.input.dims();
    let mut x: Vec<T> = to_vec(args.input);
    let bias: Option<Vec<T>> = args.bias.map(to_vec);
    let kind = args.activation;
    let rows = (CHUNK / f.max(1)).max(1);
    let bias = bias.unwrap_or_else(|| vec![T::ZERO; f]);
    x.par_chunks_mut((rows * f).max(1))
        .for_each(|chunk| dispatch::<T, false>(kind, chunk, &[], &bias, &mut []));
    tensor(x, [n, f], &device)
}

/// The input and bias gradients of `act(x + b)` on the host.
pub fn backward<B: crate::Backend>(
    args: ActivationArgs<B>,
    grad: Tensor<B, 2>,
) -> (Tensor<B, 2>, Option<Tensor<B, 1>>) {
    if args.input.dtype() == DType::F64 {
        backward_typed::<B, f64>(args, grad)
    } else {
        backward_typed::<B, f32>(args, grad)
    }
}

fn backward_typed<B: crate::Backend, T: Real>(
    args: ActivationArgs<B>,
    grad: Tensor<B, 2>,
) -> (Tensor<B, 2>, Option<Tensor<B, 1>>) {
    let device = args.input.device();
    let [n, f] = args.input.dims();
    let x: Vec<T> = to_vec(args.input);
    let bias: Option<Vec<T>> = args.bias.map(to_vec);
    let mut dx: Vec<T> = to_vec(grad);
    let kind = args.activation;
    let rows = (CHUNK / f.max(1)).max(1);
    let has_bias = bias.is_some();
    let bias = bias.unwrap_or_else(|| vec![T::ZERO; f]);
    let db = dx
        .par_chunks_mut((rows * f).max(1))
        .enumerate()
        .map(|(chunk, dxs)| {
            let mut sums = vec![T::ZERO; if has_bias { f } else { 0 }];
            let x = &x[chunk * rows * f..][..dxs.len()];
            dispatch::<T, true>(kind, dxs, x, &bias, &mut sums);
            sums
        })
        .reduce(Vec::new, |a, b| {
            if a.is_empty() || b.is_empty() {
                return if a.is_empty() { b } else { a };
            }
            a.iter().zip(&b).map(|(a, b)| *a + *b).collect()
        });
    let db = has_bias.then(|| tensor(db, [f], &device));
    (tensor(dx, [n, f], &device), db)
}
