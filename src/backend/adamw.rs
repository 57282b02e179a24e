//! One AdamW step over one parameter tensor as a backend operation: a single pass over the
//! parameter, its gradient and both moments on the CPU backends, instead of burn-optim's chain of
//! a dozen tensor ops. It computes exactly burn-optim's `AdamW` arithmetic (the same f32
//! operations in the same order), so the two are bitwise equal; other backends keep burn-optim.

use burn::tensor::Tensor;

/// The arguments of [`Backend::adamw_step`](super::Backend::adamw_step), burn-optim's `AdamW`
/// hyper-parameters included (as the `f32` it stores them in).
///
/// # Shapes
/// `param`, `grad`, `moment_1`, `moment_2`: `[N]`, the parameter flattened.
#[derive(Clone, Debug)]
pub struct AdamWArgs<B: burn::tensor::backend::Backend> {
    /// The parameter before the step.
    pub param: Tensor<B, 1>,
    /// Its gradient.
    pub grad: Tensor<B, 1>,
    /// First and second moments before the step; `None` on the first step.
    pub moments: Option<(Tensor<B, 1>, Tensor<B, 1>)>,
    /// The step number after this step (1 on the first).
    pub time: usize,
    /// Learning rate.
    pub lr: f64,
    /// β₁.
    pub beta_1: f32,
    /// β₂.
    pub beta_2: f32,
    /// ε.
    pub epsilon: f32,
    /// Decoupled weight decay λ.
    pub weight_decay: f32,
}

/// The scalars of one step, each rounded as burn-optim rounds it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AdamWScalars {
    pub(crate) beta_1: f64,
    pub(crate) beta_2: f64,
    /// `1 - β₁`, `1 - β₂` (computed in f32).
    pub(crate) factor_1: f64,
    pub(crate) factor_2: f64,
    /// The bias corrections `1 - β^t` (computed in f32).
    pub(crate) correction_1: f64,
    pub(crate) correction_2: f64,
    pub(crate) epsilon: f64,
    /// `1 - lr·λ` (in f64), or `None` when `lr·λ` is 0 and burn-optim skips the multiply.
    pub(crate) decay: Option<f64>,
    pub(crate) lr: f64,
}

impl AdamWScalars {
    /// `[β₁, β₂, 1 - β₁, 1 - β₂, 1 - β₁^t, 1 - β₂^t, ε, lr]`, the order the kernel unpacks.
    pub(crate) fn multipliers(&self) -> [f64; 8] {
        [
            self.beta_1,
            self.beta_2,
            self.factor_1,
            self.factor_2,
            self.correction_1,
            self.correction_2,
            self.epsilon,
            self.lr,
        ]
    }
}

impl<B: burn::tensor::backend::Backend> AdamWArgs<B> {
    pub(crate) fn scalars(&self) -> AdamWScalars {
        let time = self.time as i32;
        let decay_rate = self.lr * f64::from(self.weight_decay);
        AdamWScalars {
            beta_1: f64::from(self.beta_1),
            beta_2: f64::from(self.beta_2),
            factor_1: f64::from(1.0 - self.beta_1),
            factor_2: f64::from(1.0 - self.beta_2),
            correction_1: f64::from(1f32 - self.beta_1.powi(time)),
            correction_2: f64::from(1f32 - self.beta_2.powi(time)),
            epsilon: f64::from(self.epsilon),
            decay: (decay_rate != 0.0).then_some(1.0 - decay_rate),
            lr: self.lr,
        }
    }
}

/// The parameter and both moments after the step.
#[derive(Clone, Debug)]
pub struct AdamWOutput<B: burn::tensor::backend::Backend> {
    /// `[N]`.
    pub param: Tensor<B, 1>,
    /// `[N]`.
    pub moment_1: Tensor<B, 1>,
    /// `[N]`.
    pub moment_2: Tensor<B, 1>,
}
