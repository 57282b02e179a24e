//! The host kernel's arithmetic: the float types it runs in (with a fast f32 `exp`), the GEMM
//! wrapper, tiled transposes, and the sharding of a batch over threads.

use gemm::Parallelism;
use rayon::prelude::*;

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
    + std::ops::Div<Output = Self>
    + std::ops::Neg<Output = Self>
    + std::ops::AddAssign
    + std::ops::MulAssign
    + burn::tensor::Element
    + 'static
{
    const ZERO: Self;
    const ONE: Self;
    const NEG_INFINITY: Self;
    fn sigmoid(self) -> Self;
    fn tanh(self) -> Self;
    /// `e^x`, with `e^-inf = 0`.
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn sqrt(self) -> Self;
    fn erf(self) -> Self;
    fn from_f64(x: f64) -> Self;
    fn to_f64(self) -> f64;
    fn relu(self) -> Self {
        if self > Self::ZERO { self } else { Self::ZERO }
    }
}

impl Real for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const NEG_INFINITY: Self = f32::NEG_INFINITY;
    #[inline(always)]
    fn exp(self) -> Self {
        // fast_exp clamps, so e^-inf would be e^-87; masked scores must give exactly 0.
        if self == f32::NEG_INFINITY {
            0.0
        } else {
            fast_exp(self)
        }
    }
    fn ln(self) -> Self {
        f32::ln(self)
    }
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
    /// Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7, f32's resolution near 1),
    /// branch-free so that it vectorises, unlike libm's `erff`.
    #[inline(always)]
    fn erf(self) -> Self {
        let a = self.abs();
        let t = 1.0 / (1.0 + 0.327_591_1 * a);
        let poly = t
            * (0.254_829_6 + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152_1 + t * 1.061_405_4))));
        (1.0 - poly * fast_exp(-a * a)).copysign(self)
    }
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
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
    const NEG_INFINITY: Self = f64::NEG_INFINITY;
    fn exp(self) -> Self {
        f64::exp(self)
    }
    fn ln(self) -> Self {
        f64::ln(self)
    }
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    fn erf(self) -> Self {
        libm::erf(self)
    }
    fn from_f64(x: f64) -> Self {
        x
    }
    fn to_f64(self) -> f64 {
        self
    }
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
pub(super) fn fast_exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23
    let x = x.clamp(-87.0, 88.0);
    let k = x * LOG2E + ROUND;
    let n = k - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    // k's low mantissa bits hold n (k stays in [2^23, 2^24)): 2^n's exponent bits without a
    // float-to-int cast, which would not vectorise.
    let scale = f32::from_bits(k.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127) << 23);
    p * scale
}

/// `dst (m×n, row stride ldd) = [dst +] lhs × rhs`, each operand given by row and column strides.
#[allow(clippy::too_many_arguments)]
pub(super) fn matmul<T: Real>(
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
    let threads = rayon::current_num_threads();
    if parallel && m == 1 && threads > 1 && n * k >= 1 << 18 {
        // A GEMV (a decoding step): the gemm crate runs it on one thread, so split the columns.
        let per = n.div_ceil(threads);
        dst[..n].par_chunks_mut(per).enumerate().for_each(|(c, d)| {
            let n0 = c * per;
            matmul(
                1,
                d.len(),
                k,
                d,
                ldd,
                accumulate,
                lhs,
                (&rhs.0[n0 * rhs.2..], rhs.1, rhs.2),
                false,
            );
        });
        return;
    }
    let parallelism = if parallel && m * n * k >= 1 << 18 {
        Parallelism::Rayon(0)
    } else {
        Parallelism::None
    };
    // SAFETY: the strides describe matrices inside the given slices (checked by the callers'
    // buffer sizes and the assertion above); dst does not alias lhs or rhs.
    unsafe {
        gemm_raw(
            (m, n, k),
            (dst.as_mut_ptr(), ldd),
            accumulate,
            (lhs.0.as_ptr(), lhs.1, lhs.2),
            (rhs.0.as_ptr(), rhs.1, rhs.2),
            parallelism,
        )
    }
}

/// `dst (m×n) [+]= lhs (m×k) × rhs (k×n)` on raw pointers, each operand with its row and column
/// strides (and the destination its row stride): for tiles interleaved with other threads' rows.
///
/// # Safety
/// Every stride describes memory inside its buffer; no other thread writes the destination's
/// elements meanwhile, and the destination does not alias an operand.
#[inline(always)]
pub(super) unsafe fn gemm_raw<T: Real>(
    (m, n, k): (usize, usize, usize),
    dst: (*mut T, usize),
    accumulate: bool,
    lhs: (*const T, usize, usize),
    rhs: (*const T, usize, usize),
    parallelism: Parallelism,
) {
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.0,
            1,
            dst.1 as isize,
            accumulate,
            lhs.0,
            lhs.2 as isize,
            lhs.1 as isize,
            rhs.0,
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

/// `Σ f(x)` over a slice with eight independent partial sums, so that the loop vectorises (a
/// single running sum is a chain the compiler may not reorder).
#[inline(always)]
pub(super) fn sum_lanes<T: Real>(x: &[T], f: impl Fn(T) -> T) -> T {
    let mut acc = [T::ZERO; 8];
    let chunks = x.chunks_exact(8);
    let tail = chunks.remainder().iter().fold(T::ZERO, |a, &v| a + f(v));
    for c in chunks {
        for k in 0..8 {
            acc[k] += f(c[k]);
        }
    }
    acc.iter().fold(tail, |a, &v| a + v)
}

/// `Σ a·b` over two slices of the same length, vectorised as [`sum_lanes`].
#[inline(always)]
pub(super) fn dot_lanes<T: Real>(a: &[T], b: &[T]) -> T {
    let mut acc = [T::ZERO; 8];
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let full = n / 8 * 8;
    for (ca, cb) in a[..full].chunks_exact(8).zip(b[..full].chunks_exact(8)) {
        for k in 0..8 {
            acc[k] += ca[k] * cb[k];
        }
    }
    let tail = a[full..]
        .iter()
        .zip(&b[full..])
        .fold(T::ZERO, |s, (x, y)| s + *x * *y);
    acc.iter().fold(tail, |s, &v| s + v)
}

/// Runs `f` compiled for AVX-512 (512-bit vectors, twice AVX2's) or else AVX2 and FMA when the
/// CPU has them (the crate itself targets baseline x86-64, whose SSE2 loops are a quarter as
/// wide). `f` must be an `#[inline(always)]` closure: only then is it inlined into the function
/// with those features and vectorised with them. Results do not depend on the width: the
/// kernels' reductions keep a fixed number of lanes, and nothing is fused into FMAs implicitly.
#[inline(always)]
pub(super) fn simd<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has the features.
            return unsafe { with_avx512(f) };
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has the features.
            return unsafe { with_avx2_fma(f) };
        }
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn with_avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn with_avx2_fma<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// Splits the batch into one shard per thread when the recurrence is large enough to pay for it,
/// and runs `f` on each shard's row range.
pub(super) fn for_shards(rows: usize, work_per_row: usize, f: impl Fn(std::ops::Range<usize>) + Sync + Send) {
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
pub(super) struct Shared<T>(pub(super) *mut T);
unsafe impl<T> Send for Shared<T> {}
unsafe impl<T> Sync for Shared<T> {}
impl<T> Shared<T> {
    /// The pointer (a method, so that a closure captures the `Sync` wrapper, not the field).
    pub(super) fn ptr(self) -> *mut T {
        self.0
    }

    /// # Safety
    /// `offset..offset+len` is inside the buffer and no other thread touches it meanwhile.
    pub(super) unsafe fn slice<'a>(self, offset: usize, len: usize) -> &'a mut [T] {
        unsafe { std::slice::from_raw_parts_mut(self.0.add(offset), len) }
    }
}

/// The transpose of a row-major `[rows, cols]` matrix, row-major `[cols, rows]`, in 16×16 tiles
/// so that both the reads and the writes stay in cache.
pub(super) fn transpose<T: Real>(m: &[T], rows: usize, cols: usize) -> Vec<T> {
    const TILE: usize = 16;
    let mut out = vec![T::ZERO; rows * cols];
    if rows == 0 || cols == 0 {
        return out;
    }
    // Bands of TILE output rows (input columns), in parallel for a large weight (a 2048 × 512
    // LSTM weight is 4 MiB, and its transpose is redone on every call).
    let band = |(b, dst): (usize, &mut [T])| {
        let j0 = b * TILE;
        let width = dst.len() / rows;
        for i0 in (0..rows).step_by(TILE) {
            for i in i0..(i0 + TILE).min(rows) {
                let src = &m[i * cols + j0..i * cols + j0 + width];
                for (jj, v) in src.iter().enumerate() {
                    dst[jj * rows + i] = *v;
                }
            }
        }
    };
    if rows * cols >= 1 << 18 {
        out.par_chunks_mut(TILE * rows).enumerate().for_each(band);
    } else {
        out.chunks_mut(TILE * rows).enumerate().for_each(band);
    }
    out
}

/// `dst = a + b`, elementwise.
#[inline(always)]
pub(super) fn add_into<T: Real>(dst: &mut [T], a: &[T], b: &[T]) {
    for ((d, x), y) in dst.iter_mut().zip(a).zip(b) {
        *d = *x + *y;
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
