//! A run directory that rebuilds its model and tokenizer by itself: [`load_run`].
//!
//! The trainer writes the model's configuration into every checkpoint's manifest, and the
//! tokenizer given with [`Trainer::with_tokenizer`](super::Trainer::with_tokenizer) into
//! `tokenizer.json` (its kind recorded in the run's `config.json`). No program-side file is
//! needed to generate from, evaluate or fine-tune a run.

use std::path::Path;

use burn::module::Module;

use crate::data::{BpeTokenizer, CharTokenizer, SpecialTokens, Tokenizer, WordTokenizer};
use crate::models::{
    Gpt, GptConfig, RnnLm, RnnLmConfig, RnnSeq2Seq, RnnSeq2SeqConfig, SequenceClassifier,
    SequenceClassifierConfig, TransformerSeq2Seq, TransformerSeq2SeqConfig,
};
use crate::{Backend, Error, Result};

/// One of ember-lm's tokenizers, as a run directory stores it.
#[derive(Debug, Clone)]
pub enum RunTokenizer {
    /// A [`CharTokenizer`].
    Char(CharTokenizer),
    /// A [`WordTokenizer`].
    Word(WordTokenizer),
    /// A [`BpeTokenizer`] (Hugging Face `tokenizer.json`), boxed: it is much larger.
    Bpe(Box<BpeTokenizer>),
}

impl From<CharTokenizer> for RunTokenizer {
    fn from(t: CharTokenizer) -> Self {
        Self::Char(t)
    }
}

impl From<WordTokenizer> for RunTokenizer {
    fn from(t: WordTokenizer) -> Self {
        Self::Word(t)
    }
}

impl From<BpeTokenizer> for RunTokenizer {
    fn from(t: BpeTokenizer) -> Self {
        Self::Bpe(Box::new(t))
    }
}

impl RunTokenizer {
    /// The name recorded in the run's `config.json`.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Char(_) => "char",
            Self::Word(_) => "word",
            Self::Bpe(_) => "bpe",
        }
    }

    /// Writes `dir/tokenizer.json`.
    pub(crate) fn save(&self, dir: &Path) -> Result<()> {
        let path = dir.join("tokenizer.json");
        match self {
            Self::Char(t) => t.save(path),
            Self::Word(t) => t.save(path),
            Self::Bpe(t) => t.save(path),
        }
    }

    /// Reads `dir/tokenizer.json` as the kind `kind`.
    pub(crate) fn load(dir: &Path, kind: &str) -> Result<Self> {
        let path = dir.join("tokenizer.json");
        Ok(match kind {
            "char" => Self::Char(CharTokenizer::load(path)?),
            "word" => Self::Word(WordTokenizer::load(path)?),
            "bpe" => Self::Bpe(Box::new(BpeTokenizer::from_file(path)?)),
            other => {
                return Err(Error::Load {
                    path: dir.join("config.json"),
                    message: format!("unknown tokenizer kind `{other}` (expected char, word or bpe)"),
                });
            }
        })
    }

    fn inner(&self) -> &dyn Tokenizer {
        match self {
            Self::Char(t) => t,
            Self::Word(t) => t,
            Self::Bpe(t) => t.as_ref(),
        }
    }
}

impl Tokenizer for RunTokenizer {
    fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.inner().encode(text)
    }

    fn encode_literal(&self, text: &str) -> Result<Vec<u32>> {
        self.inner().encode_literal(text)
    }

    fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner().decode(ids)
    }

    fn vocab_size(&self) -> usize {
        self.inner().vocab_size()
    }

    fn special_tokens(&self) -> SpecialTokens {
        self.inner().special_tokens()
    }

    fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner().id_to_token(id)
    }
}

/// A model configuration that a run directory can rebuild its model from: the configuration
/// types of ember-lm's models ([`GptConfig`], [`RnnLmConfig`], [`SequenceClassifierConfig`],
/// [`TransformerSeq2SeqConfig`], [`RnnSeq2SeqConfig`]).
pub trait RunModelConfig: serde::de::DeserializeOwned {
    /// The model it builds.
    type Model<B: Backend>: Module<B>;

    /// A freshly initialised model (its weights are then replaced by the checkpoint's).
    fn init_model<B: Backend>(&self, device: &B::Device) -> Result<Self::Model<B>>;
}

macro_rules! run_model_config {
    ($($config:ty => $model:ident),* $(,)?) => {$(
        impl RunModelConfig for $config {
            type Model<B: Backend> = $model<B>;

            fn init_model<B: Backend>(&self, device: &B::Device) -> Result<$model<B>> {
                self.init::<B>(device)
            }
        }
    )*};
}

run_model_config!(
    GptConfig => Gpt,
    RnnLmConfig => RnnLm,
    SequenceClassifierConfig => SequenceClassifier,
    TransformerSeq2SeqConfig => TransformerSeq2Seq,
    RnnSeq2SeqConfig => RnnSeq2Seq,
);

/// What [`load_run`] rebuilds.
pub struct LoadedRun<C: RunModelConfig, B: Backend> {
    /// The model with the weights of the run's latest checkpoint.
    pub model: C::Model<B>,
    /// Its configuration, as the trainer recorded it.
    pub config: C,
    /// The tokenizer given to [`Trainer::with_tokenizer`](super::Trainer::with_tokenizer), if
    /// one was.
    pub tokenizer: Option<RunTokenizer>,
    /// The optimizer steps the checkpoint had completed.
    pub step: u64,
}

/// Rebuilds a trained model (and its tokenizer) from a run directory, or from one checkpoint
/// directory of it: the model configuration recorded in the checkpoint's manifest, read as `C`,
/// then the checkpoint's weights with [`load_model`](super::load_model)'s checks; the tokenizer
/// from the run's `tokenizer.json`. The model is on `B` (an inference backend, or an autodiff one
/// to train on).
///
/// An [`Error::Checkpoint`] when the checkpoint recorded no model configuration (a custom task
/// whose `config_json` is the default `null`) or one that is not a `C` (another model family).
pub fn load_run<C: RunModelConfig, B: Backend>(
    path: impl AsRef<Path>,
    device: &B::Device,
) -> Result<LoadedRun<C, B>> {
    let path = path.as_ref();
    let dir = super::checkpoint::resolve(path)?;
    let (manifest, contents) = super::checkpoint::read(&dir)?;
    let bad = |message: String| Error::Checkpoint {
        path: dir.clone(),
        message,
    };
    if manifest.model_config.is_null() {
        return Err(bad(
            "the checkpoint records no model configuration (its task's config_json is null)".into(),
        ));
    }
    let config: C = serde_json::from_value(manifest.model_config.clone()).map_err(|e| {
        bad(format!(
            "its model configuration is not a {}: {e}",
            std::any::type_name::<C>()
                .rsplit("::")
                .next()
                .unwrap_or("configuration")
        ))
    })?;
    let model = config.init_model::<B>(device)?;
    let model = super::checkpoint::restore_model(&dir, &manifest, &contents.model, model, device)?;
    // The run directory holds the tokenizer: the checkpoint's grandparent when given a checkpoint.
    let run_dir = if dir.as_path() == path {
        dir.parent().and_then(Path::parent).unwrap_or(path)
    } else {
        path
    };
    Ok(LoadedRun {
        model,
        config,
        tokenizer: read_tokenizer(run_dir)?,
        step: manifest.position.step,
    })
}

/// The tokenizer recorded in `run_dir/config.json` (`"tokenizer": kind`), if any.
fn read_tokenizer(run_dir: &Path) -> Result<Option<RunTokenizer>> {
    let path = run_dir.join("config.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Load {
        path: path.clone(),
        message: e.to_string(),
    })?;
    match json.get("tokenizer").and_then(|k| k.as_str()) {
        Some(kind) => RunTokenizer::load(run_dir, kind).map(Some),
        None => Ok(None),
    }
}

/// A tokenizer's identity for comparing runs: its kind, vocabulary size and a CRC-32C of every
/// token's text.
pub(crate) fn fingerprint(tokenizer: &RunTokenizer) -> serde_json::Value {
    use crate::data::Tokenizer;
    let (kind, t): (&str, &dyn Tokenizer) = match tokenizer {
        RunTokenizer::Char(t) => ("char", t),
        RunTokenizer::Word(t) => ("word", t),
        RunTokenizer::Bpe(t) => ("bpe", t.as_ref()),
    };
    let mut text = Vec::new();
    for id in 0..t.vocab_size() as u32 {
        text.extend_from_slice(t.decode_lossy(&[id]).as_bytes());
        text.push(0);
    }
    serde_json::json!({ "kind": kind, "vocab_size": t.vocab_size(), "crc32c": crate::io::crc32c(&text) })
}
