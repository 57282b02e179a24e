//! Layer norm and RMS norm over the last axis as one backend operation: the CPU backends run a
//! row kernel forward and backward; the others compose tensor ops.

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::{Tensor, TensorPrimitive};

use super::Backend;

/// Which normalisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NormKind {
    /// `(x - mean) / sqrt(var + eps)`, biased variance (`torch.nn.LayerNorm`).
    Layer,
    /// `x / sqrt(mean(x²) + eps)` (`torch.nn.RMSNorm`, Llama's norm).
    Rms,
}

/// The arguments of [`Backend::norm`].
///
/// # Shapes
/// - `input`: `[N, D]` (rows normalised independently); output the same
/// - `weight`, `bias`: `[D]`
#[derive(Clone, Debug)]
pub struct NormArgs<B: burn::tensor::backend::Backend> {
    /// Rows to normalise.
    pub input: Tensor<B, 2>,
    /// Scale.
    pub weight: Tensor<B, 1>,
    /// Shift (layer norm only; `None` for none).
    pub bias: Option<Tensor<B, 1>>,
    /// Added to the variance (or mean square).
    pub eps: f64,
    /// Layer or RMS norm.
    pub kind: NormKind,
}

/// Per-row statistics a norm's backward needs: `mean` (zeros for RMS) and `rstd`, the reciprocal
/// of the standard deviation (or root mean square), each `[N]`.
#[derive(Clone, Debug)]
pub struct NormStats<B: burn::tensor::backend::Backend> {
    /// `[N]`.
    pub mean: Tensor<B, 1>,
    /// `[N]`.
    pub rstd: Tensor<B, 1>,
}

/// Gradients of a norm's input, weight and bias.
#[derive(Clone, Debug)]
pub struct NormGrads<B: burn::tensor::backend::Backend> {
    /// `[N, D]`.
    pub input: Tensor<B, 2>,
    /// `[D]`.
    pub weight: Tensor<B, 1>,
    /// `[D]`, when the norm has a bias.
    pub bias: Option<Tensor<B, 1>>,
}

impl<B: burn::tensor::backend::AutodiffBackend> NormArgs<B> {
    /// The same arguments on the inner backend, off the autodiff graph.
    pub fn inner(&self) -> NormArgs<B::InnerBackend> {
        NormArgs {
            input: self.input.clone().inner(),
            weight: self.weight.clone().inner(),
            bias: self.bias.clone().map(Tensor::inner),
            eps: self.eps,
            kind: self.kind,
        }
    }
}

impl<B: burn::tensor::backend::AutodiffBackend> NormStats<B> {
    /// The same statistics on the inner backend.
    pub fn inner(&self) -> NormStats<B::InnerBackend> {
        NormStats {
            mean: self.mean.clone().inner(),
            rstd: self.rstd.clone().inner(),
        }
    }
}

/// The normalised rows before scale and shift, and the statistics.
fn normalised<B: burn::tensor::backend::Backend>(args: &NormArgs<B>) -> (Tensor<B, 2>, NormStats<B>) {
    let x = args.input.clone();
    let [n, _] = x.dims();
    let (centred, mean, var) = match args.kind {
        NormKind::Layer => {
            let mean = x.clone().mean_dim(1); // [N, 1]
            let centred = x - mean.clone();
            let var = centred.clone().powi_scalar(2).mean_dim(1);
            (centred, mean, var)
        }
        NormKind::Rms => {
            let ms = x.clone().powi_scalar(2).mean_dim(1);
            (x, ms.zeros_like(), ms)
        }
    };
    let rstd = (var + args.eps).sqrt().recip(); // [N, 1]
    let stats = NormStats {
        mean: mean.reshape([n]),
        rstd: rstd.clone().reshape([n]),
    };
    (centred * rstd, stats)
}

/// The tensor-op composition of [`Backend::norm`], which any backend runs and autodiff
/// differentiates.
pub fn composed_norm<B: burn::tensor::backend::Backend>(args: NormArgs<B>) -> (Tensor<B, 2>, NormStats<B>) {
    let (xhat, stats) = normalised(&args);
    let y = xhat * args.weight.unsqueeze::<2>();
    let y = match args.bias {
        Some(b) => y + b.unsqueeze::<2>(),
        None => y,
    };
    (y, stats)
}

/// The norm's backward in tensor ops, from the statistics:
/// `dx = rstd (g - mean(g) - x̂ mean(g x̂))` with `g = dy w` (no `mean(g)` term for RMS).
pub fn composed_norm_backward<B: burn::tensor::backend::Backend>(
    args: NormArgs<B>,
    stats: NormStats<B>,
    grad: Tensor<B, 2>,
) -> NormGrads<B> {
    let [n, _] = grad.dims();
    let (mean, rstd) = (stats.mean.reshape([n, 1]), stats.rstd.reshape([n, 1]));
    let xhat = (args.input - mean) * rstd.clone();
    let g = grad.clone() * args.weight.unsqueeze::<2>();
    let mut inner = g.clone() - xhat.clone() * (g.clone() * xhat.clone()).mean_dim(1);
    if args.kind == NormKind::Layer {
        inner = inner - g.mean_dim(1);
    }
    NormGrads {
        input: inner * rstd,
        weight: (grad.clone() * xhat).sum_dim(0).reshape([-1]),
        bias: args.bias.map(|_| grad.sum_dim(0).reshape([-1])),
    }
}

/// A norm's output and its statistics.
type Normed<B> = (Tensor<B, 2>, NormStats<B>);

#[derive(Debug)]
struct NormBackward;

impl<B: Backend> Backward<B, 3> for NormBackward {
    type State = (NormArgs<B>, NormStats<B>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [input, weight, bias] = ops.parents;
        let (args, stats) = ops.state;
        let grad = Tensor::<B, 2>::from_primitive(TensorPrimitive::Float(grads.consume::<B>(&ops.node)));
        let result = B::norm_backward(args, stats, grad);
        if let Some(node) = input {
            grads.register::<B>(node.id, result.input.into_primitive().tensor());
        }
        if let Some(node) = weight {
            grads.register::<B>(node.id, result.weight.into_primitive().tensor());
        }
        if let (Some(node), Some(b)) = (bias, result.bias) {
            grads.register::<B>(node.id, b.into_primitive().tensor());
        }
    }
}

/// [`Backend::norm`] for `Autodiff<B>`: one node when `B` has the fused kernels.
pub(super) fn autodiff_norm<B: Backend, C: CheckpointStrategy>(
    args: NormArgs<Autodiff<B, C>>,
) -> Normed<Autodiff<B, C>> {
    if !B::fused_row_ops() {
        return composed_norm(args);
    }
    let node = |t: &Tensor<Autodiff<B, C>, 1>| t.clone().into_primitive().tensor().node;
    let untracked = || {
        let inner = args.weight.clone().inner();
        node(&Tensor::from_inner(inner))
    };
    let nodes = [
        args.input.clone().into_primitive().tensor().node,
        node(&args.weight),
        args.bias.as_ref().map_or_else(untracked, node),
    ];
    let inner = args.inner();
    let (y, stats) = B::norm(inner.clone());
    let output = match NormBackward.prepare::<C>(nodes).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish((inner, stats.clone()), y.into_primitive().tensor()),
        OpsKind::UnTracked(prep) => prep.finish(y.into_primitive().tensor()),
    };
    let stats = NormStats {
        mean: Tensor::from_inner(stats.mean),
        rstd: Tensor::from_inner(stats.rstd),
    };
    (Tensor::from_primitive(TensorPrimitive::Float(output)), stats)
}
