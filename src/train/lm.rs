//! Language modelling, one task for every language model: [`LmTask`], with [`GptLmTask`]
//! (random windows) and [`RnnLmTask`] (truncated BPTT) as its two instances.
//!
//! The task is written once: inputs `ids[:, :-1]`, targets `ids[:, 1:]`, mean cross-entropy over
//! all positions, next-token top-1 accuracy. What differs between model families — whether state
//! carries from one batch to the next — is the model's answer to [`TrainableLm`].

use std::fmt::Debug;
use std::marker::PhantomData;

use burn::module::{AutodiffModule, Module};
use burn::record::Record;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use serde::Serialize;

use super::task::{BatchStats, Task, TrainOutput};
use crate::Result;
use crate::data::TokenBatch;
use crate::models::{Gpt, GptConfig, LanguageModel, RnnLm, RnnLmConfig};
use crate::nn::{CrossEntropyLossConfig, RecurrentState};

/// A language model that [`LmTask`] can train.
pub trait TrainableLm<B: crate::Backend>: LanguageModel<B> + Module<B> {
    /// The state carried from one batch to the next (an RNN's hidden state under truncated
    /// BPTT); `()` for a model that sees independent windows.
    type Carry: Record<B> + Clone;

    /// Logits `[batch, time, vocab]` for `inputs` `[batch, time]` after `carry`, and the state to
    /// carry on. Rows flagged in `reset` (empty: none) start from a fresh state.
    fn lm_forward(
        &self,
        inputs: Tensor<B, 2, Int>,
        carry: Option<Self::Carry>,
        reset: &[bool],
    ) -> Result<(Tensor<B, 3>, Option<Self::Carry>)>;

    /// Cuts `carry` from the graph of the batch that produced it.
    fn detach(carry: Self::Carry) -> Self::Carry;
}

impl<B: crate::Backend> TrainableLm<B> for Gpt<B> {
    type Carry = ();

    fn lm_forward(
        &self,
        inputs: Tensor<B, 2, Int>,
        _carry: Option<()>,
        _reset: &[bool],
    ) -> Result<(Tensor<B, 3>, Option<()>)> {
        Ok((self.forward(inputs)?, None))
    }

    fn detach(carry: ()) {
        carry
    }
}

impl<B: crate::Backend> TrainableLm<B> for RnnLm<B> {
    type Carry = RecurrentState<B>;

    fn lm_forward(
        &self,
        inputs: Tensor<B, 2, Int>,
        carry: Option<RecurrentState<B>>,
        reset: &[bool],
    ) -> Result<(Tensor<B, 3>, Option<RecurrentState<B>>)> {
        let carry = match carry {
            Some(state) if reset.iter().any(|&r| r) => {
                // Zero the rows that start a new stream (epoch start, document boundary).
                let keep: Vec<f32> = reset.iter().map(|&r| if r { 0.0 } else { 1.0 }).collect();
                let device = inputs.device();
                Some(state.mask_rows(Tensor::from_data(TensorData::new(keep, [reset.len()]), &device))?)
            }
            other => other,
        };
        let (logits, state) = self.forward(inputs, carry)?;
        Ok((logits, Some(state)))
    }

    fn detach(carry: RecurrentState<B>) -> RecurrentState<B> {
        carry.detach()
    }
}

/// A family of language models: one model type per backend, built from one configuration.
pub trait LmFamily {
    /// The configuration, saved with checkpoints and compared on resume.
    type Config: Serialize + Clone + Debug;
    /// The model on backend `B`.
    type Model<B: crate::Backend>: TrainableLm<B>;
}

/// [`Gpt`]s: independent random windows ([`LmWindows`](crate::data::LmWindows)).
#[derive(Debug, Clone, Copy)]
pub struct GptFamily;

impl LmFamily for GptFamily {
    type Config = GptConfig;
    type Model<B: crate::Backend> = Gpt<B>;
}

/// [`RnnLm`]s: parallel streams ([`LmStreams`](crate::data::LmStreams)) with the hidden state
/// carried, detached, from one batch to the next and zeroed on the rows a batch marks `reset`.
#[derive(Debug, Clone, Copy)]
pub struct RnnLmFamily;

impl LmFamily for RnnLmFamily {
    type Config = RnnLmConfig;
    type Model<B: crate::Backend> = RnnLm<B>;
}

/// Language modelling for a family of models: inputs `ids[:, :-1]`, targets `ids[:, 1:]`, mean
/// cross-entropy over all positions; accuracy is next-token top-1.
#[derive(Debug, Clone)]
pub struct LmTask<F: LmFamily> {
    config: F::Config,
    _family: PhantomData<F>,
}

impl<F: LmFamily> LmTask<F> {
    /// The task for models built from `config` (saved with checkpoints and compared on resume).
    pub fn new(config: F::Config) -> Self {
        Self {
            config,
            _family: PhantomData,
        }
    }
}

/// Language modelling with a [`Gpt`] on independent windows.
pub type GptLmTask = LmTask<GptFamily>;

/// Language modelling with an [`RnnLm`] under truncated backpropagation through time.
pub type RnnLmTask = LmTask<RnnLmFamily>;

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

/// What one batch gives: the mean loss, the targets, the correct predictions, the state to carry.
struct BatchLoss<B: Backend, C> {
    loss: Tensor<B, 1>,
    items: usize,
    correct: usize,
    carry: Option<C>,
}

fn lm_loss<B: crate::Backend, M: TrainableLm<B>>(
    model: &M,
    batch: &TokenBatch,
    carry: Option<M::Carry>,
) -> Result<BatchLoss<B, M::Carry>> {
    let device = model.devices().into_iter().next().unwrap_or_default();
    let (inputs, targets) = tensors::<B>(batch, model.vocab_size(), &device)?;
    let (logits, carry) = model.lm_forward(inputs, carry, &batch.reset)?;
    let (loss, items, correct) = next_token_loss(logits, targets);
    Ok(BatchLoss {
        loss,
        items,
        correct,
        carry,
    })
}

/// Mean cross-entropy of `[b, t, vocab]` logits against `[b, t]` targets, the number of targets,
/// and how many the top-1 logit predicts (one scalar read back).
fn next_token_loss<B: crate::Backend>(
    logits: Tensor<B, 3>,
    targets: Tensor<B, 2, Int>,
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
    // Targets were checked against the vocabulary with the batch.
    let loss = CrossEntropyLossConfig::new()
        .init()
        .expect("the default configuration is valid")
        .forward_unchecked(logits, targets);
    (loss, b * t, correct as usize)
}

impl<B, F> Task<B> for LmTask<F>
where
    B: crate::TrainBackend,
    F: LmFamily,
    F::Model<B>: AutodiffModule<B, InnerModule = F::Model<B::InnerBackend>> + Clone,
{
    type Model = F::Model<B>;
    type Batch = TokenBatch;
    type Carry = <F::Model<B> as TrainableLm<B>>::Carry;
    type ValidCarry = <F::Model<B::InnerBackend> as TrainableLm<B::InnerBackend>>::Carry;

    fn train_step(
        &self,
        model: &Self::Model,
        batch: &TokenBatch,
        carry: Option<Self::Carry>,
    ) -> Result<TrainOutput<B, Self::Carry>> {
        let out = lm_loss(model, batch, carry)?;
        Ok(TrainOutput {
            loss: out.loss,
            items: out.items,
            correct: Some(out.correct),
            carry: out.carry,
        })
    }

    fn valid_step(
        &self,
        model: &F::Model<B::InnerBackend>,
        batch: &TokenBatch,
        carry: Option<Self::ValidCarry>,
    ) -> Result<(BatchStats, Option<Self::ValidCarry>)> {
        let out = lm_loss(model, batch, carry)?;
        Ok((
            BatchStats::from_loss(out.loss, out.items, Some(out.correct)),
            out.carry,
        ))
    }

    fn detach_carry(&self, carry: Self::Carry) -> Self::Carry {
        <F::Model<B> as TrainableLm<B>>::detach(carry)
    }

    fn reported_metrics(&self) -> crate::train::ReportedMetrics {
        crate::train::ReportedMetrics::LANGUAGE_MODEL
    }

    fn config_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.config).unwrap_or(serde_json::Value::Null)
    }
}
