//! The CPU cross-entropy kernel: per row, one pass for the maximum and one for the log-sum-exp
//! (which the backward keeps), rows in parallel; the backward writes each row's
//! `softmax - target` scaled by the loss's gradient in one pass.

use burn::tensor::{DType, Tensor};
use rayon::prelude::*;

use super::math::{Real, simd, sum_lanes};
use super::{tensor, to_vec};
use crate::backend::cross_entropy::CrossEntropyArgs;

/// Rows per parallel task.
const ROWS: usize = 32;

/// The host copies of one call: logits, targets (`None` for an ignored row, `Some(V)` past the
/// end for an out-of-range target, which gives NaN), smoothing.
struct Rows<T> {
    n: usize,
    v: usize,
    logits: Vec<T>,
    targets: Vec<Option<usize>>,
    eps: T,
}

impl<T: Real> Rows<T> {
    fn read<B: crate::Backend>(args: CrossEntropyArgs<B>) -> Self {
        let [n, v] = args.logits.dims();
        let targets = args
            .targets
            .into_data()
            .convert::<i64>()
            .into_vec::<i64>()
            .unwrap_or_default()
            .into_iter()
            .map(|t| (t != args.ignore_index).then(|| usize::try_from(t).map_or(v, |t| t.min(v))))
            .collect();
        Self {
            n,
            v,
            logits: to_vec(args.logits),
            targets,
            eps: T::from_f64(args.label_smoothing),
        }
    }

    fn count(&self) -> T {
        T::from_f64(self.targets.iter().filter(|t| t.is_some()).count() as f64)
    }
}

fn max_of<T: Real>(row: &[T]) -> T {
    row.iter()
        .fold(T::NEG_INFINITY, |m, &x| if x > m { x } else { m })
}

/// Mean cross-entropy and the rows' log-sum-exp on the host.
pub fn forward<B: crate::Backend>(args: CrossEntropyArgs<B>) -> (Tensor<B, 1>, Tensor<B, 1>) {
    if args.logits.dtype() == DType::F64 {
        forward_typed::<B, f64>(args)
    } else {
        forward_typed::<B, f32>(args)
    }
}

fn forward_typed<B: crate::Backend, T: Real>(args: CrossEntropyArgs<B>) -> (Tensor<B, 1>, Tensor<B, 1>) {
    let device = args.logits.device();
    let rows = Rows::<T>::read(args);
    let (n, v, eps) = (rows.n, rows.v, rows.eps);
    let inv_v = T::ONE / T::from_f64(v as f64);
    let mut lse = vec![T::ZERO; n];
    // Per task: the sum of the kept rows' losses, in f64 so that the mean does not depend on
    // how the rows were split.
    let total: f64 = lse
        .par_chunks_mut(ROWS)
        .enumerate()
        .map(|(chunk, out)| {
            simd(
                #[inline(always)]
                || {
                    let mut sum = 0.0;
                    for (r, lse) in out.iter_mut().enumerate() {
                        let i = chunk * ROWS + r;
                        let row = &rows.logits[i * v..][..v];
                        let max = max_of(row);
                        let sum_exp = sum_lanes(row, |x| (x - max).exp());
                        *lse = max + sum_exp.ln();
                        let Some(target) = rows.targets[i] else { continue };
                        let picked = row.get(target).copied().unwrap_or(T::from_f64(f64::NAN));
                        let mut loss = *lse - picked;
                        if eps > T::ZERO {
                            let mean = sum_lanes(row, |x| x) * inv_v;
                            loss = (T::ONE - eps) * loss + eps * (*lse - mean);
                        }
                        sum += loss.to_f64();
                    }
                    sum
                },
            )
        })
        .sum();
    let loss = T::from_f64(total) / rows.count();
    (tensor(vec![loss], [1], &device), tensor(lse, [n], &device))
}

/// The logits' gradient of a cross-entropy on the host.
pub fn backward<B: crate::Backend>(
    args: CrossEntropyArgs<B>,
    lse: Tensor<B, 1>,
    grad: Tensor<B, 1>,
) -> Tensor<B, 2> {
    if args.logits.dtype() == DType::F64 {
        backward_typed::<B, f64>(args, lse, grad)
    } else {
        backward_typed::<B, f32>(args, lse, grad)
    }
}

fn backward_typed<B: crate::Backend, T: Real>(
    args: CrossEntropyArgs<B>,
    lse: Tensor<B, 1>,
    grad: Tensor<B, 1>,
) -> Tensor<B, 2> {
    let device = args.logits.device();
    let mut rows = Rows::<T>::read(args);
    let (n, v, eps) = (rows.n, rows.v, rows.eps);
    let lse: Vec<T> = to_vec(lse);
    let g: Vec<T> = to_vec(grad);
    let scale = g[0] / rows.count();
    let smooth = eps / T::from_f64(v as f64);
    let targets = std::mem::take(&mut rows.targets);
    // The logits buffer becomes the gradient in place.
    let mut d = std::mem::take(&mut rows.logits);
    d.par_chunks_mut((ROWS * v).max(1))
        .enumerate()
        .for_each(|(chunk, block)| {
            simd(
                #[inline(always)]
                || {
                    for (r, row) in block.chunks_exact_mut(v).enumerate() {
                        let i = chunk * ROWS + r;
                        let Some(target) = targets[i] else {
                            row.fill(T::ZERO);
                            continue;
                        };
                        let l = lse[i];
                        row.iter_mut()
                            .for_each(|x| *x = ((*x - l).exp() - smooth) * scale);
                        if let Some(x) = row.get_mut(target) {
                            *x += -(T::ONE - eps) * scale;
                        }
                    }
                },
            )
        });
    tensor(d, [n, v], &device)
}
