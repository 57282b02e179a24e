//! [`StateDict`]: the tensors of a PyTorch `state_dict`, read from a `.safetensors` or `.pt` file.

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::{Tensor, TensorData, backend::Backend};
use burn_store::{ModuleStore, PytorchStore, SafetensorsStore, TensorSnapshot};

use super::key_report::{KeyReport, ShapeMismatch};
use super::pickle_guard;
use crate::{Error, Result};

/// The named tensors of a PyTorch `state_dict`, as saved by
/// `safetensors.torch.save_file(module.state_dict(), path)` or `torch.save(module.state_dict(), path)`.
///
/// Reading goes through burn-store (its safetensors and PyTorch-pickle readers); tensors are
/// decoded lazily, when a module takes them. Modules that load PyTorch weights
/// ([`TorchWeights::load_state_dict`](super::TorchWeights::load_state_dict)) check the whole
/// key set first: missing keys, unexpected keys and shape mismatches are one [`Error`] naming
/// them all, and no parameter is left silently at its initial value.
///
/// ```no_run
/// # use ember_lm::io::StateDict;
/// let dict = StateDict::from_file("lstm.safetensors")?;
/// for key in dict.keys() {
///     println!("{key}: {:?}", dict.shape(key).unwrap());
/// }
/// # Ok::<(), ember_lm::Error>(())
/// ```
#[derive(Clone)]
pub struct StateDict {
    source: String,
    tensors: BTreeMap<String, TensorSnapshot>,
}

impl std::fmt::Debug for StateDict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateDict")
            .field("source", &self.source)
            .field("keys", &self.tensors.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl StateDict {
    /// Reads a state dict from `path`: safetensors for a `.safetensors` extension, otherwise a
    /// PyTorch `torch.save` file (`.pt`, `.pth`, `.bin`, zip or legacy format).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let load_err = existing_file(path)?;
        let is_safetensors = path.extension().is_some_and(|e| e == "safetensors");
        let tensors = if is_safetensors {
            SafetensorsStore::from_file(path)
                .get_all_snapshots()
                .map_err(|e| load_err(e.to_string()))?
                .clone()
        } else {
            pickle_guard::check_file(path).map_err(&load_err)?;
            PytorchStore::from_file(path)
                .get_all_snapshots()
                .map_err(|e| load_err(e.to_string()))?
                .clone()
        };
        Ok(Self {
            source: path.display().to_string(),
            tensors,
        })
    }

    /// The weights of a Hugging Face `save_pretrained` directory: `model.safetensors`, else
    /// `pytorch_model.bin`; an [`Error::Load`] when neither is there.
    pub fn from_pretrained_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let weights = ["model.safetensors", "pytorch_model.bin"]
            .iter()
            .map(|f| dir.join(f))
            .find(|p| p.exists())
            .ok_or_else(|| Error::Load {
                path: dir.to_path_buf(),
                message: "neither model.safetensors nor pytorch_model.bin is there".into(),
            })?;
        Self::from_file(weights)
    }

    /// Reads the state dict stored under `key` in a `torch.save` checkpoint dictionary, ignoring
    /// the rest of it (optimizer state, configuration, counters): nanoGPT's `ckpt["model"]`,
    /// PyTorch Lightning's `ckpt["state_dict"]`. A file without `key` is an [`Error::Load`].
    pub fn from_torch_checkpoint(path: impl AsRef<Path>, key: &str) -> Result<Self> {
        let path = path.as_ref();
        let load_err = existing_file(path)?;
        pickle_guard::check_file(path).map_err(&load_err)?;
        let tensors = PytorchStore::from_file(path)
            .with_top_level_key(key)
            .get_all_snapshots()
            .map_err(|e| load_err(format!("the state dict under `{key}`: {e}")))?
            .clone();
        if tensors.is_empty() {
            return Err(load_err(format!("no tensors under the key `{key}`")));
        }
        Ok(Self {
            source: format!("{}[\"{key}\"]", path.display()),
            tensors,
        })
    }

    /// The same tensors with `prefix` removed from every key that starts with it: the
    /// `_orig_mod.` that `torch.compile` adds, or the attribute name of a Lightning module's model
    /// (`model.`). Keys without the prefix stay as they are; two keys that become one are an
    /// [`Error::Data`].
    pub fn strip_prefix(self, prefix: &str) -> Result<Self> {
        self.rename_keys(|key| key.strip_prefix(prefix).unwrap_or(key).to_string())
    }

    /// The same tensors under the keys `rename` gives (a prefix added or removed, legacy names
    /// read as today's); two keys that become one are an [`Error::Data`].
    pub fn rename_keys(self, rename: impl Fn(&str) -> String) -> Result<Self> {
        let mut tensors = BTreeMap::new();
        for (old, snapshot) in self.tensors {
            let key = rename(&old);
            if tensors.contains_key(&key) {
                return Err(Error::Data(format!(
                    "{}: two keys become `{key}` (the second is `{old}`)",
                    self.source
                )));
            }
            tensors.insert(key, snapshot);
        }
        Ok(Self {
            source: self.source,
            tensors,
        })
    }

    /// Where the tensors came from (a file path), as used in error messages.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The keys, in sorted order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// The shape stored under `key`, if present.
    pub fn shape(&self, key: &str) -> Option<Vec<usize>> {
        self.tensors.get(key).map(|s| s.shape.to_vec())
    }

    /// The tensor under `key` as a float tensor on `device`, converted to the backend's float type.
    pub fn tensor<B: Backend, const D: usize>(&self, key: &str, device: &B::Device) -> Result<Tensor<B, D>> {
        let found = self.shape(key).unwrap_or_default();
        if self.tensors.contains_key(key) && found.len() != D {
            return Err(Error::StateDict {
                source_name: self.source.clone(),
                report: KeyReport {
                    mismatched: vec![ShapeMismatch {
                        key: key.to_string(),
                        expected: vec![0; D],
                        found,
                    }],
                    ..KeyReport::default()
                },
            });
        }
        Ok(Tensor::from_data(self.data(key)?, device))
    }

    /// The values under `key` as stored (any rank, the file's float type): an [`Error::StateDict`]
    /// when the key is missing, an [`Error::Load`] for a tensor that does not decode or is not
    /// float, an [`Error::NotFinite`] for a NaN or infinite value.
    pub fn data(&self, key: &str) -> Result<TensorData> {
        let snapshot = self.tensors.get(key).ok_or_else(|| Error::StateDict {
            source_name: self.source.clone(),
            report: KeyReport {
                missing: vec![key.to_string()],
                ..KeyReport::default()
            },
        })?;
        let data = snapshot.to_data().map_err(|e| Error::Load {
            path: self.source.clone().into(),
            message: format!("key `{key}`: {e:?}"),
        })?;
        if !data.dtype.is_float() {
            return Err(Error::Load {
                path: self.source.clone().into(),
                message: format!("key `{key}` holds {:?}, a float tensor was expected", data.dtype),
            });
        }
        // A NaN weight would only show as NaN logits later; name the tensor now.
        if !data.iter::<f64>().all(f64::is_finite) {
            return Err(Error::NotFinite {
                what: format!("{}: key `{key}`", self.source),
            });
        }
        Ok(data)
    }
}

/// An [`Error::Load`] if `path` is not a file; otherwise the maker of load errors about it.
fn existing_file(path: &Path) -> Result<impl Fn(String) -> Error + '_> {
    let load_err = move |message: String| Error::Load {
        path: path.to_path_buf(),
        message,
    };
    if path.is_file() {
        Ok(load_err)
    } else {
        Err(load_err("no such file".into()))
    }
}
