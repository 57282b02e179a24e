//! The weight tree: each module names its PyTorch keys once, in
//! [`TorchWeights::visit_weights`], and that one description lists the keys, loads a
//! [`StateDict`] and saves one (in the spirit of candle's `VarBuilder`).
//!
//! ```text
//! w.pp("self_attn").tensor("in_proj_weight", &mut self.in_proj_weight)?;
//!       │                     │
//!       │                     └─ key "…self_attn.in_proj_weight"
//!       └─ a child path: "…self_attn."
//! ```
//!
//! Loading checks the key set once, at the root: every missing key, unexpected key and shape
//! mismatch is reported together in one [`Error::StateDict`], before any parameter changes.

use std::collections::BTreeSet;
use std::path::Path;

use burn::module::Param;
use burn::tensor::{ElementConversion, Tensor, TensorData, backend::Backend};

use super::StateDict;
use super::export;
use super::key_report::KeyReport;
use crate::{Error, Result};

/// A module whose parameters have PyTorch names, so that it loads a PyTorch `state_dict` and
/// saves one that `torch.nn.Module.load_state_dict(..., strict=True)` accepts.
///
/// Implementors write [`visit_weights`](Self::visit_weights) only; loading and saving come from
/// it. A model nests another by visiting it under a child path (`w.pp("encoder")`), so any
/// model can be loaded under a prefix.
pub trait TorchWeights: Sized {
    /// Names every parameter once, under its PyTorch key, relative to `w`'s path.
    fn visit_weights(&mut self, w: &mut WeightPath<'_, '_>) -> Result<()>;

    /// PyTorch's keys of the parameters with their shapes, in visiting order (a tied second
    /// name and ignored buffers left out).
    fn pytorch_keys(&self) -> Vec<(String, Vec<usize>)>
    where
        Self: Clone,
    {
        collect_keys(&mut self.clone(), "")
            .into_iter()
            .filter(|k| k.kind == KeyKind::Param)
            .map(|k| (k.key, k.shape))
            .collect()
    }

    /// Loads every parameter from the keys under `prefix` (`""` for a bare module,
    /// `"encoder.rnn."` for a submodule of a larger checkpoint), keeping each parameter's id
    /// (so optimizer state stays attached) and `require_grad`. Keys outside `prefix` are ignored;
    /// under it the set must be exact: missing keys, unexpected keys and shape mismatches are
    /// reported together in one [`Error::StateDict`], and the module is not returned half-loaded.
    fn load_state_dict(mut self, dict: &StateDict, prefix: &str) -> Result<Self> {
        load_into(&mut self, dict, prefix)?;
        Ok(self)
    }

    /// Reads a state dict file (`.safetensors`, or `.pt`/`.pth` from `torch.save`) and loads it
    /// with [`load_state_dict`](Self::load_state_dict) and an empty prefix.
    fn load_pytorch_file(self, path: impl AsRef<Path>) -> Result<Self> {
        let dict = StateDict::from_file(path)?;
        self.load_state_dict(&dict, "")
    }

    /// The parameters as a PyTorch `state_dict`: each key under `prefix` with the parameter's
    /// value (in the backend's float type), in visiting order.
    fn pytorch_state_dict(&self, prefix: &str) -> Result<Vec<(String, TensorData)>>
    where
        Self: Clone,
    {
        state_dict_of(&mut self.clone(), prefix)
    }

    /// PyTorch's `named_parameters()`: every parameter under its PyTorch key with its value, in
    /// PyTorch's layout (a tied parameter once, under its first name).
    fn named_parameters(&self) -> Result<Vec<(String, TensorData)>>
    where
        Self: Clone,
    {
        let tied: BTreeSet<String> = collect_keys(&mut self.clone(), "")
            .into_iter()
            .filter(|k| k.kind != KeyKind::Param)
            .map(|k| k.key)
            .collect();
        let mut out = state_dict_of(&mut self.clone(), "")?;
        out.retain(|(k, _)| !tied.contains(k));
        Ok(out)
    }

    /// Writes [`pytorch_state_dict`](Self::pytorch_state_dict) (no prefix) to a `.safetensors`
    /// file, atomically: `module.load_state_dict(safetensors.torch.load_file(path))` loads it into
    /// the matching PyTorch module with `strict=True`. Any other extension is an [`Error::Save`].
    fn save_pytorch(&self, path: impl AsRef<Path>) -> Result<()>
    where
        Self: Clone,
    {
        export::write_safetensors(path.as_ref(), &self.pytorch_state_dict("")?)
    }
}

/// Loads `module` in place from `dict` under `prefix`: the key check first, then every tensor.
pub(crate) fn load_into<M: TorchWeights>(module: &mut M, dict: &StateDict, prefix: &str) -> Result<()> {
    let keys = collect_keys(module, prefix);
    dict.check_keys(prefix, &keys)?;
    let none = BTreeSet::new();
    module.visit_weights(&mut WeightPath::root(prefix, &mut Visit::Load(dict, &none)))
}

/// What a lenient load ([`load_lenient`]) found, transformers' `output_loading_info`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadInfo {
    /// Keys the model has and the checkpoint lacks, whose parameters keep their fresh
    /// initialisation (a new task head).
    pub newly_initialized: Vec<String>,
    /// Keys of the checkpoint the model does not have (a pretraining head it does not use).
    pub unused: Vec<String>,
}

/// Loads `module` from `dict` under `prefix` as transformers' `from_pretrained` does: a missing
/// key for which `may_be_new` holds keeps its parameter's value and is reported as newly
/// initialised; keys of the dict the module does not have are reported as unused. Any other
/// missing key, and every shape mismatch, is an [`Error::StateDict`] before anything changes.
pub(crate) fn load_lenient<M: TorchWeights>(
    module: &mut M,
    dict: &StateDict,
    prefix: &str,
    may_be_new: &dyn Fn(&str) -> bool,
) -> Result<LoadInfo> {
    let keys = collect_keys(module, prefix);
    let report = match dict.check_keys(prefix, &keys) {
        Ok(()) => KeyReport::default(),
        Err(Error::StateDict { report, .. }) => report,
        Err(e) => return Err(e),
    };
    let (new, missing): (Vec<String>, Vec<String>) = report.missing.into_iter().partition(|k| may_be_new(k));
    KeyReport {
        missing,
        unexpected: Vec::new(),
        mismatched: report.mismatched,
    }
    .into_result(dict.source())?;
    // A parameter stored under several keys loads only when all of them are there.
    let mut skip: BTreeSet<String> = new.iter().cloned().collect();
    for k in &keys {
        if let (Some((id, _)), Some(_)) = (k.param, k.part)
            && skip.contains(&k.key)
        {
            skip.extend(
                keys.iter()
                    .filter(|o| o.param.map(|p| p.0) == Some(id))
                    .map(|o| o.key.clone()),
            );
        }
    }
    module.visit_weights(&mut WeightPath::root(prefix, &mut Visit::Load(dict, &skip)))?;
    Ok(LoadInfo {
        newly_initialized: keys
            .iter()
            .filter(|k| skip.contains(&k.key))
            .map(|k| k.key.clone())
            .collect(),
        unused: report.unexpected,
    })
}

/// `module`'s parameters under their keys (prefixed with `prefix`), in visiting order.
pub(crate) fn state_dict_of<M: TorchWeights>(
    module: &mut M,
    prefix: &str,
) -> Result<Vec<(String, TensorData)>> {
    let mut visit = Visit::Save(Vec::new());
    module.visit_weights(&mut WeightPath::root(prefix, &mut visit))?;
    match visit {
        Visit::Save(tensors) => Ok(tensors),
        _ => unreachable!("the visit was made in save mode"),
    }
}

/// The keys `module` expects under `prefix`. A key visit reads no tensor, and `WeightPath`
/// fails only when loading, so a visit in this mode has no error to report.
pub(crate) fn collect_keys<M: TorchWeights>(module: &mut M, prefix: &str) -> Vec<ExpectedKey> {
    let mut visit = Visit::Keys(Vec::new());
    let listed = module.visit_weights(&mut WeightPath::root(prefix, &mut visit));
    debug_assert!(listed.is_ok(), "a key visit failed: {listed:?}");
    match visit {
        Visit::Keys(keys) => keys,
        _ => unreachable!("the visit was made in key mode"),
    }
}

/// One key a module expects.
#[derive(Clone, Debug)]
pub(crate) struct ExpectedKey {
    pub key: String,
    pub shape: Vec<usize>,
    pub kind: KeyKind,
    /// The parameter under this key, and whether PyTorch stores it transposed (parameters only).
    pub param: Option<(burn::module::ParamId, bool)>,
    /// For a parameter stored as several keys ([`WeightPath::stacked`]): this key's block of
    /// rows, `(index, count)`.
    pub part: Option<(usize, usize)>,
}

/// Whether a key must be there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyKind {
    /// A parameter: required.
    Param,
    /// A second name of a tied parameter: may be there, and must then hold the same values.
    Tied,
    /// A buffer the module computes itself (GPT-2's causal `attn.bias`): may be there, ignored.
    Buffer,
}

/// What a visit does at each key.
enum Visit<'d> {
    Keys(Vec<ExpectedKey>),
    /// Loading from the dict, leaving the parameters of the keys in the set as they are (keys a
    /// lenient load found missing).
    Load(&'d StateDict, &'d BTreeSet<String>),
    Save(Vec<(String, TensorData)>),
}

/// A position in the weight tree: the key prefix so far, and what the visit does at each key.
pub struct WeightPath<'v, 'd> {
    prefix: String,
    visit: &'v mut Visit<'d>,
}

impl<'v, 'd> WeightPath<'v, 'd> {
    fn root(prefix: &str, visit: &'v mut Visit<'d>) -> Self {
        Self {
            prefix: prefix.to_string(),
            visit,
        }
    }

    /// The child path `name.` (PyTorch's submodule attribute).
    pub fn pp(&mut self, name: impl std::fmt::Display) -> WeightPath<'_, 'd> {
        self.under(format!("{name}."))
    }

    /// The child path with `prefix` appended as is (`"transformer."`, or `""`).
    pub fn under(&mut self, prefix: impl AsRef<str>) -> WeightPath<'_, 'd> {
        WeightPath {
            prefix: format!("{}{}", self.prefix, prefix.as_ref()),
            visit: self.visit,
        }
    }

    /// Visits `module` under the child path `name.`.
    pub fn module(&mut self, name: impl std::fmt::Display, module: &mut impl TorchWeights) -> Result<()> {
        module.visit_weights(&mut self.pp(name))
    }

    /// A parameter stored under `name` as it is.
    pub fn tensor<B: Backend, const D: usize>(
        &mut self,
        name: &str,
        p: &mut Param<Tensor<B, D>>,
    ) -> Result<()> {
        self.tensor_as(name, p, Layout::AsIs)
    }

    /// A parameter present only in some configurations (a bias); nothing when `None`.
    pub fn optional<B: Backend, const D: usize>(
        &mut self,
        name: &str,
        p: &mut Option<Param<Tensor<B, D>>>,
    ) -> Result<()> {
        match p {
            Some(p) => self.tensor(name, p),
            None => Ok(()),
        }
    }

    /// A matrix parameter stored transposed, `[in, out]` (GPT-2's `Conv1D`), kept here as
    /// PyTorch's `nn.Linear` `[out, in]`.
    pub fn transposed<B: Backend>(&mut self, name: &str, p: &mut Param<Tensor<B, 2>>) -> Result<()> {
        self.tensor_as(name, p, Layout::Transposed)
    }

    /// A second name of the tied parameter `p` (a language model head tied to its embedding):
    /// saved under `name` too, as PyTorch's `state_dict` does, and on loading allowed to be
    /// absent; when present it must hold the same values, or the checkpoint's model was not
    /// tied and an [`Error::Data`] says so.
    pub fn tied<B: Backend, const D: usize>(
        &mut self,
        name: &str,
        p: &Param<Tensor<B, D>>,
        tied_to: &str,
    ) -> Result<()> {
        let key = format!("{}{name}", self.prefix);
        match &mut *self.visit {
            Visit::Keys(keys) => keys.push(ExpectedKey {
                key,
                shape: p.dims().to_vec(),
                kind: KeyKind::Tied,
                param: None,
                part: None,
            }),
            Visit::Load(dict, _) => {
                if dict.shape(&key).is_some() {
                    let stored = dict.tensor::<B, D>(&key, &p.lazy_device())?;
                    let differs = (stored - p.val()).abs().max().into_scalar().elem::<f64>() > 0.0;
                    if differs {
                        return Err(Error::Data(format!(
                            "{}: `{key}` differs from `{tied_to}`, so the checkpoint's weights are not \
                             tied; build the model with untied weights",
                            dict.source()
                        )));
                    }
                }
            }
            Visit::Save(tensors) => tensors.push((key, p.val().into_data())),
        }
        Ok(())
    }

    /// A parameter stored as `names.len()` equal blocks of rows under separate keys (BERT's
    /// `query`, `key` and `value`, kept here as one packed projection): loaded by
    /// concatenating them along the first dimension, saved split.
    pub fn stacked<B: Backend, const D: usize>(
        &mut self,
        names: &[&str],
        p: &mut Param<Tensor<B, D>>,
    ) -> Result<()> {
        let keys: Vec<String> = names.iter().map(|n| format!("{}{n}", self.prefix)).collect();
        let n = keys.len();
        let mut shape = p.dims().to_vec();
        shape[0] /= n.max(1);
        match &mut *self.visit {
            Visit::Keys(expected) => {
                expected.extend(keys.into_iter().enumerate().map(|(i, key)| ExpectedKey {
                    key,
                    shape: shape.clone(),
                    kind: KeyKind::Param,
                    param: Some((p.id, false)),
                    part: Some((i, n)),
                }))
            }
            Visit::Load(_, skip) if keys.iter().any(|k| skip.contains(k)) => {}
            Visit::Load(dict, _) => {
                let device = p.lazy_device();
                let parts = keys
                    .iter()
                    .map(|k| dict.tensor::<B, D>(k, &device))
                    .collect::<Result<Vec<_>>>()?;
                let value = Tensor::cat(parts, 0);
                *p = p.clone().map(move |old| {
                    if old.is_require_grad() {
                        value.require_grad()
                    } else {
                        value
                    }
                });
            }
            Visit::Save(tensors) => {
                for (key, part) in keys.into_iter().zip(p.val().chunk(n, 0)) {
                    tensors.push((key, part.into_data()));
                }
            }
        }
        Ok(())
    }

    /// [`stacked`](Self::stacked) for a parameter present only in some configurations.
    pub fn stacked_optional<B: Backend, const D: usize>(
        &mut self,
        names: &[&str],
        p: &mut Option<Param<Tensor<B, D>>>,
    ) -> Result<()> {
        match p {
            Some(p) => self.stacked(names, p),
            None => Ok(()),
        }
    }

    /// A buffer that checkpoints may carry under `name` and the module computes itself: allowed
    /// on loading and ignored; not saved.
    pub fn buffer(&mut self, name: &str) {
        if let Visit::Keys(keys) = &mut *self.visit {
            keys.push(ExpectedKey {
                key: format!("{}{name}", self.prefix),
                shape: Vec::new(),
                kind: KeyKind::Buffer,
                param: None,
                part: None,
            });
        }
    }

    fn tensor_as<B: Backend, const D: usize>(
        &mut self,
        name: &str,
        p: &mut Param<Tensor<B, D>>,
        layout: Layout,
    ) -> Result<()> {
        let key = format!("{}{name}", self.prefix);
        let mut shape = p.dims().to_vec();
        if layout == Layout::Transposed {
            shape.reverse();
        }
        match &mut *self.visit {
            Visit::Keys(keys) => keys.push(ExpectedKey {
                key,
                shape,
                kind: KeyKind::Param,
                param: Some((p.id, layout == Layout::Transposed)),
                part: None,
            }),
            Visit::Load(_, skip) if skip.contains(&key) => {}
            Visit::Load(dict, _) => {
                let value = dict.tensor::<B, D>(&key, &p.lazy_device())?;
                let value = match layout {
                    Layout::AsIs => value,
                    Layout::Transposed => value.transpose(),
                };
                // `map` keeps the parameter's id, so optimizer state stays attached.
                *p = p.clone().map(move |old| {
                    if old.is_require_grad() {
                        value.require_grad()
                    } else {
                        value
                    }
                });
            }
            Visit::Save(tensors) => {
                let value = match layout {
                    Layout::AsIs => p.val(),
                    Layout::Transposed => p.val().transpose(),
                };
                tensors.push((key, value.into_data()));
            }
        }
        Ok(())
    }
}

/// How a parameter is stored.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    AsIs,
    Transposed,
}
