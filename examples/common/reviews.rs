//! The built-in sentiment data of the `sentiment` and `fine_tune` examples: review-like
//! sentences whose sentiment comes from their adjectives, some negated ("not good" is
//! negative). Included by each (`#[path = "common/reviews.rs"] mod reviews;`); not an example.

use ember_lm::data::SplitMix64;

/// Review-like sentences with a known sentiment (1 positive, 0 negative).
pub fn built_in(n: usize, seed: u64) -> Vec<(String, usize)> {
    const GOOD: &[&str] = &[
        "good",
        "great",
        "wonderful",
        "moving",
        "brilliant",
        "funny",
        "charming",
        "gripping",
    ];
    const BAD: &[&str] = &[
        "bad",
        "dull",
        "awful",
        "boring",
        "clumsy",
        "tedious",
        "lifeless",
        "predictable",
    ];
    const SUBJECT: &[&str] = &[
        "the film",
        "this movie",
        "the story",
        "the acting",
        "the ending",
        "the script",
    ];
    const FILLER: &[&str] = &["", "really ", "quite ", "truly ", "rather "];
    let mut rng = SplitMix64::new(seed);
    let mut pick = |xs: &[&'static str]| xs[rng.below(xs.len() as u64) as usize];
    (0..n)
        .map(|_| {
            let positive = pick(&["+", "-"]) == "+";
            let negated = pick(&["", "", "", "not"]) == "not";
            let adjective = if positive ^ negated { pick(GOOD) } else { pick(BAD) };
            let label = positive as usize;
            let text = format!(
                "{} is {}{}{} .",
                pick(SUBJECT),
                if negated { "not " } else { "" },
                pick(FILLER),
                adjective
            );
            (text, label)
        })
        .collect()
}
