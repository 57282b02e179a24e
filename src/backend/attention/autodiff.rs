//! `Autodiff<B>`: attention as one node of the autodiff graph, differentiated by the inner
//! backend's backward when its forward saves what that needs.

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::{Tensor, TensorPrimitive};

use super::{AttentionArgs, composed};
use crate::Backend;

#[derive(Debug)]
struct AttentionBackward;

impl<B: Backend> Backward<B, 3> for AttentionBackward {
    type State = (AttentionArgs<B>, Tensor<B, 4>, Tensor<B, 3>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [query, key, value] = ops.parents;
        let (args, output, lse) = ops.state;
        let grad = Tensor::<B, 4>::from_primitive(TensorPrimitive::Float(grads.consume::<B>(&ops.node)));
        let result = B::sdpa_backward(args, output, lse, grad);
        for (node, value) in [(query, result.query), (key, result.key), (value, result.value)] {
            if let Some(node) = node {
                grads.register::<B>(node.id, value.into_primitive().tensor());
            }
        }
    }
}

/// [`Backend::sdpa`] for `Autodiff<B>`.
pub(crate) fn forward<B: Backend, C: CheckpointStrategy>(
    args: AttentionArgs<Autodiff<B, C>>,
) -> Tensor<Autodiff<B, C>, 4> {
    // The node's backward gives no gradient to the bias: a tracked one is differentiated through
    // the composition instead.
    if args.bias.as_ref().is_some_and(Tensor::is_require_grad) {
        return composed::forward(args);
    }
    let nodes = [&args.query, &args.key, &args.value].map(|t| t.clone().into_primitive().tensor().node);
    let inner = args.inner();
    let output = match AttentionBackward.prepare::<C>(nodes).compute_bound().stateful() {
        OpsKind::Tracked(prep) => match B::sdpa_saved(inner.clone()) {
            Some((output, lse)) => {
                let primitive = output.clone().into_primitive().tensor();
                prep.finish((inner, output, lse), primitive)
            }
            // No backward of its own: autodiff differentiates the composition.
            None => return composed::forward(args),
        },
        OpsKind::UnTracked(prep) => prep.finish(B::sdpa(inner).into_primitive().tensor()),
    };
    Tensor::from_primitive(TensorPrimitive::Float(output))
}
