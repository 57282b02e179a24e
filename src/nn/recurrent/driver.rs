//! The shared driver behind [`Rnn`](super::Rnn), [`Lstm`](super::Lstm) and [`Gru`](super::Gru):
//! stacking, directions, per-sequence lengths, initial and final states, dropout between layers.
//!
//! Each layer-direction runs one loop over time. Per step it does one recurrent matmul and the
//! gate arithmetic of its cell; with per-sequence lengths, a `[batch, 1]` mask freezes the state of
//! sequences that have ended (forward direction) or not yet started (reverse direction, which
//! walks from `time - 1` down to 0), so the reverse direction starts from each sequence's own real
//! end and the final state is the state at each sequence's last real step, as PyTorch's packed
//! sequences give.

use burn::module::Initializer;
use burn::nn::Dropout;
use burn::tensor::Tensor;

use super::weights::{RecurrentWeights, WeightShapes};
use crate::backend::{Backend, CellType, SequenceArgs};
use crate::io::WeightPath;
use crate::{Error, Result};

/// Everything about a recurrent stack except its parameters.
#[derive(Clone, Debug)]
pub(crate) struct StackSpec {
    pub module: &'static str,
    pub kind: CellType,
    pub input_size: usize,
    pub hidden_size: usize,
    pub proj_size: usize,
    pub num_layers: usize,
    pub bias: bool,
    pub batch_first: bool,
    pub bidirectional: bool,
}

/// Outputs of a stack: the output sequence, the final hidden state and (LSTM) the final cell state.
pub(crate) type StackOutput<B> = (Tensor<B, 3>, Tensor<B, 3>, Option<Tensor<B, 3>>);

impl StackSpec {
    pub fn directions(&self) -> usize {
        if self.bidirectional { 2 } else { 1 }
    }

    /// Size of the hidden state `h` (and of each direction's output).
    pub fn state_size(&self) -> usize {
        if self.proj_size > 0 {
            self.proj_size
        } else {
            self.hidden_size
        }
    }

    /// Feature size of the output sequence.
    pub fn output_size(&self) -> usize {
        self.state_size() * self.directions()
    }

    /// Checks the sizes and the dropout probability (PyTorch's rules).
    pub fn validate(&self, config: &'static str, dropout: f64) -> Result<()> {
        let err = |message: String| {
            Err(Error::Config {
                module: config,
                message,
            })
        };
        if self.input_size == 0 || self.hidden_size == 0 || self.num_layers == 0 {
            return err(format!(
                "input_size, hidden_size and num_layers must be positive, found {}, {}, {}",
                self.input_size, self.hidden_size, self.num_layers
            ));
        }
        if !(0.0..1.0).contains(&dropout) {
            return err(format!("dropout must be in [0, 1), found {dropout}"));
        }
        if self.proj_size >= self.hidden_size {
            return err(format!(
                "proj_size must be smaller than hidden_size ({}), found {}",
                self.hidden_size, self.proj_size
            ));
        }
        // The largest weights: weight_ih_l* [gates·hidden, input or outputs], weight_hh_l*
        // [gates·hidden, state].
        let rows = [self.kind.gates(), self.hidden_size];
        let widest = self.input_size.max(self.output_size());
        crate::nn::check_param_size(
            config,
            "weight_ih (gates·hidden_size × input_size, or × the layer below's outputs)",
            &[rows[0], rows[1], widest],
        )?;
        crate::nn::check_param_size(
            config,
            "weight_hh (gates·hidden_size × hidden_size or proj_size)",
            &[rows[0], rows[1], self.state_size()],
        )
    }

    fn shapes(&self, layer: usize) -> WeightShapes {
        WeightShapes {
            gates: self.kind.gates(),
            hidden: self.hidden_size,
            input: if layer == 0 {
                self.input_size
            } else {
                self.output_size()
            },
            proj: self.proj_size,
            bias: self.bias,
        }
    }

    /// `(layer, reverse)` of each cell, in the order the cells are stored
    /// (PyTorch's order: layer-major, forward before reverse).
    fn cell_order(&self) -> impl Iterator<Item = (usize, bool)> + '_ {
        (0..self.num_layers).flat_map(move |l| (0..self.directions()).map(move |d| (l, d == 1)))
    }

    pub fn init_cells<B: Backend>(
        &self,
        init: Option<&Initializer>,
        device: &B::Device,
    ) -> Vec<RecurrentWeights<B>> {
        self.cell_order()
            .map(|(l, _)| self.shapes(l).init(init, device))
            .collect()
    }

    /// Names every cell's parameters with PyTorch's keys (`weight_ih_l0`, `bias_hh_l1_reverse`, ...).
    pub fn visit_cells<B: Backend>(
        &self,
        cells: &mut [RecurrentWeights<B>],
        w: &mut WeightPath<'_, '_>,
    ) -> Result<()> {
        for (cell, (l, rev)) in cells.iter_mut().zip(self.cell_order()) {
            cell.visit(w, &WeightShapes::suffix(l, rev))?;
        }
        Ok(())
    }

    /// Runs the stack. `input` is in the module's layout (`batch_first` or not); `lengths`, when
    /// given, holds each sequence's real length (1..=time).
    pub fn run<B: Backend>(
        &self,
        cells: &[RecurrentWeights<B>],
        dropout: &Dropout,
        input: Tensor<B, 3>,
        lengths: Option<&[usize]>,
        h0: Option<Tensor<B, 3>>,
        c0: Option<Tensor<B, 3>>,
    ) -> Result<StackOutput<B>> {
        let layout = if self.batch_first {
            "[batch, time, input_size]"
        } else {
            "[time, batch, input_size]"
        };
        let dims = input.dims();
        let (batch, time) = if self.batch_first {
            (dims[0], dims[1])
        } else {
            (dims[1], dims[0])
        };
        if batch == 0 || time == 0 || dims[2] != self.input_size {
            return Err(Error::shape(
                format!("{} input", self.module),
                layout.replace("input_size", &self.input_size.to_string()) + " with batch, time > 0",
                &dims,
            ));
        }
        if let Some(lengths) = lengths {
            check_lengths(lengths, batch, time)?;
        }
        let cells_n = self.num_layers * self.directions();
        // `field` names the configuration field the last size comes from (a projected LSTM's
        // hidden state is proj_size wide, its cell state hidden_size).
        let check_state = |state: &Tensor<B, 3>, what: &str, size: usize, field: &str| {
            let expected = [cells_n, batch, size];
            if state.dims() != expected {
                return Err(Error::shape(
                    format!("{} initial {what} state", self.module),
                    format!("{expected:?} (num_layers * num_directions, batch, {field})"),
                    &state.dims(),
                ));
            }
            Ok(())
        };
        if let Some(h0) = &h0 {
            let field = if self.proj_size > 0 {
                "proj_size"
            } else {
                "hidden_size"
            };
            check_state(h0, "hidden", self.state_size(), field)?;
        }
        if let Some(c0) = &c0 {
            check_state(c0, "cell", self.hidden_size, "hidden_size")?;
        }
        let device = input.device();
        let is_lstm = self.kind == CellType::Lstm;
        let initial = |state: &Option<Tensor<B, 3>>, idx: usize, size: usize| match state {
            // [cells, batch, size] -> [batch, size]
            Some(s) => s.clone().slice(idx..idx + 1).reshape([batch, size]),
            None => Tensor::zeros([batch, size], &device),
        };

        // [N, T, features] from here on (the kernels' layout).
        let mut x = if self.batch_first {
            input
        } else {
            input.swap_dims(0, 1)
        };
        let mut h_n = Vec::with_capacity(cells_n);
        let mut c_n = Vec::with_capacity(cells_n);
        for layer in 0..self.num_layers {
            let mut outputs = Vec::with_capacity(self.directions());
            for dir in 0..self.directions() {
                let idx = layer * self.directions() + dir;
                let cell = &cells[idx];
                let run = B::recurrent_sequence(SequenceArgs {
                    kind: self.kind,
                    input: x.clone(),
                    weights: cell.values(),
                    h0: initial(&h0, idx, self.state_size()),
                    c0: is_lstm.then(|| initial(&c0, idx, self.hidden_size)),
                    lengths: lengths.map(<[usize]>::to_vec),
                    reverse: dir == 1,
                });
                outputs.push(run.output);
                h_n.push(run.h_n);
                c_n.extend(run.c_n);
            }
            // D x [N, T, R] -> [N, T, D*R]
            x = Tensor::cat(outputs, 2);
            // PyTorch applies dropout to the outputs of every layer but the last.
            if layer + 1 < self.num_layers {
                x = dropout.forward(x);
            }
        }
        let output = if self.batch_first { x } else { x.swap_dims(0, 1) };
        // cells x [batch, size] -> [cells, batch, size]
        let h_n = Tensor::stack::<3>(h_n, 0);
        let c_n = is_lstm.then(|| Tensor::stack::<3>(c_n, 0));
        Ok((output, h_n, c_n))
    }
}

/// Checks that there is one length per sequence, each in `1..=time`.
fn check_lengths(lengths: &[usize], batch: usize, time: usize) -> Result<()> {
    if lengths.len() != batch {
        return Err(Error::Lengths(format!(
            "expected one length per sequence ({batch}), found {}",
            lengths.len()
        )));
    }
    if let Some((i, &len)) = lengths.iter().enumerate().find(|(_, l)| **l == 0 || **l > time) {
        return Err(Error::Lengths(format!(
            "length of sequence {i} must be in 1..={time} (the time dimension), found {len}"
        )));
    }
    Ok(())
}
