//! [`TorchLayerNorm`]: `torch.nn.LayerNorm` over the last dimension in PyTorch's parameterisation.

use burn::module::{Initializer, Module, Param};
use burn::tensor::Tensor;

use crate::io::StateDict;
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

    /// PyTorch's keys (`{name}.weight`, `{name}.bias`) with their shapes.
    pub(crate) fn keys(&self, name: &str) -> Vec<(String, Vec<usize>)> {
        let mut keys = vec![(format!("{name}.weight"), self.weight.dims().to_vec())];
        keys.extend(
            self.bias
                .as_ref()
                .map(|b| (format!("{name}.bias"), b.dims().to_vec())),
        );
        keys
    }

    /// Takes `{path}.weight` and `{path}.bias` from `dict` (already checked).
    pub(crate) fn load(self, dict: &StateDict, path: &str) -> Result<Self> {
        Ok(Self {
            weight: dict.fill(self.weight, &format!("{path}.weight"))?,
            bias: self
                .bias
                .map(|b| dict.fill(b, &format!("{path}.bias")))
                .transpose()?,
            eps: self.eps,
        })
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
        // Biased variance over the last dimension, as PyTorch's layer norm.
        let centred = x.clone() - x.mean_dim(2);
        let var = centred.clone().powi_scalar(2).mean_dim(2);
        let y = centred / (var + self.eps).sqrt() * self.weight.val().unsqueeze::<3>();
        match &self.bias {
            Some(b) => y + b.val().unsqueeze::<3>(),
            None => y,
        }
    }
}
