//! Connectionist temporal classification (CTC) as one backend operation: the per-utterance
//! negative log-likelihood of `torch.nn.functional.ctc_loss`, with a CPU kernel (log-space
//! alpha and beta over the whole batch, utterances in parallel) whose gradient is PyTorch's,
//! and burn's own CTC operation for the other backends (its GPU kernel on wgpu).

use std::sync::Arc;

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::{Int, Tensor, TensorData, TensorPrimitive};

use super::Backend;

/// The arguments of [`Backend::ctc_nll`], checked by [`CtcLoss`](crate::nn::CtcLoss).
///
/// # Shapes
/// - `log_probs`: `[N, T, C]`, log-probabilities over `C` classes (a `log_softmax` output),
///   batch-first (PyTorch takes `[T, N, C]`)
/// - `targets`: `N` label sequences, none holding `blank`, each label `< C`
/// - `input_lengths`: `N` frame counts, each `<= T`
#[derive(Clone, Debug)]
pub struct CtcArgs<B: burn::tensor::backend::Backend> {
    /// Log-probabilities.
    pub log_probs: Tensor<B, 3>,
    /// Each utterance's labels.
    pub targets: Arc<Vec<Vec<u32>>>,
    /// Each utterance's frames.
    pub input_lengths: Arc<Vec<usize>>,
    /// The blank class.
    pub blank: usize,
    /// Infinite losses (an alignment is impossible) and their gradients become 0.
    pub zero_infinity: bool,
}

impl<B: burn::tensor::backend::AutodiffBackend> CtcArgs<B> {
    /// The same arguments on the inner backend, off the autodiff graph.
    pub fn inner(&self) -> CtcArgs<B::InnerBackend> {
        CtcArgs {
            log_probs: self.log_probs.clone().inner(),
            targets: self.targets.clone(),
            input_lengths: self.input_lengths.clone(),
            blank: self.blank,
            zero_infinity: self.zero_infinity,
        }
    }
}

/// The fallback of [`Backend::ctc_nll`]: burn's own CTC operation
/// ([`burn::tensor::module::ctc_loss`]: a tensor-op alpha recursion differentiated by autodiff by
/// default, a fused kernel on burn-cubecl's GPU backends), with `zero_infinity` applied after it.
/// An impossible alignment's loss is `inf` (0 with `zero_infinity`).
///
/// # Shapes
/// - output: `[N]`
pub fn composed_ctc<B: burn::tensor::backend::Backend>(args: CtcArgs<B>) -> Tensor<B, 1> {
    let [n, _, _] = args.log_probs.dims();
    let device = args.log_probs.device();
    let s = args.targets.iter().map(Vec::len).max().unwrap_or(0).max(1);
    // [N, S], padded with the blank past each target's length.
    let padded: Vec<i64> = args
        .targets
        .iter()
        .flat_map(|t| {
            t.iter()
                .map(|&l| l as i64)
                .chain(std::iter::repeat_n(args.blank as i64, s - t.len()))
        })
        .collect();
    let ints = |v: Vec<i64>, shape: Vec<usize>| {
        Tensor::<B, 1, Int>::from_data(TensorData::new(v, [shape.iter().product::<usize>()]), &device)
    };
    let targets = ints(padded, vec![n, s]).reshape([n, s]);
    let input_lengths = ints(args.input_lengths.iter().map(|&l| l as i64).collect(), vec![n]);
    let target_lengths = ints(args.targets.iter().map(|t| t.len() as i64).collect(), vec![n]);
    // [N, T, C] -> [T, N, C], burn's (and PyTorch's) layout.
    let loss = burn::tensor::module::ctc_loss(
        args.log_probs.swap_dims(0, 1),
        targets,
        input_lengths,
        target_lengths,
        args.blank,
    );
    if args.zero_infinity {
        let infinite = loss.clone().is_inf();
        loss.mask_fill(infinite, 0.0)
    } else {
        loss
    }
}

/// The per-utterance losses `[N]` and PyTorch's gradient of each with respect to `log_probs`
/// `[N, T, C]`, from the inner backend's kernel.
type LossAndGrad<B> = (Tensor<B, 1>, Tensor<B, 3>);

#[derive(Debug)]
struct CtcBackward;

impl<B: Backend> Backward<B, 1> for CtcBackward {
    type State = Tensor<B, 3>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [log_probs] = ops.parents;
        let per_utterance = ops.state;
        let grad = Tensor::<B, 1>::from_primitive(TensorPrimitive::Float(grads.consume::<B>(&ops.node)));
        if let Some(node) = log_probs {
            let n = grad.dims()[0];
            // Each utterance's gradient scaled by its loss's upstream gradient.
            let d = per_utterance * grad.reshape([n, 1, 1]);
            grads.register::<B>(node.id, d.into_primitive().tensor());
        }
    }
}

/// [`Backend::ctc_nll`] for `Autodiff<B>`: one node with the kernel's gradient when `B` has the
/// CPU kernel, else burn's operation (with burn's backward).
pub(super) fn autodiff_ctc<B: Backend, C: CheckpointStrategy>(
    args: CtcArgs<Autodiff<B, C>>,
) -> Tensor<Autodiff<B, C>, 1> {
    let Some((loss, grad)) = B::ctc_nll_grad(args.inner()) else {
        return composed_ctc(args);
    };
    let node = args.log_probs.clone().into_primitive().tensor().node;
    let loss = loss.into_primitive().tensor();
    let output = match CtcBackward.prepare::<C>([node]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(grad, loss),
        OpsKind::UnTracked(prep) => prep.finish(loss),
    };
    Tensor::from_primitive(TensorPrimitive::Float(output))
}

/// The CPU kernel as a [`Backend::ctc_nll_grad`] implementation (host-memory backends).
pub fn host_ctc<B: Backend>(args: CtcArgs<B>) -> LossAndGrad<B> {
    let (loss, grad) = super::host::ctc::forward(args, true);
    (loss, grad.expect("computed on request"))
}

/// The CPU kernel's losses alone, a [`Backend::ctc_nll`] implementation for a backend
/// without autodiff (validation, inference): no beta pass, no gradient.
pub fn host_ctc_nll<B: Backend>(args: CtcArgs<B>) -> Tensor<B, 1> {
    super::host::ctc::forward(args, false).0
}
