//! [`TrainState`]: everything a checkpoint holds, and its way to and from a checkpoint directory
//! (the file names and format are `checkpoint.rs`'s).

use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleMapper, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use burn::tensor::backend::AutodiffBackend;

use crate::io::record;
use crate::optim::{LrScheduler, ModelOptimizer};
use crate::train::checkpoint::{self, Manifest, Position, Tracker};
use crate::train::task::Task;
use crate::{Error, Result};

/// The model, the optimizer and its state, the schedule, the position in the data, the
/// best-value tracker and the task's carried state: what a checkpoint saves and `resume` restores.
pub(crate) struct TrainState<B: crate::TrainBackend, T: Task<B>> {
    pub model: T::Model,
    pub optim: ModelOptimizer<B, T::Model>,
    pub scheduler: LrScheduler,
    pub pos: Position,
    pub tracker: Tracker,
    pub carry: Option<T::Carry>,
}

/// What a checkpoint records beside the state: the run's seed, the model's configuration, and
/// the monitored metric if a validation ran at this step.
pub(crate) struct CheckpointMeta {
    pub seed: u64,
    pub model_config: serde_json::Value,
    pub metric: Option<f64>,
}

impl<B: crate::TrainBackend, T: Task<B>> TrainState<B, T> {
    /// The model.
    pub fn model(&self) -> &T::Model {
        &self.model
    }

    /// Replaces the model by `f(model)`, for what takes the model by value (the replicas'
    /// synchronisation). A [`shell`] of it stands in meanwhile.
    pub fn map_model(&mut self, f: impl FnOnce(T::Model) -> T::Model) {
        let stand_in = shell::<B, T::Model>(&self.model);
        let model = std::mem::replace(&mut self.model, stand_in);
        self.model = f(model);
    }

    /// The optimizer's update at rate `lr` (burn's `Optimizer::step` takes the model by value).
    pub fn update(&mut self, lr: f64, grads: GradientsParams) {
        let stand_in = shell::<B, T::Model>(&self.model);
        let model = std::mem::replace(&mut self.model, stand_in);
        self.model = self.optim.step_lr(lr, model, grads);
    }

    /// Writes the state as the checkpoint of its step under `run_dir`.
    pub fn save(&self, run_dir: &Path, meta: CheckpointMeta) -> Result<PathBuf> {
        let save_err = |message: String| Error::Serialize {
            what: format!("a checkpoint of step {} in {}", self.pos.step, run_dir.display()),
            message,
        };
        // The float parameters as safetensors; burn's record for a model with other kinds.
        let model = match super::super::model_file::encode::<B, _>(self.model()).map_err(save_err)? {
            Some(bytes) => checkpoint::ModelBytes::Safetensors(bytes),
            None => checkpoint::ModelBytes::Record(
                record::encode::<B, _>(self.model().clone().into_record()).map_err(save_err)?,
            ),
        };
        let contents = checkpoint::Contents {
            model,
            optimizer: self.optim.state_bytes()?,
            carry: match &self.carry {
                Some(carry) => Some(record::encode::<B, _>(carry.clone()).map_err(save_err)?),
                None => None,
            },
        };
        let manifest = Manifest {
            format: checkpoint::FORMAT,
            position: self.pos,
            seed: meta.seed,
            scheduler: self.scheduler.clone(),
            optimizer: self.optim.config().clone(),
            model_config: meta.model_config,
            params: checkpoint::param_shapes::<B, _>(self.model()),
            tracker: self.tracker.clone(),
            metric: meta.metric,
            files: Vec::new(),
        };
        checkpoint::write(run_dir, manifest, contents)
    }

    /// The state of the checkpoint at `path` (a checkpoint directory, or a run directory whose
    /// latest complete checkpoint is taken) and its seed, built on this state's model and
    /// optimizer configuration. Everything is read and checked (sizes, checksums, the model's
    /// configuration against `model_config`, parameter shapes, the optimizer configuration) and
    /// decoded before it returns, so an error leaves `self` untouched.
    pub fn load(
        &self,
        path: &Path,
        model_config: &serde_json::Value,
        device: &B::Device,
    ) -> Result<(Self, u64)> {
        let dir = checkpoint::resolve(path)?;
        let (manifest, contents) = checkpoint::read(&dir)?;
        let bad = |message: String| Error::Checkpoint {
            path: dir.clone(),
            message,
        };
        if &manifest.model_config != model_config {
            return Err(bad(format!(
                "saved for model configuration {}, this model's is {}",
                manifest.model_config, model_config
            )));
        }
        let config = self.optim.config();
        if serde_json::to_value(&manifest.optimizer).ok() != serde_json::to_value(config).ok() {
            return Err(bad(format!(
                "saved with optimizer {:?}, this trainer uses {config:?}",
                manifest.optimizer
            )));
        }
        let model =
            checkpoint::restore_model(&dir, &manifest, &contents.model, self.model().clone(), device)?;
        let optim = config
            .init::<B, T::Model>(&model)?
            .load_state_bytes(contents.optimizer, device)
            .map_err(|e| bad(format!("optimizer state: {e}")))?;
        let carry = match contents.carry {
            Some(bytes) => Some(
                record::decode::<B, T::Carry>(&bytes, device).map_err(|e| bad(format!("carry state {e}")))?,
            ),
            None => None,
        };
        let state = Self {
            model,
            optim,
            scheduler: manifest.scheduler,
            pos: manifest.position,
            tracker: manifest.tracker,
            carry,
        };
        Ok((state, manifest.seed))
    }
}

/// A stand-in for `model` while something owns it by value: the same structure, every float
/// parameter a one-element tensor. It shares no buffer with the model, so the optimizer's update
/// of the model stays in place (a clone left behind would keep every parameter shared: no
/// in-place update, twice the parameter memory during the step), and it is never read.
fn shell<B: AutodiffBackend, M: Module<B>>(model: &M) -> M {
    struct Shell;
    impl<B: burn::tensor::backend::Backend> ModuleMapper<B> for Shell {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            // `empty`: an allocation without a kernel launch.
            param.map(|t| Tensor::empty([1; D], &t.device()))
        }
    }
    model.clone().map(&mut Shell)
}
