//! Logits processors on one row of host logits, as Hugging Face's `LogitsProcessor`s compute them.
//!
//! Each takes the logits of the next token (`vocab` floats) and the ids so far; masked tokens get
//! `-inf`. `tests/generation.rs` checks each against `transformers`' own on fixed distributions.

use std::collections::HashSet;

use crate::{Error, Result};

/// `RepetitionPenaltyLogitsProcessor`: for every token already in `ids`, a positive logit is
/// divided by `penalty`, a negative one multiplied.
pub fn repetition_penalty(logits: &mut [f32], ids: &[u32], penalty: f64) {
    if penalty == 1.0 {
        return;
    }
    let seen: HashSet<u32> = ids.iter().copied().collect();
    for id in seen {
        if let Some(l) = logits.get_mut(id as usize) {
            *l = if *l < 0.0 {
                (*l as f64 * penalty) as f32
            } else {
                (*l as f64 / penalty) as f32
            };
        }
    }
}

/// `NoRepeatNGramLogitsProcessor`: bans every token that would complete an `n`-gram already in
/// `ids`.
pub fn no_repeat_ngram(logits: &mut [f32], ids: &[u32], n: usize) {
    if n == 0 || ids.len() + 1 < n {
        return;
    }
    let prefix = &ids[ids.len() + 1 - n..];
    for window in ids.windows(n) {
        if &window[..n - 1] == prefix
            && let Some(l) = logits.get_mut(window[n - 1] as usize)
        {
            *l = f32::NEG_INFINITY;
        }
    }
}

/// `TemperatureLogitsWarper`.
pub fn temperature(logits: &mut [f32], t: f64) {
    if t != 1.0 {
        for l in logits.iter_mut() {
            *l = (*l as f64 / t) as f32;
        }
    }
}

/// `TopKLogitsWarper`: keeps the tokens whose logit is at least the `k`-th largest (ties at the
/// threshold kept, as `torch.topk`'s threshold comparison does).
pub fn top_k(logits: &mut [f32], k: usize) {
    if k == 0 || k >= logits.len() {
        return;
    }
    let mut sorted: Vec<f32> = logits.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let threshold = sorted[k - 1];
    for l in logits.iter_mut() {
        if *l < threshold {
            *l = f32::NEG_INFINITY;
        }
    }
}

/// Softmax in f64.
pub fn softmax(logits: &[f32]) -> Vec<f64> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let exp: Vec<f64> = logits.iter().map(|&l| (l as f64 - max).exp()).collect();
    let sum: f64 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}

/// `log_softmax` in f64.
pub fn log_softmax(logits: &[f32]) -> Vec<f64> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let lse = max + logits.iter().map(|&l| (l as f64 - max).exp()).sum::<f64>().ln();
    logits.iter().map(|&l| l as f64 - lse).collect()
}

/// `TopPLogitsWarper` (nucleus): sorts ascending, removes the tokens whose cumulative probability
/// stays at or below `1 − p`, always keeping the most likely one.
pub fn top_p(logits: &mut [f32], p: f64) {
    if p >= 1.0 {
        return;
    }
    let probs = softmax(logits);
    let mut order: Vec<usize> = (0..logits.len()).collect();
    // Ascending by logit, stable: the order `torch.sort(descending=False)` gives for distinct values.
    order.sort_by(|&a, &b| logits[a].total_cmp(&logits[b]));
    let mut cumulative = 0.0;
    let last = order.len() - 1;
    for (rank, &i) in order.iter().enumerate() {
        cumulative += probs[i];
        if cumulative <= 1.0 - p && rank != last {
            logits[i] = f32::NEG_INFINITY;
        }
    }
}

/// `MinPLogitsWarper`: removes tokens whose probability is below `min_p` times the largest,
/// keeping at least the most likely one.
pub fn min_p(logits: &mut [f32], min_p: f64) {
    let probs = softmax(logits);
    let top = probs.iter().copied().fold(0.0, f64::max);
    let threshold = min_p * top;
    for (l, p) in logits.iter_mut().zip(&probs) {
        if *p < threshold {
            *l = f32::NEG_INFINITY;
        }
    }
}

/// An [`Error::NotFinite`] unless `logits` can be chosen from: no NaN, no `+inf`, and at least one
/// token not masked to `-inf` (`torch.multinomial` raises on the probabilities that follow).
pub fn check_logits(logits: &[f32]) -> Result<()> {
    let bad = logits.iter().any(|l| l.is_nan() || *l == f32::INFINITY);
    if bad || !logits.iter().any(|l| l.is_finite()) {
        return Err(Error::NotFinite {
            what: format!(
                "the logits of the next token ({} of {} NaN or +inf, {} finite)",
                logits
                    .iter()
                    .filter(|l| l.is_nan() || **l == f32::INFINITY)
                    .count(),
                logits.len(),
                logits.iter().filter(|l| l.is_finite()).count()
            ),
        });
    }
    Ok(())
}

/// Draws a token from the softmax of `logits` with the uniform number `u` in `[0, 1)`; an
/// [`Error::NotFinite`] for logits [`check_logits`] refuses.
pub fn sample(logits: &[f32], u: f64) -> Result<u32> {
    check_logits(logits)?;
    let probs = softmax(logits);
    let mut cumulative = 0.0;
    let mut last = 0;
    for (i, p) in probs.iter().enumerate() {
        if *p > 0.0 {
            last = i;
            cumulative += p;
            if u < cumulative {
                return Ok(i as u32);
            }
        }
    }
    Ok(last as u32)
}

/// The index of the largest logit (the first one on ties, as `argmax`); an
/// [`Error::NotFinite`] for logits [`check_logits`] refuses.
pub fn argmax(logits: &[f32]) -> Result<u32> {
    check_logits(logits)?;
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    Ok(best as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_inf_and_fully_masked_logits_are_errors() {
        for row in [
            vec![f32::NAN; 3],
            vec![0.5, f32::NAN, 0.1],
            vec![0.0, f32::INFINITY, 1.0],
            vec![f32::NEG_INFINITY; 4],
        ] {
            assert!(
                matches!(sample(&row, 0.5), Err(Error::NotFinite { .. })),
                "{row:?}"
            );
            assert!(matches!(argmax(&row), Err(Error::NotFinite { .. })), "{row:?}");
        }
        // Masked tokens are fine as long as one is left.
        let row = [f32::NEG_INFINITY, 2.0, f32::NEG_INFINITY];
        assert_eq!(argmax(&row).unwrap(), 1);
        assert_eq!(sample(&row, 0.99).unwrap(), 1);
    }
}
