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
use burn::tensor::activation::relu;
use burn::tensor::{Tensor, TensorData, backend::Backend};

use super::weights::{RecurrentWeights, WeightShapes};
use crate::io::StateDict;
use crate::{Error, Result};

/// The recurrence of one cell type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CellKind {
    /// Elman RNN with `tanh`.
    RnnTanh,
    /// Elman RNN with `relu`.
    RnnRelu,
    /// LSTM, gates i, f, g, o.
    Lstm,
    /// GRU, gates r, z, n.
    Gru,
}

impl CellKind {
    fn gates(self) -> usize {
        match self {
            Self::RnnTanh | Self::RnnRelu => 1,
            Self::Lstm => 4,
            Self::Gru => 3,
        }
    }
}

/// Everything about a recurrent stack except its parameters.
#[derive(Clone, Debug)]
pub(crate) struct StackSpec {
    pub module: &'static str,
    pub kind: CellKind,
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
        Ok(())
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

    /// PyTorch's keys of the whole stack with their shapes.
    pub fn keys(&self) -> Vec<(String, Vec<usize>)> {
        self.cell_order()
            .flat_map(|(l, rev)| self.shapes(l).keys(&WeightShapes::suffix(l, rev)))
            .collect()
    }

    /// Fills every cell from `dict` after checking that the key set under `prefix` is exact.
    pub fn load_cells<B: Backend>(
        &self,
        cells: Vec<RecurrentWeights<B>>,
        dict: &StateDict,
        prefix: &str,
    ) -> Result<Vec<RecurrentWeights<B>>> {
        dict.check_exact(prefix, &self.keys())?;
        cells
            .into_iter()
            .zip(self.cell_order())
            .map(|(cell, (l, rev))| cell.load(dict, prefix, &WeightShapes::suffix(l, rev)))
            .collect()
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
        // [batch, time, input] from here on.
        let input = if self.batch_first {
            input
        } else {
            input.swap_dims(0, 1)
        };
        let device = input.device();

        let masks = match lengths {
            Some(lengths) => step_masks::<B>(lengths, batch, time, &device)?,
            None => None,
        };
        let cells_n = self.num_layers * self.directions();
        let check_state = |state: &Tensor<B, 3>, what: &str, size: usize| {
            let expected = [cells_n, batch, size];
            if state.dims() != expected {
                return Err(Error::shape(
                    format!("{} initial {what} state", self.module),
                    format!("{expected:?} (num_layers * num_directions, batch, {what} size)"),
                    &state.dims(),
                ));
            }
            Ok(())
        };
        if let Some(h0) = &h0 {
            check_state(h0, "hidden", self.state_size())?;
        }
        if let Some(c0) = &c0 {
            check_state(c0, "cell", self.hidden_size)?;
        }
        let is_lstm = self.kind == CellKind::Lstm;
        let initial = |state: &Option<Tensor<B, 3>>, idx: usize, size: usize| match state {
            // [cells, batch, size] -> [batch, size]
            Some(s) => s.clone().slice([idx..idx + 1]).reshape([batch, size]),
            None => Tensor::zeros([batch, size], &device),
        };

        // Per-step inputs, each [batch, features]; later layers take the previous layer's steps
        // directly, so only the first layer slices its input.
        let mut steps: Vec<Tensor<B, 2>> = (0..time)
            .map(|t| {
                input
                    .clone()
                    .slice([0..batch, t..t + 1])
                    .reshape([batch, self.input_size])
            })
            .collect();
        let mut h_n = Vec::with_capacity(cells_n);
        let mut c_n = Vec::with_capacity(cells_n);
        for layer in 0..self.num_layers {
            let mut outputs: Vec<Vec<Tensor<B, 2>>> = Vec::with_capacity(self.directions());
            for dir in 0..self.directions() {
                let idx = layer * self.directions() + dir;
                let h = initial(&h0, idx, self.state_size());
                let c = is_lstm.then(|| initial(&c0, idx, self.hidden_size));
                let run = run_direction(self.kind, &cells[idx], &steps, masks.as_deref(), h, c, dir == 1);
                outputs.push(run.outputs);
                h_n.push(run.h);
                c_n.extend(run.c);
            }
            steps = if self.bidirectional {
                let reverse = outputs.pop().expect("two directions");
                let forward = outputs.pop().expect("two directions");
                forward
                    .into_iter()
                    .zip(reverse)
                    .map(|(f, r)| Tensor::cat(vec![f, r], 1))
                    .collect()
            } else {
                outputs.pop().expect("one direction")
            };
            // PyTorch applies dropout to the outputs of every layer but the last.
            if layer + 1 < self.num_layers {
                steps = steps.into_iter().map(|s| dropout.forward(s)).collect();
            }
        }
        // T x [batch, out] -> [batch, time, out]
        let output = Tensor::stack::<3>(steps, 1);
        let output = if self.batch_first {
            output
        } else {
            output.swap_dims(0, 1)
        };
        // cells x [batch, size] -> [cells, batch, size]
        let h_n = Tensor::stack::<3>(h_n, 0);
        let c_n = is_lstm.then(|| Tensor::stack::<3>(c_n, 0));
        Ok((output, h_n, c_n))
    }
}

/// Turns per-sequence lengths into one `[batch, 1]` mask per step (1 while `t < length`), or
/// `None` when every sequence is full length.
fn step_masks<B: Backend>(
    lengths: &[usize],
    batch: usize,
    time: usize,
    device: &B::Device,
) -> Result<Option<Vec<Tensor<B, 2>>>> {
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
    if lengths.iter().all(|&l| l == time) {
        return Ok(None);
    }
    let masks = (0..time)
        .map(|t| {
            let m: Vec<f32> = lengths.iter().map(|&l| if t < l { 1.0 } else { 0.0 }).collect();
            Tensor::from_data(TensorData::new(m, [batch, 1]), device)
        })
        .collect();
    Ok(Some(masks))
}

struct DirectionRun<B: Backend> {
    outputs: Vec<Tensor<B, 2>>,
    h: Tensor<B, 2>,
    c: Option<Tensor<B, 2>>,
}

/// One layer in one direction over the whole sequence.
fn run_direction<B: Backend>(
    kind: CellKind,
    cell: &RecurrentWeights<B>,
    steps: &[Tensor<B, 2>],
    masks: Option<&[Tensor<B, 2>]>,
    mut h: Tensor<B, 2>,
    mut c: Option<Tensor<B, 2>>,
    reverse: bool,
) -> DirectionRun<B> {
    let time = steps.len();
    let w_ih = cell.weight_ih.val().transpose(); // [I, G*H]
    let w_hh = cell.weight_hh.val().transpose(); // [R, G*H]
    let w_hr = cell.weight_hr.as_ref().map(|w| w.val().transpose()); // [H, P]
    let b_ih = cell.bias_ih.as_ref().map(|b| b.val().unsqueeze::<2>()); // [1, G*H]
    let b_hh = cell.bias_hh.as_ref().map(|b| b.val().unsqueeze::<2>()); // [1, G*H]
    // GRU keeps b_hn inside r * (W_hn h + b_hn); the other cells can add one summed bias.
    let (b_x, b_h) = match (kind, b_ih, b_hh) {
        (CellKind::Gru, bi, bh) => (bi, bh),
        (_, Some(bi), Some(bh)) => (Some(bi + bh), None),
        _ => (None, None),
    };
    let add = |t: Tensor<B, 2>, b: &Option<Tensor<B, 2>>| match b {
        Some(b) => t + b.clone(),
        None => t,
    };

    // Input projections. Without autodiff, one matmul over all steps; under autodiff, one per
    // step, because slicing a hoisted projection makes the backward pass materialise a
    // full-size gradient per step (quadratic in time).
    let device = h.device();
    let projections: Vec<Tensor<B, 2>> = if B::ad_enabled(&device) {
        steps
            .iter()
            .map(|x| add(x.clone().matmul(w_ih.clone()), &b_x))
            .collect()
    } else {
        let batch = h.dims()[0];
        // T x [batch, I] -> [T*batch, I] -> [T*batch, G*H]
        let all = add(Tensor::cat(steps.to_vec(), 0).matmul(w_ih.clone()), &b_x);
        let gh = all.dims()[1];
        (0..time)
            .map(|t| all.clone().slice([t * batch..(t + 1) * batch, 0..gh]))
            .collect()
    };

    let mut outputs: Vec<Option<Tensor<B, 2>>> = vec![None; time];
    for t in 0..time {
        let t = if reverse { time - 1 - t } else { t };
        let x = projections[t].clone();
        let hh = add(h.clone().matmul(w_hh.clone()), &b_h);
        let (h_new, c_new) = match kind {
            CellKind::RnnTanh => ((x + hh).tanh(), None),
            CellKind::RnnRelu => (relu(x + hh), None),
            CellKind::Lstm => {
                let [i, f, g, o] = chunk4(x + hh);
                let c_prev = c.clone().expect("LSTM has a cell state");
                let c_new = sigmoid(f) * c_prev + sigmoid(i) * g.tanh();
                let mut h_new = sigmoid(o) * c_new.clone().tanh();
                if let Some(w_hr) = &w_hr {
                    h_new = h_new.matmul(w_hr.clone());
                }
                (h_new, Some(c_new))
            }
            CellKind::Gru => {
                let [xr, xz, xn] = chunk3(x);
                let [hr, hz, hn] = chunk3(hh);
                let r = sigmoid(xr + hr);
                let z = sigmoid(xz + hz);
                let n = (xn + r * hn).tanh();
                // (1 - z) * n + z * h
                let h_new = n.clone() + z * (h.clone() - n);
                (h_new, None)
            }
        };
        match masks {
            Some(masks) => {
                let m = masks[t].clone(); // [batch, 1]
                outputs[t] = Some(h_new.clone() * m.clone());
                h = h.clone() + (h_new - h) * m.clone();
                c = c.zip(c_new).map(|(c, c_new)| c.clone() + (c_new - c) * m);
            }
            None => {
                outputs[t] = Some(h_new.clone());
                h = h_new;
                c = c_new;
            }
        }
    }
    DirectionRun {
        outputs: outputs.into_iter().map(|o| o.expect("every step ran")).collect(),
        h,
        c,
    }
}

/// `σ(x) = (1 + tanh(x / 2)) / 2`. burn 0.21's default `sigmoid` computes in f32 whatever the
/// backend's float type (it casts, then chains six ops), which breaks f64 gradient checks and costs
/// more passes over memory than this form.
fn sigmoid<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    (x * 0.5).tanh() * 0.5 + 0.5
}

fn chunk3<B: Backend>(t: Tensor<B, 2>) -> [Tensor<B, 2>; 3] {
    t.chunk(3, 1).try_into().ok().expect("three gates")
}

fn chunk4<B: Backend>(t: Tensor<B, 2>) -> [Tensor<B, 2>; 4] {
    t.chunk(4, 1).try_into().ok().expect("four gates")
}
