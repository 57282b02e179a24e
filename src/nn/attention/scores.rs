//! The attention itself: scores, masks and softmax on the explicit path, or burn's fused
//! `attention` op, for heads already projected.

use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, Tensor};

use super::{AttentionMasks, MultiHeadAttention};
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
        let (blocked, bias) = self.mask_terms(masks, [batch, h, q_len, k_len], &q.device())?;
        let dropout_active = self.dropout.prob > 0.0 && B::ad_enabled(&q.device());
        let (context, weights) = if self.fused && !need_weights && !dropout_active {
            let options = AttentionModuleOptions {
                scale: None,
                softcap: None,
                is_causal: masks.causal,
            };
            (attention(q, k, v, blocked, bias, options), None)
        } else {
            // [B, H, Tq, d] x [B, H, d, Tk] -> [B, H, Tq, Tk]
            let mut scores = q.matmul(k.swap_dims(2, 3)) / (dh as f64).sqrt();
            let mut blocked = blocked;
            if masks.causal {
                // Query i sits at key position (k_len - q_len + i): it sees keys up to there.
                let offset = k_len as i64 - q_len as i64;
                let future = Tensor::<B, 2, Bool>::tril_mask([q_len, k_len], offset, &scores.device())
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
            // [B, H, Tq, Tk] x [B, H, Tk, d] -> [B, H, Tq, d]
            (weights.clone().matmul(v), need_weights.then_some(weights))
        };
        // [B, H, Tq, d] -> [B, Tq, H, d] -> [B*Tq, D] -> [B*Tq, D] -> [B, Tq, D]
        let context = context.swap_dims(1, 2).reshape([batch * q_len, self.d_model]);
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
    /// additive mask broadcast to the same shape; the causal flag is left to the caller.
    #[allow(clippy::type_complexity)]
    fn mask_terms(
        &self,
        masks: &AttentionMasks<B>,
        shape: [usize; 4],
        device: &B::Device,
    ) -> Result<(Option<Tensor<B, 4, Bool>>, Option<Tensor<B, 4>>)> {
        let [batch, _, q_len, k_len] = shape;
        let mut blocked: Option<Tensor<B, 4, Bool>> = None;
        if let Some(kpm) = &masks.key_padding {
            if kpm.dims() != [batch, k_len] {
                return Err(Error::shape(
                    "key padding mask",
                    format!("[{batch}, {k_len}]"),
                    &kpm.dims(),
                ));
            }
            // [B, Tk] -> [B, 1, 1, Tk] -> [B, H, Tq, Tk]
            blocked = Some(kpm.clone().reshape([batch, 1, 1, k_len]).expand(shape));
        }
        if let Some(m) = &masks.attn_bool {
            if m.dims() != [q_len, k_len] {
                return Err(Error::shape(
                    "attention mask",
                    format!("[{q_len}, {k_len}]"),
                    &m.dims(),
                ));
            }
            // [Tq, Tk] -> [1, 1, Tq, Tk] -> [B, H, Tq, Tk]
            let m = m.clone().reshape([1, 1, q_len, k_len]).expand(shape);
            blocked = Some(match blocked {
                Some(b) => b.bool_or(m),
                None => m,
            });
        }
        let bias = match &masks.attn_additive {
            Some(m) if m.dims() != [q_len, k_len] => {
                return Err(Error::shape(
                    "attention mask",
                    format!("[{q_len}, {k_len}]"),
                    &m.dims(),
                ));
            }
            Some(m) => Some(
                m.clone()
                    .to_device(device)
                    .reshape([1, 1, q_len, k_len])
                    .expand(shape),
            ),
            None => None,
        };
        Ok((blocked, bias))
    }
}

/// Softmax over the last axis that gives zeros, not NaN, on a row whose scores are all `-inf`
/// (the same guard as burn's fused attention, so both paths agree).
fn masked_softmax<B: Backend>(scores: Tensor<B, 4>) -> Tensor<B, 4> {
    // The shift only guards against overflow; softmax does not depend on it, so no gradient.
    let max = scores.clone().max_dim(3).clamp_min(f32::MIN).detach();
    let e = (scores - max).exp();
    let sum = e.clone().sum_dim(3).clamp_min(f32::MIN_POSITIVE);
    e / sum
}
