//! Recurrent layers with PyTorch's semantics: one stack, [`Recurrent`], and its typed front-ends
//! [`Rnn`], [`Lstm`], [`Gru`].
mod common;
mod driver;
mod gru;
mod lstm;
mod rnn;
mod stack;
mod weights;

pub use crate::backend::CellType;
pub use common::lengths_from_padding_mask;
pub use gru::{Gru, GruConfig};
pub use lstm::{Lstm, LstmConfig, LstmState};
pub use rnn::{Nonlinearity, Rnn, RnnConfig};
pub use stack::{Recurrent, RecurrentConfig, RecurrentState};
pub use weights::RecurrentWeights;
