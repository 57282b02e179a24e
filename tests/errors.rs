//! Bad input gets a typed `Err` that says what was expected and what was found, never a panic.

mod common;

use burn::backend::NdArray;
use burn::tensor::{Bool, Tensor, TensorData};
use common::fixture_path;
use ember_lm::Error;
use ember_lm::io::{ShapeMismatch, StateDict, TorchWeights};
use ember_lm::nn::{GruConfig, LstmConfig, LstmState, RnnConfig, lengths_from_padding_mask};

type B = NdArray<f32>;

fn zeros(shape: [usize; 3]) -> Tensor<B, 3> {
    Tensor::zeros(shape, &Default::default())
}

fn lstm() -> ember_lm::nn::Lstm<B> {
    LstmConfig::new(4, 6)
        .with_num_layers(2)
        .init(&Default::default())
        .unwrap()
}

#[test]
fn wrong_feature_size_is_a_shape_error() {
    let err = lstm().forward(zeros([2, 3, 5]), None).unwrap_err();
    match &err {
        Error::Shape { found, expected, .. } => {
            assert_eq!(found, &vec![2, 3, 5]);
            assert!(expected.contains('4'), "{expected}");
        }
        other => panic!("expected a shape error, got {other:?}"),
    }
    assert!(err.to_string().contains("Lstm input"), "{err}");
}

#[test]
fn time_major_layout_is_named_in_the_error() {
    let gru = GruConfig::new(4, 6)
        .with_batch_first(false)
        .init::<B>(&Default::default())
        .unwrap();
    let err = gru.forward(zeros([3, 2, 7]), None).unwrap_err();
    assert!(err.to_string().contains("[time, batch, 4]"), "{err}");
}

#[test]
fn empty_batch_and_empty_sequence_are_errors() {
    assert!(matches!(
        lstm().forward(zeros([0, 3, 4]), None),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        lstm().forward(zeros([2, 0, 4]), None),
        Err(Error::Shape { .. })
    ));
}

#[test]
fn state_of_the_wrong_shape_is_an_error() {
    let bad = LstmState {
        hidden: zeros([1, 2, 6]), // two layers need [2, 2, 6]
        cell: zeros([2, 2, 6]),
    };
    let err = lstm().forward(zeros([2, 3, 4]), Some(bad)).unwrap_err();
    assert!(
        matches!(&err, Error::Shape { found, .. } if found == &vec![1, 2, 6]),
        "{err}"
    );
    let bad_cell = LstmState {
        hidden: zeros([2, 2, 6]),
        cell: zeros([2, 3, 6]),
    };
    let err = lstm().forward(zeros([2, 3, 4]), Some(bad_cell)).unwrap_err();
    assert!(err.to_string().contains("cell"), "{err}");
    let rnn = RnnConfig::new(4, 6)
        .with_bidirectional(true)
        .init::<B>(&Default::default())
        .unwrap();
    assert!(matches!(
        rnn.forward(zeros([2, 3, 4]), Some(zeros([1, 2, 6]))),
        Err(Error::Shape { .. })
    ));
}

#[test]
fn bad_lengths_are_errors() {
    let x = || zeros([2, 3, 4]);
    for lengths in [&[3, 4][..], &[0, 2], &[3], &[1, 2, 3]] {
        let err = lstm().forward_padded(x(), lengths, None).unwrap_err();
        assert!(matches!(err, Error::Lengths(_)), "{lengths:?}: {err}");
    }
    let err = lstm().forward_padded(x(), &[3, 4], None).unwrap_err();
    assert!(
        err.to_string().contains("1..=3") && err.to_string().contains('4'),
        "{err}"
    );
}

#[test]
fn padding_masks_must_be_suffixes() {
    let device = Default::default();
    let mask = |rows: Vec<bool>| Tensor::<B, 2, Bool>::from_data(TensorData::new(rows, [2, 3]), &device);
    assert_eq!(
        lengths_from_padding_mask(mask(vec![false, false, true, false, false, false])).unwrap(),
        vec![2, 3]
    );
    assert!(matches!(
        lengths_from_padding_mask(mask(vec![false, true, false, false, false, false])),
        Err(Error::Lengths(_))
    ));
    assert!(matches!(
        lengths_from_padding_mask(mask(vec![true, true, true, false, false, false])),
        Err(Error::Lengths(_))
    ));
}

#[test]
fn invalid_configurations_are_errors() {
    let d = Default::default();
    assert!(matches!(
        LstmConfig::new(0, 6).init::<B>(&d),
        Err(Error::Config { .. })
    ));
    assert!(matches!(
        LstmConfig::new(4, 6).with_proj_size(6).init::<B>(&d),
        Err(Error::Config { .. })
    ));
    assert!(matches!(
        GruConfig::new(4, 6).with_dropout(1.0).init::<B>(&d),
        Err(Error::Config { .. })
    ));
    assert!(matches!(
        RnnConfig::new(4, 6).with_num_layers(0).init::<B>(&d),
        Err(Error::Config { .. })
    ));
}

/// The fixture of a 2-layer bidirectional LSTM with proj_size 3 (input 4, hidden 6).
fn proj_weights() -> std::path::PathBuf {
    fixture_path("recurrent/lstm_2l_bi_proj.weights.safetensors")
}

#[test]
fn a_missing_key_is_named() {
    // Without projection the module has no weight_hr_*, and its weight_hh has another shape;
    // a one-layer module lacks nothing but has unexpected keys.
    let one_layer = LstmConfig::new(4, 6).with_bidirectional(true).with_proj_size(3);
    let err = one_layer
        .init::<B>(&Default::default())
        .unwrap()
        .load_pytorch_file(proj_weights())
        .unwrap_err();
    match err {
        Error::StateDict { report, .. } => assert!(
            report.unexpected.contains(&"weight_ih_l1".to_string()),
            "{report:?}"
        ),
        other => panic!("expected unexpected keys, got {other:?}"),
    }
    let three_layers = one_layer.with_num_layers(3);
    let err = three_layers
        .init::<B>(&Default::default())
        .unwrap()
        .load_pytorch_file(proj_weights())
        .unwrap_err();
    match err {
        Error::StateDict { report, .. } => {
            assert!(
                report.missing.contains(&"weight_hh_l2_reverse".to_string()),
                "{report:?}"
            )
        }
        other => panic!("expected missing keys, got {other:?}"),
    }
}

#[test]
fn a_shape_mismatch_names_the_key_and_both_shapes() {
    let wrong_hidden = LstmConfig::new(4, 8)
        .with_num_layers(2)
        .with_bidirectional(true)
        .with_proj_size(3);
    let err = wrong_hidden
        .init::<B>(&Default::default())
        .unwrap()
        .load_pytorch_file(proj_weights())
        .unwrap_err();
    match &err {
        Error::StateDict { report, .. } => {
            let ShapeMismatch { key, expected, found } = &report.mismatched[0];
            assert!(key.ends_with("_l0") || key.contains("_l0"), "{key}");
            assert_ne!(expected, found);
        }
        other => panic!("expected a key shape error, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("[32, 4]") && msg.contains("[24, 4]"), "{msg}");
}

#[test]
fn a_prefix_selects_a_submodule_and_wrong_prefixes_fail() {
    let dict = StateDict::from_file(proj_weights()).unwrap();
    let cfg = LstmConfig::new(4, 6)
        .with_num_layers(2)
        .with_bidirectional(true)
        .with_proj_size(3);
    assert!(
        cfg.init::<B>(&Default::default())
            .unwrap()
            .load_state_dict(&dict, "")
            .is_ok()
    );
    let err = cfg
        .init::<B>(&Default::default())
        .unwrap()
        .load_state_dict(&dict, "encoder.")
        .unwrap_err();
    assert!(
        matches!(&err, Error::StateDict { report, .. } if !report.missing.is_empty()),
        "{err}"
    );
}

#[test]
fn corrupt_and_absent_files_are_load_errors() {
    let dir = std::env::temp_dir().join(format!("ember-lm-errors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let corrupt = dir.join("corrupt.safetensors");
    std::fs::write(&corrupt, b"\x10\x00\x00\x00\x00\x00\x00\x00{not json").unwrap();
    let pt = dir.join("corrupt.pt");
    std::fs::write(&pt, b"PK\x03\x04 this is not a zip").unwrap();
    for path in [corrupt, pt, dir.join("absent.safetensors")] {
        let err = lstm().load_pytorch_file(&path).unwrap_err();
        assert!(matches!(&err, Error::Load { path: p, .. } if p == &path), "{err}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn attention_configuration_and_shape_errors() {
    use ember_lm::nn::{AttentionMasks, MultiHeadAttentionConfig};
    let d = Default::default();
    assert!(matches!(
        MultiHeadAttentionConfig::new(10, 3).init::<B>(&d),
        Err(Error::Config { .. })
    ));
    assert!(matches!(
        MultiHeadAttentionConfig::new(8, 4)
            .with_n_kv_heads(Some(3))
            .init::<B>(&d),
        Err(Error::Config { .. })
    ));
    let mha = MultiHeadAttentionConfig::new(8, 2).init::<B>(&d).unwrap();
    let err = mha
        .forward_self(zeros([2, 3, 6]), &AttentionMasks::default(), false)
        .unwrap_err();
    assert!(
        matches!(&err, Error::Shape { found, .. } if found == &vec![2, 3, 6]),
        "{err}"
    );
    let bad_padding = AttentionMasks {
        key_padding: Some(Tensor::<B, 2, Bool>::from_data(
            TensorData::new(vec![false; 8], [2, 4]),
            &d,
        )),
        ..Default::default()
    };
    let err = mha
        .forward_self(zeros([2, 3, 8]), &bad_padding, false)
        .unwrap_err();
    assert!(
        err.to_string().contains("[2, 3]") && err.to_string().contains("[2, 4]"),
        "{err}"
    );
    let err = mha
        .forward(
            zeros([2, 3, 8]),
            zeros([2, 4, 8]),
            zeros([2, 5, 8]),
            &AttentionMasks::default(),
            false,
        )
        .unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
}
