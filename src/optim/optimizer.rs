//! [`ModelOptimizer`]: burn-optim's optimizers with parameter groups, clipping and saved state.

use std::collections::HashSet;

use burn::module::{AutodiffModule, ModuleVisitor, Param, ParamId};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{
    AdaGrad, AdaGradConfig, Adam, AdamConfig, GradientsParams, Optimizer, RmsProp, RmsPropConfig, Sgd,
    SgdConfig,
};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use super::clip::{GradClip, clip_grad_norm, clip_grad_value, grad_norm};
use super::config::{Algorithm, DecayGroups, OptimizerConfig};
use super::fused_adamw::FusedAdamW;
use crate::io::record;
use crate::{Error, Result, TrainBackend};

/// One burn-optim optimizer over the module `M`.
enum Inner<B: TrainBackend, M: AutodiffModule<B>> {
    Sgd(OptimizerAdaptor<Sgd<B::InnerBackend>, M, B>),
    Adam(OptimizerAdaptor<Adam, M, B>),
    AdamW(OptimizerAdaptor<FusedAdamW, M, B>),
    RmsProp(OptimizerAdaptor<RmsProp, M, B>),
    Adagrad(OptimizerAdaptor<AdaGrad, M, B>),
}

/// Runs `$body` with `$o` bound to whichever burn optimizer `$inner` holds.
macro_rules! each_inner {
    ($inner:expr, $o:ident => $body:expr) => {
        match $inner {
            Inner::Sgd($o) => $body,
            Inner::Adam($o) => $body,
            Inner::AdamW($o) => $body,
            Inner::RmsProp($o) => $body,
            Inner::Adagrad($o) => $body,
        }
    };
}

impl<B: TrainBackend, M: AutodiffModule<B>> Inner<B, M> {
    fn new(algorithm: &Algorithm, weight_decay: f64) -> Self {
        // burn-optim takes f32 hyper-parameters; PyTorch's defaults are passed explicitly (see
        // `Algorithm` for the table of differences).
        let decay = (weight_decay > 0.0).then(|| WeightDecayConfig::new(weight_decay as f32));
        match *algorithm {
            Algorithm::Sgd {
                momentum,
                dampening,
                nesterov,
            } => {
                let momentum = (momentum > 0.0).then(|| {
                    MomentumConfig::new()
                        .with_momentum(momentum)
                        .with_dampening(dampening)
                        .with_nesterov(nesterov)
                });
                Inner::Sgd(
                    SgdConfig::new()
                        .with_momentum(momentum)
                        .with_weight_decay(decay)
                        .init(),
                )
            }
            Algorithm::Adam {
                beta1,
                beta2,
                eps,
                amsgrad,
            } => Inner::Adam(
                AdamConfig::new()
                    .with_beta_1(beta1 as f32)
                    .with_beta_2(beta2 as f32)
                    .with_epsilon(eps as f32)
                    .with_amsgrad(amsgrad)
                    .with_weight_decay(decay)
                    .init(),
            ),
            Algorithm::AdamW {
                beta1,
                beta2,
                eps,
                amsgrad,
            } => Inner::AdamW(OptimizerAdaptor::from(FusedAdamW::new(
                beta1 as f32,
                beta2 as f32,
                eps as f32,
                weight_decay as f32,
                amsgrad,
            ))),
            Algorithm::RmsProp {
                alpha,
                eps,
                momentum,
                centered,
            } => Inner::RmsProp(
                RmsPropConfig::new()
                    .with_alpha(alpha as f32)
                    .with_epsilon(eps as f32)
                    .with_momentum(momentum as f32)
                    .with_centered(centered)
                    .with_weight_decay(decay)
                    .init(),
            ),
            Algorithm::Adagrad { lr_decay, eps } => Inner::Adagrad(
                AdaGradConfig::new()
                    .with_lr_decay(lr_decay)
                    .with_epsilon(eps as f32)
                    .with_weight_decay(decay)
                    .init(),
            ),
        }
    }

    fn step(&mut self, lr: f64, model: M, grads: GradientsParams) -> M {
        each_inner!(self, o => o.step(lr, model, grads))
    }

    fn save(&self) -> Result<Vec<u8>> {
        let bytes = each_inner!(self, o => record::encode_param_map::<B, _>(o.to_record()));
        bytes.map_err(|message| Error::Serialize {
            what: "the optimizer state".into(),
            message,
        })
    }

    fn load(self, bytes: Vec<u8>, device: &B::Device) -> std::result::Result<Self, String> {
        Ok(match self {
            Inner::Sgd(o) => Inner::Sgd(o.load_record(record::decode(&bytes, device)?)),
            Inner::Adam(o) => Inner::Adam(o.load_record(record::decode(&bytes, device)?)),
            Inner::AdamW(o) => Inner::AdamW(o.load_record(record::decode(&bytes, device)?)),
            Inner::RmsProp(o) => Inner::RmsProp(o.load_record(record::decode(&bytes, device)?)),
            Inner::Adagrad(o) => Inner::Adagrad(o.load_record(record::decode(&bytes, device)?)),
        })
    }
}

/// An optimizer for one model: burn-optim's update rule, weight decay split into two parameter
/// groups, gradient clipping, and its state as bytes for checkpoints.
///
/// Built by [`OptimizerConfig::init`]. Like a PyTorch optimizer with its scheduler,
/// [`step`](Self::step) takes the learning rate from the schedule attached with
/// [`with_schedule`](Self::with_schedule) (and advances it), or else from the configuration's
/// `lr`; [`step_lr`](Self::step_lr) takes it from the caller (the [`Trainer`](crate::train::Trainer)
/// keeps its own scheduler, which it checkpoints).
pub struct ModelOptimizer<B: TrainBackend, M: AutodiffModule<B>> {
    config: OptimizerConfig,
    /// The schedule `step` follows; `None`: the constant `config.lr`.
    schedule: Option<super::LrScheduler>,
    /// The parameter groups: the first takes every parameter no other group claims (with weight
    /// decay, at the full rate); then the group without weight decay; then, with a layer-wise
    /// decay, one group per (depth, decay) pair below the top.
    groups: Vec<Group<B, M>>,
    no_decay_ids: HashSet<ParamId>,
}

/// One parameter group: its own burn-optim optimizer (and state), learning-rate factor and
/// members (`None`: every parameter no other group claims).
struct Group<B: TrainBackend, M: AutodiffModule<B>> {
    inner: Inner<B, M>,
    lr_scale: f64,
    ids: Option<HashSet<ParamId>>,
}

impl<B: TrainBackend, M: AutodiffModule<B>> ModelOptimizer<B, M> {
    pub(super) fn new(config: OptimizerConfig, model: &M) -> Self {
        let mut visitor = GroupVisitor {
            groups: config.decay_groups,
            path: Vec::new(),
            params: Vec::new(),
        };
        model.visit(&mut visitor);
        let no_decay_ids: HashSet<ParamId> = visitor
            .params
            .iter()
            .filter(|p| p.no_decay && config.decay_groups != DecayGroups::All)
            .map(|p| p.id)
            .collect();
        let split = config.weight_decay > 0.0;
        // Each parameter's (learning-rate factor, decays); the full rate with decay is the default.
        let layers = visitor
            .params
            .iter()
            .filter_map(|p| p.layer)
            .max()
            .map_or(0, |l| l + 1);
        let key = |p: &ParamPlace| {
            let scale = match (config.layer_lr_decay, p.layer) {
                (None, _) => 1.0,
                (Some(xi), Some(i)) => xi.powi((layers - i) as i32),
                (Some(xi), None) if p.embedding => xi.powi(layers as i32 + 1),
                (Some(_), None) => 1.0,
            };
            (scale, !(split && no_decay_ids.contains(&p.id)))
        };
        let mut keys: Vec<(f64, bool)> = Vec::new();
        for p in &visitor.params {
            let k = key(p);
            if k != (1.0, true) && !keys.contains(&k) {
                keys.push(k);
            }
        }
        // Full rate first, then by rate, highest first (deterministic, so saved state lines up).
        keys.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)));
        let mut groups = vec![Group {
            inner: Inner::new(&config.algorithm, config.weight_decay),
            lr_scale: 1.0,
            ids: None,
        }];
        groups.extend(keys.into_iter().map(|k| {
            Group {
                inner: Inner::new(&config.algorithm, if k.1 { config.weight_decay } else { 0.0 }),
                lr_scale: k.0,
                ids: Some(
                    visitor
                        .params
                        .iter()
                        .filter(|p| key(p) == k)
                        .map(|p| p.id)
                        .collect(),
                ),
            }
        }));
        Self {
            groups,
            no_decay_ids,
            config,
            schedule: None,
        }
    }

    /// Follows `schedule` from its step 0, with the configuration's `lr` as its base (peak)
    /// rate: each [`step`](Self::step) takes the schedule's next rate. An invalid schedule is an
    /// error.
    pub fn with_schedule(mut self, schedule: super::LrSchedule) -> Result<Self> {
        self.schedule = Some(super::LrScheduler::try_new(self.config.lr, schedule)?);
        Ok(self)
    }

    /// The learning rate the next [`step`](Self::step) will use.
    pub fn lr(&self) -> f64 {
        self.schedule.as_ref().map_or(self.config.lr, |s| s.current())
    }

    /// The configuration this optimizer was built from.
    pub fn config(&self) -> &OptimizerConfig {
        &self.config
    }

    /// Whether `id` is in the group without weight decay.
    pub fn is_no_decay(&self, id: &ParamId) -> bool {
        self.no_decay_ids.contains(id)
    }

    /// Applies the configured clipping to `grads` in place and returns the global L2 norm of the
    /// gradients before clipping (as `torch.nn.utils.clip_grad_norm_` does). Without clipping it
    /// still returns the norm, which the trainer logs and checks for NaN.
    pub fn clip(&self, model: &M, grads: &mut GradientsParams) -> f64 {
        match self.config.clip {
            Some(GradClip::Norm(max_norm)) => clip_grad_norm::<B, M>(model, grads, max_norm),
            Some(GradClip::Value(v)) => {
                let norm = grad_norm::<B, M>(model, grads);
                clip_grad_value::<B, M>(model, grads, v);
                norm
            }
            None => grad_norm::<B, M>(model, grads),
        }
    }

    /// One optimizer step at the schedule's next learning rate (advancing it), or at the
    /// configuration's `lr` without a schedule.
    pub fn step(&mut self, model: M, grads: GradientsParams) -> M {
        let lr = match &mut self.schedule {
            Some(s) => s.step(),
            None => self.config.lr,
        };
        self.step_lr(lr, model, grads)
    }

    /// One optimizer step at learning rate `lr`: each parameter group takes its own gradients
    /// at `lr` times its factor.
    pub fn step_lr(&mut self, lr: f64, mut model: M, mut grads: GradientsParams) -> M {
        // Every claimed group's gradients out first; the rest belong to the first group.
        let mut parts = Vec::with_capacity(self.groups.len());
        for group in &self.groups[1..] {
            let ids = group.ids.as_ref().expect("only the first group is unclaimed");
            let mut split = SplitVisitor::<B::InnerBackend> {
                ids,
                from: &mut grads,
                to: GradientsParams::new(),
                _b: Default::default(),
            };
            model.visit(&mut split);
            parts.push(split.to);
        }
        let first = &mut self.groups[0];
        model = first.inner.step(lr * first.lr_scale, model, grads);
        for (group, part) in self.groups[1..].iter_mut().zip(parts) {
            model = group.inner.step(lr * group.lr_scale, model, part);
        }
        model
    }

    /// The learning-rate factor of the group holding `id` (1 without a layer-wise decay).
    pub fn lr_scale(&self, id: &ParamId) -> f64 {
        self.groups
            .iter()
            .find(|g| g.ids.as_ref().is_some_and(|ids| ids.contains(id)))
            .map_or(self.groups[0].lr_scale, |g| g.lr_scale)
    }

    /// The optimizer state (moments, step counts) of every group, full precision.
    pub fn state_bytes(&self) -> Result<Vec<Vec<u8>>> {
        self.groups.iter().map(|g| g.inner.save()).collect()
    }

    /// Restores the state written by [`state_bytes`](Self::state_bytes). On error the optimizer
    /// is left as it was.
    pub fn load_state_bytes(
        self,
        groups: Vec<Vec<u8>>,
        device: &B::Device,
    ) -> std::result::Result<Self, String> {
        if groups.len() != self.groups.len() {
            return Err(format!(
                "optimizer state has {} parameter group(s), this optimizer has {}",
                groups.len(),
                self.groups.len()
            ));
        }
        let mut loaded = Vec::with_capacity(groups.len());
        for (group, bytes) in self.groups.into_iter().zip(groups) {
            loaded.push(Group {
                inner: group.inner.load(bytes, device)?,
                ..group
            });
        }
        Ok(Self {
            groups: loaded,
            ..self
        })
    }
}

/// Where a parameter sits: whether it takes no weight decay under the configured groups, its
/// layer (the index in the first `Vec` of modules on its path), and whether it is an embedding.
struct ParamPlace {
    id: ParamId,
    no_decay: bool,
    layer: Option<usize>,
    embedding: bool,
}

/// Collects every parameter's [`ParamPlace`].
struct GroupVisitor {
    groups: DecayGroups,
    /// `(field name, type of the struct holding it)` from the root to the current field.
    path: Vec<(String, String)>,
    params: Vec<ParamPlace>,
}

impl GroupVisitor {
    /// A field of an embedding module (the struct type holds the field), or a raw embedding
    /// table named like GPT-2's or BERT's.
    fn embedding(&self) -> bool {
        let in_module =
            self.path.iter().skip(1).any(|(name, ty)| {
                ty.contains("Embedding") || ty.contains("Positions") || name == "embeddings"
            });
        let name = self
            .path
            .last()
            .map(|(n, _)| n.to_lowercase())
            .unwrap_or_default();
        in_module || name == "wte" || name == "wpe" || name.contains("embed")
    }

    fn no_decay(&self, rank: usize) -> bool {
        if rank < 2 {
            return true;
        }
        match self.groups {
            DecayGroups::All | DecayGroups::NoRank1 => false,
            DecayGroups::NoBiasNormEmbedding => {
                self.path.iter().skip(1).any(|(_, ty)| ty.contains("Norm")) || self.embedding()
            }
        }
    }
}

impl<B: Backend> ModuleVisitor<B> for GroupVisitor {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.push((name.to_string(), container_type.to_string()));
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let layer = self
            .path
            .iter()
            .find(|(_, ty)| ty == "Vec")
            .and_then(|(index, _)| index.parse().ok());
        self.params.push(ParamPlace {
            id: param.id,
            no_decay: self.no_decay(D),
            layer,
            embedding: self.embedding(),
        });
    }
}

/// Moves the gradients (on backend `G`, the inner backend) of the `ids` parameters from one
/// `GradientsParams` to another.
struct SplitVisitor<'a, B: Backend> {
    ids: &'a HashSet<ParamId>,
    from: &'a mut GradientsParams,
    to: GradientsParams,
    _b: std::marker::PhantomData<B>,
}

impl<B: Backend, G: Backend> ModuleVisitor<B> for SplitVisitor<'_, G> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if self.ids.contains(&param.id)
            && let Some(g) = self.from.remove::<G, D>(param.id)
        {
            self.to.register::<G, D>(param.id, g);
        }
    }
}
