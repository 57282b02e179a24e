//! Speech recognition: decoding CTC outputs ([`greedy_decode`], [`prefix_beam_search`] with an
//! optional character language model such as [`NgramLm`]). The CTC loss is
//! [`CtcLoss`](crate::nn::CtcLoss); word and character error rates are in
//! [`eval`](crate::eval).
mod ctc_decode;

pub use ctc_decode::{BeamOptions, CtcHypothesis, LabelLm, NgramLm, greedy_decode, prefix_beam_search};
