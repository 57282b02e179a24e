//! The attention itself, for heads already projected: the backend's [`sdpa`](crate::Backend::sdpa)
//! op (a fused CPU kernel, or burn's `attention` on wgpu), or the explicit scores, masks and
//! softmax when the weights are asked for.

use burn::tensor::{Bool, Distribution, Int, Tensor};

use super::{AttentionMasks, MultiHeadAttention};
use crate::backend::attention::masked_softmax;
use crate::backend::{AttentionArgs, AttentionDropout};
use crate::{Backend, Error, Result};

impl<B: Backend> MultiHeadAttention<B> {
    /// `softmax(Q Kᵀ / sqrt(d) + mask) V` over heads, then the output projection.
    pub(super) fn attend(
        &self,
        q: Tensor<B, 4>,
        k: Tensor<B, 4>,
        v: Tensor<B, 4>,
        masks: &AttentionMasks<B>,
        need_weights: bool,
    ) -> Result<(Tensor<B, 3>, Option<Tensor<B, 3>>)> {
        let [batch, h, q_len, dh] = q.dims();
        let [_, h_kv, k_len, _] = k.dims();
        let device = q.device();
        check_masks(masks, batch, q_len, k_len)?;
        let dropout_active = self.dropout.prob > 0.0 && B::ad_enabled(&device);
        let (context, weights) = if self.fused && !need_weights {
            let args = AttentionArgs {
                // [B, n, T, d] -> [B, T, n, d], the op's layout
                query: q.swap_dims(1, 2),
                key: k.swap_dims(1, 2),
                value: v.swap_dims(1, 2),
                key_padding: masks.key_padding.clone(),
                bias: merged_bias(masks, &device),
                causal: masks.causal,
                scale: 1.0 / (dh as f64).sqrt(),
                dropout: dropout_active.then(|| AttentionDropout {
                    prob: self.dropout.prob,
                    seed: draw_seed::<B>(&device),
                }),
            };
            // [B, Tq, H, d] -> [B*Tq, D]
            (B::sdpa(args).reshape([batch * q_len, self.d_model]), None)
        } else {
            let (k, v) = if h_kv != h {
                // Each key/value head serves h / h_kv consecutive query heads:
                // [B, H_kv, Tk, d] -> [B, H_kv, 1, Tk, d] -> [B, H_kv, H / H_kv, Tk, d] -> [B, H, Tk, d]
                let widen = |t: Tensor<B, 4>| {
                    t.reshape([batch, h_kv, 1, k_len, dh])
                        .repeat_dim(2, h / h_kv)
                        .reshape([batch, h, k_len, dh])
                };
                (widen(k), widen(v))
            } else {
                (k, v)
            };
            let (blocked, bias) = self.mask_terms(masks, [batch, h, q_len, k_len], &device);
            // [B, H, Tq, d] x [B, H, d, Tk] -> [B, H, Tq, Tk]
            let mut scores = q.matmul(k.swap_dims(2, 3)) / (dh as f64).sqrt();
            let mut blocked = blocked;
            if masks.causal {
                // Query i sits at key position (k_len - q_len + i): it sees keys up to there.
                let offset = k_len as i64 - q_len as i64;
                let future = Tensor::<B, 2, Bool>::tril_mask([q_len, k_len], offset, &device)
                    .reshape([1, 1, q_len, k_len])
                    .expand([batch, h, q_len, k_len]);
                blocked = Some(match blocked {
                    Some(b) => b.bool_or(future),
                    None => future,
                });
            }
            if let Some(b) = blocked {
                scores = scores.mask_fill(b, f64::NEG_INFINITY);
            }
            if let Some(b) = bias {
                scores = scores + b;
            }
            let weights = self.dropout.forward(masked_softmax(scores));
            // [B, H, Tq, Tk] x [B, H, Tk, d] -> [B, H, Tq, d] -> [B, Tq, H, d] -> [B*Tq, D]
            let context = weights
                .clone()
                .matmul(v)
                .swap_dims(1, 2)
                .reshape([batch * q_len, self.d_model]);
            (context, need_weights.then_some(weights))
        };
        // [B*Tq, D] x [D, D] -> [B, Tq, D]
        let mut out = context.matmul(self.out_proj_weight.val().transpose());
        if let Some(b) = &self.out_proj_bias {
            out = out + b.val().unsqueeze::<2>();
        }
        let out = out.reshape([batch, q_len, self.d_model]);
        // [B, H, Tq, Tk] -> [B, 1, Tq, Tk] -> [B, Tq, Tk]
        let weights = weights.map(|w| w.mean_dim(1).reshape([batch, q_len, k_len]));
        Ok((out, weights))
    }

    /// The boolean masks (key padding, `attn_bool`) merged into one `[B, H, Tq, Tk]` mask, and the
    /// additive mask broadcast to the same shape; the causal flag is left to the caller. Shapes
    /// were checked by [`check_masks`].
    #[allow(clippy::type_complexity)]
    fn mask_terms(
        &self,
        masks: &AttentionMasks<B>,
        shape: [usize; 4],
        device: &B::Device,
    ) -> (Option<Tensor<B, 4, Bool>>, Option<Tensor<B, 4>>) {
        let [batch, _, q_len, k_len] = shape;
        // [B, Tk] -> [B, 1, 1, Tk] -> [B, H, Tq, Tk]
        let padding = masks
            .key_padding
            .clone()
            .map(|m| m.reshape([batch, 1, 1, k_len]).expand(shape));
        // [Tq, Tk] -> [1, 1, Tq, Tk] -> [B, H, Tq, Tk]
        let attn = masks
            .attn_bool
            .clone()
            .map(|m| m.reshape([1, 1, q_len, k_len]).expand(shape));
        let blocked = match (padding, attn) {
            (Some(p), Some(a)) => Some(p.bool_or(a)),
            (p, a) => p.or(a),
        };
        let bias = masks
            .attn_additive
            .clone()
            .map(|m| m.to_device(device).reshape([1, 1, q_len, k_len]).expand(shape));
        (blocked, bias)
    }
}

/// An [`Error::Shape`] for a mask whose shape does not fit the call.
fn check_masks<B: Backend>(
    masks: &AttentionMasks<B>,
    batch: usize,
    q_len: usize,
    k_len: usize,
) -> Result<()> {
    let check = |what: &str, found: Option<[usize; 2]>, expected: [usize; 2]| match found {
        Some(dims) if dims != expected => Err(Error::shape(what, format!("{expected:?}"), &dims)),
        _ => Ok(()),
    };
    check(
        "key padding mask",
        masks.key_padding.as_ref().map(Tensor::dims),
        [batch, k_len],
    )?;
    check(
        "attention mask",
        masks.attn_bool.as_ref().map(Tensor::dims),
        [q_len, k_len],
    )?;
    check(
        "attention mask",
        masks.attn_additive.as_ref().map(Tensor::dims),
        [q_len, k_len],
    )
}

/// The boolean attention mask as `-inf` plus the additive mask: the op's one `[Tq, Tk]` bias.
fn merged_bias<B: Backend>(masks: &AttentionMasks<B>, device: &B::Device) -> Option<Tensor<B, 2>> {
    let additive = masks.attn_additive.clone().map(|m| m.to_device(device));
    let blocked = masks
        .attn_bool
        .clone()
        .map(|m| Tensor::<B, 2>::zeros(m.dims(), device).mask_fill(m, f64::NEG_INFINITY));
    match (additive, blocked) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    }
}

/// A dropout seed drawn from the backend's generator, so that `B::seed` makes it reproducible:
/// two 31-bit draws (a backend's int type may be `i32`).
fn draw_seed<B: Backend>(device: &B::Device) -> u64 {
    let draw = Tensor::<B, 1, Int>::random([2], Distribution::Uniform(0.0, 2_147_483_647.0), device)
        .into_data()
        .convert::<i64>()
        .into_vec::<i64>()
        .unwrap_or_default();
    draw.iter().fold(0u64, |acc, &x| (acc << 31) ^ x as u64)
}
