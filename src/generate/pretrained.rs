//! [`GenerationConfig::from_pretrained`]: a Hugging Face model directory's
//! `generation_config.json` (or, without one, the generation fields of its `config.json`, as
//! transformers' `GenerationConfig.from_model_config` does) as a [`GenerationConfig`].

use std::path::Path;

use serde_json::Value;

use super::config::{BeamStopping, GenerationConfig};
use crate::{Error, Result};

/// Fields that change what `generate` produces and that ember-lm does not implement: set to
/// anything but transformers' default, they are an error instead of being ignored.
const UNSUPPORTED: &[&str] = &[
    "typical_p",
    "epsilon_cutoff",
    "eta_cutoff",
    "diversity_penalty",
    "num_beam_groups",
    "penalty_alpha",
    "bad_words_ids",
    "force_words_ids",
    "forced_bos_token_id",
    "forced_eos_token_id",
    "suppress_tokens",
    "begin_suppress_tokens",
    "sequence_bias",
    "min_length",
    "min_new_tokens",
    "encoder_repetition_penalty",
    "exponential_decay_length_penalty",
    "guidance_scale",
    "watermarking_config",
    "max_time",
    "prompt_lookup_num_tokens",
];

/// transformers' defaults of the unsupported fields that are not `None` there.
fn default_of(name: &str) -> Option<Value> {
    match name {
        "typical_p" | "encoder_repetition_penalty" | "guidance_scale" => Some(1.0.into()),
        "epsilon_cutoff" | "eta_cutoff" | "diversity_penalty" | "penalty_alpha" => Some(0.0.into()),
        "num_beam_groups" => Some(1.into()),
        "min_length" => Some(0.into()),
        _ => None,
    }
}

impl GenerationConfig {
    /// The generation settings saved with a Hugging Face model: `generation_config.json` in
    /// `dir`, or the generation fields of `config.json` when there is none. Fields absent from
    /// the file keep transformers' defaults (which are [`GenerationConfig::new`]'s). The result is
    /// a starting point: override what the call needs with the `with_*` setters.
    ///
    /// Read: `max_new_tokens` (`max_length` is refused, since it counts the prompt: set
    /// `max_new_tokens` on the result), `do_sample`, `temperature`, `top_k`, `top_p`, `min_p`,
    /// `repetition_penalty`, `no_repeat_ngram_size`, `num_beams`, `length_penalty`,
    /// `early_stopping` (`true`, `false`, `"never"`), `num_return_sequences`, `eos_token_id` (one
    /// id or a list), `bos_token_id` and `stop_strings`. Bookkeeping fields (`pad_token_id`,
    /// `use_cache`, `transformers_version`, ...) are ignored. A field that changes the output and
    /// that ember-lm does not implement (`typical_p`, `num_beam_groups`, `bad_words_ids`,
    /// `min_new_tokens`, ...) set to anything but its default is an [`Error::Config`] naming it.
    pub fn from_pretrained(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let generation = dir.join("generation_config.json");
        let path = if generation.exists() {
            generation
        } else {
            dir.join("config.json")
        };
        let text = std::fs::read_to_string(&path).map_err(|e| Error::Load {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let json: Value = serde_json::from_str(&text).map_err(|e| Error::Load {
            path: path.clone(),
            message: format!("not JSON: {e}"),
        })?;
        Self::from_hf_json(&json).map_err(|e| match e {
            Error::Config { message, .. } => Error::Load { path, message },
            other => other,
        })
    }

    /// [`from_pretrained`](Self::from_pretrained) on an already parsed JSON object.
    pub fn from_hf_json(json: &Value) -> Result<Self> {
        let bad = |message: String| Error::Config {
            module: "generation_config.json",
            message,
        };
        let obj = json
            .as_object()
            .ok_or_else(|| bad("expected a JSON object".into()))?;
        for name in UNSUPPORTED {
            if let Some(v) = obj.get(*name)
                && !v.is_null()
                && Some(v) != default_of(name).as_ref()
                && !(v.as_array().is_some_and(Vec::is_empty) || v.as_object().is_some_and(|o| o.is_empty()))
            {
                return Err(bad(format!(
                    "`{name}` is {v}, which ember-lm's generation does not implement; remove it to \
                     generate without it"
                )));
            }
        }
        if let Some(v) = obj.get("max_length")
            && !v.is_null()
            && obj.get("max_new_tokens").is_none_or(Value::is_null)
            && v.as_u64() != Some(20)
        {
            return Err(bad(format!(
                "`max_length` is {v}, which counts the prompt; ember-lm limits new tokens only: \
                 set max_new_tokens instead"
            )));
        }
        let get = |name: &str| obj.get(name).filter(|v| !v.is_null());
        let as_f64 = |name: &str| -> Result<Option<f64>> {
            get(name)
                .map(|v| {
                    v.as_f64()
                        .ok_or_else(|| bad(format!("`{name}` must be a number, found {v}")))
                })
                .transpose()
        };
        let as_usize = |name: &str| -> Result<Option<usize>> {
            get(name)
                .map(|v| {
                    v.as_u64()
                        .map(|n| n as usize)
                        .ok_or_else(|| bad(format!("`{name}` must be a non-negative integer, found {v}")))
                })
                .transpose()
        };
        let as_id = |v: &Value| -> Result<u32> {
            v.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| bad(format!("token ids must be non-negative integers, found {v}")))
        };
        let mut c = GenerationConfig::new();
        if let Some(n) = as_usize("max_new_tokens")? {
            c.max_new_tokens = n;
        }
        if let Some(v) = get("do_sample") {
            c.do_sample = v
                .as_bool()
                .ok_or_else(|| bad(format!("`do_sample` must be true or false, found {v}")))?;
        }
        if let Some(t) = as_f64("temperature")? {
            c.temperature = t;
        }
        if let Some(k) = as_usize("top_k")? {
            c.top_k = k;
        }
        if let Some(p) = as_f64("top_p")? {
            c.top_p = p;
        }
        c.min_p = as_f64("min_p")?;
        if let Some(p) = as_f64("repetition_penalty")? {
            c.repetition_penalty = p;
        }
        if let Some(n) = as_usize("no_repeat_ngram_size")? {
            c.no_repeat_ngram_size = n;
        }
        if let Some(n) = as_usize("num_beams")? {
            c.num_beams = n;
        }
        if let Some(p) = as_f64("length_penalty")? {
            c.length_penalty = p;
        }
        if let Some(v) = get("early_stopping") {
            c.early_stopping = match (v.as_bool(), v.as_str()) {
                (Some(true), _) => BeamStopping::Eager,
                (Some(false), _) => BeamStopping::Heuristic,
                (_, Some("never")) => BeamStopping::Never,
                _ => {
                    return Err(bad(format!(
                        "`early_stopping` must be true, false or \"never\", found {v}"
                    )));
                }
            };
        }
        if let Some(n) = as_usize("num_return_sequences")? {
            c.num_return_sequences = n;
        }
        if let Some(v) = get("eos_token_id") {
            c.eos_token_ids = match v.as_array() {
                Some(ids) => ids.iter().map(as_id).collect::<Result<_>>()?,
                None => vec![as_id(v)?],
            };
        }
        if let Some(v) = get("bos_token_id") {
            c.bos_token_id = Some(as_id(v)?);
        }
        if let Some(v) = get("stop_strings") {
            c.stop_strings = match (v.as_array(), v.as_str()) {
                (Some(items), _) => items
                    .iter()
                    .map(|s| {
                        s.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| bad(format!("`stop_strings` must hold strings, found {s}")))
                    })
                    .collect::<Result<_>>()?,
                (_, Some(s)) => vec![s.to_owned()],
                _ => {
                    return Err(bad(format!(
                        "`stop_strings` must be a string or a list, found {v}"
                    )));
                }
            };
        }
        c.validate()?;
        Ok(c)
    }
}
