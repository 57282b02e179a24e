//! Speech training: the character alphabet, batches of features (padding, bucketing, SpecAugment
//! reproducible from the seed), the CTC task's typed errors (an utterance too short for its
//! transcript after subsampling, a label outside the alphabet, a batch of the wrong width), and
//! a recogniser trained by the `Trainer` on espeak-ng voices that transcribes voices it never
//! heard.
#![cfg(feature = "ndarray")]

mod common;

use burn::backend::{Autodiff, NdArray};
use burn::module::AutodiffModule;
use ember_lm::Error;
use ember_lm::data::Batches;
use ember_lm::speech::{
    CharAlphabet, Decoding, SpecAugment, SpeechBatch, SpeechBatches, SpeechRecognizerConfig,
};
use ember_lm::train::{CtcTask, Task};

type B = Autodiff<NdArray>;

#[test]
fn the_recognizer_learns_two_utterances_on_ndarray() {
    common::speech::check_learns_two_utterances::<B>(&Default::default());
}

#[test]
fn the_alphabet_encodes_decodes_and_refuses_what_it_lacks() {
    let alphabet = CharAlphabet::from_transcripts(["one two", "three"]).unwrap();
    assert_eq!(alphabet.chars(), &[' ', 'e', 'h', 'n', 'o', 'r', 't', 'w']);
    assert_eq!(alphabet.classes(), 9);
    // Class 0 is the blank, then the sorted characters: ' ' 1, 'e' 2, 'h' 3, 'n' 4, 'o' 5, 'r' 6,
    // 't' 7, 'w' 8; so "one two" is o n e ␣ t w o = 5 4 2 1 7 8 5.
    let labels = alphabet.encode("one two").unwrap();
    assert_eq!(labels, vec![5, 4, 2, 1, 7, 8, 5]);
    assert_eq!(alphabet.decode(&labels), "one two");
    // Blanks and labels outside the alphabet decode to nothing.
    assert_eq!(alphabet.decode(&[0, 5, 0, 99, 4]), "on");
    // A character outside the alphabet is named with its position, never dropped.
    let err = alphabet.encode("one four").unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::Data(_)), "{err:?}");
    assert!(
        message.contains("'f'") && message.contains("position 4"),
        "{message}"
    );
    assert!(alphabet.encode("").is_err());
    assert!(matches!(
        CharAlphabet::new("abca".chars()),
        Err(Error::Config { .. })
    ));
    assert!(matches!(CharAlphabet::new([]), Err(Error::Config { .. })));
    // Saved and loaded; a file that is not an alphabet is a load error.
    let dir = std::env::temp_dir().join(format!("ember-alphabet-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    alphabet.save(dir.join("a.json")).unwrap();
    assert_eq!(CharAlphabet::load(dir.join("a.json")).unwrap(), alphabet);
    std::fs::write(dir.join("bad.json"), r#"{"chars": ["a", "a"]}"#).unwrap();
    assert!(matches!(
        CharAlphabet::load(dir.join("bad.json")),
        Err(Error::Load { .. })
    ));
    std::fs::write(dir.join("bad.json"), "not json").unwrap();
    assert!(matches!(
        CharAlphabet::load(dir.join("bad.json")),
        Err(Error::Load { .. })
    ));
    std::fs::remove_dir_all(&dir).ok();
}

/// Utterance `i` of `frames` frames of 3 dims, every value `i + 1` (so padding, 0, shows).
fn utterance(i: usize, frames: usize) -> Vec<f32> {
    vec![(i + 1) as f32; frames * 3]
}

#[test]
fn batches_pad_cover_every_utterance_and_augment_reproducibly() {
    let alphabet = CharAlphabet::new("ab".chars()).unwrap();
    let frames = [5, 9, 2, 7, 4, 6, 8];
    let features: Vec<Vec<f32>> = frames.iter().enumerate().map(|(i, &f)| utterance(i, f)).collect();
    let texts: Vec<String> = (0..7)
        .map(|i| if i % 2 == 0 { "ab" } else { "ba" }.to_string())
        .collect();
    let data = SpeechBatches::new(features.clone(), texts.clone(), 3, &alphabet, 3).unwrap();
    assert_eq!((data.len(), data.num_batches(), data.dims()), (7, 3, 3));
    assert_eq!(data.frames(), frames.to_vec());
    let mut seen = Vec::new();
    for index in 0..3 {
        let b = data.get(2, index, 11).unwrap();
        assert_eq!(b.frames, *b.lengths.iter().max().unwrap());
        assert_eq!(b.features.len(), b.batch * b.frames * 3);
        for row in 0..b.batch {
            // Identify the utterance by its value; its frames are its own, zeros after.
            let values = &b.features[row * b.frames * 3..(row + 1) * b.frames * 3];
            let id = values[0] as usize - 1;
            assert_eq!(b.lengths[row], frames[id]);
            assert!(values[..frames[id] * 3].iter().all(|&v| v == (id + 1) as f32));
            assert!(values[frames[id] * 3..].iter().all(|&v| v == 0.0));
            assert_eq!(b.texts[row], texts[id]);
            assert_eq!(b.targets[row], alphabet.encode(&texts[id]).unwrap());
            seen.push(id);
        }
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..7).collect::<Vec<_>>());
    // SpecAugment: the same (seed, epoch) gives the same masks, another epoch others.
    let augment = SpecAugment {
        freq_masks: 1,
        freq_width: 2,
        time_masks: 1,
        time_width: 3,
        max_time_ratio: 0.5,
        fill: -1.0,
    };
    let augmented = data.clone().with_spec_augment(Some(augment));
    let epoch = |e: u64| {
        (0..3)
            .map(|i| augmented.get(e, i, 11).unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(epoch(2), epoch(2));
    assert_ne!(epoch(2), epoch(3));
    let masked = epoch(2)
        .iter()
        .flat_map(|b| b.features.clone())
        .filter(|&v| v == -1.0)
        .count();
    assert!(masked > 0, "no value was masked");
    // Without shuffling, epochs are the same batches.
    let fixed = data.clone().with_shuffle(false);
    assert_eq!(fixed.get(0, 1, 1).unwrap(), fixed.get(5, 1, 99).unwrap());
    // A validation split keeps the settings.
    let (train, valid) = data.clone().split_tail(2).unwrap();
    assert_eq!((train.len(), valid.len()), (5, 2));
    assert!(data.clone().split_tail(7).is_err());
    // Bad sets are typed errors.
    assert!(matches!(
        SpeechBatches::new(features.clone(), texts.clone(), 3, &alphabet, 0),
        Err(Error::Config { .. })
    ));
    assert!(SpeechBatches::new(features.clone(), texts[..6].to_vec(), 3, &alphabet, 2).is_err());
    assert!(SpeechBatches::new(features.clone(), texts.clone(), 4, &alphabet, 2).is_err());
    let mut nan = features.clone();
    nan[3][1] = f32::NAN;
    assert!(matches!(
        SpeechBatches::new(nan, texts.clone(), 3, &alphabet, 2),
        Err(Error::NotFinite { .. })
    ));
    let mut foreign = texts.clone();
    foreign[4] = "abc".into();
    let err = SpeechBatches::new(features, foreign, 3, &alphabet, 2).unwrap_err();
    assert!(
        err.to_string().contains("utterance 4") && err.to_string().contains("'c'"),
        "{err}"
    );
    assert!(SpeechBatch::unlabelled(&[], 3).is_err());
    assert!(SpeechBatch::unlabelled(&[vec![1.0; 4]], 3).is_err());
}

#[test]
fn the_ctc_task_refuses_short_utterances_foreign_labels_and_wrong_widths() {
    let device = Default::default();
    let config = SpeechRecognizerConfig::new(8, 4)
        .with_conv_channels(2)
        .with_hidden_size(4)
        .with_num_layers(1)
        .with_dropout(0.0);
    let model = config.init::<B>(&device).unwrap();
    let task = CtcTask::new(config);
    let alphabet = CharAlphabet::new("abc".chars()).unwrap();
    let batch = |frames: usize, text: &str| {
        SpeechBatches::new(vec![vec![0.5; frames * 8]], vec![text.into()], 8, &alphabet, 1)
            .unwrap()
            .get(0, 0, 0)
            .unwrap()
    };
    // 4 frames are 1 after the 4× subsampling: too few for 2 labels.
    let err = task.train_step(&model, &batch(4, "ab"), None).err().unwrap();
    let message = err.to_string();
    assert!(matches!(err, Error::Data(_)), "{err:?}");
    assert!(
        message.contains("utterance 0") && message.contains("\"ab\"") && message.contains("subsampling"),
        "{message}"
    );
    // A repeated label needs a blank between: "aa" needs 3 frames, 8 input frames give 2.
    assert!(task.train_step(&model, &batch(8, "aa"), None).is_err());
    let ok = task.train_step(&model, &batch(12, "aa"), None).unwrap();
    assert!(ok.loss.into_scalar().is_finite());
    // A label outside the model's classes (a batch made for a larger alphabet).
    let mut wide = batch(12, "ab");
    wide.targets[0] = vec![1, 7];
    assert!(matches!(
        task.train_step(&model, &wide, None),
        Err(Error::Index { index: 7, .. })
    ));
    // Features of another width, and an unlabelled batch.
    let narrow = SpeechBatch::unlabelled(&[vec![0.0; 12 * 6]], 6).unwrap();
    assert!(matches!(
        task.train_step(&model, &narrow, None),
        Err(Error::Shape { .. })
    ));
    let unlabelled = SpeechBatch::unlabelled(&[vec![0.0; 12 * 8]], 8).unwrap();
    assert!(matches!(
        task.train_step(&model, &unlabelled, None),
        Err(Error::Data(_))
    ));
    // Transcription needs the model's alphabet.
    let valid = model.valid();
    let other = CharAlphabet::new("abcd".chars()).unwrap();
    assert!(matches!(
        valid.transcribe(&unlabelled, &other, Decoding::Greedy),
        Err(Error::Config { .. })
    ));
    assert_eq!(
        valid
            .transcribe(&unlabelled, &alphabet, Decoding::Greedy)
            .unwrap()
            .len(),
        1
    );
}

/// Real speech end to end: espeak-ng speaks the ten digit words in the training voices, the
/// `Trainer` trains a small recogniser with `CtcTask` on filterbank features, and the model
/// transcribes the held-out voices greedily and with the beam and a character n-gram model.
/// On Flex: burn-ndarray's convolutions are slow in an unoptimised test build.
#[cfg(feature = "flex")]
#[test]
fn a_recognizer_trained_on_espeak_voices_transcribes_held_out_voices() {
    use ember_lm::optim::{LrSchedule, OptimizerConfig};
    use ember_lm::speech::{BeamOptions, FeatureExtractor, KaldiFbank, NgramLm, SynthConfig, synthesize};
    use ember_lm::train::{ProgressMode, Trainer, TrainerConfig};
    type B = Autodiff<burn::backend::Flex>;
    let device = Default::default();
    let dir = std::env::temp_dir().join(format!("ember-speech-train-{}", std::process::id()));
    // espeak-ng's own rate, so that nothing is resampled (slow in an unoptimised build).
    let set = synthesize(
        &dir,
        &SynthConfig {
            train_utterances: 240,
            test_utterances: 40,
            sample_rate: 22050,
            digits: (1, 1),
            command_share: 0.0,
            seed: 3,
        },
    )
    .unwrap();
    let features = FeatureExtractor::Fbank(KaldiFbank {
        sample_rate: 22050,
        ..KaldiFbank::default()
    });
    let train_texts: Vec<String> = ember_lm::speech::read_manifest(&set.train)
        .unwrap()
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    let alphabet = CharAlphabet::from_transcripts(train_texts.iter().map(String::as_str)).unwrap();
    let train = SpeechBatches::from_manifest(&set.train, &features, &alphabet, 8).unwrap();
    let test = SpeechBatches::from_manifest(&set.test, &features, &alphabet, 20)
        .unwrap()
        .with_shuffle(false);
    let config = SpeechRecognizerConfig::new(features.dims(), alphabet.classes())
        .with_conv_channels(8)
        .with_hidden_size(48)
        .with_num_layers(1)
        .with_dropout(0.0);
    let mut trainer = Trainer::new(
        TrainerConfig::new()
            .with_max_epochs(Some(30))
            .with_seed(1)
            .with_progress(ProgressMode::Off),
        CtcTask::new(config.clone()),
        config.init::<B>(&device).unwrap(),
        &OptimizerConfig::adamw().with_lr(5e-3),
        LrSchedule::Constant,
        &device,
    )
    .unwrap();
    let report = trainer.fit(&train, Some(&test)).unwrap();
    let model = trainer.model().valid();
    let greedy = model.evaluate(&test, &alphabet, Decoding::Greedy).unwrap();
    let sequences: Vec<Vec<u32>> = train_texts.iter().map(|t| alphabet.encode(t).unwrap()).collect();
    let lm = NgramLm::train(&sequences, 4, alphabet.classes(), 0.1).unwrap();
    let beam = model
        .evaluate(
            &test,
            &alphabet,
            Decoding::Beam {
                options: BeamOptions::default(),
                lm: Some(&lm),
            },
        )
        .unwrap();
    // Untrained, every word is wrong (WER 1); this set reaches about 0.12 on one machine.
    let exact = report.last_valid.unwrap().acc.unwrap();
    assert!(
        greedy.wer.rate < 0.3 && exact > 0.6,
        "greedy WER {}, exact {exact}: {:?}",
        greedy.wer.rate,
        greedy.transcripts
    );
    assert!(
        beam.wer.rate <= greedy.wer.rate + 0.05,
        "beam WER {}",
        beam.wer.rate
    );
    assert_eq!(greedy.transcripts.len(), 40);
    std::fs::remove_dir_all(&dir).ok();
}
