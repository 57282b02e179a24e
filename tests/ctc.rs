//! CTC: the loss and its gradients against `torch.nn.functional.ctc_loss`
//! (`tests/fixtures/make_ctc.py`: ragged lengths, repeated labels, an empty target, a blank that
//! is not 0, impossible alignments with and without `zero_infinity`, three reductions) on NdArray
//! and Flex, the kernel against the tensor-op composition, decoding on hand-made posteriors,
//! word and character error rates against jiwer, and bad input.

mod common;

use burn::backend::{Autodiff, NdArray};
use burn::tensor::Tensor;
use burn::tensor::activation::log_softmax;
use common::ctc::{case, check_against_pytorch};
use common::{Fixture, assert_close};
use ember_lm::Error;
use ember_lm::backend::{CtcArgs, composed_ctc};
use ember_lm::eval::{char_error_rate, word_error_rate};
use ember_lm::nn::{CtcLossConfig, Reduction};
use ember_lm::speech::{BeamOptions, NgramLm, greedy_decode, prefix_beam_search};

#[test]
fn ndarray_matches_pytorch() {
    check_against_pytorch::<Autodiff<NdArray>>(&Default::default(), (1e-5, 1e-4));
}

#[cfg(feature = "flex")]
#[test]
fn flex_matches_pytorch() {
    check_against_pytorch::<Autodiff<burn::backend::Flex>>(&Default::default(), (1e-5, 1e-4));
}

/// PyTorch's gradient with respect to the log-probabilities themselves (`exp(lp) - occupation`),
/// from the CPU kernel, and the tensor-op composition's loss and logits gradient against the
/// kernel's.
#[test]
fn the_kernel_gives_pytorch_log_prob_gradients_and_the_composition_agrees() {
    type B = Autodiff<NdArray>;
    let device = Default::default();
    let f = Fixture::load("ctc/cases.safetensors");
    for name in ["ragged", "blank_last", "long", "impossible_zero"] {
        let c = case(&f, name);
        let lp = log_softmax(Tensor::<NdArray, 3>::from_data(c.logits.clone(), &device), 2);
        let lp = Tensor::<B, 3>::from_inner(lp).require_grad();
        let loss = CtcLossConfig::new()
            .with_blank(c.blank)
            .with_reduction(Reduction::Sum)
            .with_zero_infinity(c.zero_infinity)
            .init()
            .forward(lp.clone(), &c.targets, &c.input_lengths)
            .unwrap();
        let g = lp.grad(&loss.backward()).unwrap();
        assert_close(
            &format!("{name} grad log_probs"),
            g.into_data().convert::<f64>(),
            f.data(&format!("{name}.sum.grad_log_probs")),
            1e-5,
            1e-4,
        );
        // The composition (what wgpu runs), differentiated by autodiff, on the logits.
        let logits = Tensor::<B, 3>::from_data(c.logits.clone(), &device).require_grad();
        let composed = composed_ctc(CtcArgs {
            log_probs: log_softmax(logits.clone(), 2),
            targets: c.targets.clone().into(),
            input_lengths: c.input_lengths.clone().into(),
            blank: c.blank,
            zero_infinity: c.zero_infinity,
        });
        assert_close(
            &format!("{name} composed loss"),
            composed.clone().into_data().convert::<f64>(),
            f.data(&format!("{name}.none.loss")),
            1e-5,
            1e-4,
        );
        let g = logits.grad(&composed.sum().backward()).unwrap();
        assert_close(
            &format!("{name} composed grad"),
            g.into_data().convert::<f64>(),
            f.data(&format!("{name}.sum.grad_logits")),
            1e-4,
            1e-3,
        );
    }
}

#[test]
fn bad_targets_and_lengths_are_typed_errors() {
    type B = NdArray;
    let device = Default::default();
    let lp = log_softmax(Tensor::<B, 3>::zeros([2, 5, 4], &device), 2);
    let ctc = CtcLossConfig::new().init();
    let ok = ctc.forward(lp.clone(), &[vec![1, 2], vec![3]], &[5, 4]);
    assert!(ok.is_ok());
    // A label outside the classes, the blank as a label, lengths of the wrong count or size.
    assert!(matches!(
        ctc.forward(lp.clone(), &[vec![1, 4], vec![3]], &[5, 4]),
        Err(Error::Index { index: 4, .. })
    ));
    assert!(matches!(
        ctc.forward(lp.clone(), &[vec![0], vec![3]], &[5, 4]),
        Err(Error::Index { index: 0, .. })
    ));
    assert!(matches!(
        ctc.forward(lp.clone(), &[vec![1]], &[5, 4]),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        ctc.forward(lp.clone(), &[vec![1], vec![2]], &[5, 6]),
        Err(Error::Data(_))
    ));
    assert!(matches!(
        ctc.forward(lp.clone(), &[vec![1], vec![2]], &[0, 5]),
        Err(Error::Data(_))
    ));
    let blank = CtcLossConfig::new().with_blank(4).init();
    assert!(matches!(
        blank.forward(lp, &[vec![1], vec![2]], &[5, 5]),
        Err(Error::Config { .. })
    ));
}

/// Log-probabilities of hand-made per-frame distributions over `classes`.
fn posteriors(rows: &[&[f32]]) -> Vec<f32> {
    rows.iter().flat_map(|r| r.iter().map(|p| p.ln())).collect()
}

#[test]
fn decoding_finds_the_known_answers() {
    // Classes: 0 blank, 1 "a", 2 "b". Frames: a a _ a b b.
    let lp = posteriors(&[
        &[0.1, 0.8, 0.1],
        &[0.1, 0.8, 0.1],
        &[0.8, 0.1, 0.1],
        &[0.1, 0.8, 0.1],
        &[0.1, 0.1, 0.8],
        &[0.2, 0.1, 0.7],
    ]);
    let g = greedy_decode(&lp, 3, 0).unwrap();
    assert_eq!(
        (g.tokens.clone(), g.frames.clone()),
        (vec![1, 1, 2], vec![0, 3, 4])
    );
    let beams = prefix_beam_search(&lp, 3, 0, BeamOptions::default(), None).unwrap();
    assert_eq!(beams[0].tokens, vec![1, 1, 2]);
    assert_eq!(beams[0].frames, vec![0, 3, 4]);

    // Where the best path and the best labelling differ: two frames where "a" is 0.4 and blank
    // 0.6 each. The best path is blank-blank (0.36, empty output), but "a" (a_, _a, aa) has
    // 0.24 + 0.24 + 0.16 = 0.64: beam search finds it, greedy does not.
    let lp = posteriors(&[&[0.6, 0.4], &[0.6, 0.4]]);
    assert!(greedy_decode(&lp, 2, 0).unwrap().tokens.is_empty());
    let beams = prefix_beam_search(&lp, 2, 0, BeamOptions::default(), None).unwrap();
    assert_eq!(beams[0].tokens, vec![1]);
    assert!((beams[0].score - 0.64f64.ln()).abs() < 1e-6, "{}", beams[0].score);
    assert!((beams[1].score - 0.36f64.ln()).abs() < 1e-6);

    // A language model that knows "b" follows "a" turns an ambiguous second frame its way.
    let lp = posteriors(&[
        &[0.05, 0.9, 0.025, 0.025],
        &[0.05, 0.025, 0.47, 0.455],
        &[0.9, 0.05, 0.025, 0.025],
    ]);
    let plain = prefix_beam_search(&lp, 4, 0, BeamOptions::default(), None).unwrap();
    assert_eq!(plain[0].tokens, vec![1, 2]);
    let lm = NgramLm::train(&[vec![1, 3], vec![1, 3], vec![1, 3]], 2, 4, 0.1).unwrap();
    let options = BeamOptions {
        lm_weight: 1.0,
        ..Default::default()
    };
    let with_lm = prefix_beam_search(&lp, 4, 0, options, Some(&lm)).unwrap();
    assert_eq!(with_lm[0].tokens, vec![1, 3]);

    // Bad input.
    assert!(matches!(greedy_decode(&[0.0; 5], 2, 0), Err(Error::Data(_))));
    assert!(matches!(
        greedy_decode(&[f32::NAN, 0.0], 2, 0),
        Err(Error::NotFinite { .. })
    ));
    let zero = BeamOptions {
        beam_width: 0,
        ..Default::default()
    };
    assert!(matches!(
        prefix_beam_search(&[0.0, 0.0], 2, 0, zero, None),
        Err(Error::Config { .. })
    ));
}

#[test]
fn error_rates_match_jiwer() {
    let cases = common::json_fixture("eval/wer.json");
    for case in cases.as_array().unwrap() {
        let refs = common::json_strings(&case["refs"]);
        let hyps = common::json_strings(&case["hyps"]);
        let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
        let hyps: Vec<&str> = hyps.iter().map(String::as_str).collect();
        for (kind, rate) in [
            ("wer", word_error_rate(&refs, &hyps).unwrap()),
            ("cer", char_error_rate(&refs, &hyps).unwrap()),
        ] {
            let want = case[kind].as_f64().unwrap();
            assert!(
                (rate.rate - want).abs() < 1e-12,
                "{kind} {refs:?} {hyps:?}: {} vs {want}",
                rate.rate
            );
            let counts = &case[if kind == "wer" { "words" } else { "chars" }];
            let counts: Vec<usize> = counts
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as usize)
                .collect();
            assert_eq!(
                rate.substitutions + rate.deletions + rate.insertions,
                counts[0] + counts[1] + counts[2],
                "{kind} {refs:?} {hyps:?}"
            );
            assert_eq!(
                rate.hits + rate.substitutions + rate.deletions,
                counts[3] + counts[0] + counts[1]
            );
        }
    }
    assert!(matches!(word_error_rate(&["a"], &[]), Err(Error::Data(_))));
}
