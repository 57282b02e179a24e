//! [`CtcLoss`]: `torch.nn.CTCLoss` (connectionist temporal classification) on the backend's
//! CTC operation, with PyTorch's `blank`, `reduction` and `zero_infinity`, and typed errors for
//! bad targets and lengths.

use std::sync::Arc;

use burn::config::Config;
use burn::tensor::Tensor;

use crate::backend::CtcArgs;
use crate::{Backend, Error, Result};

/// How the per-utterance losses are combined, PyTorch's `reduction`.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum Reduction {
    /// One loss per utterance, `[N]`.
    None,
    /// PyTorch's CTC mean: each loss divided by its target length (at least 1), then the mean
    /// over the batch, `[1]`.
    Mean,
    /// The sum over the batch, `[1]`.
    Sum,
}

/// Configuration of a [`CtcLoss`], with `torch.nn.CTCLoss`'s names and defaults.
#[derive(Config, Debug)]
pub struct CtcLossConfig {
    /// The blank class. Default 0.
    #[config(default = 0)]
    pub blank: usize,
    /// Default [`Reduction::Mean`].
    #[config(default = "Reduction::Mean")]
    pub reduction: Reduction,
    /// Replace infinite losses (a target that cannot be aligned to its input) and their
    /// gradients by 0. Default false.
    #[config(default = false)]
    pub zero_infinity: bool,
}

/// The CTC loss; see [`CtcLossConfig`].
#[derive(Debug, Clone)]
pub struct CtcLoss {
    config: CtcLossConfig,
}

impl CtcLossConfig {
    /// The loss (every setting is valid; `blank` is checked against the classes when called).
    pub fn init(&self) -> CtcLoss {
        CtcLoss { config: self.clone() }
    }
}

impl CtcLoss {
    /// The loss of `log_probs` (a `log_softmax` output) against `targets`, each utterance using
    /// its first `input_lengths[i]` frames. A target longer than its input allows gives an
    /// infinite loss (0 with `zero_infinity`), as PyTorch; on the CPU backends its gradient is
    /// NaN then, as PyTorch's, and 0 on the others. Typed errors: a label outside `0..C` or
    /// equal to `blank`, `blank >= C`, lengths of the wrong count, an input length of 0 or
    /// above `T`.
    ///
    /// # Shapes
    /// - `log_probs`: `[N, T, C]` (batch-first; PyTorch's is `[T, N, C]`)
    /// - output: `[N]` with [`Reduction::None`], else `[1]`
    pub fn forward<B: Backend>(
        &self,
        log_probs: Tensor<B, 3>,
        targets: &[Vec<u32>],
        input_lengths: &[usize],
    ) -> Result<Tensor<B, 1>> {
        let [n, t, c] = log_probs.dims();
        let blank = self.config.blank;
        if blank >= c {
            return Err(Error::Config {
                module: "CtcLossConfig",
                message: format!("blank ({blank}) must be a class of the {c} in log_probs"),
            });
        }
        for (what, len) in [("targets", targets.len()), ("input_lengths", input_lengths.len())] {
            if len != n {
                return Err(Error::shape(
                    format!("CtcLoss {what}"),
                    format!("{n} entries (the batch of log_probs)"),
                    &[len],
                ));
            }
        }
        if let Some((i, &len)) = input_lengths
            .iter()
            .enumerate()
            .find(|(_, l)| **l == 0 || **l > t)
        {
            return Err(Error::Data(format!(
                "CtcLoss input_lengths[{i}] is {len}; each must be in 1..={t} (the frames of log_probs)"
            )));
        }
        for (i, labels) in targets.iter().enumerate() {
            if let Some(&bad) = labels.iter().find(|&&l| l as usize >= c || l as usize == blank) {
                return Err(Error::Index {
                    what: format!("CtcLoss target {i} (labels are 0..{c} without the blank {blank})"),
                    index: bad as i64,
                    len: c,
                });
            }
        }
        let losses = B::ctc_nll(CtcArgs {
            log_probs,
            targets: Arc::new(targets.to_vec()),
            input_lengths: Arc::new(input_lengths.to_vec()),
            blank,
            zero_infinity: self.config.zero_infinity,
        });
        Ok(match self.config.reduction {
            Reduction::None => losses,
            Reduction::Sum => losses.sum(),
            Reduction::Mean => {
                let device = losses.device();
                let lengths: Vec<f32> = targets.iter().map(|t| t.len().max(1) as f32).collect();
                let lengths = Tensor::<B, 1>::from_data(burn::tensor::TensorData::new(lengths, [n]), &device);
                (losses / lengths).mean()
            }
        })
    }
}
