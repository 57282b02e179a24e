//! [`ToyGrammar`]: a small stochastic grammar of English-like sentences with a known entropy, the
//! built-in corpus of the `char_lm` example (no download needed).

use super::SplitMix64;

/// A word list with probabilities.
struct Choice {
    words: &'static [(&'static str, f64)],
}

impl Choice {
    fn pick(&self, rng: &mut SplitMix64) -> (&'static str, f64) {
        let mut u = rng.next_f64();
        for &(w, p) in self.words {
            if u < p {
                return (w, p);
            }
            u -= p;
        }
        *self.words.last().expect("non-empty word list")
    }
}

const DET: Choice = Choice {
    words: &[("the", 0.5), ("a", 0.3), ("every", 0.2)],
};
const ADJ: Choice = Choice {
    words: &[
        ("small", 0.2),
        ("old", 0.2),
        ("red", 0.2),
        ("happy", 0.2),
        ("quiet", 0.2),
    ],
};
const NOUN: Choice = Choice {
    words: &[
        ("cat", 0.25),
        ("dog", 0.2),
        ("bird", 0.15),
        ("farmer", 0.15),
        ("child", 0.15),
        ("king", 0.1),
    ],
};
const TRANSITIVE: Choice = Choice {
    words: &[("sees", 0.3), ("likes", 0.3), ("follows", 0.2), ("finds", 0.2)],
};
const INTRANSITIVE: Choice = Choice {
    words: &[("sleeps", 0.4), ("runs", 0.3), ("sings", 0.3)],
};
const ADVERB: Choice = Choice {
    words: &[("quickly", 0.4), ("slowly", 0.3), ("today", 0.3)],
};

/// Sentences `DET [ADJ] NOUN (TRANSITIVE DET [ADJ] NOUN | INTRANSITIVE [ADVERB]) .` with fixed
/// probabilities, one per line. No word belongs to two categories, so every sentence has one
/// derivation and its probability is the product of the choices made: the source's entropy is
/// known, and a character model's bits per character can be compared with it.
#[derive(Debug, Clone, Copy, Default)]
pub struct ToyGrammar;

impl ToyGrammar {
    /// One sentence (with its trailing `".\n"`) and its information content in bits, `−log2 p`.
    pub fn sentence(&self, rng: &mut SplitMix64) -> (String, f64) {
        let mut words = Vec::new();
        let mut bits = 0.0;
        let take = |c: &Choice, rng: &mut SplitMix64, words: &mut Vec<&str>, bits: &mut f64| {
            let (w, p) = c.pick(rng);
            words.push(w);
            *bits -= p.log2();
        };
        let noun_phrase = |rng: &mut SplitMix64, words: &mut Vec<&str>, bits: &mut f64| {
            take(&DET, rng, words, bits);
            let adj = rng.next_f64() < 0.4;
            *bits -= if adj { 0.4f64 } else { 0.6 }.log2();
            if adj {
                take(&ADJ, rng, words, bits);
            }
            take(&NOUN, rng, words, bits);
        };
        noun_phrase(rng, &mut words, &mut bits);
        let transitive = rng.next_f64() < 0.7;
        bits -= if transitive { 0.7f64 } else { 0.3 }.log2();
        if transitive {
            take(&TRANSITIVE, rng, &mut words, &mut bits);
            noun_phrase(rng, &mut words, &mut bits);
        } else {
            take(&INTRANSITIVE, rng, &mut words, &mut bits);
            let adverb = rng.next_f64() < 0.5;
            bits -= 0.5f64.log2();
            if adverb {
                take(&ADVERB, rng, &mut words, &mut bits);
            }
        }
        (format!("{}.\n", words.join(" ")), bits)
    }

    /// A corpus of at least `chars` characters, from `seed`.
    pub fn corpus(&self, chars: usize, seed: u64) -> String {
        let mut rng = SplitMix64::new(seed);
        let mut text = String::with_capacity(chars + 64);
        while text.len() < chars {
            text += &self.sentence(&mut rng).0;
        }
        text
    }

    /// The source's entropy rate in bits per character, estimated from `samples` sentences: the
    /// mean information content of a sentence over its mean length (newline included).
    pub fn entropy_bits_per_char(&self, samples: usize, seed: u64) -> f64 {
        let mut rng = SplitMix64::new(seed);
        let (mut bits, mut chars) = (0.0, 0usize);
        for _ in 0..samples.max(1) {
            let (s, b) = self.sentence(&mut rng);
            bits += b;
            chars += s.chars().count();
        }
        bits / chars as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probabilities_sum_to_one_and_the_entropy_matches_the_analytic_value() {
        for c in [&DET, &ADJ, &NOUN, &TRANSITIVE, &INTRANSITIVE, &ADVERB] {
            let total: f64 = c.words.iter().map(|w| w.1).sum();
            assert!((total - 1.0).abs() < 1e-12);
        }
        // Expected bits per sentence, from the entropies of the choices.
        let h = |c: &Choice| -c.words.iter().map(|&(_, p)| p * p.log2()).sum::<f64>();
        let hb = |p: f64| -(p * p.log2() + (1.0 - p) * (1.0 - p).log2());
        let np = h(&DET) + hb(0.4) + 0.4 * h(&ADJ) + h(&NOUN);
        let vp =
            hb(0.7) + 0.7 * (h(&TRANSITIVE) + np) + 0.3 * (h(&INTRANSITIVE) + hb(0.5) + 0.5 * h(&ADVERB));
        let sentence_bits = np + vp;
        let mut rng = SplitMix64::new(1);
        let n = 20000;
        let mean_bits: f64 = (0..n).map(|_| ToyGrammar.sentence(&mut rng).1).sum::<f64>() / n as f64;
        assert!(
            (mean_bits - sentence_bits).abs() < 0.1,
            "{mean_bits} vs {sentence_bits}"
        );
        let e = ToyGrammar.entropy_bits_per_char(20000, 2);
        assert!((0.3..0.6).contains(&e), "{e}");
        assert!(ToyGrammar.corpus(1000, 3).len() >= 1000);
    }
}
