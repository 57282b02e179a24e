//! [`FusedAdamW`]: burn-optim's `AdamW` with its step as one backend operation
//! ([`Backend::adamw_step`](crate::Backend::adamw_step)) where the backend has one: the same
//! numbers bit for bit, the same state record (so checkpoints do not change), one pass per
//! parameter instead of a dozen tensor ops.

use burn::optim::{AdamW, AdamWConfig, AdamWState, AdaptiveMomentumState, SimpleOptimizer};
use burn::tensor::Tensor;

use crate::Backend;
use crate::backend::AdamWArgs;

/// AdamW whose step runs as one backend operation, falling back to burn-optim's `AdamW` (for
/// AMSGrad, and on backends without the operation).
#[derive(Clone)]
pub(crate) struct FusedAdamW {
    reference: AdamW,
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    weight_decay: f32,
    amsgrad: bool,
}

impl FusedAdamW {
    /// AdamW with burn-optim's `f32` hyper-parameters.
    pub(crate) fn new(beta_1: f32, beta_2: f32, epsilon: f32, weight_decay: f32, amsgrad: bool) -> Self {
        let reference = AdamWConfig::new()
            .with_beta_1(beta_1)
            .with_beta_2(beta_2)
            .with_epsilon(epsilon)
            .with_amsgrad(amsgrad)
            .with_weight_decay(weight_decay)
            .build();
        Self {
            reference,
            beta_1,
            beta_2,
            epsilon,
            weight_decay,
            amsgrad,
        }
    }
}

impl<B: Backend> SimpleOptimizer<B> for FusedAdamW {
    type State<const D: usize> = AdamWState<B, D>;

    fn step<const D: usize>(
        &self,
        lr: f64,
        tensor: Tensor<B, D>,
        grad: Tensor<B, D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<B, D>, Option<Self::State<D>>) {
        if self.amsgrad || !B::fused_row_ops() {
            return self.reference.step(lr, tensor, grad, state);
        }
        let shape = tensor.dims();
        let (moments, time) = match state {
            Some(s) => {
                let m = s.momentum;
                (
                    Some((m.moment_1.reshape([-1]), m.moment_2.reshape([-1]))),
                    m.time + 1,
                )
            }
            None => (None, 1),
        };
        let args = AdamWArgs {
            param: tensor.reshape([-1]), // [..] -> [N]
            grad: grad.reshape([-1]),
            moments,
            time,
            lr,
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            epsilon: self.epsilon,
            weight_decay: self.weight_decay,
        };
        let Some(out) = B::adamw_step(args.clone()) else {
            // Not a kernel after all: burn-optim on the same values.
            let state = args.moments.map(|(m, v)| AdamWState {
                momentum: AdaptiveMomentumState {
                    time: time - 1,
                    moment_1: m.reshape(shape),
                    moment_2: v.reshape(shape),
                    max_moment_2: None,
                },
            });
            return self
                .reference
                .step(lr, args.param.reshape(shape), args.grad.reshape(shape), state);
        };
        let state = AdamWState {
            momentum: AdaptiveMomentumState {
                time,
                moment_1: out.moment_1.reshape(shape),
                moment_2: out.moment_2.reshape(shape),
                max_moment_2: None,
            },
        };
        (out.param.reshape(shape), Some(state))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &B::Device) -> Self::State<D> {
        <AdamW as SimpleOptimizer<B>>::to_device(state, device)
    }
}
