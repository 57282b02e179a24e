//! `SequenceClassifier`: padding never changes the prediction (every encoder and pooling), and a
//! classifier trained with the `Trainer` learns a toy task; bad lengths are errors.
#![cfg(feature = "ndarray")]

use burn::backend::{Autodiff, NdArray};
use burn::module::AutodiffModule;
use burn::tensor::{Int, Tensor, TensorData};
use ember_lm::data::ClassificationBatches;
use ember_lm::eval::classification_report;
use ember_lm::models::{EncoderKind, Pooling, SequenceClassifierConfig};
use ember_lm::nn::CellType;
use ember_lm::optim::{LrSchedule, OptimizerConfig};
use ember_lm::train::{ClassificationTask, ProgressMode, Trainer, TrainerConfig, predict_classes};

type B = NdArray;

fn encoders() -> Vec<EncoderKind> {
    vec![
        EncoderKind::Recurrent {
            cell: CellType::Lstm,
            hidden_size: 8,
            num_layers: 2,
            bidirectional: true,
        },
        EncoderKind::Recurrent {
            cell: CellType::Gru,
            hidden_size: 8,
            num_layers: 1,
            bidirectional: false,
        },
        EncoderKind::Transformer {
            n_heads: 2,
            d_ff: 16,
            num_layers: 2,
            max_len: 32,
        },
    ]
}

#[test]
fn padding_never_changes_the_prediction() {
    let device = Default::default();
    let sentence = [5i64, 9, 2, 7, 3];
    for encoder in encoders() {
        for pooling in [Pooling::Last, Pooling::Mean, Pooling::First] {
            let model = SequenceClassifierConfig::new(12, 8, 3, encoder.clone())
                .with_pooling(pooling)
                .init::<B>(&device)
                .unwrap();
            let mut reference = None;
            for pad_to in [5usize, 6, 9, 16] {
                // The sentence in row 1 of 2, padded with id 0 (the other row is longer).
                let mut ids = vec![1i64; pad_to.max(6)];
                let len = pad_to.max(6);
                let mut row = sentence.to_vec();
                row.resize(len, 0);
                ids.extend(row);
                let x = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [2, len]), &device);
                let logits = model.forward(x, &[len, 5]).unwrap();
                let ours: Vec<f32> = logits.slice([1..2, 0..3]).into_data().to_vec().unwrap();
                match &reference {
                    None => reference = Some(ours),
                    Some(r) => {
                        for (a, b) in ours.iter().zip(r) {
                            assert!(
                                (a - b).abs() < 1e-5,
                                "{encoder:?} {pooling:?}: padded to {pad_to} gives {ours:?} vs {r:?}"
                            );
                        }
                    }
                }
            }
            let x = Tensor::<B, 2, Int>::from_data(TensorData::new(vec![1i64, 2, 3], [1, 3]), &device);
            assert!(model.forward(x.clone(), &[4]).is_err());
            assert!(model.forward(x, &[0]).is_err());
        }
    }
}

#[test]
fn a_classifier_learns_whether_a_token_occurs() {
    type A = Autodiff<NdArray>;
    let device = Default::default();
    // Class 1 when token 3 occurs in the sequence; lengths 3..10.
    let mut rng = ember_lm::data::SplitMix64::new(5);
    let examples: Vec<(Vec<u32>, usize)> = (0..400)
        .map(|_| {
            let len = 3 + rng.below(8) as usize;
            let ids: Vec<u32> = (0..len).map(|_| 4 + rng.below(8) as u32).collect::<Vec<_>>();
            let mut ids = ids;
            let class = rng.below(2) as usize;
            if class == 1 {
                let at = rng.below(len as u64) as usize;
                ids[at] = 3;
            }
            (ids, class)
        })
        .collect();
    let train = ClassificationBatches::new(examples[..320].to_vec(), 2, 16, 0)
        .unwrap()
        .with_bucketing(true);
    let valid = ClassificationBatches::new(examples[320..].to_vec(), 2, 16, 0)
        .unwrap()
        .with_shuffle(false);
    let config = SequenceClassifierConfig::new(12, 16, 2, encoders()[0].clone()).with_dropout(0.0);
    let model = config.init::<A>(&device).unwrap();
    let mut trainer = Trainer::new(
        TrainerConfig::new()
            .with_max_epochs(Some(8))
            .with_progress(ProgressMode::Off)
            .with_monitor(ember_lm::train::Monitor {
                metric: "acc".into(),
                mode: ember_lm::optim::PlateauMode::Max,
            }),
        ClassificationTask::new(config.clone()),
        model,
        &OptimizerConfig::adam().with_lr(1e-2),
        LrSchedule::Constant,
        &device,
    )
    .unwrap();
    let report = trainer.fit(&train, Some(&valid)).unwrap();
    let last = report.last_valid.clone().unwrap();
    let acc = last.acc.unwrap();
    assert!(acc > 0.9, "validation accuracy {acc}");
    // A class's cross-entropy is not per token: no perplexity or bits per character.
    assert_eq!((last.ppl, last.bpc), (None, None));
    assert!(report.last_train.clone().unwrap().ppl.is_none());
    // Monitoring a metric the task does not report is refused before training.
    let err = Trainer::new(
        TrainerConfig::new()
            .with_max_steps(Some(1))
            .with_monitor(ember_lm::train::Monitor {
                metric: "ppl".into(),
                mode: ember_lm::optim::PlateauMode::Min,
            }),
        ClassificationTask::new(config.clone()),
        config.init::<A>(&device).unwrap(),
        &OptimizerConfig::adam(),
        LrSchedule::Constant,
        &device,
    )
    .err()
    .expect("monitoring ppl on classification is an error");
    assert!(err.to_string().contains("monitor.metric is `ppl`"), "{err}");
    let (preds, labels) = predict_classes(&trainer.model().valid(), &valid).unwrap();
    let r = classification_report(&preds, &labels, 2).unwrap();
    assert!((r.accuracy - acc).abs() < 1e-9);
    assert!(r.macro_avg.f1 > 0.9);
    assert_eq!(preds.len(), 80);
}
