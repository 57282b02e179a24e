//! Which backend runs the recurrence how.

#[cfg(any(feature = "ndarray", feature = "flex"))]
use super::{SavedSequence, SequenceArgs, SequenceOutput, host_sequence, host_sequence_saved};

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

    fn host_data<const D: usize>(tensor: burn::tensor::Tensor<Self, D>) -> burn::tensor::TensorData {
        ndarray_host_data(tensor)
    }
}

#[cfg(feature = "ndarray")]
impl super::Backend for burn::backend::NdArray<f64> {
    host_kernel!();

    fn host_data<const D: usize>(tensor: burn::tensor::Tensor<Self, D>) -> burn::tensor::TensorData {
        ndarray_host_data(tensor)
    }
}

#[cfg(feature = "flex")]
impl super::Backend for burn::backend::Flex {
    host_kernel!();
}

/// wgpu keeps the data on the device: the forward pass is the composition of tensor ops, and under
/// autodiff the recurrence is one node whose backward is backpropagation through time in tensor
/// ops (`device_sequence_saved`).
#[cfg(feature = "wgpu")]
impl super::Backend for burn::backend::Wgpu {
    fn recurrent_sequence_saved(
        args: super::SequenceArgs<Self>,
    ) -> Option<(super::SequenceOutput<Self>, super::SavedSequence<Self>)> {
        Some(super::device_sequence_saved(args))
    }
}
