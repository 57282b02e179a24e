//! The fallback: attention composed of burn tensor ops, which any backend runs and autodiff
//! differentiates. Without dropout it is burn's `attention` op (flash attention on wgpu); with
//! dropout, the explicit softmax times the seeded mask.

use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, Distribution, Tensor, backend::Backend};

use super::{AttentionArgs, AttentionDims};

/// `[B, T, n, d] -> [B, n, T, d]`, then each key/value head repeated for its `H / Hkv` query heads.
pub(crate) fn heads_first<B: Backend>(t: Tensor<B, 4>, heads: usize) -> Tensor<B, 4> {
    let [batch, len, n, d] = t.dims();
    let t = t.swap_dims(1, 2);
    if n == heads {
        return t;
    }
    // [B, n, T, d] -> [B, n, 1, T, d] -> [B, n, H / n, T, d] -> [B, H, T, d]
    t.reshape([batch, n, 1, len, d])
        .repeat_dim(2, heads / n)
        .reshape([batch, heads, len, d])
}

/// The merged boolean mask (key padding and causal) as `[B, H, Tq, Tk]`, `true` where blocked.
pub(crate) fn blocked<B: Backend>(
    key_padding: Option<Tensor<B, 2, Bool>>,
    causal: bool,
    dims: AttentionDims,
    device: &B::Device,
) -> Option<Tensor<B, 4, Bool>> {
    let shape = dims.scores_shape();
    let (batch, queries, keys, ..) = dims.sizes();
    // [B, Tk] -> [B, 1, 1, Tk] -> [B, H, Tq, Tk]
    let padding = key_padding.map(|m| m.reshape([batch, 1, 1, keys]).expand(shape));
    // Query i sits at key position (Tk - Tq + i): it sees keys up to there.
    let future = causal.then(|| {
        Tensor::<B, 2, Bool>::tril_mask([queries, keys], keys as i64 - queries as i64, device)
            .reshape([1, 1, queries, keys])
            .expand(shape)
    });
    match (padding, future) {
        (Some(p), Some(f)) => Some(p.bool_or(f)),
        (p, f) => p.or(f),
    }
}

/// Softmax over the last axis that gives zeros, not NaN, on a row whose scores are all `-inf`
/// (the same guard as burn's fused attention, so both paths agree).
pub(crate) fn masked_softmax<B: Backend>(scores: Tensor<B, 4>) -> Tensor<B, 4> {
    // The shift only guards against overflow; softmax does not depend on it, so no gradient.
    let max = scores.clone().max_dim(3).clamp_min(f32::MIN).detach();
    let e = (scores - max).exp();
    let sum = e.clone().sum_dim(3).clamp_min(f32::MIN_POSITIVE);
    e / sum
}

/// The tensor-op composition of [`Backend::sdpa`](crate::Backend::sdpa). Its dropout mask comes
/// from the backend's random generator (on the device), not from the seed; [`forward_dropped`]
/// takes the seeded one.
pub fn forward<B: Backend>(args: AttentionArgs<B>) -> Tensor<B, 4> {
    let factors = args.dropout.map(|p| {
        let keep = Tensor::<B, 4>::random(
            args.dims().scores_shape(),
            Distribution::Bernoulli(1.0 - p.prob),
            &args.query.device(),
        );
        keep / (1.0 - p.prob)
    });
    forward_dropped(args, factors)
}

/// The composition with the dropout factors given (`[B, H, Tq, Tk]`, for instance
/// [`AttentionDropout::factors`](super::AttentionDropout::factors), the CPU kernel's mask): the
/// reference a kernel is checked against. `args.dropout` is ignored.
pub fn forward_dropped<B: Backend>(args: AttentionArgs<B>, factors: Option<Tensor<B, 4>>) -> Tensor<B, 4> {
    let dims = args.dims();
    let device = args.query.device();
    let (_, queries, keys, heads, ..) = dims.sizes();
    let q = args.query.swap_dims(1, 2); // [B, H, Tq, d]
    let k = heads_first(args.key, heads); // [B, H, Tk, d]
    let v = heads_first(args.value, heads); // [B, H, Tk, d]
    let shape = dims.scores_shape();
    // [Tq, Tk] -> [1, 1, Tq, Tk] -> [B, H, Tq, Tk]
    let bias = args.bias.map(|b| b.reshape([1, 1, queries, keys]).expand(shape));
    let context = match factors {
        None => {
            let blocked = blocked(args.key_padding, false, dims, &device);
            let options = AttentionModuleOptions {
                scale: Some(args.scale),
                softcap: None,
                is_causal: args.causal,
            };
            attention(q, k, v, blocked, bias, options)
        }
        Some(factors) => {
            // [B, H, Tq, d] x [B, H, d, Tk] -> [B, H, Tq, Tk]
            let mut scores = q.matmul(k.swap_dims(2, 3)) * args.scale;
            if let Some(b) = blocked(args.key_padding, args.causal, dims, &device) {
                scores = scores.mask_fill(b, f64::NEG_INFINITY);
            }
            if let Some(b) = bias {
                scores = scores + b;
            }
            let weights = masked_softmax(scores) * factors;
            // [B, H, Tq, Tk] x [B, H, Tk, d] -> [B, H, Tq, d]
            weights.matmul(v)
        }
    };
    context.swap_dims(1, 2) // [B, Tq, H, d]
}
