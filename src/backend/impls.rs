//! Which backend runs the recurrence how.

#[cfg(any(feature = "ndarray", feature = "flex"))]
use super::{SavedSequence, SequenceArgs, SequenceOutput, host};

/// The CPU backends run the fused host kernel.
#[cfg(any(feature = "ndarray", feature = "flex"))]
macro_rules! host_kernel {
    () => {
        fn recurrent_sequence(args: SequenceArgs<Self>) -> SequenceOutput<Self> {
            host::forward(args, false).0
        }

        fn recurrent_sequence_saved(
            args: SequenceArgs<Self>,
        ) -> Option<(SequenceOutput<Self>, SavedSequence<Self>)> {
            let (out, saved) = host::forward(args, true);
            Some((out, saved.expect("saved on request")))
        }
    };
}

#[cfg(feature = "ndarray")]
impl super::Backend for burn::backend::NdArray<f32> {
    host_kernel!();
}

#[cfg(feature = "ndarray")]
impl super::Backend for burn::backend::NdArray<f64> {
    host_kernel!();
}

#[cfg(feature = "flex")]
impl super::Backend for burn::backend::Flex {
    host_kernel!();
}

/// wgpu runs the composition of tensor ops (kernels stay on the device), differentiated by
/// autodiff.
#[cfg(feature = "wgpu")]
impl super::Backend for burn::backend::Wgpu {}
