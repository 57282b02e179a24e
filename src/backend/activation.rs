//! A bias add and an activation as one backend operation (`act(x + b)`, the first half of a
//! Transformer's feed-forward block): the CPU backends run one pass forward and one backward;
//! the others compose tensor ops.

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::activation::relu;
use burn::tensor::{Tensor, TensorPrimitive};

use super::Backend;

/// The activations of Transformer feed-forward blocks, with PyTorch's definitions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// `max(x, 0)`; gradient 0 at 0, as PyTorch.
    Relu,
    /// Exact GELU, `x/2 (1 + erf(x / sqrt 2))`.
    Gelu,
    /// GELU's tanh approximation, `x/2 (1 + tanh(sqrt(2/π) (x + 0.044715 x³)))`.
    GeluTanh,
}

/// `sqrt(2 / π)`.
pub(crate) const GELU_TANH_C: f64 = 0.797_884_560_802_865_4;

/// The arguments of [`Backend::bias_activation`].
///
/// # Shapes
/// - `input`: `[N, F]`; output the same
/// - `bias`: `[F]`
#[derive(Clone, Debug)]
pub struct ActivationArgs<B: burn::tensor::backend::Backend> {
    /// Pre-activations, before the bias.
    pub input: Tensor<B, 2>,
    /// Added to every row first.
    pub bias: Option<Tensor<B, 1>>,
    /// The activation.
    pub activation: Activation,
}

impl<B: burn::tensor::backend::AutodiffBackend> ActivationArgs<B> {
    /// The same arguments on the inner backend, off the autodiff graph.
    pub fn inner(&self) -> ActivationArgs<B::InnerBackend> {
        ActivationArgs {
            input: self.input.clone().inner(),
            bias: self.bias.clone().map(Tensor::inner),
            activation: self.activation,
        }
    }
}

/// The tensor-op composition of [`Backend::bias_activation`], which autodiff differentiates
/// exactly (burn 0.21's own `gelu` backward is the tanh approximation's derivative).
pub fn composed_activation<B: burn::tensor::backend::Backend>(args: ActivationArgs<B>) -> Tensor<B, 2> {
    let x = match args.bias {
        Some(b) => args.input + b.unsqueeze::<2>(),
        None => args.input,
    };
    match args.activation {
        Activation::Relu => relu(x),
        Activation::Gelu => x.clone() * 0.5 * ((x / std::f64::consts::SQRT_2).erf() + 1.0),
        Activation::GeluTanh => {
            let inner = (x.clone() + x.clone().powi_scalar(3) * 0.044715) * GELU_TANH_C;
            x * 0.5 * (inner.tanh() + 1.0)
        }
    }
}

/// The gradients of input and bias in tensor ops: `dx = dy act'(x + b)`, `db = Σ_rows dx`.
pub fn composed_activation_backward<B: burn::tensor::backend::Backend>(
    args: ActivationArgs<B>,
    grad: Tensor<B, 2>,
) -> (Tensor<B, 2>, Option<Tensor<B, 1>>) {
    let has_bias = args.bias.is_some();
    let x = match args.bias {
        Some(b) => args.input + b.unsqueeze::<2>(),
        None => args.input,
    };
    let slope = match args.activation {
        Activation::Relu => x.greater_elem(0.0).float(),
        Activation::Gelu => {
            // Φ(x) + x φ(x)
            let cdf = ((x.clone() / std::f64::consts::SQRT_2).erf() + 1.0) * 0.5;
            let pdf = (x.clone().powi_scalar(2) * -0.5).exp() / (2.0 * std::f64::consts::PI).sqrt();
            cdf + x * pdf
        }
        Activation::GeluTanh => {
            let t = ((x.clone() + x.clone().powi_scalar(3) * 0.044715) * GELU_TANH_C).tanh();
            let du = (x.clone().powi_scalar(2) * (3.0 * 0.044715) + 1.0) * GELU_TANH_C;
            (t.clone() + 1.0) * 0.5 + x * 0.5 * (t.powi_scalar(2).neg() + 1.0) * du
        }
    };
    let dx = grad * slope;
    let db = has_bias.then(|| dx.clone().sum_dim(0).reshape([-1]));
    (dx, db)
}

#[derive(Debug)]
struct ActivationBackward;

impl<B: Backend> Backward<B, 2> for ActivationBackward {
    type State = ActivationArgs<B>;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [input, bias] = ops.parents;
        let grad = Tensor::<B, 2>::from_primitive(TensorPrimitive::Float(grads.consume::<B>(&ops.node)));
        let (dx, db) = B::bias_activation_backward(ops.state, grad);
        if let Some(node) = input {
            grads.register::<B>(node.id, dx.into_primitive().tensor());
        }
        if let (Some(node), Some(db)) = (bias, db) {
            grads.register::<B>(node.id, db.into_primitive().tensor());
        }
    }
}

/// [`Backend::bias_activation`] for `Autodiff<B>`: one node when `B` has the fused kernels.
pub(super) fn autodiff_activation<B: Backend, C: CheckpointStrategy>(
    args: ActivationArgs<Autodiff<B, C>>,
) -> Tensor<Autodiff<B, C>, 2> {
    if !B::fused_row_ops() {
        return composed_activation(args);
    }
    let input = args.input.clone().into_primitive().tensor().node;
    let bias = match &args.bias {
        Some(b) => b.clone().into_primitive().tensor().node,
        // An untracked stand-in: its parent slot stays empty.
        None => {
            Tensor::<Autodiff<B, C>, 2>::from_inner(args.input.clone().inner())
                .into_primitive()
                .tensor()
                .node
        }
    };
    let inner = args.inner();
    let y = B::bias_activation(inner.clone()).into_primitive().tensor();
    let output = match ActivationBackward
        .prepare::<C>([input, bias])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(inner, y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    Tensor::from_primitive(TensorPrimitive::Float(output))
}
