//! The CPU layer-norm / RMS-norm kernel: one pass per row forward (statistics, then the scaled
//! output), one per row backward, rows in parallel; the weight and bias gradients are per-thread
//! column sums added at the end.

use burn::tensor::{DType, Tensor};
use rayon::prelude::*;

use super::math::{Real, simd, sum_lanes};
use super::{tensor, to_vec};
use crate::backend::norm::{NormArgs, NormGrads, NormKind, NormStats};

/// Rows per parallel task: enough work to pay for a task at the widths Transformers use.
const ROWS: usize = 16;

/// The norm and its statistics on the host.
pub fn forward<B: crate::Backend>(args: NormArgs<B>) -> (Tensor<B, 2>, NormStats<B>) {
    if args.input.dtype() == DType::F64 {
        forward_typed::<B, f64>(args)
    } else {
        forward_typed::<B, f32>(args)
    }
}

fn forward_typed<B: crate::Backend, T: Real>(args: NormArgs<B>) -> (Tensor<B, 2>, NormStats<B>) {
    let device = args.input.device();
    let [n, d] = args.input.dims();
    let x: Vec<T> = to_vec(args.input);
    let w: Vec<T> = to_vec(args.weight);
    let b: Option<Vec<T>> = args.bias.map(to_vec);
    let (eps, layer) = (T::from_f64(args.eps), args.kind == NormKind::Layer);
    let inv_d = T::ONE / T::from_f64(d as f64);
    let mut y = vec![T::ZERO; n * d];
    let mut mean = vec![T::ZERO; n];
    let mut rstd = vec![T::ZERO; n];
    // `.max(1)`: a zero-width row (empty buffers) must not ask rayon for chunks of 0.
    y.par_chunks_mut((ROWS * d).max(1))
        .zip(mean.par_chunks_mut(ROWS).zip(rstd.par_chunks_mut(ROWS)))
        .enumerate()
        .for_each(|(chunk, (ys, (means, rstds)))| {
            simd(
                #[inline(always)]
                || {
                    for (r, y) in ys.chunks_exact_mut(d).enumerate() {
                        let x = &x[(chunk * ROWS + r) * d..][..d];
                        let mu = if layer {
                            sum_lanes(x, |v| v) * inv_d
                        } else {
                            T::ZERO
                        };
                        let var = sum_lanes(x, |v| (v - mu) * (v - mu)) * inv_d;
                        let rs = T::ONE / (var + eps).sqrt();
                        match &b {
                            Some(b) => {
                                for j in 0..d {
                                    y[j] = (x[j] - mu) * rs * w[j] + b[j];
                                }
                            }
                            None => {
                                for j in 0..d {
                                    y[j] = (x[j] - mu) * rs * w[j];
                                }
                            }
                        }
                        means[r] = mu;
                        rstds[r] = rs;
                    }
                },
            )
        });
    let stats = NormStats {
        mean: tensor(mean, [n], &device),
        rstd: tensor(rstd, [n], &device),
    };
    (tensor(y, [n, d], &device), stats)
}

/// The gradients of a norm on the host.
pub fn backward<B: crate::Backend>(
    args: NormArgs<B>,
    stats: NormStats<B>,
    grad: Tensor<B, 2>,
) -> NormGrads<B> {
    if args.input.dtype() == DType::F64 {
        backward_typed::<B, f64>(args, stats, grad)
    } else {
        backward_typed::<B, f32>(args, stats, grad)
    }
}

fn backward_typed<B: crate::Backend, T: Real>(
    args: NormArgs<B>,
    stats: NormStats<B>,
    grad: Tensor<B, 2>,
) -> NormGrads<B> {
    let device = args.input.device();
    let [n, d] = args.input.dims();
    let has_bias = args.bias.is_some();
    let x: Vec<T> = to_vec(args.input);
    let w: Vec<T> = to_vec(args.weight);
    let dy: Vec<T> = to_vec(grad);
    let mean: Vec<T> = to_vec(stats.mean);
    let rstd: Vec<T> = to_vec(stats.rstd);
    let layer = args.kind == NormKind::Layer;
    let inv_d = T::ONE / T::from_f64(d as f64);
    let mut dx = vec![T::ZERO; n * d];
    // Per task: [dw | db] column sums, added together afterwards.
    let sums = dx
        .par_chunks_mut((ROWS * d).max(1))
        .enumerate()
        .map(|(chunk, dxs)| {
            simd(
                #[inline(always)]
                || {
                    let mut sums = vec![T::ZERO; 2 * d];
                    let mut xhat = vec![T::ZERO; d];
                    // g = dy ∘ w, then g ∘ x̂.
                    let mut g_buf = vec![T::ZERO; 2 * d];
                    for (r, dx) in dxs.chunks_exact_mut(d).enumerate() {
                        let row = chunk * ROWS + r;
                        let (x, dy) = (&x[row * d..][..d], &dy[row * d..][..d]);
                        let (mu, rs) = (mean[row], rstd[row]);
                        let (g, rest) = g_buf.split_at_mut(d);
                        for j in 0..d {
                            xhat[j] = (x[j] - mu) * rs;
                            g[j] = dy[j] * w[j];
                            rest[j] = g[j] * xhat[j];
                        }
                        let (dw, db) = sums.split_at_mut(d);
                        for j in 0..d {
                            dw[j] += dy[j] * xhat[j];
                            db[j] += dy[j];
                        }
                        let mean_g = if layer {
                            sum_lanes(g, |v| v) * inv_d
                        } else {
                            T::ZERO
                        };
                        let mean_gx = sum_lanes(rest, |v| v) * inv_d;
                        for j in 0..d {
                            dx[j] = rs * (g[j] - mean_g - xhat[j] * mean_gx);
                        }
                    }
                    sums
                },
            )
        })
        .reduce(
            || vec![T::ZERO; 2 * d],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(a, b)| *a += *b);
                a
            },
        );
    let (dw, db) = (sums[..d].to_vec(), sums[d..].to_vec());
    NormGrads {
        input: tensor(dx, [n, d], &device),
        weight: tensor(dw, [d], &device),
        bias: has_bias.then(|| tensor(db, [d], &device)),
    }
}
