//! [`OptimizerConfig`]: which algorithm, with PyTorch's defaults.

use burn::config::Config;
use burn::module::AutodiffModule;
use serde::{Deserialize, Serialize};

use super::clip::GradClip;
use super::optimizer::ModelOptimizer;

/// The update rule and its own hyper-parameters.
///
/// The constructors ([`Algorithm::adam`], ...) give PyTorch's defaults. Where burn-optim's defaults
/// differ, ember-lm passes PyTorch's values explicitly:
///
/// | hyper-parameter | PyTorch (ember-lm) | burn-optim |
/// |---|---|---|
/// | Adam / AdamW `eps` | 1e-8 | 1e-5 |
/// | AdamW `weight_decay` | 1e-2 | 1e-4 |
/// | SGD momentum `dampening` | 0 | 0.1 |
/// | RMSprop `eps` | 1e-8 | 1e-5 |
/// | RMSprop `momentum` | 0 | 0.9 |
/// | Adagrad `eps` | 1e-10 | 1e-5 |
///
/// burn-optim stores the betas, `alpha`, `eps` and the weight decay as `f32`; the difference this
/// makes is below 1e-6 relative (tested against `torch.optim` in float64).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Algorithm {
    /// `torch.optim.SGD`: `v = μ v + (1 − dampening) g`, Nesterov optional.
    Sgd {
        /// Momentum factor μ (PyTorch: 0).
        momentum: f64,
        /// Dampening of the gradient in the momentum buffer (PyTorch: 0).
        dampening: f64,
        /// Nesterov momentum (PyTorch: false).
        nesterov: bool,
    },
    /// `torch.optim.Adam`: weight decay is an L2 term added to the gradient.
    Adam {
        /// β₁ (0.9).
        beta1: f64,
        /// β₂ (0.999).
        beta2: f64,
        /// ε (1e-8).
        eps: f64,
        /// AMSGrad (false).
        amsgrad: bool,
    },
    /// `torch.optim.AdamW`: decoupled weight decay, `θ ← θ (1 − lr·λ)`.
    AdamW {
        /// β₁ (0.9).
        beta1: f64,
        /// β₂ (0.999).
        beta2: f64,
        /// ε (1e-8).
        eps: f64,
        /// AMSGrad (false).
        amsgrad: bool,
    },
    /// `torch.optim.RMSprop`.
    RmsProp {
        /// Smoothing constant α (0.99).
        alpha: f64,
        /// ε (1e-8).
        eps: f64,
        /// Momentum (0).
        momentum: f64,
        /// Centered RMSprop (false).
        centered: bool,
    },
    /// `torch.optim.Adagrad` (with `initial_accumulator_value = 0`).
    Adagrad {
        /// Learning-rate decay per step (0).
        lr_decay: f64,
        /// ε (1e-10).
        eps: f64,
    },
}

impl Algorithm {
    /// SGD without momentum (PyTorch's defaults).
    pub fn sgd() -> Self {
        Self::Sgd {
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
        }
    }
    /// Adam with PyTorch's defaults.
    pub fn adam() -> Self {
        Self::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            amsgrad: false,
        }
    }
    /// AdamW with PyTorch's defaults.
    pub fn adamw() -> Self {
        Self::AdamW {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            amsgrad: false,
        }
    }
    /// RMSprop with PyTorch's defaults.
    pub fn rmsprop() -> Self {
        Self::RmsProp {
            alpha: 0.99,
            eps: 1e-8,
            momentum: 0.0,
            centered: false,
        }
    }
    /// Adagrad with PyTorch's defaults.
    pub fn adagrad() -> Self {
        Self::Adagrad {
            lr_decay: 0.0,
            eps: 1e-10,
        }
    }
    /// The name used in logs (`"adamw"`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Sgd { .. } => "sgd",
            Self::Adam { .. } => "adam",
            Self::AdamW { .. } => "adamw",
            Self::RmsProp { .. } => "rmsprop",
            Self::Adagrad { .. } => "adagrad",
        }
    }
}

/// Which parameters get weight decay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DecayGroups {
    /// Every parameter (PyTorch's behaviour with one parameter group).
    All,
    /// minGPT's two groups: no decay on biases, on normalisation weights (any module whose type name
    /// contains `Norm`) and on embeddings (a module whose type name contains `Embedding` or
    /// `Positions`, or a parameter named `wte`/`wpe`/`*embed*`); all other rank ≥ 2 weights decay.
    NoBiasNormEmbedding,
    /// nanoGPT's current rule: parameters of rank ≥ 2 decay (matmul weights and embeddings), rank-1
    /// ones (biases, norm weights) do not. It is also the BERT fine-tuning recipe
    /// (transformers' `no_decay = ["bias", "LayerNorm.weight"]`).
    NoRank1,
}

/// One optimizer description: algorithm, learning rate, weight decay and its groups, clipping.
///
/// Serialisable (it is saved with every checkpoint). Start from a preset with PyTorch's defaults
/// ([`OptimizerConfig::adamw`], ...) and change fields with the `with_*` methods.
#[derive(Config, Debug)]
pub struct OptimizerConfig {
    /// The update rule and its hyper-parameters.
    pub algorithm: Algorithm,
    /// The base learning rate (a schedule multiplies or replaces it per step).
    pub lr: f64,
    /// Weight decay λ: L2 for SGD/Adam/RMSprop/Adagrad, decoupled for AdamW. Default 0.
    #[config(default = 0.0)]
    pub weight_decay: f64,
    /// Which parameters the weight decay applies to. Default [`DecayGroups::All`].
    #[config(default = "DecayGroups::All")]
    pub decay_groups: DecayGroups,
    /// Gradient clipping, applied by [`ModelOptimizer::clip`]. Default none.
    #[config(default = "None")]
    pub clip: Option<GradClip>,
    /// Layer-wise learning-rate decay `ξ` (the BERT fine-tuning recipe of ELECTRA and of
    /// Sun et al. 2019): with `L` layers, layer `i` (0-based) trains at `lr · ξ^(L - i)`, the
    /// embeddings at `lr · ξ^(L + 1)`, and everything above the layers (pooler, heads, final
    /// norms) at `lr`. The layers are the modules of the first `Vec` on a parameter's path in
    /// the model (`BertModel::layers`, `Gpt::h`); the embeddings are the parameters outside it
    /// that [`DecayGroups::NoBiasNormEmbedding`] calls embeddings. Default `None` (one rate).
    #[config(default = "None")]
    pub layer_lr_decay: Option<f64>,
}

impl OptimizerConfig {
    /// `torch.optim.SGD(params, lr)`: no momentum, no weight decay (PyTorch has no default lr).
    pub fn sgd(lr: f64) -> Self {
        Self::new(Algorithm::sgd(), lr)
    }
    /// `torch.optim.Adam(params)`: lr 1e-3, betas (0.9, 0.999), eps 1e-8, no weight decay.
    pub fn adam() -> Self {
        Self::new(Algorithm::adam(), 1e-3)
    }
    /// `torch.optim.AdamW(params)`: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay 1e-2.
    pub fn adamw() -> Self {
        Self::new(Algorithm::adamw(), 1e-3).with_weight_decay(1e-2)
    }
    /// `torch.optim.RMSprop(params)`: lr 1e-2, alpha 0.99, eps 1e-8, no momentum.
    pub fn rmsprop() -> Self {
        Self::new(Algorithm::rmsprop(), 1e-2)
    }
    /// `torch.optim.Adagrad(params)`: lr 1e-2, no lr decay, eps 1e-10.
    pub fn adagrad() -> Self {
        Self::new(Algorithm::adagrad(), 1e-2)
    }

    /// Sets the base learning rate.
    pub fn with_lr(mut self, lr: f64) -> Self {
        self.lr = lr;
        self
    }

    /// Sets the algorithm (keeping the learning rate, weight decay, groups and clipping).
    pub fn with_algorithm(mut self, algorithm: Algorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    /// Checks the hyper-parameters' ranges (PyTorch's checks).
    pub fn validate(&self) -> crate::Result<()> {
        let bad = |message: String| {
            Err(crate::Error::Config {
                module: "OptimizerConfig",
                message,
            })
        };
        if !(self.lr >= 0.0 && self.lr.is_finite()) {
            return bad(format!("lr must be a finite value >= 0, found {}", self.lr));
        }
        // Written `!(x >= 0)` so that NaN fails too (torch: "Invalid epsilon value: nan").
        let non_negative = |name: &str, x: f64| {
            if x >= 0.0 && x.is_finite() {
                Ok(())
            } else {
                bad(format!("{name} must be a finite value >= 0, found {x}"))
            }
        };
        non_negative("weight_decay", self.weight_decay)?;
        match &self.algorithm {
            Algorithm::Sgd {
                momentum,
                dampening,
                nesterov,
            } => {
                non_negative("momentum", *momentum)?;
                non_negative("dampening", *dampening)?;
                if *nesterov && (*momentum <= 0.0 || *dampening != 0.0) {
                    return bad("Nesterov momentum requires a momentum > 0 and zero dampening".into());
                }
            }
            Algorithm::Adam {
                beta1, beta2, eps, ..
            }
            | Algorithm::AdamW {
                beta1, beta2, eps, ..
            } => {
                for (name, b) in [("beta1", beta1), ("beta2", beta2)] {
                    if !(0.0..1.0).contains(b) {
                        return bad(format!("{name} must be in [0, 1), found {b}"));
                    }
                }
                non_negative("eps", *eps)?;
            }
            Algorithm::RmsProp {
                alpha, eps, momentum, ..
            } => {
                non_negative("alpha", *alpha)?;
                non_negative("eps", *eps)?;
                non_negative("momentum", *momentum)?;
            }
            Algorithm::Adagrad { lr_decay, eps } => {
                non_negative("lr_decay", *lr_decay)?;
                non_negative("eps", *eps)?;
            }
        }
        if let Some(clip) = &self.clip {
            clip.validate()?;
        }
        if let Some(xi) = self.layer_lr_decay
            && !(xi > 0.0 && xi <= 1.0)
        {
            return bad(format!("layer_lr_decay must be in (0, 1], found {xi}"));
        }
        Ok(())
    }

    /// Builds the optimizer for `model`'s parameters (the model decides the decay groups), after
    /// [`OptimizerConfig::validate`].
    pub fn init<B: crate::TrainBackend, M: AutodiffModule<B>>(
        &self,
        model: &M,
    ) -> crate::Result<ModelOptimizer<B, M>> {
        self.validate()?;
        Ok(ModelOptimizer::new(self.clone(), model))
    }
}
