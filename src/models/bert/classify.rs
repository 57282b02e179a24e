//! Classification heads of the BERT family, as transformers builds them:
//!
//! ```text
//! sequence, BERT:       classifier(dropout(tanh(pooler(h[:, 0]))))
//! sequence, RoBERTa:    out_proj(dropout(tanh(dense(dropout(h[:, 0])))))
//! sequence, DistilBERT: classifier(dropout(relu(pre_classifier(h[:, 0]))))
//! token, all:           classifier(dropout(h))
//! ```

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::{Tensor, TensorData};

use super::config::{BertConfig, EncoderFamily, ProblemType};
use super::layer::normal_linear;
use super::mlm::token_loss;
use super::model::{BertModel, first_token};
use crate::data::EncodedBatch;
use crate::nn::TorchLinear;
use crate::{Backend, Error, Result};

/// A BERT-family encoder with a sequence classification (or regression) head.
#[derive(Module, Debug)]
pub struct BertForSequenceClassification<B: Backend> {
    /// The encoder (with the pooler for BERT).
    pub bert: BertModel<B>,
    /// RoBERTa's `classifier.dense` (tanh after it) or DistilBERT's `pre_classifier` (relu
    /// after it); none for BERT, whose pooler plays that part.
    pub pre_classifier: Option<TorchLinear<B>>,
    /// The output layer `[num_labels, hidden]` (RoBERTa: `classifier.out_proj`).
    pub classifier: TorchLinear<B>,
    dropout: Dropout,
}

/// A BERT-family encoder with a per-token classification head.
#[derive(Module, Debug)]
pub struct BertForTokenClassification<B: Backend> {
    /// The encoder (no pooler).
    pub bert: BertModel<B>,
    /// The output layer `[num_labels, hidden]`.
    pub classifier: TorchLinear<B>,
    dropout: Dropout,
}

/// The labels of a batch for a sequence classifier's loss.
#[derive(Debug, Clone, PartialEq)]
pub enum SequenceLabels {
    /// One class id per row (single-label classification).
    Classes(Vec<i64>),
    /// `num_labels` values per row, row after row: 0/1 targets (multi-label) or regression
    /// targets.
    Values(Vec<f32>),
}

impl BertConfig {
    /// A sequence classifier with transformers' initialisation.
    pub fn init_sequence_classification<B: Backend>(
        &self,
        device: &B::Device,
    ) -> Result<BertForSequenceClassification<B>> {
        let bert = self.init(self.family == EncoderFamily::Bert, device)?;
        let (d, std) = (self.hidden_size, self.initializer_range);
        Ok(BertForSequenceClassification {
            bert,
            pre_classifier: (self.family != EncoderFamily::Bert).then(|| normal_linear(d, d, std, device)),
            classifier: normal_linear(d, self.num_labels, std, device),
            dropout: DropoutConfig::new(self.classifier_dropout.unwrap_or(self.hidden_dropout_prob)).init(),
        })
    }

    /// A token classifier with transformers' initialisation.
    pub fn init_token_classification<B: Backend>(
        &self,
        device: &B::Device,
    ) -> Result<BertForTokenClassification<B>> {
        let bert = self.init(false, device)?;
        // DistilBERT's token head drops out with `dropout`, the others with `classifier_dropout`.
        let p = match self.family {
            EncoderFamily::DistilBert => self.hidden_dropout_prob,
            _ => self.classifier_dropout.unwrap_or(self.hidden_dropout_prob),
        };
        Ok(BertForTokenClassification {
            bert,
            classifier: normal_linear(self.hidden_size, self.num_labels, self.initializer_range, device),
            dropout: DropoutConfig::new(p).init(),
        })
    }
}

impl<B: Backend> BertForSequenceClassification<B> {
    /// Logits (or regression values) per row.
    ///
    /// # Shapes
    /// - output: `[batch, num_labels]`
    pub fn forward(&self, input: &EncodedBatch) -> Result<Tensor<B, 2>> {
        let h = self.bert.forward(input)?;
        let x = match (self.bert.config().family, &self.pre_classifier) {
            (EncoderFamily::Roberta, Some(dense)) => {
                let x = dense.apply(self.dropout.forward(first_token(h))).tanh();
                self.dropout.forward(x)
            }
            (EncoderFamily::DistilBert, Some(pre)) => self
                .dropout
                .forward(burn::tensor::activation::relu(pre.apply(first_token(h)))),
            _ => {
                let pooled = self.bert.pool(h).ok_or_else(|| Error::Config {
                    module: "BertForSequenceClassification",
                    message: "a BERT sequence classifier needs its pooler".into(),
                })?;
                self.dropout.forward(pooled.unsqueeze_dim(1))
            }
        };
        // [B, 1, labels] -> [B, labels]
        Ok(self.classifier.apply(x).squeeze_dim(1))
    }

    /// The same model with another `problem_type` (which loss [`loss`](Self::loss) takes).
    pub fn with_problem_type(mut self, problem_type: Option<ProblemType>) -> Self {
        self.bert.config_mut().problem_type = problem_type;
        self
    }

    /// transformers' loss for the configured `problem_type`: cross-entropy for
    /// [`SequenceLabels::Classes`], binary cross-entropy with logits (multi-label) or mean
    /// squared error (regression) for [`SequenceLabels::Values`]. Labels of the other kind, of
    /// the wrong count, or a class outside `0..num_labels` are typed errors.
    ///
    /// # Shapes
    /// - `logits`: `[batch, num_labels]`; output `[1]`
    pub fn loss(&self, logits: Tensor<B, 2>, labels: &SequenceLabels) -> Result<Tensor<B, 1>> {
        let [b, n] = logits.dims();
        let problem = self.bert.config().resolved_problem_type();
        let device = logits.device();
        match (problem, labels) {
            (ProblemType::SingleLabel, SequenceLabels::Classes(classes)) => {
                // [B, n] -> [B, 1, n]: one "token" per row.
                token_loss(logits.unsqueeze_dim(1), classes, "sequence labels")
            }
            (ProblemType::MultiLabel | ProblemType::Regression, SequenceLabels::Values(values)) => {
                if values.len() != b * n {
                    return Err(Error::shape(
                        "sequence label values",
                        format!("[{b}, {n}] (batch × num_labels)"),
                        &[values.len()],
                    ));
                }
                let y = Tensor::<B, 2>::from_data(TensorData::new(values.clone(), [b, n]), &device);
                Ok(match problem {
                    // max(x, 0) - x y + log(1 + exp(-|x|)), the stable form of BCEWithLogits.
                    ProblemType::MultiLabel => {
                        let x = logits;
                        (x.clone().clamp_min(0.0) - x.clone() * y + (x.abs().neg().exp() + 1.0).log()).mean()
                    }
                    _ => (logits - y).powi_scalar(2).mean(),
                })
            }
            (problem, _) => Err(Error::Data(format!(
                "sequence labels: problem_type {problem:?} takes {}, found the other kind",
                match problem {
                    ProblemType::SingleLabel => "SequenceLabels::Classes",
                    _ => "SequenceLabels::Values",
                }
            ))),
        }
    }
}

impl<B: Backend> BertForTokenClassification<B> {
    /// Logits per position.
    ///
    /// # Shapes
    /// - output: `[batch, seq_len, num_labels]`
    pub fn forward(&self, input: &EncodedBatch) -> Result<Tensor<B, 3>> {
        let h = self.bert.forward(input)?;
        Ok(self.classifier.apply(self.dropout.forward(h)))
    }

    /// The mean cross-entropy over positions whose label is not -100 (padding and sub-word
    /// continuations, as transformers' token-classification recipe labels them).
    ///
    /// # Shapes
    /// - `logits`: `[batch, seq_len, num_labels]`; `labels`: `batch × seq_len`; output `[1]`
    pub fn loss(&self, logits: Tensor<B, 3>, labels: &[i64]) -> Result<Tensor<B, 1>> {
        token_loss(logits, labels, "token labels")
    }
}
