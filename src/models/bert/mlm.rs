//! [`BertForMaskedLM`]: the encoder with transformers' masked-language-model head (BERT's
//! `cls.predictions`, RoBERTa's `lm_head`, DistilBERT's `vocab_*`):
//!
//! ```text
//! h = encoder(input)
//! logits = norm(act(transform(h))) Wᵀ + bias       W: the word embedding (tied) or `decoder`
//! ```

use burn::module::{Module, Param};
use burn::tensor::{Int, Tensor, TensorData};

use super::config::{BertConfig, EncoderFamily};
use super::embeddings::normal_table;
use super::layer::normal_linear;
use super::model::BertModel;
use crate::data::EncodedBatch;
use crate::nn::{CrossEntropyLossConfig, FeedForwardActivation, TorchLayerNorm, TorchLinear};
use crate::{Backend, Error, Result};

/// A BERT-family encoder with its masked-LM head.
#[derive(Module, Debug)]
pub struct BertForMaskedLM<B: Backend> {
    /// The encoder (no pooler).
    pub bert: BertModel<B>,
    /// The transform's dense layer (BERT: `cls.predictions.transform.dense`).
    pub transform: TorchLinear<B>,
    /// The transform's norm.
    pub transform_norm: TorchLayerNorm<B>,
    /// The decoder weight `[vocab, hidden]` when not tied to the word embedding.
    pub decoder: Option<Param<Tensor<B, 2>>>,
    /// The decoder's own bias `[vocab]`.
    pub decoder_bias: Param<Tensor<B, 1>>,
    #[module(skip)]
    activation: FeedForwardActivation,
}

impl BertConfig {
    /// A masked-LM model with transformers' initialisation.
    pub fn init_masked_lm<B: Backend>(&self, device: &B::Device) -> Result<BertForMaskedLM<B>> {
        let bert = self.init(false, device)?;
        let (d, v) = (self.hidden_size, self.vocab_size);
        Ok(BertForMaskedLM {
            bert,
            transform: normal_linear(d, d, self.initializer_range, device),
            transform_norm: TorchLayerNorm::new(d, self.layer_norm_eps, true, device),
            decoder: (!self.tie_word_embeddings)
                .then(|| normal_table([v, d], self.initializer_range, None, device)),
            decoder_bias: Param::from_tensor(Tensor::zeros([v], device)),
            // RoBERTa's head applies the exact GELU whatever `hidden_act` says.
            activation: match self.family {
                EncoderFamily::Roberta => FeedForwardActivation::Gelu,
                _ => self.hidden_act,
            },
        })
    }
}

impl<B: Backend> BertForMaskedLM<B> {
    /// Vocabulary logits at every position.
    ///
    /// # Shapes
    /// - output: `[batch, seq_len, vocab_size]`
    pub fn forward(&self, input: &EncodedBatch) -> Result<Tensor<B, 3>> {
        let h = self.bert.forward(input)?;
        let h = self
            .transform_norm
            .apply(self.activation.apply(self.transform.apply(h)));
        let [batch, len, d] = h.dims();
        let weight = match &self.decoder {
            Some(w) => w.val(),
            None => self.bert.embeddings.word_embeddings.val(),
        };
        let vocab = weight.dims()[0];
        // [B, T, D] -> [B*T, D] x [D, V] -> [B, T, V]
        let logits =
            h.reshape([batch * len, d]).matmul(weight.transpose()) + self.decoder_bias.val().unsqueeze();
        Ok(logits.reshape([batch, len, vocab]))
    }

    /// The mean cross-entropy over the positions whose label is not -100 (transformers'
    /// `labels`: the original id at masked positions, -100 elsewhere). An [`Error::Shape`] when
    /// `labels` is not `[batch, seq_len]`, an [`Error::Index`] for a label outside the
    /// vocabulary.
    ///
    /// # Shapes
    /// - `logits`: `[batch, seq_len, vocab]`; `labels`: `batch × seq_len` values; output `[1]`
    pub fn loss(&self, logits: Tensor<B, 3>, labels: &[i64]) -> Result<Tensor<B, 1>> {
        token_loss(logits, labels, "masked-LM labels")
    }
}

/// Cross-entropy over `[batch, seq_len, classes]` logits and row-major labels (-100 ignored).
pub(super) fn token_loss<B: Backend>(
    logits: Tensor<B, 3>,
    labels: &[i64],
    what: &str,
) -> Result<Tensor<B, 1>> {
    let [b, t, v] = logits.dims();
    if labels.len() != b * t {
        return Err(Error::shape(
            what,
            format!("[{b}, {t}] (the logits' batch and length)"),
            &[labels.len()],
        ));
    }
    let device = logits.device();
    let targets = Tensor::<B, 1, Int>::from_data(TensorData::new(labels.to_vec(), [b * t]), &device);
    // [B, T, V] -> [B*T, V]
    CrossEntropyLossConfig::new()
        .init()?
        .forward(logits.reshape([b * t, v]), targets)
}
