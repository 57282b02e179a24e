//! Speech: audio features and resampling against torchaudio's formulas, WAV reading, and CTC: the
//! loss and its gradients against `torch.nn.functional.ctc_loss`
//! (`tests/fixtures/make_ctc.py`: ragged lengths, repeated labels, an empty target, a blank that
//! is not 0, impossible alignments with and without `zero_infinity`, three reductions) on NdArray
//! and Flex, the kernel against the tensor-op composition, decoding on hand-made posteriors,
//! word and character error rates against jiwer, and bad input.

mod common;

use burn::backend::{Autodiff, NdArray};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Tensor, TensorData};
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

/// Features against torchaudio's formulas (`tests/fixtures/make_audio.py`): the mel spectrogram
/// (HTK and Slaney), Kaldi's filterbank, and resampling, on a chirp, noise and a synthesised word,
/// to 1e-4 relative.
#[test]
fn features_and_resampling_match_torchaudio() {
    use ember_lm::speech::{KaldiFbank, MelScale, MelSpectrogram, read_wav, resample};
    let f = Fixture::load("audio/features.safetensors");
    let wav = |name: &str| read_wav(common::fixture_path(&format!("audio/{name}.wav"))).unwrap();
    let (chirp, noise, seven) = (wav("chirp"), wav("noise"), wav("seven"));
    assert_eq!((chirp.sample_rate, seven.sample_rate), (16000, 22050));
    let close = |what: &str, got: Vec<f32>, key: &str, atol: f64| {
        let want = f.data(key);
        assert_close(
            what,
            TensorData::new(got, want.shape.clone()).convert::<f64>(),
            want,
            atol,
            1e-4,
        );
    };
    close(
        "mel default",
        MelSpectrogram::default().compute(&chirp.samples).unwrap(),
        "mel_default",
        1e-6,
    );
    let slaney = MelSpectrogram {
        n_fft: 512,
        hop_length: 160,
        n_mels: 40,
        f_min: 20.0,
        f_max: Some(7600.0),
        power: 1.0,
        mel_scale: MelScale::Slaney,
        slaney_norm: true,
        ..Default::default()
    };
    close(
        "mel slaney",
        slaney.compute(&noise.samples).unwrap(),
        "mel_slaney",
        1e-6,
    );
    let scaled = |a: &[f32]| a.iter().map(|v| v * 32768.0).collect::<Vec<_>>();
    let fbank = KaldiFbank {
        sample_rate: 22050,
        ..Default::default()
    };
    close(
        "fbank default",
        fbank.compute(&scaled(&seven.samples)).unwrap(),
        "fbank_default",
        1e-4,
    );
    let fbank40 = KaldiFbank {
        num_mel_bins: 40,
        ..Default::default()
    };
    close(
        "fbank 40",
        fbank40.compute(&scaled(&chirp.samples)).unwrap(),
        "fbank_40",
        1e-4,
    );
    close(
        "resample 22050 -> 16000",
        resample(&seven.samples, 22050, 16000).unwrap(),
        "seven_16k",
        1e-5,
    );
    close(
        "resample 16000 -> 8000",
        resample(&chirp.samples, 16000, 8000).unwrap(),
        "chirp_8k",
        1e-5,
    );
    close(
        "resample 16000 -> 22050",
        resample(&noise.samples, 16000, 22050).unwrap(),
        "noise_22k",
        1e-5,
    );
}

#[test]
fn bad_audio_is_a_typed_error() {
    use ember_lm::speech::{Audio, KaldiFbank, MelSpectrogram, read_wav, write_wav};
    let dir = std::env::temp_dir().join(format!("ember-audio-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Not a WAV, a truncated WAV, a missing file.
    std::fs::write(dir.join("text.wav"), b"this is not audio").unwrap();
    assert!(matches!(read_wav(dir.join("text.wav")), Err(Error::Load { .. })));
    let bytes = std::fs::read(common::fixture_path("audio/chirp.wav")).unwrap();
    std::fs::write(dir.join("cut.wav"), &bytes[..bytes.len() / 2 + 1]).unwrap();
    assert!(matches!(read_wav(dir.join("cut.wav")), Err(Error::Load { .. })));
    std::fs::write(dir.join("header.wav"), &bytes[..30]).unwrap();
    assert!(matches!(
        read_wav(dir.join("header.wav")),
        Err(Error::Load { .. })
    ));
    assert!(matches!(
        read_wav(dir.join("missing.wav")),
        Err(Error::Load { .. })
    ));
    // A round trip through 16-bit PCM.
    let audio = Audio {
        samples: vec![0.0, 0.5, -0.5, 0.25],
        sample_rate: 8000,
    };
    write_wav(dir.join("round.wav"), &audio).unwrap();
    let back = read_wav(dir.join("round.wav")).unwrap();
    assert_eq!(back.sample_rate, 8000);
    assert!(
        back.samples
            .iter()
            .zip(&audio.samples)
            .all(|(a, b)| (a - b).abs() < 1e-4)
    );
    // Too short for a frame, bad settings.
    assert!(matches!(
        KaldiFbank::default().compute(&[0.0; 100]),
        Err(Error::Data(_))
    ));
    assert!(matches!(
        MelSpectrogram::default().compute(&[0.0; 100]),
        Err(Error::Data(_))
    ));
    let bad = MelSpectrogram {
        f_max: Some(9000.0),
        ..Default::default()
    };
    assert!(matches!(bad.compute(&[0.0; 1000]), Err(Error::Config { .. })));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn utterance_normalisation_and_spec_augment() {
    use ember_lm::data::SplitMix64;
    use ember_lm::speech::{SpecAugment, normalize_utterance};
    let dims = 4;
    let mut x: Vec<f32> = (0..40)
        .map(|i| (i % 4) as f32 * 3.0 + (i / 4) as f32 * 0.5 + if i % 4 == 3 { -100.0 } else { 0.0 })
        .collect();
    // Dimension 2 made constant: it becomes 0.
    for t in 0..10 {
        x[t * dims + 2] = 7.0;
    }
    normalize_utterance(&mut x, dims);
    for d in 0..dims {
        let v: Vec<f64> = x.iter().skip(d).step_by(dims).map(|&v| v as f64).collect();
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|a| (a - mean) * (a - mean)).sum::<f64>() / v.len() as f64;
        assert!(mean.abs() < 1e-6, "dim {d}: mean {mean}");
        assert!(
            if d == 2 {
                var == 0.0
            } else {
                (var - 1.0).abs() < 1e-5
            },
            "dim {d}: var {var}"
        );
    }
    let aug = SpecAugment {
        freq_masks: 1,
        freq_width: 2,
        time_masks: 1,
        time_width: 100,
        max_time_ratio: 0.3,
        fill: 9.0,
    };
    let mut y = vec![1.0f32; 80 * 10];
    aug.apply(&mut y, 10, &mut SplitMix64::new(3));
    let mut again = vec![1.0f32; 80 * 10];
    aug.apply(&mut again, 10, &mut SplitMix64::new(3));
    assert_eq!(y, again, "the masks come from the generator alone");
    // The time mask spans at most 30% of the 80 frames; the frequency band at most 2 dimensions.
    let masked_frames = (0..80)
        .filter(|t| y[t * 10..t * 10 + 10].iter().all(|&v| v == 9.0))
        .count();
    assert!(masked_frames <= 24, "{masked_frames}");
    let masked_dims = (0..10)
        .filter(|d| y.iter().skip(*d).step_by(10).all(|&v| v == 9.0))
        .count();
    assert!(masked_dims <= 2, "{masked_dims}");
}

/// Frames of a synthetic utterance: each label a band of energy in its own rows of the 16
/// features for 6 to 9 frames, silence (noise) between words, Gaussian noise throughout.
fn synthetic(labels: &[u32], rng: &mut ember_lm::data::SplitMix64) -> Vec<f32> {
    let mut frames: Vec<[f32; 16]> = vec![[0.0; 16]; 3];
    for &l in labels {
        let len = 6 + rng.below(4) as usize;
        for _ in 0..len {
            let mut f = [0.0f32; 16];
            for (d, v) in f.iter_mut().enumerate() {
                if d / 4 == (l as usize - 1) {
                    *v = 2.0;
                }
            }
            frames.push(f);
        }
        frames.push([0.0; 16]);
    }
    frames.extend([[0.0; 16]; 3]);
    let mut out = Vec::with_capacity(frames.len() * 16);
    for f in &frames {
        for v in f {
            out.push(v + 0.3 * (rng.next_f64() as f32 - 0.5));
        }
    }
    out
}

/// The recogniser learns to transcribe synthetic utterances of four "phones" (with a repeated
/// one, which CTC must separate by a blank) and decodes held-out ones: convolutions,
/// bidirectional LSTM, CTC and greedy decoding together.
#[test]
fn a_small_recognizer_learns_to_transcribe() {
    use burn::backend::Autodiff;
    use burn::optim::GradientsParams;
    use ember_lm::data::SplitMix64;
    use ember_lm::optim::OptimizerConfig;
    use ember_lm::speech::SpeechRecognizerConfig;
    type B = Autodiff<NdArray>;
    let device = Default::default();
    <NdArray as burn::prelude::Backend>::seed(&device, 9);
    let words: [&[u32]; 6] = [&[1, 2], &[3, 4, 1], &[2, 2, 3], &[4], &[1, 3, 2, 4], &[3, 1]];
    let config = SpeechRecognizerConfig::new(16, 5)
        .with_conv_channels(8)
        .with_hidden_size(32)
        .with_num_layers(1)
        .with_dropout(0.0);
    let mut model = config.init::<B>(&device).unwrap();
    let mut optim = OptimizerConfig::adam()
        .with_lr(1e-2)
        .init::<B, _>(&model)
        .unwrap();
    let ctc = CtcLossConfig::new().init();
    let mut rng = SplitMix64::new(1);
    let batch = |rng: &mut SplitMix64| {
        let utts: Vec<Vec<f32>> = words.iter().map(|w| synthetic(w, rng)).collect();
        let lengths: Vec<usize> = utts.iter().map(|u| u.len() / 16).collect();
        let t = *lengths.iter().max().unwrap();
        let flat: Vec<f32> = utts
            .iter()
            .flat_map(|u| {
                u.iter()
                    .copied()
                    .chain(std::iter::repeat_n(0.0, t * 16 - u.len()))
            })
            .collect();
        (TensorData::new(flat, [words.len(), t, 16]), lengths)
    };
    let targets: Vec<Vec<u32>> = words.iter().map(|w| w.to_vec()).collect();
    let mut first = None;
    let mut last = 0.0;
    for _ in 0..150 {
        let (x, lengths) = batch(&mut rng);
        let (lp, out_lengths) = model.forward(Tensor::from_data(x, &device), &lengths).unwrap();
        let loss = ctc.forward(lp, &targets, &out_lengths).unwrap();
        last = loss.clone().into_scalar();
        first.get_or_insert(last);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(model, grads);
    }
    assert!(
        last < 0.2 * first.unwrap(),
        "CTC loss {} -> {last}",
        first.unwrap()
    );
    // Held-out draws of the same words, decoded greedily.
    let (x, lengths) = batch(&mut SplitMix64::new(77));
    let (lp, out_lengths) = model.forward(Tensor::from_data(x, &device), &lengths).unwrap();
    let [_, t, c] = lp.dims();
    let probs: Vec<f32> = lp.into_data().to_vec().unwrap();
    let (mut refs, mut hyps) = (Vec::new(), Vec::new());
    for (i, w) in words.iter().enumerate() {
        let rows = &probs[i * t * c..(i * t + out_lengths[i]) * c];
        let tokens = greedy_decode(rows, c, 0).unwrap().tokens;
        let spell = |ts: &[u32]| ts.iter().map(|t| char::from(b'a' + *t as u8)).collect::<String>();
        refs.push(spell(w));
        hyps.push(spell(&tokens));
    }
    let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
    let hyps: Vec<&str> = hyps.iter().map(String::as_str).collect();
    let cer = char_error_rate(&refs, &hyps).unwrap();
    assert!(cer.rate <= 0.1, "CER {} ({refs:?} vs {hyps:?})", cer.rate);
}

/// The synthesised dataset: espeak-ng voices, held-out test voices, WAVs at 16 kHz and
/// manifests; the same seed writes the same files; a user's manifest is checked line by line.
#[test]
fn the_synthesised_dataset_is_reproducible_and_its_manifests_read_back() {
    use ember_lm::speech::{SynthConfig, read_manifest, read_wav, synthesize};
    let base = std::env::temp_dir().join(format!("ember-synth-{}", std::process::id()));
    let config = SynthConfig {
        train_utterances: 6,
        test_utterances: 3,
        seed: 4,
        ..Default::default()
    };
    let a = synthesize(base.join("a"), &config).unwrap();
    let b = synthesize(base.join("b"), &config).unwrap();
    let train = read_manifest(&a.train).unwrap();
    let test = read_manifest(&a.test).unwrap();
    assert_eq!((train.len(), test.len()), (6, 3));
    for (path, text) in train.iter().chain(&test) {
        let audio = read_wav(path).unwrap();
        assert_eq!(audio.sample_rate, 16000);
        // A few words take more than a quarter of a second, and the signal is not silent.
        assert!(
            audio.samples.len() > 4000,
            "{text}: {} samples",
            audio.samples.len()
        );
        assert!(audio.samples.iter().any(|s| s.abs() > 0.05), "{text}");
        assert!(text.chars().all(|c| c.is_ascii_lowercase() || c == ' '), "{text}");
    }
    // The same configuration writes the same bytes.
    assert_eq!(std::fs::read(&a.train).unwrap(), std::fs::read(&b.train).unwrap());
    for (pa, pb) in train.iter().zip(read_manifest(&b.train).unwrap()) {
        assert_eq!(std::fs::read(&pa.0).unwrap(), std::fs::read(&pb.0).unwrap());
    }
    // A manifest with a line without a tab, or naming a missing file, is refused by line.
    let bad = base.join("bad.tsv");
    std::fs::write(&bad, "a/train/00000.wav\tone two\nno tab here\n").unwrap();
    let err = read_manifest(&bad).unwrap_err();
    assert!(err.to_string().contains("line 2"), "{err}");
    std::fs::write(&bad, "missing.wav\tone\n").unwrap();
    assert!(
        read_manifest(&bad)
            .unwrap_err()
            .to_string()
            .contains("does not exist")
    );
    std::fs::remove_dir_all(&base).ok();
}

/// Without autodiff (validation, inference) the CPU backends compute the losses alone; they are
/// PyTorch's, infinite and zeroed ones included.
#[test]
fn losses_without_autodiff_match_pytorch() {
    let device = Default::default();
    let f = Fixture::load("ctc/cases.safetensors");
    for name in ["ragged", "blank_last", "impossible", "impossible_zero"] {
        let c = case(&f, name);
        let lp = log_softmax(Tensor::<NdArray, 3>::from_data(c.logits.clone(), &device), 2);
        let loss = CtcLossConfig::new()
            .with_blank(c.blank)
            .with_reduction(Reduction::None)
            .with_zero_infinity(c.zero_infinity)
            .init()
            .forward(lp, &c.targets, &c.input_lengths)
            .unwrap();
        let got: Vec<f64> = loss.into_data().iter::<f64>().collect();
        let want: Vec<f64> = f.data(&format!("{name}.none.loss")).iter::<f64>().collect();
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (g.is_infinite() && w.is_infinite()) || (g - w).abs() <= 1e-5 + 1e-4 * w.abs(),
                "{name}: {got:?} vs {want:?}"
            );
        }
    }
}
