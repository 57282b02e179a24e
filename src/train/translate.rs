//! [`TranslationTask`]: teacher-forced cross-entropy for an encoder-decoder on [`PairBatch`]es.

use std::marker::PhantomData;

use burn::module::AutodiffModule;
use burn::tensor::{Int, Tensor, TensorData};

use super::task::{BatchStats, Task, TrainOutput};
use crate::Result;
use crate::data::PairBatch;
use crate::models::{RnnSeq2Seq, Seq2SeqModel, TransformerSeq2Seq};
use crate::nn::CrossEntropyLossConfig;

/// Loss, target tokens and correct next-token predictions (padding excluded).
fn pair_loss<B: crate::Backend, M: Seq2SeqModel<B>>(
    model: &M,
    batch: &PairBatch,
    pad: i64,
    device: &B::Device,
) -> Result<(Tensor<B, 1>, usize, usize)> {
    batch.validate(model.src_vocab_size(), model.tgt_vocab_size())?;
    let tensor = |v: &Vec<i64>, len| {
        Tensor::<B, 2, Int>::from_data(TensorData::new(v.clone(), [batch.batch, len]), device)
    };
    let logits = model.teacher_forced(
        tensor(&batch.src, batch.src_len),
        &batch.src_lengths,
        tensor(&batch.tgt_in, batch.tgt_len),
        &batch.tgt_lengths,
    )?;
    let [b, t, v] = logits.dims();
    let logits = logits.reshape([b * t, v]); // [b·t, vocab]
    let targets = tensor(&batch.tgt_out, batch.tgt_len).reshape([b * t]);
    let predictions: Vec<i64> = logits.clone().argmax(1).into_data().iter::<i64>().collect();
    let (mut items, mut correct) = (0, 0);
    for (p, y) in predictions.iter().zip(&batch.tgt_out) {
        if *y != pad {
            items += 1;
            correct += (p == y) as usize;
        }
    }
    // Padding is ignored; the other targets were checked with the batch.
    let loss = CrossEntropyLossConfig::new()
        .with_ignore_index(pad)
        .init()?
        .forward_unchecked(logits, targets);
    Ok((loss, items, correct))
}

/// Translation with an encoder-decoder (`TransformerSeq2Seq` or `RnnSeq2Seq`): mean cross-entropy
/// over the real target tokens (padding ignored), next-token accuracy.
#[derive(Debug, Clone)]
pub struct TranslationTask<M> {
    pad: i64,
    config: serde_json::Value,
    _m: PhantomData<fn() -> M>,
}

impl<M> TranslationTask<M> {
    /// The task for models of configuration `config` (compared on resume), targets padded with
    /// `pad`.
    pub fn new(config: &impl serde::Serialize, pad: u32) -> Self {
        Self {
            pad: pad as i64,
            config: serde_json::to_value(config).unwrap_or(serde_json::Value::Null),
            _m: PhantomData,
        }
    }
}

/// `TranslationTask` for one model family.
macro_rules! translation_task {
    ($model:ident) => {
        impl<B: crate::TrainBackend> Task<B> for TranslationTask<$model<B>> {
            type Model = $model<B>;
            type Batch = PairBatch;
            type Carry = ();
            type ValidCarry = ();

            fn train_step(
                &self,
                model: &$model<B>,
                batch: &PairBatch,
                _: Option<()>,
            ) -> Result<TrainOutput<B, ()>> {
                let device = burn::module::Module::devices(model)[0].clone();
                let (loss, items, correct) = pair_loss(model, batch, self.pad, &device)?;
                Ok(TrainOutput {
                    loss,
                    items,
                    correct: Some(correct),
                    carry: None,
                })
            }

            fn valid_step(
                &self,
                model: &<$model<B> as AutodiffModule<B>>::InnerModule,
                batch: &PairBatch,
                _: Option<()>,
            ) -> Result<(BatchStats, Option<()>)> {
                let device = burn::module::Module::devices(model)[0].clone();
                let (loss, items, correct) = pair_loss(model, batch, self.pad, &device)?;
                Ok((BatchStats::from_loss(loss, items, Some(correct)), None))
            }

            fn reported_metrics(&self) -> crate::train::ReportedMetrics {
                crate::train::ReportedMetrics::SEQUENCE
            }

            fn config_json(&self) -> serde_json::Value {
                self.config.clone()
            }
        }
    };
}

translation_task!(RnnSeq2Seq);
translation_task!(TransformerSeq2Seq);
