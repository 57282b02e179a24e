//! [`CtcTask`]: a [`SpeechRecognizer`] on [`SpeechBatch`]es, trained with the CTC loss.

use burn::tensor::backend::AutodiffBackend;

use super::task::{BatchStats, Task, TrainOutput};
use crate::nn::{CtcLoss, CtcLossConfig};
use crate::speech::{CharAlphabet, SpeechBatch, SpeechRecognizer, SpeechRecognizerConfig};
use crate::speech::{greedy_labels, recognize};
use crate::{Error, Result};

/// Speech recognition: the CTC loss per target label (PyTorch's `reduction="mean"`), averaged
/// over utterances; validation also counts utterances transcribed exactly by greedy decoding,
/// reported as accuracy.
///
/// A batch whose utterance is too short for its transcript after the model's 4× subsampling
/// (CTC needs a frame per label, and one more between repeated labels) is an [`Error::Data`]
/// naming it, rather than an infinite loss that `zero_infinity` would hide.
#[derive(Debug, Clone)]
pub struct CtcTask {
    config: SpeechRecognizerConfig,
    loss: CtcLoss,
}

impl CtcTask {
    /// The task for recognisers built from `config`; the blank is class
    /// [`CharAlphabet::BLANK`].
    pub fn new(config: SpeechRecognizerConfig) -> Self {
        Self {
            config,
            loss: CtcLossConfig::new().with_blank(CharAlphabet::BLANK).init(),
        }
    }
}

/// Frames CTC needs to emit `labels`: one per label, plus a blank between repeats.
fn frames_needed(labels: &[u32]) -> usize {
    labels.len() + labels.windows(2).filter(|w| w[0] == w[1]).count()
}

/// Checks every target fits its output frames and the model's classes.
fn check_targets(batch: &SpeechBatch, out_lengths: &[usize], classes: usize) -> Result<()> {
    if batch.targets.len() != batch.batch {
        return Err(Error::Data(format!(
            "SpeechBatch: {} targets for {} utterances (an unlabelled batch cannot be trained on)",
            batch.targets.len(),
            batch.batch
        )));
    }
    for (i, (labels, &out)) in batch.targets.iter().zip(out_lengths).enumerate() {
        if let Some(&bad) = labels.iter().find(|&&l| l == 0 || l as usize >= classes) {
            return Err(Error::Index {
                what: format!("SpeechBatch target {i} (labels are 1..{classes}, 0 is the blank)"),
                index: bad as i64,
                len: classes,
            });
        }
        let need = frames_needed(labels);
        if labels.is_empty() || out < need {
            let text = batch.texts.get(i).map(String::as_str).unwrap_or("");
            return Err(Error::Data(format!(
                "utterance {i} of the batch ({text:?}): its {} feature frames give {out} frames after the model's 4× subsampling, \
                 fewer than the {need} its {} labels need (CTC emits one label per frame, with a blank between repeats); \
                 use a shorter frame shift or drop the utterance",
                batch.lengths[i],
                labels.len()
            )));
        }
    }
    Ok(())
}

impl<B: crate::TrainBackend> Task<B> for CtcTask {
    type Model = SpeechRecognizer<B>;
    type Batch = SpeechBatch;
    type Carry = ();
    type ValidCarry = ();

    fn train_step(
        &self,
        model: &SpeechRecognizer<B>,
        batch: &SpeechBatch,
        _: Option<()>,
    ) -> Result<TrainOutput<B, ()>> {
        let (log_probs, out_lengths) = recognize(model, batch)?;
        check_targets(batch, &out_lengths, model.classes())?;
        let loss = self.loss.forward(log_probs, &batch.targets, &out_lengths)?;
        Ok(TrainOutput {
            loss,
            items: batch.batch,
            correct: None,
            carry: None,
        })
    }

    fn valid_step(
        &self,
        model: &SpeechRecognizer<<B as AutodiffBackend>::InnerBackend>,
        batch: &SpeechBatch,
        _: Option<()>,
    ) -> Result<(BatchStats, Option<()>)> {
        let (log_probs, out_lengths) = recognize(model, batch)?;
        check_targets(batch, &out_lengths, model.classes())?;
        let loss = self
            .loss
            .forward(log_probs.clone(), &batch.targets, &out_lengths)?;
        let exact = greedy_labels(log_probs, &out_lengths)?
            .iter()
            .zip(&batch.targets)
            .filter(|(h, r)| h == r)
            .count();
        Ok((BatchStats::from_loss(loss, batch.batch, Some(exact)), None))
    }

    fn config_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.config).unwrap_or(serde_json::Value::Null)
    }
}
