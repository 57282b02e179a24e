//! [`Recurrent`]: the one recurrent stack. [`Rnn`](super::Rnn), [`Lstm`](super::Lstm) and
//! [`Gru`](super::Gru) are typed front-ends over it; [`RecurrentConfig`] picks the cell at run time.

use burn::config::Config;
use burn::module::{Initializer, Module};
use burn::nn::{Dropout, DropoutConfig};
use burn::record::Record;
use burn::tensor::Tensor;

use super::driver::StackSpec;
use super::weights::RecurrentWeights;
use crate::backend::CellType;
use crate::io::{TorchWeights, WeightPath};
use crate::{Backend, Error, Result};

/// Configuration of a [`Recurrent`] stack whose cell is chosen at run time (batch-first, like
/// the other ember-lm layers).
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
    pub initializer: Option<Initializer>,
}

impl RecurrentConfig {
    /// Builds the stack; every option is kept (an option the cell does not have, `proj_size`
    /// outside an LSTM, is an [`Error::Config`]), as are zero sizes and a dropout outside `[0, 1)`.
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
        let spec = StackSpec {
            module: "Recurrent",
            kind: self.cell,
            input_size: self.input_size,
            hidden_size: self.hidden_size,
            proj_size: self.proj_size,
            num_layers: self.num_layers,
            bias: self.bias,
            batch_first: true,
            bidirectional: self.bidirectional,
        };
        Recurrent::new(
            spec,
            "RecurrentConfig",
            self.dropout,
            self.initializer.as_ref(),
            device,
        )
    }
}

/// The state of a [`Recurrent`] stack: `hidden` `[layers · directions, batch, state size]`, and
/// the LSTM's `cell` `[layers · directions, batch, hidden]`. A `Record`, so the trainer can
/// checkpoint it (truncated BPTT).
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

/// A stack of recurrent layers of one cell type, PyTorch's `nn.RNN`, `nn.LSTM` or `nn.GRU`:
/// the parameters of every layer and direction, the dropout between layers, and the sizes. The
/// stacking, directions, lengths and states are run by one driver for every cell.
#[derive(Module, Debug)]
pub struct Recurrent<B: Backend> {
    /// One parameter set per layer and direction, in PyTorch's order
    /// (`l0`, `l0_reverse`, `l1`, ...).
    pub cells: Vec<RecurrentWeights<B>>,
    dropout: Dropout,
    #[module(skip)]
    spec: StackSpec,
}

impl<B: Backend> Recurrent<B> {
    /// Checks `spec` and `dropout` (an [`Error::Config`] naming `config`'s field) and builds the
    /// parameters with `init`, or PyTorch's uniform initialisation when `None`.
    pub(crate) fn new(
        spec: StackSpec,
        config: &'static str,
        dropout: f64,
        init: Option<&Initializer>,
        device: &B::Device,
    ) -> Result<Self> {
        spec.validate(config, dropout)?;
        Ok(Self {
            cells: spec.init_cells(init, device),
            dropout: DropoutConfig::new(dropout).init(),
            spec,
        })
    }

    /// Runs over `[batch, time, input]` (`[time, batch, input]` for a front-end built with
    /// `batch_first = false`), optionally from `state` (zeros when `None`; the LSTM's cell zeros
    /// when `state.cell` is `None`), optionally with per-sequence `lengths` (a padded batch, as
    /// `pack_padded_sequence`).
    ///
    /// # Shapes
    /// output `[batch, time, directions · state size]`; state as [`RecurrentState`].
    pub fn forward(
        &self,
        input: Tensor<B, 3>,
        lengths: Option<&[usize]>,
        state: Option<RecurrentState<B>>,
    ) -> Result<(Tensor<B, 3>, RecurrentState<B>)> {
        let (h0, c0) = match state {
            // Only an LSTM has a cell state; another cell ignores one.
            Some(s) => (
                Some(s.hidden),
                s.cell.filter(|_| self.spec.kind == CellType::Lstm),
            ),
            None => (None, None),
        };
        self.run(input, lengths, h0, c0)
    }

    pub(crate) fn run(
        &self,
        input: Tensor<B, 3>,
        lengths: Option<&[usize]>,
        h0: Option<Tensor<B, 3>>,
        c0: Option<Tensor<B, 3>>,
    ) -> Result<(Tensor<B, 3>, RecurrentState<B>)> {
        let (output, hidden, cell) = self
            .spec
            .run(&self.cells, &self.dropout, input, lengths, h0, c0)?;
        Ok((output, RecurrentState { hidden, cell }))
    }

    /// The cell.
    pub fn cell_type(&self) -> CellType {
        self.spec.kind
    }

    /// Number of input features.
    pub fn input_size(&self) -> usize {
        self.spec.input_size
    }

    /// Size of the hidden state (of the cell state for an LSTM with a projection).
    pub fn hidden_size(&self) -> usize {
        self.spec.hidden_size
    }

    /// Size of the recurrent projection (`weight_hr`, LSTM only), 0 when absent.
    pub fn proj_size(&self) -> usize {
        self.spec.proj_size
    }

    /// Number of output features: the state size times the number of directions.
    pub fn output_size(&self) -> usize {
        self.spec.output_size()
    }

    /// Number of stacked layers.
    pub fn num_layers(&self) -> usize {
        self.spec.num_layers
    }

    /// Number of directions (2 when bidirectional).
    pub fn num_directions(&self) -> usize {
        self.spec.directions()
    }
}

impl<B: Backend> TorchWeights for Recurrent<B> {
    /// PyTorch's keys of `nn.RNN`, `nn.LSTM` and `nn.GRU`: `weight_ih_l0`, `weight_hh_l0`,
    /// `bias_ih_l0`, ..., `weight_hr_l{k}` with a projection, `_reverse` for the second direction.
    fn visit_weights(&mut self, w: &mut WeightPath<'_, '_>) -> Result<()> {
        self.spec.visit_cells(&mut self.cells, w)
    }
}
