//! [`Gru`]: PyTorch's `torch.nn.GRU`, generic over burn's backend.

use burn::config::Config;
use burn::module::{Initializer, Module};
use burn::tensor::Tensor;

use super::common::{front_end, hidden_state_forward, stack_spec};
use super::driver::StackSpec;
use super::stack::Recurrent;
use crate::backend::CellType;
use crate::{Backend, Result};

/// Configuration of a [`Gru`]; the options and defaults of `torch.nn.GRU`.
#[derive(Config, Debug)]
pub struct GruConfig {
    /// Number of input features.
    pub input_size: usize,
    /// Number of features of the hidden state.
    pub hidden_size: usize,
    /// Number of stacked layers. Default 1.
    #[config(default = 1)]
    pub num_layers: usize,
    /// Whether the layers have the biases `b_ih` and `b_hh`. Default true.
    #[config(default = true)]
    pub bias: bool,
    /// Input and output are `[batch, time, features]` when true, `[time, batch, features]` when
    /// false. Default **true**: unlike PyTorch (whose default is false), ember-lm follows burn's
    /// batch-major convention. The state is `[num_layers * num_directions, batch, hidden_size]`
    /// either way.
    #[config(default = true)]
    pub batch_first: bool,
    /// Dropout probability on the outputs of every layer but the last, applied only while
    /// training (on an autodiff backend). Default 0.
    #[config(default = 0.0)]
    pub dropout: f64,
    /// Whether each layer also runs over the reversed sequence. Default false.
    #[config(default = false)]
    pub bidirectional: bool,
    /// Initializer of every weight and bias; `None` (the default) is PyTorch's
    /// `U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))`.
    #[config(default = "None")]
    pub initializer: Option<Initializer>,
}

/// A multi-layer GRU, computed as PyTorch's `torch.nn.GRU`:
///
/// ```text
/// r = σ(W_ir x + b_ir + W_hr h + b_hr)       z = σ(W_iz x + b_iz + W_hz h + b_hz)
/// n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
/// h' = (1 - z) ⊙ n + z ⊙ h
/// ```
///
/// The gate weights are stored fused (order r, z, n), as PyTorch stores them: see
/// [`RecurrentWeights`](crate::nn::RecurrentWeights). Weights trained in PyTorch load with [`TorchWeights::load_pytorch_file`](crate::io::TorchWeights::load_pytorch_file) and save with [`TorchWeights::save_pytorch`](crate::io::TorchWeights::save_pytorch).
#[derive(Module, Debug)]
pub struct Gru<B: Backend> {
    /// The stack (its `cells`, sizes and keys are this module's, through `Deref`).
    stack: Recurrent<B>,
}

impl GruConfig {
    /// Builds the module, or an [`Error::Config`](crate::Error::Config) when a size is zero or
    /// `dropout` is outside `[0, 1)`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<Gru<B>> {
        let spec = stack_spec!(self, "Gru", CellType::Gru, 0);
        let stack = Recurrent::new(spec, "GruConfig", self.dropout, self.initializer.as_ref(), device)?;
        Ok(Gru { stack })
    }
}

hidden_state_forward!(Gru);
front_end!(Gru, "GRU");
