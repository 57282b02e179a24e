//! The fused CPU recurrence: one layer-direction over a whole sequence on host buffers, forward and
//! backward (backpropagation through time), for the CPU backends.
//!
//! Forward: the input projection for all steps is one GEMM; each step is one GEMM `h W_hhᵀ` and
//! one pass of gate arithmetic over the batch (in parallel over rows when the batch is large),
//! writing into buffers allocated once. Backward walks the steps in reverse with one GEMM per step
//! (`dgates W_hh`), then computes every weight gradient with one GEMM over all steps.

use std::sync::Arc;

use burn::tensor::{DType, Tensor, TensorData, backend::Backend};
use gemm::Parallelism;
use rayon::prelude::*;

use super::{CellKind, SequenceArgs, SequenceGrads, SequenceOutput, SequenceOutputGrads};

/// What the fused backward pass needs from a forward pass, kept on the host.
#[derive(Clone)]
pub struct SavedSequence<B: Backend> {
    device: B::Device,
    inner: Saved,
}

impl<B: Backend> std::fmt::Debug for SavedSequence<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (kind, dims) = match &self.inner {
            Saved::F32(s) => (s.kind, s.dims),
            Saved::F64(s) => (s.kind, s.dims),
        };
        f.debug_struct("SavedSequence")
            .field("kind", &kind)
            .field("dims", &dims)
            .finish()
    }
}

#[derive(Clone)]
enum Saved {
    F32(Arc<Work<f32>>),
    F64(Arc<Work<f64>>),
}

/// Sizes: time, batch, input, hidden, state (hidden or projection), projection (0 = none), gates.
#[derive(Clone, Copy, Debug)]
struct Dims {
    t: usize,
    n: usize,
    i: usize,
    h: usize,
    r: usize,
    p: usize,
    g: usize,
}

impl Dims {
    fn gh(&self) -> usize {
        self.g * self.h
    }
}

/// Inputs (host copies) and the per-step values the backward pass reads.
struct Work<T> {
    kind: CellKind,
    reverse: bool,
    lengths: Option<Vec<usize>>,
    dims: Dims,
    has_bias: bool,
    x: Vec<T>,
    w_ih: Vec<T>,
    w_hh: Vec<T>,
    w_hr: Option<Vec<T>>,
    /// State before each step: `[N, T, R]` (batch-major, like every per-step buffer here).
    h_prev: Vec<T>,
    /// Activated gates: `[N, T, G*H]` (LSTM i f g o, GRU r z n, RNN h').
    acts: Vec<T>,
    /// LSTM cell before each step: `[N, T, H]`.
    c_prev: Vec<T>,
    /// GRU `W_hn h + b_hn` at each step: `[N, T, H]`.
    hn: Vec<T>,
}

/// The float types the kernel runs in. f32 uses branch-free approximations of `exp` that the
/// compiler vectorises (absolute error about 1e-7); f64 uses the standard library, so that
/// finite-difference checks on f64 stay exact.
pub(crate) trait Real:
    Copy
    + Send
    + Sync
    + Default
    + PartialOrd
    + std::fmt::Debug
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::AddAssign
    + burn::tensor::Element
    + 'static
{
    const ZERO: Self;
    const ONE: Self;
    fn sigmoid(self) -> Self;
    fn tanh(self) -> Self;
    fn relu(self) -> Self {
        if self > Self::ZERO { self } else { Self::ZERO }
    }
}

impl Real for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    #[inline(always)]
    fn sigmoid(self) -> Self {
        1.0 / (1.0 + fast_exp(-self))
    }
    #[inline(always)]
    fn tanh(self) -> Self {
        2.0 / (1.0 + fast_exp(-2.0 * self)) - 1.0
    }
}

impl Real for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    fn sigmoid(self) -> Self {
        1.0 / (1.0 + (-self).exp())
    }
    fn tanh(self) -> Self {
        f64::tanh(self)
    }
}

/// `e^x` in f32 without branches: `x = n ln2 + r` with `|r| <= ln2 / 2` (rounding by the
/// 1.5·2²³ trick), a degree-6 Taylor polynomial for `e^r` (error < 2e-7), and `2^n` built in the
/// exponent bits. Inputs are clamped to the finite range.
#[inline(always)]
fn fast_exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23
    let x = x.clamp(-87.0, 88.0);
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    let scale = f32::from_bits(((n as i32 + 127) << 23) as u32);
    p * scale
}

/// `dst (m×n, row stride ldd) = [dst +] lhs × rhs`, each operand given by row and column strides.
#[allow(clippy::too_many_arguments)]
fn matmul<T: Real>(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [T],
    ldd: usize,
    accumulate: bool,
    lhs: (&[T], usize, usize),
    rhs: (&[T], usize, usize),
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for row in dst.chunks_mut(ldd).take(m) {
                row[..n].fill(T::ZERO);
            }
        }
        return;
    }
    assert!(dst.len() >= (m - 1) * ldd + n, "gemm destination too small");
    let parallelism = if m * n * k >= 1 << 18 {
        Parallelism::Rayon(0)
    } else {
        Parallelism::None
    };
    // SAFETY: the strides describe matrices inside the given slices (checked by the callers'
    // buffer sizes and the assertion above); dst does not alias lhs or rhs.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            ldd as isize,
            accumulate,
            lhs.0.as_ptr(),
            lhs.2 as isize,
            lhs.1 as isize,
            rhs.0.as_ptr(),
            rhs.2 as isize,
            rhs.1 as isize,
            T::ONE,
            T::ONE,
            false,
            false,
            false,
            parallelism,
        )
    }
}

/// Runs `f(row)` for every batch row, in parallel when the per-step work is large enough to pay
/// for it. Rows touch disjoint parts of the buffers.
fn for_rows(rows: usize, work_per_row: usize, f: impl Fn(usize) + Sync + Send) {
    if rows * work_per_row >= 1 << 14 && rows > 1 {
        (0..rows).into_par_iter().for_each(f);
    } else {
        (0..rows).for_each(f);
    }
}

/// A raw pointer that rows of a parallel loop may share (each writes its own rows only).
#[derive(Clone, Copy)]
struct Shared<T>(*mut T);
unsafe impl<T> Send for Shared<T> {}
unsafe impl<T> Sync for Shared<T> {}
impl<T> Shared<T> {
    /// # Safety
    /// `offset..offset+len` is inside the buffer and no other thread touches it meanwhile.
    unsafe fn slice<'a>(self, offset: usize, len: usize) -> &'a mut [T] {
        unsafe { std::slice::from_raw_parts_mut(self.0.add(offset), len) }
    }
}

fn active(lengths: &Option<Vec<usize>>, t: usize, b: usize) -> bool {
    lengths.as_ref().is_none_or(|l| t < l[b])
}

fn to_vec<B: Backend, const D: usize, T: Real>(t: Tensor<B, D>) -> Vec<T> {
    t.into_data()
        .convert::<T>()
        .into_vec::<T>()
        .expect("converted to the kernel's float type")
}

fn tensor<B: Backend, const D: usize, T: Real>(
    v: Vec<T>,
    shape: [usize; D],
    device: &B::Device,
) -> Tensor<B, D> {
    Tensor::from_data(TensorData::new(v, shape), device)
}

/// The fused forward pass; with `save`, also what [`backward`] needs.
pub(crate) fn forward<B: Backend>(
    args: SequenceArgs<B>,
    save: bool,
) -> (SequenceOutput<B>, Option<SavedSequence<B>>) {
    let device = args.input.device();
    if args.input.dtype() == DType::F64 {
        let (out, work) = forward_typed::<B, f64>(args, save, &device);
        (
            out,
            work.map(|w| SavedSequence {
                device,
                inner: Saved::F64(Arc::new(w)),
            }),
        )
    } else {
        let (out, work) = forward_typed::<B, f32>(args, save, &device);
        (
            out,
            work.map(|w| SavedSequence {
                device,
                inner: Saved::F32(Arc::new(w)),
            }),
        )
    }
}

fn forward_typed<B: Backend, T: Real>(
    args: SequenceArgs<B>,
    save: bool,
    device: &B::Device,
) -> (SequenceOutput<B>, Option<Work<T>>) {
    let SequenceArgs {
        kind,
        input,
        weight_ih,
        bias_ih,
        weight_hh,
        bias_hh,
        weight_hr,
        h0,
        c0,
        lengths,
        reverse,
    } = args;
    let [n, t_len, i] = input.dims();
    let g = kind.gates();
    let h = weight_hh.dims()[0] / g;
    let r = weight_hh.dims()[1];
    let p = weight_hr.as_ref().map_or(0, |w| w.dims()[0]);
    let d = Dims {
        t: t_len,
        n,
        i,
        h,
        r,
        p,
        g,
    };
    let gh = d.gh();
    let has_bias = bias_ih.is_some();
    let lengths = lengths.filter(|l| l.iter().any(|&l| l < t_len));

    let x: Vec<T> = to_vec(input);
    let w_ih: Vec<T> = to_vec(weight_ih);
    let w_hh: Vec<T> = to_vec(weight_hh);
    let w_hr: Option<Vec<T>> = weight_hr.map(to_vec);
    let b_ih: Option<Vec<T>> = bias_ih.map(to_vec);
    let b_hh: Option<Vec<T>> = bias_hh.map(to_vec);
    let mut hs: Vec<T> = to_vec(h0);
    let mut cs: Option<Vec<T>> = c0.map(to_vec);

    // xp = x W_ihᵀ + b_ih (+ b_hh, except GRU's n part, which sits inside r ⊙ (W_hn h + b_hn)).
    let mut xp = vec![T::ZERO; t_len * n * gh];
    matmul(t_len * n, gh, i, &mut xp, gh, false, (&x, i, 1), (&w_ih, 1, i));
    let mut bias = vec![T::ZERO; gh];
    let mut b_hn = vec![T::ZERO; h];
    if let (Some(bi), Some(bh)) = (&b_ih, &b_hh) {
        for j in 0..gh {
            bias[j] = bi[j]
                + if kind == CellKind::Gru && j >= 2 * h {
                    T::ZERO
                } else {
                    bh[j]
                };
        }
        if kind == CellKind::Gru {
            b_hn.copy_from_slice(&bh[2 * h..]);
        }
        xp.par_chunks_mut(gh)
            .for_each(|row| row.iter_mut().zip(&bias).for_each(|(v, b)| *v += *b));
    }

    let mut out = vec![T::ZERO; t_len * n * r];
    let mut acts = vec![T::ZERO; if save { t_len * n * gh } else { n * gh }];
    let mut h_prev = if save {
        vec![T::ZERO; t_len * n * r]
    } else {
        Vec::new()
    };
    let mut c_prev = if save && kind == CellKind::Lstm {
        vec![T::ZERO; t_len * n * h]
    } else {
        Vec::new()
    };
    let mut hn_all = if save && kind == CellKind::Gru {
        vec![T::ZERO; t_len * n * h]
    } else {
        Vec::new()
    };
    let mut gates_h = vec![T::ZERO; n * gh]; // h W_hhᵀ of the current step
    let mut h_new = vec![T::ZERO; n * h]; // new hidden (before the projection)
    let mut projected = vec![T::ZERO; if p > 0 { n * p } else { 0 }];

    for s in 0..t_len {
        let t = if reverse { t_len - 1 - s } else { s };
        if save {
            for b in 0..n {
                let row = b * t_len + t;
                h_prev[row * r..(row + 1) * r].copy_from_slice(&hs[b * r..(b + 1) * r]);
            }
        }
        matmul(n, gh, r, &mut gates_h, gh, false, (&hs, r, 1), (&w_hh, 1, r));
        let xp = &xp;
        let (acts_p, hnew_p, hs_p) = (
            Shared(acts.as_mut_ptr()),
            Shared(h_new.as_mut_ptr()),
            Shared(hs.as_mut_ptr()),
        );
        let cs_p = cs.as_mut().map(|c| Shared(c.as_mut_ptr()));
        let cprev_p = Shared(c_prev.as_mut_ptr());
        let hn_p = Shared(hn_all.as_mut_ptr());
        let gates_h = &gates_h;
        let b_hn = &b_hn;
        let lengths = &lengths;
        for_rows(n, gh, |b| {
            let live = active(lengths, t, b);
            // Row of (sequence b, step t) in the batch-major [N, T, ·] buffers.
            let row = b * t_len + t;
            let xr = &xp[row * gh..(row + 1) * gh];
            let hr = &gates_h[b * gh..(b + 1) * gh];
            // SAFETY: row b of each buffer is touched by this iteration only.
            let a = unsafe { acts_p.slice(if save { row * gh } else { b * gh }, gh) };
            let hn_row = unsafe { hnew_p.slice(b * h, h) };
            match kind {
                CellKind::RnnTanh | CellKind::RnnRelu => {
                    for j in 0..h {
                        let v = xr[j] + hr[j];
                        a[j] = if kind == CellKind::RnnTanh {
                            v.tanh()
                        } else {
                            v.relu()
                        };
                    }
                    hn_row.copy_from_slice(&a[..h]);
                }
                CellKind::Lstm => {
                    let c = unsafe { cs_p.expect("LSTM cell").slice(b * h, h) };
                    if save {
                        unsafe { cprev_p.slice(row * h, h) }.copy_from_slice(c);
                    }
                    let (ai, rest) = a.split_at_mut(h);
                    let (af, rest) = rest.split_at_mut(h);
                    let (ag, ao) = rest.split_at_mut(h);
                    for j in 0..h {
                        ai[j] = (xr[j] + hr[j]).sigmoid();
                        af[j] = (xr[h + j] + hr[h + j]).sigmoid();
                        ag[j] = (xr[2 * h + j] + hr[2 * h + j]).tanh();
                        ao[j] = (xr[3 * h + j] + hr[3 * h + j]).sigmoid();
                        let c_new = af[j] * c[j] + ai[j] * ag[j];
                        hn_row[j] = ao[j] * c_new.tanh();
                        if live {
                            c[j] = c_new;
                        }
                    }
                }
                CellKind::Gru => {
                    let hp = unsafe { hs_p.slice(b * r, r) };
                    let (ar, rest) = a.split_at_mut(h);
                    let (az, an) = rest.split_at_mut(h);
                    let mut saved_lin = save.then(|| unsafe { hn_p.slice(row * h, h) });
                    for j in 0..h {
                        ar[j] = (xr[j] + hr[j]).sigmoid();
                        az[j] = (xr[h + j] + hr[h + j]).sigmoid();
                        let lin = hr[2 * h + j] + b_hn[j];
                        an[j] = (xr[2 * h + j] + ar[j] * lin).tanh();
                        hn_row[j] = an[j] + az[j] * (hp[j] - an[j]);
                        if let Some(saved) = saved_lin.as_mut() {
                            saved[j] = lin;
                        }
                    }
                }
            }
        });
        let new_state: &[T] = if let Some(w_hr) = &w_hr {
            matmul(n, p, h, &mut projected, p, false, (&h_new, h, 1), (w_hr, 1, h));
            &projected
        } else {
            &h_new
        };
        for b in 0..n {
            if active(&lengths, t, b) {
                let row = &new_state[b * r..(b + 1) * r];
                hs[b * r..(b + 1) * r].copy_from_slice(row);
                let at = b * t_len + t;
                out[at * r..(at + 1) * r].copy_from_slice(row);
            }
        }
    }

    let output = SequenceOutput {
        output: tensor(out, [n, t_len, r], device),
        h_n: tensor(hs, [n, r], device),
        c_n: cs.map(|c| tensor(c, [n, h], device)),
    };
    let work = save.then(|| Work {
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

/// Backpropagation through time for a saved forward pass.
pub(crate) fn backward<B: Backend>(
    saved: SavedSequence<B>,
    grads: SequenceOutputGrads<B>,
) -> SequenceGrads<B> {
    match saved.inner {
        Saved::F32(w) => backward_typed::<B, f32>(&w, grads, &saved.device),
        Saved::F64(w) => backward_typed::<B, f64>(&w, grads, &saved.device),
    }
}

fn backward_typed<B: Backend, T: Real>(
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
    if kind == CellKind::Lstm && dc.is_none() {
        dc = Some(vec![T::ZERO; n * h]);
    }

    // Gradient of the pre-activation gates, w.r.t. xp (and, except GRU's n part, w.r.t. h W_hhᵀ).
    let mut dxp = vec![T::ZERO; t_len * n * gh];
    let mut dgh_gru = if kind == CellKind::Gru {
        vec![T::ZERO; t_len * n * gh]
    } else {
        Vec::new()
    };
    let mut dht = vec![T::ZERO; n * r]; // gradient w.r.t. the new state of this step
    let mut dm = vec![T::ZERO; if p > 0 { n * h } else { 0 }];
    let mut dht_all = vec![T::ZERO; if p > 0 { t_len * n * p } else { 0 }];
    let mut m_all = vec![T::ZERO; if p > 0 { t_len * n * h } else { 0 }];

    for s in (0..t_len).rev() {
        let t = if w.reverse { t_len - 1 - s } else { s };
        for b in 0..n {
            let live = active(&w.lengths, t, b);
            for j in 0..r {
                let o = if live { d_out[(b * t_len + t) * r + j] } else { T::ZERO };
                dht[b * r + j] = dh[b * r + j] + o;
            }
        }
        if let Some(w_hr) = &w.w_hr {
            // h = m W_hrᵀ: dm = dh W_hr; rows that did not step get no gradient.
            for b in 0..n {
                let live = active(&w.lengths, t, b);
                let at = b * t_len + t;
                let dst = &mut dht_all[at * p..(at + 1) * p];
                if live {
                    dst.copy_from_slice(&dht[b * p..(b + 1) * p]);
                }
            }
            // Rows of step t are T apart in the batch-major buffer.
            matmul(n, h, p, &mut dm, h, false, (&dht_all[t * p..], t_len * p, 1), (w_hr, h, 1));
        }
        let dgates_p = Shared(dxp.as_mut_ptr());
        let dgh_p = Shared(dgh_gru.as_mut_ptr());
        let dh_p = Shared(dh.as_mut_ptr());
        let dc_p = dc.as_mut().map(|c| Shared(c.as_mut_ptr()));
        let m_p = Shared(m_all.as_mut_ptr());
        let (dht, dm) = (&dht, &dm);
        for_rows(n, gh, |b| {
            let live = active(&w.lengths, t, b);
            // SAFETY: row b of each buffer is touched by this iteration only.
            let dh_row = unsafe { dh_p.slice(b * r, r) };
            if !live {
                // The state passed through unchanged: its gradient too (dh_row already holds it).
                return;
            }
            let row = b * t_len + t;
            let a = &w.acts[row * gh..(row + 1) * gh];
            let dg = unsafe { dgates_p.slice(row * gh, gh) };
            let dht_row = &dht[b * r..(b + 1) * r];
            match kind {
                CellKind::RnnTanh | CellKind::RnnRelu => {
                    for j in 0..h {
                        let y = a[j];
                        let deriv = if kind == CellKind::RnnTanh {
                            T::ONE - y * y
                        } else if y > T::ZERO {
                            T::ONE
                        } else {
                            T::ZERO
                        };
                        dg[j] = dht_row[j] * deriv;
                    }
                    dh_row.fill(T::ZERO);
                }
                CellKind::Lstm => {
                    let dc_row = unsafe { dc_p.expect("LSTM cell").slice(b * h, h) };
                    let cp = &w.c_prev[row * h..(row + 1) * h];
                    let m_row = if p > 0 {
                        Some(unsafe { m_p.slice(row * h, h) })
                    } else {
                        None
                    };
                    let dm_row = if p > 0 { &dm[b * h..(b + 1) * h] } else { dht_row };
                    let (ai, rest) = a.split_at(h);
                    let (af, rest) = rest.split_at(h);
                    let (ag, ao) = rest.split_at(h);
                    for j in 0..h {
                        let (iv, fv, gv, ov) = (ai[j], af[j], ag[j], ao[j]);
                        let c_new = fv * cp[j] + iv * gv;
                        let tc = c_new.tanh();
                        let dmj = dm_row[j];
                        let dcn = dc_row[j] + dmj * ov * (T::ONE - tc * tc);
                        dg[j] = dcn * gv * iv * (T::ONE - iv);
                        dg[h + j] = dcn * cp[j] * fv * (T::ONE - fv);
                        dg[2 * h + j] = dcn * iv * (T::ONE - gv * gv);
                        dg[3 * h + j] = dmj * tc * ov * (T::ONE - ov);
                        dc_row[j] = dcn * fv;
                    }
                    if let Some(m_row) = m_row {
                        for j in 0..h {
                            let c_new = af[j] * cp[j] + ai[j] * ag[j];
                            m_row[j] = ao[j] * c_new.tanh();
                        }
                    }
                    dh_row.fill(T::ZERO);
                }
                CellKind::Gru => {
                    let dgh = unsafe { dgh_p.slice(row * gh, gh) };
                    let hp = &w.h_prev[row * r..(row + 1) * r];
                    let hl = &w.hn[row * h..(row + 1) * h];
                    let (ar, rest) = a.split_at(h);
                    let (az, an) = rest.split_at(h);
                    for j in 0..h {
                        let (rv, zv, nv) = (ar[j], az[j], an[j]);
                        let d = dht_row[j];
                        let dn = d * (T::ONE - zv);
                        let dz = d * (hp[j] - nv);
                        let dnp = dn * (T::ONE - nv * nv);
                        let dr = dnp * hl[j];
                        let drp = dr * rv * (T::ONE - rv);
                        let dzp = dz * zv * (T::ONE - zv);
                        dg[j] = drp;
                        dg[h + j] = dzp;
                        dg[2 * h + j] = dnp;
                        dgh[j] = drp;
                        dgh[h + j] = dzp;
                        dgh[2 * h + j] = dnp * rv;
                        dh_row[j] = d * zv;
                    }
                }
            }
        });
        // dh_prev += dgates_h W_hh
        // Rows of step t are T apart in the batch-major buffers.
        let dgh_t = if kind == CellKind::Gru { &dgh_gru[t * gh..] } else { &dxp[t * gh..] };
        matmul(n, r, gh, &mut dh, r, true, (dgh_t, t_len * gh, 1), (&w.w_hh, r, 1));
    }

    let rows = t_len * n;
    let dgh_all = if kind == CellKind::Gru { &dgh_gru } else { &dxp };
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
    );
    let mut d_w_ih = vec![T::ZERO; gh * i];
    matmul(gh, i, rows, &mut d_w_ih, i, false, (&dxp, 1, gh), (&w.x, i, 1));
    let d_input = grads.need_input.then(|| {
        let mut dx = vec![T::ZERO; rows * i];
        matmul(rows, i, gh, &mut dx, i, false, (&dxp, gh, 1), (&w.w_ih, i, 1));
        tensor::<B, 3, T>(dx, [n, t_len, i], device)
    });
    let d_w_hr = (p > 0).then(|| {
        let mut dw = vec![T::ZERO; p * h];
        matmul(p, h, rows, &mut dw, h, false, (&dht_all, 1, p), (&m_all, h, 1));
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
