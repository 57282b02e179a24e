//! Which backend runs the recurrence how.

#[cfg(any(feature = "ndarray", feature = "flex"))]
use super::{
    ActivationArgs, AdamWArgs, AdamWOutput, AttentionArgs, AttentionGrads, CrossEntropyArgs, CtcArgs,
    NormArgs, NormGrads, NormStats, SavedSequence, SequenceArgs, SequenceOutput, host_attention,
    host_attention_backward, host_attention_saved, host_ctc, host_ctc_nll, host_rows, host_sequence,
    host_sequence_saved,
};
#[cfg(any(feature = "ndarray", feature = "flex"))]
use burn::tensor::Tensor;

/// The CPU backends run the fused host kernel.
#[cfg(any(feature = "ndarray", feature = "flex"))]
macro_rules! host_kernel {
    () => {
        fn recurrent_sequence(args: SequenceArgs<Self>) -> SequenceOutput<Self> {
            host_sequence(args)
        }

        fn recurrent_sequence_saved(
            args: SequenceArgs<Self>,
        ) -> Option<(SequenceOutput<Self>, SavedSequence<Self>)> {
            Some(host_sequence_saved(args))
        }

        fn sdpa(args: AttentionArgs<Self>) -> Tensor<Self, 4> {
            host_attention(args)
        }

        fn sdpa_saved(args: AttentionArgs<Self>) -> Option<(Tensor<Self, 4>, Tensor<Self, 3>)> {
            Some(host_attention_saved(args))
        }

        fn sdpa_backward(
            args: AttentionArgs<Self>,
            output: Tensor<Self, 4>,
            lse: Tensor<Self, 3>,
            grad: Tensor<Self, 4>,
        ) -> AttentionGrads<Self> {
            host_attention_backward(args, output, lse, grad)
        }

        fn fused_row_ops() -> bool {
            true
        }

        fn norm(args: NormArgs<Self>) -> (Tensor<Self, 2>, NormStats<Self>) {
            host_rows::norm(args)
        }

        fn norm_backward(
            args: NormArgs<Self>,
            stats: NormStats<Self>,
            grad: Tensor<Self, 2>,
        ) -> NormGrads<Self> {
            host_rows::norm_backward(args, stats, grad)
        }

        fn bias_activation(args: ActivationArgs<Self>) -> Tensor<Self, 2> {
            host_rows::bias_activation(args)
        }

        fn bias_activation_backward(
            args: ActivationArgs<Self>,
            grad: Tensor<Self, 2>,
        ) -> (Tensor<Self, 2>, Option<Tensor<Self, 1>>) {
            host_rows::bias_activation_backward(args, grad)
        }

        fn cross_entropy(args: CrossEntropyArgs<Self>) -> (Tensor<Self, 1>, Tensor<Self, 1>) {
            host_rows::cross_entropy(args)
        }

        fn ctc_nll(args: CtcArgs<Self>) -> Tensor<Self, 1> {
            host_ctc_nll(args)
        }

        fn ctc_nll_grad(args: CtcArgs<Self>) -> Option<(Tensor<Self, 1>, Tensor<Self, 3>)> {
            Some(host_ctc(args))
        }

        fn cross_entropy_backward(
            args: CrossEntropyArgs<Self>,
            lse: Tensor<Self, 1>,
            grad: Tensor<Self, 1>,
        ) -> Tensor<Self, 2> {
            host_rows::cross_entropy_backward(args, lse, grad)
        }
    };
}

/// The host AdamW step, copying in and out (burn-ndarray's arrays).
#[cfg(feature = "ndarray")]
macro_rules! host_adamw {
    () => {
        fn adamw_step(args: AdamWArgs<Self>) -> Option<AdamWOutput<Self>> {
            Some(host_rows::adamw_step(args))
        }
    };
}

/// burn-ndarray's `into_data` copies an array whose buffer is shared (a parameter, or a tensor the
/// autodiff graph keeps) element by element through a dynamic-rank iterator; reading the
/// contiguous view is one `memcpy`.
#[cfg(feature = "ndarray")]
fn ndarray_host_data<B, const D: usize>(tensor: burn::tensor::Tensor<B, D>) -> burn::tensor::TensorData
where
    B: burn::tensor::backend::Backend<FloatTensorPrimitive = burn::backend::ndarray::NdArrayTensor>,
{
    use burn::backend::ndarray::NdArrayTensor;
    use burn::tensor::{Tensor, TensorData, TensorPrimitive};
    let shape = tensor.dims().to_vec();
    match tensor.into_primitive().tensor() {
        NdArrayTensor::F32(storage) => {
            let view = storage.view();
            let values = view
                .as_slice()
                .map_or_else(|| view.iter().copied().collect(), <[f32]>::to_vec);
            TensorData::new(values, shape)
        }
        NdArrayTensor::F64(storage) => {
            let view = storage.view();
            let values = view
                .as_slice()
                .map_or_else(|| view.iter().copied().collect(), <[f64]>::to_vec);
            TensorData::new(values, shape)
        }
        other => Tensor::<B, D>::from_primitive(TensorPrimitive::Float(other)).into_data(),
    }
}

#[cfg(feature = "ndarray")]
impl super::Backend for burn::backend::NdArray<f32> {
    host_kernel!();
    host_adamw!();

    fn host_data<const D: usize>(tensor: burn::tensor::Tensor<Self, D>) -> burn::tensor::TensorData {
        ndarray_host_data(tensor)
    }
}

#[cfg(feature = "ndarray")]
impl super::Backend for burn::backend::NdArray<f64> {
    host_kernel!();
    host_adamw!();

    fn host_data<const D: usize>(tensor: burn::tensor::Tensor<Self, D>) -> burn::tensor::TensorData {
        ndarray_host_data(tensor)
    }
}

#[cfg(feature = "flex")]
impl super::Backend for burn::backend::Flex {
    host_kernel!();

    /// In place on burn-flex's buffers when the parameter and moments are not shared (the usual
    /// case in an optimizer step): no copy in or out.
    fn adamw_step(args: AdamWArgs<Self>) -> Option<AdamWOutput<Self>> {
        Some(super::host::adamw::flex_in_place(args))
    }

    /// burn-flex's `into_data` copies a shared buffer into a byte vector, which `into_vec` must
    /// then copy again to align it; a contiguous tensor is read with one typed copy here.
    fn host_data<const D: usize>(tensor: burn::tensor::Tensor<Self, D>) -> burn::tensor::TensorData {
        use burn::tensor::{DType, Tensor, TensorData, TensorPrimitive};
        let shape = tensor.dims().to_vec();
        let t = tensor.into_primitive().tensor();
        if t.is_contiguous() && t.layout().start_offset() == 0 {
            let n = t.layout().num_elements();
            match t.dtype() {
                DType::F32 => return TensorData::new(t.storage::<f32>()[..n].to_vec(), shape),
                DType::F64 => return TensorData::new(t.storage::<f64>()[..n].to_vec(), shape),
                _ => {}
            }
        }
        Tensor::<Self, D>::from_primitive(TensorPrimitive::Float(t)).into_data()
    }
}

/// wgpu keeps the data on the device: the forward pass is the composition of tensor ops, and under
/// autodiff the recurrence is one node whose backward is backpropagation through time in tensor
/// ops (`device_sequence_saved`).
#[cfg(all(feature = "wgpu", not(any(feature = "ndarray", feature = "flex"))))]
use burn::tensor::Tensor;

#[cfg(feature = "wgpu")]
impl super::Backend for burn::backend::Wgpu {
    /// burn-wgpu 0.21 with fusion computes this recurrence wrongly for a batch of one sequence
    /// from the second step on (a fusion bug in the family of tracel-ai/burn#5122; batches of two
    /// or more are right). Until that is fixed upstream, a single sequence runs as a batch of two
    /// identical rows and the first is kept; `tests/wgpu_backend.rs` checks batch 1 against batch
    /// 2, with and without autodiff.
    fn recurrent_sequence(args: super::SequenceArgs<Self>) -> super::SequenceOutput<Self> {
        if args.input.dims()[0] != 1 {
            return super::composed::forward(args);
        }
        first_row(super::composed::forward(doubled(args)))
    }

    fn recurrent_sequence_saved(
        args: super::SequenceArgs<Self>,
    ) -> Option<(super::SequenceOutput<Self>, super::SavedSequence<Self>)> {
        if args.input.dims()[0] != 1 {
            return Some(super::device_sequence_saved(args));
        }
        let (out, mut saved) = super::device_sequence_saved(doubled(args));
        saved.doubled = true;
        Some((first_row(out), saved))
    }

    fn recurrent_sequence_backward(
        saved: super::SavedSequence<Self>,
        grads: super::SequenceOutputGrads<Self>,
    ) -> super::SequenceGrads<Self> {
        if !saved.doubled {
            return super::saved::backward(saved, grads);
        }
        // The second row's outputs were dropped: their gradient is zero, so the weight gradients
        // are those of the first row alone.
        let pad3 = |t: Tensor<Self, 3>| Tensor::cat(vec![t.clone(), t.zeros_like()], 0);
        let pad2 = |t: Tensor<Self, 2>| Tensor::cat(vec![t.clone(), t.zeros_like()], 0);
        let g = super::saved::backward(
            saved,
            super::SequenceOutputGrads {
                output: pad3(grads.output),
                h_n: pad2(grads.h_n),
                c_n: grads.c_n.map(pad2),
                need_input: grads.need_input,
            },
        );
        let row3 = |t: Tensor<Self, 3>| {
            let [_, a, b] = t.dims();
            t.slice([0..1, 0..a, 0..b])
        };
        let row2 = |t: Tensor<Self, 2>| {
            let w = t.dims()[1];
            t.slice([0..1, 0..w])
        };
        super::SequenceGrads {
            input: g.input.map(row3),
            h0: row2(g.h0),
            c0: g.c0.map(row2),
            ..g
        }
    }
}

/// One sequence as two identical rows.
#[cfg(feature = "wgpu")]
fn doubled(args: super::SequenceArgs<burn::backend::Wgpu>) -> super::SequenceArgs<burn::backend::Wgpu> {
    let twice2 = |t: Tensor<burn::backend::Wgpu, 2>| Tensor::cat(vec![t.clone(), t], 0);
    super::SequenceArgs {
        input: Tensor::cat(vec![args.input.clone(), args.input.clone()], 0),
        h0: twice2(args.h0.clone()),
        c0: args.c0.clone().map(twice2),
        lengths: args.lengths.clone().map(|l| vec![l[0], l[0]]),
        ..args
    }
}

/// The first row of a doubled run.
#[cfg(feature = "wgpu")]
fn first_row(out: super::SequenceOutput<burn::backend::Wgpu>) -> super::SequenceOutput<burn::backend::Wgpu> {
    let [_, time, r] = out.output.dims();
    let first = |t: Tensor<burn::backend::Wgpu, 2>| {
        let width = t.dims()[1];
        t.slice([0..1, 0..width])
    };
    super::SequenceOutput {
        output: out.output.slice([0..1, 0..time, 0..r]),
        h_n: first(out.h_n),
        c_n: out.c_n.map(first),
    }
}
