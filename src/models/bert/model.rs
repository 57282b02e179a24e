//! [`BertModel`]: the BERT-family encoder (transformers' `BertModel`, `RobertaModel`,
//! `DistilBertModel`), read top to bottom:
//!
//! ```text
//! x = LayerNorm(word[ids] + position[positions] + token_type[types])   (dropout)
//! x = layer_i(x, key padding from attention_mask)     for each layer
//! pooled = tanh(pooler(x[:, 0]))                      BERT and RoBERTa, when built with a pooler
//! ```

use burn::module::Module;
use burn::tensor::{Bool, Tensor, TensorData};

use super::config::{BertConfig, EncoderFamily};
use super::embeddings::BertEmbeddings;
use super::layer::{BertLayer, normal_linear};
use crate::data::EncodedBatch;
use crate::nn::{AttentionMasks, TorchLinear};
use crate::{Backend, Result};

/// A BERT-family encoder; see the module documentation.
#[derive(Module, Debug)]
pub struct BertModel<B: Backend> {
    /// The embedding layer.
    pub embeddings: BertEmbeddings<B>,
    /// The encoder layers.
    pub layers: Vec<BertLayer<B>>,
    /// The pooler's dense layer (`pooler.dense`), when the model has one.
    pub pooler: Option<TorchLinear<B>>,
    #[module(skip)]
    config: BertConfig,
}

impl BertConfig {
    /// An encoder with transformers' initialisation, with a pooler when `pooler` (BERT's and
    /// RoBERTa's base models have one; the task models except BERT's sequence classifier do not;
    /// DistilBERT never has one). An [`Error::Config`](crate::Error::Config) naming the field
    /// for invalid sizes or dropouts.
    pub fn init<B: Backend>(&self, pooler: bool, device: &B::Device) -> Result<BertModel<B>> {
        self.validate()?;
        let d = self.hidden_size;
        Ok(BertModel {
            embeddings: BertEmbeddings::new(self, device),
            layers: (0..self.num_hidden_layers)
                .map(|_| BertLayer::new(self, device))
                .collect::<Result<_>>()?,
            pooler: (pooler && self.family != EncoderFamily::DistilBert)
                .then(|| normal_linear(d, d, self.initializer_range, device)),
            config: self.clone(),
        })
    }
}

impl<B: Backend> BertModel<B> {
    /// The configuration it was built from.
    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    pub(super) fn config_mut(&mut self) -> &mut BertConfig {
        &mut self.config
    }

    /// The last layer's states. Bad input (an id outside the vocabulary, a token type outside
    /// `type_vocab_size`, a sequence longer than the position table, an inconsistent batch) is
    /// a typed error.
    ///
    /// # Shapes
    /// - output: `[batch, seq_len, hidden]`
    pub fn forward(&self, input: &EncodedBatch) -> Result<Tensor<B, 3>> {
        let mut all = self.forward_hidden_states(input)?;
        Ok(all.pop().expect("the embeddings are always there"))
    }

    /// Every layer's states, transformers' `hidden_states`: the embeddings first, then each
    /// layer's output (`num_hidden_layers + 1` tensors). Padded positions hold finite values
    /// that mean nothing.
    ///
    /// # Shapes
    /// - each: `[batch, seq_len, hidden]`
    pub fn forward_hidden_states(&self, input: &EncodedBatch) -> Result<Vec<Tensor<B, 3>>> {
        let mut x = self.embeddings.forward(input, &self.config)?;
        let device = x.device();
        let padding = input.attention_mask.iter().map(|&m| m == 0).collect::<Vec<_>>();
        let masks = AttentionMasks {
            key_padding: Some(Tensor::<B, 2, Bool>::from_data(
                TensorData::new(padding, [input.batch, input.seq_len]),
                &device,
            )),
            ..Default::default()
        };
        let mut states = Vec::with_capacity(self.layers.len() + 1);
        states.push(x.clone());
        for layer in &self.layers {
            x = layer.forward(x, &masks)?;
            states.push(x.clone());
        }
        Ok(states)
    }

    /// The pooled first token: `tanh(pooler(states[:, 0]))`, or `None` without a pooler.
    ///
    /// # Shapes
    /// - `states`: `[batch, seq_len, hidden]`; output `[batch, hidden]`
    pub fn pool(&self, states: Tensor<B, 3>) -> Option<Tensor<B, 2>> {
        let pooler = self.pooler.as_ref()?;
        Some(pooler.apply(first_token(states)).tanh().squeeze_dim(1))
    }
}

/// `states[:, 0:1]`, the first (`[CLS]` / `<s>`) token of each row.
///
/// # Shapes
/// - `states`: `[batch, seq_len, hidden]`; output `[batch, 1, hidden]`
pub(super) fn first_token<B: Backend>(states: Tensor<B, 3>) -> Tensor<B, 3> {
    let [batch, _, d] = states.dims();
    states.slice([0..batch, 0..1, 0..d])
}
