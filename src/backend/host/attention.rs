//! The CPU attention kernel: FlashAttention-2's algorithm on host buffers.
//!
//! Forward: per (batch, head), query blocks of [`BR`] rows walk the visible keys in blocks of
//! [`BC`]; each tile's scores are one GEMM, the online softmax rescales the running output, and
//! the output tile is one GEMM more. Only the row's log-sum-exp is saved. Backward: per key block,
//! the probabilities of each query block are recomputed from the log-sum-exp, and `dV`, `dP`,
//! `dQ`, `dK` are four GEMMs per tile. Tasks are (batch, key/value head) pairs, so the query
//! heads sharing a key/value head (GQA) accumulate its gradients without a race.

use burn::tensor::{Bool, DType, Tensor, backend::Backend};
use rayon::prelude::*;

use super::math::{Real, Shared, dot_lanes, gemm_raw, simd, sum_lanes};
use super::{tensor, to_vec};
use crate::backend::attention::{AttentionArgs, AttentionDims, AttentionDropout, AttentionGrads};

/// Query rows per tile.
const BR: usize = 64;
/// Keys per tile.
const BC: usize = 128;

/// One call's inputs on the host, in the op's `[B, T, heads, d]` layout.
struct Inputs<T> {
    dims: AttentionDims,
    q: Vec<T>,
    k: Vec<T>,
    v: Vec<T>,
    /// `[B, Tk]`, true where blocked.
    padding: Option<Vec<bool>>,
    /// `[Tq, Tk]`.
    bias: Option<Vec<T>>,
    causal: bool,
    scale: T,
    dropout: Option<AttentionDropout>,
}

impl<T: Real> Inputs<T> {
    fn read<B: crate::Backend>(args: AttentionArgs<B>) -> Self {
        let dims = args.dims();
        Self {
            dims,
            q: to_vec(args.query),
            k: to_vec(args.key),
            v: to_vec(args.value),
            padding: args.key_padding.map(read_bool),
            bias: args.bias.map(to_vec),
            causal: args.causal,
            scale: T::from_f64(args.scale),
            dropout: args.dropout,
        }
    }

    /// `Tk - Tq`: query `i` sees keys up to `i + offset` when causal.
    fn offset(&self) -> isize {
        self.dims.keys as isize - self.dims.queries as isize
    }

    /// Turns a tile row of raw products `q_i · k_j` (keys `j0 ..`) into scaled, masked scores
    /// (`-inf` where blocked), in loops the compiler vectorises.
    #[inline(always)]
    fn scores(&self, b: usize, i: usize, j0: usize, row: &mut [T]) {
        let keys = self.dims.keys;
        // Keys past the causal limit are blocked: only `..visible` is scored.
        let visible = if self.causal {
            (i as isize + self.offset() + 1 - j0 as isize).clamp(0, row.len() as isize) as usize
        } else {
            row.len()
        };
        let (seen, blocked) = row.split_at_mut(visible);
        blocked.fill(T::NEG_INFINITY);
        match &self.bias {
            Some(bias) => {
                let bias = &bias[i * keys + j0..][..visible];
                seen.iter_mut()
                    .zip(bias)
                    .for_each(|(x, b)| *x = *x * self.scale + *b);
            }
            None => seen.iter_mut().for_each(|x| *x *= self.scale),
        }
        if let Some(padding) = &self.padding {
            let padding = &padding[b * keys + j0..][..visible];
            seen.iter_mut().zip(padding).for_each(|(x, &p)| {
                if p {
                    *x = T::NEG_INFINITY;
                }
            });
        }
    }

    /// The dropout factor of probability `(b, h, i, j)`.
    #[inline(always)]
    fn factor(&self, b: usize, h: usize, i: usize, j: usize) -> T {
        let AttentionDims {
            queries, keys, heads, ..
        } = self.dims;
        match &self.dropout {
            Some(d) => {
                let index = (((b * heads + h) * queries + i) * keys + j) as u64;
                T::from_f64(d.factor(index))
            }
            None => T::ONE,
        }
    }

    /// Keys visible to some query in `i0..i1`: `0..end`.
    fn keys_end(&self, i1: usize) -> usize {
        if self.causal {
            (i1 as isize + self.offset()).clamp(0, self.dims.keys as isize) as usize
        } else {
            self.dims.keys
        }
    }

    /// The first query that sees key `j0` (causal), else 0.
    fn queries_start(&self, j0: usize) -> usize {
        if self.causal {
            (j0 as isize - self.offset()).clamp(0, self.dims.queries as isize) as usize
        } else {
            0
        }
    }
}

fn read_bool<B: Backend>(mask: Tensor<B, 2, Bool>) -> Vec<bool> {
    mask.into_data().iter::<bool>().collect()
}

/// One tile's GEMM, single-threaded (the tasks are the parallelism).
///
/// # Safety
/// As [`gemm_raw`].
#[inline(always)]
unsafe fn gemm<T: Real>(
    mnk: (usize, usize, usize),
    dst: (*mut T, usize),
    accumulate: bool,
    lhs: (*const T, usize, usize),
    rhs: (*const T, usize, usize),
) {
    unsafe { gemm_raw(mnk, dst, accumulate, lhs, rhs, gemm::Parallelism::None) }
}

/// Runs `task(b, g)` for every batch row and key/value head, in parallel when the call is large
/// enough to pay for the threads.
fn for_tasks(dims: AttentionDims, task: impl Fn(usize, usize) + Sync + Send) {
    let tasks = dims.batch * dims.kv_heads;
    let work = dims.batch * dims.heads * dims.queries * dims.keys * dims.d;
    if work < 1 << 16 || rayon::current_num_threads() < 2 {
        (0..tasks).for_each(|t| task(t / dims.kv_heads, t % dims.kv_heads));
    } else {
        (0..tasks)
            .into_par_iter()
            .for_each(|t| task(t / dims.kv_heads, t % dims.kv_heads));
    }
}

/// The forward pass; with `save`, also the log-sum-exp `[B, H, Tq]` of every query's scores
/// (`+inf` for a query that sees no key).
pub(crate) fn forward<B: crate::Backend>(
    args: AttentionArgs<B>,
    save: bool,
) -> (Tensor<B, 4>, Option<Tensor<B, 3>>) {
    let device = args.query.device();
    if args.query.dtype() == DType::F64 {
        forward_typed::<B, f64>(Inputs::read(args), save, &device)
    } else {
        forward_typed::<B, f32>(Inputs::read(args), save, &device)
    }
}

fn forward_typed<B: Backend, T: Real>(
    inp: Inputs<T>,
    save: bool,
    device: &B::Device,
) -> (Tensor<B, 4>, Option<Tensor<B, 3>>) {
    let (batch, queries, keys, heads, kv_heads, d) = inp.dims.sizes();
    let mut out = vec![T::ZERO; batch * queries * heads * d];
    let mut lse = vec![T::ZERO; batch * heads * queries];
    let (out_ptr, lse_ptr) = (Shared(out.as_mut_ptr()), Shared(lse.as_mut_ptr()));
    let (row_q, row_k) = (heads * d, kv_heads * d);
    let group = heads / kv_heads;
    for_tasks(inp.dims, |b, g| {
        simd(
            #[inline(always)]
            || {
                let mut s = vec![T::ZERO; BR * BC];
                let mut acc = vec![T::ZERO; BR * d];
                let (mut m, mut l) = (vec![T::ZERO; BR], vec![T::ZERO; BR]);
                let kv_base = b * keys * row_k + g * d;
                for h in g * group..(g + 1) * group {
                    let q_base = b * queries * row_q + h * d;
                    for i0 in (0..queries).step_by(BR) {
                        let br = BR.min(queries - i0);
                        m.fill(T::NEG_INFINITY);
                        l.fill(T::ZERO);
                        acc.fill(T::ZERO);
                        for j0 in (0..inp.keys_end(i0 + br)).step_by(BC) {
                            let bc = BC.min(inp.keys_end(i0 + br) - j0);
                            // SAFETY: tiles inside q and k; s is this task's own.
                            unsafe {
                                gemm(
                                    (br, bc, d),
                                    (s.as_mut_ptr(), BC),
                                    false,
                                    (inp.q[q_base + i0 * row_q..].as_ptr(), row_q, 1),
                                    (inp.k[kv_base + j0 * row_k..].as_ptr(), 1, row_k),
                                );
                            }
                            for r in 0..br {
                                let i = i0 + r;
                                let row = &mut s[r * BC..r * BC + bc];
                                inp.scores(b, i, j0, row);
                                let max = row.iter().fold(m[r], |m, &x| if x > m { x } else { m });
                                if max == T::NEG_INFINITY {
                                    // Nothing visible yet: the row contributes nothing.
                                    row.fill(T::ZERO);
                                    continue;
                                }
                                let correction = (m[r] - max).exp();
                                row.iter_mut().for_each(|x| *x = (*x - max).exp());
                                let sum = sum_lanes(row, |p| p);
                                if inp.dropout.is_some() {
                                    for (c, x) in row.iter_mut().enumerate() {
                                        *x *= inp.factor(b, h, i, j0 + c);
                                    }
                                }
                                l[r] = l[r] * correction + sum;
                                m[r] = max;
                                acc[r * d..(r + 1) * d].iter_mut().for_each(|a| *a *= correction);
                            }
                            // SAFETY: tiles inside s and v; acc is this task's own.
                            unsafe {
                                gemm(
                                    (br, d, bc),
                                    (acc.as_mut_ptr(), d),
                                    true,
                                    (s.as_ptr(), BC, 1),
                                    (inp.v[kv_base + j0 * row_k..].as_ptr(), row_k, 1),
                                );
                            }
                        }
                        for r in 0..br {
                            let i = i0 + r;
                            let seen = l[r] > T::ZERO;
                            let inv = if seen { T::ONE / l[r] } else { T::ZERO };
                            for (c, a) in acc[r * d..(r + 1) * d].iter().enumerate() {
                                // SAFETY: row (b, i, h) belongs to this task alone.
                                unsafe { *out_ptr.ptr().add(q_base + i * row_q + c) = *a * inv };
                            }
                            let value = if seen { m[r] + l[r].ln() } else { -T::NEG_INFINITY };
                            // SAFETY: as above.
                            unsafe { *lse_ptr.ptr().add((b * heads + h) * queries + i) = value };
                        }
                    }
                }
            },
        )
    });
    let output = tensor::<B, 4, T>(out, [batch, queries, heads, d], device);
    (
        output,
        save.then(|| tensor::<B, 3, T>(lse, [batch, heads, queries], device)),
    )
}

/// The backward pass of a saved forward: gradients of the query, key and value from the output's
/// gradient, the output and the log-sum-exp.
pub(crate) fn backward<B: crate::Backend>(
    args: AttentionArgs<B>,
    output: Tensor<B, 4>,
    lse: Tensor<B, 3>,
    grad: Tensor<B, 4>,
) -> AttentionGrads<B> {
    let device = args.query.device();
    if args.query.dtype() == DType::F64 {
        let inp = Inputs::<f64>::read(args);
        backward_typed(inp, to_vec(output), to_vec(lse), to_vec(grad), &device)
    } else {
        let inp = Inputs::<f32>::read(args);
        backward_typed(inp, to_vec(output), to_vec(lse), to_vec(grad), &device)
    }
}

fn backward_typed<B: Backend, T: Real>(
    inp: Inputs<T>,
    out: Vec<T>,
    lse: Vec<T>,
    d_out: Vec<T>,
    device: &B::Device,
) -> AttentionGrads<B> {
    let (batch, queries, keys, heads, kv_heads, d) = inp.dims.sizes();
    let (row_q, row_k) = (heads * d, kv_heads * d);
    let group = heads / kv_heads;
    // D_i = rowsum(dO ∘ O) = Σ_j P_ij dP_ij, per (b, h, i) in [B, H, Tq].
    let mut delta = vec![T::ZERO; batch * heads * queries];
    delta.par_chunks_mut(queries).enumerate().for_each(|(bh, rows)| {
        let (b, h) = (bh / heads, bh % heads);
        for (i, dst) in rows.iter_mut().enumerate() {
            let at = (b * queries + i) * row_q + h * d;
            *dst = dot_lanes(&out[at..at + d], &d_out[at..at + d]);
        }
    });
    let mut dq = vec![T::ZERO; batch * queries * row_q];
    let mut dk = vec![T::ZERO; batch * keys * row_k];
    let mut dv = vec![T::ZERO; batch * keys * row_k];
    let (dq_ptr, dk_ptr, dv_ptr) = (
        Shared(dq.as_mut_ptr()),
        Shared(dk.as_mut_ptr()),
        Shared(dv.as_mut_ptr()),
    );
    for_tasks(inp.dims, |b, g| {
        simd(
            #[inline(always)]
            || {
                // Probabilities, the same after dropout, and dP then dS: three [BR, BC] tiles, on the heap
                // (192 KiB in f64 would crowd a worker thread's stack).
                #[allow(clippy::useless_vec)]
                let mut scratch = vec![T::ZERO; 3 * BR * BC];
                let (p, rest) = scratch.split_at_mut(BR * BC);
                let (pd, ds) = rest.split_at_mut(BR * BC);
                let kv_base = b * keys * row_k + g * d;
                for h in g * group..(g + 1) * group {
                    let q_base = b * queries * row_q + h * d;
                    let row_stats = (b * heads + h) * queries;
                    for j0 in (0..keys).step_by(BC) {
                        let bc = BC.min(keys - j0);
                        let k_tile = inp.k[kv_base + j0 * row_k..].as_ptr();
                        let v_tile = inp.v[kv_base + j0 * row_k..].as_ptr();
                        let first = inp.queries_start(j0) / BR * BR;
                        for i0 in (first..queries).step_by(BR) {
                            let br = BR.min(queries - i0);
                            let q_tile = inp.q[q_base + i0 * row_q..].as_ptr();
                            let do_tile = d_out[q_base + i0 * row_q..].as_ptr();
                            // SAFETY (all GEMMs below): tiles inside their buffers; dq rows (b, ·, h)
                            // and dk, dv rows (b, ·, g) belong to this task alone.
                            unsafe {
                                gemm(
                                    (br, bc, d),
                                    (p.as_mut_ptr(), BC),
                                    false,
                                    (q_tile, row_q, 1),
                                    (k_tile, 1, row_k),
                                );
                                // dP = dO Vᵀ
                                gemm(
                                    (br, bc, d),
                                    (ds.as_mut_ptr(), BC),
                                    false,
                                    (do_tile, row_q, 1),
                                    (v_tile, 1, row_k),
                                );
                            }
                            for r in 0..br {
                                let i = i0 + r;
                                let (stat, delta_i) = (lse[row_stats + i], delta[row_stats + i]);
                                let tile = r * BC..r * BC + bc;
                                let (p, pd, ds) =
                                    (&mut p[tile.clone()], &mut pd[tile.clone()], &mut ds[tile]);
                                inp.scores(b, i, j0, p);
                                p.iter_mut().for_each(|x| *x = (*x - stat).exp());
                                if inp.dropout.is_some() {
                                    for c in 0..bc {
                                        let factor = inp.factor(b, h, i, j0 + c);
                                        pd[c] = p[c] * factor;
                                        ds[c] = p[c] * (ds[c] * factor - delta_i) * inp.scale;
                                    }
                                } else {
                                    pd.copy_from_slice(p);
                                    for (ds, p) in ds.iter_mut().zip(p.iter()) {
                                        *ds = *p * (*ds - delta_i) * inp.scale;
                                    }
                                }
                            }
                            unsafe {
                                // dV += Pdᵀ dO, dQ += dS K, dK += dSᵀ Q
                                let dv_tile = dv_ptr.ptr().add(kv_base + j0 * row_k);
                                gemm(
                                    (bc, d, br),
                                    (dv_tile, row_k),
                                    true,
                                    (pd.as_ptr(), 1, BC),
                                    (do_tile, row_q, 1),
                                );
                                let dq_tile = dq_ptr.ptr().add(q_base + i0 * row_q);
                                gemm(
                                    (br, d, bc),
                                    (dq_tile, row_q),
                                    true,
                                    (ds.as_ptr(), BC, 1),
                                    (k_tile, row_k, 1),
                                );
                                let dk_tile = dk_ptr.ptr().add(kv_base + j0 * row_k);
                                gemm(
                                    (bc, d, br),
                                    (dk_tile, row_k),
                                    true,
                                    (ds.as_ptr(), 1, BC),
                                    (q_tile, row_q, 1),
                                );
                            }
                        }
                    }
                }
            },
        )
    });
    AttentionGrads {
        query: tensor(dq, [batch, queries, heads, d], device),
        key: tensor(dk, [batch, keys, kv_heads, d], device),
        value: tensor(dv, [batch, keys, kv_heads, d], device),
    }
}
