//! [`Rnn`]: PyTorch's `torch.nn.RNN` (Elman network with `tanh` or `relu`), generic over burn's backend.

use burn::config::Config;
use burn::module::{Initializer, Module};
use burn::tensor::Tensor;

use super::common::{front_end, hidden_state_forward, stack_spec};
use super::driver::StackSpec;
use super::stack::Recurrent;
use crate::backend::CellType;
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
    /// The stack (its `cells`, sizes and keys are this module's, through `Deref`).
    stack: Recurrent<B>,
}

impl RnnConfig {
    /// Builds the module, or an [`Error::Config`](crate::Error::Config) when a size is zero or
    /// `dropout` is outside `[0, 1)`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<Rnn<B>> {
        let kind = match self.nonlinearity {
            Nonlinearity::Tanh => CellType::RnnTanh,
            Nonlinearity::Relu => CellType::RnnRelu,
        };
        let spec = stack_spec!(self, "Rnn", kind, 0);
        let stack = Recurrent::new(spec, "RnnConfig", self.dropout, self.initializer.as_ref(), device)?;
        Ok(Rnn { stack })
    }
}

hidden_state_forward!(Rnn);
front_end!(Rnn, "RNN");
