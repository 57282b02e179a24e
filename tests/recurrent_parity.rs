//! Parity with PyTorch: outputs, final states and gradients of `torch.nn.RNN/LSTM/GRU` on the
//! configurations written by `tests/fixtures/make_recurrent.py` (weights loaded through
//! `load_pytorch_file`), within `|a - b| <= 1e-5 + 1e-4 |b|` on f32.

mod common;

use burn::backend::{Autodiff, NdArray};
use common::fixture_path;
use common::recurrent::check_all;
use ember_lm::nn::LstmConfig;

#[test]
fn ndarray_matches_pytorch() {
    check_all::<Autodiff<NdArray<f32>>>(&Default::default(), 1e-5, 1e-4, None);
}

#[cfg(feature = "flex")]
#[test]
fn flex_matches_pytorch() {
    check_all::<Autodiff<burn::backend::Flex>>(&Default::default(), 1e-5, 1e-4, None);
}

#[test]
fn pt_and_safetensors_load_the_same_weights() {
    type B = NdArray<f32>;
    let device = Default::default();
    let build = || {
        LstmConfig::new(4, 6)
            .with_num_layers(2)
            .with_bidirectional(true)
            .with_proj_size(3)
            .init::<B>(&device)
            .unwrap()
    };
    let a = build()
        .load_pytorch_file(fixture_path("recurrent/lstm_2l_bi_proj.weights.safetensors"))
        .unwrap();
    let b = build()
        .load_pytorch_file(fixture_path("recurrent/lstm_2l_bi_proj.weights.pt"))
        .unwrap();
    let fresh = build();
    for ((ca, cb), cf) in a.cells.iter().zip(&b.cells).zip(&fresh.cells) {
        assert_eq!(
            ca.weight_hr.as_ref().unwrap().val().to_data(),
            cb.weight_hr.as_ref().unwrap().val().to_data()
        );
        assert_eq!(ca.weight_ih.val().to_data(), cb.weight_ih.val().to_data());
        assert_eq!(
            ca.bias_hh.as_ref().unwrap().val().to_data(),
            cb.bias_hh.as_ref().unwrap().val().to_data()
        );
        // Loading replaced the random initial values.
        assert_ne!(ca.weight_hh.val().to_data(), cf.weight_hh.val().to_data());
    }
}
