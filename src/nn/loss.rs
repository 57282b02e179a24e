//! [`CrossEntropyLoss`]: PyTorch's `nn.CrossEntropyLoss` (mean reduction) with `ignore_index`
//! and `label_smoothing`, on the backend's fused [`cross_entropy`](crate::Backend::cross_entropy)
//! op.

use burn::config::Config;
use burn::tensor::{Int, Tensor};

use crate::backend::CrossEntropyArgs;
use crate::{Backend, Error, Result};

/// Configuration of a [`CrossEntropyLoss`], with PyTorch's names and defaults.
#[derive(Config, Debug)]
pub struct CrossEntropyLossConfig {
    /// Rows whose target equals this contribute nothing to the loss or the mean. Default -100,
    /// as PyTorch.
    #[config(default = -100)]
    pub ignore_index: i64,
    /// `ε` in `[0, 1]`: the target distribution is `(1 - ε) onehot + ε / V`. Default 0.
    #[config(default = 0.0)]
    pub label_smoothing: f64,
}

/// Mean cross-entropy from unnormalised logits, as `F.cross_entropy`: log-softmax and the
/// negative log-likelihood in one pass per row on the CPU backends, with a backward that writes
/// `softmax - target` once.
#[derive(Clone, Debug)]
pub struct CrossEntropyLoss {
    ignore_index: i64,
    label_smoothing: f64,
}

impl CrossEntropyLossConfig {
    /// The loss, or an [`Error::Config`] when `label_smoothing` is outside `[0, 1]` (or NaN).
    pub fn init(&self) -> Result<CrossEntropyLoss> {
        if !(0.0..=1.0).contains(&self.label_smoothing) {
            return Err(Error::Config {
                module: "CrossEntropyLossConfig",
                message: format!(
                    "label_smoothing must be in [0, 1], found {}",
                    self.label_smoothing
                ),
            });
        }
        Ok(CrossEntropyLoss {
            ignore_index: self.ignore_index,
            label_smoothing: self.label_smoothing,
        })
    }
}

impl CrossEntropyLoss {
    /// The mean loss over the rows not ignored (NaN when every row is ignored, as PyTorch).
    /// An [`Error::Shape`] when `targets` does not have one entry per row, an [`Error::Index`]
    /// for a target outside `0..V` that is not `ignore_index`.
    ///
    /// # Shapes
    /// - `logits`: `[N, V]`; `targets`: `[N]`; output `[1]`
    pub fn forward<B: Backend>(
        &self,
        logits: Tensor<B, 2>,
        targets: Tensor<B, 1, Int>,
    ) -> Result<Tensor<B, 1>> {
        let [n, v] = logits.dims();
        if targets.dims() != [n] {
            return Err(Error::shape(
                "cross-entropy targets",
                format!("[{n}] (one per row of the logits)"),
                &targets.dims(),
            ));
        }
        let ids = targets
            .to_data()
            .convert::<i64>()
            .into_vec::<i64>()
            .unwrap_or_default();
        if let Some(&bad) = ids
            .iter()
            .find(|&&t| t != self.ignore_index && !(0..v as i64).contains(&t))
        {
            return Err(Error::Index {
                what: format!("cross-entropy target (ignore_index {})", self.ignore_index),
                index: bad,
                len: v,
            });
        }
        Ok(self.forward_unchecked(logits, targets))
    }

    /// [`forward`](Self::forward) for targets already checked (a validated batch): no read of the
    /// targets back to the host.
    pub(crate) fn forward_unchecked<B: Backend>(
        &self,
        logits: Tensor<B, 2>,
        targets: Tensor<B, 1, Int>,
    ) -> Tensor<B, 1> {
        B::cross_entropy(CrossEntropyArgs {
            logits,
            targets,
            ignore_index: self.ignore_index,
            label_smoothing: self.label_smoothing,
        })
        .0
    }
}
