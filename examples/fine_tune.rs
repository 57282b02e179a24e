//! Fine-tuning a pretrained encoder (BERT, RoBERTa, DistilBERT) for text classification, as
//! transformers' `Trainer` recipe does it: AdamW with no weight decay on biases and norms, a
//! linear warmup and decay, optionally a layer-wise learning-rate decay. It prints validation
//! accuracy and F1 and classifies the sentences given; `--fill-mask` instead prints the most
//! likely tokens for each `[MASK]` (`<mask>`).
//!
//! ```text
//! # A Hugging Face directory (config.json, model.safetensors or pytorch_model.bin, tokenizer.json):
//! cargo run --release --features flex --example fine_tune -- --model ./distilbert-base-uncased \
//!     --pos ../shared/data/rt-polarity.pos --neg ../shared/data/rt-polarity.neg "a gripping film"
//! # A CSV with `text` and `label` columns:
//! cargo run --release --features flex --example fine_tune -- --model ./bert-base-uncased --csv reviews.csv
//! # Offline, with no checkpoint: a small BERT pretrained here (masked LM, its own WordPiece
//! # tokenizer) on the training texts, then fine-tuned:
//! cargo run --release --features flex --example fine_tune
//! # Masked-token prediction:
//! cargo run --release --features flex --example fine_tune -- --model ./bert-base-uncased \
//!     --fill-mask "the movie was [MASK] ."
//! ```
//!
//! Without `--pos/--neg` or `--csv`, review-like sentences made in code are the data. With
//! `--out DIR`, the run directory holds the metrics, TensorBoard events and checkpoints, and
//! `DIR/model` the fine-tuned model and its tokenizer, which transformers'
//! `from_pretrained` (and `--model`) load. `fine_tune --help` lists every option.

use burn::module::AutodiffModule;
use ember_lm::data::{EncoderBatches, EncoderTokenizer, SplitMix64, read_lines, read_text_label_csv};
use ember_lm::eval::classification_report;
use ember_lm::models::bert::{BertConfig, BertForMaskedLM, BertForSequenceClassification};
use ember_lm::optim::{DecayGroups, LrSchedule, OptimizerConfig, PlateauMode};
use ember_lm::train::{EncoderClassificationTask, MaskedLmTask, Monitor, Trainer, TrainerConfig};
use ember_lm::{Error, Result};

#[path = "common/cli.rs"]
mod cli;
#[path = "common/reviews.rs"]
mod reviews;

use clap::Parser;
use cli::Device;

/// Fine-tune a BERT-family encoder for classification (or pretrain a small one here first),
/// report validation accuracy and F1, then classify the sentences given.
#[derive(Parser, Debug)]
#[command(name = "fine_tune", version)]
struct Options {
    /// A Hugging Face model directory [default: a small BERT pretrained here on the training texts].
    #[arg(long, value_name = "DIR")]
    model: Option<std::path::PathBuf>,
    /// Positive examples, one sentence per line (with --neg).
    #[arg(long, requires = "neg", conflicts_with = "csv")]
    pos: Option<String>,
    /// Negative examples, one sentence per line (with --pos).
    #[arg(long, requires = "pos")]
    neg: Option<String>,
    /// A CSV file with `text` and `label` columns.
    #[arg(long)]
    csv: Option<String>,
    /// Print the top tokens for each mask token of the sentences instead of classifying.
    #[arg(long)]
    fill_mask: bool,
    /// Candidates printed per mask (--fill-mask).
    #[arg(long, default_value_t = 5)]
    top_k: usize,
    /// Fine-tuning epochs.
    #[arg(long, default_value_t = 3)]
    epochs: u64,
    /// Peak learning rate [default: 2e-5 for a pretrained model, 1e-4 for the small one].
    #[arg(long)]
    lr: Option<f64>,
    /// AdamW's weight decay (not on biases and norm weights).
    #[arg(long, default_value_t = 0.01)]
    weight_decay: f64,
    /// Share of the steps spent warming up the learning rate.
    #[arg(long, default_value_t = 0.1)]
    warmup_ratio: f64,
    /// Layer-wise learning-rate decay (e.g. 0.9) [default: none].
    #[arg(long)]
    layer_decay: Option<f64>,
    /// Sentences per batch.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Tokens per sentence, special tokens included (longer ones are truncated).
    #[arg(long, default_value_t = 128)]
    max_length: usize,
    /// Masked-LM pretraining steps of the small model (without --model).
    #[arg(long, default_value_t = 2000)]
    pretrain_steps: u64,
    /// Vocabulary of the small model's WordPiece tokenizer.
    #[arg(long, default_value_t = 2000)]
    vocab_size: usize,
    /// Width of the small model.
    #[arg(long, default_value_t = 128)]
    hidden: usize,
    /// Layers of the small model.
    #[arg(long, default_value_t = 2)]
    layers: usize,
    /// Attention heads of the small model.
    #[arg(long, default_value_t = 4)]
    heads: usize,
    /// Seed of the data split, new weights, masking and batch order.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Where to compute (each needs its cargo feature).
    #[arg(long, value_enum, default_value_t = Device::best_compiled())]
    device: Device,
    /// A run directory: metrics, TensorBoard events, checkpoints, and `model/` with the
    /// fine-tuned model and tokenizer [default: none, nothing is written].
    #[arg(long, value_name = "RUN_DIR")]
    out: Option<std::path::PathBuf>,
    /// Sentences to classify after training (with --fill-mask: texts with mask tokens).
    sentences: Vec<String>,
}

fn main() {
    let o = Options::parse();
    cli::init_tracing();
    if let Err(e) = cli::on_device!("fine_tune", o.device, run(&o)) {
        tracing::error!("{e}");
        std::process::exit(1);
    }
}

/// `(text, label)` pairs.
type Labelled = Vec<(String, usize)>;

/// `(text, label)` pairs and the label names.
fn load_data(o: &Options) -> Result<(Labelled, Vec<String>)> {
    if let (Some(p), Some(n)) = (&o.pos, &o.neg) {
        let mut data: Vec<(String, usize)> = read_lines(n)?.into_iter().map(|(_, s)| (s, 0)).collect();
        data.extend(read_lines(p)?.into_iter().map(|(_, s)| (s, 1)));
        return Ok((data, vec!["negative".into(), "positive".into()]));
    }
    if let Some(csv) = &o.csv {
        let rows = read_text_label_csv(csv)?;
        let mut names: Vec<String> = rows.iter().map(|(_, l)| l.clone()).collect();
        names.sort();
        names.dedup();
        let data = rows
            .into_iter()
            .map(|(t, l)| {
                let id = names.binary_search(&l).unwrap_or(0);
                (t, id)
            })
            .collect();
        return Ok((data, names));
    }
    Ok((
        reviews::built_in(4000, o.seed),
        vec!["negative".into(), "positive".into()],
    ))
}

/// The texts of `(text, label)` pairs.
fn texts(set: &[(String, usize)]) -> Vec<&str> {
    set.iter().map(|(t, _)| t.as_str()).collect()
}

fn run<B: ember_lm::TrainBackend>(o: &Options) -> Result<()> {
    let device = B::Device::default();
    if o.fill_mask {
        return fill_mask::<B>(o, &device);
    }
    let (mut data, names) = load_data(o)?;
    SplitMix64::new(o.seed).shuffle(&mut data);
    let split = data.len() * 9 / 10;
    let (train_set, valid_set) = data.split_at(split);
    let (train_texts, valid_texts) = (texts(train_set), texts(valid_set));
    println!(
        "{} training and {} validation texts, {} labels",
        train_set.len(),
        valid_set.len(),
        names.len()
    );

    // The starting point: a Hugging Face directory, or a small BERT pretrained here.
    let (dir, tokenizer, config) = match &o.model {
        Some(dir) => (
            dir.clone(),
            EncoderTokenizer::from_pretrained(dir)?,
            BertConfig::from_hf_config(dir.join("config.json"))?,
        ),
        None => pretrain::<B>(o, &train_texts, &device)?,
    };
    let config = config.with_labels(names.clone()).with_problem_type(None);
    let (model, info) =
        BertForSequenceClassification::<B>::from_pretrained_config(&dir, config.clone(), &device)?;
    println!("new classification head: {:?}", info.newly_initialized);

    let classes = |set: &[(String, usize)]| set.iter().map(|(_, c)| *c).collect::<Vec<_>>();
    let n = names.len();
    let train = EncoderBatches::sequence_classification(
        &tokenizer,
        &train_texts,
        None,
        &classes(train_set),
        n,
        o.max_length,
        o.batch_size,
    )?
    .with_bucketing(true);
    let valid = EncoderBatches::sequence_classification(
        &tokenizer,
        &valid_texts,
        None,
        &classes(valid_set),
        n,
        o.max_length,
        64,
    )?
    .with_shuffle(false);
    let steps = o.epochs * ember_lm::data::Batches::num_batches(&train) as u64;
    let optimizer = OptimizerConfig::adamw()
        .with_lr(o.lr.unwrap_or(if o.model.is_some() { 2e-5 } else { 1e-4 }))
        .with_weight_decay(o.weight_decay)
        .with_decay_groups(DecayGroups::NoRank1)
        .with_layer_lr_decay(o.layer_decay);
    let schedule = LrSchedule::Linear {
        warmup_steps: (steps as f64 * o.warmup_ratio) as u64,
        total_steps: steps,
        end_factor: 0.0,
    };
    let mut trainer = Trainer::new(
        TrainerConfig::new()
            .with_max_epochs(Some(o.epochs))
            .with_seed(o.seed)
            .with_run_dir(o.out.clone())
            .with_monitor(Monitor {
                metric: "acc".into(),
                mode: PlateauMode::Max,
            }),
        EncoderClassificationTask::new(config),
        model,
        &optimizer,
        schedule,
        &device,
    )?;
    trainer.fit(&train, Some(&valid))?;
    let model = trainer.model().valid();

    let (mut predictions, mut labels) = (Vec::new(), Vec::new());
    for i in 0..ember_lm::data::Batches::num_batches(&valid) {
        let batch = ember_lm::data::Batches::get(&valid, 0, i, 0)?;
        let logits = model.forward(&batch.input)?;
        predictions.extend(logits.argmax(1).into_data().iter::<i64>().map(|p| p as usize));
        if let ember_lm::data::EncoderLabels::Classes(c) = &batch.labels {
            labels.extend(c.iter().map(|&c| c as usize));
        }
    }
    let report = classification_report(&predictions, &labels, n)?;
    println!(
        "validation: accuracy {:.3}, macro F1 {:.3}",
        report.accuracy, report.macro_avg.f1
    );
    for (name, prf) in names.iter().zip(&report.per_class) {
        println!(
            "  {name:>12}: precision {:.3} recall {:.3} F1 {:.3}",
            prf.precision, prf.recall, prf.f1
        );
    }
    if let Some(out) = &o.out {
        model.save_pretrained(out.join("model"))?;
        tokenizer.save_pretrained(out.join("model"))?;
        println!("model and tokenizer saved to {}", out.join("model").display());
    }
    if !o.sentences.is_empty() {
        let refs: Vec<&str> = o.sentences.iter().map(String::as_str).collect();
        let enc = tokenizer.encode_batch(
            &refs,
            &ember_lm::data::EncodeOptions {
                max_length: Some(o.max_length),
                ..Default::default()
            },
        )?;
        let probs: Vec<f32> = burn::tensor::activation::softmax(model.forward(&enc.batch)?, 1)
            .into_data()
            .to_vec()
            .map_err(|e| Error::Data(format!("{e:?}")))?;
        for (s, row) in o.sentences.iter().zip(probs.chunks(n)) {
            let best = (0..n).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap_or(0);
            println!("{:>12} ({:.2})  {s}", names[best], row[best]);
        }
    }
    Ok(())
}

/// Trains a WordPiece tokenizer and pretrains a small BERT with the masked-LM objective on
/// `texts`; returns the directory it is saved in, the tokenizer and its configuration.
fn pretrain<B: ember_lm::TrainBackend>(
    o: &Options,
    texts: &[&str],
    device: &B::Device,
) -> Result<(std::path::PathBuf, EncoderTokenizer, BertConfig)> {
    let tokenizer = EncoderTokenizer::train_wordpiece(texts, o.vocab_size)?;
    let config = BertConfig::new()
        .with_vocab_size(ember_lm::data::Tokenizer::vocab_size(&tokenizer))
        .with_hidden_size(o.hidden)
        .with_num_hidden_layers(o.layers)
        .with_num_attention_heads(o.heads)
        .with_intermediate_size(4 * o.hidden)
        .with_max_position_embeddings(o.max_length.max(8));
    println!(
        "pretraining a BERT of {} layers × {} (vocabulary {}) with masked LM for {} steps",
        o.layers, o.hidden, config.vocab_size, o.pretrain_steps
    );
    B::seed(device, o.seed);
    let model = config.init_masked_lm::<B>(device)?;
    let data = EncoderBatches::masked_lm(&tokenizer, texts, 0.15, o.max_length, 32)?;
    let mut trainer = Trainer::new(
        TrainerConfig::new()
            .with_max_steps(Some(o.pretrain_steps))
            .with_seed(o.seed),
        MaskedLmTask::new(config.clone()),
        model,
        &OptimizerConfig::adamw()
            .with_lr(1e-3)
            .with_weight_decay(0.01)
            .with_decay_groups(DecayGroups::NoRank1),
        LrSchedule::Linear {
            warmup_steps: o.pretrain_steps / 10,
            total_steps: o.pretrain_steps,
            end_factor: 0.0,
        },
        device,
    )?;
    trainer.fit(&data, None)?;
    let dir = match &o.out {
        Some(out) => out.join("pretrained"),
        None => std::env::temp_dir().join(format!("ember-fine-tune-pretrained-{}", std::process::id())),
    };
    trainer.model().valid().save_pretrained(&dir)?;
    tokenizer.save_pretrained(&dir)?;
    Ok((dir, tokenizer, config))
}

/// `--fill-mask`: the top tokens at each mask token of every sentence.
fn fill_mask<B: ember_lm::TrainBackend>(o: &Options, device: &B::Device) -> Result<()> {
    let Some(dir) = &o.model else {
        return Err(Error::Config {
            module: "fine_tune",
            message: "--fill-mask needs --model DIR (a masked-LM checkpoint and its tokenizer)".into(),
        });
    };
    let tokenizer = EncoderTokenizer::from_pretrained(dir)?;
    let model = BertForMaskedLM::<B::InnerBackend>::from_pretrained(dir, device)?;
    for s in &o.sentences {
        println!("{s}");
        for (i, candidates) in model.fill_mask(&tokenizer, s, o.top_k)?.iter().enumerate() {
            for c in candidates {
                println!("  mask {i}: {:>12} {:.3}  {}", c.token, c.score, c.sequence);
            }
        }
    }
    Ok(())
}
