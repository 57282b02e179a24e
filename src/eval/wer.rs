//! Word and character error rates, as `jiwer` 4 computes them: the Levenshtein edits between
//! each reference and hypothesis (substitutions, deletions, insertions), summed over the pairs
//! and divided by the summed reference length.

use crate::{Error, Result};

/// The edits between references and hypotheses, and the rate they make.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErrorRate {
    /// `(substitutions + deletions + insertions) / reference units`; with no reference unit at
    /// all, the number of insertions (jiwer's convention).
    pub rate: f64,
    /// Reference units replaced.
    pub substitutions: usize,
    /// Reference units missing from the hypothesis.
    pub deletions: usize,
    /// Hypothesis units with no reference unit.
    pub insertions: usize,
    /// Reference units matched.
    pub hits: usize,
}

/// One optimal alignment's `(substitutions, deletions, insertions, hits)` between `r` and `h`.
fn align<T: PartialEq>(r: &[T], h: &[T]) -> (usize, usize, usize, usize) {
    let (n, m) = (r.len(), h.len());
    // cost[i][j]: edits between r[..i] and h[..j].
    let mut cost = vec![0usize; (n + 1) * (m + 1)];
    let at = |i: usize, j: usize| i * (m + 1) + j;
    for i in 0..=n {
        cost[at(i, 0)] = i;
    }
    for j in 0..=m {
        cost[at(0, j)] = j;
    }
    for i in 1..=n {
        for j in 1..=m {
            let diagonal = cost[at(i - 1, j - 1)] + usize::from(r[i - 1] != h[j - 1]);
            cost[at(i, j)] = diagonal.min(cost[at(i - 1, j)] + 1).min(cost[at(i, j - 1)] + 1);
        }
    }
    // Back from the end, preferring a match or substitution, then a deletion, then an insertion.
    let (mut i, mut j) = (n, m);
    let (mut s, mut d, mut ins, mut hits) = (0, 0, 0, 0);
    while i > 0 || j > 0 {
        if i > 0 && j > 0 && cost[at(i, j)] == cost[at(i - 1, j - 1)] + usize::from(r[i - 1] != h[j - 1]) {
            if r[i - 1] == h[j - 1] {
                hits += 1;
            } else {
                s += 1;
            }
            i -= 1;
            j -= 1;
        } else if i > 0 && cost[at(i, j)] == cost[at(i - 1, j)] + 1 {
            d += 1;
            i -= 1;
        } else {
            ins += 1;
            j -= 1;
        }
    }
    (s, d, ins, hits)
}

fn rate<'s, T: PartialEq>(
    what: &str,
    refs: &[&'s str],
    hyps: &[&'s str],
    units: impl Fn(&'s str) -> Vec<T>,
) -> Result<ErrorRate> {
    if refs.len() != hyps.len() || refs.is_empty() {
        return Err(Error::Data(format!(
            "{what}: {} references and {} hypotheses; one hypothesis per reference, at least one",
            refs.len(),
            hyps.len()
        )));
    }
    let (mut s, mut d, mut i, mut h) = (0, 0, 0, 0);
    for (r, hy) in refs.iter().zip(hyps) {
        let (a, b, c, e) = align(&units(r), &units(hy));
        s += a;
        d += b;
        i += c;
        h += e;
    }
    let total = s + d + h;
    Ok(ErrorRate {
        rate: (s + d + i) as f64 / total.max(1) as f64,
        substitutions: s,
        deletions: d,
        insertions: i,
        hits: h,
    })
}

/// The word error rate of `hyps` against `refs` (pairs in order), jiwer's `wer`: words are the
/// whitespace-separated pieces.
pub fn word_error_rate<'s>(refs: &[&'s str], hyps: &[&'s str]) -> Result<ErrorRate> {
    rate("word_error_rate", refs, hyps, |s| s.split_whitespace().collect())
}

/// The character error rate, jiwer's `cer`: the characters of each text with its leading and
/// trailing whitespace removed (inner spaces count).
pub fn char_error_rate(refs: &[&str], hyps: &[&str]) -> Result<ErrorRate> {
    rate("char_error_rate", refs, hyps, |s| s.trim().chars().collect())
}
