//! Cross-entropy from logits as one backend operation: log-softmax and the negative
//! log-likelihood in one pass per row, with PyTorch's `ignore_index` and `label_smoothing`, and a
//! backward that writes `softmax - target` once. The CPU backends run a row kernel; the others
//! compose tensor ops.

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, TensorPrimitive};

use super::Backend;

/// The arguments of [`Backend::cross_entropy`]: PyTorch's `F.cross_entropy(logits, targets,
/// ignore_index=..., label_smoothing=..., reduction="mean")`.
///
/// # Shapes
/// - `logits`: `[N, V]`
/// - `targets`: `[N]`, each in `0..V` or equal to `ignore_index`
/// - loss: `[1]`, the mean over the rows not ignored (NaN when every row is ignored, as PyTorch)
#[derive(Clone, Debug)]
pub struct CrossEntropyArgs<B: burn::tensor::backend::Backend> {
    /// Unnormalised scores.
    pub logits: Tensor<B, 2>,
    /// Class indices.
    pub targets: Tensor<B, 1, Int>,
    /// Rows whose target equals this contribute nothing (PyTorch's default is -100).
    pub ignore_index: i64,
    /// `ε` in `[0, 1]`: the target distribution is `(1 - ε) onehot + ε / V`.
    pub label_smoothing: f64,
}

impl<B: burn::tensor::backend::Backend> CrossEntropyArgs<B> {
    /// `[N]`, 1 where the row counts, and their number.
    fn kept(&self) -> (Tensor<B, 1>, Tensor<B, 1>) {
        let keep = self.targets.clone().not_equal_elem(self.ignore_index).float();
        let count = keep.clone().sum();
        (keep, count)
    }

    /// The targets with ignored rows pointed at class 0 (their loss is masked out), as `[N, 1]`.
    fn safe_targets(&self) -> Tensor<B, 2, Int> {
        let ignored = self.targets.clone().equal_elem(self.ignore_index);
        let n = self.targets.dims()[0];
        self.targets.clone().mask_fill(ignored, 0).reshape([n, 1])
    }
}

impl<B: burn::tensor::backend::AutodiffBackend> CrossEntropyArgs<B> {
    /// The same arguments on the inner backend, off the autodiff graph.
    pub fn inner(&self) -> CrossEntropyArgs<B::InnerBackend> {
        CrossEntropyArgs {
            logits: self.logits.clone().inner(),
            targets: self.targets.clone().inner(),
            ignore_index: self.ignore_index,
            label_smoothing: self.label_smoothing,
        }
    }
}

/// The tensor-op composition of [`Backend::cross_entropy`]: the loss, and every row's
/// log-sum-exp `[N]`.
pub fn composed_cross_entropy<B: burn::tensor::backend::Backend>(
    args: CrossEntropyArgs<B>,
) -> (Tensor<B, 1>, Tensor<B, 1>) {
    let [n, v] = args.logits.dims();
    let logp = log_softmax(args.logits.clone(), 1); // [N, V]
    let lse = (args.logits.clone() - logp.clone())
        .slice([0..n, 0..1])
        .reshape([n]);
    let nll = logp.clone().gather(1, args.safe_targets()).reshape([n]).neg();
    let eps = args.label_smoothing;
    let per_row = if eps > 0.0 {
        nll * (1.0 - eps) + logp.sum_dim(1).reshape([n]).neg() * (eps / v as f64)
    } else {
        nll
    };
    let (keep, count) = args.kept();
    ((per_row * keep).sum() / count, lse)
}

/// The gradient of the logits in tensor ops, from the log-sum-exp:
/// `(softmax - ((1 - ε) onehot + ε / V)) · grad / count` on the rows not ignored.
pub fn composed_cross_entropy_backward<B: burn::tensor::backend::Backend>(
    args: CrossEntropyArgs<B>,
    lse: Tensor<B, 1>,
    grad: Tensor<B, 1>,
) -> Tensor<B, 2> {
    let [n, v] = args.logits.dims();
    let probs = (args.logits.clone() - lse.reshape([n, 1])).exp();
    let eps = args.label_smoothing;
    let onehot = args.logits.zeros_like().scatter(
        1,
        args.safe_targets(),
        Tensor::ones([n, 1], &args.logits.device()),
        burn::tensor::IndexingUpdateOp::Add,
    );
    let target = onehot * (1.0 - eps) + eps / v as f64;
    let (keep, count) = args.kept();
    let scale = (keep / count) * grad; // [N]
    (probs - target) * scale.reshape([n, 1])
}

/// The mean loss `[1]` and every row's log-sum-exp `[N]`.
type LossAndLse<B> = (Tensor<B, 1>, Tensor<B, 1>);

#[derive(Debug)]
struct CrossEntropyBackward;

impl<B: Backend> Backward<B, 1> for CrossEntropyBackward {
    type State = (CrossEntropyArgs<B>, Tensor<B, 1>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [logits] = ops.parents;
        let (args, lse) = ops.state;
        let grad = Tensor::<B, 1>::from_primitive(TensorPrimitive::Float(grads.consume::<B>(&ops.node)));
        if let Some(node) = logits {
            let d = B::cross_entropy_backward(args, lse, grad);
            grads.register::<B>(node.id, d.into_primitive().tensor());
        }
    }
}

/// [`Backend::cross_entropy`] for `Autodiff<B>`: one node when `B` has the fused kernels.
pub(super) fn autodiff_cross_entropy<B: Backend, C: CheckpointStrategy>(
    args: CrossEntropyArgs<Autodiff<B, C>>,
) -> LossAndLse<Autodiff<B, C>> {
    if !B::fused_row_ops() {
        return composed_cross_entropy(args);
    }
    let node = args.logits.clone().into_primitive().tensor().node;
    let inner = args.inner();
    let (loss, lse) = B::cross_entropy(inner.clone());
    let loss = loss.into_primitive().tensor();
    let output = match CrossEntropyBackward
        .prepare::<C>([node])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish((inner, lse.clone()), loss),
        OpsKind::UnTracked(prep) => prep.finish(loss),
    };
    (
        Tensor::from_primitive(TensorPrimitive::Float(output)),
        Tensor::from_inner(lse),
    )
}
