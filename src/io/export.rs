//! Writing a PyTorch `state_dict` as a `.safetensors` file, through the `safetensors` crate.

use std::collections::HashMap;
use std::path::Path;

use burn::tensor::{DType, TensorData};
use safetensors::tensor::{Dtype, TensorView};

use super::atomic_write;
use crate::{Error, Result};

/// Writes `tensors` to `path` as safetensors with the `{"format": "pt"}` metadata that
/// `transformers` requires, atomically (a crash leaves the old file or none).
pub(crate) fn write_safetensors(path: &Path, tensors: &[(String, TensorData)]) -> Result<()> {
    let fail = |message: String| Error::Save {
        path: path.to_path_buf(),
        message,
    };
    if path.extension().is_none_or(|e| e != "safetensors") {
        return Err(fail(
            "the file name must end in `.safetensors` (the only format written)".into(),
        ));
    }
    let mut views = Vec::with_capacity(tensors.len());
    for (key, data) in tensors {
        let dtype = match data.dtype {
            DType::F64 => Dtype::F64,
            DType::F32 => Dtype::F32,
            DType::F16 => Dtype::F16,
            DType::BF16 => Dtype::BF16,
            other => {
                return Err(fail(format!(
                    "`{key}` holds {other:?}, a float tensor was expected"
                )));
            }
        };
        let view = TensorView::new(dtype, data.shape.to_vec(), data.as_bytes())
            .map_err(|e| fail(format!("`{key}`: {e}")))?;
        views.push((key.as_str(), view));
    }
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    let bytes = safetensors::serialize(views, Some(metadata)).map_err(|e| fail(e.to_string()))?;
    atomic_write(path, &bytes)
}
