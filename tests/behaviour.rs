//! Behaviour that PyTorch users rely on, on the CPU backend: dropout between layers only while
//! training, and state carried across calls (truncated backpropagation through time).

use burn::backend::{Autodiff, NdArray};
use burn::module::AutodiffModule;
use burn::tensor::{Distribution, Tensor};
use ember_lm::nn::{GruConfig, LstmConfig};

type Ad = Autodiff<NdArray>;

#[test]
fn dropout_between_layers_acts_only_while_training() {
    let device = Default::default();
    let lstm = LstmConfig::new(3, 8)
        .with_num_layers(2)
        .with_dropout(0.5)
        .init::<Ad>(&device)
        .unwrap();
    let x = Tensor::<Ad, 3>::random([2, 5, 3], Distribution::Normal(0.0, 1.0), &device);
    let (a, _) = lstm.forward(x.clone(), None).unwrap();
    let (b, _) = lstm.forward(x.clone(), None).unwrap();
    let diff: f32 = (a - b).abs().sum().into_scalar();
    assert!(diff > 1e-4, "two training passes with dropout 0.5 differ");

    let inference = lstm.valid();
    let (c, _) = inference.forward(x.clone().inner(), None).unwrap();
    let (d, _) = inference.forward(x.clone().inner(), None).unwrap();
    assert_eq!(c.to_data(), d.to_data(), "inference is deterministic");

    // A single layer has no "between layers": dropout must not touch its output.
    let single = LstmConfig::new(3, 8)
        .with_dropout(0.5)
        .init::<Ad>(&device)
        .unwrap();
    let (e, _) = single.forward(x.clone(), None).unwrap();
    let (f, _) = single.forward(x, None).unwrap();
    assert_eq!(e.to_data(), f.to_data(), "dropout only sits between layers");
}

#[test]
fn state_carried_across_calls_equals_one_long_call() {
    let device = Default::default();
    let gru = GruConfig::new(4, 6)
        .with_num_layers(2)
        .init::<NdArray>(&device)
        .unwrap();
    let x = Tensor::<NdArray, 3>::random([3, 10, 4], Distribution::Normal(0.0, 1.0), &device);
    let (whole, h_whole) = gru.forward(x.clone(), None).unwrap();
    let (first, h) = gru.forward(x.clone().slice([0..3, 0..6]), None).unwrap();
    let (second, h_end) = gru.forward(x.slice([0..3, 6..10]), Some(h)).unwrap();
    let joined = Tensor::cat(vec![first, second], 1);
    let close = |a: Tensor<NdArray, 3>, b: Tensor<NdArray, 3>| {
        let err: f32 = (a - b).abs().max().into_scalar();
        assert!(err < 1e-5, "max difference {err}");
    };
    close(joined, whole);
    close(h_end, h_whole);
}
