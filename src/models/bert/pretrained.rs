//! Hugging Face directories in and out: `from_pretrained` for the encoder and each head (a
//! checkpoint with or without the family prefix; a new head initialised and reported, as
//! transformers does), and `save_pretrained`.

use std::path::Path;

use super::classify::{BertForSequenceClassification, BertForTokenClassification};
use super::config::BertConfig;
use super::mlm::BertForMaskedLM;
use super::model::BertModel;
use crate::io::{
    LoadInfo, StateDict, TorchWeights, atomic_write, load_lenient, state_dict_of, write_safetensors,
};
use crate::{Backend, Error, Result};

/// The first-level attributes of a bare encoder's keys.
const BODY: [&str; 4] = ["embeddings.", "encoder.", "pooler.", "transformer."];

/// Reads `config.json` and the weights file of a `save_pretrained` directory.
fn read_dir(dir: &Path) -> Result<(BertConfig, StateDict)> {
    let config = BertConfig::from_hf_config(dir.join("config.json"))?;
    Ok((config, StateDict::from_pretrained_dir(dir)?))
}

/// The checkpoint's keys as a model with the encoder under `body` (`"bert."`, or `""` for the
/// bare encoder) names them: the family prefix added or removed, and the `gamma`/`beta` of
/// old TensorFlow-era checkpoints read as `weight`/`bias`, as transformers does.
fn rename(dict: StateDict, prefix: &str, body: &str) -> Result<StateDict> {
    let prefixed = dict.keys().any(|k| k.starts_with(prefix));
    dict.rename_keys(|key| {
        let key = match (prefixed, body.is_empty()) {
            // A task checkpoint into the bare encoder: its body loses the prefix.
            (true, true) => key.strip_prefix(prefix).unwrap_or(key).to_string(),
            // A bare checkpoint into a task model: its body gains the prefix.
            (false, false) if BODY.iter().any(|b| key.starts_with(b)) => format!("{prefix}{key}"),
            _ => key.to_string(),
        };
        match key.rsplit_once('.') {
            Some((head, "gamma")) => format!("{head}.weight"),
            Some((head, "beta")) => format!("{head}.bias"),
            _ => key,
        }
    })
}

/// Loads `dir` into the model `build` makes (a task model when `task`, its encoder under the
/// family prefix): the encoder's keys must all be there; the head's keys and the pooler's may be
/// missing and keep their fresh initialisation; keys the model does not have are left unused.
/// Both lists are returned and logged, as transformers warns.
fn load<M: TorchWeights>(
    dir: &Path,
    task: bool,
    config: Option<BertConfig>,
    build: impl FnOnce(&BertConfig) -> Result<M>,
) -> Result<(M, LoadInfo)> {
    let (read, dict) = read_dir(dir)?;
    let config = config.unwrap_or(read);
    let prefix = format!("{}.", config.family.prefix());
    let body = if task { prefix.as_str() } else { "" };
    let dict = rename(dict, &prefix, body)?;
    let mut model = build(&config)?;
    let pooler = format!("{body}pooler.");
    // A task model's head is everything outside its encoder.
    let may_be_new = |key: &str| key.starts_with(&pooler) || (task && !key.starts_with(body));
    let info = load_lenient(&mut model, &dict, "", &may_be_new)?;
    if !info.newly_initialized.is_empty() {
        tracing::warn!(
            "{}: these weights are not in the checkpoint and are newly initialised: {:?}; train the \
             model before using it for predictions",
            dir.display(),
            info.newly_initialized
        );
    }
    if !info.unused.is_empty() {
        tracing::info!(
            "{}: weights of the checkpoint not used by this model: {:?}",
            dir.display(),
            info.unused
        );
    }
    Ok((model, info))
}

macro_rules! pretrained {
    ($model:ident, $task:expr, $build:expr, $what:literal) => {
        impl<B: Backend> $model<B> {
            #[doc = concat!("Loads ", $what, " from a Hugging Face directory (`config.json` and")]
            /// `model.safetensors` or `pytorch_model.bin`), its keys with or without the family
            /// prefix. Returns the model and what the loading found: weights newly initialised (a
            /// head the checkpoint lacks) and checkpoint weights left unused. A missing encoder
            /// weight or a shape mismatch is an [`Error::StateDict`](crate::Error::StateDict) naming it.
            pub fn from_pretrained_with_info(
                dir: impl AsRef<Path>,
                device: &B::Device,
            ) -> Result<(Self, LoadInfo)> {
                load(dir.as_ref(), $task, None, |c| $build(c, device))
            }

            /// [`from_pretrained_with_info`](Self::from_pretrained_with_info) into a model built
            /// from `config` instead of the directory's `config.json` (transformers'
            /// `from_pretrained(dir, num_labels=...)`): read the directory's configuration with
            /// [`BertConfig::from_hf_config`], change what the task needs (`num_labels`,
            /// `id2label`, `problem_type`, dropouts), and pass it here.
            pub fn from_pretrained_config(
                dir: impl AsRef<Path>,
                config: BertConfig,
                device: &B::Device,
            ) -> Result<(Self, LoadInfo)> {
                load(dir.as_ref(), $task, Some(config), |c| $build(c, device))
            }

            /// [`from_pretrained_with_info`](Self::from_pretrained_with_info) without the report
            /// (it is logged through `tracing`).
            pub fn from_pretrained(dir: impl AsRef<Path>, device: &B::Device) -> Result<Self> {
                Ok(Self::from_pretrained_with_info(dir, device)?.0)
            }

            /// Writes a directory that transformers' `from_pretrained` (and ours) loads:
            /// `config.json` and `model.safetensors`.
            pub fn save_pretrained(&self, dir: impl AsRef<Path>) -> Result<()>
            where
                Self: Clone,
            {
                save(
                    dir.as_ref(),
                    self.clone(),
                    config_of(self),
                    stringify!($model),
                )
            }
        }
    };
}

trait HasConfig {
    fn bert_config(&self) -> &BertConfig;
}

fn config_of<M: HasConfig>(m: &M) -> &BertConfig {
    m.bert_config()
}

impl<B: Backend> HasConfig for BertModel<B> {
    fn bert_config(&self) -> &BertConfig {
        self.config()
    }
}

macro_rules! has_config {
    ($($model:ident),*) => {$(
        impl<B: Backend> HasConfig for $model<B> {
            fn bert_config(&self) -> &BertConfig {
                self.bert.config()
            }
        }
    )*};
}
has_config!(
    BertForMaskedLM,
    BertForSequenceClassification,
    BertForTokenClassification
);

fn save<M: TorchWeights>(dir: &Path, mut model: M, config: &BertConfig, architecture: &str) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::Save {
        path: dir.to_path_buf(),
        message: e.to_string(),
    })?;
    let json = config.to_hf_json(architecture);
    let text = serde_json::to_string_pretty(&json).map_err(|e| Error::Save {
        path: dir.join("config.json"),
        message: e.to_string(),
    })?;
    atomic_write(&dir.join("config.json"), text.as_bytes())?;
    write_safetensors(&dir.join("model.safetensors"), &state_dict_of(&mut model, "")?)
}

pretrained!(
    BertModel,
    false,
    |c: &BertConfig, d| c.init(true, d),
    "the bare encoder"
);
pretrained!(
    BertForMaskedLM,
    true,
    |c: &BertConfig, d| c.init_masked_lm(d),
    "a masked-LM model"
);
pretrained!(
    BertForSequenceClassification,
    true,
    |c: &BertConfig, d| c.init_sequence_classification(d),
    "a sequence classifier"
);
pretrained!(
    BertForTokenClassification,
    true,
    |c: &BertConfig, d| c.init_token_classification(d),
    "a token classifier"
);
