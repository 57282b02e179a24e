//! Speech recognition: a dataset synthesised offline with espeak-ng ([`synthesize`],
//! [`read_manifest`]), audio in ([`read_wav`], [`resample`]), features ([`MelSpectrogram`],
//! [`KaldiFbank`], [`normalize_utterance`], [`SpecAugment`]), decoding CTC outputs ([`greedy_decode`], [`prefix_beam_search`] with an
//! optional character language model such as [`NgramLm`]). The CTC loss is
//! [`CtcLoss`](crate::nn::CtcLoss); word and character error rates are in
//! [`eval`](crate::eval).
mod ctc_decode;
mod dataset;
mod features;
mod model;
mod wav;

pub use ctc_decode::{BeamOptions, CtcHypothesis, LabelLm, NgramLm, greedy_decode, prefix_beam_search};
pub use dataset::{SynthConfig, SynthDataset, read_manifest, synthesize};
pub use features::{KaldiFbank, MelScale, MelSpectrogram, SpecAugment, normalize_utterance};
pub use model::{SpeechRecognizer, SpeechRecognizerConfig};
pub use wav::{Audio, read_wav, resample, write_wav};
