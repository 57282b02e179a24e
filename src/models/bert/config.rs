//! [`BertConfig`]: one configuration for the BERT family (BERT, RoBERTa, DistilBERT), with
//! transformers' names and defaults, read from a Hugging Face `config.json`.

use burn::config::Config;

use crate::nn::FeedForwardActivation;
use crate::{Error, Result};

/// The member of the BERT family: its checkpoint key names, positions, token types and heads.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum EncoderFamily {
    /// BERT (`BertModel`): absolute positions from 0, token types, a pooler.
    Bert,
    /// RoBERTa (`RobertaModel`): positions counted over non-padding tokens from `pad_token_id + 1`,
    /// one token type, a two-layer classification head.
    Roberta,
    /// DistilBERT (`DistilBertModel`): no token types, its own key names, no pooler.
    DistilBert,
}

impl EncoderFamily {
    /// The attribute under which a task model holds the encoder (`bert.`, `roberta.`,
    /// `distilbert.`), without the dot.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Bert => "bert",
            Self::Roberta => "roberta",
            Self::DistilBert => "distilbert",
        }
    }
}

/// What a sequence classifier's loss is, transformers' `problem_type`.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum ProblemType {
    /// Cross-entropy over `num_labels` classes (integer labels).
    SingleLabel,
    /// Binary cross-entropy with logits per label (float labels, 0 or 1).
    MultiLabel,
    /// Mean squared error (float labels).
    Regression,
}

/// Configuration of a BERT-family encoder and its heads. Defaults are `bert-base-uncased`'s, as
/// transformers' `BertConfig()`.
#[derive(Config, Debug)]
pub struct BertConfig {
    /// Which family. Default BERT.
    #[config(default = "EncoderFamily::Bert")]
    pub family: EncoderFamily,
    /// Vocabulary size. Default 30522.
    #[config(default = 30522)]
    pub vocab_size: usize,
    /// Model width (DistilBERT's `dim`). Default 768.
    #[config(default = 768)]
    pub hidden_size: usize,
    /// Number of layers (DistilBERT's `n_layers`). Default 12.
    #[config(default = 12)]
    pub num_hidden_layers: usize,
    /// Attention heads (DistilBERT's `n_heads`). Default 12.
    #[config(default = 12)]
    pub num_attention_heads: usize,
    /// Feed-forward width (DistilBERT's `hidden_dim`). Default 3072.
    #[config(default = 3072)]
    pub intermediate_size: usize,
    /// Feed-forward activation (`hidden_act`, DistilBERT's `activation`). Default exact GELU.
    #[config(default = "FeedForwardActivation::Gelu")]
    pub hidden_act: FeedForwardActivation,
    /// Dropout on embeddings and residual branches while training (DistilBERT's `dropout`).
    /// Default 0.1.
    #[config(default = 0.1)]
    pub hidden_dropout_prob: f64,
    /// Dropout on attention weights while training (DistilBERT's `attention_dropout`).
    /// Default 0.1.
    #[config(default = 0.1)]
    pub attention_probs_dropout_prob: f64,
    /// Rows of the position table. Default 512 (RoBERTa's checkpoints: 514, of which the first
    /// `pad_token_id + 1` are never used).
    #[config(default = 512)]
    pub max_position_embeddings: usize,
    /// Token types (`token_type_ids` must be below it). Default 2 (RoBERTa: 1; DistilBERT has
    /// no token-type table, and this is ignored).
    #[config(default = 2)]
    pub type_vocab_size: usize,
    /// Layer-norm epsilon. Default 1e-12 (RoBERTa's checkpoints: 1e-5; DistilBERT: 1e-12, fixed).
    #[config(default = 1e-12)]
    pub layer_norm_eps: f64,
    /// The padding token id. Default 0 (RoBERTa: 1, which also sets its position offset).
    #[config(default = 0)]
    pub pad_token_id: usize,
    /// Dropout before a classifier; `None` takes `hidden_dropout_prob`, as transformers does
    /// (DistilBERT's sequence classifier: `seq_classif_dropout`). Default `None`.
    #[config(default = "None")]
    pub classifier_dropout: Option<f64>,
    /// Classes of a classification head. Default 2.
    #[config(default = 2)]
    pub num_labels: usize,
    /// The sequence classifier's loss; `None` chooses as transformers does: regression for one
    /// label, single-label classification otherwise. Default `None`.
    #[config(default = "None")]
    pub problem_type: Option<ProblemType>,
    /// Class names by id (`id2label`); empty: `LABEL_{i}`. Default empty.
    #[config(default = "Vec::new()")]
    pub id2label: Vec<String>,
    /// Standard deviation of the normal initialisation of new weights. Default 0.02.
    #[config(default = 0.02)]
    pub initializer_range: f64,
    /// The masked-LM decoder shares the word embedding. Default true.
    #[config(default = true)]
    pub tie_word_embeddings: bool,
}

impl BertConfig {
    /// The width of one attention head, after checking the sizes (an [`Error::Config`] naming
    /// the field).
    pub(crate) fn validate(&self) -> Result<()> {
        let fail = |message: String| {
            Err(Error::Config {
                module: "BertConfig",
                message,
            })
        };
        let sizes = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
            ("num_labels", self.num_labels),
        ];
        if let Some((name, _)) = sizes.iter().find(|(_, v)| *v == 0) {
            return fail(format!("{name} must be positive, found 0"));
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return fail(format!(
                "hidden_size ({}) must be a multiple of num_attention_heads ({})",
                self.hidden_size, self.num_attention_heads
            ));
        }
        let dropouts = [
            ("hidden_dropout_prob", Some(self.hidden_dropout_prob)),
            (
                "attention_probs_dropout_prob",
                Some(self.attention_probs_dropout_prob),
            ),
            ("classifier_dropout", self.classifier_dropout),
        ];
        for (name, p) in dropouts {
            if let Some(p) = p
                && !(0.0..1.0).contains(&p)
            {
                return fail(format!("{name} must be in [0, 1), found {p}"));
            }
        }
        if !(self.initializer_range >= 0.0 && self.initializer_range.is_finite()) {
            return fail(format!(
                "initializer_range must be a finite value >= 0, found {}",
                self.initializer_range
            ));
        }
        if !(self.layer_norm_eps > 0.0 && self.layer_norm_eps.is_finite()) {
            return fail(format!(
                "layer_norm_eps must be a finite value > 0, found {}",
                self.layer_norm_eps
            ));
        }
        if self.pad_token_id >= self.vocab_size {
            return fail(format!(
                "pad_token_id ({}) must be below vocab_size ({})",
                self.pad_token_id, self.vocab_size
            ));
        }
        if self.family == EncoderFamily::Roberta && self.max_position_embeddings <= self.pad_token_id + 1 {
            return fail(format!(
                "a RoBERTa position table needs more than pad_token_id + 1 = {} rows, found \
                 max_position_embeddings = {}",
                self.pad_token_id + 1,
                self.max_position_embeddings
            ));
        }
        if !self.id2label.is_empty() && self.id2label.len() != self.num_labels {
            return fail(format!(
                "id2label names {} classes, num_labels is {} (set both, or the names with with_labels)",
                self.id2label.len(),
                self.num_labels
            ));
        }
        Ok(())
    }

    /// The longest sequence the position table covers (RoBERTa's first `pad_token_id + 1` rows
    /// are never used).
    pub fn max_len(&self) -> usize {
        match self.family {
            EncoderFamily::Roberta => self.max_position_embeddings - self.pad_token_id - 1,
            _ => self.max_position_embeddings,
        }
    }

    /// The loss of a sequence classifier, `problem_type` or transformers' choice.
    pub fn resolved_problem_type(&self) -> ProblemType {
        self.problem_type.unwrap_or(if self.num_labels == 1 {
            ProblemType::Regression
        } else {
            ProblemType::SingleLabel
        })
    }

    /// The classes by name: `num_labels` and `id2label` together (transformers resets
    /// `id2label` when `num_labels` changes; here both are set at once).
    pub fn with_labels(self, names: Vec<String>) -> Self {
        self.with_num_labels(names.len()).with_id2label(names)
    }

    /// The name of class `id`: `id2label` or `LABEL_{id}`.
    pub fn label_name(&self, id: usize) -> String {
        self.id2label
            .get(id)
            .cloned()
            .unwrap_or_else(|| format!("LABEL_{id}"))
    }
}
