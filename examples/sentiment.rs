//! Sentiment analysis: trains a bidirectional-LSTM `SequenceClassifier` on labelled sentences,
//! reports validation accuracy and F1, then classifies sentences given on the command line.
//! About a second on the built-in data with `--release` (2 cores); 10 seconds for 4 epochs of the
//! movie-review polarity data, which reach 0.76 accuracy (`docs/benchmarks.md`).
//!
//! ```text
//! cargo run --release --example sentiment
//! cargo run --release --example sentiment -- --pos ../shared/data/rt-polarity.pos \
//!     --neg ../shared/data/rt-polarity.neg --epochs 4 "a gripping, beautifully acted film" "a dull mess"
//! ```
//!
//! `--pos FILE --neg FILE` take one sentence per line (the layout of the rt-polarity data). Without
//! them a small labelled set is generated in code: review-like sentences whose sentiment comes from
//! their adjectives, some negated ("not good" is negative). The other arguments are sentences to
//! classify after training (after `--` if one starts with `-`); `sentiment --help` lists the
//! options (device, epochs, learning rate, batch size, model sizes, seed).

use burn::module::AutodiffModule;
use burn::tensor::{Int, Tensor, TensorData};
use ember_lm::data::{ClassificationBatches, SplitMix64, Tokenizer, WordTokenizer, read_lines};
use ember_lm::eval::classification_report;
use ember_lm::models::{EncoderKind, Pooling, SequenceClassifierConfig};
use ember_lm::nn::CellType;
use ember_lm::optim::{LrSchedule, OptimizerConfig};
use ember_lm::train::{ClassificationTask, Monitor, Trainer, TrainerConfig, predict_classes};
use ember_lm::{Error, Result};

#[path = "common/cli.rs"]
mod cli;
#[path = "common/reviews.rs"]
mod reviews;

use clap::Parser;
use cli::{Device, Init};

/// Train a bidirectional-LSTM sentiment classifier, report validation accuracy and F1, then
/// classify the sentences given.
#[derive(Parser, Debug)]
#[command(name = "sentiment", version)]
struct Options {
    /// Positive examples, one sentence per line (with --neg) [default: sentences made in code].
    #[arg(long, requires = "neg")]
    pos: Option<String>,
    /// Negative examples, one sentence per line (with --pos).
    #[arg(long, requires = "pos")]
    neg: Option<String>,
    /// Epochs [default: 4 on more than 5,000 sentences, else 3].
    #[arg(long)]
    epochs: Option<u64>,
    /// Seed of the data split, initial weights and batch order.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Where to compute (each needs its cargo feature).
    #[arg(long, value_enum, default_value_t = Device::best_compiled())]
    device: Device,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 2e-3)]
    lr: f64,
    /// Sentences per training batch.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Word embedding size.
    #[arg(long, default_value_t = 64)]
    embed: usize,
    /// LSTM units per direction.
    #[arg(long, default_value_t = 64)]
    hidden: usize,
    /// Dropout before the classifier.
    #[arg(long, default_value_t = 0.3)]
    dropout: f64,
    /// Initial weights of the embedding and the classifier (the LSTM's are nn.LSTM's either way).
    #[arg(long, value_enum, default_value_t = Init::TorchModules)]
    init: Init,
    /// A run directory: metrics.csv, TensorBoard events, loss.svg, checkpoints and the tokenizer [default:
    /// none, nothing is written].
    #[arg(long, value_name = "RUN_DIR")]
    out: Option<std::path::PathBuf>,
    /// Also checkpoint every this many steps (with --out) [default: at the end and on a new best].
    #[arg(long, requires = "out")]
    checkpoint_every: Option<u64>,
    /// Validate every this many steps [default: at the end of each epoch].
    #[arg(long)]
    valid_every: Option<u64>,
    /// Sentences to classify after training.
    sentences: Vec<String>,
}

const LABELS: [&str; 2] = ["negative", "positive"];

fn main() {
    let o = Options::parse();
    cli::init_tracing();
    if let Err(e) = cli::on_device!("sentiment", o.device, run(&o)) {
        tracing::error!("{e}");
        std::process::exit(1);
    }
}

fn run<B: ember_lm::TrainBackend>(o: &Options) -> Result<()> {
    let mut data: Vec<(String, usize)> = match (&o.pos, &o.neg) {
        (Some(p), Some(n)) => {
            let mut d: Vec<(String, usize)> = read_lines(p)?.into_iter().map(|(_, s)| (s, 1)).collect();
            d.extend(read_lines(n)?.into_iter().map(|(_, s)| (s, 0)));
            d
        }
        _ => reviews::built_in(4000, o.seed),
    };
    SplitMix64::new(o.seed).shuffle(&mut data);
    let epochs = o.epochs.unwrap_or(if data.len() > 5000 { 4 } else { 3 });
    train::<B>(data, epochs, o)
}

fn train<B: ember_lm::TrainBackend>(data: Vec<(String, usize)>, epochs: u64, o: &Options) -> Result<()> {
    let device = B::Device::default();
    let split = data.len() * 9 / 10;
    let (train_set, valid_set) = data.split_at(split);
    let tokenizer = WordTokenizer::from_corpus(train_set.iter().map(|(s, _)| s.as_str()), 2, true)?;
    println!(
        "{} training and {} validation sentences, vocabulary {}",
        train_set.len(),
        valid_set.len(),
        tokenizer.vocab_size()
    );
    let train =
        ClassificationBatches::from_texts(&tokenizer, train_set, 2, o.batch_size, 64)?.with_bucketing(true);
    let valid = ClassificationBatches::from_texts(&tokenizer, valid_set, 2, 64, 64)?.with_shuffle(false);
    let config = SequenceClassifierConfig::new(
        tokenizer.vocab_size(),
        o.embed,
        2,
        EncoderKind::Recurrent {
            cell: CellType::Lstm,
            hidden_size: o.hidden,
            num_layers: 1,
            bidirectional: true,
        },
    )
    .with_pooling(Pooling::Last)
    .with_dropout(o.dropout)
    .with_init(Some(o.init.into()));
    let mut trainer = Trainer::new(
        TrainerConfig::new()
            .with_max_epochs(Some(epochs))
            .with_seed(o.seed)
            .with_run_dir(o.out.clone())
            .with_checkpoint_every(o.checkpoint_every)
            .with_valid_every(o.valid_every)
            .with_monitor(Monitor {
                metric: "acc".into(),
                mode: ember_lm::optim::PlateauMode::Max,
            }),
        ClassificationTask::new(config.clone()),
        config.init::<B>(&device)?,
        &OptimizerConfig::adam().with_lr(o.lr),
        LrSchedule::Constant,
        &device,
    )?
    .with_tokenizer(tokenizer.clone());
    trainer.fit(&train, Some(&valid))?;
    let model = trainer.model().valid();
    let (predictions, labels) = predict_classes(&model, &valid)?;
    let report = classification_report(&predictions, &labels, 2)?;
    println!(
        "validation: accuracy {:.3}, macro F1 {:.3} (positive F1 {:.3}, negative F1 {:.3})",
        report.accuracy, report.macro_avg.f1, report.per_class[1].f1, report.per_class[0].f1
    );
    for s in &o.sentences {
        let ids: Vec<i64> = tokenizer.encode(s)?.into_iter().map(i64::from).collect();
        if ids.is_empty() {
            continue;
        }
        let n = ids.len();
        let x = Tensor::<B::InnerBackend, 2, Int>::from_data(TensorData::new(ids, [1, n]), &device);
        let probs: Vec<f32> = burn::tensor::activation::softmax(model.forward(x, &[n])?, 1)
            .into_data()
            .to_vec()
            .map_err(|e| Error::Data(format!("{e:?}")))?;
        let class = (probs[1] > probs[0]) as usize;
        println!("{:>8} ({:.2})  {s}", LABELS[class], probs[class]);
    }
    Ok(())
}
