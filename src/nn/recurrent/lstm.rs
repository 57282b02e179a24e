//! [`Lstm`]: PyTorch's `torch.nn.LSTM`, generic over burn's backend.

use burn::config::Config;
use burn::module::{Initializer, Module};
use burn::tensor::Tensor;

use super::common::{front_end, stack_spec};
use super::driver::StackSpec;
use super::stack::{Recurrent, RecurrentState};
use crate::backend::CellType;
use crate::{Backend, Result};

/// Configuration of an [`Lstm`]; the options and defaults of `torch.nn.LSTM`.
#[derive(Config, Debug)]
pub struct LstmConfig {
    /// Number of input features.
    pub input_size: usize,
    /// Number of features of the cell state (and of the hidden state when `proj_size` is 0).
    pub hidden_size: usize,
    /// Number of stacked layers. Default 1.
    #[config(default = 1)]
    pub num_layers: usize,
    /// Whether the layers have the biases `b_ih` and `b_hh`. Default true.
    #[config(default = true)]
    pub bias: bool,
    /// Input and output are `[batch, time, features]` when true, `[time, batch, features]` when
    /// false. Default **true**: unlike PyTorch (whose default is false), ember-lm follows burn's
    /// batch-major convention. States are `[num_layers * num_directions, batch, size]` either way.
    #[config(default = true)]
    pub batch_first: bool,
    /// Dropout probability on the outputs of every layer but the last, applied only while
    /// training (on an autodiff backend). Default 0.
    #[config(default = 0.0)]
    pub dropout: f64,
    /// Whether each layer also runs over the reversed sequence. Default false.
    #[config(default = false)]
    pub bidirectional: bool,
    /// When positive, the hidden state is projected to this size by `weight_hr` (must be smaller
    /// than `hidden_size`). Default 0 (no projection).
    #[config(default = 0)]
    pub proj_size: usize,
    /// Initializer of every weight and bias; `None` (the default) is PyTorch's
    /// `U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))`.
    #[config(default = "None")]
    pub initializer: Option<Initializer>,
}

/// The state of an [`Lstm`]: hidden and cell state of every layer and direction.
#[derive(Clone, Debug)]
pub struct LstmState<B: Backend> {
    /// `h`: `[num_layers * num_directions, batch, proj_size or hidden_size]`.
    pub hidden: Tensor<B, 3>,
    /// `c`: `[num_layers * num_directions, batch, hidden_size]`.
    pub cell: Tensor<B, 3>,
}

impl<B: Backend> LstmState<B> {
    /// Detaches both tensors from the autodiff graph (for truncated backpropagation through time).
    pub fn detach(self) -> Self {
        Self {
            hidden: self.hidden.detach(),
            cell: self.cell.detach(),
        }
    }
}

/// A multi-layer LSTM, computed as PyTorch's `torch.nn.LSTM`:
///
/// ```text
/// i = σ(W_ii x + b_ii + W_hi h + b_hi)      f = σ(W_if x + b_if + W_hf h + b_hf)
/// g = tanh(W_ig x + b_ig + W_hg h + b_hg)   o = σ(W_io x + b_io + W_ho h + b_ho)
/// c' = f ⊙ c + i ⊙ g                        h' = o ⊙ tanh(c')   (then h' = W_hr h' with proj_size)
/// ```
///
/// The gate weights are stored fused, as PyTorch stores them: see [`RecurrentWeights`](crate::nn::RecurrentWeights).
/// Weights trained in PyTorch load with [`TorchWeights::load_pytorch_file`](crate::io::TorchWeights::load_pytorch_file) and save with [`TorchWeights::save_pytorch`](crate::io::TorchWeights::save_pytorch).
#[derive(Module, Debug)]
pub struct Lstm<B: Backend> {
    /// The stack (its `cells`, sizes and keys are this module's, through `Deref`).
    stack: Recurrent<B>,
}

impl LstmConfig {
    /// Builds the module, or an [`Error::Config`](crate::Error::Config) when a size is zero,
    /// `proj_size >= hidden_size`, or `dropout` is outside `[0, 1)`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<Lstm<B>> {
        let spec = stack_spec!(self, "Lstm", CellType::Lstm, self.proj_size);
        let stack = Recurrent::new(
            spec,
            "LstmConfig",
            self.dropout,
            self.initializer.as_ref(),
            device,
        )?;
        Ok(Lstm { stack })
    }
}

impl<B: Backend> Lstm<B> {
    /// Runs the LSTM over full-length sequences, from `state` or from zeros.
    ///
    /// # Shapes
    /// - `input`: `[batch, time, input_size]` (`[time, batch, input_size]` if not `batch_first`)
    /// - `state`: hidden `[num_layers * num_directions, batch, proj_size or hidden_size]`,
    ///   cell `[num_layers * num_directions, batch, hidden_size]`
    /// - output: `[batch, time, num_directions * (proj_size or hidden_size)]`, and the final state
    ///   in the layout of `state`
    ///
    /// A wrong feature size, an empty batch or sequence, or a state of the wrong shape is an
    /// [`Error::Shape`](crate::Error::Shape).
    pub fn forward(
        &self,
        input: Tensor<B, 3>,
        state: Option<LstmState<B>>,
    ) -> Result<(Tensor<B, 3>, LstmState<B>)> {
        self.run(input, None, state)
    }

    /// Runs the LSTM over a padded batch in which sequence `b` has `lengths[b]` real steps, as
    /// PyTorch does on a `pack_padded_sequence`: outputs at padded positions are zero, the final
    /// state of each sequence is the state at its own last real step, and the reverse direction
    /// starts from each sequence's real end. Lengths need not be sorted.
    ///
    /// # Shapes
    /// As [`forward`](Self::forward); `lengths` has `batch` entries, each in `1..=time`
    /// (otherwise [`Error::Lengths`](crate::Error::Lengths)). A padding mask converts with
    /// [`lengths_from_padding_mask`](crate::nn::lengths_from_padding_mask).
    pub fn forward_padded(
        &self,
        input: Tensor<B, 3>,
        lengths: &[usize],
        state: Option<LstmState<B>>,
    ) -> Result<(Tensor<B, 3>, LstmState<B>)> {
        self.run(input, Some(lengths), state)
    }

    fn run(
        &self,
        input: Tensor<B, 3>,
        lengths: Option<&[usize]>,
        state: Option<LstmState<B>>,
    ) -> Result<(Tensor<B, 3>, LstmState<B>)> {
        let (h0, c0) = state.map(|s| (s.hidden, s.cell)).unzip();
        let (output, state) = self.stack.run(input, lengths, h0, c0)?;
        let cell = state.cell.expect("an LSTM stack returns a cell state");
        Ok((
            output,
            LstmState {
                hidden: state.hidden,
                cell,
            },
        ))
    }
}

impl<B: Backend> From<LstmState<B>> for RecurrentState<B> {
    fn from(state: LstmState<B>) -> Self {
        Self {
            hidden: state.hidden,
            cell: Some(state.cell),
        }
    }
}

front_end!(Lstm, "LSTM");
