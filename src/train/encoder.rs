//! Trainer tasks for the BERT family on [`EncoderBatch`]es: sequence classification (or
//! regression), token classification and masked-language-model training.

use burn::module::AutodiffModule;
use burn::tensor::Tensor;

use super::task::{BatchStats, Task, TrainOutput};
use crate::data::{EncoderBatch, EncoderLabels};
use crate::models::bert::{
    BertConfig, BertForMaskedLM, BertForSequenceClassification, BertForTokenClassification, ProblemType,
    SequenceLabels,
};
use crate::{Backend, Error, Result, TrainBackend};

/// Argmax of each row of `[rows, classes]` logits.
fn argmax_rows<B: Backend>(logits: Tensor<B, 2>) -> Vec<i64> {
    logits.argmax(1).into_data().iter::<i64>().collect()
}

/// Loss, items and correct predictions of a sequence classifier on a batch.
fn sequence<B: Backend>(
    model: &BertForSequenceClassification<B>,
    batch: &EncoderBatch,
) -> Result<(Tensor<B, 1>, usize, Option<usize>)> {
    let logits = model.forward(&batch.input)?;
    let rows = batch.input.batch;
    match &batch.labels {
        EncoderLabels::Classes(classes) => {
            let loss = model.loss(logits.clone(), &SequenceLabels::Classes(classes.clone()))?;
            let correct = argmax_rows(logits)
                .iter()
                .zip(classes)
                .filter(|(p, l)| p == l)
                .count();
            Ok((loss, rows, Some(correct)))
        }
        EncoderLabels::Values(values) => {
            let multi = model.bert.config().resolved_problem_type() == ProblemType::MultiLabel;
            let loss = model.loss(logits.clone(), &SequenceLabels::Values(values.clone()))?;
            // Multi-label: a label is right when its logit's sign matches the target.
            let correct = multi.then(|| {
                let x: Vec<f32> = logits.into_data().iter::<f32>().collect();
                x.iter()
                    .zip(values)
                    .filter(|(x, y)| (**x > 0.0) == (**y > 0.5))
                    .count()
            });
            let items = if multi { values.len() } else { rows };
            Ok((loss, items, correct))
        }
        EncoderLabels::Tokens(_) => Err(labels_error("sequence classification", "Classes or Values")),
    }
}

fn labels_error(task: &str, expected: &str) -> Error {
    Error::Data(format!(
        "{task} takes EncoderLabels::{expected} batches, found token labels"
    ))
}

/// Loss, labelled tokens and correct predictions at them, for `[B, T, C]` logits.
fn tokens<B: Backend>(
    logits: Tensor<B, 3>,
    labels: &[i64],
    loss: Tensor<B, 1>,
) -> (Tensor<B, 1>, usize, Option<usize>) {
    let [b, t, c] = logits.dims();
    // [B, T, C] -> [B*T, C]
    let predictions = argmax_rows(logits.reshape([b * t, c]));
    let counted = labels.iter().filter(|&&l| l != -100).count();
    let correct = predictions
        .iter()
        .zip(labels)
        .filter(|(p, l)| **l != -100 && p == l)
        .count();
    (loss, counted, Some(correct))
}

fn token_labels(batch: &EncoderBatch, task: &str) -> Result<Vec<i64>> {
    match &batch.labels {
        EncoderLabels::Tokens(t) => Ok(t.clone()),
        _ => Err(Error::Data(format!("{task} takes EncoderLabels::Tokens batches"))),
    }
}

fn token_classify<B: Backend>(
    model: &BertForTokenClassification<B>,
    batch: &EncoderBatch,
) -> Result<(Tensor<B, 1>, usize, Option<usize>)> {
    let labels = token_labels(batch, "token classification")?;
    let logits = model.forward(&batch.input)?;
    let loss = model.loss(logits.clone(), &labels)?;
    Ok(tokens(logits, &labels, loss))
}

fn masked<B: Backend>(
    model: &BertForMaskedLM<B>,
    batch: &EncoderBatch,
) -> Result<(Tensor<B, 1>, usize, Option<usize>)> {
    let labels = token_labels(batch, "masked-LM training")?;
    if labels.iter().all(|&l| l == -100) {
        return Err(Error::Data(
            "masked-LM batch has no masked position (longer texts or a higher mlm_probability)".into(),
        ));
    }
    let logits = model.forward(&batch.input)?;
    let loss = model.loss(logits.clone(), &labels)?;
    Ok(tokens(logits, &labels, loss))
}

/// Declares a stateless task over [`EncoderBatch`]es whose step is `$step(model, batch)`.
macro_rules! encoder_task {
    ($task:ident, $model:ident, $step:ident, $metrics:expr, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone)]
        pub struct $task {
            config: BertConfig,
        }

        impl $task {
            /// The task for models built from `config` (saved with checkpoints, compared on resume).
            pub fn new(config: BertConfig) -> Self {
                Self { config }
            }
        }

        impl<B: TrainBackend> Task<B> for $task {
            type Model = $model<B>;
            type Batch = EncoderBatch;
            type Carry = ();
            type ValidCarry = ();

            fn train_step(
                &self,
                model: &$model<B>,
                batch: &EncoderBatch,
                _: Option<()>,
            ) -> Result<TrainOutput<B, ()>> {
                let (loss, items, correct) = $step(model, batch)?;
                Ok(TrainOutput {
                    loss,
                    items,
                    correct,
                    carry: None,
                })
            }

            fn valid_step(
                &self,
                model: &<$model<B> as AutodiffModule<B>>::InnerModule,
                batch: &EncoderBatch,
                _: Option<()>,
            ) -> Result<(BatchStats, Option<()>)> {
                let (loss, items, correct) = $step(model, batch)?;
                Ok((BatchStats::from_loss(loss, items, correct), None))
            }

            fn config_json(&self) -> serde_json::Value {
                serde_json::to_value(&self.config).unwrap_or(serde_json::Value::Null)
            }

            fn reported_metrics(&self) -> super::ReportedMetrics {
                $metrics
            }
        }
    };
}

encoder_task!(
    EncoderClassificationTask,
    BertForSequenceClassification,
    sequence,
    super::ReportedMetrics::LOSS,
    "Fine-tuning a [`BertForSequenceClassification`]: its loss for the configured problem type; \
     accuracy over rows (single label) or over labels (multi-label)."
);
encoder_task!(
    TokenClassificationTask,
    BertForTokenClassification,
    token_classify,
    super::ReportedMetrics::LOSS,
    "Fine-tuning a [`BertForTokenClassification`]: cross-entropy and accuracy over labelled tokens."
);
encoder_task!(
    MaskedLmTask,
    BertForMaskedLM,
    masked,
    super::ReportedMetrics::SEQUENCE,
    "Masked-language-model training of a [`BertForMaskedLM`] on `EncoderBatches::masked_lm` \
     batches: cross-entropy, perplexity and accuracy at the masked positions."
);
