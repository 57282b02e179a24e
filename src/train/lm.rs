//! [`GptLmTask`]: next-token prediction with a [`Gpt`] on [`TokenBatch`]es.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};

use super::task::{BatchStats, Task, TrainOutput};
use crate::data::TokenBatch;
use crate::models::{Gpt, GptConfig};
use crate::{Error, Result};

/// Language modelling with a [`Gpt`]: inputs `ids[:, :-1]`, targets `ids[:, 1:]`, mean
/// cross-entropy over all positions; accuracy is next-token top-1.
#[derive(Debug, Clone)]
pub struct GptLmTask {
    config: GptConfig,
}

impl GptLmTask {
    /// The task for models built from `config` (saved with checkpoints and compared on resume).
    pub fn new(config: GptConfig) -> Self {
        Self { config }
    }
}

/// Inputs `[batch, len − 1]` and targets `[batch, len − 1]` of a token batch, on `device`.
fn tensors<B: Backend>(
    batch: &TokenBatch,
    device: &B::Device,
) -> Result<(Tensor<B, 2, Int>, Tensor<B, 2, Int>)> {
    if batch.len < 2 || batch.ids.len() != batch.batch * batch.len {
        return Err(Error::shape(
            "TokenBatch",
            "[batch, len] ids with len >= 2 and batch·len ids",
            &[batch.batch, batch.len, batch.ids.len()],
        ));
    }
    let (x, y) = batch.inputs_targets();
    let shape = [batch.batch, batch.len - 1];
    Ok((
        Tensor::from_data(TensorData::new(x, shape), device),
        Tensor::from_data(TensorData::new(y, shape), device),
    ))
}

/// Mean cross-entropy and the number of correct top-1 predictions.
fn loss_and_correct<B: crate::Backend>(
    model: &Gpt<B>,
    batch: &TokenBatch,
    device: &B::Device,
) -> Result<(Tensor<B, 1>, usize, usize)> {
    let (inputs, targets) = tensors::<B>(batch, device)?;
    // Checks ids against the vocabulary before anything indexes with them.
    crate::models::check_ids(&targets, model.vocab_size())?;
    let logits = model.forward(inputs)?;
    let [b, t, v] = logits.dims();
    let logits = logits.reshape([b * t, v]); // [b·t, vocab]
    let targets = targets.reshape([b * t]); // [b·t]
    let correct = logits
        .clone()
        .argmax(1)
        .reshape([b * t])
        .equal(targets.clone())
        .int()
        .sum()
        .into_scalar();
    let loss = CrossEntropyLossConfig::new()
        .init(device)
        .forward(logits, targets);
    Ok((
        loss,
        b * t,
        burn::tensor::ElementConversion::elem::<i64>(correct) as usize,
    ))
}

impl<B: AutodiffBackend + crate::Backend> Task<B> for GptLmTask
where
    B::InnerBackend: crate::Backend,
{
    type Model = Gpt<B>;
    type Batch = TokenBatch;
    type Carry = ();
    type ValidCarry = ();

    fn train_step(
        &self,
        model: &Gpt<B>,
        batch: &TokenBatch,
        _carry: Option<()>,
    ) -> Result<TrainOutput<B, ()>> {
        let device = model.wte.val().device();
        let (loss, items, correct) = loss_and_correct(model, batch, &device)?;
        Ok(TrainOutput {
            loss,
            items,
            correct: Some(correct),
            carry: None,
        })
    }

    fn valid_step(
        &self,
        model: &Gpt<B::InnerBackend>,
        batch: &TokenBatch,
        _carry: Option<()>,
    ) -> Result<(BatchStats, Option<()>)> {
        let device = model.wte.val().device();
        let (loss, items, correct) = loss_and_correct(model, batch, &device)?;
        let loss: f64 = burn::tensor::ElementConversion::elem(loss.into_scalar());
        Ok((
            BatchStats {
                loss,
                items,
                correct: Some(correct),
            },
            None,
        ))
    }

    fn config_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.config).unwrap_or(serde_json::Value::Null)
    }
}
