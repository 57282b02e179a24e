//! The default backward of a saved attention forward, in tensor ops: FlashAttention's equations
//! on whole `[B, H, Tq, Tk]` matrices, for a backend whose forward saves the log-sum-exp but that
//! has no backward kernel of its own.

use burn::tensor::Tensor;

use super::composed::{blocked, heads_first};
use super::{AttentionArgs, AttentionGrads};

/// `[B, H, T, d]` gradients of the widened key/value heads summed back into their `Hkv` heads:
/// `[B, Hkv, T, d]`, then `[B, T, Hkv, d]`.
fn narrow_heads<B: burn::tensor::backend::Backend>(t: Tensor<B, 4>, kv_heads: usize) -> Tensor<B, 4> {
    let [batch, heads, len, d] = t.dims();
    let t = if heads == kv_heads {
        t
    } else {
        // [B, H, T, d] -> [B, Hkv, H / Hkv, T, d] -> sum -> [B, Hkv, T, d]
        t.reshape([batch, kv_heads, heads / kv_heads, len, d])
            .sum_dim(2)
            .reshape([batch, kv_heads, len, d])
    };
    t.swap_dims(1, 2)
}

/// Gradients of query, key and value from the output's gradient, the output and the saved
/// log-sum-exp `[B, H, Tq]` (`+inf` for a query that sees no key).
pub fn backward<B: burn::tensor::backend::Backend>(
    args: AttentionArgs<B>,
    output: Tensor<B, 4>,
    lse: Tensor<B, 3>,
    grad: Tensor<B, 4>,
) -> AttentionGrads<B> {
    let dims = args.dims();
    let device = args.query.device();
    let (heads, kv_heads) = (dims.heads, dims.kv_heads);
    let q = args.query.swap_dims(1, 2); // [B, H, Tq, d]
    let k = heads_first(args.key, heads); // [B, H, Tk, d]
    let v = heads_first(args.value, heads); // [B, H, Tk, d]
    let d_out = grad.swap_dims(1, 2); // [B, H, Tq, d]
    let out = output.swap_dims(1, 2);
    // [B, H, Tq, d] x [B, H, d, Tk] -> [B, H, Tq, Tk]
    let mut scores = q.clone().matmul(k.clone().swap_dims(2, 3)) * args.scale;
    if let Some(b) = blocked(args.key_padding, args.causal, dims, &device) {
        scores = scores.mask_fill(b, f64::NEG_INFINITY);
    }
    if let Some(b) = args.bias {
        scores = scores + b.unsqueeze::<4>();
    }
    let probs = (scores - lse.unsqueeze_dim::<4>(3)).exp();
    let factors = args.dropout.map(|p| p.factors::<B>(dims, &device));
    let dropped = match &factors {
        Some(f) => probs.clone() * f.clone(),
        None => probs.clone(),
    };
    // dV = Pdᵀ dO, dP = (dO Vᵀ) ∘ factors, dS = P ∘ (dP - rowsum(dO ∘ O)) · scale
    let d_v = dropped.swap_dims(2, 3).matmul(d_out.clone());
    let mut d_p = d_out.clone().matmul(v.swap_dims(2, 3));
    if let Some(f) = factors {
        d_p = d_p * f;
    }
    let delta = (d_out * out).sum_dim(3); // [B, H, Tq, 1]
    let d_s = probs * (d_p - delta) * args.scale;
    let d_q = d_s.clone().matmul(k);
    let d_k = d_s.swap_dims(2, 3).matmul(q);
    AttentionGrads {
        query: d_q.swap_dims(1, 2),
        key: narrow_heads(d_k, kv_heads),
        value: narrow_heads(d_v, kv_heads),
    }
}
