//! Language-model tasks: [`GptLmTask`] (random windows) and [`RnnLmTask`] (truncated BPTT).

use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use super::task::{BatchStats, Task, TrainOutput};
use crate::Result;
use crate::data::TokenBatch;
use crate::models::{Gpt, GptConfig};

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

/// Inputs `[batch, len − 1]` and targets `[batch, len − 1]` of a token batch for a model of
/// `vocab_size` tokens, on `device`, after checking the batch.
fn tensors<B: Backend>(
    batch: &TokenBatch,
    vocab_size: usize,
    device: &B::Device,
) -> Result<(Tensor<B, 2, Int>, Tensor<B, 2, Int>)> {
    batch.validate(vocab_size)?;
    let (x, y) = batch.inputs_targets()?;
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
    let (inputs, targets) = tensors::<B>(batch, model.vocab_size(), device)?;
    let logits = model.forward(inputs)?;
    Ok(next_token_loss(logits, targets, device))
}

/// Mean cross-entropy of `[b, t, vocab]` logits against `[b, t]` targets, the number of targets,
/// and how many the top-1 logit predicts (one scalar read back).
fn next_token_loss<B: crate::Backend>(
    logits: Tensor<B, 3>,
    targets: Tensor<B, 2, Int>,
    device: &B::Device,
) -> (Tensor<B, 1>, usize, usize) {
    let [b, t, v] = logits.dims();
    let logits = logits.reshape([b * t, v]); // [b·t, vocab]
    let targets = targets.reshape([b * t]); // [b·t]
    let correct: i64 = burn::tensor::ElementConversion::elem(
        logits
            .clone()
            .argmax(1)
            .reshape([b * t])
            .equal(targets.clone())
            .int()
            .sum()
            .into_scalar(),
    );
    let loss = CrossEntropyLossConfig::new()
        .init(device)
        .forward(logits, targets);
    (loss, b * t, correct as usize)
}

impl<B: crate::TrainBackend> Task<B> for GptLmTask {
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
        Ok((BatchStats::from_loss(loss, items, Some(correct)), None))
    }

    fn config_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.config).unwrap_or(serde_json::Value::Null)
    }
}

/// Language modelling with an [`RnnLm`](crate::models::RnnLm) under truncated backpropagation
/// through time: batches from [`LmStreams`](crate::data::LmStreams), the hidden state carried
/// (detached) from one batch to the next and zeroed on rows the batch marks `reset`.
#[derive(Debug, Clone)]
pub struct RnnLmTask {
    config: crate::models::RnnLmConfig,
}

impl RnnLmTask {
    /// The task for models built from `config`.
    pub fn new(config: crate::models::RnnLmConfig) -> Self {
        Self { config }
    }
}

/// Loss, targets, correct predictions and the final state of an `RnnLm` on a stream batch.
fn rnn_lm_loss<B: crate::Backend>(
    model: &crate::models::RnnLm<B>,
    batch: &TokenBatch,
    state: Option<crate::nn::RecurrentState<B>>,
) -> Result<(Tensor<B, 1>, usize, usize, crate::nn::RecurrentState<B>)> {
    let device = model.encoder.val().device();
    let (inputs, targets) = tensors::<B>(batch, model.vocab_size(), &device)?;
    let state = state.map(|s| {
        if batch.reset.iter().any(|&r| r) {
            let keep: Vec<f32> = batch.reset.iter().map(|&r| if r { 0.0 } else { 1.0 }).collect();
            s.mask_rows(Tensor::from_data(TensorData::new(keep, [batch.batch]), &device))
        } else {
            Ok(s)
        }
    });
    let state = state.transpose()?;
    let (logits, state) = model.forward(inputs, state)?;
    let (loss, items, correct) = next_token_loss(logits, targets, &device);
    Ok((loss, items, correct, state))
}

impl<B: crate::TrainBackend> Task<B> for RnnLmTask {
    type Model = crate::models::RnnLm<B>;
    type Batch = TokenBatch;
    type Carry = crate::nn::RecurrentState<B>;
    type ValidCarry = crate::nn::RecurrentState<B::InnerBackend>;

    fn train_step(
        &self,
        model: &crate::models::RnnLm<B>,
        batch: &TokenBatch,
        carry: Option<Self::Carry>,
    ) -> Result<TrainOutput<B, Self::Carry>> {
        let (loss, items, correct, state) = rnn_lm_loss(model, batch, carry)?;
        Ok(TrainOutput {
            loss,
            items,
            correct: Some(correct),
            carry: Some(state),
        })
    }

    fn valid_step(
        &self,
        model: &crate::models::RnnLm<B::InnerBackend>,
        batch: &TokenBatch,
        carry: Option<Self::ValidCarry>,
    ) -> Result<(BatchStats, Option<Self::ValidCarry>)> {
        let (loss, items, correct, state) = rnn_lm_loss(model, batch, carry)?;
        Ok((BatchStats::from_loss(loss, items, Some(correct)), Some(state)))
    }

    fn detach_carry(&self, carry: Self::Carry) -> Self::Carry {
        carry.detach()
    }

    fn config_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.config).unwrap_or(serde_json::Value::Null)
    }
}
