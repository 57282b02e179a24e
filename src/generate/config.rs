//! [`GenerationConfig`]: Hugging Face's generation options and defaults.

use burn::config::Config;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// When beam search stops (Hugging Face's `early_stopping`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BeamStopping {
    /// `True`: stop as soon as `num_beams` finished hypotheses exist.
    Eager,
    /// `False` (the default): stop when no running beam can beat the worst finished hypothesis,
    /// estimated with the current length.
    Heuristic,
    /// `"never"`: stop only when no running beam can beat it at the longest possible length.
    Never,
}

/// What generation does when a sequence reaches the model's context length (`block_size`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContextOverflow {
    /// Go on with the last `block_size` tokens as the context, as nanoGPT's `generate` crops
    /// `idx[:, -block_size:]`: every step past the limit re-reads that window (no cache), and a
    /// prompt longer than the context is cropped the same way. The default.
    SlidingWindow,
    /// Stop, with [`FinishReason::Context`](super::FinishReason::Context); a prompt longer than
    /// the context is an error.
    Stop,
}

/// How a sequence may be generated, in the spirit of `transformers.GenerationConfig` and with its
/// defaults (`max_new_tokens` aside, which Hugging Face leaves unset).
#[derive(Config, Debug)]
pub struct GenerationConfig {
    /// Tokens to generate at most. Default 20.
    #[config(default = 20)]
    pub max_new_tokens: usize,
    /// Sample instead of taking the most likely token. Default false (greedy, or beam search).
    #[config(default = false)]
    pub do_sample: bool,
    /// Divides the logits before sampling (> 0). Default 1.
    #[config(default = 1.0)]
    pub temperature: f64,
    /// Keep the `top_k` most likely tokens when sampling (0: all). Default 50 (Hugging Face's).
    #[config(default = 50)]
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probability reaches `top_p` (in (0, 1]). Default 1.
    #[config(default = 1.0)]
    pub top_p: f64,
    /// Drop tokens less likely than `min_p` times the most likely one. Default none.
    #[config(default = "None")]
    pub min_p: Option<f64>,
    /// Penalise tokens already in the sequence (CTRL's rule: positive logits divided, negative
    /// multiplied). Default 1 (none).
    #[config(default = 1.0)]
    pub repetition_penalty: f64,
    /// Forbid repeating any n-gram of this size (0: off). Default 0.
    #[config(default = 0)]
    pub no_repeat_ngram_size: usize,
    /// Beams (1: no beam search). Default 1.
    #[config(default = 1)]
    pub num_beams: usize,
    /// Beam scores are divided by `length^length_penalty`. Default 1.
    #[config(default = 1.0)]
    pub length_penalty: f64,
    /// When beam search stops. Default [`BeamStopping::Heuristic`] (`early_stopping=False`).
    #[config(default = "BeamStopping::Heuristic")]
    pub early_stopping: BeamStopping,
    /// Sequences returned per prompt (≤ `num_beams` with beam search). Default 1.
    #[config(default = 1)]
    pub num_return_sequences: usize,
    /// Tokens that end a sequence (several allowed). Default none.
    #[config(default = "Vec::new()")]
    pub eos_token_ids: Vec<u32>,
    /// Strings that end a sequence once the decoded text contains them (needs a tokenizer).
    /// Default none.
    #[config(default = "Vec::new()")]
    pub stop_strings: Vec<String>,
    /// Used as the prompt when a prompt is empty. Default none (an empty prompt is an error).
    #[config(default = "None")]
    pub bos_token_id: Option<u32>,
    /// Seed of the sampler, which owns its generator: the same seed gives the same text. Default 0.
    #[config(default = 0)]
    pub seed: u64,
    /// What happens at the model's context length (a `Gpt`'s `block_size`; recurrent models have
    /// none). Default [`ContextOverflow::SlidingWindow`]: generation goes on to `max_new_tokens`.
    #[config(default = "ContextOverflow::SlidingWindow")]
    pub context_overflow: ContextOverflow,
}

impl GenerationConfig {
    /// Greedy decoding of `max_new_tokens`.
    pub fn greedy(max_new_tokens: usize) -> Self {
        Self::new().with_max_new_tokens(max_new_tokens)
    }

    /// Checks the options (`top_p` in (0, 1], `temperature` > 0 when sampling, `num_beams` ≥ 1,
    /// ...).
    pub fn validate(&self) -> Result<()> {
        let bad = |message: String| {
            Err(Error::Config {
                module: "GenerationConfig",
                message,
            })
        };
        if self.num_beams == 0 {
            return bad("num_beams must be >= 1, found 0".into());
        }
        if self.num_return_sequences == 0 {
            return bad("num_return_sequences must be >= 1, found 0".into());
        }
        if self.num_beams > 1 && self.num_return_sequences > self.num_beams {
            return bad(format!(
                "num_return_sequences ({}) cannot exceed num_beams ({})",
                self.num_return_sequences, self.num_beams
            ));
        }
        if self.num_beams == 1 && !self.do_sample && self.num_return_sequences > 1 {
            // transformers raises too: greedy decoding would return identical copies.
            return bad(format!(
                "greedy decoding returns one sequence per prompt, found num_return_sequences = {}; \
                 set do_sample = true or num_beams >= num_return_sequences",
                self.num_return_sequences
            ));
        }
        if !self.length_penalty.is_finite() {
            return bad(format!(
                "length_penalty must be finite, found {}",
                self.length_penalty
            ));
        }
        if self.num_beams > 1 && self.do_sample {
            return bad(
                "beam search with sampling is not supported; set do_sample = false or num_beams = 1".into(),
            );
        }
        if self.do_sample && !(self.temperature > 0.0 && self.temperature.is_finite()) {
            return bad(format!(
                "temperature must be > 0 when sampling, found {}",
                self.temperature
            ));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad(format!("top_p must be in (0, 1], found {}", self.top_p));
        }
        if let Some(m) = self.min_p
            && !(0.0..=1.0).contains(&m)
        {
            return bad(format!("min_p must be in [0, 1], found {m}"));
        }
        if !(self.repetition_penalty > 0.0 && self.repetition_penalty.is_finite()) {
            return bad(format!(
                "repetition_penalty must be > 0, found {}",
                self.repetition_penalty
            ));
        }
        Ok(())
    }
}
