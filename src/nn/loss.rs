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

    /// The next-token loss of a language model, as Hugging Face computes it from `labels`:
    /// position `t`'s logits predict `labels[:, t + 1]`, so the last position and the first label
    /// take no part. Pass the input ids as `labels` (with `ignore_index` where a position must not
    /// count, such as padding). For a hand-written training loop:
    ///
    /// ```
    /// # #[cfg(feature = "ndarray")] {
    /// use burn::backend::{Autodiff, NdArray};
    /// use burn::tensor::{Int, Tensor};
    /// use ember_lm::models::GptConfig;
    /// use ember_lm::nn::CrossEntropyLossConfig;
    ///
    /// type B = Autodiff<NdArray>;
    /// let device = Default::default();
    /// let model = GptConfig::new()
    ///     .with_vocab_size(10)
    ///     .with_block_size(8)
    ///     .with_n_layer(1)
    ///     .with_n_head(2)
    ///     .with_n_embd(8)
    ///     .init::<B>(&device)?;
    /// let ids = Tensor::<B, 2, Int>::from_ints([[1, 2, 3, 4], [4, 3, 2, 1]], &device);
    /// let loss = CrossEntropyLossConfig::new().init()?.language_model(model.forward(ids.clone())?, ids)?;
    /// let grads = loss.backward();
    /// # let _ = grads;
    /// # }
    /// # Ok::<(), ember_lm::Error>(())
    /// ```
    ///
    /// # Shapes
    /// - `logits`: `[batch, time, vocab]`; `labels`: `[batch, time]` with `time >= 2`; output `[1]`
    pub fn language_model<B: Backend>(
        &self,
        logits: Tensor<B, 3>,
        labels: Tensor<B, 2, Int>,
    ) -> Result<Tensor<B, 1>> {
        let [b, t, v] = logits.dims();
        if labels.dims() != [b, t] || t < 2 {
            return Err(Error::shape(
                "language-model labels",
                format!("[{b}, {t}] (the logits' batch and time, time >= 2)"),
                &labels.dims(),
            ));
        }
        // [B, T, V] -> [B, T-1, V] -> [B(T-1), V]; labels [B, T] -> [B, T-1] -> [B(T-1)]
        let logits = logits.slice([0..b, 0..t - 1, 0..v]).reshape([b * (t - 1), v]);
        let targets = labels.slice([0..b, 1..t]).reshape([b * (t - 1)]);
        self.forward(logits, targets)
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
