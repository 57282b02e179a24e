//! [`Generator`]: greedy decoding, sampling and beam search over any [`LanguageModel`].

use std::marker::PhantomData;

use burn::tensor::Tensor;

use super::config::{BeamStopping, ContextOverflow, GenerationConfig};
use super::processors::{
    argmax, check_logits, log_softmax, min_p, no_repeat_ngram, repetition_penalty, sample, temperature,
    top_k, top_p,
};
use crate::data::{DecodeStream, SplitMix64, Tokenizer};
use crate::models::LanguageModel;
use crate::{Backend, Error, Result};

/// Why a sequence ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// An end-of-sequence token was generated (it ends `tokens`).
    Eos,
    /// The decoded text reached one of the stop strings.
    StopString,
    /// `max_new_tokens` were generated.
    MaxNewTokens,
    /// The model's context (`block_size`) is full and
    /// [`GenerationConfig::context_overflow`] is [`ContextOverflow::Stop`].
    Context,
}

/// One generated sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// The new tokens (the prompt excluded; the EOS token included when it ended the sequence).
    pub tokens: Vec<u32>,
    /// Beam search: the hypothesis score, transformers' `sequences_scores`: the sum of its
    /// tokens' log-probabilities / length^length_penalty, the length counting every new token,
    /// the EOS token included.
    /// Greedy and sampling: the sum of the chosen tokens' log-probabilities under the processed
    /// distribution.
    pub score: f64,
    /// Why it ended.
    pub finish: FinishReason,
}

/// Generates from a [`LanguageModel`] with a [`GenerationConfig`].
///
/// Greedy decoding and sampling run every prompt and every returned sequence as one batch, the
/// prompts padded to one length as the model does it ([`LanguageModel::prefill`]); each row
/// gets the tokens it would get alone, and a finished row leaves the batch. Beam search runs one
/// prompt at a time (its beams as one batch). The logits of the next token are read back to the
/// host, where the processors, the sampler (which owns its random generator, seeded from
/// `config.seed`, the prompt index and the sequence index) and the beam bookkeeping run.
pub struct Generator<'a, B: Backend, M: LanguageModel<B>> {
    pub(super) model: &'a M,
    pub(super) config: GenerationConfig,
    tokenizer: Option<&'a dyn Tokenizer>,
    pub(super) device: B::Device,
    _b: PhantomData<B>,
}

pub(super) fn host_rows<B: Backend>(logits: Tensor<B, 3>) -> Result<Vec<Vec<f32>>> {
    // [batch, new, vocab] -> the last position of each row.
    let [b, t, v] = logits.dims();
    let last = logits.slice([0..b, t - 1..t, 0..v]).reshape([b, v]);
    let data = last.into_data().convert::<f32>();
    let flat: Vec<f32> = data
        .to_vec()
        .map_err(|e| Error::Data(format!("cannot read logits back: {e:?}")))?;
    // A model with NaN weights gives NaN logits: say so instead of choosing token 0.
    let rows: Vec<Vec<f32>> = flat.chunks(v).map(<[f32]>::to_vec).collect();
    for row in &rows {
        check_logits(row)?;
    }
    Ok(rows)
}

impl<'a, B: Backend, M: LanguageModel<B>> Generator<'a, B, M> {
    /// A generator; the configuration is validated here.
    pub fn new(model: &'a M, config: GenerationConfig, device: &B::Device) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            model,
            config,
            tokenizer: None,
            device: device.clone(),
            _b: PhantomData,
        })
    }

    /// Adds a tokenizer, which stop strings and text streaming need.
    pub fn with_tokenizer(mut self, tokenizer: &'a dyn Tokenizer) -> Self {
        self.tokenizer = Some(tokenizer);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &GenerationConfig {
        &self.config
    }

    /// `num_return_sequences` generations for each prompt (prompts of any lengths).
    pub fn generate(&self, prompts: &[Vec<u32>]) -> Result<Vec<Vec<Generation>>> {
        self.check_stop_strings()?;
        let prepared = prompts
            .iter()
            .map(|p| self.prepare(p))
            .collect::<Result<Vec<_>>>()?;
        if self.config.num_beams == 1
            && prepared.len() * self.config.num_return_sequences > 1
            && let Some(batched) = self.batched(&prepared)?
        {
            return Ok(batched);
        }
        prepared
            .into_iter()
            .enumerate()
            .map(|(i, prompt)| {
                if self.config.num_beams > 1 {
                    self.beam_search(&prompt)
                } else {
                    (0..self.config.num_return_sequences)
                        .map(|j| self.one(&prompt, i as u64, j as u64, &mut |_| {}))
                        .collect()
                }
            })
            .collect()
    }

    /// Generates one sequence (greedy or sampling) and hands each finished piece of text to
    /// `on_text` as soon as it is decoded (never a partial UTF-8 character). Needs a tokenizer.
    pub fn generate_streaming(&self, prompt: &[u32], mut on_text: impl FnMut(&str)) -> Result<Generation> {
        let tokenizer = self.tokenizer.ok_or_else(|| Error::Config {
            module: "Generator",
            message: "streaming text needs a tokenizer (Generator::with_tokenizer)".into(),
        })?;
        if self.config.num_beams > 1 {
            return Err(Error::Config {
                module: "Generator",
                message: "streaming is for greedy decoding and sampling, not beam search".into(),
            });
        }
        let prompt = self.prepare(prompt)?;
        let mut stream = DecodeStream::new(tokenizer);
        let mut error = None;
        let generation = self.one(&prompt, 0, 0, &mut |id| match stream.push(id) {
            Ok(Some(piece)) => on_text(&piece),
            Ok(None) => {}
            Err(e) => error = Some(e),
        })?;
        if let Some(e) = error {
            return Err(e);
        }
        let rest = stream.finish()?;
        if !rest.is_empty() {
            on_text(&rest);
        }
        Ok(generation)
    }

    /// Stop strings are matched on decoded text: without a tokenizer they could not stop anything
    /// (transformers raises as well).
    fn check_stop_strings(&self) -> Result<()> {
        if !self.config.stop_strings.is_empty() && self.tokenizer.is_none() {
            return Err(Error::Config {
                module: "Generator",
                message: format!(
                    "stop_strings {:?} need a tokenizer to match decoded text (Generator::with_tokenizer)",
                    self.config.stop_strings
                ),
            });
        }
        Ok(())
    }

    /// Checks a prompt against the vocabulary and the context; an empty prompt becomes `[bos]`.
    pub(super) fn prepare(&self, prompt: &[u32]) -> Result<Vec<u32>> {
        let prompt = if prompt.is_empty() {
            match self.config.bos_token_id {
                Some(bos) => vec![bos],
                None => {
                    return Err(Error::Config {
                        module: "Generator",
                        message: "the prompt is empty and no bos_token_id is configured".into(),
                    });
                }
            }
        } else {
            prompt.to_vec()
        };
        crate::data::check_token_ids(&prompt, self.model.vocab_size())?;
        // A sliding window crops a long prompt instead (`window`).
        if let Some(max) = self.model.max_len()
            && prompt.len() > max
            && self.config.context_overflow == ContextOverflow::Stop
        {
            return Err(Error::TooLong {
                found: prompt.len(),
                offset: 0,
                max,
            });
        }
        Ok(prompt)
    }

    pub(super) fn stop_string_hit(&self, generated: &[u32]) -> bool {
        match (self.tokenizer, self.config.stop_strings.is_empty()) {
            (Some(tok), false) => {
                let text = tok.decode_lossy(generated);
                self.config.stop_strings.iter().any(|s| text.contains(s.as_str()))
            }
            _ => false,
        }
    }

    /// The tokens a step reads: with a sliding window, the last `max_len` of `tokens`; else all.
    pub(super) fn window<'t>(&self, tokens: &'t [u32]) -> &'t [u32] {
        match self.model.max_len() {
            Some(m) if self.config.context_overflow == ContextOverflow::SlidingWindow && tokens.len() > m => {
                &tokens[tokens.len() - m..]
            }
            _ => tokens,
        }
    }

    /// The next token of a sequence whose history is `all`, from its logits `row` (processed in
    /// place), and its log-probability under the processed distribution.
    pub(super) fn choose(&self, row: &mut [f32], all: &[u32], rng: &mut SplitMix64) -> Result<(u32, f64)> {
        let c = &self.config;
        repetition_penalty(row, all, c.repetition_penalty);
        no_repeat_ngram(row, all, c.no_repeat_ngram_size);
        let token = if c.do_sample {
            temperature(row, c.temperature);
            top_k(row, c.top_k);
            top_p(row, c.top_p);
            if let Some(m) = c.min_p {
                min_p(row, m);
            }
            sample(row, rng.next_f64())?
        } else {
            argmax(row)?
        };
        Ok((token, log_softmax(row)[token as usize]))
    }

    /// Why a sequence that has generated `tokens` (the last one `token`) ends, if it does:
    /// an EOS token, a stop string, or `max_new_tokens`.
    pub(super) fn finished(&self, tokens: &[u32], token: u32) -> Option<FinishReason> {
        if self.config.eos_token_ids.contains(&token) {
            Some(FinishReason::Eos)
        } else if self.stop_string_hit(tokens) {
            Some(FinishReason::StopString)
        } else if tokens.len() == self.config.max_new_tokens {
            Some(FinishReason::MaxNewTokens)
        } else {
            None
        }
    }

    /// Greedy or sampled decoding of one sequence.
    fn one(
        &self,
        prompt: &[u32],
        prompt_index: u64,
        seq_index: u64,
        on_token: &mut dyn FnMut(u32),
    ) -> Result<Generation> {
        let c = &self.config;
        let mut rng = SplitMix64::derive(c.seed, &[prompt_index, seq_index]);
        let max_len = self.model.max_len();
        let slide = c.context_overflow == ContextOverflow::SlidingWindow;
        let mut state = self.model.init_state(1, &self.device);
        let mut row = host_rows(
            self.model
                .step_ids(self.window(prompt), 1, &mut state, &self.device)?,
        )?
        .remove(0);
        let mut all = prompt.to_vec();
        let mut tokens = Vec::new();
        let mut score = 0.0;
        let finish = loop {
            if tokens.len() == c.max_new_tokens {
                break FinishReason::MaxNewTokens;
            }
            let (token, logprob) = self.choose(&mut row, &all, &mut rng)?;
            score += logprob;
            tokens.push(token);
            all.push(token);
            on_token(token);
            if let Some(reason) = self.finished(&tokens, token) {
                break reason;
            }
            // The cache holds all but the new token: it fits while all.len() <= max_len.
            let full = max_len.is_some_and(|m| all.len() > m);
            if full && !slide {
                break FinishReason::Context;
            }
            row = if full {
                // nanoGPT's `idx[:, -block_size:]`: the last block_size tokens, read afresh.
                state = self.model.init_state(1, &self.device);
                host_rows(
                    self.model
                        .step_ids(self.window(&all), 1, &mut state, &self.device)?,
                )?
                .remove(0)
            } else {
                host_rows(self.model.step_ids(&[token], 1, &mut state, &self.device)?)?.remove(0)
            };
        };
        Ok(Generation {
            tokens,
            score,
            finish,
        })
    }

    /// Hugging Face's beam search (`num_beams`, `length_penalty`, `early_stopping`), for one prompt,
    /// step for step as transformers 5's `_beam_search` runs it for a batch of one.
    fn beam_search(&self, prompt: &[u32]) -> Result<Vec<Generation>> {
        let c = &self.config;
        let k = c.num_beams;
        let slide = c.context_overflow == ContextOverflow::SlidingWindow;
        let mut state = self.model.init_state(1, &self.device);
        let first = host_rows(
            self.model
                .step_ids(self.window(prompt), 1, &mut state, &self.device)?,
        )?
        .remove(0);
        self.model.reorder_state(&mut state, &vec![0; k])?;
        let mut rows = vec![first; k];
        let mut beams: Vec<Vec<u32>> = vec![Vec::new(); k];
        // Only the first beam is live at the start, as transformers' `running_beam_scores`.
        let mut beam_scores: Vec<f64> = (0..k).map(|b| if b == 0 { 0.0 } else { -1e9 }).collect();
        let mut finished = Finished::new(k);
        // Enough candidates that `k` of them do not end in EOS.
        let keep = 2.max(1 + c.eos_token_ids.len()) * k;
        let max_new = match self.model.max_len() {
            // Each new token is predicted from at most m tokens: the last one from m.
            Some(m) if !slide => c.max_new_tokens.min((m + 1).saturating_sub(prompt.len())),
            _ => c.max_new_tokens,
        };
        // transformers' `is_early_stop_heuristic_unsatisfied`: once false, it stays false.
        let mut improvable = true;
        let mut generated = 0;
        while generated < max_new {
            // Scores of every (beam, token), processed on log-probabilities as Hugging Face does.
            let mut candidates: Vec<(f64, usize, u32)> = Vec::with_capacity(k * rows[0].len());
            for (b, row) in rows.iter().enumerate() {
                let mut lp: Vec<f32> = log_softmax(row).into_iter().map(|v| v as f32).collect();
                let history: Vec<u32> = prompt.iter().chain(&beams[b]).copied().collect();
                repetition_penalty(&mut lp, &history, c.repetition_penalty);
                no_repeat_ngram(&mut lp, &history, c.no_repeat_ngram_size);
                candidates.extend(
                    lp.iter()
                        .enumerate()
                        .map(|(v, &s)| (beam_scores[b] + s as f64, b, v as u32)),
                );
            }
            candidates.sort_by(|a, b| b.0.total_cmp(&a.0));
            candidates.truncate(keep);
            // A candidate stops on an EOS token, or on the last step allowed (every candidate then).
            let last = generated + 1 == max_new;
            let stops = |token: u32| last || c.eos_token_ids.contains(&token);
            // Only the best `k` candidates may become finished hypotheses; the length they are
            // divided by counts every new token, the EOS included (`cur_len + 1 - prompt_len`).
            for &(score, b, token) in candidates.iter().take(k) {
                if stops(token) {
                    let mut seq = beams[b].clone();
                    seq.push(token);
                    let eos = c.eos_token_ids.contains(&token);
                    finished.add(score / ((generated + 1) as f64).powf(c.length_penalty), seq, eos);
                }
            }
            generated += 1;
            if last {
                break;
            }
            // The best `k` candidates that did not stop go on (those that did are pushed to the
            // back with -1e9, as transformers does, should fewer than `k` remain).
            let mut next: Vec<(f64, usize, u32)> = candidates
                .iter()
                .copied()
                .filter(|&(_, _, t)| !stops(t))
                .take(k)
                .collect();
            next.extend(
                candidates
                    .iter()
                    .filter(|&&(_, _, t)| stops(t))
                    .map(|&(s, b, t)| (s - 1e9, b, t))
                    .take(k - next.len()),
            );
            let best_running = next[0].0;
            let hypothetical_len = match c.early_stopping {
                BeamStopping::Never if c.length_penalty > 0.0 => max_new,
                _ => generated,
            };
            improvable &= !finished.is_full()
                || best_running / (hypothetical_len as f64).powf(c.length_penalty) > finished.worst();
            let all_finished = finished.is_full() && c.early_stopping == BeamStopping::Eager;
            if !improvable || all_finished {
                break;
            }
            let sources: Vec<usize> = next.iter().map(|n| n.1).collect();
            beams = next
                .iter()
                .map(|&(_, b, t)| {
                    let mut s = beams[b].clone();
                    s.push(t);
                    s
                })
                .collect();
            beam_scores = next.iter().map(|n| n.0).collect();
            let length = prompt.len() + generated;
            if self.model.max_len().is_some_and(|m| length > m) {
                // Past the context (sliding window only): every beam's last max_len tokens,
                // read afresh as one batch (all beams have the same length).
                let windows: Vec<u32> = beams
                    .iter()
                    .flat_map(|b| {
                        let all: Vec<u32> = prompt.iter().chain(b).copied().collect();
                        self.window(&all).to_vec()
                    })
                    .collect();
                state = self.model.init_state(k, &self.device);
                rows = host_rows(self.model.step_ids(&windows, k, &mut state, &self.device)?)?;
            } else {
                self.model.reorder_state(&mut state, &sources)?;
                let tokens: Vec<u32> = next.iter().map(|n| n.2).collect();
                rows = host_rows(self.model.step_ids(&tokens, k, &mut state, &self.device)?)?;
            }
        }
        if max_new == 0 {
            // Nothing may be generated (max_new_tokens = 0, or the prompt fills the context).
            finished.add(0.0, Vec::new(), false);
        }
        let reason = if max_new < c.max_new_tokens {
            FinishReason::Context
        } else {
            FinishReason::MaxNewTokens
        };
        Ok(finished
            .beams
            .into_iter()
            .take(c.num_return_sequences)
            .map(|(score, tokens, eos)| Generation {
                tokens,
                score,
                finish: if eos { FinishReason::Eos } else { reason },
            })
            .collect())
    }
}

/// The finished hypotheses: the best `num_beams` by score, best first (transformers'
/// `sequences` / `beam_scores` / `is_sent_finished` for one prompt, its empty slots left out).
struct Finished {
    num_beams: usize,
    /// `(score, tokens, ended_with_eos)`, best first.
    beams: Vec<(f64, Vec<u32>, bool)>,
}

impl Finished {
    fn new(num_beams: usize) -> Self {
        Self {
            num_beams,
            beams: Vec::with_capacity(num_beams + 1),
        }
    }

    /// Adds a hypothesis already divided by its length penalty; the worst is dropped past
    /// `num_beams` (an earlier one wins a tie, as the earlier slots come first in transformers' top-k).
    fn add(&mut self, score: f64, tokens: Vec<u32>, eos: bool) {
        let at = self.beams.partition_point(|b| b.0 >= score);
        self.beams.insert(at, (score, tokens, eos));
        self.beams.truncate(self.num_beams);
    }

    fn is_full(&self) -> bool {
        self.beams.len() == self.num_beams
    }

    fn worst(&self) -> f64 {
        self.beams.last().map_or(-1e9, |b| b.0)
    }
}
