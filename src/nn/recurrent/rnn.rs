//! [`Rnn`]: PyTorch's `torch.nn.RNN` (Elman network with `tanh` or `relu`), generic over burn's backend.

use burn::config::Config;
use burn::module::{Initializer, Module};
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::Tensor;

use super::common::{hidden_state_forward, recurrent_common, stack_spec};
use super::driver::StackSpec;
use super::weights::RecurrentWeights;
use crate::backend::CellKind;
use crate::{Backend, Result};

/// The nonlinearity of an [`Rnn`], PyTorch's `nonlinearity` argument.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum Nonlinearity {
    /// `tanh` (PyTorch's default).
    Tanh,
    /// `relu`.
    Relu,
}

/// Configuration of an [`Rnn`]; the options and defaults of `torch.nn.RNN`.
#[derive(Config, Debug)]
pub struct RnnConfig {
    /// Number of input features.
    pub input_size: usize,
    /// Number of features of the hidden state.
    pub hidden_size: usize,
    /// Number of stacked layers. Default 1.
    #[config(default = 1)]
    pub num_layers: usize,
    /// `tanh` or `relu`. Default `tanh`.
    #[config(default = "Nonlinearity::Tanh")]
    pub nonlinearity: Nonlinearity,
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

/// A multi-layer Elman RNN, computed as PyTorch's `torch.nn.RNN`:
///
/// ```text
/// h' = act(W_ih x + b_ih + W_hh h + b_hh),   act = tanh or relu
/// ```
///
/// Weights trained in PyTorch load with [`TorchWeights::load_pytorch_file`](crate::io::TorchWeights::load_pytorch_file) and save with [`TorchWeights::save_pytorch`](crate::io::TorchWeights::save_pytorch).
#[derive(Module, Debug)]
pub struct Rnn<B: Backend> {
    /// One parameter set per layer and direction, in PyTorch's order
    /// (`l0`, `l0_reverse`, `l1`, ...).
    pub cells: Vec<RecurrentWeights<B>>,
    dropout: Dropout,
    #[module(skip)]
    spec: StackSpec,
}

impl RnnConfig {
    /// Builds the module, or an [`Error::Config`](crate::Error::Config) when a size is zero or
    /// `dropout` is outside `[0, 1)`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<Rnn<B>> {
        let kind = match self.nonlinearity {
            Nonlinearity::Tanh => CellKind::RnnTanh,
            Nonlinearity::Relu => CellKind::RnnRelu,
        };
        let spec = stack_spec!(self, "Rnn", kind, 0);
        spec.validate("RnnConfig", self.dropout)?;
        Ok(Rnn {
            cells: spec.init_cells(self.initializer.as_ref(), device),
            dropout: DropoutConfig::new(self.dropout).init(),
            spec,
        })
    }
}

hidden_state_forward!(Rnn);
recurrent_common!(Rnn, "RNN");
