//! Recurrent layers with PyTorch's semantics: [`Rnn`], [`Lstm`], [`Gru`].
mod any;
mod common;
mod driver;
mod gru;
mod lstm;
mod rnn;
mod weights;

pub use any::{CellType, Recurrent, RecurrentConfig, RecurrentState};
pub use common::lengths_from_padding_mask;
pub use gru::{Gru, GruConfig};
pub use lstm::{Lstm, LstmConfig, LstmState};
pub use rnn::{Nonlinearity, Rnn, RnnConfig};
pub use weights::RecurrentWeights;
