//! [`TorchLinear`]: `torch.nn.Linear` in PyTorch's parameter layout, so that state dicts load by
//! name.

use burn::module::{Initializer, Module, Param};
use burn::tensor::Tensor;

use crate::io::{TorchWeights, WeightPath};
use crate::{Backend, Error, Result};

/// A linear map in PyTorch's layout (`weight [out, in]`).
#[derive(Module, Debug)]
pub struct TorchLinear<B: Backend> {
    /// `[out, in]`.
    pub weight: Param<Tensor<B, 2>>,
    /// `[out]`.
    pub bias: Option<Param<Tensor<B, 1>>>,
}

impl<B: Backend> TorchLinear<B> {
    /// PyTorch's `nn.Linear` initialisation: `U(-1/sqrt(in), 1/sqrt(in))` for weight and bias.
    pub fn new(d_in: usize, d_out: usize, bias: bool, device: &B::Device) -> Self {
        let k = 1.0 / (d_in as f64).sqrt();
        let init = Initializer::Uniform { min: -k, max: k };
        Self {
            weight: init.init_with([d_out, d_in], Some(d_in), Some(d_out), device),
            bias: bias.then(|| init.init([d_out], device)),
        }
    }

    /// `x Wᵀ + b` over the last dimension; an [`Error::Shape`] when `x`'s last size is not the
    /// layer's input size.
    ///
    /// # Shapes
    /// - `x`: `[batch, len, in]`; output `[batch, len, out]`
    pub fn forward(&self, x: Tensor<B, 3>) -> Result<Tensor<B, 3>> {
        let d_in = self.weight.dims()[1];
        if x.dims()[2] != d_in {
            return Err(Error::shape(
                "TorchLinear input",
                format!("[batch, len, {d_in}]"),
                &x.dims(),
            ));
        }
        Ok(self.apply(x))
    }

    /// [`forward`](Self::forward) for callers whose shapes are right by construction.
    pub(crate) fn apply(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [batch, len, d_in] = x.dims();
        let d_out = self.weight.dims()[0];
        // [B, T, in] -> [B*T, in] -> [B*T, out] -> [B, T, out]: a 2-D matmul, because broadcast
        // batched matmuls gave nondeterministic results on burn-wgpu 0.21 under llvmpipe.
        let mut y = x
            .reshape([batch * len, d_in])
            .matmul(self.weight.val().transpose());
        if let Some(b) = &self.bias {
            y = y + b.val().unsqueeze::<2>();
        }
        y.reshape([batch, len, d_out])
    }
}

impl<B: Backend> TorchWeights for TorchLinear<B> {
    fn visit_weights(&mut self, w: &mut WeightPath<'_, '_>) -> Result<()> {
        w.tensor("weight", &mut self.weight)?;
        w.optional("bias", &mut self.bias)
    }
}
