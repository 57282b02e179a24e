//! [`SequenceClassifier`]: an encoder (recurrent or Transformer) with masked pooling and a
//! classification head.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::{Bool, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::models::ModelInit;
use crate::nn::lookup;
use crate::nn::{
    AttentionMasks, CellType, PositionsConfig, Recurrent, RecurrentConfig, SinusoidalPositions, TorchLinear,
    TransformerEncoder, TransformerEncoderConfig, TransformerEncoderLayerConfig,
};
use crate::{Backend, Error, Result};

/// Which encoder reads the tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EncoderKind {
    /// A recurrent stack (`hidden_size` per direction).
    Recurrent {
        /// The cell.
        cell: CellType,
        /// Hidden features per direction.
        hidden_size: usize,
        /// Layers.
        num_layers: usize,
        /// Read both ways.
        bidirectional: bool,
    },
    /// A post-norm `TransformerEncoder` over the embeddings (width `embed_size`) plus sinusoidal
    /// positions, with the padding as key-padding mask.
    Transformer {
        /// Attention heads.
        n_heads: usize,
        /// Feed-forward width.
        d_ff: usize,
        /// Layers.
        num_layers: usize,
        /// Longest sequence.
        max_len: usize,
    },
}

/// How the encoder's outputs become one vector per sequence. Only real (non-padded) positions
/// count, so padding never changes the prediction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Pooling {
    /// The output at the last real step (recurrent: the final hidden state of the last layer, both
    /// directions — the backward direction's final state is at the first step).
    Last,
    /// The mean over real steps.
    Mean,
    /// The output at the first step (BERT's `[CLS]` convention).
    First,
}

/// Configuration of a [`SequenceClassifier`].
#[derive(Config, Debug)]
pub struct SequenceClassifierConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Embedding size.
    pub embed_size: usize,
    /// Classes.
    pub num_classes: usize,
    /// The encoder.
    pub encoder: EncoderKind,
    /// Pooling. Default [`Pooling::Mean`].
    #[config(default = "Pooling::Mean")]
    pub pooling: Pooling,
    /// Dropout on the embeddings and before the head (and inside the encoder). Default 0.1.
    #[config(default = 0.1)]
    pub dropout: f64,
    /// How the embedding and the head are drawn. `None` (the default) is
    /// [`ModelInit::TorchModules`] (`nn.Embedding` and `nn.Linear`); [`ModelInit::WordLanguageModel`]
    /// draws both `U(-0.1, 0.1)` with a zero bias. The encoder is initialised as its `torch.nn`
    /// counterpart either way.
    #[config(default = "None")]
    pub init: Option<ModelInit>,
}

impl SequenceClassifierConfig {
    /// Builds the classifier with the [`init`](Self::init) scheme (by default the embedding
    /// `N(0, 1)` as `nn.Embedding`, the head as `nn.Linear`).
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<SequenceClassifier<B>> {
        let scheme = self.init.unwrap_or(ModelInit::TorchModules).check(
            "SequenceClassifierConfig",
            &[ModelInit::TorchModules, ModelInit::WordLanguageModel],
        )?;
        if self.vocab_size == 0 || self.embed_size == 0 || self.num_classes < 2 {
            return Err(Error::Config {
                module: "SequenceClassifierConfig",
                message: format!(
                    "vocab_size and embed_size must be > 0 and num_classes >= 2, found {}, {}, {}",
                    self.vocab_size, self.embed_size, self.num_classes
                ),
            });
        }
        crate::nn::check_param_size(
            "SequenceClassifierConfig",
            "the embedding (vocab_size × embed_size)",
            &[self.vocab_size, self.embed_size],
        )?;
        let (encoder, width) = match self.encoder {
            EncoderKind::Recurrent {
                cell,
                hidden_size,
                num_layers,
                bidirectional,
            } => (
                Encoder::Recurrent(
                    RecurrentConfig::new(cell, self.embed_size, hidden_size)
                        .with_num_layers(num_layers)
                        .with_bidirectional(bidirectional)
                        .with_dropout(self.dropout)
                        .init(device)?,
                ),
                hidden_size * (1 + bidirectional as usize),
            ),
            EncoderKind::Transformer {
                n_heads,
                d_ff,
                num_layers,
                max_len,
            } => (
                Encoder::Transformer(TransformerBody {
                    encoder: TransformerEncoderConfig::new(
                        TransformerEncoderLayerConfig::new(self.embed_size, n_heads)
                            .with_d_ff(d_ff)
                            .with_dropout(self.dropout),
                        num_layers,
                    )
                    .init(device)?,
                    positions: PositionsConfig::new(self.embed_size, max_len).init_sinusoidal(device)?,
                }),
                self.embed_size,
            ),
        };
        Ok(SequenceClassifier {
            embedding: scheme.embedding(self.vocab_size, self.embed_size, device),
            encoder,
            head: scheme.output_layer(width, self.num_classes, true, device),
            dropout: DropoutConfig::new(self.dropout).init(),
            pooling: self.pooling,
            bidirectional: matches!(
                self.encoder,
                EncoderKind::Recurrent {
                    bidirectional: true,
                    ..
                }
            ),
        })
    }
}

/// The encoder of a [`SequenceClassifier`].
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Encoder<B: Backend> {
    /// Recurrent.
    Recurrent(Recurrent<B>),
    /// Transformer with its positions.
    Transformer(TransformerBody<B>),
}

/// A Transformer encoder with sinusoidal positions.
#[derive(Module, Debug)]
pub struct TransformerBody<B: Backend> {
    /// The layers.
    pub encoder: TransformerEncoder<B>,
    /// The positions added to the embeddings.
    pub positions: SinusoidalPositions<B>,
}

/// Sentence classification (sentiment, topic): embedding, encoder, masked pooling, linear head.
///
/// ```text
/// h = encoder(dropout(E[ids]), lengths);  v = pool(h, lengths);  logits = W dropout(v) + b
/// ```
#[derive(Module, Debug)]
pub struct SequenceClassifier<B: Backend> {
    /// `[vocab, embed]`.
    pub embedding: Param<Tensor<B, 2>>,
    /// The encoder.
    pub encoder: Encoder<B>,
    /// `[classes, width]`.
    pub head: TorchLinear<B>,
    dropout: Dropout,
    #[module(skip)]
    pooling: Pooling,
    bidirectional: bool,
}

impl<B: Backend> SequenceClassifier<B> {
    /// The number of classes.
    pub fn num_classes(&self) -> usize {
        self.head.weight.dims()[0]
    }

    /// Class logits of a padded batch.
    ///
    /// # Shapes
    /// - `ids`: `[batch, time]`, padded after each sequence's `lengths[b]` real tokens
    /// - returns `[batch, num_classes]`
    ///
    /// Lengths outside `1..=time` are an [`Error::Lengths`].
    pub fn forward(&self, ids: Tensor<B, 2, Int>, lengths: &[usize]) -> Result<Tensor<B, 2>> {
        let [batch, time] = ids.dims();
        if lengths.len() != batch || lengths.iter().any(|&l| l == 0 || l > time) {
            return Err(Error::Lengths(format!(
                "{} lengths for a batch of {batch}, each must be in 1..={time}; found {lengths:?}",
                lengths.len()
            )));
        }
        let device = ids.device();
        let x = self
            .dropout
            .forward(lookup("SequenceClassifier ids", &self.embedding.val(), ids)?);
        // [batch, time] with 1.0 at real positions.
        let real: Vec<f32> = lengths
            .iter()
            .flat_map(|&l| (0..time).map(move |t| if t < l { 1.0 } else { 0.0 }))
            .collect();
        let real = Tensor::<B, 2>::from_data(TensorData::new(real, [batch, time]), &device);
        let (out, last) = match &self.encoder {
            Encoder::Recurrent(rnn) => {
                let (out, state) = rnn.forward(x, Some(lengths), None)?;
                // The last layer's final states: [L·D, batch, H] -> the last D rows -> [batch, D·H].
                let [ld, _, h] = state.hidden.dims();
                let dirs = 1 + self.bidirectional as usize;
                let last = state
                    .hidden
                    .slice([ld - dirs..ld, 0..batch, 0..h])
                    .swap_dims(0, 1)
                    .reshape([batch, dirs * h]);
                (out, Some(last))
            }
            Encoder::Transformer(body) => {
                let x = body.positions.forward(x, 0)?;
                let pad: Tensor<B, 2, Bool> = real.clone().equal_elem(0.0);
                let masks = AttentionMasks {
                    key_padding: Some(pad),
                    ..Default::default()
                };
                (body.encoder.forward(x, &masks)?, None)
            }
        };
        let [_, _, width] = out.dims();
        let pooled = match (self.pooling, last) {
            (Pooling::Last, Some(last)) => last,
            (Pooling::Last, None) => {
                // The output at position lengths[b] − 1 of each row.
                let index: Vec<i64> = lengths.iter().map(|&l| l as i64 - 1).collect();
                let index = Tensor::<B, 1, Int>::from_data(TensorData::new(index, [batch]), &device)
                    .reshape([batch, 1, 1])
                    .expand([batch, 1, width]);
                out.gather(1, index).reshape([batch, width])
            }
            (Pooling::Mean, _) => {
                let counts: Vec<f32> = lengths.iter().map(|&l| l as f32).collect();
                let counts =
                    Tensor::<B, 1>::from_data(TensorData::new(counts, [batch]), &device).reshape([batch, 1]);
                (out * real.unsqueeze_dim(2)).sum_dim(1).reshape([batch, width]) / counts
            }
            (Pooling::First, _) => out.slice([0..batch, 0..1, 0..width]).reshape([batch, width]),
        };
        Ok(self
            .head
            .apply(self.dropout.forward(pooled).unsqueeze_dim(1))
            .reshape([batch, self.head.weight.dims()[0]]))
    }
}
