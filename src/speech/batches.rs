//! [`SpeechBatches`]: utterances as features computed once on the CPU, served as padded
//! [`SpeechBatch`]es with lengths and character targets; SpecAugment, when asked for, is drawn
//! afresh per utterance and epoch from the trainer's seed, so that a resumed run sees the same
//! masks.

use std::path::Path;

use rayon::prelude::*;

use super::alphabet::CharAlphabet;
use super::dataset::read_manifest;
use super::features::{KaldiFbank, MelSpectrogram, SpecAugment, normalize_utterance};
use super::wav::{Audio, read_wav, resample};
use crate::data::{Batches, SplitMix64};
use crate::{Error, Result};

/// How audio becomes features: resampled to the extractor's rate, computed, then normalised per
/// utterance (zero mean, unit variance per dimension).
#[derive(Debug, Clone, PartialEq)]
pub enum FeatureExtractor {
    /// Kaldi's log filterbank (`torchaudio.compliance.kaldi.fbank`).
    Fbank(KaldiFbank),
    /// torchaudio's `MelSpectrogram`, then `ln(x + 1e-6)`.
    LogMel(MelSpectrogram),
}

impl Default for FeatureExtractor {
    /// Kaldi filterbank of 40 bins at 16 kHz, 25 ms frames every 10 ms.
    fn default() -> Self {
        Self::Fbank(KaldiFbank {
            num_mel_bins: 40,
            ..KaldiFbank::default()
        })
    }
}

impl FeatureExtractor {
    /// Feature dimensions per frame.
    pub fn dims(&self) -> usize {
        match self {
            Self::Fbank(f) => f.num_mel_bins,
            Self::LogMel(m) => m.n_mels,
        }
    }

    /// The sample rate the features are computed at.
    pub fn sample_rate(&self) -> u32 {
        match self {
            Self::Fbank(f) => f.sample_rate,
            Self::LogMel(m) => m.sample_rate,
        }
    }

    /// The normalised features of `audio`, `frames × dims()`, frame after frame.
    pub fn extract(&self, audio: &Audio) -> Result<Vec<f32>> {
        let rate = self.sample_rate();
        let resampled;
        let samples = if audio.sample_rate == rate {
            &audio.samples
        } else {
            resampled = resample(&audio.samples, audio.sample_rate, rate)?;
            &resampled
        };
        let mut features = match self {
            Self::Fbank(f) => f.compute(samples)?,
            Self::LogMel(m) => {
                let mut x = m.compute(samples)?;
                x.iter_mut().for_each(|v| *v = (*v + 1e-6).ln());
                x
            }
        };
        normalize_utterance(&mut features, self.dims());
        Ok(features)
    }
}

/// One padded batch of utterances.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeechBatch {
    /// `[batch, frames, dims]` features, row-major, zero after each utterance's length.
    pub features: Vec<f32>,
    /// Utterances.
    pub batch: usize,
    /// The longest utterance's frames.
    pub frames: usize,
    /// Feature dimensions per frame.
    pub dims: usize,
    /// Each utterance's frames (≥ 1).
    pub lengths: Vec<usize>,
    /// Each utterance's labels (empty for an unlabelled batch).
    pub targets: Vec<Vec<u32>>,
    /// Each utterance's transcript (empty for an unlabelled batch).
    pub texts: Vec<String>,
}

impl SpeechBatch {
    /// An unlabelled batch of utterances' features (each `frames × dims`), to transcribe. An
    /// [`Error::Data`] for no utterance, an empty one, or one that is not whole frames.
    pub fn unlabelled(utterances: &[Vec<f32>], dims: usize) -> Result<Self> {
        let rows: Vec<&[f32]> = utterances.iter().map(Vec::as_slice).collect();
        check_features(&rows, dims)?;
        Ok(pad(&rows, dims, Vec::new(), Vec::new()))
    }
}

/// Checks each utterance is a whole, non-empty number of frames of finite values.
fn check_features(rows: &[&[f32]], dims: usize) -> Result<()> {
    if rows.is_empty() || dims == 0 {
        return Err(Error::Data(format!(
            "speech features: expected at least one utterance of frames × dims (dims > 0), found {} utterances of dims {dims}",
            rows.len()
        )));
    }
    for (i, row) in rows.iter().enumerate() {
        if row.is_empty() || !row.len().is_multiple_of(dims) {
            return Err(Error::Data(format!(
                "speech features: utterance {i} has {} values, expected a positive multiple of dims {dims}",
                row.len()
            )));
        }
        if row.iter().any(|v| !v.is_finite()) {
            return Err(Error::NotFinite {
                what: format!("speech features of utterance {i}"),
            });
        }
    }
    Ok(())
}

/// Pads `rows` (each `frames × dims`) to the longest with zeros.
fn pad(rows: &[&[f32]], dims: usize, targets: Vec<Vec<u32>>, texts: Vec<String>) -> SpeechBatch {
    let lengths: Vec<usize> = rows.iter().map(|r| r.len() / dims).collect();
    let frames = lengths.iter().copied().max().unwrap_or(0);
    let mut features = Vec::with_capacity(rows.len() * frames * dims);
    for r in rows {
        features.extend_from_slice(r);
        features.extend(std::iter::repeat_n(0.0, frames * dims - r.len()));
    }
    SpeechBatch {
        features,
        batch: rows.len(),
        frames,
        dims,
        lengths,
        targets,
        texts,
    }
}

/// One stored utterance.
#[derive(Debug, Clone)]
struct Utterance {
    features: Vec<f32>,
    labels: Vec<u32>,
    text: String,
}

/// Utterances with their transcripts, served as [`SpeechBatch`]es. Batches hold utterances of
/// similar lengths (bucketed within windows of 50 batches, torchtext's `BucketIterator`), in
/// an order shuffled per epoch unless [`with_shuffle(false)`](Self::with_shuffle).
#[derive(Debug, Clone)]
pub struct SpeechBatches {
    utterances: Vec<Utterance>,
    dims: usize,
    batch_size: usize,
    shuffle: bool,
    augment: Option<SpecAugment>,
}

impl SpeechBatches {
    /// Utterances from precomputed features (each `frames × dims`) and transcripts, encoded by
    /// `alphabet`. Typed errors: a batch size of 0, counts that differ, features that are not
    /// whole frames or not finite, a transcript with a character outside the alphabet.
    pub fn new(
        features: Vec<Vec<f32>>,
        transcripts: Vec<String>,
        dims: usize,
        alphabet: &CharAlphabet,
        batch_size: usize,
    ) -> Result<Self> {
        if batch_size == 0 {
            return Err(Error::Config {
                module: "SpeechBatches",
                message: "batch_size must be positive, found 0".into(),
            });
        }
        if features.len() != transcripts.len() {
            return Err(Error::Data(format!(
                "SpeechBatches: {} feature sequences but {} transcripts",
                features.len(),
                transcripts.len()
            )));
        }
        let rows: Vec<&[f32]> = features.iter().map(Vec::as_slice).collect();
        check_features(&rows, dims)?;
        let utterances = features
            .into_iter()
            .zip(transcripts)
            .enumerate()
            .map(|(i, (features, text))| {
                let labels = alphabet
                    .encode(&text)
                    .map_err(|e| Error::Data(format!("SpeechBatches utterance {i}: {e}")))?;
                Ok(Utterance {
                    features,
                    labels,
                    text,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            utterances,
            dims,
            batch_size,
            shuffle: true,
            augment: None,
        })
    }

    /// The utterances of a `path<TAB>transcript` manifest ([`read_manifest`]), their WAVs read
    /// and turned into features by `extractor` in parallel. Errors name the file or line.
    pub fn from_manifest(
        manifest: impl AsRef<Path>,
        extractor: &FeatureExtractor,
        alphabet: &CharAlphabet,
        batch_size: usize,
    ) -> Result<Self> {
        let entries = read_manifest(manifest)?;
        let features = entries
            .par_iter()
            .map(|(path, _)| extractor.extract(&read_wav(path)?))
            .collect::<Result<Vec<_>>>()?;
        let texts = entries.into_iter().map(|(_, text)| text).collect();
        Self::new(features, texts, extractor.dims(), alphabet, batch_size)
    }

    /// Whether each epoch's order is shuffled (from the trainer's seed and the epoch). Default
    /// true; evaluation sets want false.
    pub fn with_shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }

    /// SpecAugment masks applied to every served utterance, drawn from `(seed, epoch,
    /// utterance)`. Default none.
    pub fn with_spec_augment(mut self, augment: Option<SpecAugment>) -> Self {
        self.augment = augment;
        self
    }

    /// The first `len() - n` utterances and the last `n`, as two sets with this one's settings
    /// (a validation split). An [`Error::Data`] when either would be empty.
    pub fn split_tail(mut self, n: usize) -> Result<(Self, Self)> {
        if n == 0 || n >= self.utterances.len() {
            return Err(Error::Data(format!(
                "SpeechBatches::split_tail: {n} of {} utterances leaves a side empty",
                self.utterances.len()
            )));
        }
        let tail = self.utterances.split_off(self.utterances.len() - n);
        let other = Self {
            utterances: tail,
            ..self.clone_settings()
        };
        Ok((self, other))
    }

    fn clone_settings(&self) -> Self {
        Self {
            utterances: Vec::new(),
            dims: self.dims,
            batch_size: self.batch_size,
            shuffle: self.shuffle,
            augment: self.augment,
        }
    }

    /// Utterances.
    pub fn len(&self) -> usize {
        self.utterances.len()
    }

    /// Whether there is no utterance.
    pub fn is_empty(&self) -> bool {
        self.utterances.is_empty()
    }

    /// Feature dimensions per frame.
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// The transcripts, in the order given.
    pub fn transcripts(&self) -> impl Iterator<Item = &str> {
        self.utterances.iter().map(|u| u.text.as_str())
    }

    /// Each utterance's frames, in the order given.
    pub fn frames(&self) -> Vec<usize> {
        self.utterances
            .iter()
            .map(|u| u.features.len() / self.dims)
            .collect()
    }
}

impl Batches<SpeechBatch> for SpeechBatches {
    fn num_batches(&self) -> usize {
        self.utterances.len().div_ceil(self.batch_size)
    }

    fn get(&self, epoch: u64, index: usize, seed: u64) -> Result<SpeechBatch> {
        let order =
            crate::data::order_batches(&self.frames(), self.batch_size, self.shuffle, true, seed, epoch);
        let rows = order
            .get(index)
            .ok_or_else(|| Error::Data(format!("batch {index} of an epoch of {}", order.len())))?;
        let augmented: Vec<Vec<f32>>;
        let features: Vec<&[f32]> = match &self.augment {
            None => rows
                .iter()
                .map(|&i| self.utterances[i].features.as_slice())
                .collect(),
            Some(augment) => {
                augmented = rows
                    .iter()
                    .map(|&i| {
                        let mut x = self.utterances[i].features.clone();
                        let mut rng = SplitMix64::derive(seed, &[0x5A, epoch, i as u64]);
                        augment.apply(&mut x, self.dims, &mut rng);
                        x
                    })
                    .collect();
                augmented.iter().map(Vec::as_slice).collect()
            }
        };
        let targets = rows.iter().map(|&i| self.utterances[i].labels.clone()).collect();
        let texts = rows.iter().map(|&i| self.utterances[i].text.clone()).collect();
        Ok(pad(&features, self.dims, targets, texts))
    }
}
