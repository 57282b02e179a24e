//! Layers, generic over burn's [`Backend`](burn::tensor::backend::Backend).
mod recurrent;

pub use recurrent::{
    Gru, GruConfig, Lstm, LstmConfig, LstmState, Nonlinearity, RecurrentWeights, Rnn, RnnConfig,
    lengths_from_padding_mask,
};
