//! Layers, generic over burn's [`Backend`](burn::tensor::backend::Backend).
mod attention;
mod kv_cache;
mod limits;
mod position;
mod recurrent;
mod transformer;

pub use attention::{AttentionMasks, AttentionMemory, MultiHeadAttention, MultiHeadAttentionConfig};
pub use kv_cache::KvCache;
pub use limits::MAX_PARAM_ELEMENTS;
pub(crate) use limits::check_param_size;
pub use position::{LearnedPositions, PositionsConfig, RotaryConfig, RotaryPositions, SinusoidalPositions};
pub use transformer::{
    FeedForwardActivation, TorchLayerNorm, TorchLinear, TransformerDecoder, TransformerDecoderConfig,
    TransformerDecoderLayer, TransformerDecoderLayerConfig, TransformerEncoder, TransformerEncoderConfig,
    TransformerEncoderLayer, TransformerEncoderLayerConfig,
};

pub use recurrent::{
    CellType, Gru, GruConfig, Lstm, LstmConfig, LstmState, Nonlinearity, Recurrent, RecurrentConfig,
    RecurrentState, RecurrentWeights, Rnn, RnnConfig, lengths_from_padding_mask,
};
