//! The CPU AdamW step: one pass over parameter, gradient and moments, in parallel chunks, with
//! burn-optim's operations in burn-optim's order (no fused multiply-adds), so that the result is
//! bitwise burn-optim's.

use burn::tensor::DType;
use rayon::prelude::*;

use super::math::{Real, simd};
use super::{tensor, to_vec};
use crate::backend::adamw::{AdamWArgs, AdamWOutput, AdamWScalars};

/// Elements per parallel task.
const CHUNK: usize = 1 << 14;

/// One AdamW step on the host.
pub fn step<B: crate::Backend>(args: AdamWArgs<B>) -> AdamWOutput<B> {
    if args.param.dtype() == DType::F64 {
        step_typed::<B, f64>(args)
    } else {
        step_typed::<B, f32>(args)
    }
}

/// The step on one chunk, every scalar already in `T`.
#[inline(always)]
fn chunk<T: Real>(s: [T; 8], decay: Option<T>, p: &mut [T], g: &[T], m: &mut [T], v: &mut [T], first: bool) {
    let [b1, b2, f1, f2, c1, c2, eps, lr] = s;
    for (((p, g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let g = *g;
        // m = m β₁ + g (1 - β₁), v = v β₂ + g² (1 - β₂); the first step starts from zero.
        if first {
            *m = g * f1;
            *v = (g * g) * f2;
        } else {
            *m = *m * b1 + g * f1;
            *v = *v * b2 + (g * g) * f2;
        }
        let delta = (*m / c1) / ((*v / c2).sqrt() + eps);
        let decayed = match decay {
            Some(d) => *p * d,
            None => *p,
        };
        *p = decayed - delta * lr;
    }
}

/// The step on host slices, in place: `p`, `m`, `v` updated from `g` (`m`, `v` ignored on input
/// when `first`).
pub(crate) fn step_slices<T: Real>(
    scalars: AdamWScalars,
    p: &mut [T],
    g: &[T],
    m: &mut [T],
    v: &mut [T],
    first: bool,
) {
    let s = scalars.multipliers().map(T::from_f64);
    let decay = scalars.decay.map(T::from_f64);
    p.par_chunks_mut(CHUNK)
        .zip(g.par_chunks(CHUNK))
        .zip(m.par_chunks_mut(CHUNK).zip(v.par_chunks_mut(CHUNK)))
        .for_each(|((p, g), (m, v))| {
            simd(
                #[inline(always)]
                || chunk(s, decay, p, g, m, v, first),
            )
        });
}

fn step_typed<B: crate::Backend, T: Real>(args: AdamWArgs<B>) -> AdamWOutput<B> {
    let device = args.param.device();
    let n = args.param.dims()[0];
    let scalars = args.scalars();
    let first = args.moments.is_none();
    let mut p: Vec<T> = to_vec(args.param);
    let g: Vec<T> = to_vec(args.grad);
    let (mut m, mut v): (Vec<T>, Vec<T>) = match args.moments {
        Some((m, v)) => (to_vec(m), to_vec(v)),
        None => (vec![T::ZERO; n], vec![T::ZERO; n]),
    };
    step_slices(scalars, &mut p, &g, &mut m, &mut v, first);
    AdamWOutput {
        param: tensor(p, [n], &device),
        moment_1: tensor(m, [n], &device),
        moment_2: tensor(v, [n], &device),
    }
}

/// burn-flex's step in place: the parameter and both moments are updated in their own buffers
/// (copied first only when shared), the gradient read where it lies. Tensors that are views
/// (an offset, a stride) take the copying [`step`].
#[cfg(feature = "flex")]
pub(crate) fn flex_in_place(args: AdamWArgs<burn::backend::Flex>) -> AdamWOutput<burn::backend::Flex> {
    use burn::backend::Flex;
    use burn::tensor::{Tensor, TensorPrimitive};
    use burn_flex::FlexTensor;

    let n = args.param.dims()[0];
    let plain = |t: &Tensor<Flex, 1>| {
        let p = t.clone().into_primitive().tensor();
        p.is_contiguous() && p.layout().start_offset() == 0 && p.bytes().len() == n * p.dtype().size()
    };
    let views = !plain(&args.param)
        || !plain(&args.grad)
        || args.moments.as_ref().is_some_and(|(m, v)| !plain(m) || !plain(v))
        || !matches!(args.param.dtype(), DType::F32 | DType::F64);
    if views {
        return step(args);
    }
    let scalars = args.scalars();
    let device = args.param.device();
    let first = args.moments.is_none();
    let primitive = |t: Tensor<Flex, 1>| -> FlexTensor { t.into_primitive().tensor() };
    let (m, v) = args.moments.unwrap_or_else(|| {
        let zeros = Tensor::<Flex, 1>::zeros([n], &device).cast(args.param.dtype());
        (zeros.clone(), zeros.zeros_like())
    });
    let (mut p, g, mut m, mut v) = (
        primitive(args.param),
        primitive(args.grad),
        primitive(m),
        primitive(v),
    );
    // The same call in the tensor's float type.
    macro_rules! run {
        ($t:ty) => {
            step_slices::<$t>(
                scalars,
                p.storage_mut(),
                g.storage(),
                m.storage_mut(),
                v.storage_mut(),
                first,
            )
        };
    }
    if p.dtype() == DType::F64 {
        run!(f64);
    } else {
        run!(f32);
    }
    let tensor = |t: FlexTensor| Tensor::<Flex, 1>::from_primitive(TensorPrimitive::Float(t));
    AdamWOutput {
        param: tensor(p),
        moment_1: tensor(m),
        moment_2: tensor(v),
    }
}
