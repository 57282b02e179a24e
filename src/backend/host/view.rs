//! [`HostSlice`]: a float tensor's values as a host slice, borrowed without a copy where the
//! backend keeps them contiguous in host memory (Flex, NdArray), copied otherwise.
//!
//! The recurrence reads its weights on every call. A decoding loop calls it once per token, and
//! there copying `W_ih` and `W_hh` (4 MiB each at 512 units) cost more than the step's GEMV.

use std::any::Any;
use std::ops::Deref;

use burn::tensor::{Tensor, TensorPrimitive};

use super::math::Real;

/// A tensor's values in row-major order. Either a copy, or a pointer into the tensor's buffer
/// with the tensor kept alive beside it (its buffer is reference-counted and never moves).
pub(crate) struct HostSlice<T> {
    ptr: *const T,
    len: usize,
    _keep: Keep<T>,
}

/// What owns the memory (only ever dropped, never read).
#[allow(dead_code)]
enum Keep<T> {
    Owned(Vec<T>),
    Tensor(Box<dyn Any + Send + Sync>),
}

// SAFETY: the slice is read-only, and what owns its memory (a Vec, or a backend tensor that is
// Send + Sync) travels with it.
unsafe impl<T: Send + Sync> Send for HostSlice<T> {}
unsafe impl<T: Send + Sync> Sync for HostSlice<T> {}

impl<T> Deref for HostSlice<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        // SAFETY: `ptr` and `len` describe memory owned by `_keep`, which lives as long as self
        // and is never written through while a HostSlice holds it.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl<T: Real> HostSlice<T> {
    /// Takes ownership of a vector.
    pub(crate) fn owned(v: Vec<T>) -> Self {
        Self {
            ptr: v.as_ptr(),
            len: v.len(),
            _keep: Keep::Owned(v),
        }
    }

    /// The values of `tensor` as `T`: borrowed when the backend stores them contiguously as `T`
    /// in host memory, otherwise read back with [`Backend::host_data`](super::super::Backend).
    pub(crate) fn of<B: super::super::Backend, const D: usize>(tensor: Tensor<B, D>) -> Self {
        let len = tensor.shape().num_elements();
        let primitive = tensor.into_primitive().tensor();
        let any: Box<dyn Any + Send + Sync> = Box::new(primitive);
        let any = match borrow::<T>(any, len) {
            Ok(slice) => return slice,
            Err(any) => any,
        };
        let primitive = *any
            .downcast::<B::FloatTensorPrimitive>()
            .unwrap_or_else(|_| unreachable!("the box holds the primitive just put in"));
        let tensor = Tensor::<B, D>::from_primitive(TensorPrimitive::Float(primitive));
        Self::owned(super::to_vec(tensor))
    }
}

/// Borrows a Flex or NdArray tensor's buffer when it holds `len` contiguous `T`s from its start.
fn borrow<T: Real>(
    any: Box<dyn Any + Send + Sync>,
    len: usize,
) -> Result<HostSlice<T>, Box<dyn Any + Send + Sync>> {
    let is_f32 = size_of::<T>() == size_of::<f32>();
    let ptr: Option<*const T> = None;
    #[cfg(feature = "flex")]
    let ptr = ptr.or_else(|| {
        let t = any.downcast_ref::<burn_flex::FlexTensor>()?;
        let contiguous = t.is_contiguous() && t.layout().start_offset() == 0;
        match t.dtype() {
            burn::tensor::DType::F32 if contiguous && is_f32 => {
                Some(t.storage::<f32>()[..len].as_ptr().cast())
            }
            burn::tensor::DType::F64 if contiguous && !is_f32 => {
                Some(t.storage::<f64>()[..len].as_ptr().cast())
            }
            _ => None,
        }
    });
    #[cfg(feature = "ndarray")]
    let ptr = ptr.or_else(|| {
        use burn::backend::ndarray::NdArrayTensor;
        match any.downcast_ref::<NdArrayTensor>()? {
            NdArrayTensor::F32(s) if is_f32 => Some(s.view().as_slice()?[..len].as_ptr().cast()),
            NdArrayTensor::F64(s) if !is_f32 => Some(s.view().as_slice()?[..len].as_ptr().cast()),
            _ => None,
        }
    });
    match ptr {
        Some(ptr) => Ok(HostSlice {
            ptr,
            len,
            _keep: Keep::Tensor(any),
        }),
        None => Err(any),
    }
}
