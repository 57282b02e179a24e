//! Speech recognition, from WAV files to text:
//!
//! - a dataset synthesised offline with espeak-ng ([`synthesize`], [`read_manifest`]);
//! - audio in ([`read_wav`], [`resample`]) and features ([`MelSpectrogram`], [`KaldiFbank`],
//!   [`normalize_utterance`], [`SpecAugment`]), computed once per utterance by
//!   [`FeatureExtractor`] into [`SpeechBatches`] of characters ([`CharAlphabet`]);
//! - the acoustic model [`SpeechRecognizer`], trained by
//!   [`CtcTask`](crate::train::CtcTask) with [`CtcLoss`](crate::nn::CtcLoss);
//! - decoding its outputs ([`greedy_decode`], [`prefix_beam_search`] with an optional character
//!   language model such as [`NgramLm`]), [`SpeechRecognizer::transcribe`] and
//!   [`SpeechRecognizer::evaluate`] (word and character error rates, from
//!   [`eval`](crate::eval)).
mod alphabet;
mod batches;
mod ctc_decode;
mod dataset;
mod features;
mod model;
mod transcribe;
mod wav;

pub use alphabet::CharAlphabet;
pub use batches::{FeatureExtractor, SpeechBatch, SpeechBatches};
pub use ctc_decode::{BeamOptions, CtcHypothesis, LabelLm, NgramLm, greedy_decode, prefix_beam_search};
pub use dataset::{SynthConfig, SynthDataset, read_manifest, synthesize};
pub use features::{KaldiFbank, MelScale, MelSpectrogram, SpecAugment, normalize_utterance};
pub use model::{SpeechRecognizer, SpeechRecognizerConfig};
pub use transcribe::{Decoding, SpeechScores};
pub(crate) use transcribe::{greedy_labels, recognize};
pub use wav::{Audio, read_wav, resample, write_wav};
