//! [`SavedSequence`]: what a fused backward pass needs from its forward pass, host buffers for
//! the CPU kernel or device tensors for the tensor-op path, and the backward that dispatches on it.

use std::sync::Arc;

use burn::tensor::backend::Backend;

use super::{SequenceGrads, SequenceOutputGrads};

/// What a fused backward pass needs from its forward pass: host buffers for the CPU kernel, device
/// tensors for [`device_sequence_saved`](super::device_sequence_saved).
#[derive(Clone)]
pub struct SavedSequence<B: Backend> {
    device: B::Device,
    inner: Saved<B>,
    /// The forward ran a single sequence as two identical rows (see the wgpu backend); the
    /// backward pads the gradients to match and keeps the first row.
    #[cfg_attr(not(feature = "wgpu"), allow(dead_code))]
    pub(crate) doubled: bool,
}

impl<B: Backend> SavedSequence<B> {
    pub(crate) fn new(device: B::Device, inner: Saved<B>) -> Self {
        Self {
            device,
            inner,
            doubled: false,
        }
    }
}

impl<B: Backend> std::fmt::Debug for SavedSequence<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (kind, buffers) = match &self.inner {
            Saved::F32(s) => (s.kind, "host f32"),
            Saved::F64(s) => (s.kind, "host f64"),
            Saved::Device(s) => (s.kind(), "device"),
        };
        f.debug_struct("SavedSequence")
            .field("kind", &kind)
            .field("buffers", &buffers)
            .finish()
    }
}

pub(crate) enum Saved<B: Backend> {
    F32(Arc<super::host::Work<f32>>),
    F64(Arc<super::host::Work<f64>>),
    Device(Arc<super::device::DeviceWork<B>>),
}

impl<B: Backend> Clone for Saved<B> {
    fn clone(&self) -> Self {
        match self {
            Self::F32(w) => Self::F32(w.clone()),
            Self::F64(w) => Self::F64(w.clone()),
            Self::Device(w) => Self::Device(w.clone()),
        }
    }
}

/// Backpropagation through time for a saved forward pass.
pub(crate) fn backward<B: super::Backend>(
    saved: SavedSequence<B>,
    grads: SequenceOutputGrads<B>,
) -> SequenceGrads<B> {
    match saved.inner {
        Saved::F32(w) => super::host::backward_typed::<B, f32>(&w, grads, &saved.device),
        Saved::F64(w) => super::host::backward_typed::<B, f64>(&w, grads, &saved.device),
        Saved::Device(w) => super::device::backward(&w, grads),
    }
}
