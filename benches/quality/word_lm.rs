//! Word-level side of the language-model quality recipe (`benches/quality/README.md`): PyTorch's
//! `word_language_model` setting on a text file's words, trained by ember-lm's Trainer on Flex.
//! `benches/quality/torch_lm.py --words` is the PyTorch side, with the same vocabulary, split,
//! streams, optimizer, schedule and validation estimate.
//!
//! ```text
//! cargo bench --features flex --bench quality_word_lm --no-run
//! RAYON_NUM_THREADS=1 target/release/deps/quality_word_lm-* CORPUS --init torch-modules --seed 1
//! ```
//!
//! The words are whitespace-separated and lowercased; the vocabulary is the training split's
//! words seen twice or more (`WordTokenizer`), the others `<unk>`; the last 10% of the words is
//! held out. The model is `RnnLm` (2 LSTM layers, embedding and hidden 128 by default, no
//! dropout, untied) on parallel streams with truncated BPTT, AdamW with weight decay 0.01,
//! warmup then cosine to 1e-4, clipping at 1.0 (char_lm's recipe on words). The last line printed
//! is JSON: the validation loss in nats per word and its perplexity.

use std::time::Instant;

use burn::backend::Autodiff;
use clap::Parser;
use ember_lm::data::{LmShape, LmStreams, Tokenizer, WordTokenizer, read_text, split_tail};
use ember_lm::models::{ModelInit, RnnLmConfig};
use ember_lm::optim::{GradClip, LrSchedule, OptimizerConfig};
use ember_lm::train::{RnnLmTask, Trainer, TrainerConfig, seed_everything};

type B = Autodiff<burn::backend::Flex>;

#[derive(Parser, Debug)]
struct Options {
    /// A UTF-8 text file.
    corpus: std::path::PathBuf,
    /// torch-modules or word-language-model.
    #[arg(long, default_value = "torch-modules")]
    init: String,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value_t = 1000)]
    steps: u64,
    #[arg(long, default_value_t = 2)]
    layers: usize,
    #[arg(long, default_value_t = 128)]
    hidden: usize,
    #[arg(long, default_value_t = 128)]
    embed: usize,
    #[arg(long, default_value_t = 20)]
    batch_size: usize,
    #[arg(long, default_value_t = 35)]
    block_size: usize,
    #[arg(long, default_value_t = 3e-3)]
    lr: f64,
    /// cargo bench passes `--bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() -> ember_lm::Result<()> {
    let o = Options::parse();
    let init = match o.init.as_str() {
        "torch-modules" => ModelInit::TorchModules,
        "word-language-model" => ModelInit::WordLanguageModel,
        other => panic!("--init {other}: expected torch-modules or word-language-model"),
    };
    let started = Instant::now();
    let text = read_text(&o.corpus)?;
    let words: Vec<&str> = text.split_whitespace().collect();
    let (train_words, valid_words) = split_tail(&words, 0.1)?;
    let tokenizer = WordTokenizer::from_corpus(train_words.iter().copied(), 2, true)?;
    let ids = |w: &[&str]| -> ember_lm::Result<Vec<i64>> {
        Ok(tokenizer
            .encode(&w.join(" "))?
            .into_iter()
            .map(i64::from)
            .collect())
    };
    let (train_ids, valid_ids) = (ids(&train_words)?, ids(&valid_words)?);
    let vocab = tokenizer.vocab_size();
    let device = Default::default();
    let config = RnnLmConfig::new(vocab, o.embed, o.hidden)
        .with_num_layers(o.layers)
        .with_dropout(0.0)
        .with_init(Some(init));
    seed_everything::<B>(o.seed, &device);
    let model = config.init::<B>(&device)?;
    let shape = |batch_size| LmShape {
        batch_size,
        seq_len: o.block_size,
    };
    let train = LmStreams::new(train_ids, shape(o.batch_size))?;
    let valid = LmStreams::new(valid_ids, shape((o.batch_size / 4).max(1)))?;
    let warmup = (o.steps / 10).clamp(1, 50);
    let mut trainer = Trainer::new(
        TrainerConfig::new()
            .with_max_steps(Some(o.steps))
            .with_valid_every(Some(o.steps))
            .with_valid_batches(Some(20))
            .with_log_every(o.steps)
            .with_seed(o.seed)
            .with_progress(ember_lm::train::ProgressMode::Off),
        RnnLmTask::new(config),
        model,
        &OptimizerConfig::adamw()
            .with_lr(o.lr)
            .with_weight_decay(0.01)
            .with_clip(Some(GradClip::Norm(1.0))),
        LrSchedule::warmup_cosine(warmup, o.steps.max(warmup + 1), 1e-4),
        &device,
    )?;
    let report = trainer.fit(&train, Some(&valid))?;
    let loss = report.last_valid.map_or(f64::NAN, |v| v.loss);
    println!(
        "{{\"framework\": \"ember-lm\", \"task\": \"word_lm\", \"init\": \"{}\", \"seed\": {}, \"steps\": {}, \
         \"vocab\": {vocab}, \"valid_loss\": {loss:.4}, \"valid_ppl\": {:.1}, \"wall_s\": {:.1}}}",
        o.init,
        o.seed,
        o.steps,
        loss.exp(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
