//! Greedy decoding and sampling of many prompts as one batch: [`Generator::generate`]'s path
//! when `num_beams == 1`.

use super::config::ContextOverflow;
use super::search::{FinishReason, Generation, Generator, host_rows};
use crate::data::SplitMix64;
use crate::models::LanguageModel;
use crate::{Backend, Result};

/// One sequence of the batch: its history, what it generated, and its own random generator.
struct Row {
    all: Vec<u32>,
    tokens: Vec<u32>,
    score: f64,
    rng: SplitMix64,
    finish: Option<FinishReason>,
}

impl<B: Backend, M: LanguageModel<B>> Generator<'_, B, M> {
    /// `num_return_sequences` generations of every prompt (checked by `prepare`), all rows in
    /// one batch; `Ok(None)` when the model cannot batch these prompts
    /// ([`LanguageModel::prefill`]), so that the caller runs them one at a time.
    ///
    /// Each row takes the same decisions as [`Generator::generate`] run on its prompt alone:
    /// the same processors, its own random generator (seeded from the prompt and sequence
    /// index), and the same sliding window past the context. A row that finishes leaves the
    /// batch (its state rows are dropped), so the rest step on without it.
    pub(super) fn batched(&self, prompts: &[Vec<u32>]) -> Result<Option<Vec<Vec<Generation>>>> {
        let c = &self.config;
        let per_prompt = c.num_return_sequences;
        let mut rows: Vec<Row> = prompts
            .iter()
            .enumerate()
            .flat_map(|(i, prompt)| {
                (0..per_prompt).map(move |j| Row {
                    all: prompt.clone(),
                    tokens: Vec::new(),
                    score: 0.0,
                    rng: SplitMix64::derive(c.seed, &[i as u64, j as u64]),
                    finish: None,
                })
            })
            .collect();
        let max_len = self.model.max_len();
        let slide = c.context_overflow == ContextOverflow::SlidingWindow;
        // The rows still generating, in the order of the state's batch rows.
        let mut live: Vec<usize> = (0..rows.len()).collect();
        let Some((mut logits, mut state, mut cached)) = self.prefill_rows(&rows, &live)? else {
            return Ok(None);
        };
        loop {
            // `kept`: the positions in `live` (and the state) of the rows that go on.
            let mut kept = Vec::with_capacity(live.len());
            for (k, &r) in live.iter().enumerate() {
                let row = &mut rows[r];
                if row.tokens.len() == c.max_new_tokens {
                    row.finish = Some(FinishReason::MaxNewTokens);
                    continue;
                }
                let (token, logprob) = self.choose(&mut logits[k], &row.all, &mut row.rng)?;
                row.score += logprob;
                row.tokens.push(token);
                row.all.push(token);
                row.finish = self.finished(&row.tokens, token);
                // The row's own context: as `Generator::one`, a hard stop once it is full.
                if row.finish.is_none() && !slide && max_len.is_some_and(|m| row.all.len() > m) {
                    row.finish = Some(FinishReason::Context);
                }
                if row.finish.is_none() {
                    kept.push(k);
                }
            }
            if kept.is_empty() {
                break;
            }
            let next: Vec<usize> = kept.iter().map(|&k| live[k]).collect();
            if max_len.is_some_and(|m| cached + 1 > m) {
                // The batch's cache is full (its longest row, or padding): every row's last
                // `max_len` tokens (or all of them) are read afresh, as one padded batch.
                match self.prefill_rows(&rows, &next)? {
                    Some((l, s, n)) => (logits, state, cached) = (l, s, n),
                    None => return Ok(None),
                }
            } else {
                if kept.len() != live.len() {
                    self.model.reorder_state(&mut state, &kept)?;
                }
                let ids: Vec<u32> = next.iter().map(|&r| rows[r].all[rows[r].all.len() - 1]).collect();
                let step = self.model.step_ids(&ids, next.len(), &mut state, &self.device)?;
                logits = host_rows(step)?;
                cached += 1;
            }
            live = next;
        }
        let mut rows = rows.into_iter();
        Ok(Some(
            prompts
                .iter()
                .map(|_| {
                    rows.by_ref()
                        .take(per_prompt)
                        .map(|row| Generation {
                            tokens: row.tokens,
                            score: row.score,
                            finish: row.finish.unwrap_or(FinishReason::MaxNewTokens),
                        })
                        .collect()
                })
                .collect(),
        ))
    }

    /// The rows `live`'s windows fed from a fresh state: their next-token logits on the host, the
    /// state, and how many positions the state holds (the longest window).
    #[allow(clippy::type_complexity)]
    fn prefill_rows(&self, rows: &[Row], live: &[usize]) -> Result<Option<(Vec<Vec<f32>>, M::State, usize)>> {
        let windows: Vec<&[u32]> = live.iter().map(|&r| self.window(&rows[r].all)).collect();
        let Some((logits, state)) = self.model.prefill(&windows, &self.device)? else {
            return Ok(None);
        };
        let longest = windows.iter().map(|w| w.len()).max().unwrap_or(0);
        // [batch, vocab] -> [batch, 1, vocab], the layout host_rows reads.
        Ok(Some((host_rows(logits.unsqueeze_dim(1))?, state, longest)))
    }
}
