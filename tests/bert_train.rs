//! Training the BERT family through the Trainer: batches for sequence classification, token
//! classification and masked-LM pretraining (dynamic 80/10/10 masking), a classifier that
//! learns a toy task and predicts the same after `save_pretrained` and `from_pretrained`, and
//! masked-LM pretraining from scratch that learns.

mod common;

use burn::backend::{Autodiff, NdArray};
use burn::module::AutodiffModule;
use burn::prelude::Backend as _;
use ember_lm::Error;
use ember_lm::data::{Batches, EncoderBatches, EncoderLabels, EncoderTokenizer, Tokenizer};
use ember_lm::models::bert::{BertConfig, BertForSequenceClassification, EncoderFamily};
use ember_lm::optim::{DecayGroups, LrSchedule, OptimizerConfig};
use ember_lm::train::{EncoderClassificationTask, MaskedLmTask, ProgressMode, Trainer, TrainerConfig};

type B = Autodiff<NdArray>;

fn wordpiece() -> EncoderTokenizer {
    EncoderTokenizer::from_pretrained(common::fixture_path("encoder_tokenizers/wordpiece")).unwrap()
}

fn small(tokenizer: &EncoderTokenizer) -> BertConfig {
    BertConfig::new()
        .with_vocab_size(tokenizer.vocab_size())
        .with_hidden_size(32)
        .with_num_hidden_layers(2)
        .with_num_attention_heads(4)
        .with_intermediate_size(64)
        .with_max_position_embeddings(64)
        .with_hidden_dropout_prob(0.0)
        .with_attention_probs_dropout_prob(0.0)
}

#[test]
fn masking_follows_the_80_10_10_rule_and_is_reproducible() {
    let tok = wordpiece();
    let texts: Vec<String> = (0..64)
        .map(|i| format!("the quick brown fox jumps over the lazy dog number {i} and the cafe serves creme"))
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let data = EncoderBatches::masked_lm(&tok, &refs, 0.15, 64, 8).unwrap();
    let plain = EncoderBatches::sequence_classification(&tok, &refs, None, &vec![0; 64], 2, 64, 8)
        .unwrap()
        .with_shuffle(false);
    let data = data.with_shuffle(false);
    let mask = tok.mask_token_id().unwrap();
    let special = [
        tok.special_tokens().bos.unwrap(),
        tok.special_tokens().eos.unwrap(),
        tok.special_tokens().pad.unwrap(),
    ];
    let (mut chosen, mut masked, mut random, mut kept, mut eligible) =
        (0usize, 0usize, 0usize, 0usize, 0usize);
    for epoch in 0..20 {
        for i in 0..data.num_batches() {
            let b = data.get(epoch, i, 3).unwrap();
            let original = plain.get(epoch, i, 3).unwrap();
            assert_eq!(
                b,
                data.get(epoch, i, 3).unwrap(),
                "the draw depends on (seed, epoch, batch) only"
            );
            let EncoderLabels::Tokens(labels) = &b.labels else {
                panic!("token labels")
            };
            for ((&id, &orig), &label) in b
                .input
                .input_ids
                .iter()
                .zip(&original.input.input_ids)
                .zip(labels)
            {
                if special.contains(&orig) {
                    assert_eq!(label, -100, "a special token or padding was chosen");
                    assert_eq!(id, orig);
                    continue;
                }
                eligible += 1;
                if label == -100 {
                    assert_eq!(id, orig, "an unchosen token changed");
                    continue;
                }
                assert_eq!(label, orig as i64);
                chosen += 1;
                match id {
                    m if m == mask => masked += 1,
                    same if same == orig => kept += 1,
                    _ => random += 1,
                }
            }
        }
    }
    let share = |n: usize, of: usize| n as f64 / of as f64;
    assert!(
        (share(chosen, eligible) - 0.15).abs() < 0.01,
        "{chosen} of {eligible}"
    );
    assert!((share(masked, chosen) - 0.8).abs() < 0.02, "{masked} of {chosen}");
    // A random token may draw the original id (1 in the vocabulary's size), as in transformers.
    assert!((share(random, chosen) - 0.1).abs() < 0.02, "{random} of {chosen}");
    assert!((share(kept, chosen) - 0.1).abs() < 0.02, "{kept} of {chosen}");
    assert_ne!(
        data.get(0, 0, 3).unwrap(),
        data.get(1, 0, 3).unwrap(),
        "masked afresh each epoch"
    );
}

#[test]
fn token_labels_go_to_the_first_sub_token_of_each_word() {
    let tok = wordpiece();
    let words: Vec<String> = ["Zürich", "serves", "brûlée", "naïvely"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let data = EncoderBatches::token_classification(
        &tok,
        std::slice::from_ref(&words),
        &[vec![1, 2, 3, 4]],
        5,
        32,
        1,
    )
    .unwrap();
    let b = data.get(0, 0, 0).unwrap();
    let EncoderLabels::Tokens(labels) = &b.labels else {
        panic!()
    };
    let (_, word_ids) = tok.encode_words(&words, 32).unwrap();
    // The labelled positions are the first position of each word, in order.
    let mut expected = vec![-100i64; word_ids.len()];
    let mut seen = std::collections::HashSet::new();
    for (p, w) in word_ids.iter().enumerate() {
        if let Some(w) = w
            && seen.insert(*w)
        {
            expected[p] = *w as i64 + 1;
        }
    }
    assert_eq!(labels, &expected);
    assert!(
        word_ids.len() > words.len() + 2,
        "some word splits into several pieces: {word_ids:?}"
    );
    // Bad labels are errors naming the example.
    let err = EncoderBatches::token_classification(
        &tok,
        std::slice::from_ref(&words),
        &[vec![1, 2, 3, 9]],
        5,
        32,
        1,
    )
    .unwrap_err();
    assert!(err.to_string().contains("example 0"), "{err}");
    let err = EncoderBatches::token_classification(&tok, &[words], &[vec![1]], 5, 32, 1).unwrap_err();
    assert!(matches!(err, Error::Data(_)));
    let err = EncoderBatches::sequence_classification(&tok, &["a", "b"], None, &[0, 2], 2, 8, 1).unwrap_err();
    assert!(err.to_string().contains("class 2"), "{err}");
    assert!(EncoderBatches::masked_lm(&tok, &["a"], 1.5, 8, 1).is_err());
}

/// The toy task: "good" sentences against "bad" ones, with distractor words.
fn toy(n: usize, offset: usize) -> (Vec<String>, Vec<usize>) {
    let fillers = [
        "the fox",
        "a cafe",
        "the dog",
        "pieces of text",
        "the user",
        "numbers",
    ];
    (0..n)
        .map(|i| {
            let j = i + offset;
            let label = j % 2;
            let word = if label == 1 { "quick" } else { "lazy" };
            (
                format!("{} is {word} and {}", fillers[j % 6], fillers[(j / 2) % 6]),
                label,
            )
        })
        .unzip()
}

#[test]
fn a_fine_tuned_classifier_learns_and_predicts_the_same_after_a_reload() {
    let device = Default::default();
    let tok = wordpiece();
    let config = small(&tok).with_num_labels(2);
    B::seed(&device, 5);
    let model = config.init_sequence_classification::<B>(&device).unwrap();
    let (texts, labels) = toy(96, 0);
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let train = EncoderBatches::sequence_classification(&tok, &refs, None, &labels, 2, 32, 16).unwrap();
    let (vtexts, vlabels) = toy(32, 1000);
    let vrefs: Vec<&str> = vtexts.iter().map(String::as_str).collect();
    let valid = EncoderBatches::sequence_classification(&tok, &vrefs, None, &vlabels, 2, 32, 16).unwrap();
    let optimizer = OptimizerConfig::adamw()
        .with_lr(3e-3)
        .with_weight_decay(0.01)
        .with_decay_groups(DecayGroups::NoRank1)
        .with_layer_lr_decay(Some(0.9));
    let mut trainer = Trainer::new(
        TrainerConfig::new()
            .with_max_steps(Some(60))
            .with_valid_every(Some(30))
            .with_progress(ProgressMode::Off),
        EncoderClassificationTask::new(config),
        model,
        &optimizer,
        LrSchedule::Linear {
            warmup_steps: 6,
            total_steps: 60,
            end_factor: 0.0,
        },
        &device,
    )
    .unwrap();
    let report = trainer.fit(&train, Some(&valid)).unwrap();
    let last = report.last_valid.unwrap();
    assert!(last.acc.unwrap() > 0.95, "{last:?}");

    let model = trainer.model().valid();
    let dir = std::env::temp_dir().join(format!("ember-bert-finetuned-{}", std::process::id()));
    model.save_pretrained(&dir).unwrap();
    let back = BertForSequenceClassification::<NdArray>::from_pretrained(&dir, &device).unwrap();
    let batch = valid.get(0, 0, 0).unwrap();
    let a: Vec<f32> = model.forward(&batch.input).unwrap().into_data().to_vec().unwrap();
    let b: Vec<f32> = back.forward(&batch.input).unwrap().into_data().to_vec().unwrap();
    assert_eq!(a, b);
    assert_eq!(back.bert.config().family, EncoderFamily::Bert);
    std::fs::remove_dir_all(&dir).ok();
}

/// The mean masked-LM loss over epoch 0's batches, in eval mode.
fn mlm_loss(trainer: &Trainer<B, MaskedLmTask>, data: &EncoderBatches) -> f64 {
    use ember_lm::train::Task;
    let model = trainer.model().valid();
    let (mut sum, mut items) = (0.0, 0);
    for i in 0..data.num_batches() {
        let batch = data.get(0, i, 1).unwrap();
        let (stats, _) = Task::<B>::valid_step(trainer.task(), &model, &batch, None).unwrap();
        sum += stats.loss * stats.items as f64;
        items += stats.items;
    }
    sum / items as f64
}

#[test]
fn masked_lm_pretraining_from_scratch_learns() {
    let device = Default::default();
    let tok = wordpiece();
    let config = small(&tok);
    B::seed(&device, 6);
    let model = config.init_masked_lm::<B>(&device).unwrap();
    let (texts, _) = toy(64, 0);
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let train = EncoderBatches::masked_lm(&tok, &refs, 0.15, 32, 16).unwrap();
    let mut trainer = Trainer::new(
        TrainerConfig::new()
            .with_max_steps(Some(120))
            .with_progress(ProgressMode::Off),
        MaskedLmTask::new(config),
        model,
        &OptimizerConfig::adamw().with_lr(3e-3),
        LrSchedule::Constant,
        &device,
    )
    .unwrap();
    let before = mlm_loss(&trainer, &train);
    let report = trainer.fit(&train, None).unwrap();
    let after = mlm_loss(&trainer, &train);
    // ln(vocab) ≈ 5.3 at the start; the repeated sentences are mostly predictable.
    assert!(
        after < before - 2.0,
        "masked-LM loss {before} -> {after} ({report:?})"
    );
}

#[test]
fn a_token_classifier_learns_to_tag_words() {
    use ember_lm::train::TokenClassificationTask;
    let device = Default::default();
    let tok = wordpiece();
    let config = small(&tok).with_num_labels(3);
    B::seed(&device, 7);
    let model = config.init_token_classification::<B>(&device).unwrap();
    // Tag 1 for "quick", 2 for "lazy", 0 for every other word.
    let (texts, _) = toy(64, 0);
    let words: Vec<Vec<String>> = texts
        .iter()
        .map(|t| t.split_whitespace().map(String::from).collect())
        .collect();
    let tags: Vec<Vec<usize>> = words
        .iter()
        .map(|w| {
            w.iter()
                .map(|w| match w.as_str() {
                    "quick" => 1,
                    "lazy" => 2,
                    _ => 0,
                })
                .collect()
        })
        .collect();
    let train = EncoderBatches::token_classification(&tok, &words, &tags, 3, 32, 16).unwrap();
    let mut trainer = Trainer::new(
        TrainerConfig::new()
            .with_max_steps(Some(60))
            .with_valid_every(Some(60))
            .with_progress(ProgressMode::Off),
        TokenClassificationTask::new(config),
        model,
        &OptimizerConfig::adamw().with_lr(3e-3),
        LrSchedule::Constant,
        &device,
    )
    .unwrap();
    let report = trainer.fit(&train, Some(&train)).unwrap();
    let last = report.last_valid.unwrap();
    assert!(last.acc.unwrap() > 0.98, "{last:?}");
}

#[test]
fn a_csv_of_texts_and_labels_reads_by_its_header() {
    use ember_lm::data::read_text_label_csv;
    let dir = std::env::temp_dir().join(format!("ember-csv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("reviews.csv");
    std::fs::write(
        &path,
        "id,label,text\n1,pos,\"good, really \"\"good\"\"\"\n2,neg,\"two\nlines\"\n",
    )
    .unwrap();
    assert_eq!(
        read_text_label_csv(&path).unwrap(),
        vec![
            ("good, really \"good\"".to_string(), "pos".to_string()),
            ("two\nlines".to_string(), "neg".to_string())
        ]
    );
    std::fs::write(&path, "sentence,class\na,b\n").unwrap();
    let err = read_text_label_csv(&path).unwrap_err();
    assert!(err.to_string().contains("label"), "{err}");
    std::fs::write(&path, "text,label\nonly one field\n").unwrap();
    assert!(
        read_text_label_csv(&path)
            .unwrap_err()
            .to_string()
            .contains("line 2")
    );
    std::fs::remove_dir_all(&dir).ok();
}
