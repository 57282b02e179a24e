//! Checkpoint directories: files written atomically, a manifest with their checksums written last.
//!
//! ```text
//! run_dir/checkpoints/step-00000200/
//!     model.safetensors  the model's float parameters by module path, in their own float type
//!                        (`model_file.rs`); `model.bin`, burn's record, for a model with
//!                        integer or boolean parameters and in checkpoints written before
//!     optimizer-0.bin    optimizer state of each parameter group
//!     optimizer-1.bin
//!     carry.bin          truncated-BPTT state, when the task carries one
//!     manifest.json      step, data position, seed, scheduler, configs, parameter shapes,
//!                        and the size and CRC-32C of every file above; written last
//! ```
//! A directory without a readable manifest is an interrupted write and is ignored (and pruned).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::io::{atomic_write, crc32c, record, sync_dir};
use crate::optim::{LrScheduler, OptimizerConfig};
use crate::{Error, Result};

/// The manifest's format version.
pub(crate) const FORMAT: u32 = 1;

/// Size and checksum of one file of a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct FileEntry {
    pub name: String,
    pub bytes: u64,
    pub crc32c: u32,
}

/// A parameter's path and shape, to refuse a checkpoint of another architecture before loading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ParamShape {
    pub path: String,
    pub shape: Vec<usize>,
}

/// The best-checkpoint and early-stopping bookkeeping, saved so that a resumed run decides alike.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Tracker {
    pub best: Option<f64>,
    pub best_step: Option<u64>,
    pub bad_validations: u64,
    pub skipped_steps: u64,
}

/// Where the data stream stands, and how many micro-batches the backend RNG has been seeded for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Position {
    /// Optimizer steps completed.
    pub step: u64,
    /// The current epoch.
    pub epoch: u64,
    /// The next batch of the epoch.
    pub batch_index: usize,
    /// Micro-batches consumed since the start (seeds the backend RNG per micro-batch).
    pub micro_step: u64,
}

/// `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub format: u32,
    pub position: Position,
    pub seed: u64,
    pub scheduler: LrScheduler,
    pub optimizer: OptimizerConfig,
    pub model_config: serde_json::Value,
    pub params: Vec<ParamShape>,
    pub tracker: Tracker,
    /// The monitored validation metric at this step, if a validation ran here.
    pub metric: Option<f64>,
    pub files: Vec<FileEntry>,
}

/// What [`visit_params`] calls: `(path, shape, read the values)`.
type ParamFn<'a> = dyn FnMut(String, Vec<usize>, &dyn Fn() -> TensorData) + 'a;

/// Calls `f(path, shape, param)` for every float parameter, with its dotted path
/// (`h.0.linear1.weight`); `param` reads the values back only when called.
fn visit_params<B: Backend, M: Module<B>>(model: &M, f: &mut ParamFn<'_>) {
    struct Paths<'a, 'f> {
        path: Vec<String>,
        f: &'a mut ParamFn<'f>,
    }
    impl<B: Backend> ModuleVisitor<B> for Paths<'_, '_> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let shape = param.shape().dims::<D>().to_vec();
            (self.f)(self.path.join("."), shape, &|| param.val().into_data());
        }
    }
    model.visit(&mut Paths { path: Vec::new(), f });
}

/// The shapes of all float parameters, with dotted paths.
pub(crate) fn param_shapes<B: Backend, M: Module<B>>(model: &M) -> Vec<ParamShape> {
    let mut out = Vec::new();
    visit_params::<B, M>(model, &mut |path, shape, _| out.push(ParamShape { path, shape }));
    out
}

/// The dotted path of the first float parameter holding NaN or an infinity.
pub(crate) fn first_non_finite<B: Backend, M: Module<B>>(model: &M) -> Option<String> {
    let mut found = None;
    visit_params::<B, M>(model, &mut |path, _, values| {
        if found.is_none() && !values().iter::<f64>().all(f64::is_finite) {
            found = Some(path);
        }
    });
    found
}

pub(crate) fn checkpoints_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("checkpoints")
}

fn step_dir(run_dir: &Path, step: u64) -> PathBuf {
    checkpoints_dir(run_dir).join(format!("step-{step:08}"))
}

/// What a checkpoint holds besides its manifest, by role. Only this file knows the file names.
pub(crate) struct Contents {
    /// The model.
    pub model: ModelBytes,
    /// The optimizer state of each parameter group.
    pub optimizer: Vec<Vec<u8>>,
    /// The task's carried state (truncated BPTT), if any.
    pub carry: Option<Vec<u8>>,
}

/// A checkpoint's model file.
pub(crate) enum ModelBytes {
    /// `model.safetensors` (see `model_file.rs`).
    Safetensors(Vec<u8>),
    /// `model.bin`: burn's record.
    Record(Vec<u8>),
}

const MODEL_FILE: &str = "model.bin";
const SAFETENSORS_FILE: &str = "model.safetensors";
const CARRY_FILE: &str = "carry.bin";

fn optimizer_file(group: usize) -> String {
    format!("optimizer-{group}.bin")
}

impl Contents {
    /// `(file name, bytes)` in the order they are written.
    fn into_files(self) -> Vec<(String, Vec<u8>)> {
        let mut files = vec![match self.model {
            ModelBytes::Safetensors(b) => (SAFETENSORS_FILE.to_string(), b),
            ModelBytes::Record(b) => (MODEL_FILE.to_string(), b),
        }];
        files.extend(
            self.optimizer
                .into_iter()
                .enumerate()
                .map(|(i, b)| (optimizer_file(i), b)),
        );
        files.extend(self.carry.map(|c| (CARRY_FILE.to_string(), c)));
        files
    }

    /// The contents of a checkpoint's checked files; a model file must be among them.
    fn from_files(dir: &Path, mut files: Vec<(String, Vec<u8>)>) -> Result<Self> {
        let mut take = |name: &str| {
            let i = files.iter().position(|(n, _)| n == name)?;
            Some(files.swap_remove(i).1)
        };
        let model = match (take(SAFETENSORS_FILE), take(MODEL_FILE)) {
            (Some(b), None) => ModelBytes::Safetensors(b),
            (None, Some(b)) => ModelBytes::Record(b),
            (Some(_), Some(_)) => {
                return Err(Error::Checkpoint {
                    path: dir.to_path_buf(),
                    message: format!("the manifest lists both {SAFETENSORS_FILE} and {MODEL_FILE}"),
                });
            }
            (None, None) => {
                return Err(Error::Checkpoint {
                    path: dir.to_path_buf(),
                    message: format!("neither {SAFETENSORS_FILE} nor {MODEL_FILE} is listed in the manifest"),
                });
            }
        };
        let optimizer = (0..).map_while(|i| take(&optimizer_file(i))).collect();
        let carry = take(CARRY_FILE);
        Ok(Self {
            model,
            optimizer,
            carry,
        })
    }
}

/// Writes a checkpoint: every file atomically, then the manifest (atomically, last).
pub(crate) fn write(run_dir: &Path, mut manifest: Manifest, contents: Contents) -> Result<PathBuf> {
    let dir = step_dir(run_dir, manifest.position.step);
    std::fs::create_dir_all(&dir).map_err(|e| Error::Save {
        path: dir.clone(),
        message: e.to_string(),
    })?;
    manifest.files.clear();
    for (name, bytes) in contents.into_files() {
        atomic_write(&dir.join(&name), &bytes)?;
        manifest.files.push(FileEntry {
            name,
            bytes: bytes.len() as u64,
            crc32c: crc32c(&bytes),
        });
    }
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Save {
        path: dir.join("manifest.json"),
        message: e.to_string(),
    })?;
    atomic_write(&dir.join("manifest.json"), &json)?;
    let _ = sync_dir(&checkpoints_dir(run_dir));
    Ok(dir)
}

/// Reads a checkpoint's manifest and files, checking every size and checksum.
pub(crate) fn read(dir: &Path) -> Result<(Manifest, Contents)> {
    let bad = |message: String| Error::Checkpoint {
        path: dir.to_path_buf(),
        message,
    };
    let manifest_path = dir.join("manifest.json");
    let text = std::fs::read(&manifest_path).map_err(|e| {
        bad(format!(
            "no readable manifest.json ({e}): not a checkpoint, or an interrupted one"
        ))
    })?;
    let manifest: Manifest = serde_json::from_slice(&text)
        .map_err(|e| bad(format!("manifest.json is not a valid manifest: {e}")))?;
    if manifest.format != FORMAT {
        return Err(bad(format!(
            "manifest format {} (this version of ember-lm reads format {FORMAT})",
            manifest.format
        )));
    }
    let mut files = Vec::new();
    for f in &manifest.files {
        let bytes = std::fs::read(dir.join(&f.name)).map_err(|e| bad(format!("{}: {e}", f.name)))?;
        if bytes.len() as u64 != f.bytes {
            return Err(bad(format!(
                "{} has {} bytes, the manifest expects {} (truncated or replaced)",
                f.name,
                bytes.len(),
                f.bytes
            )));
        }
        let crc = crc32c(&bytes);
        if crc != f.crc32c {
            return Err(bad(format!(
                "{}: CRC-32C {crc:08x}, the manifest expects {:08x} (corrupted)",
                f.name, f.crc32c
            )));
        }
        files.push((f.name.clone(), bytes));
    }
    let contents = Contents::from_files(dir, files)?;
    Ok((manifest, contents))
}

/// Every `step-N` directory under `run_dir`, complete or not, as `(step, dir)` sorted by step.
pub(crate) fn list_all_dirs(run_dir: &Path) -> Vec<(u64, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(checkpoints_dir(run_dir)) else {
        return Vec::new();
    };
    let mut out: Vec<(u64, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let step = name.strip_prefix("step-")?.parse::<u64>().ok()?;
            Some((step, e.path()))
        })
        .collect();
    out.sort();
    out
}

/// Complete checkpoints under `run_dir`, as `(step, dir)` sorted by step.
pub(crate) fn list(run_dir: &Path) -> Vec<(u64, PathBuf)> {
    list_all_dirs(run_dir)
        .into_iter()
        .filter(|(_, dir)| dir.join("manifest.json").is_file())
        .collect()
}

/// The checkpoint to resume from: `path` itself if it holds a manifest, else the latest complete
/// checkpoint of the run directory `path`.
pub(crate) fn resolve(path: &Path) -> Result<PathBuf> {
    if path.join("manifest.json").is_file() {
        return Ok(path.to_path_buf());
    }
    list(path)
        .pop()
        .map(|(_, dir)| dir)
        .ok_or_else(|| Error::Checkpoint {
            path: path.to_path_buf(),
            message: "neither a checkpoint directory (no manifest.json) nor a run directory with a complete \
                  checkpoint under checkpoints/"
                .into(),
        })
}

/// Deletes all but the last `keep_last` complete checkpoints and the best one, and any incomplete
/// directory older than the newest complete checkpoint (left by an interrupted write).
pub(crate) fn prune(run_dir: &Path, keep_last: usize, best_step: Option<u64>) -> Vec<PathBuf> {
    let complete = list(run_dir);
    let newest = complete.last().map(|(s, _)| *s);
    let keep_from = complete.len().saturating_sub(keep_last.max(1));
    let mut removed = Vec::new();
    for (i, (step, dir)) in complete.iter().enumerate() {
        if i < keep_from && Some(*step) != best_step && std::fs::remove_dir_all(dir).is_ok() {
            removed.push(dir.clone());
        }
    }
    if let Some(newest) = newest {
        for (step, dir) in list_all_dirs(run_dir) {
            if step < newest && !dir.join("manifest.json").is_file() && std::fs::remove_dir_all(&dir).is_ok()
            {
                removed.push(dir);
            }
        }
    }
    removed
}

/// The first parameter whose path or shape differs between a checkpoint and a model, in words.
pub(crate) fn shapes_diff(saved: &[ParamShape], model: &[ParamShape]) -> Option<String> {
    if saved == model {
        return None;
    }
    Some(
        saved
            .iter()
            .zip(model)
            .find(|(a, b)| a != b)
            .map(|(a, b)| {
                format!(
                    "`{}` {:?} in the checkpoint, `{}` {:?} in the model",
                    a.path, a.shape, b.path, b.shape
                )
            })
            .unwrap_or_else(|| {
                format!(
                    "{} parameters in the checkpoint, {} in the model",
                    saved.len(),
                    model.len()
                )
            }),
    )
}

/// `model` with the parameters of a checkpoint's `model.bin`, after checking that the manifest
/// lists this model's parameters, that the file decodes to exactly those (a foreign `model.bin`
/// with an updated manifest is refused), and that every value is finite.
pub(crate) fn restore_model<B: Backend, M: Module<B>>(
    dir: &Path,
    manifest: &Manifest,
    bytes: &ModelBytes,
    model: M,
    device: &B::Device,
) -> Result<M> {
    let bad = |message: String| Error::Checkpoint {
        path: dir.to_path_buf(),
        message,
    };
    if let Some(diff) = shapes_diff(&manifest.params, &param_shapes::<B, M>(&model)) {
        return Err(bad(format!(
            "its parameters are not this model's (another architecture or configuration?): {diff}"
        )));
    }
    let (file, model) = match bytes {
        ModelBytes::Safetensors(b) => (
            SAFETENSORS_FILE,
            super::model_file::decode::<B, M>(b, model, device)
                .map_err(|e| bad(format!("{SAFETENSORS_FILE}: {e}")))?,
        ),
        ModelBytes::Record(b) => {
            let record =
                record::decode::<B, M::Record>(b, device).map_err(|e| bad(format!("{MODEL_FILE} {e}")))?;
            let model = catch_unwind(AssertUnwindSafe(|| model.load_record(record)))
                .map_err(|_| bad(format!("{MODEL_FILE} does not fit this model")))?;
            (MODEL_FILE, model)
        }
    };
    if let Some(diff) = shapes_diff(&manifest.params, &param_shapes::<B, M>(&model)) {
        return Err(bad(format!(
            "{file} does not hold the parameters its manifest lists: {diff}"
        )));
    }
    if let Some(path) = first_non_finite::<B, M>(&model) {
        return Err(Error::NotFinite {
            what: format!("parameter `{path}` of {}", dir.join(file).display()),
        });
    }
    Ok(model)
}

/// Loads the model saved in a checkpoint (`path`: a checkpoint directory, or a run directory
/// whose latest checkpoint is taken) into `model`, on any backend (autodiff or not), after the
/// checks `Trainer::resume` makes: sizes, checksums, every parameter's path and shape (the first
/// that differs is named), a `model.bin` that decodes to exactly those parameters, and finite
/// values (else [`Error::NotFinite`] naming the parameter). For inference and generation from a
/// run directory.
pub fn load_model<B: Backend, M: Module<B>>(
    path: impl AsRef<Path>,
    model: M,
    device: &B::Device,
) -> Result<M> {
    let dir = resolve(path.as_ref())?;
    let (manifest, contents) = read(&dir)?;
    restore_model(&dir, &manifest, &contents.model, model, device)
}
