//! [`ClassificationTask`]: a [`SequenceClassifier`] on [`ClassBatch`]es.

use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};

use super::task::{BatchStats, Task, TrainOutput};
use crate::Result;
use crate::data::ClassBatch;
use crate::models::{SequenceClassifier, SequenceClassifierConfig};
use crate::nn::CrossEntropyLossConfig;

/// Classification: cross-entropy of the class logits, accuracy over examples.
#[derive(Debug, Clone)]
pub struct ClassificationTask {
    config: SequenceClassifierConfig,
}

impl ClassificationTask {
    /// The task for classifiers built from `config`.
    pub fn new(config: SequenceClassifierConfig) -> Self {
        Self { config }
    }
}

/// Loss, examples, correct predictions (and the predictions) of a batch.
pub(crate) fn classify<B: crate::Backend>(
    model: &SequenceClassifier<B>,
    batch: &ClassBatch,
) -> Result<(Tensor<B, 1>, Vec<usize>)> {
    let [vocab_size, _] = model.embedding.dims();
    batch.validate(vocab_size, model.num_classes())?;
    let device = model.embedding.val().device();
    let ids = Tensor::<B, 2, Int>::from_data(
        TensorData::new(batch.ids.clone(), [batch.batch, batch.len]),
        &device,
    );
    let labels =
        Tensor::<B, 1, Int>::from_data(TensorData::new(batch.labels.clone(), [batch.batch]), &device);
    let logits = model.forward(ids, &batch.lengths)?;
    let predictions: Vec<usize> = logits
        .clone()
        .argmax(1)
        .into_data()
        .iter::<i64>()
        .map(|p| p as usize)
        .collect();
    // Labels were checked against the classes with the batch.
    let loss = CrossEntropyLossConfig::new()
        .init()?
        .forward_unchecked(logits, labels);
    Ok((loss, predictions))
}

fn correct(predictions: &[usize], batch: &ClassBatch) -> usize {
    predictions
        .iter()
        .zip(&batch.labels)
        .filter(|(p, l)| **p as i64 == **l)
        .count()
}

impl<B: crate::TrainBackend> Task<B> for ClassificationTask {
    type Model = SequenceClassifier<B>;
    type Batch = ClassBatch;
    type Carry = ();
    type ValidCarry = ();

    fn train_step(
        &self,
        model: &SequenceClassifier<B>,
        batch: &ClassBatch,
        _: Option<()>,
    ) -> Result<TrainOutput<B, ()>> {
        let (loss, predictions) = classify(model, batch)?;
        Ok(TrainOutput {
            loss,
            items: batch.batch,
            correct: Some(correct(&predictions, batch)),
            carry: None,
        })
    }

    fn valid_step(
        &self,
        model: &SequenceClassifier<<B as AutodiffBackend>::InnerBackend>,
        batch: &ClassBatch,
        _: Option<()>,
    ) -> Result<(BatchStats, Option<()>)> {
        let (loss, predictions) = classify(model, batch)?;
        let correct = correct(&predictions, batch);
        Ok((BatchStats::from_loss(loss, batch.batch, Some(correct)), None))
    }

    fn config_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.config).unwrap_or(serde_json::Value::Null)
    }
}

/// Predicted classes of every example of `data` (in batch order, epoch 0), with the labels, for
/// [`classification_report`](crate::eval::classification_report).
pub fn predict_classes<B: Backend + crate::Backend>(
    model: &SequenceClassifier<B>,
    data: &dyn crate::data::Batches<ClassBatch>,
) -> Result<(Vec<usize>, Vec<usize>)> {
    let (mut preds, mut labels) = (Vec::new(), Vec::new());
    for i in 0..data.num_batches() {
        let batch = data.get(0, i, 0)?;
        let (_, p) = classify(model, &batch)?;
        preds.extend(p);
        labels.extend(batch.labels.iter().map(|&l| l as usize));
    }
    Ok((preds, labels))
}
