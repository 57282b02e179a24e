//! [`RecurrentWeights`]: the parameters of one layer and one direction, laid out as PyTorch's.

use burn::module::{Initializer, Module, Param};
use burn::tensor::{Tensor, backend::Backend};

use crate::Result;
use crate::backend::SequenceWeights;
use crate::io::WeightPath;

/// The parameters of one layer in one direction of an [`Rnn`](crate::nn::Rnn),
/// [`Lstm`](crate::nn::Lstm) or [`Gru`](crate::nn::Gru), with PyTorch's fused gate layout.
///
/// `G` is the number of gates (1 for RNN, 4 for LSTM in the order i, f, g, o, 3 for GRU in the
/// order r, z, n), `H` the hidden size, `I` this layer's input size and `R` the size of the
/// recurrent state (`H`, or `proj_size` for a projected LSTM).
#[derive(Module, Debug)]
pub struct RecurrentWeights<B: Backend> {
    /// `weight_ih_l{k}`: `[G*H, I]`.
    pub weight_ih: Param<Tensor<B, 2>>,
    /// `weight_hh_l{k}`: `[G*H, R]`.
    pub weight_hh: Param<Tensor<B, 2>>,
    /// `bias_ih_l{k}`: `[G*H]`, absent when the layer has no bias.
    pub bias_ih: Option<Param<Tensor<B, 1>>>,
    /// `bias_hh_l{k}`: `[G*H]`, absent when the layer has no bias.
    pub bias_hh: Option<Param<Tensor<B, 1>>>,
    /// `weight_hr_l{k}`: `[P, H]`, the LSTM output projection when `proj_size > 0`.
    pub weight_hr: Option<Param<Tensor<B, 2>>>,
}

/// Sizes of one layer-direction, used to build and to name its parameters.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WeightShapes {
    pub gates: usize,
    pub hidden: usize,
    pub input: usize,
    pub proj: usize,
    pub bias: bool,
}

impl WeightShapes {
    /// Size of the recurrent state fed back into `weight_hh`.
    pub fn recurrent(&self) -> usize {
        if self.proj > 0 { self.proj } else { self.hidden }
    }

    /// PyTorch's key suffix for layer `layer`, direction `reverse`: `l0`, `l1_reverse`, ...
    pub fn suffix(layer: usize, reverse: bool) -> String {
        if reverse {
            format!("l{layer}_reverse")
        } else {
            format!("l{layer}")
        }
    }

    /// Builds the parameters with `init`, or PyTorch's `U(-1/sqrt(H), 1/sqrt(H))` when `None`.
    pub fn init<B: Backend>(&self, init: Option<&Initializer>, device: &B::Device) -> RecurrentWeights<B> {
        let k = 1.0 / (self.hidden as f64).sqrt();
        let default = Initializer::Uniform { min: -k, max: k };
        let init = init.unwrap_or(&default);
        let gh = self.gates * self.hidden;
        let w = |rows: usize, cols: usize| init.init_with([rows, cols], Some(cols), Some(rows), device);
        let b = || init.init_with([gh], Some(self.recurrent()), Some(gh), device);
        RecurrentWeights {
            weight_ih: w(gh, self.input),
            weight_hh: w(gh, self.recurrent()),
            bias_ih: self.bias.then(b),
            bias_hh: self.bias.then(b),
            weight_hr: (self.proj > 0).then(|| w(self.proj, self.hidden)),
        }
    }
}

impl<B: Backend> RecurrentWeights<B> {
    /// The current values, as the recurrence takes them.
    pub fn values(&self) -> SequenceWeights<B> {
        SequenceWeights {
            weight_ih: self.weight_ih.val(),
            bias_ih: self.bias_ih.as_ref().map(|b| b.val()),
            weight_hh: self.weight_hh.val(),
            bias_hh: self.bias_hh.as_ref().map(|b| b.val()),
            weight_hr: self.weight_hr.as_ref().map(|w| w.val()),
        }
    }

    /// Names this layer-direction's tensors: PyTorch's `{name}_{suffix}` (`weight_ih_l0`, ...).
    pub(crate) fn visit(&mut self, w: &mut WeightPath<'_, '_>, suffix: &str) -> Result<()> {
        w.tensor(&format!("weight_ih_{suffix}"), &mut self.weight_ih)?;
        w.tensor(&format!("weight_hh_{suffix}"), &mut self.weight_hh)?;
        w.optional(&format!("bias_ih_{suffix}"), &mut self.bias_ih)?;
        w.optional(&format!("bias_hh_{suffix}"), &mut self.bias_hh)?;
        w.optional(&format!("weight_hr_{suffix}"), &mut self.weight_hr)
    }
}
