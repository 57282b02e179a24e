//! The speech model's training behaviour, generic over the backend: `CtcTask` steps with Adam
//! learn two utterances, validation counts exact transcripts, transcription decodes them.

use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use ember_lm::data::Batches;
use ember_lm::optim::OptimizerConfig;
use ember_lm::speech::{CharAlphabet, Decoding, SpeechBatches, SpeechRecognizerConfig};
use ember_lm::train::{CtcTask, Task};

/// Two utterances ("ab" in 24 frames, "ba" in 16) of 8 dims whose frames say which label they
/// hold; 40 Adam steps at 1e-2 must more than halve the CTC loss, and the model must then
/// transcribe both exactly.
pub fn check_learns_two_utterances<B: ember_lm::TrainBackend>(device: &B::Device) {
    B::seed(device, 4);
    let alphabet = CharAlphabet::new("ab".chars()).unwrap();
    let frames = |text: &str, n: usize| -> Vec<f32> {
        let labels: Vec<usize> = text.bytes().map(|b| (b - b'a') as usize).collect();
        (0..n)
            .flat_map(|t| {
                let label = labels[t * labels.len() / n];
                (0..8).map(move |d| if d % 2 == label { 1.0 } else { -1.0 })
            })
            .collect()
    };
    let data = SpeechBatches::new(
        vec![frames("ab", 24), frames("ba", 16)],
        vec!["ab".into(), "ba".into()],
        8,
        &alphabet,
        2,
    )
    .unwrap()
    .with_shuffle(false);
    let batch = data.get(0, 0, 0).unwrap();
    let config = SpeechRecognizerConfig::new(8, alphabet.classes())
        .with_conv_channels(4)
        .with_hidden_size(8)
        .with_num_layers(1)
        .with_dropout(0.0);
    let task = CtcTask::new(config.clone());
    let mut model = config.init::<B>(device).unwrap();
    let mut optim = OptimizerConfig::adam()
        .with_lr(1e-2)
        .init::<B, _>(&model)
        .unwrap();
    let mut losses = Vec::new();
    for _ in 0..40 {
        let out = <CtcTask as Task<B>>::train_step(&task, &model, &batch, None).unwrap();
        losses.push(burn::tensor::ElementConversion::elem::<f32>(
            out.loss.clone().into_scalar(),
        ));
        let grads = GradientsParams::from_grads(out.loss.backward(), &model);
        model = optim.step(model, grads);
    }
    let (first, last) = (losses[0], *losses.last().unwrap());
    assert!(
        last.is_finite() && last < 0.5 * first,
        "CTC loss {first} -> {last}"
    );
    let valid = model.valid();
    let (stats, _) = <CtcTask as Task<B>>::valid_step(&task, &valid, &batch, None).unwrap();
    assert!(stats.loss.is_finite() && stats.items == 2);
    let texts = valid.transcribe(&batch, &alphabet, Decoding::Greedy).unwrap();
    assert_eq!(
        stats.correct,
        Some(texts.iter().zip(&batch.texts).filter(|(h, r)| h == r).count())
    );
    assert_eq!(texts, batch.texts, "losses {losses:?}");
}
