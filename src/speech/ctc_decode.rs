//! Decoding CTC outputs: greedy (the best class per frame, repeats collapsed, blanks dropped)
//! and prefix beam search (Hannun et al., 2014) with an optional character language model,
//! each token with the frame where it was emitted.

use std::collections::HashMap;

use crate::log_space::log_add as lse;
use crate::{Error, Result};

/// A decoded label sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct CtcHypothesis {
    /// The labels (blank never among them).
    pub tokens: Vec<u32>,
    /// For each token, the frame at which it was emitted (its first frame).
    pub frames: Vec<usize>,
    /// Greedy: the sum of the chosen classes' log-probabilities. Beam search: the log-probability
    /// of the label sequence summed over its alignments, plus the language model's weighted
    /// score and the insertion bonus.
    pub score: f64,
}

/// A language model over labels for [`prefix_beam_search`]: the log-probability of `next`
/// after `prefix`.
pub trait LabelLm {
    /// `log P(next | prefix)`.
    fn log_prob(&self, prefix: &[u32], next: u32) -> f64;
}

/// Checks one utterance's posteriors: `frames × classes` values, finite or `-inf`.
fn check(log_probs: &[f32], classes: usize, blank: usize) -> Result<usize> {
    if classes == 0 || blank >= classes || !log_probs.len().is_multiple_of(classes) {
        return Err(Error::Data(format!(
            "CTC decoding: {} log-probabilities are not frames × {classes} classes, or blank {blank} is not a class",
            log_probs.len()
        )));
    }
    if let Some(bad) = log_probs.iter().find(|v| v.is_nan() || **v == f32::INFINITY) {
        return Err(Error::NotFinite {
            what: format!("CTC log-probabilities ({bad})"),
        });
    }
    Ok(log_probs.len() / classes)
}

/// The best class of each frame, repeats collapsed and blanks dropped.
///
/// # Shapes
/// - `log_probs`: one utterance, `frames × classes`, row after row
pub fn greedy_decode(log_probs: &[f32], classes: usize, blank: usize) -> Result<CtcHypothesis> {
    let frames = check(log_probs, classes, blank)?;
    let mut out = CtcHypothesis {
        tokens: Vec::new(),
        frames: Vec::new(),
        score: 0.0,
    };
    let mut previous = None;
    for t in 0..frames {
        let row = &log_probs[t * classes..(t + 1) * classes];
        let best = (0..classes).fold(0, |b, c| if row[c] > row[b] { c } else { b });
        out.score += row[best] as f64;
        if best != blank && previous != Some(best) {
            out.tokens.push(best as u32);
            out.frames.push(t);
        }
        previous = Some(best);
    }
    Ok(out)
}

/// Settings of [`prefix_beam_search`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BeamOptions {
    /// Prefixes kept after each frame.
    pub beam_width: usize,
    /// The language model's weight `α` (ignored without a language model).
    pub lm_weight: f64,
    /// `β`, added per token (offsets the language model's preference for short outputs).
    pub insertion_bonus: f64,
}

impl Default for BeamOptions {
    /// Width 16, `α = 0.5`, `β = 0`.
    fn default() -> Self {
        Self {
            beam_width: 16,
            lm_weight: 0.5,
            insertion_bonus: 0.0,
        }
    }
}

/// A prefix's probabilities of ending in a blank and in its last label, its language-model
/// score, and the frames of its tokens along the largest contribution of this frame (`best`).
#[derive(Clone, Debug)]
struct Beam {
    blank: f64,
    label: f64,
    lm: f64,
    frames: Vec<usize>,
    best: f64,
}

impl Beam {
    fn total(&self) -> f64 {
        lse(self.blank, self.label)
    }

    /// A fresh entry of the next frame, from `self`'s prefix.
    fn empty(&self) -> Self {
        Self {
            blank: f64::NEG_INFINITY,
            label: f64::NEG_INFINITY,
            best: f64::NEG_INFINITY,
            ..self.clone()
        }
    }

    /// Takes `frames` when the contribution `p` is the largest so far.
    fn credit(&mut self, p: f64, frames: impl FnOnce() -> Vec<usize>) {
        if p > self.best {
            self.best = p;
            self.frames = frames();
        }
    }
}

/// Prefix beam search: the `beam_width` best label sequences by their probability summed over
/// alignments, with `α · log P_lm + β · length` added when `lm` is given. Returns the
/// hypotheses best first.
///
/// # Shapes
/// - `log_probs`: one utterance, `frames × classes`, row after row
pub fn prefix_beam_search(
    log_probs: &[f32],
    classes: usize,
    blank: usize,
    options: BeamOptions,
    lm: Option<&dyn LabelLm>,
) -> Result<Vec<CtcHypothesis>> {
    let frames = check(log_probs, classes, blank)?;
    if options.beam_width == 0 || !options.lm_weight.is_finite() || !options.insertion_bonus.is_finite() {
        return Err(Error::Config {
            module: "BeamOptions",
            message: format!(
                "beam_width must be positive and lm_weight, insertion_bonus finite, found {options:?}"
            ),
        });
    }
    let neg = f64::NEG_INFINITY;
    let score = |prefix: &[u32], b: &Beam| {
        b.total() + options.lm_weight * b.lm + options.insertion_bonus * prefix.len() as f64
    };
    let mut beams: HashMap<Vec<u32>, Beam> = HashMap::new();
    beams.insert(
        Vec::new(),
        Beam {
            blank: 0.0,
            label: neg,
            lm: 0.0,
            frames: Vec::new(),
            best: neg,
        },
    );
    for t in 0..frames {
        let row = &log_probs[t * classes..(t + 1) * classes];
        let mut next: HashMap<Vec<u32>, Beam> = HashMap::new();
        for (prefix, b) in &beams {
            // The prefix stays: a blank, or its last label repeated.
            let stay = next.entry(prefix.clone()).or_insert_with(|| b.empty());
            let p = b.total() + row[blank] as f64;
            stay.blank = lse(stay.blank, p);
            stay.credit(p, || b.frames.clone());
            if let Some(&last) = prefix.last() {
                let p = b.label + row[last as usize] as f64;
                stay.label = lse(stay.label, p);
                stay.credit(p, || b.frames.clone());
            }
            // The prefix grows by one label; after the same label, only through a blank.
            for c in (0..classes).filter(|&c| c != blank) {
                let c = c as u32;
                let p = row[c as usize] as f64
                    + if prefix.last() == Some(&c) {
                        b.blank
                    } else {
                        b.total()
                    };
                if p == neg {
                    continue;
                }
                let mut extended = prefix.clone();
                extended.push(c);
                let e = next.entry(extended).or_insert_with(|| Beam {
                    lm: b.lm + lm.map_or(0.0, |m| m.log_prob(prefix, c)),
                    ..b.empty()
                });
                e.label = lse(e.label, p);
                e.credit(p, || {
                    let mut frames = b.frames.clone();
                    frames.push(t);
                    frames
                });
            }
        }
        next.retain(|_, b| b.total() > neg);
        let mut ranked: Vec<(Vec<u32>, Beam)> = next.into_iter().collect();
        ranked.sort_by(|(p, a), (q, b)| score(q, b).total_cmp(&score(p, a)).then_with(|| p.cmp(q)));
        ranked.truncate(options.beam_width);
        beams = ranked.into_iter().collect();
    }
    let mut out: Vec<CtcHypothesis> = beams
        .into_iter()
        .map(|(tokens, b)| CtcHypothesis {
            score: score(&tokens, &b),
            frames: b.frames,
            tokens,
        })
        .collect();
    out.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.tokens.cmp(&b.tokens)));
    Ok(out)
}

/// A character n-gram language model with add-k smoothing, trained on label sequences (the
/// transcripts): `P(c | the previous n - 1 labels)`, shorter contexts at the start.
#[derive(Debug, Clone)]
pub struct NgramLm {
    n: usize,
    classes: usize,
    k: f64,
    counts: HashMap<Vec<u32>, HashMap<u32, f64>>,
}

impl NgramLm {
    /// Counts the n-grams of `sequences` over labels `0..classes`; `k` is the add-k smoothing
    /// constant (e.g. 0.1). An [`Error::Config`] for `n = 0` or `k <= 0`.
    pub fn train(sequences: &[Vec<u32>], n: usize, classes: usize, k: f64) -> Result<Self> {
        if n == 0 || k.is_nan() || k <= 0.0 || classes == 0 {
            return Err(Error::Config {
                module: "NgramLm",
                message: format!(
                    "n and classes must be positive and k > 0, found n {n}, classes {classes}, k {k}"
                ),
            });
        }
        let mut counts: HashMap<Vec<u32>, HashMap<u32, f64>> = HashMap::new();
        for s in sequences {
            for i in 0..s.len() {
                let context = s[i.saturating_sub(n - 1)..i].to_vec();
                *counts.entry(context).or_default().entry(s[i]).or_default() += 1.0;
            }
        }
        Ok(Self {
            n,
            classes,
            k,
            counts,
        })
    }
}

impl LabelLm for NgramLm {
    fn log_prob(&self, prefix: &[u32], next: u32) -> f64 {
        let context = &prefix[prefix.len().saturating_sub(self.n - 1)..];
        let (count, total) = self.counts.get(context).map_or((0.0, 0.0), |m| {
            (m.get(&next).copied().unwrap_or(0.0), m.values().sum::<f64>())
        });
        ((count + self.k) / (total + self.k * self.classes as f64)).ln()
    }
}
