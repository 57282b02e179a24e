//! Classification metrics: accuracy, and precision, recall and F1 per class and macro-averaged.

use crate::{Error, Result};

/// Precision, recall and F1 of one class, or their macro average.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prf {
    /// TP / (TP + FP) (0 when nothing is predicted as the class, as scikit-learn's `zero_division=0`).
    pub precision: f64,
    /// TP / (TP + FN).
    pub recall: f64,
    /// Harmonic mean of the two (0 when both are 0).
    pub f1: f64,
}

/// Accuracy and per-class / macro precision, recall and F1 of predictions against labels.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassificationReport {
    /// Fraction of correct predictions.
    pub accuracy: f64,
    /// One entry per class `0..num_classes`.
    pub per_class: Vec<Prf>,
    /// The unweighted mean over classes (scikit-learn's `average="macro"`).
    pub macro_avg: Prf,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
}

/// Computes the report; classes are `0..num_classes`. An [`Error::Data`] when the predictions and
/// labels differ in number (scikit-learn raises "inconsistent numbers of samples"), when there are
/// none, or when a label or prediction is outside the classes.
pub fn classification_report(
    predictions: &[usize],
    labels: &[usize],
    num_classes: usize,
) -> Result<ClassificationReport> {
    if predictions.len() != labels.len() || labels.is_empty() {
        return Err(Error::Data(format!(
            "classification_report: {} predictions and {} labels; one prediction per label, at least one",
            predictions.len(),
            labels.len()
        )));
    }
    let outside = |v: &[usize]| v.iter().position(|&c| c >= num_classes);
    for (name, values) in [("predictions", predictions), ("labels", labels)] {
        if let Some(i) = outside(values) {
            return Err(Error::Data(format!(
                "classification_report: {name}[{i}] = {} is outside the {num_classes} classes",
                values[i]
            )));
        }
    }
    let mut confusion = vec![vec![0usize; num_classes]; num_classes];
    let mut correct = 0;
    for (&p, &l) in predictions.iter().zip(labels) {
        correct += (p == l) as usize;
        if p < num_classes && l < num_classes {
            confusion[l][p] += 1;
        }
    }
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let per_class: Vec<Prf> = (0..num_classes)
        .map(|c| {
            let tp = confusion[c][c];
            let predicted: usize = (0..num_classes).map(|t| confusion[t][c]).sum();
            let actual: usize = confusion[c].iter().sum();
            let (precision, recall) = (ratio(tp, predicted), ratio(tp, actual));
            let f1 = if precision + recall == 0.0 {
                0.0
            } else {
                2.0 * precision * recall / (precision + recall)
            };
            Prf {
                precision,
                recall,
                f1,
            }
        })
        .collect();
    let mean = |f: fn(&Prf) -> f64| per_class.iter().map(f).sum::<f64>() / num_classes.max(1) as f64;
    Ok(ClassificationReport {
        accuracy: ratio(correct, labels.len()),
        macro_avg: Prf {
            precision: mean(|p| p.precision),
            recall: mean(|p| p.recall),
            f1: mean(|p| p.f1),
        },
        per_class,
        confusion,
    })
}

/// Perplexity from a mean negative log-likelihood in nats.
pub fn perplexity(mean_nll: f64) -> f64 {
    mean_nll.exp()
}

/// Bits per character (or token) from a mean negative log-likelihood in nats.
pub fn bits_per_char(mean_nll: f64) -> f64 {
    mean_nll / std::f64::consts::LN_2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_report() {
        // labels:      0 0 0 1 1 2
        // predictions: 0 1 0 1 2 2
        let r = classification_report(&[0, 1, 0, 1, 2, 2], &[0, 0, 0, 1, 1, 2], 3).unwrap();
        assert!((r.accuracy - 4.0 / 6.0).abs() < 1e-12);
        // class 0: TP 2, predicted 2, actual 3 → P 1, R 2/3, F1 0.8
        assert_eq!(r.per_class[0].precision, 1.0);
        assert!((r.per_class[0].recall - 2.0 / 3.0).abs() < 1e-12 && (r.per_class[0].f1 - 0.8).abs() < 1e-12);
        // class 1: TP 1, predicted 2, actual 2 → 0.5, 0.5, 0.5; class 2: TP 1, predicted 2, actual 1.
        assert_eq!(
            (r.per_class[1].precision, r.per_class[1].recall, r.per_class[1].f1),
            (0.5, 0.5, 0.5)
        );
        assert!((r.per_class[2].f1 - 2.0 / 3.0).abs() < 1e-12);
        assert!((r.macro_avg.f1 - (0.8 + 0.5 + 2.0 / 3.0) / 3.0).abs() < 1e-12);
        assert_eq!(r.confusion[1], vec![0, 1, 1]);
        assert!((bits_per_char(std::f64::consts::LN_2 * 1.5) - 1.5).abs() < 1e-12);
        assert!((perplexity(0.0) - 1.0).abs() < 1e-12);
    }
}
