//! Parity with PyTorch: outputs, final states and gradients of `torch.nn.RNN/LSTM/GRU` on the
//! configurations written by `tests/fixtures/make_recurrent.py` (weights loaded through
//! `load_pytorch_file`), within `|a - b| <= 1e-5 + 1e-4 |b|` on f32.

mod common;

use burn::backend::{Autodiff, NdArray};
use common::fixture_path;
use common::recurrent::check_all;
use ember_lm::io::{StateDict, TorchWeights};
use ember_lm::nn::{Lstm, LstmConfig};

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
    let device = Default::default();
    let build = || lstm_2l_bi_proj(&device);
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

#[test]
fn lightning_checkpoints_load_by_key_and_prefix() {
    let device = Default::default();
    let build = || lstm_2l_bi_proj(&device);
    let expected = build()
        .load_pytorch_file(fixture_path("recurrent/lstm_2l_bi_proj.weights.safetensors"))
        .unwrap();
    // `tests/fixtures/make_lightning.py`: the same weights as `state_dict["model.*"]` in a
    // Lightning checkpoint with optimizer state and hyper-parameters around them.
    let path = fixture_path("recurrent/lstm_2l_bi_proj.lightning.ckpt");
    let dict = StateDict::from_torch_checkpoint(&path, "state_dict").unwrap();
    assert!(dict.keys().all(|k| k.starts_with("model.")), "{dict:?}");
    let by_prefix = build().load_state_dict(&dict, "model.").unwrap();
    let stripped = build()
        .load_state_dict(&dict.clone().strip_prefix("model.").unwrap(), "")
        .unwrap();
    for loaded in [&by_prefix, &stripped] {
        for (a, b) in loaded.cells.iter().zip(&expected.cells) {
            assert_eq!(a.weight_ih.val().to_data(), b.weight_ih.val().to_data());
            assert_eq!(a.weight_hh.val().to_data(), b.weight_hh.val().to_data());
            assert_eq!(
                a.weight_hr.as_ref().unwrap().val().to_data(),
                b.weight_hr.as_ref().unwrap().val().to_data()
            );
            assert_eq!(
                a.bias_ih.as_ref().unwrap().val().to_data(),
                b.bias_ih.as_ref().unwrap().val().to_data()
            );
        }
    }
    // Without the key, the whole checkpoint is not a state dict of this module.
    let whole = StateDict::from_file(&path).and_then(|d| build().load_state_dict(&d, ""));
    assert!(whole.is_err());
}

/// An LSTM shaped like the `lstm_2l_bi_proj` fixture: 4 → 6, 2 layers, bidirectional, `proj_size` 3.
fn lstm_2l_bi_proj(device: &burn::backend::ndarray::NdArrayDevice) -> Lstm<NdArray<f32>> {
    LstmConfig::new(4, 6)
        .with_num_layers(2)
        .with_bidirectional(true)
        .with_proj_size(3)
        .init(device)
        .unwrap()
}
