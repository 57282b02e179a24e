//! [`Recurrent`]: an `Rnn`, `Lstm` or `Gru` chosen by configuration, behind one interface.

use burn::config::Config;
use burn::module::Module;
use burn::record::Record;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::{Gru, GruConfig, Lstm, LstmConfig, LstmState, Nonlinearity, Rnn, RnnConfig};
use crate::io::{TorchWeights, WeightPath};
use crate::{Backend, Error, Result};

/// Which recurrent cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CellType {
    /// Elman RNN with tanh (`nn.RNN`).
    RnnTanh,
    /// Elman RNN with ReLU (`nn.RNN(nonlinearity="relu")`).
    RnnRelu,
    /// `nn.LSTM`.
    Lstm,
    /// `nn.GRU`.
    Gru,
}

/// Configuration of a [`Recurrent`] layer stack (batch-first, like the other ember-lm layers).
#[derive(Config, Debug)]
pub struct RecurrentConfig {
    /// The cell.
    pub cell: CellType,
    /// Input features.
    pub input_size: usize,
    /// Hidden features.
    pub hidden_size: usize,
    /// Stacked layers. Default 1.
    #[config(default = 1)]
    pub num_layers: usize,
    /// Dropout between layers (training only). Default 0.
    #[config(default = 0.0)]
    pub dropout: f64,
    /// Bidirectional. Default false.
    #[config(default = false)]
    pub bidirectional: bool,
    /// Biases `b_ih` and `b_hh`. Default true.
    #[config(default = true)]
    pub bias: bool,
    /// LSTM only: project the hidden state to this size (`weight_hr`). Default 0 (none); any
    /// other cell with a positive value is a configuration error.
    #[config(default = 0)]
    pub proj_size: usize,
    /// Initializer of every weight and bias; `None` (the default) is PyTorch's
    /// `U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))`.
    #[config(default = "None")]
    pub initializer: Option<burn::module::Initializer>,
}

impl RecurrentConfig {
    /// Builds the stack; every option reaches the cell's own configuration (an option the cell
    /// does not have, `proj_size` outside an LSTM, is an [`Error::Config`]).
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<Recurrent<B>> {
        if self.proj_size > 0 && self.cell != CellType::Lstm {
            return Err(Error::Config {
                module: "RecurrentConfig",
                message: format!(
                    "proj_size ({}) is an LSTM option; the cell is {:?}",
                    self.proj_size, self.cell
                ),
            });
        }
        let init = self.initializer.clone();
        let (i, h, l, d, bi) = (
            self.input_size,
            self.hidden_size,
            self.num_layers,
            self.dropout,
            self.bidirectional,
        );
        Ok(match self.cell {
            CellType::RnnTanh | CellType::RnnRelu => {
                let nl = if self.cell == CellType::RnnRelu {
                    Nonlinearity::Relu
                } else {
                    Nonlinearity::Tanh
                };
                Recurrent::Rnn(
                    RnnConfig::new(i, h)
                        .with_num_layers(l)
                        .with_dropout(d)
                        .with_bidirectional(bi)
                        .with_bias(self.bias)
                        .with_initializer(init)
                        .with_nonlinearity(nl)
                        .init(device)?,
                )
            }
            CellType::Lstm => Recurrent::Lstm(
                LstmConfig::new(i, h)
                    .with_num_layers(l)
                    .with_dropout(d)
                    .with_bidirectional(bi)
                    .with_bias(self.bias)
                    .with_proj_size(self.proj_size)
                    .with_initializer(init)
                    .init(device)?,
            ),
            CellType::Gru => Recurrent::Gru(
                GruConfig::new(i, h)
                    .with_num_layers(l)
                    .with_dropout(d)
                    .with_bidirectional(bi)
                    .with_bias(self.bias)
                    .with_initializer(init)
                    .init(device)?,
            ),
        })
    }
}

/// The state of a [`Recurrent`] stack: `hidden` `[layers · directions, batch, hidden]`, and the
/// LSTM's `cell` of the same shape. A `Record`, so the trainer can checkpoint it (truncated BPTT).
#[derive(Debug, Clone, Record)]
pub struct RecurrentState<B: Backend> {
    /// `h`.
    pub hidden: Tensor<B, 3>,
    /// `c` (LSTM only).
    pub cell: Option<Tensor<B, 3>>,
}

impl<B: Backend> RecurrentState<B> {
    /// Cuts the state from the autodiff graph (truncated BPTT).
    pub fn detach(self) -> Self {
        Self {
            hidden: self.hidden.detach(),
            cell: self.cell.map(Tensor::detach),
        }
    }

    /// The batch size.
    pub fn batch(&self) -> usize {
        self.hidden.dims()[1]
    }

    /// Keeps the batch rows `indices` (in that order, repeats allowed): beam reordering. An
    /// [`Error::Index`] naming the first index outside the batch.
    pub fn select(self, indices: &[usize]) -> Result<Self> {
        crate::models::check_row_indices("RecurrentState::select", indices, self.batch())?;
        let device = self.hidden.device();
        let idx = crate::models::index_tensor::<B>(indices, &device);
        Ok(Self {
            hidden: self.hidden.select(1, idx.clone()),
            cell: self.cell.map(|c| c.select(1, idx)),
        })
    }

    /// Multiplies batch rows by `keep` (`[batch]`, 0 or 1): resets rows to a zero state. An
    /// [`Error::Shape`] unless `keep` has one value per row.
    pub fn mask_rows(self, keep: Tensor<B, 1>) -> Result<Self> {
        let batch = self.batch();
        if keep.dims() != [batch] {
            return Err(Error::shape(
                "RecurrentState::mask_rows keep",
                format!("[{batch}]"),
                &keep.dims(),
            ));
        }
        let keep = keep.reshape([1, batch, 1]); // broadcast over layers and features
        Ok(Self {
            hidden: self.hidden * keep.clone(),
            cell: self.cell.map(|c| c * keep),
        })
    }
}

/// One of the three recurrent stacks, chosen at run time by [`RecurrentConfig::cell`].
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Recurrent<B: Backend> {
    /// `nn.RNN`.
    Rnn(Rnn<B>),
    /// `nn.LSTM`.
    Lstm(Lstm<B>),
    /// `nn.GRU`.
    Gru(Gru<B>),
}

impl<B: Backend> Recurrent<B> {
    /// Runs over `[batch, time, input]`, optionally from `state`, optionally with per-sequence
    /// `lengths` (padded batch, as `pack_padded_sequence`).
    ///
    /// # Shapes
    /// output `[batch, time, directions · hidden]`; state as [`RecurrentState`].
    pub fn forward(
        &self,
        input: Tensor<B, 3>,
        lengths: Option<&[usize]>,
        state: Option<RecurrentState<B>>,
    ) -> Result<(Tensor<B, 3>, RecurrentState<B>)> {
        match self {
            Self::Lstm(m) => {
                let state = state.map(|s| {
                    let cell = s.cell.unwrap_or_else(|| s.hidden.zeros_like());
                    LstmState {
                        hidden: s.hidden,
                        cell,
                    }
                });
                let (out, s) = match lengths {
                    Some(l) => m.forward_padded(input, l, state)?,
                    None => m.forward(input, state)?,
                };
                Ok((
                    out,
                    RecurrentState {
                        hidden: s.hidden,
                        cell: Some(s.cell),
                    },
                ))
            }
            Self::Rnn(m) => {
                let h = state.map(|s| s.hidden);
                let (out, hidden) = match lengths {
                    Some(l) => m.forward_padded(input, l, h)?,
                    None => m.forward(input, h)?,
                };
                Ok((out, RecurrentState { hidden, cell: None }))
            }
            Self::Gru(m) => {
                let h = state.map(|s| s.hidden);
                let (out, hidden) = match lengths {
                    Some(l) => m.forward_padded(input, l, h)?,
                    None => m.forward(input, h)?,
                };
                Ok((out, RecurrentState { hidden, cell: None }))
            }
        }
    }
}

impl<B: Backend> TorchWeights for Recurrent<B> {
    /// The wrapped module's keys (`weight_ih_l0`, ...).
    fn visit_weights(&mut self, w: &mut WeightPath<'_, '_>) -> Result<()> {
        match self {
            Self::Rnn(m) => m.visit_weights(w),
            Self::Lstm(m) => m.visit_weights(w),
            Self::Gru(m) => m.visit_weights(w),
        }
    }
}
