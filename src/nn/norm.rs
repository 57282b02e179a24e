//! [`TorchLayerNorm`]: `torch.nn.LayerNorm` over the last dimension in PyTorch's parameterisation.

use burn::module::{Initializer, Module, Param};
use burn::tensor::Tensor;

use crate::backend::{NormArgs, NormKind};
use crate::io::{TorchWeights, WeightPath};
use crate::{Backend, Error, Result};

/// A layer norm in PyTorch's parameterisation (`weight`, `bias`, biased variance).
#[derive(Module, Debug)]
pub struct TorchLayerNorm<B: Backend> {
    /// `[d]`, initialised to ones.
    pub weight: Param<Tensor<B, 1>>,
    /// `[d]`, initialised to zeros.
    pub bias: Option<Param<Tensor<B, 1>>>,
    eps: f64,
}

impl<B: Backend> TorchLayerNorm<B> {
    /// A norm over `d` features: ones, zeros (when `bias`), and `eps`.
    pub fn new(d: usize, eps: f64, bias: bool, device: &B::Device) -> Self {
        Self {
            weight: Initializer::Ones.init([d], device),
            bias: bias.then(|| Initializer::Zeros.init([d], device)),
            eps,
        }
    }

    /// Normalises the last dimension, then scales and shifts it; an [`Error::Shape`] when `x`'s
    /// last size is not the norm's.
    ///
    /// # Shapes
    /// - `x`: `[batch, len, d]`; output the same
    pub fn forward(&self, x: Tensor<B, 3>) -> Result<Tensor<B, 3>> {
        let d = self.weight.dims()[0];
        if x.dims()[2] != d {
            return Err(Error::shape(
                "TorchLayerNorm input",
                format!("[batch, len, {d}]"),
                &x.dims(),
            ));
        }
        Ok(self.apply(x))
    }

    /// [`forward`](Self::forward) for callers whose shapes are right by construction.
    pub(crate) fn apply(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [batch, len, d] = x.dims();
        // Biased variance over the last dimension, as PyTorch's layer norm; one backend op
        // (a fused row kernel on the CPU backends).
        let (y, _) = B::norm(NormArgs {
            input: x.reshape([batch * len, d]), // [B, T, D] -> [B*T, D]
            weight: self.weight.val(),
            bias: self.bias.as_ref().map(Param::val),
            eps: self.eps,
            kind: NormKind::Layer,
        });
        y.reshape([batch, len, d])
    }
}

impl<B: Backend> TorchWeights for TorchLayerNorm<B> {
    fn visit_weights(&mut self, w: &mut WeightPath<'_, '_>) -> Result<()> {
        w.tensor("weight", &mut self.weight)?;
        w.optional("bias", &mut self.bias)
    }
}
