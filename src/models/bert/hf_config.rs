//! [`BertConfig::from_hf_config`]: a Hugging Face `config.json` of a BERT, RoBERTa or
//! DistilBERT model, field by field, with transformers' per-family defaults for what is absent.

use std::path::Path;

use serde_json::{Map, Value};

use super::config::{BertConfig, EncoderFamily, ProblemType};
use crate::Result;
use crate::nn::FeedForwardActivation;

/// The fields of one `config.json`, read with errors that name the field.
struct Fields<'a> {
    map: &'a Map<String, Value>,
}

impl Fields<'_> {
    fn usize(&self, key: &str, default: usize) -> std::result::Result<usize, String> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v
                .as_u64()
                .map(|n| n as usize)
                .ok_or_else(|| format!("field `{key}` must be a non-negative integer, found {v}")),
        }
    }

    fn f64(&self, key: &str, default: f64) -> std::result::Result<f64, String> {
        self.opt_f64(key).map(|v| v.unwrap_or(default))
    }

    fn opt_f64(&self, key: &str) -> std::result::Result<Option<f64>, String> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| format!("field `{key}` must be a number, found {v}")),
        }
    }

    fn str(&self, key: &str) -> std::result::Result<Option<&str>, String> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(format!("field `{key}` must be a string, found {v}")),
        }
    }

    fn bool(&self, key: &str, default: bool) -> std::result::Result<bool, String> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(format!("field `{key}` must be true or false, found {v}")),
        }
    }
}

/// transformers' `hidden_act` names of the activations we have.
fn activation(name: &str, field: &str) -> std::result::Result<FeedForwardActivation, String> {
    match name {
        "gelu" => Ok(FeedForwardActivation::Gelu),
        "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Ok(FeedForwardActivation::GeluTanh),
        "relu" => Ok(FeedForwardActivation::Relu),
        other => Err(format!(
            "field `{field}`: the activation `{other}` is not supported (gelu, gelu_new, \
             gelu_pytorch_tanh, gelu_fast, relu)"
        )),
    }
}

impl BertConfig {
    /// Reads a Hugging Face `config.json` whose `model_type` is `bert`, `roberta` or
    /// `distilbert`. Absent fields take the defaults of transformers' config class for that
    /// family. A field that would change the numbers in a way this model does not follow
    /// (relative position embeddings, a decoder, cross-attention, sinusoidal DistilBERT
    /// positions, an unknown activation) is an [`Error::Load`] naming it, never ignored.
    pub fn from_hf_config(path: impl AsRef<Path>) -> Result<Self> {
        let config = crate::io::json::read_config(path.as_ref(), |text| {
            match serde_json::from_str(text).map_err(|e| e.to_string())? {
                Value::Object(map) => parse(&Fields { map: &map }),
                _ => Err("expected a JSON object".into()),
            }
        })?;
        config.validate()?;
        Ok(config)
    }
}

fn parse(f: &Fields<'_>) -> std::result::Result<BertConfig, String> {
    let family = match f.str("model_type")? {
        Some("bert") => EncoderFamily::Bert,
        Some("roberta") => EncoderFamily::Roberta,
        Some("distilbert") => EncoderFamily::DistilBert,
        Some(other) => {
            return Err(format!(
                "model_type is `{other}`; the BERT family supports `bert`, `roberta` and `distilbert`"
            ));
        }
        None => return Err("missing field `model_type` (bert, roberta or distilbert)".into()),
    };
    let config = match family {
        EncoderFamily::DistilBert => distilbert(f)?,
        _ => bert_or_roberta(f, family)?,
    };
    let id2label = labels(f)?;
    let num_labels = if id2label.is_empty() {
        f.usize("num_labels", 2)?
    } else {
        id2label.len()
    };
    let problem_type = match f.str("problem_type")? {
        None => None,
        Some("single_label_classification") => Some(ProblemType::SingleLabel),
        Some("multi_label_classification") => Some(ProblemType::MultiLabel),
        Some("regression") => Some(ProblemType::Regression),
        Some(other) => return Err(format!("field `problem_type`: unknown value `{other}`")),
    };
    Ok(config
        .with_num_labels(num_labels)
        .with_id2label(id2label)
        .with_problem_type(problem_type)
        .with_initializer_range(f.f64("initializer_range", 0.02)?)
        .with_tie_word_embeddings(f.bool("tie_word_embeddings", true)?))
}

fn bert_or_roberta(f: &Fields<'_>, family: EncoderFamily) -> std::result::Result<BertConfig, String> {
    if let Some(kind) = f.str("position_embedding_type")?.filter(|k| *k != "absolute") {
        return Err(format!(
            "field `position_embedding_type` is `{kind}`; only `absolute` positions are supported"
        ));
    }
    for field in ["is_decoder", "add_cross_attention"] {
        if f.bool(field, false)? {
            return Err(format!(
                "field `{field}` is true; the encoder family runs as an encoder only"
            ));
        }
    }
    let roberta = family == EncoderFamily::Roberta;
    Ok(BertConfig::new()
        .with_family(family)
        .with_vocab_size(f.usize("vocab_size", if roberta { 50265 } else { 30522 })?)
        .with_hidden_size(f.usize("hidden_size", 768)?)
        .with_num_hidden_layers(f.usize("num_hidden_layers", 12)?)
        .with_num_attention_heads(f.usize("num_attention_heads", 12)?)
        .with_intermediate_size(f.usize("intermediate_size", 3072)?)
        .with_hidden_act(activation(f.str("hidden_act")?.unwrap_or("gelu"), "hidden_act")?)
        .with_hidden_dropout_prob(f.f64("hidden_dropout_prob", 0.1)?)
        .with_attention_probs_dropout_prob(f.f64("attention_probs_dropout_prob", 0.1)?)
        .with_max_position_embeddings(f.usize("max_position_embeddings", 512)?)
        .with_type_vocab_size(f.usize("type_vocab_size", 2)?)
        .with_layer_norm_eps(f.f64("layer_norm_eps", 1e-12)?)
        .with_pad_token_id(f.usize("pad_token_id", if roberta { 1 } else { 0 })?)
        .with_classifier_dropout(f.opt_f64("classifier_dropout")?))
}

fn distilbert(f: &Fields<'_>) -> std::result::Result<BertConfig, String> {
    if f.bool("sinusoidal_pos_embds", false)? {
        return Err(
            "field `sinusoidal_pos_embds` is true; only learned DistilBERT positions are supported".into(),
        );
    }
    Ok(BertConfig::new()
        .with_family(EncoderFamily::DistilBert)
        .with_vocab_size(f.usize("vocab_size", 30522)?)
        .with_hidden_size(f.usize("dim", 768)?)
        .with_num_hidden_layers(f.usize("n_layers", 6)?)
        .with_num_attention_heads(f.usize("n_heads", 12)?)
        .with_intermediate_size(f.usize("hidden_dim", 3072)?)
        .with_hidden_act(activation(f.str("activation")?.unwrap_or("gelu"), "activation")?)
        .with_hidden_dropout_prob(f.f64("dropout", 0.1)?)
        .with_attention_probs_dropout_prob(f.f64("attention_dropout", 0.1)?)
        .with_max_position_embeddings(f.usize("max_position_embeddings", 512)?)
        .with_type_vocab_size(1)
        // DistilBERT's layer norms are built with eps 1e-12 whatever the config says.
        .with_layer_norm_eps(1e-12)
        .with_pad_token_id(f.usize("pad_token_id", 0)?)
        .with_classifier_dropout(Some(f.f64("seq_classif_dropout", 0.2)?)))
}

/// `id2label` (`{"0": "NEG", "1": "POS"}`) as names in id order; every id from 0 must be there.
fn labels(f: &Fields<'_>) -> std::result::Result<Vec<String>, String> {
    let Some(value) = f.map.get("id2label").filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let Value::Object(map) = value else {
        return Err(format!("field `id2label` must be an object, found {value}"));
    };
    let mut names = vec![None; map.len()];
    for (id, name) in map {
        let index = id
            .parse::<usize>()
            .ok()
            .filter(|&i| i < names.len())
            .ok_or_else(|| format!("field `id2label`: ids must be 0..{}, found `{id}`", map.len()))?;
        let name = name
            .as_str()
            .ok_or_else(|| format!("field `id2label`: the name of {id} must be a string, found {name}"))?;
        names[index] = Some(name.to_string());
    }
    Ok(names.into_iter().map(Option::unwrap_or_default).collect())
}

impl BertConfig {
    /// The configuration as transformers writes `config.json` for this family, with
    /// `architectures: [architecture]` (transformers' class name for it).
    pub fn to_hf_json(&self, architecture: &str) -> Value {
        let act = |a: FeedForwardActivation| match a {
            FeedForwardActivation::Gelu => "gelu",
            FeedForwardActivation::GeluTanh => "gelu_new",
            FeedForwardActivation::Relu => "relu",
        };
        let family = self.family.prefix();
        // Our names for the task models are BERT's; transformers has one class per family.
        let architecture = architecture.replacen(
            "Bert",
            match self.family {
                EncoderFamily::Bert => "Bert",
                EncoderFamily::Roberta => "Roberta",
                EncoderFamily::DistilBert => "DistilBert",
            },
            1,
        );
        let mut map = Map::new();
        let mut put = |k: &str, v: Value| {
            map.insert(k.to_string(), v);
        };
        put("architectures", Value::from(vec![architecture]));
        put("model_type", family.into());
        put("vocab_size", self.vocab_size.into());
        put("max_position_embeddings", self.max_position_embeddings.into());
        put("pad_token_id", self.pad_token_id.into());
        put("initializer_range", self.initializer_range.into());
        put("tie_word_embeddings", self.tie_word_embeddings.into());
        if self.family == EncoderFamily::DistilBert {
            put("dim", self.hidden_size.into());
            put("n_layers", self.num_hidden_layers.into());
            put("n_heads", self.num_attention_heads.into());
            put("hidden_dim", self.intermediate_size.into());
            put("activation", act(self.hidden_act).into());
            put("dropout", self.hidden_dropout_prob.into());
            put("attention_dropout", self.attention_probs_dropout_prob.into());
            put(
                "seq_classif_dropout",
                self.classifier_dropout.unwrap_or(0.2).into(),
            );
            put("sinusoidal_pos_embds", false.into());
        } else {
            put("hidden_size", self.hidden_size.into());
            put("num_hidden_layers", self.num_hidden_layers.into());
            put("num_attention_heads", self.num_attention_heads.into());
            put("intermediate_size", self.intermediate_size.into());
            put("hidden_act", act(self.hidden_act).into());
            put("hidden_dropout_prob", self.hidden_dropout_prob.into());
            put(
                "attention_probs_dropout_prob",
                self.attention_probs_dropout_prob.into(),
            );
            put("type_vocab_size", self.type_vocab_size.into());
            put("layer_norm_eps", self.layer_norm_eps.into());
            put(
                "classifier_dropout",
                self.classifier_dropout.map_or(Value::Null, Value::from),
            );
            put("position_embedding_type", "absolute".into());
        }
        let labels: Map<String, Value> = (0..self.num_labels)
            .map(|i| (i.to_string(), Value::from(self.label_name(i))))
            .collect();
        let label2id: Map<String, Value> = (0..self.num_labels)
            .map(|i| (self.label_name(i), Value::from(i)))
            .collect();
        put("id2label", Value::Object(labels));
        put("label2id", Value::Object(label2id));
        if let Some(p) = self.problem_type {
            let name = match p {
                ProblemType::SingleLabel => "single_label_classification",
                ProblemType::MultiLabel => "multi_label_classification",
                ProblemType::Regression => "regression",
            };
            put("problem_type", name.into());
        }
        Value::Object(map)
    }
}
