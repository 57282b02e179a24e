//! [`Task`]: what the trainer trains.

use burn::module::AutodiffModule;
use burn::record::Record;
use burn::tensor::Tensor;
use burn::tensor::backend::AutodiffBackend;

use crate::Result;

/// Loss and counts of one batch, as the trainer aggregates them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchStats {
    /// The batch's mean loss (nats per item).
    pub loss: f64,
    /// Items the loss is averaged over (tokens for a language model, examples for a classifier);
    /// weights the batch in epoch means and gives tokens per second.
    pub items: usize,
    /// Correct predictions among `items`, when the task has a notion of accuracy.
    pub correct: Option<usize>,
}

impl BatchStats {
    /// Reads a `[1]` mean-loss tensor back; `correct` when the task measures accuracy.
    pub fn from_loss<B: burn::tensor::backend::Backend>(
        loss: Tensor<B, 1>,
        items: usize,
        correct: Option<usize>,
    ) -> Self {
        Self {
            loss: burn::tensor::ElementConversion::elem(loss.into_scalar()),
            items,
            correct,
        }
    }
}

/// What [`Task::train_step`] returns.
pub struct TrainOutput<B: AutodiffBackend, C> {
    /// The mean loss of the batch, `[1]`, still attached to the graph.
    pub loss: Tensor<B, 1>,
    /// Items the loss averages over.
    pub items: usize,
    /// Correct predictions, if the task measures accuracy.
    pub correct: Option<usize>,
    /// State to carry into the next batch (truncated BPTT), or `None`.
    pub carry: Option<C>,
}

/// A model plus "compute the loss and metrics of a batch": language modelling, classification and
/// translation are small implementations of this trait, and the [`Trainer`](super::Trainer) loop
/// is written once against it.
///
/// Training runs on the autodiff backend `B`; validation runs on `model.valid()` (the inner
/// backend, where dropout is off), which is why the two steps are separate methods.
pub trait Task<B: crate::TrainBackend> {
    /// The model being trained.
    type Model: AutodiffModule<B> + Clone;
    /// One batch, as produced by a [`Batches`](crate::data::Batches) source.
    type Batch;
    /// State carried from one training batch to the next (an RNN's hidden state for truncated
    /// BPTT); `()` for stateless tasks. Saved in checkpoints, hence a `Record`.
    type Carry: Record<B> + Clone;
    /// The same for validation, on the inner backend.
    type ValidCarry: Clone;

    /// Forward pass and loss on a training batch. `carry` is the detached state from the previous
    /// batch (`None` at the start of an epoch); the task resets rows the batch marks as new.
    fn train_step(
        &self,
        model: &Self::Model,
        batch: &Self::Batch,
        carry: Option<Self::Carry>,
    ) -> Result<TrainOutput<B, Self::Carry>>;

    /// Loss and metrics of a validation batch, with the validation carry.
    fn valid_step(
        &self,
        model: &<Self::Model as AutodiffModule<B>>::InnerModule,
        batch: &Self::Batch,
        carry: Option<Self::ValidCarry>,
    ) -> Result<(BatchStats, Option<Self::ValidCarry>)>;

    /// Cuts `carry` from the graph of the batch that produced it (truncated BPTT). The default
    /// returns it unchanged, which is right only for carries without tensors.
    fn detach_carry(&self, carry: Self::Carry) -> Self::Carry {
        carry
    }

    /// The model's configuration as JSON, saved with each checkpoint and compared on resume so
    /// that a checkpoint of another model is refused. Default `null` (only parameter shapes are
    /// compared).
    fn config_json(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    /// The metrics derived from the loss that the task's rows report in the console,
    /// TensorBoard and `metrics.csv`. Default [`ReportedMetrics::LOSS`] (the loss alone, and
    /// accuracy when the batches count correct predictions); the language-model tasks report
    /// perplexity and bits per character, translation perplexity.
    fn reported_metrics(&self) -> super::ReportedMetrics {
        super::ReportedMetrics::LOSS
    }
}
