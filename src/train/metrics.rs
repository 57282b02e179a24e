//! Metric rows: what one log line, one CSV row and one set of TensorBoard scalars hold.

use std::time::Duration;

use super::task::BatchStats;

/// One row of `metrics.csv`: the training window since the last row, or one validation.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRow {
    /// `"train"` or `"valid"`.
    pub split: &'static str,
    /// Optimizer steps completed.
    pub step: u64,
    /// The epoch the step belongs to (0-based).
    pub epoch: u64,
    /// Mean loss per item (nats).
    pub loss: f64,
    /// `exp(loss)`, for tasks whose loss is a cross-entropy per token (language models,
    /// translation); `None` for the others (see [`ReportedMetrics`]).
    pub ppl: Option<f64>,
    /// `loss / ln 2`: bits per character for a character model, per token otherwise; language
    /// models only (see [`ReportedMetrics`]).
    pub bpc: Option<f64>,
    /// Accuracy, when the task reports correct predictions.
    pub acc: Option<f64>,
    /// Learning rate of the last step (training rows).
    pub lr: Option<f64>,
    /// Global gradient norm before clipping, mean over the window (training rows).
    pub grad_norm: Option<f64>,
    /// Items (tokens) per second over the window.
    pub items_per_sec: f64,
    /// Optimizer steps skipped for a non-finite loss or gradient so far.
    pub skipped_steps: u64,
    /// Seconds since training started (this process).
    pub elapsed: f64,
}

impl MetricRow {
    /// The value of a monitored metric by name (`loss`, `ppl`, `bpc`, `acc`).
    pub fn get(&self, name: &str) -> Option<f64> {
        match name {
            "loss" => Some(self.loss),
            "ppl" => self.ppl,
            "bpc" => self.bpc,
            "acc" => self.acc,
            _ => None,
        }
    }

    /// The CSV header matching [`MetricRow::csv`].
    pub const CSV_HEADER: &'static str =
        "split,step,epoch,loss,ppl,bpc,acc,lr,grad_norm,items_per_sec,skipped_steps,elapsed_s";

    /// This row as a CSV line (empty fields for absent values).
    pub fn csv(&self) -> String {
        let opt = |v: Option<f64>| v.map(|v| format!("{v}")).unwrap_or_default();
        format!(
            "{},{},{},{},{},{},{},{},{},{:.1},{},{:.3}",
            self.split,
            self.step,
            self.epoch,
            self.loss,
            opt(self.ppl),
            opt(self.bpc),
            opt(self.acc),
            opt(self.lr),
            opt(self.grad_norm),
            self.items_per_sec,
            self.skipped_steps,
            self.elapsed
        )
    }

    /// The scalars this row sends to TensorBoard, as `(tag, value)`.
    pub fn scalars(&self) -> Vec<(String, f64)> {
        let mut out = vec![
            (format!("{}/loss", self.split), self.loss),
            (format!("{}/items_per_sec", self.split), self.items_per_sec),
        ];
        for (name, v) in [
            ("ppl", self.ppl),
            ("bpc", self.bpc),
            ("acc", self.acc),
            ("lr", self.lr),
            ("grad_norm", self.grad_norm),
        ] {
            if let Some(v) = v {
                out.push((format!("{}/{name}", self.split), v));
            }
        }
        out
    }
}

/// The metrics derived from the loss that a task's rows report (accuracy is reported when its
/// batches count correct predictions). A task says which through
/// [`Task::reported_metrics`](super::Task::reported_metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportedMetrics {
    /// Perplexity `exp(loss)`: the loss is a cross-entropy per token.
    pub perplexity: bool,
    /// Bits per item `loss / ln 2`: the items are the characters or tokens of a text.
    pub bits: bool,
}

impl ReportedMetrics {
    /// The loss alone (and accuracy when counted): classification, and the default.
    pub const LOSS: Self = Self {
        perplexity: false,
        bits: false,
    };
    /// Perplexity per target token too: translation and other sequence-to-sequence tasks.
    pub const SEQUENCE: Self = Self {
        perplexity: true,
        bits: false,
    };
    /// Perplexity and bits per character or token: language models.
    pub const LANGUAGE_MODEL: Self = Self {
        perplexity: true,
        bits: true,
    };
}

/// Sums over batches, turned into a [`MetricRow`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Window {
    loss_sum: f64,
    items: usize,
    correct: usize,
    has_acc: bool,
    grad_norm_sum: f64,
    steps: u64,
    pub(crate) time: Duration,
}

impl Window {
    pub(crate) fn add(&mut self, stats: BatchStats) {
        self.loss_sum += stats.loss * stats.items as f64;
        self.items += stats.items;
        if let Some(c) = stats.correct {
            self.correct += c;
            self.has_acc = true;
        }
    }

    pub(crate) fn add_step(&mut self, grad_norm: f64) {
        self.grad_norm_sum += grad_norm;
        self.steps += 1;
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items == 0
    }

    pub(crate) fn row(
        &self,
        reported: ReportedMetrics,
        split: &'static str,
        step: u64,
        epoch: u64,
        lr: Option<f64>,
    ) -> MetricRow {
        let loss = self.loss_sum / self.items.max(1) as f64;
        MetricRow {
            split,
            step,
            epoch,
            loss,
            ppl: reported.perplexity.then(|| loss.exp()),
            bpc: reported.bits.then(|| loss / std::f64::consts::LN_2),
            acc: self
                .has_acc
                .then(|| self.correct as f64 / self.items.max(1) as f64),
            lr,
            grad_norm: (self.steps > 0).then(|| self.grad_norm_sum / self.steps as f64),
            items_per_sec: self.items as f64 / self.time.as_secs_f64().max(1e-9),
            skipped_steps: 0,
            elapsed: 0.0,
        }
    }
}
