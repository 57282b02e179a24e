//! Corpus BLEU as sacrebleu computes it by default (13a tokenisation, exponential smoothing, up
//! to 4-grams), so that scores are comparable with published ones.

use std::collections::HashMap;

use crate::{Error, Result};

/// A corpus BLEU score with its statistics (sacrebleu's `BLEUScore` fields).
#[derive(Debug, Clone, PartialEq)]
pub struct Bleu {
    /// BLEU × 100.
    pub score: f64,
    /// Matching n-grams, n = 1..4 (clipped by the references).
    pub counts: [usize; 4],
    /// Hypothesis n-grams, n = 1..4.
    pub totals: [usize; 4],
    /// Hypothesis tokens.
    pub sys_len: usize,
    /// Reference tokens (the closest reference length per sentence).
    pub ref_len: usize,
    /// The n-gram precisions × 100, n = 1..4, after smoothing (all zero when nothing matches).
    pub precisions: [f64; 4],
    /// The brevity penalty.
    pub bp: f64,
}

/// Python's `str.isspace`, which `str.split()` and `str.rstrip()` use: Rust's whitespace plus the
/// separators U+001C–U+001F.
fn python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// sacrebleu's `13a` tokenizer (mteval-v13a) on a segment as sacrebleu's BLEU hands it over
/// (trailing whitespace stripped first): punctuation split off, except apostrophes, periods and
/// commas inside numbers, and dashes not after a digit.
pub fn tokenize_13a(line: &str) -> Vec<String> {
    let mut line = line
        .trim_end_matches(python_space)
        .replace("<skipped>", "")
        .replace("-\n", "")
        .replace('\n', " ");
    if line.contains('&') {
        line = line
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">");
    }
    let chars: Vec<char> = format!(" {line} ").chars().collect();
    // Rule 1: punctuation and symbols (ASCII ranges of the v13a regex), not the apostrophe.
    let symbol = |c: char| matches!(c, '{'..='~' | '['..='`' | ' '..='&' | '('..='+' | ':'..='@' | '/');
    let mut s1 = Vec::with_capacity(chars.len() * 2);
    for &c in &chars {
        if symbol(c) {
            s1.extend([' ', c, ' ']);
        } else {
            s1.push(c);
        }
    }
    // Rules 2–4 as Python's `re.sub` applies them: left to right, matches not overlapping.
    let digit = |c: char| c.is_ascii_digit();
    let pass =
        |s: &[char], matches: &dyn Fn(char, char) -> bool, emit: &dyn Fn(char, char, &mut Vec<char>)| {
            let mut out = Vec::with_capacity(s.len() * 2);
            let mut i = 0;
            while i < s.len() {
                if i + 1 < s.len() && matches(s[i], s[i + 1]) {
                    emit(s[i], s[i + 1], &mut out);
                    i += 2;
                } else {
                    out.push(s[i]);
                    i += 1;
                }
            }
            out
        };
    let s2 = pass(&s1, &|a, b| !digit(a) && matches!(b, '.' | ','), &|a, b, o| {
        o.extend([a, ' ', b, ' '])
    });
    let s3 = pass(&s2, &|a, b| matches!(a, '.' | ',') && !digit(b), &|a, b, o| {
        o.extend([' ', a, ' ', b])
    });
    let s4 = pass(&s3, &|a, b| digit(a) && b == '-', &|a, b, o| {
        o.extend([a, ' ', b, ' '])
    });
    s4.into_iter()
        .collect::<String>()
        .split(python_space)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

fn ngrams(tokens: &[String], n: usize) -> HashMap<&[String], usize> {
    let mut m = HashMap::new();
    for w in tokens.windows(n) {
        *m.entry(w).or_default() += 1;
    }
    m
}

/// Corpus BLEU of `hypotheses` against one or more reference sets (`references[k][i]` is the k-th
/// reference of sentence i), as `sacrebleu.corpus_bleu(hypotheses, references)`.
pub fn corpus_bleu(hypotheses: &[String], references: &[Vec<String>]) -> Result<Bleu> {
    if references.is_empty() || references.iter().any(|r| r.len() != hypotheses.len()) {
        return Err(Error::Data(format!(
            "corpus_bleu: every reference set needs {} sentences (one per hypothesis)",
            hypotheses.len()
        )));
    }
    let (mut counts, mut totals) = ([0usize; 4], [0usize; 4]);
    let (mut sys_len, mut ref_len) = (0, 0);
    for (i, hyp) in hypotheses.iter().enumerate() {
        let h = tokenize_13a(hyp);
        let refs: Vec<Vec<String>> = references.iter().map(|r| tokenize_13a(&r[i])).collect();
        sys_len += h.len();
        // The reference length closest to the hypothesis's (the shorter on a tie).
        let mut closest: Option<(usize, usize)> = None;
        for r in &refs {
            let diff = r.len().abs_diff(h.len());
            closest = match closest {
                Some((d, l)) if diff > d || (diff == d && l <= r.len()) => Some((d, l)),
                _ => Some((diff, r.len())),
            };
        }
        ref_len += closest.map_or(0, |c| c.1);
        for n in 1..=4 {
            let hyp_ngrams = ngrams(&h, n);
            let mut max_ref: HashMap<&[String], usize> = HashMap::new();
            for r in &refs {
                for (g, c) in ngrams(r, n) {
                    let e = max_ref.entry(g).or_default();
                    *e = (*e).max(c);
                }
            }
            for (g, c) in &hyp_ngrams {
                counts[n - 1] += (*c).min(max_ref.get(g).copied().unwrap_or(0));
                totals[n - 1] += c;
            }
        }
    }
    let bp = if sys_len >= ref_len {
        1.0
    } else if sys_len > 0 {
        (1.0 - ref_len as f64 / sys_len as f64).exp()
    } else {
        0.0
    };
    let mut precisions = [0.0f64; 4];
    // No matching n-gram at all scores 0, unsmoothed (sacrebleu's early stop, its issue #141).
    let score = if counts.iter().all(|&c| c == 0) {
        0.0
    } else {
        // Exponential smoothing of zero counts (sacrebleu's default `exp`).
        let mut smooth = 1.0;
        for n in 0..4 {
            if totals[n] == 0 {
                break;
            }
            precisions[n] = if counts[n] == 0 {
                smooth *= 2.0;
                100.0 / (smooth * totals[n] as f64)
            } else {
                100.0 * counts[n] as f64 / totals[n] as f64
            };
        }
        let log = |p: f64| if p == 0.0 { -9_999_999_999.0 } else { p.ln() };
        bp * (precisions.iter().map(|&p| log(p)).sum::<f64>() / 4.0).exp()
    };
    Ok(Bleu {
        score,
        counts,
        totals,
        sys_len,
        ref_len,
        precisions,
        bp,
    })
}
