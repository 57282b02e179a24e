//! One shard of a layer-direction: the forward step loop and the backward step loop over a range
//! of batch rows, with the AVX2/FMA versions chosen at run time.

use super::math::{Real, Shared, add_into, matmul, simd};
use super::{Dims, Work};
use crate::backend::CellType;

/// What every shard of one layer-direction shares.
pub(super) struct Ctx<'a> {
    pub(super) kind: CellType,
    pub(super) reverse: bool,
    pub(super) lengths: Option<&'a [usize]>,
    pub(super) d: Dims,
}

impl Ctx<'_> {
    pub(super) fn live(&self, t: usize, b: usize) -> bool {
        self.lengths.is_none_or(|l| t < l[b])
    }

    pub(super) fn time(&self, s: usize) -> usize {
        if self.reverse { self.d.t - 1 - s } else { s }
    }
}

/// The forward pass's output buffers (batch-major `[N, T, ·]`, or `[N, ·]` for states).
#[derive(Clone, Copy)]
pub(super) struct FwdBufs<T> {
    pub(super) out: Shared<T>,
    pub(super) acts: Shared<T>,
    pub(super) h_prev: Shared<T>,
    pub(super) c_prev: Shared<T>,
    pub(super) hn: Shared<T>,
    pub(super) hs: Shared<T>,
    pub(super) cs: Option<Shared<T>>,
}

/// The recurrent weights a forward step multiplies by, each as (values, row stride, column
/// stride) of the GEMM's right-hand side: `W_hhᵀ` `[R, G*H]`, `W_hrᵀ` `[H, P]`; and GRU's `b_hn`.
pub(super) struct StepWeights<'a, T> {
    pub(super) w_hh: (&'a [T], usize, usize),
    pub(super) w_hr: Option<(&'a [T], usize, usize)>,
    pub(super) b_hn: &'a [T],
}

/// One shard of the forward pass: rows `rows` of the batch over every step.
///
/// # Safety
/// No other thread touches rows `rows` of the buffers in `bufs`, which are sized for `ctx.d`.
#[inline(always)]
pub(super) unsafe fn forward_shard_body<T: Real>(
    ctx: &Ctx,
    rows: std::ops::Range<usize>,
    save: bool,
    xp: &[T],
    weights: &StepWeights<T>,
    bufs: FwdBufs<T>,
) {
    let b_hn = weights.b_hn;
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
    let mut scratch_lin = vec![T::ZERO; if ctx.kind == CellType::Gru { h } else { 0 }];
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
            weights.w_hh,
            nb == 1,
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
                CellType::RnnTanh | CellType::RnnRelu => {
                    add_into(a, xr, hr);
                    if ctx.kind == CellType::RnnTanh {
                        a.iter_mut().for_each(|v| *v = v.tanh());
                    } else {
                        a.iter_mut().for_each(|v| *v = v.relu());
                    }
                    hn_row.copy_from_slice(a);
                }
                CellType::Lstm => {
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
                CellType::Gru => {
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
        let new_state: &[T] = if let Some(w_hr) = weights.w_hr {
            matmul(nb, p, h, &mut projected, p, false, (&h_new, h, 1), w_hr, nb == 1);
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

/// Runs one shard of the forward pass, with the gate arithmetic compiled for the widest vectors
/// the CPU has ([`simd`]).
///
/// # Safety
/// As [`forward_shard_body`].
pub(super) unsafe fn forward_shard<T: Real>(
    ctx: &Ctx,
    rows: std::ops::Range<usize>,
    save: bool,
    xp: &[T],
    weights: &StepWeights<T>,
    bufs: FwdBufs<T>,
) {
    // SAFETY: the caller upholds forward_shard_body's contract.
    simd(
        #[inline(always)]
        || unsafe { forward_shard_body(ctx, rows, save, xp, weights, bufs) },
    )
}

/// Runs one shard of the backward pass; see [`forward_shard`].
///
/// # Safety
/// As [`backward_shard_body`].
pub(super) unsafe fn backward_shard<T: Real>(
    ctx: &Ctx,
    rows: std::ops::Range<usize>,
    w: &Work<T>,
    d_out: &[T],
    bufs: BwdBufs<T>,
) {
    // SAFETY: the caller upholds backward_shard_body's contract.
    simd(
        #[inline(always)]
        || unsafe { backward_shard_body(ctx, rows, w, d_out, bufs) },
    )
}

/// The backward pass's buffers (batch-major `[N, T, ·]`, or `[N, ·]` for state gradients).
#[derive(Clone, Copy)]
pub(super) struct BwdBufs<T> {
    pub(super) dxp: Shared<T>,
    pub(super) dgh: Shared<T>,
    pub(super) dht_all: Shared<T>,
    pub(super) m_all: Shared<T>,
    pub(super) dh: Shared<T>,
    pub(super) dc: Option<Shared<T>>,
}

/// One shard of the backward pass: rows `rows` of the batch over every step, in reverse.
///
/// # Safety
/// No other thread touches rows `rows` of the buffers in `bufs`, which are sized for `ctx.d`.
#[inline(always)]
pub(super) unsafe fn backward_shard_body<T: Real>(
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
        (kind == CellType::Gru).then(|| unsafe { bufs.dgh.slice(b0 * t_len * gh, nb * t_len * gh) });
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
                CellType::RnnTanh | CellType::RnnRelu => {
                    let (a, dg, dht_row) = (&a[..h], &mut dg[..h], &dht_row[..h]);
                    for j in 0..h {
                        let y = a[j];
                        let deriv = if kind == CellType::RnnTanh {
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
                CellType::Lstm => {
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
                CellType::Gru => {
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
