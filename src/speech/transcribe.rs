//! Transcription with a trained [`SpeechRecognizer`]: greedy or beam decoding of its CTC outputs
//! into text, and word and character error rates over a whole set.

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use super::alphabet::CharAlphabet;
use super::batches::{SpeechBatch, SpeechBatches};
use super::ctc_decode::{BeamOptions, LabelLm, greedy_decode, prefix_beam_search};
use super::model::SpeechRecognizer;
use crate::data::Batches;
use crate::eval::{ErrorRate, char_error_rate, word_error_rate};
use crate::{Error, Result};

/// How CTC outputs become labels.
#[derive(Clone, Copy)]
pub enum Decoding<'a> {
    /// The best class per frame, repeats collapsed, blanks dropped.
    Greedy,
    /// Prefix beam search, with an optional label language model.
    Beam {
        /// Beam width, LM weight, insertion bonus.
        options: BeamOptions,
        /// The language model over the alphabet's labels, if any.
        lm: Option<&'a dyn LabelLm>,
    },
}

impl std::fmt::Debug for Decoding<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Greedy => write!(f, "Greedy"),
            Self::Beam { options, lm } => write!(f, "Beam {{ {options:?}, lm: {} }}", lm.is_some()),
        }
    }
}

/// Word and character error rates of a set, with every transcript.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeechScores {
    /// Word error rate (jiwer's `wer` over the whole set).
    pub wer: ErrorRate,
    /// Character error rate (jiwer's `cer`).
    pub cer: ErrorRate,
    /// `(reference, hypothesis)` of each utterance, in batch order.
    pub transcripts: Vec<(String, String)>,
}

impl<B: Backend + crate::Backend> SpeechRecognizer<B> {
    /// The text of each utterance of `batch`. An [`Error::Shape`] when the batch's feature
    /// dimensions are not the model's; the alphabet must have the model's classes.
    pub fn transcribe(
        &self,
        batch: &SpeechBatch,
        alphabet: &CharAlphabet,
        decoding: Decoding<'_>,
    ) -> Result<Vec<String>> {
        if alphabet.classes() != self.classes() {
            return Err(Error::Config {
                module: "CharAlphabet",
                message: format!(
                    "the alphabet has {} classes with the blank, the model {}",
                    alphabet.classes(),
                    self.classes()
                ),
            });
        }
        let (log_probs, out_lengths) = recognize(self, batch)?;
        let labels = match decoding {
            Decoding::Greedy => greedy_labels(log_probs, &out_lengths)?,
            Decoding::Beam { options, lm } => {
                let (values, t, c) = read_back(log_probs)?;
                out_lengths
                    .iter()
                    .enumerate()
                    .map(|(i, &len)| {
                        let rows = &values[i * t * c..(i * t + len) * c];
                        let best = prefix_beam_search(rows, c, CharAlphabet::BLANK, options, lm)?;
                        Ok(best.into_iter().next().map(|h| h.tokens).unwrap_or_default())
                    })
                    .collect::<Result<Vec<_>>>()?
            }
        };
        Ok(labels.iter().map(|l| alphabet.decode(l)).collect())
    }

    /// Transcribes every utterance of `data` (epoch 0, its own order) and scores the
    /// transcripts against the references.
    pub fn evaluate(
        &self,
        data: &SpeechBatches,
        alphabet: &CharAlphabet,
        decoding: Decoding<'_>,
    ) -> Result<SpeechScores> {
        let mut transcripts = Vec::with_capacity(data.len());
        for i in 0..data.num_batches() {
            let batch = data.get(0, i, 0)?;
            let hyps = self.transcribe(&batch, alphabet, decoding)?;
            transcripts.extend(batch.texts.into_iter().zip(hyps));
        }
        let refs: Vec<&str> = transcripts.iter().map(|(r, _)| r.as_str()).collect();
        let hyps: Vec<&str> = transcripts.iter().map(|(_, h)| h.as_str()).collect();
        Ok(SpeechScores {
            wer: word_error_rate(&refs, &hyps)?,
            cer: char_error_rate(&refs, &hyps)?,
            transcripts,
        })
    }
}

/// Log-probabilities `[N, T', C]` and output lengths of `batch`, after checking it fits the model.
pub(crate) fn recognize<B: crate::Backend>(
    model: &SpeechRecognizer<B>,
    batch: &SpeechBatch,
) -> Result<(Tensor<B, 3>, Vec<usize>)> {
    let expected = model.n_features();
    if batch.dims != expected || batch.features.len() != batch.batch * batch.frames * batch.dims {
        return Err(Error::shape(
            "SpeechBatch features",
            format!("[batch, frames, {expected}] (the model's n_features)"),
            &[batch.batch, batch.frames, batch.dims],
        ));
    }
    let device = model.out.weight.val().device();
    let x = Tensor::<B, 3>::from_data(
        TensorData::new(batch.features.clone(), [batch.batch, batch.frames, batch.dims]),
        &device,
    );
    model.forward(x, &batch.lengths)
}

/// Greedy labels of each utterance of `log_probs` `[N, T', C]`, within its output length.
pub(crate) fn greedy_labels<B: Backend>(
    log_probs: Tensor<B, 3>,
    out_lengths: &[usize],
) -> Result<Vec<Vec<u32>>> {
    let (values, t, c) = read_back(log_probs)?;
    out_lengths
        .iter()
        .enumerate()
        .map(|(i, &len)| {
            Ok(greedy_decode(&values[i * t * c..(i * t + len) * c], c, CharAlphabet::BLANK)?.tokens)
        })
        .collect()
}

/// `[N, T', C]` log-probabilities as f32 values on the host, with `T'` and `C`.
fn read_back<B: Backend>(log_probs: Tensor<B, 3>) -> Result<(Vec<f32>, usize, usize)> {
    let [_, t, c] = log_probs.dims();
    let values = log_probs
        .into_data()
        .convert::<f32>()
        .to_vec()
        .map_err(|e| Error::Data(format!("reading log-probabilities back: {e:?}")))?;
    Ok((values, t, c))
}
