//! The backend extension behind the recurrent layers: whole-sequence recurrent operations with
//! their own backward pass.
//!
//! Every module in ember-lm is generic over [`Backend`], which extends burn's
//! [`Backend`](burn::tensor::backend::Backend) with one operation: run one layer of an RNN, LSTM or
//! GRU in one direction over a whole sequence ([`Backend::recurrent_sequence`]). How a backend does
//! it decides how fast the recurrent layers are:
//!
//! | backend | forward | backward (under `Autodiff`) |
//! |---|---|---|
//! | `NdArray`, `Flex` | fused CPU kernel: one GEMM for the input projection, one per step, gate math in one pass per step, no per-step allocation | hand-written backpropagation through time in one loop; the weight gradients are one GEMM each over all steps |
//! | `Wgpu` | composition of burn tensor ops, data stays on the device | hand-written backpropagation through time in tensor ops ([`device_sequence_saved`]): one autodiff node, weight gradients as one matmul each |
//! | any other backend | composition of burn tensor ops (the fallback) | autodiff through the composition |
//!
//! ## Adding a backend
//! Any burn backend works once it implements this trait; the defaults need nothing:
//!
//! ```ignore
//! impl ember_lm::Backend for MyBackend {}
//! ```
//!
//! A CPU backend gets the fused kernel by delegating to [`host_sequence`] and
//! [`host_sequence_saved`]:
//!
//! ```ignore
//! impl ember_lm::Backend for MyCpuBackend {
//!     fn recurrent_sequence(args: SequenceArgs<Self>) -> SequenceOutput<Self> {
//!         ember_lm::backend::host_sequence(args)
//!     }
//!     fn recurrent_sequence_saved(args: SequenceArgs<Self>) -> Option<(SequenceOutput<Self>, SavedSequence<Self>)> {
//!         Some(ember_lm::backend::host_sequence_saved(args))
//!     }
//! }
//! ```
//!
//! A backend with another fast recurrence overrides [`Backend::recurrent_sequence`] (inference) and
//! [`Backend::recurrent_sequence_saved`] (training: return the outputs and what the backward pass
//! needs); `Autodiff<MyBackend>` then differentiates through
//! [`Backend::recurrent_sequence_backward`]. Autodiff wrappers are covered by a blanket
//! implementation.
pub mod activation;
pub mod adamw;
pub mod attention;
mod autodiff;
mod composed;
pub mod cross_entropy;
pub mod ctc;
mod device;
mod host;
mod impls;
pub mod norm;
mod saved;

use burn::tensor::Tensor;

pub use composed::forward as composed_sequence;
pub use device::device_sequence_saved;
pub use saved::SavedSequence;

pub use activation::{Activation, ActivationArgs, composed_activation, composed_activation_backward};
pub use adamw::{AdamWArgs, AdamWOutput};
pub use cross_entropy::{CrossEntropyArgs, composed_cross_entropy, composed_cross_entropy_backward};
pub use ctc::{CtcArgs, composed_ctc, host_ctc, host_ctc_nll};
pub use norm::{NormArgs, NormGrads, NormKind, NormStats, composed_norm, composed_norm_backward};

pub use attention::{
    AttentionArgs, AttentionDims, AttentionDropout, AttentionGrads, composed_attention,
    composed_attention_dropped, saved_attention_backward,
};

/// The CPU row kernels (norm, bias + activation, cross-entropy), forward and backward, for
/// backends whose tensors live in host memory; the implementations of the `Backend` methods of
/// the same names.
pub mod host_rows {
    pub use super::host::activation::{backward as bias_activation_backward, forward as bias_activation};
    pub use super::host::adamw::step as adamw_step;
    pub use super::host::cross_entropy::{backward as cross_entropy_backward, forward as cross_entropy};
    pub use super::host::norm::{backward as norm_backward, forward as norm};
}

/// The CPU attention kernel as a [`Backend::sdpa`] implementation (host memory backends).
pub fn host_attention<B: Backend>(args: AttentionArgs<B>) -> Tensor<B, 4> {
    // A few queries (a decoding step) are too little work for the tiles to pay for their
    // set-up and copies: burn's own op reads the cache's views in place.
    if args.dims().queries < 8 && args.dropout.is_none() {
        return composed_attention(args);
    }
    host::attention::forward(args, false).0
}

/// The CPU attention kernel as a [`Backend::sdpa_saved`] implementation: the output and
/// the log-sum-exp `[B, H, Tq]`.
pub fn host_attention_saved<B: Backend>(args: AttentionArgs<B>) -> (Tensor<B, 4>, Tensor<B, 3>) {
    let (out, lse) = host::attention::forward(args, true);
    (out, lse.expect("saved on request"))
}

/// The CPU attention kernel's backward, a [`Backend::sdpa_backward`] implementation.
pub fn host_attention_backward<B: Backend>(
    args: AttentionArgs<B>,
    output: Tensor<B, 4>,
    lse: Tensor<B, 3>,
    grad: Tensor<B, 4>,
) -> AttentionGrads<B> {
    host::attention::backward(args, output, lse, grad)
}

/// The fused CPU kernel as a [`Backend::recurrent_sequence`] implementation, for any backend
/// whose tensors live in host memory (it reads them with [`Backend::host_data`]).
pub fn host_sequence<B: Backend>(args: SequenceArgs<B>) -> SequenceOutput<B> {
    host::forward(args, false).0
}

/// The fused CPU kernel as a [`Backend::recurrent_sequence_saved`] implementation; its backward
/// is the default [`Backend::recurrent_sequence_backward`].
pub fn host_sequence_saved<B: Backend>(args: SequenceArgs<B>) -> (SequenceOutput<B>, SavedSequence<B>) {
    let (out, saved) = host::forward(args, true);
    (out, saved.expect("saved on request"))
}

/// The recurrent cell, PyTorch's module and options: the one cell enum of the crate, in configs
/// ([`RecurrentConfig`](crate::nn::RecurrentConfig), the task models) and in the kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CellType {
    /// Elman RNN with `tanh` (`nn.RNN`).
    RnnTanh,
    /// Elman RNN with `relu` (`nn.RNN(nonlinearity="relu")`).
    RnnRelu,
    /// `nn.LSTM`, gates in PyTorch's order i, f, g, o.
    Lstm,
    /// `nn.GRU`, gates in PyTorch's order r, z, n.
    Gru,
}

impl CellType {
    /// Number of gates `G` (rows of the fused weights are `G * hidden`).
    pub fn gates(self) -> usize {
        match self {
            Self::RnnTanh | Self::RnnRelu => 1,
            Self::Lstm => 4,
            Self::Gru => 3,
        }
    }
}

/// One layer in one direction over a whole sequence, in PyTorch's parameter layout.
///
/// # Shapes
/// `T` time, `N` batch, `I` input, `H` hidden, `G` gates, `R` state size (`H`, or `P` with an LSTM
/// projection).
/// - `input`: `[N, T, I]` (batch-major)
/// - `weight_ih`: `[G*H, I]`, `bias_ih`: `[G*H]`, `weight_hh`: `[G*H, R]`, `bias_hh`: `[G*H]`,
///   `weight_hr`: `[P, H]`
/// - `h0`: `[N, R]`, `c0`: `[N, H]` (LSTM only)
/// - `lengths`: `N` lengths in `1..=T`, or `None` for full-length sequences
#[derive(Clone, Debug)]
pub struct SequenceArgs<B: burn::tensor::backend::Backend> {
    /// The cell.
    pub kind: CellType,
    /// Input sequence, batch-major.
    pub input: Tensor<B, 3>,
    /// The layer-direction's weights.
    pub weights: SequenceWeights<B>,
    /// Initial hidden state.
    pub h0: Tensor<B, 2>,
    /// Initial cell state (LSTM).
    pub c0: Option<Tensor<B, 2>>,
    /// Per-sequence lengths.
    pub lengths: Option<Vec<usize>>,
    /// Walk from `T - 1` down to 0 (the reverse direction of a bidirectional layer).
    pub reverse: bool,
}

/// One layer-direction's weights as tensors, in PyTorch's fused layout (the values of a
/// [`RecurrentWeights`](crate::nn::RecurrentWeights)); shapes as in [`SequenceArgs`].
#[derive(Clone, Debug)]
pub struct SequenceWeights<B: burn::tensor::backend::Backend> {
    /// Input-to-hidden weights.
    pub weight_ih: Tensor<B, 2>,
    /// Input-to-hidden bias.
    pub bias_ih: Option<Tensor<B, 1>>,
    /// Hidden-to-hidden weights.
    pub weight_hh: Tensor<B, 2>,
    /// Hidden-to-hidden bias.
    pub bias_hh: Option<Tensor<B, 1>>,
    /// LSTM output projection.
    pub weight_hr: Option<Tensor<B, 2>>,
}

/// The sizes of one layer-direction, read once from the arguments' shapes so that no kernel works
/// them out again (`hidden` is `weight_hh`'s rows over the cell's gate count).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SequenceDims {
    /// `N`, sequences in the batch.
    pub batch: usize,
    /// `T`, steps.
    pub time: usize,
    /// `I`, input features.
    pub input: usize,
    /// `H`, the cell's width (the LSTM's cell state, every gate).
    pub hidden: usize,
    /// `R`, the recurrent state's width: `proj` for a projected LSTM, else `hidden`.
    pub state: usize,
    /// `P`, the LSTM projection's width (0 without one).
    pub proj: usize,
    /// `G`, gates per cell: 4 (LSTM), 3 (GRU), 1 (RNN).
    pub gates: usize,
}

impl SequenceDims {
    /// `G·H`, the rows of `weight_ih` and `weight_hh`.
    pub fn gates_hidden(&self) -> usize {
        self.gates * self.hidden
    }
}

impl<B: burn::tensor::backend::Backend> SequenceArgs<B> {
    /// The sizes of this layer-direction.
    pub fn dims(&self) -> SequenceDims {
        let [batch, time, input] = self.input.dims();
        let [gh, state] = self.weights.weight_hh.dims();
        let gates = self.kind.gates();
        SequenceDims {
            batch,
            time,
            input,
            hidden: gh / gates,
            state,
            proj: self.weights.weight_hr.as_ref().map_or(0, |w| w.dims()[0]),
            gates,
        }
    }
}

impl<B: burn::tensor::backend::AutodiffBackend> SequenceArgs<B> {
    /// The same arguments on the inner backend, off the autodiff graph.
    pub fn inner(&self) -> SequenceArgs<B::InnerBackend> {
        let w = &self.weights;
        SequenceArgs {
            kind: self.kind,
            input: self.input.clone().inner(),
            weights: SequenceWeights {
                weight_ih: w.weight_ih.clone().inner(),
                bias_ih: w.bias_ih.clone().map(Tensor::inner),
                weight_hh: w.weight_hh.clone().inner(),
                bias_hh: w.bias_hh.clone().map(Tensor::inner),
                weight_hr: w.weight_hr.clone().map(Tensor::inner),
            },
            h0: self.h0.clone().inner(),
            c0: self.c0.clone().map(Tensor::inner),
            lengths: self.lengths.clone(),
            reverse: self.reverse,
        }
    }
}

/// What [`Backend::recurrent_sequence`] returns.
///
/// # Shapes
/// - `output`: `[N, T, R]`, zero at padded steps
/// - `h_n`: `[N, R]`, `c_n`: `[N, H]` (LSTM), the state at each sequence's last real step
#[derive(Clone, Debug)]
pub struct SequenceOutput<B: burn::tensor::backend::Backend> {
    /// Hidden state after every step.
    pub output: Tensor<B, 3>,
    /// Final hidden state.
    pub h_n: Tensor<B, 2>,
    /// Final cell state (LSTM).
    pub c_n: Option<Tensor<B, 2>>,
}

/// Gradients of a loss with respect to a [`SequenceOutput`], the input of the backward pass.
#[derive(Clone, Debug)]
pub struct SequenceOutputGrads<B: burn::tensor::backend::Backend> {
    /// `[N, T, R]`.
    pub output: Tensor<B, 3>,
    /// `[N, R]`.
    pub h_n: Tensor<B, 2>,
    /// `[N, H]` (LSTM).
    pub c_n: Option<Tensor<B, 2>>,
    /// Whether the gradient with respect to the input is needed (it costs one GEMM).
    pub need_input: bool,
}

/// Gradients with respect to every [`SequenceArgs`] tensor (the same shapes); `None` where the
/// argument is absent or its gradient was not asked for.
#[derive(Clone, Debug)]
pub struct SequenceGrads<B: burn::tensor::backend::Backend> {
    /// d input.
    pub input: Option<Tensor<B, 3>>,
    /// d weight_ih.
    pub weight_ih: Tensor<B, 2>,
    /// d bias_ih.
    pub bias_ih: Option<Tensor<B, 1>>,
    /// d weight_hh.
    pub weight_hh: Tensor<B, 2>,
    /// d bias_hh.
    pub bias_hh: Option<Tensor<B, 1>>,
    /// d weight_hr.
    pub weight_hr: Option<Tensor<B, 2>>,
    /// d h0.
    pub h0: Tensor<B, 2>,
    /// d c0.
    pub c0: Option<Tensor<B, 2>>,
}

/// A backend to train on: burn's autodiff over an ember-lm [`Backend`], itself one. Every task,
/// trainer helper and example takes `B: TrainBackend` instead of spelling out
/// `B: AutodiffBackend + Backend` with `B::InnerBackend: Backend`; it is implemented for every
/// such `B` (`Autodiff<NdArray>`, `Autodiff<Flex>`, `Autodiff<Wgpu>`, ...).
pub trait TrainBackend: burn::tensor::backend::AutodiffBackend<InnerBackend: Backend> + Backend {}

impl<B> TrainBackend for B
where
    B: burn::tensor::backend::AutodiffBackend + Backend,
    B::InnerBackend: Backend,
{
}

/// burn's [`Backend`](burn::tensor::backend::Backend) plus the whole-sequence recurrent operation:
/// the bound of every ember-lm module. Implemented for `NdArray`, `Flex`, `Wgpu` (with the
/// features of the same names) and for `Autodiff` of any of them; see the [module docs](self).
pub trait Backend: burn::tensor::backend::Backend {
    /// Runs one layer in one direction over a whole sequence. The default composes burn tensor
    /// ops (one recurrent matmul and the gate arithmetic per step), which any backend can run and
    /// autodiff can differentiate.
    fn recurrent_sequence(args: SequenceArgs<Self>) -> SequenceOutput<Self> {
        composed::forward(args)
    }

    /// Like [`recurrent_sequence`](Self::recurrent_sequence), also returning what
    /// [`recurrent_sequence_backward`](Self::recurrent_sequence_backward) needs. `None` (the
    /// default) means the backend has no fused backward: autodiff then differentiates the
    /// composition op by op.
    fn recurrent_sequence_saved(
        args: SequenceArgs<Self>,
    ) -> Option<(SequenceOutput<Self>, SavedSequence<Self>)> {
        let _ = args;
        None
    }

    /// Reads a float tensor back to host memory, for the host kernel. The default is
    /// [`Tensor::into_data`]; a backend overrides it where that is slow (burn-ndarray copies a
    /// shared array element by element).
    fn host_data<const D: usize>(tensor: Tensor<Self, D>) -> burn::tensor::TensorData {
        tensor.into_data()
    }

    /// Backpropagation through time for a [`recurrent_sequence_saved`](Self::recurrent_sequence_saved)
    /// call: one loop over the steps in reverse, then one GEMM per weight gradient.
    fn recurrent_sequence_backward(
        saved: SavedSequence<Self>,
        grads: SequenceOutputGrads<Self>,
    ) -> SequenceGrads<Self> {
        saved::backward(saved, grads)
    }

    /// Scaled dot-product attention over every head ([`AttentionArgs`] has the shapes and
    /// masks). The default is [`composed_attention`]: burn's `attention` op, or the explicit
    /// softmax when dropout is on.
    fn sdpa(args: AttentionArgs<Self>) -> Tensor<Self, 4> {
        attention::composed_attention(args)
    }

    /// Like [`sdpa`](Self::sdpa), also returning the log-sum-exp of every query's
    /// scores `[B, H, Tq]` (`+inf` where a query sees no key), which
    /// [`sdpa_backward`](Self::sdpa_backward) needs. `None` (the default): autodiff
    /// differentiates the composition.
    fn sdpa_saved(args: AttentionArgs<Self>) -> Option<(Tensor<Self, 4>, Tensor<Self, 3>)> {
        let _ = args;
        None
    }

    /// The gradients of query, key and value for an [`sdpa_saved`](Self::sdpa_saved)
    /// call, given the output's gradient. The default is [`saved_attention_backward`], the same
    /// equations in tensor ops on whole `[B, H, Tq, Tk]` matrices.
    fn sdpa_backward(
        args: AttentionArgs<Self>,
        output: Tensor<Self, 4>,
        lse: Tensor<Self, 3>,
        grad: Tensor<Self, 4>,
    ) -> AttentionGrads<Self> {
        attention::saved_attention_backward(args, output, lse, grad)
    }

    /// Whether this backend has its own kernels for [`norm`](Self::norm),
    /// [`bias_activation`](Self::bias_activation) and [`cross_entropy`](Self::cross_entropy)
    /// with their backwards. `false` (the default): autodiff differentiates their compositions
    /// op by op.
    fn fused_row_ops() -> bool {
        false
    }

    /// Layer norm or RMS norm over the rows of `[N, D]`, and the statistics its backward needs.
    /// The default is [`composed_norm`].
    fn norm(args: NormArgs<Self>) -> (Tensor<Self, 2>, NormStats<Self>) {
        norm::composed_norm(args)
    }

    /// The gradients of a [`norm`](Self::norm) call. The default is [`composed_norm_backward`].
    fn norm_backward(args: NormArgs<Self>, stats: NormStats<Self>, grad: Tensor<Self, 2>) -> NormGrads<Self> {
        norm::composed_norm_backward(args, stats, grad)
    }

    /// `act(x + b)` over `[N, F]`. The default is [`composed_activation`].
    fn bias_activation(args: ActivationArgs<Self>) -> Tensor<Self, 2> {
        activation::composed_activation(args)
    }

    /// The gradients of input and bias of a [`bias_activation`](Self::bias_activation) call.
    /// The default is [`composed_activation_backward`].
    fn bias_activation_backward(
        args: ActivationArgs<Self>,
        grad: Tensor<Self, 2>,
    ) -> (Tensor<Self, 2>, Option<Tensor<Self, 1>>) {
        activation::composed_activation_backward(args, grad)
    }

    /// Mean cross-entropy from logits, and every row's log-sum-exp `[N]`. The default is
    /// [`composed_cross_entropy`].
    fn cross_entropy(args: CrossEntropyArgs<Self>) -> (Tensor<Self, 1>, Tensor<Self, 1>) {
        cross_entropy::composed_cross_entropy(args)
    }

    /// The logits' gradient of a [`cross_entropy`](Self::cross_entropy) call. The default is
    /// [`composed_cross_entropy_backward`].
    fn cross_entropy_backward(
        args: CrossEntropyArgs<Self>,
        lse: Tensor<Self, 1>,
        grad: Tensor<Self, 1>,
    ) -> Tensor<Self, 2> {
        cross_entropy::composed_cross_entropy_backward(args, lse, grad)
    }

    /// The CTC loss of every utterance `[N]` (see [`CtcArgs`]). The default is
    /// [`composed_ctc`]; the CPU backends run their kernel, and `Autodiff` makes it one node
    /// whose gradient is the kernel's.
    fn ctc_nll(args: CtcArgs<Self>) -> Tensor<Self, 1> {
        match Self::ctc_nll_grad(args.clone()) {
            Some((loss, _)) => loss,
            None => composed_ctc(args),
        }
    }

    /// The CTC losses `[N]` and PyTorch's gradient of each with respect to the
    /// log-probabilities `[N, T, C]`, when the backend has a kernel for it. Default `None`.
    fn ctc_nll_grad(args: CtcArgs<Self>) -> Option<(Tensor<Self, 1>, Tensor<Self, 3>)> {
        let _ = args;
        None
    }

    /// One AdamW step over one flattened parameter, bitwise equal to burn-optim's `AdamW`.
    /// `None` (the default): the optimizer runs burn-optim's chain of tensor ops instead.
    fn adamw_step(args: AdamWArgs<Self>) -> Option<AdamWOutput<Self>> {
        let _ = args;
        None
    }
}
