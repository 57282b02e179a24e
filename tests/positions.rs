//! Absolute positions: the sinusoidal table against the formula evaluated in f64 here, offsets
//! for incremental decoding, and the errors.

use burn::backend::NdArray;
use burn::tensor::Tensor;
use ember_lm::Error;
use ember_lm::nn::PositionsConfig;

type B = NdArray<f64>;

#[test]
fn sinusoidal_positions_follow_the_formula_and_the_offset() {
    let device = Default::default();
    let (d, max_len) = (6, 10);
    let pos = PositionsConfig::new(d, max_len)
        .init_sinusoidal::<B>(&device)
        .unwrap();
    let zeros = Tensor::<B, 3>::zeros([1, 4, d], &device);
    let out = pos.forward(zeros, 3).unwrap().into_data();
    let got: Vec<f64> = out.iter::<f64>().collect();
    for t in 0..4 {
        let p = (t + 3) as f64;
        for i in 0..d / 2 {
            let angle = p / 10000f64.powf(2.0 * i as f64 / d as f64);
            let (s, c) = (got[t * d + 2 * i], got[t * d + 2 * i + 1]);
            assert!(
                (s - angle.sin()).abs() < 1e-6,
                "sin at position {p}, pair {i}: {s}"
            );
            assert!(
                (c - angle.cos()).abs() < 1e-6,
                "cos at position {p}, pair {i}: {c}"
            );
        }
    }
}

#[test]
fn learned_positions_add_their_rows_at_the_offset() {
    let device = Default::default();
    let pos = PositionsConfig::new(4, 8).init_learned::<B>(&device).unwrap();
    let x = Tensor::<B, 3>::ones([2, 3, 4], &device);
    let out = pos.forward(x, 5).unwrap();
    let expected = pos.weight.val().slice(5..8).unsqueeze::<3>() + 1.0;
    assert_eq!(out.slice(1..2).into_data(), expected.into_data());
}

#[test]
fn positions_past_the_table_or_of_the_wrong_width_are_errors() {
    let device = Default::default();
    let pos = PositionsConfig::new(4, 8).init_sinusoidal::<B>(&device).unwrap();
    let err = pos.forward(Tensor::zeros([1, 3, 4], &device), 6).unwrap_err();
    assert!(
        matches!(err, Error::Shape { .. }) && err.to_string().contains("max_len = 8"),
        "{err}"
    );
    assert!(matches!(
        pos.forward(Tensor::zeros([1, 3, 5], &device), 0),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        PositionsConfig::new(0, 8).init_learned::<B>(&device),
        Err(Error::Config { .. })
    ));
}
