//! Gradient clipping over a whole model: the global L2 norm (`clip_grad_norm_`) and by value.

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor};
use serde::{Deserialize, Serialize};

/// How gradients are clipped before the optimizer step.
///
/// burn-optim's own `GradientClipping::Norm` clips each tensor by its own norm; ember-lm clips by
/// the norm of all gradients together, as PyTorch's `clip_grad_norm_` and every GPT recipe do.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum GradClip {
    /// Scale all gradients by `max_norm / (total_norm + 1e-6)` when that is below 1
    /// (`torch.nn.utils.clip_grad_norm_(params, max_norm)`).
    Norm(f64),
    /// Clamp every gradient element into `[-v, v]` (`torch.nn.utils.clip_grad_value_`).
    Value(f64),
}

impl GradClip {
    pub(crate) fn validate(&self) -> crate::Result<()> {
        let (Self::Norm(v) | Self::Value(v)) = *self;
        if v > 0.0 && v.is_finite() {
            Ok(())
        } else {
            Err(crate::Error::Config {
                module: "GradClip",
                message: format!("the clipping threshold must be finite and > 0, found {v}"),
            })
        }
    }
}

/// The global L2 norm of every gradient in `grads` that belongs to `model`:
/// `sqrt(Σ_tensors Σ g²)`, with one read back from the device.
pub fn grad_norm<B: AutodiffBackend, M: AutodiffModule<B>>(model: &M, grads: &GradientsParams) -> f64 {
    let mut visitor = SquareSum::<B::InnerBackend> { grads, total: None };
    model.visit(&mut visitor);
    match visitor.total {
        // Accumulated on the device; f64 on the host for the square root.
        Some(total) => total.into_scalar().elem::<f64>().sqrt(),
        None => 0.0,
    }
}

/// `torch.nn.utils.clip_grad_norm_`: scales the gradients in place so that their global L2 norm
/// is at most `max_norm`, and returns the norm before clipping. A NaN or infinite norm is returned
/// as is and the gradients are left untouched (the trainer's non-finite policy decides).
pub fn clip_grad_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    model: &M,
    grads: &mut GradientsParams,
    max_norm: f64,
) -> f64 {
    let norm = grad_norm::<B, M>(model, grads);
    // PyTorch's coefficient, including its 1e-6 guard.
    let coef = max_norm / (norm + 1e-6);
    if norm.is_finite() && coef < 1.0 {
        model.visit(&mut MapGrads::<B::InnerBackend> {
            grads,
            op: GradOp::Scale(coef),
            _g: Default::default(),
        });
    }
    norm
}

/// `torch.nn.utils.clip_grad_value_`: clamps every gradient element into `[-value, value]`.
pub fn clip_grad_value<B: AutodiffBackend, M: AutodiffModule<B>>(
    model: &M,
    grads: &mut GradientsParams,
    value: f64,
) {
    model.visit(&mut MapGrads::<B::InnerBackend> {
        grads,
        op: GradOp::Clamp(value),
        _g: Default::default(),
    });
}

/// Sums `Σ g²` of the model's gradients on the device.
struct SquareSum<'a, G: Backend> {
    grads: &'a GradientsParams,
    total: Option<Tensor<G, 1>>,
}

impl<B: Backend, G: Backend> ModuleVisitor<B> for SquareSum<'_, G> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.get::<G, D>(param.id) {
            let s = g.square().sum();
            self.total = Some(match self.total.take() {
                Some(t) => t + s,
                None => s,
            });
        }
    }
}

enum GradOp {
    Scale(f64),
    Clamp(f64),
}

/// Applies a [`GradOp`] to every gradient of the model.
struct MapGrads<'a, G: Backend> {
    grads: &'a mut GradientsParams,
    op: GradOp,
    _g: std::marker::PhantomData<G>,
}

impl<B: Backend, G: Backend> ModuleVisitor<B> for MapGrads<'_, G> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.remove::<G, D>(param.id) {
            let g = match self.op {
                GradOp::Scale(c) => g.mul_scalar(c),
                GradOp::Clamp(v) => g.clamp(-v, v),
            };
            self.grads.register::<G, D>(param.id, g);
        }
    }
}
