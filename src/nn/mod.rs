//! Layers, generic over burn's [`Backend`](burn::tensor::backend::Backend).
mod activation;
mod attention;
mod ctc;
mod embedding;
mod kv_cache;
mod limits;
mod linear;
mod loss;
mod norm;
mod position;
mod recurrent;
mod transformer;

pub use activation::FeedForwardActivation;
pub use attention::{AttentionMasks, AttentionMemory, MultiHeadAttention, MultiHeadAttentionConfig};
pub use ctc::{CtcLoss, CtcLossConfig, Reduction};
pub(crate) use embedding::{host_ids, lookup, lookup_checked};
pub use kv_cache::KvCache;
pub use limits::MAX_PARAM_ELEMENTS;
pub(crate) use limits::check_param_size;
pub use linear::TorchLinear;
pub use loss::{CrossEntropyLoss, CrossEntropyLossConfig};
pub use norm::TorchLayerNorm;
pub use position::{LearnedPositions, PositionsConfig, RotaryConfig, RotaryPositions, SinusoidalPositions};
pub(crate) use transformer::feed_forward;
pub use transformer::{
    TransformerDecoder, TransformerDecoderConfig, TransformerDecoderLayer, TransformerDecoderLayerConfig,
    TransformerEncoder, TransformerEncoderConfig, TransformerEncoderLayer, TransformerEncoderLayerConfig,
};

pub use recurrent::{
    CellType, Gru, GruConfig, Lstm, LstmConfig, LstmState, Nonlinearity, Recurrent, RecurrentConfig,
    RecurrentState, RecurrentWeights, Rnn, RnnConfig, lengths_from_padding_mask,
};
