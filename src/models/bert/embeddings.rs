//! [`BertEmbeddings`]: word, position and token-type embeddings, summed, normalised and dropped
//! out, with each family's positions.

use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::{Int, Tensor, TensorData};

use super::config::{BertConfig, EncoderFamily};
use crate::data::EncodedBatch;
use crate::nn::TorchLayerNorm;
use crate::{Backend, Error, Result};

/// The embedding layer of a BERT-family encoder (`embeddings.` in its checkpoints).
#[derive(Module, Debug)]
pub struct BertEmbeddings<B: Backend> {
    /// `[vocab_size, hidden]`.
    pub word_embeddings: Param<Tensor<B, 2>>,
    /// `[max_position_embeddings, hidden]`.
    pub position_embeddings: Param<Tensor<B, 2>>,
    /// `[type_vocab_size, hidden]`; absent in DistilBERT.
    pub token_type_embeddings: Option<Param<Tensor<B, 2>>>,
    /// The norm after the sum (`LayerNorm`).
    pub layer_norm: TorchLayerNorm<B>,
    dropout: Dropout,
}

/// `N(0, std)` weights of `shape`, with row `zero_row` zeroed (the padding row of `nn.Embedding`).
pub(super) fn normal_table<B: Backend>(
    shape: [usize; 2],
    std: f64,
    zero_row: Option<usize>,
    device: &B::Device,
) -> Param<Tensor<B, 2>> {
    let mut t = Tensor::<B, 2>::random(shape, burn::tensor::Distribution::Normal(0.0, std), device);
    if let Some(r) = zero_row {
        t = t.slice_assign([r..r + 1, 0..shape[1]], Tensor::zeros([1, shape[1]], device));
    }
    Param::from_tensor(t)
}

impl<B: Backend> BertEmbeddings<B> {
    /// transformers' initialisation: `N(0, initializer_range)` tables, the padding row of the
    /// word table zeroed, a unit norm.
    pub(super) fn new(c: &BertConfig, device: &B::Device) -> Self {
        let d = c.hidden_size;
        let std = c.initializer_range;
        Self {
            word_embeddings: normal_table([c.vocab_size, d], std, Some(c.pad_token_id), device),
            position_embeddings: normal_table([c.max_position_embeddings, d], std, None, device),
            token_type_embeddings: (c.family != EncoderFamily::DistilBert)
                .then(|| normal_table([c.type_vocab_size, d], std, None, device)),
            layer_norm: TorchLayerNorm::new(d, c.layer_norm_eps, true, device),
            dropout: DropoutConfig::new(c.hidden_dropout_prob).init(),
        }
    }

    /// The embedded batch, after checking its ids, token types and length against the tables.
    ///
    /// # Shapes
    /// - output: `[batch, seq_len, hidden]`
    pub fn forward(&self, input: &EncodedBatch, config: &BertConfig) -> Result<Tensor<B, 3>> {
        input.validate()?;
        let (batch, len) = (input.batch, input.seq_len);
        if len > config.max_len() {
            return Err(Error::TooLong {
                found: len,
                offset: 0,
                max: config.max_len(),
            });
        }
        let vocab = self.word_embeddings.dims()[0];
        crate::data::check_token_ids(&input.input_ids, vocab)?;
        let device = self.word_embeddings.device();
        let rows = |values: Vec<i64>| {
            Tensor::<B, 1, Int>::from_data(TensorData::new(values, [batch * len]), &device)
        };
        let d = config.hidden_size;
        // Each lookup: [B*T] -> [B*T, D] -> [B, T, D].
        let lookup = |table: &Param<Tensor<B, 2>>, ids: Vec<i64>| {
            table.val().select(0, rows(ids)).reshape([batch, len, d])
        };
        let ids = input.input_ids.iter().map(|&t| t as i64).collect();
        let mut x = lookup(&self.word_embeddings, ids);
        x = x + lookup(&self.position_embeddings, positions(input, config));
        if let Some(types) = &self.token_type_embeddings {
            let n_types = types.dims()[0];
            if let Some(&bad) = input.token_type_ids.iter().find(|&&t| t as usize >= n_types) {
                return Err(Error::Index {
                    what: "token_type_ids (type_vocab_size)".into(),
                    index: bad as i64,
                    len: n_types,
                });
            }
            x = x + lookup(types, input.token_type_ids.iter().map(|&t| t as i64).collect());
        }
        Ok(self.dropout.forward(self.layer_norm.apply(x)))
    }
}

/// Each position's row of the position table: `0..seq_len` for BERT and DistilBERT; for
/// RoBERTa, transformers' `create_position_ids_from_input_ids`: non-padding tokens count up
/// from `pad_token_id + 1`, padding tokens sit at `pad_token_id`.
fn positions(input: &EncodedBatch, config: &BertConfig) -> Vec<i64> {
    let len = input.seq_len;
    match config.family {
        EncoderFamily::Roberta => {
            let pad = config.pad_token_id as i64;
            input
                .input_ids
                .chunks(len)
                .flat_map(|row| {
                    let mut seen = 0;
                    row.iter()
                        .map(move |&t| {
                            if t as i64 == pad {
                                pad
                            } else {
                                seen += 1;
                                seen + pad
                            }
                        })
                        .collect::<Vec<_>>()
                })
                .collect()
        }
        _ => (0..input.batch).flat_map(|_| 0..len as i64).collect(),
    }
}
