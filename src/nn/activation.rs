//! [`FeedForwardActivation`]: the activations of PyTorch's Transformer layers and GPT-2, with
//! gradients that match PyTorch's.

use burn::config::Config;
use burn::tensor::Tensor;
use burn::tensor::activation::relu;

use crate::Backend;

/// The feed-forward activation of a Transformer layer.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum FeedForwardActivation {
    /// `relu` (PyTorch's default).
    Relu,
    /// Exact `gelu` (with `erf`), PyTorch's `"gelu"`.
    Gelu,
    /// `gelu` with the tanh approximation (GPT-2's `gelu_new`, PyTorch's `approximate="tanh"`).
    GeluTanh,
}

impl FeedForwardActivation {
    /// The activation applied elementwise.
    pub fn apply<B: Backend, const D: usize>(self, x: Tensor<B, D>) -> Tensor<B, D> {
        match self {
            Self::Relu => relu(x),
            Self::Gelu => gelu_exact(x),
            Self::GeluTanh => gelu_tanh(x),
        }
    }
}

/// Exact `gelu`, `x/2 (1 + erf(x / sqrt 2))`, composed so that autodiff differentiates it exactly:
/// burn 0.21's default `gelu_backward` (used by burn-ndarray) is the derivative of the tanh
/// approximation, off by up to 1e-3 from PyTorch's gradients.
fn gelu_exact<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    x.clone() * 0.5 * ((x / std::f64::consts::SQRT_2).erf() + 1.0)
}

/// `gelu` with the tanh approximation: `x/2 (1 + tanh(sqrt(2/π) (x + 0.044715 x³)))`.
fn gelu_tanh<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let c = (2.0 / std::f64::consts::PI).sqrt();
    let inner = (x.clone() + x.clone().powi_scalar(3) * 0.044715) * c;
    x * 0.5 * (inner.tanh() + 1.0)
}
