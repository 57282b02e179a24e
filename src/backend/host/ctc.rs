//! The CPU CTC kernel: per utterance (in parallel), log-space alpha and beta over the extended
//! labels in f64, the loss, and PyTorch's gradient with respect to the log-probabilities,
//! `exp(lp) - exp(log Σ_{s: l'_s = c} α_t(s) β_t(s) + nll - lp)` (which becomes the logits'
//! gradient once it passes back through `log_softmax`).

use burn::tensor::{Tensor, TensorData};
use rayon::prelude::*;

use crate::backend::ctc::CtcArgs;
use crate::log_space::log_add as lse;

/// One utterance: its loss and, when `want_grad`, its gradient rows `[T, C]` (zero past its
/// input length; empty otherwise).
fn utterance(
    lp: &[f64],
    (t_max, c): (usize, usize),
    labels: &[u32],
    len: usize,
    (blank, zero_inf, want_grad): (usize, bool, bool),
) -> (f64, Vec<f64>) {
    let l = 2 * labels.len() + 1;
    let label = |s: usize| {
        if s.is_multiple_of(2) {
            blank
        } else {
            labels[s / 2] as usize
        }
    };
    let skip = |s: usize| s % 2 == 1 && s >= 2 && labels[s / 2] != labels[s / 2 - 1];
    let at = |t: usize, s: usize| lp[t * c + label(s)];
    let neg = f64::NEG_INFINITY;
    let mut alpha = vec![neg; len * l];
    alpha[0] = at(0, 0);
    if l > 1 {
        alpha[1] = at(0, 1);
    }
    for t in 1..len {
        for s in 0..l {
            let mut a = alpha[(t - 1) * l + s];
            if s >= 1 {
                a = lse(a, alpha[(t - 1) * l + s - 1]);
            }
            if skip(s) {
                a = lse(a, alpha[(t - 1) * l + s - 2]);
            }
            alpha[t * l + s] = if a == neg { neg } else { a + at(t, s) };
        }
    }
    let last = (len - 1) * l;
    let nll = -if l > 1 {
        lse(alpha[last + l - 1], alpha[last + l - 2])
    } else {
        alpha[last]
    };
    if !want_grad {
        return (if nll.is_infinite() && zero_inf { 0.0 } else { nll }, Vec::new());
    }
    let mut grad = vec![0.0; t_max * c];
    if nll.is_infinite() && zero_inf {
        return (0.0, grad);
    }
    let mut beta = vec![neg; len * l];
    beta[last + l - 1] = at(len - 1, l - 1);
    if l > 1 {
        beta[last + l - 2] = at(len - 1, l - 2);
    }
    for t in (0..len - 1).rev() {
        for s in 0..l {
            let mut b = beta[(t + 1) * l + s];
            if s + 1 < l {
                b = lse(b, beta[(t + 1) * l + s + 1]);
            }
            if s + 2 < l && skip(s + 2) {
                b = lse(b, beta[(t + 1) * l + s + 2]);
            }
            beta[t * l + s] = if b == neg { neg } else { b + at(t, s) };
        }
    }
    let mut lcab = vec![neg; c];
    for t in 0..len {
        lcab.fill(neg);
        for s in 0..l {
            let k = label(s);
            lcab[k] = lse(lcab[k], alpha[t * l + s] + beta[t * l + s]);
        }
        for k in 0..c {
            let lpv = lp[t * c + k];
            grad[t * c + k] = lpv.exp() - (lcab[k] + nll - lpv).exp();
        }
    }
    (nll, grad)
}

/// The losses `[N]` of a batch and, when `want_grad`, their gradients `[N, T, C]`.
pub fn forward<B: crate::Backend>(args: CtcArgs<B>, want_grad: bool) -> (Tensor<B, 1>, Option<Tensor<B, 3>>) {
    let [n, t_max, c] = args.log_probs.dims();
    let device = args.log_probs.device();
    let dtype = args.log_probs.dtype();
    let lp: Vec<f64> = B::host_data(args.log_probs)
        .convert::<f64>()
        .into_vec()
        .expect("converted to f64");
    let results: Vec<(f64, Vec<f64>)> = (0..n)
        .into_par_iter()
        .map(|r| {
            utterance(
                &lp[r * t_max * c..(r + 1) * t_max * c],
                (t_max, c),
                &args.targets[r],
                args.input_lengths[r],
                (args.blank, args.zero_infinity, want_grad),
            )
        })
        .collect();
    let losses: Vec<f64> = results.iter().map(|(l, _)| *l).collect();
    let grads: Vec<f64> = results.into_iter().flat_map(|(_, g)| g).collect();
    let losses = Tensor::from_data(TensorData::new(losses, [n]).convert_dtype(dtype), &device);
    let grads = want_grad.then(|| {
        Tensor::from_data(
            TensorData::new(grads, [n, t_max, c]).convert_dtype(dtype),
            &device,
        )
    });
    (losses, grads)
}
