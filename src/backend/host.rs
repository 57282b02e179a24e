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

/// What a fused backward pass needs from its forward pass: host buffers for the CPU kernel, device
/// tensors for [`device_sequence_saved`](super::device_sequence_saved).
#[derive(Clone)]
pub struct SavedSequence<B: Backend> {
    device: B::Device,
    inner: Saved<B>,
    /// The forward ran a single sequence as two identical rows (see the wgpu backend); the
    /// backward pads the gradients to match and keeps the first row.
    #[cfg_attr(not(feature = "wgpu"), allow(dead_code))]
    pub(crate) doubled: bool,
}

impl<B: Backend> SavedSequence<B> {
    pub(crate) fn new(device: B::Device, inner: Saved<B>) -> Self {
        Self {
            device,
            inner,
            doubled: false,
        }
    }
}

impl<B: Backend> std::fmt::Debug for SavedSequence<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (kind, buffers) = match &self.inner {
            Saved::F32(s) => (s.kind, "host f32"),
            Saved::F64(s) => (s.kind, "host f64"),
            Saved::Device(s) => (s.kind(), "device"),
        };
        f.debug_struct("SavedSequence")
            .field("kind", &kind)
            .field("buffers", &buffers)
            .finish()
    }
}

pub(crate) enum Saved<B: Backend> {
    F32(Arc<Work<f32>>),
    F64(Arc<Work<f64>>),
    Device(Arc<super::device::DeviceWork<B>>),
}

impl<B: Backend> Clone for Saved<B> {
    fn clone(&self) -> Self {
        match self {
            Self::F32(w) => Self::F32(w.clone()),
            Self::F64(w) => Self::F64(w.clone()),
            Self::Device(w) => Self::Device(w.clone()),
        }
    }
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
pub(crate) struct Work<T> {
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
    parallel: bool,
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
    let parallelism = if parallel && m * n * k >= 1 << 18 {
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

/// Splits the batch into one shard per thread when the recurrence is large enough to pay for it,
/// and runs `f` on each shard's row range.
fn for_shards(rows: usize, work_per_row: usize, f: impl Fn(std::ops::Range<usize>) + Sync + Send) {
    let threads = rayon::current_num_threads().min(rows);
    if threads < 2 || rows * work_per_row < 1 << 20 {
        f(0..rows);
        return;
    }
    let per = rows.div_ceil(threads);
    (0..threads)
        .into_par_iter()
        .for_each(|s| f(s * per..((s + 1) * per).min(rows)));
}

/// A raw pointer that shards of a parallel loop may share (each writes its own rows only).
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

/// What every shard of one layer-direction shares.
struct Ctx<'a> {
    kind: CellKind,
    reverse: bool,
    lengths: Option<&'a [usize]>,
    d: Dims,
}

impl Ctx<'_> {
    fn live(&self, t: usize, b: usize) -> bool {
        self.lengths.is_none_or(|l| t < l[b])
    }

    fn time(&self, s: usize) -> usize {
        if self.reverse { self.d.t - 1 - s } else { s }
    }
}

/// The forward pass's output buffers (batch-major `[N, T, ·]`, or `[N, ·]` for states).
#[derive(Clone, Copy)]
struct FwdBufs<T> {
    out: Shared<T>,
    acts: Shared<T>,
    h_prev: Shared<T>,
    c_prev: Shared<T>,
    hn: Shared<T>,
    hs: Shared<T>,
    cs: Option<Shared<T>>,
}

/// One shard of the forward pass: rows `rows` of the batch over every step.
///
/// # Safety
/// No other thread touches rows `rows` of the buffers in `bufs`, which are sized for `ctx.d`.
#[inline(always)]
unsafe fn forward_shard_body<T: Real>(
    ctx: &Ctx,
    rows: std::ops::Range<usize>,
    save: bool,
    xp: &[T],
    (w_hh_t, w_hr_t, b_hn): (&[T], Option<&[T]>, &[T]),
    bufs: FwdBufs<T>,
) {
    let Dims {
        t: t_len, h, r, p, ..
    } = ctx.d;
    let gh = ctx.d.gh();
    let (b0, nb) = (rows.start, rows.len());
    let hs = unsafe { bufs.hs.slice(b0 * r, nb * r) };
    let mut cs = bufs.cs.map(|c| unsafe { c.slice(b0 * h, nb * h) });
    let mut gates_h = vec![T::ZERO; nb * gh]; // h W_hhᵀ of the current step
    let mut h_new = vec![T::ZERO; nb * h]; // new hidden (before the projection)
    let mut projected = vec![T::ZERO; nb * p];
    let mut scratch_acts = vec![T::ZERO; if save { 0 } else { nb * gh }];
    let mut scratch_lin = vec![T::ZERO; if ctx.kind == CellKind::Gru { h } else { 0 }];
    for s in 0..t_len {
        let t = ctx.time(s);
        matmul(
            nb,
            gh,
            r,
            &mut gates_h,
            gh,
            false,
            (hs, r, 1),
            (w_hh_t, gh, 1),
            false,
        );
        for bi in 0..nb {
            let b = b0 + bi;
            // Row of (sequence b, step t) in the batch-major [N, T, ·] buffers.
            let row = b * t_len + t;
            let live = ctx.live(t, b);
            let hp = &mut hs[bi * r..(bi + 1) * r];
            if save {
                unsafe { bufs.h_prev.slice(row * r, r) }.copy_from_slice(hp);
            }
            let xr = &xp[row * gh..(row + 1) * gh];
            let hr = &gates_h[bi * gh..(bi + 1) * gh];
            let a = if save {
                unsafe { bufs.acts.slice(row * gh, gh) }
            } else {
                &mut scratch_acts[bi * gh..(bi + 1) * gh]
            };
            let hn_row = &mut h_new[bi * h..(bi + 1) * h];
            match ctx.kind {
                CellKind::RnnTanh | CellKind::RnnRelu => {
                    add_into(a, xr, hr);
                    if ctx.kind == CellKind::RnnTanh {
                        a.iter_mut().for_each(|v| *v = v.tanh());
                    } else {
                        a.iter_mut().for_each(|v| *v = v.relu());
                    }
                    hn_row.copy_from_slice(a);
                }
                CellKind::Lstm => {
                    let c = &mut cs.as_mut().expect("LSTM cell")[bi * h..(bi + 1) * h];
                    if save {
                        unsafe { bufs.c_prev.slice(row * h, h) }.copy_from_slice(c);
                    }
                    add_into(a, xr, hr);
                    let (ai, rest) = a.split_at_mut(h);
                    let (af, rest) = rest.split_at_mut(h);
                    let (ag, ao) = rest.split_at_mut(h);
                    ai.iter_mut().for_each(|v| *v = v.sigmoid());
                    af.iter_mut().for_each(|v| *v = v.sigmoid());
                    ag.iter_mut().for_each(|v| *v = v.tanh());
                    ao.iter_mut().for_each(|v| *v = v.sigmoid());
                    let (ai, af, ag, ao, c, hn_row) = (
                        &ai[..h],
                        &af[..h],
                        &ag[..h],
                        &ao[..h],
                        &mut c[..h],
                        &mut hn_row[..h],
                    );
                    for j in 0..h {
                        let c_new = af[j] * c[j] + ai[j] * ag[j];
                        hn_row[j] = ao[j] * c_new.tanh();
                        if live {
                            c[j] = c_new;
                        }
                    }
                }
                CellKind::Gru => {
                    let lin = if save {
                        unsafe { bufs.hn.slice(row * h, h) }
                    } else {
                        &mut scratch_lin[..]
                    };
                    let (ar, rest) = a.split_at_mut(h);
                    let (az, an) = rest.split_at_mut(h);
                    add_into(ar, &xr[..h], &hr[..h]);
                    add_into(az, &xr[h..2 * h], &hr[h..2 * h]);
                    ar.iter_mut().for_each(|v| *v = v.sigmoid());
                    az.iter_mut().for_each(|v| *v = v.sigmoid());
                    add_into(lin, &hr[2 * h..], b_hn);
                    let xn = &xr[2 * h..3 * h];
                    let (ar, az, an, lin, hp, hn_row) = (
                        &ar[..h],
                        &az[..h],
                        &mut an[..h],
                        &lin[..h],
                        &hp[..h],
                        &mut hn_row[..h],
                    );
                    for j in 0..h {
                        an[j] = (xn[j] + ar[j] * lin[j]).tanh();
                        hn_row[j] = an[j] + az[j] * (hp[j] - an[j]);
                    }
                }
            }
        }
        let new_state: &[T] = if let Some(w_hr_t) = w_hr_t {
            matmul(
                nb,
                p,
                h,
                &mut projected,
                p,
                false,
                (&h_new, h, 1),
                (w_hr_t, p, 1),
                false,
            );
            &projected
        } else {
            &h_new
        };
        for bi in 0..nb {
            let b = b0 + bi;
            if ctx.live(t, b) {
                let src = &new_state[bi * r..(bi + 1) * r];
                hs[bi * r..(bi + 1) * r].copy_from_slice(src);
                unsafe { bufs.out.slice((b * t_len + t) * r, r) }.copy_from_slice(src);
            }
        }
    }
}

/// Runs one shard of the forward pass, with the gate arithmetic compiled for AVX2 and FMA when the
/// CPU has them (the crate itself targets baseline x86-64).
///
/// # Safety
/// As [`forward_shard_body`].
unsafe fn forward_shard<T: Real>(
    ctx: &Ctx,
    rows: std::ops::Range<usize>,
    save: bool,
    xp: &[T],
    weights: (&[T], Option<&[T]>, &[T]),
    bufs: FwdBufs<T>,
) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has the features; the caller upholds the rest.
        return unsafe { forward_shard_avx2(ctx, rows, save, xp, weights, bufs) };
    }
    unsafe { forward_shard_body(ctx, rows, save, xp, weights, bufs) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn forward_shard_avx2<T: Real>(
    ctx: &Ctx,
    rows: std::ops::Range<usize>,
    save: bool,
    xp: &[T],
    weights: (&[T], Option<&[T]>, &[T]),
    bufs: FwdBufs<T>,
) {
    unsafe { forward_shard_body(ctx, rows, save, xp, weights, bufs) }
}

/// Runs one shard of the backward pass; see [`forward_shard`].
///
/// # Safety
/// As [`backward_shard_body`].
unsafe fn backward_shard<T: Real>(
    ctx: &Ctx,
    rows: std::ops::Range<usize>,
    w: &Work<T>,
    d_out: &[T],
    bufs: BwdBufs<T>,
) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has the features; the caller upholds the rest.
        return unsafe { backward_shard_avx2(ctx, rows, w, d_out, bufs) };
    }
    unsafe { backward_shard_body(ctx, rows, w, d_out, bufs) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn backward_shard_avx2<T: Real>(
    ctx: &Ctx,
    rows: std::ops::Range<usize>,
    w: &Work<T>,
    d_out: &[T],
    bufs: BwdBufs<T>,
) {
    unsafe { backward_shard_body(ctx, rows, w, d_out, bufs) }
}

/// The transpose of a row-major `[rows, cols]` matrix, row-major `[cols, rows]`, in 16×16 tiles
/// so that both the reads and the writes stay in cache.
fn transpose<T: Real>(m: &[T], rows: usize, cols: usize) -> Vec<T> {
    const TILE: usize = 16;
    let mut out = vec![T::ZERO; rows * cols];
    for i0 in (0..rows).step_by(TILE) {
        for j0 in (0..cols).step_by(TILE) {
            for i in i0..(i0 + TILE).min(rows) {
                for j in j0..(j0 + TILE).min(cols) {
                    out[j * rows + i] = m[i * cols + j];
                }
            }
        }
    }
    out
}

/// `dst = a + b`, elementwise.
#[inline(always)]
fn add_into<T: Real>(dst: &mut [T], a: &[T], b: &[T]) {
    for ((d, x), y) in dst.iter_mut().zip(a).zip(b) {
        *d = *x + *y;
    }
}

/// The backward pass's buffers (batch-major `[N, T, ·]`, or `[N, ·]` for state gradients).
#[derive(Clone, Copy)]
struct BwdBufs<T> {
    dxp: Shared<T>,
    dgh: Shared<T>,
    dht_all: Shared<T>,
    m_all: Shared<T>,
    dh: Shared<T>,
    dc: Option<Shared<T>>,
}

/// One shard of the backward pass: rows `rows` of the batch over every step, in reverse.
///
/// # Safety
/// No other thread touches rows `rows` of the buffers in `bufs`, which are sized for `ctx.d`.
#[inline(always)]
unsafe fn backward_shard_body<T: Real>(
    ctx: &Ctx,
    rows: std::ops::Range<usize>,
    w: &Work<T>,
    d_out: &[T],
    bufs: BwdBufs<T>,
) {
    let Dims {
        t: t_len, h, r, p, ..
    } = ctx.d;
    let gh = ctx.d.gh();
    let kind = ctx.kind;
    let (b0, nb) = (rows.start, rows.len());
    let dh = unsafe { bufs.dh.slice(b0 * r, nb * r) };
    let mut dc = bufs.dc.map(|c| unsafe { c.slice(b0 * h, nb * h) });
    let mut dht = vec![T::ZERO; nb * r]; // gradient w.r.t. the new state of this step
    let mut dm = vec![T::ZERO; nb * h * usize::from(p > 0)];
    // The shard's rows of the per-step gradients, whole, for the per-step GEMM.
    let dg_all = unsafe { bufs.dxp.slice(b0 * t_len * gh, nb * t_len * gh) };
    let mut dgh_all =
        (kind == CellKind::Gru).then(|| unsafe { bufs.dgh.slice(b0 * t_len * gh, nb * t_len * gh) });
    for s in (0..t_len).rev() {
        let t = ctx.time(s);
        for bi in 0..nb {
            let b = b0 + bi;
            let live = ctx.live(t, b);
            let row = b * t_len + t;
            for j in 0..r {
                let o = if live { d_out[row * r + j] } else { T::ZERO };
                dht[bi * r + j] = dh[bi * r + j] + o;
            }
            if p > 0 && live {
                unsafe { bufs.dht_all.slice(row * p, p) }.copy_from_slice(&dht[bi * p..(bi + 1) * p]);
            }
        }
        if let Some(w_hr) = &w.w_hr {
            // h = m W_hrᵀ: dm = dh W_hr.
            matmul(nb, h, p, &mut dm, h, false, (&dht, p, 1), (w_hr, h, 1), false);
        }
        for bi in 0..nb {
            let b = b0 + bi;
            if !ctx.live(t, b) {
                // The state passed through unchanged, and so does its gradient (dh holds it).
                continue;
            }
            let row = b * t_len + t;
            let local = (bi * t_len + t) * gh;
            let a = &w.acts[row * gh..(row + 1) * gh];
            let dg = &mut dg_all[local..local + gh];
            let dh_row = &mut dh[bi * r..(bi + 1) * r];
            let dht_row = &dht[bi * r..(bi + 1) * r];
            match kind {
                CellKind::RnnTanh | CellKind::RnnRelu => {
                    let (a, dg, dht_row) = (&a[..h], &mut dg[..h], &dht_row[..h]);
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
                    let dc_row = &mut dc.as_mut().expect("LSTM cell")[bi * h..(bi + 1) * h];
                    let cp = &w.c_prev[row * h..(row + 1) * h];
                    let dm_row = if p > 0 { &dm[bi * h..(bi + 1) * h] } else { dht_row };
                    let (ai, af, ag, ao) = (&a[..h], &a[h..2 * h], &a[2 * h..3 * h], &a[3 * h..4 * h]);
                    let (dgi, rest) = dg.split_at_mut(h);
                    let (dgf, rest) = rest.split_at_mut(h);
                    let (dgg, dgo) = rest.split_at_mut(h);
                    let (dgi, dgf, dgg, dgo) = (&mut dgi[..h], &mut dgf[..h], &mut dgg[..h], &mut dgo[..h]);
                    let (cp, dm_row, dc_row) = (&cp[..h], &dm_row[..h], &mut dc_row[..h]);
                    for j in 0..h {
                        let (iv, fv, gv, ov) = (ai[j], af[j], ag[j], ao[j]);
                        let tc = (fv * cp[j] + iv * gv).tanh();
                        let dmj = dm_row[j];
                        let dcn = dc_row[j] + dmj * ov * (T::ONE - tc * tc);
                        dgi[j] = dcn * gv * iv * (T::ONE - iv);
                        dgf[j] = dcn * cp[j] * fv * (T::ONE - fv);
                        dgg[j] = dcn * iv * (T::ONE - gv * gv);
                        dgo[j] = dmj * tc * ov * (T::ONE - ov);
                        dc_row[j] = dcn * fv;
                    }
                    if p > 0 {
                        let m_row = unsafe { bufs.m_all.slice(row * h, h) };
                        for j in 0..h {
                            m_row[j] = ao[j] * (af[j] * cp[j] + ai[j] * ag[j]).tanh();
                        }
                    }
                    dh_row.fill(T::ZERO);
                }
                CellKind::Gru => {
                    let dgh = &mut dgh_all.as_mut().expect("GRU")[local..local + gh];
                    let hp = &w.h_prev[row * r..(row + 1) * r];
                    let hl = &w.hn[row * h..(row + 1) * h];
                    let (ar, az, an) = (&a[..h], &a[h..2 * h], &a[2 * h..3 * h]);
                    let (hp, hl, dht_row, dh_row) = (&hp[..h], &hl[..h], &dht_row[..h], &mut dh_row[..h]);
                    for j in 0..h {
                        let (rv, zv, nv) = (ar[j], az[j], an[j]);
                        let d = dht_row[j];
                        let dnp = d * (T::ONE - zv) * (T::ONE - nv * nv);
                        let drp = dnp * hl[j] * rv * (T::ONE - rv);
                        let dzp = d * (hp[j] - nv) * zv * (T::ONE - zv);
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
        }
        // dh_prev += dgates_h W_hh; rows of step t are T apart in the shard's buffers.
        let src: &[T] = match &dgh_all {
            Some(dgh) => &dgh[t * gh..],
            None => &dg_all[t * gh..],
        };
        matmul(
            nb,
            r,
            gh,
            dh,
            r,
            true,
            (src, t_len * gh, 1),
            (&w.w_hh, r, 1),
            false,
        );
    }
}

fn to_vec<B: super::Backend, const D: usize, T: Real>(t: Tensor<B, D>) -> Vec<T> {
    B::host_data(t)
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

    let mut out = vec![T::ZERO; n * t_len * r];
    let mut acts = vec![T::ZERO; if save { n * t_len * gh } else { 0 }];
    let mut h_prev = vec![T::ZERO; if save { n * t_len * r } else { 0 }];
    let mut c_prev = vec![
        T::ZERO;
        if save && kind == CellKind::Lstm {
            n * t_len * h
        } else {
            0
        }
    ];
    let mut hn_all = vec![
        T::ZERO;
        if save && kind == CellKind::Gru {
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
    // Transposed copies, [R, G*H] and [H, P] row-major: as GEMM right-hand sides in this layout
    // they need no repacking, which otherwise copies the whole weight on every step.
    let w_hh_t = transpose(&w_hh, gh, r);
    let w_hr_t = w_hr.as_ref().map(|w| transpose(w, p, h));
    let weights = (&w_hh_t[..], w_hr_t.as_deref(), &b_hn[..]);
    // Sequences are independent: each shard of the batch runs the whole recurrence on its own
    // rows, with no synchronisation between steps.
    for_shards(n, t_len * gh * r, |rows| {
        // SAFETY: shards own disjoint rows of every buffer.
        unsafe { forward_shard(&ctx, rows, save, &xp, weights, bufs) }
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

/// Backpropagation through time for a saved forward pass.
pub(crate) fn backward<B: super::Backend>(
    saved: SavedSequence<B>,
    grads: SequenceOutputGrads<B>,
) -> SequenceGrads<B> {
    match saved.inner {
        Saved::F32(w) => backward_typed::<B, f32>(&w, grads, &saved.device),
        Saved::F64(w) => backward_typed::<B, f64>(&w, grads, &saved.device),
        Saved::Device(w) => super::device::backward(&w, grads),
    }
}

fn backward_typed<B: super::Backend, T: Real>(
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
    let mut dxp = vec![T::ZERO; n * t_len * gh];
    let mut dgh_gru = vec![T::ZERO; if kind == CellKind::Gru { n * t_len * gh } else { 0 }];
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
            (&w.w_ih, i, 1),
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

#[cfg(test)]
mod tests {
    use super::matmul;

    /// The GEMM wrapper against a naive triple loop, in f64, with transposed operands and
    /// accumulation, at sizes where gemm picks different kernels.
    #[test]
    fn matmul_matches_naive_loops() {
        for &(m, n, k) in &[(3, 5, 7), (8, 160, 40), (16, 256, 64), (64, 64, 256)] {
            let a: Vec<f64> = (0..m * k)
                .map(|v| ((v * 7919 % 1000) as f64 / 500.0) - 1.0)
                .collect();
            let b: Vec<f64> = (0..k * n)
                .map(|v| ((v * 104_729 % 1000) as f64 / 500.0) - 1.0)
                .collect();
            // lhs row-major [m, k]; rhs given as its transpose [n, k] (column stride k).
            let mut dst = vec![0.5; m * n];
            matmul(m, n, k, &mut dst, n, true, (&a, k, 1), (&b, 1, k), true);
            for i in 0..m {
                for j in 0..n {
                    let want: f64 = 0.5 + (0..k).map(|l| a[i * k + l] * b[j * k + l]).sum::<f64>();
                    let got = dst[i * n + j];
                    assert!(
                        (got - want).abs() <= 1e-12 * want.abs().max(1.0),
                        "({m},{n},{k})[{i},{j}]: {got} vs {want}"
                    );
                }
            }
        }
    }
}
