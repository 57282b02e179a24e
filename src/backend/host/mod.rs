//! The fused CPU recurrence: one layer-direction over a whole sequence on host buffers, forward and
//! backward (backpropagation through time), for the CPU backends.
//!
//! Forward: the input projection for all steps is one GEMM; each step is one GEMM `h W_hhᵀ` and
//! one pass of gate arithmetic over the batch (in parallel over rows when the batch is large),
//! writing into buffers allocated once. Backward walks the steps in reverse with one GEMM per step
//! (`dgates W_hh`), then computes every weight gradient with one GEMM over all steps.
//!
//! `math` holds the arithmetic (float types, GEMM, transposes, sharding), `shards` the step
//! loops over a range of batch rows; this file the entry points and the saved buffers.

pub(super) mod activation;
pub(super) mod adamw;
pub(super) mod attention;
pub(super) mod cross_entropy;
pub(super) mod ctc;
mod math;
pub(super) mod norm;
mod shards;
mod view;

use std::sync::Arc;

use burn::tensor::{DType, Tensor, TensorData, backend::Backend};
use rayon::prelude::*;

pub(crate) use math::Real;
use math::{Shared, for_shards, matmul, transpose};
use shards::{BwdBufs, Ctx, FwdBufs, StepWeights, backward_shard, forward_shard};
use view::HostSlice;

use super::saved::{Saved, SavedSequence};
use super::{CellType, SequenceArgs, SequenceGrads, SequenceOutput, SequenceOutputGrads};

/// Sizes: time, batch, input, hidden, state (hidden or projection), projection (0 = none), gates.
#[derive(Clone, Copy, Debug)]
pub(super) struct Dims {
    pub(super) t: usize,
    pub(super) n: usize,
    pub(super) i: usize,
    pub(super) h: usize,
    pub(super) r: usize,
    pub(super) p: usize,
    pub(super) g: usize,
}

impl Dims {
    pub(super) fn gh(&self) -> usize {
        self.g * self.h
    }
}

/// Inputs (host copies) and the per-step values the backward pass reads.
pub(crate) struct Work<T> {
    pub(super) kind: CellType,
    pub(super) reverse: bool,
    pub(super) lengths: Option<Vec<usize>>,
    pub(super) dims: Dims,
    pub(super) has_bias: bool,
    pub(super) x: HostSlice<T>,
    pub(super) w_ih: HostSlice<T>,
    pub(super) w_hh: HostSlice<T>,
    pub(super) w_hr: Option<HostSlice<T>>,
    /// State before each step: `[N, T, R]` (batch-major, like every per-step buffer here).
    pub(super) h_prev: Vec<T>,
    /// Activated gates: `[N, T, G*H]` (LSTM i f g o, GRU r z n, RNN h').
    pub(super) acts: Vec<T>,
    /// LSTM cell before each step: `[N, T, H]`.
    pub(super) c_prev: Vec<T>,
    /// GRU `W_hn h + b_hn` at each step: `[N, T, H]`.
    pub(super) hn: Vec<T>,
}

pub(super) fn to_vec<B: super::Backend, const D: usize, T: Real>(t: Tensor<B, D>) -> Vec<T> {
    B::host_data(t)
        .convert::<T>()
        .into_vec::<T>()
        .expect("converted to the kernel's float type")
}

pub(super) fn tensor<B: Backend, const D: usize, T: Real>(
    v: Vec<T>,
    shape: [usize; D],
    device: &B::Device,
) -> Tensor<B, D> {
    Tensor::from_data(TensorData::new(v, shape), device)
}

/// The fused forward pass; with `save`, also what [`backward`] needs.
pub(crate) fn forward<B: super::Backend>(
    args: SequenceArgs<B>,
    save: bool,
) -> (SequenceOutput<B>, Option<SavedSequence<B>>) {
    let device = args.input.device();
    if args.input.dtype() == DType::F64 {
        let (out, work) = forward_typed::<B, f64>(args, save, &device);
        (
            out,
            work.map(|w| SavedSequence::new(device, Saved::F64(Arc::new(w)))),
        )
    } else {
        let (out, work) = forward_typed::<B, f32>(args, save, &device);
        (
            out,
            work.map(|w| SavedSequence::new(device, Saved::F32(Arc::new(w)))),
        )
    }
}

fn forward_typed<B: super::Backend, T: Real>(
    args: SequenceArgs<B>,
    save: bool,
    device: &B::Device,
) -> (SequenceOutput<B>, Option<Work<T>>) {
    let sd = args.dims();
    let (kind, input, h0, c0) = (args.kind, args.input, args.h0, args.c0);
    let (lengths, reverse, w) = (args.lengths, args.reverse, args.weights);
    let (n, t_len, i, h, r, p) = (sd.batch, sd.time, sd.input, sd.hidden, sd.state, sd.proj);
    let d = Dims {
        t: t_len,
        n,
        i,
        h,
        r,
        p,
        g: sd.gates,
    };
    let gh = d.gh();
    let has_bias = w.bias_ih.is_some();
    let lengths = lengths.filter(|l| l.iter().any(|&l| l < t_len));

    // Borrowed where the backend allows: no copy of the weights on every (decoding) call.
    let x = HostSlice::<T>::of(input);
    let w_ih = HostSlice::<T>::of(w.weight_ih);
    let w_hh = HostSlice::<T>::of(w.weight_hh);
    let w_hr = w.weight_hr.map(HostSlice::<T>::of);
    let b_ih: Option<Vec<T>> = w.bias_ih.map(to_vec);
    let b_hh: Option<Vec<T>> = w.bias_hh.map(to_vec);
    let mut hs: Vec<T> = to_vec(h0);
    let mut cs: Option<Vec<T>> = c0.map(to_vec);

    // xp = x W_ihᵀ + b_ih (+ b_hh, except GRU's n part, which sits inside r ⊙ (W_hn h + b_hn)).
    let mut xp = vec![T::ZERO; t_len * n * gh];
    matmul(
        t_len * n,
        gh,
        i,
        &mut xp,
        gh,
        false,
        (&x, i, 1),
        (&w_ih, 1, i),
        true,
    );
    let mut bias = vec![T::ZERO; gh];
    let mut b_hn = vec![T::ZERO; h];
    if let (Some(bi), Some(bh)) = (&b_ih, &b_hh) {
        for j in 0..gh {
            bias[j] = bi[j]
                + if kind == CellType::Gru && j >= 2 * h {
                    T::ZERO
                } else {
                    bh[j]
                };
        }
        if kind == CellType::Gru {
            b_hn.copy_from_slice(&bh[2 * h..]);
        }
        xp.par_chunks_mut(gh)
            .for_each(|row| row.iter_mut().zip(&bias).for_each(|(v, b)| *v += *b));
    }

    let mut out = vec![T::ZERO; n * t_len * r];
    let mut acts = vec![T::ZERO; if save { n * t_len * gh } else { 0 }];
    let mut h_prev = vec![T::ZERO; if save { n * t_len * r } else { 0 }];
    let mut c_prev = vec![
        T::ZERO;
        if save && kind == CellType::Lstm {
            n * t_len * h
        } else {
            0
        }
    ];
    let mut hn_all = vec![
        T::ZERO;
        if save && kind == CellType::Gru {
            n * t_len * h
        } else {
            0
        }
    ];
    let bufs = FwdBufs {
        out: Shared(out.as_mut_ptr()),
        acts: Shared(acts.as_mut_ptr()),
        h_prev: Shared(h_prev.as_mut_ptr()),
        c_prev: Shared(c_prev.as_mut_ptr()),
        hn: Shared(hn_all.as_mut_ptr()),
        hs: Shared(hs.as_mut_ptr()),
        cs: cs.as_mut().map(|c| Shared(c.as_mut_ptr())),
    };
    let ctx = Ctx {
        kind,
        reverse,
        lengths: lengths.as_deref(),
        d,
    };
    // Over several steps: transposed copies, [R, G*H] and [H, P] row-major. As GEMM right-hand
    // sides in this layout they need no repacking, which otherwise copies the whole weight on
    // every step. A single step (decoding) reads the weights as they are: one GEMV per row
    // against contiguous weight rows, cheaper than the transpose itself.
    let single = t_len == 1;
    let w_hh_t = (!single).then(|| transpose(&w_hh, gh, r));
    let w_hr_t = w_hr.as_ref().filter(|_| !single).map(|w| transpose(w, p, h));
    let weights = StepWeights {
        w_hh: match &w_hh_t {
            Some(t) => (&t[..], gh, 1),
            None => (&w_hh[..], 1, r),
        },
        w_hr: match (&w_hr_t, &w_hr) {
            (Some(t), _) => Some((&t[..], p, 1)),
            (None, Some(w)) => Some((&w[..], 1, h)),
            (None, None) => None,
        },
        b_hn: &b_hn,
    };
    // Sequences are independent: each shard of the batch runs the whole recurrence on its own
    // rows, with no synchronisation between steps.
    for_shards(n, t_len * gh * r, |rows| {
        // SAFETY: shards own disjoint rows of every buffer.
        unsafe { forward_shard(&ctx, rows, save, &xp, &weights, bufs) }
    });

    let output = SequenceOutput {
        output: tensor(out, [n, t_len, r], device),
        h_n: tensor(hs, [n, r], device),
        c_n: cs.map(|c| tensor(c, [n, h], device)),
    };
    let work = save.then_some(Work {
        kind,
        reverse,
        lengths,
        dims: d,
        has_bias,
        x,
        w_ih,
        w_hh,
        w_hr,
        h_prev,
        acts,
        c_prev,
        hn: hn_all,
    });
    (output, work)
}

pub(crate) fn backward_typed<B: super::Backend, T: Real>(
    w: &Work<T>,
    grads: SequenceOutputGrads<B>,
    device: &B::Device,
) -> SequenceGrads<B> {
    let Dims {
        t: t_len,
        n,
        i,
        h,
        r,
        p,
        ..
    } = w.dims;
    let gh = w.dims.gh();
    let kind = w.kind;
    let d_out: Vec<T> = to_vec(grads.output);
    let mut dh: Vec<T> = to_vec(grads.h_n);
    let mut dc: Option<Vec<T>> = grads.c_n.map(to_vec);
    if kind == CellType::Lstm && dc.is_none() {
        dc = Some(vec![T::ZERO; n * h]);
    }

    // Gradient of the pre-activation gates, w.r.t. xp (and, except GRU's n part, w.r.t. h W_hhᵀ).
    let mut dxp = vec![T::ZERO; n * t_len * gh];
    let mut dgh_gru = vec![T::ZERO; if kind == CellType::Gru { n * t_len * gh } else { 0 }];
    let mut dht_all = vec![T::ZERO; n * t_len * p];
    let mut m_all = vec![T::ZERO; n * t_len * h * usize::from(p > 0)];
    let bufs = BwdBufs {
        dxp: Shared(dxp.as_mut_ptr()),
        dgh: Shared(dgh_gru.as_mut_ptr()),
        dht_all: Shared(dht_all.as_mut_ptr()),
        m_all: Shared(m_all.as_mut_ptr()),
        dh: Shared(dh.as_mut_ptr()),
        dc: dc.as_mut().map(|c| Shared(c.as_mut_ptr())),
    };
    let ctx = Ctx {
        kind,
        reverse: w.reverse,
        lengths: w.lengths.as_deref(),
        d: w.dims,
    };
    for_shards(n, t_len * gh * r, |rows| {
        // SAFETY: shards own disjoint rows of every buffer.
        unsafe { backward_shard(&ctx, rows, w, &d_out, bufs) }
    });

    let rows = t_len * n;
    let dgh_all = if kind == CellType::Gru { &dgh_gru } else { &dxp };
    let mut d_w_hh = vec![T::ZERO; gh * r];
    matmul(
        gh,
        r,
        rows,
        &mut d_w_hh,
        r,
        false,
        (dgh_all, 1, gh),
        (&w.h_prev, r, 1),
        true,
    );
    let mut d_w_ih = vec![T::ZERO; gh * i];
    matmul(
        gh,
        i,
        rows,
        &mut d_w_ih,
        i,
        false,
        (&dxp, 1, gh),
        (&w.x, i, 1),
        true,
    );
    let d_input = grads.need_input.then(|| {
        let mut dx = vec![T::ZERO; rows * i];
        matmul(
            rows,
            i,
            gh,
            &mut dx,
            i,
            false,
            (&dxp, gh, 1),
            (&w.w_ih[..], i, 1),
            true,
        );
        tensor::<B, 3, T>(dx, [n, t_len, i], device)
    });
    let d_w_hr = (p > 0).then(|| {
        let mut dw = vec![T::ZERO; p * h];
        matmul(
            p,
            h,
            rows,
            &mut dw,
            h,
            false,
            (&dht_all, 1, p),
            (&m_all, h, 1),
            true,
        );
        tensor::<B, 2, T>(dw, [p, h], device)
    });
    let column_sums = |m: &[T]| {
        let mut acc = vec![T::ZERO; gh];
        for row in m.chunks_exact(gh) {
            acc.iter_mut().zip(row).for_each(|(a, v)| *a += *v);
        }
        tensor::<B, 1, T>(acc, [gh], device)
    };
    let (d_b_ih, d_b_hh) = if w.has_bias {
        (Some(column_sums(&dxp)), Some(column_sums(dgh_all)))
    } else {
        (None, None)
    };
    SequenceGrads {
        input: d_input,
        weight_ih: tensor(d_w_ih, [gh, i], device),
        bias_ih: d_b_ih,
        weight_hh: tensor(d_w_hh, [gh, r], device),
        bias_hh: d_b_hh,
        weight_hr: d_w_hr,
        h0: tensor(dh, [n, r], device),
        c0: dc.map(|c| tensor(c, [n, h], device)),
    }
}
