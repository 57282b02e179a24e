//! [`FeedForwardActivation`]: the activations of PyTorch's Transformer layers and GPT-2, with
//! gradients that match PyTorch's.

use burn::config::Config;
use burn::tensor::Tensor;

use crate::Backend;
use crate::backend::ActivationArgs;

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
    /// The activation applied elementwise, through the backend's fused
    /// [`bias_activation`](crate::Backend::bias_activation) op.
    pub fn apply<B: Backend, const D: usize>(self, x: Tensor<B, D>) -> Tensor<B, D> {
        let dims = x.dims();
        let width = dims[D - 1].max(1);
        // [..., F] -> [N, F] -> [..., F]
        let rows = x.shape().num_elements() / width;
        B::bias_activation(ActivationArgs {
            input: x.reshape([rows, width]),
            bias: None,
            activation: self.kind(),
        })
        .reshape(dims)
    }

    /// The backend's activation of the same definition, for the fused
    /// [`bias_activation`](crate::Backend::bias_activation) op.
    pub fn kind(self) -> crate::backend::Activation {
        match self {
            Self::Relu => crate::backend::Activation::Relu,
            Self::Gelu => crate::backend::Activation::Gelu,
            Self::GeluTanh => crate::backend::Activation::GeluTanh,
        }
    }
}
