//! `Autodiff<B>`: the whole-sequence recurrence as one node of the autodiff graph, differentiated
//! by the inner backend's fused backward when it has one.

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Tensor, TensorPrimitive};

use super::{Backend, SavedSequence, SequenceArgs, SequenceOutput, SequenceOutputGrads, composed};

/// Sizes needed to split the packed output and its gradient: time, batch, state, cell (0 = none).
#[derive(Clone, Copy, Debug)]
struct Packing {
    t: usize,
    n: usize,
    r: usize,
    c: usize,
}

impl Packing {
    fn split<B: burn::tensor::backend::Backend>(
        &self,
        packed: Tensor<B, 1>,
    ) -> (Tensor<B, 3>, Tensor<B, 2>, Option<Tensor<B, 2>>) {
        let Packing { t, n, r, c } = *self;
        let out_len = t * n * r;
        // [N*T*R | N*R | N*C] -> [N, T, R], [N, R], [N, C]
        let output = packed.clone().slice(0..out_len).reshape([n, t, r]);
        let h_n = packed.clone().slice(out_len..out_len + n * r).reshape([n, r]);
        let c_n = (c > 0).then(|| {
            packed
                .slice(out_len + n * r..out_len + n * r + n * c)
                .reshape([n, c])
        });
        (output, h_n, c_n)
    }
}

#[derive(Debug)]
struct SequenceBackward;

impl<B: Backend> Backward<B, 8> for SequenceBackward {
    type State = (SavedSequence<B>, Packing);

    fn backward(self, ops: Ops<Self::State, 8>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [input, w_ih, b_ih, w_hh, b_hh, w_hr, h0, c0] = ops.parents;
        let (saved, packing) = ops.state;
        let packed = Tensor::<B, 1>::from_primitive(TensorPrimitive::Float(grads.consume::<B>(&ops.node)));
        let (output, h_n, c_n) = packing.split(packed);
        let result = B::recurrent_sequence_backward(
            saved,
            SequenceOutputGrads {
                output,
                h_n,
                c_n,
                need_input: input.is_some(),
            },
        );
        macro_rules! put {
            ($node:expr, $value:expr) => {
                if let (Some(node), Some(value)) = ($node, $value) {
                    grads.register::<B>(node.id, value.into_primitive().tensor());
                }
            };
        }
        put!(input, result.input);
        put!(w_ih, Some(result.weight_ih));
        put!(b_ih, result.bias_ih);
        put!(w_hh, Some(result.weight_hh));
        put!(b_hh, result.bias_hh);
        put!(w_hr, result.weight_hr);
        put!(h0, Some(result.h0));
        put!(c0, result.c0);
    }
}

impl<B: Backend, C: CheckpointStrategy> Backend for Autodiff<B, C> {
    fn sdpa(args: super::AttentionArgs<Self>) -> Tensor<Self, 4> {
        super::attention::autodiff::forward(args)
    }

    fn norm(args: super::NormArgs<Self>) -> (Tensor<Self, 2>, super::NormStats<Self>) {
        super::norm::autodiff_norm(args)
    }

    fn bias_activation(args: super::ActivationArgs<Self>) -> Tensor<Self, 2> {
        super::activation::autodiff_activation(args)
    }

    fn cross_entropy(args: super::CrossEntropyArgs<Self>) -> (Tensor<Self, 1>, Tensor<Self, 1>) {
        super::cross_entropy::autodiff_cross_entropy(args)
    }

    fn ctc_nll(args: super::CtcArgs<Self>) -> Tensor<Self, 1> {
        super::ctc::autodiff_ctc(args)
    }

    fn recurrent_sequence(args: SequenceArgs<Self>) -> SequenceOutput<Self> {
        // An untracked stand-in for absent arguments: its parent slot stays empty.
        let untracked =
            || <Self as AutodiffBackend>::from_inner(args.h0.clone().inner().into_primitive().tensor()).node;
        let node1 = |t: &Option<Tensor<Self, 1>>| match t {
            Some(t) => t.clone().into_primitive().tensor().node,
            None => untracked(),
        };
        let node2 = |t: &Option<Tensor<Self, 2>>| match t {
            Some(t) => t.clone().into_primitive().tensor().node,
            None => untracked(),
        };
        let nodes = [
            args.input.clone().into_primitive().tensor().node,
            args.weights.weight_ih.clone().into_primitive().tensor().node,
            node1(&args.weights.bias_ih),
            args.weights.weight_hh.clone().into_primitive().tensor().node,
            node1(&args.weights.bias_hh),
            node2(&args.weights.weight_hr),
            args.h0.clone().into_primitive().tensor().node,
            node2(&args.c0),
        ];
        let inner = args.inner();
        let dims = inner.dims();
        let packing = Packing {
            t: dims.time,
            n: dims.batch,
            r: dims.state,
            // The cell state (LSTM only) is hidden_size wide.
            c: if inner.c0.is_some() { dims.hidden } else { 0 },
        };
        let wrap = |out: SequenceOutput<B>| -> Tensor<B, 1> {
            // [N, T, R], [N, R], [N, C] -> [N*T*R + N*R + N*C]
            let mut parts = vec![out.output.reshape([-1]), out.h_n.reshape([-1])];
            parts.extend(out.c_n.map(|c| c.reshape([-1])));
            Tensor::cat(parts, 0)
        };
        let packed = match SequenceBackward.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => match B::recurrent_sequence_saved(inner) {
                Some((out, saved)) => prep.finish((saved, packing), wrap(out).into_primitive().tensor()),
                // No fused backward: let autodiff differentiate the composition.
                None => return composed::forward(args),
            },
            OpsKind::UnTracked(prep) => {
                prep.finish(wrap(B::recurrent_sequence(inner)).into_primitive().tensor())
            }
        };
        let (output, h_n, c_n) =
            packing.split(Tensor::<Self, 1>::from_primitive(TensorPrimitive::Float(packed)));
        SequenceOutput { output, h_n, c_n }
    }
}
