//! The CTC checks against PyTorch (`tests/fixtures/make_ctc.py`), generic over the backend.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Tensor, TensorData};
use ember_lm::nn::{CtcLossConfig, Reduction};

use super::{Fixture, assert_close};

pub const CASES: [&str; 5] = ["ragged", "blank_last", "impossible", "impossible_zero", "long"];

pub struct Case {
    pub logits: TensorData,
    pub targets: Vec<Vec<u32>>,
    pub input_lengths: Vec<usize>,
    pub blank: usize,
    pub zero_infinity: bool,
}

pub fn case(f: &Fixture, name: &str) -> Case {
    let lengths: Vec<usize> = f
        .data(&format!("{name}.target_lengths"))
        .iter::<i64>()
        .map(|v| v as usize)
        .collect();
    let padded: Vec<i64> = f.data(&format!("{name}.targets")).iter::<i64>().collect();
    let s = padded.len() / lengths.len();
    let config: Vec<i64> = f.data(&format!("{name}.config")).iter::<i64>().collect();
    Case {
        logits: f.data(&format!("{name}.logits")),
        targets: lengths
            .iter()
            .enumerate()
            .map(|(r, &n)| padded[r * s..r * s + n].iter().map(|&v| v as u32).collect())
            .collect(),
        input_lengths: f
            .data(&format!("{name}.input_lengths"))
            .iter::<i64>()
            .map(|v| v as usize)
            .collect(),
        blank: config[0] as usize,
        zero_infinity: config[1] == 1,
    }
}

/// Loss, gradient of the logits (through `log_softmax`) and of the log-probabilities, against
/// PyTorch; rows whose loss is infinite are compared by their loss only (PyTorch's gradient is
/// NaN there).
pub fn check_against_pytorch<B: ember_lm::TrainBackend>(device: &B::Device, tol: (f64, f64)) {
    let f = Fixture::load("ctc/cases.safetensors");
    for name in CASES {
        let c = case(&f, name);
        for (reduction, key) in [
            (Reduction::None, "none"),
            (Reduction::Mean, "mean"),
            (Reduction::Sum, "sum"),
        ] {
            let what = format!("{name} {key}");
            let logits = Tensor::<B, 3>::from_data(c.logits.clone(), device).require_grad();
            let lp = log_softmax(logits.clone(), 2);
            let loss = CtcLossConfig::new()
                .with_blank(c.blank)
                .with_reduction(reduction)
                .with_zero_infinity(c.zero_infinity)
                .init()
                .forward(lp.clone(), &c.targets, &c.input_lengths)
                .unwrap();
            let expected = f.data(&format!("{name}.{key}.loss"));
            let got: Vec<f64> = loss.clone().into_data().iter::<f64>().collect();
            let want: Vec<f64> = expected.iter::<f64>().collect();
            for (g, w) in got.iter().zip(&want) {
                if w.is_infinite() {
                    assert!(g.is_infinite(), "{what}: {g} vs {w}");
                } else {
                    assert!(
                        (g - w).abs() <= tol.0 + tol.1 * w.abs(),
                        "{what}: loss {got:?} vs {want:?}"
                    );
                }
            }
            if want.iter().any(|w| w.is_infinite()) {
                continue;
            }
            // The fixture's weighting of the per-utterance losses.
            let n = c.targets.len();
            let total = match reduction {
                Reduction::None => {
                    let w: Vec<f64> = (1..=n).map(|i| i as f64).collect();
                    (loss * Tensor::<B, 1>::from_data(TensorData::new(w, [n]), device)).sum()
                }
                _ => loss,
            };
            let grads = total.backward();
            let g = logits.grad(&grads).unwrap();
            assert_close(
                &format!("{what} grad logits"),
                g.into_data().convert::<f64>(),
                f.data(&format!("{name}.{key}.grad_logits")),
                tol.0,
                tol.1,
            );
        }
    }
}
