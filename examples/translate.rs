//! Translation: trains an encoder-decoder (the Transformer of PyTorch's translation tutorial, or
//! `--model rnn` for the GRU encoder-decoder with Bahdanau attention) on sentence pairs, reports
//! BLEU (sacrebleu's definition) on a held-out split with beam search, and translates sentences
//! given on the command line. About 20 seconds on the built-in pairs with `--release` (2 cores).
//!
//! ```text
//! cargo run --release --example translate
//! cargo run --release --example translate -- --pairs ../shared/data/eng-fra.txt --epochs 20 "i am cold ."
//! cargo run --release --example translate -- --model rnn
//! ```
//!
//! `--pairs FILE` is tab-separated `source<TAB>target[<TAB>...]` (the Tatoeba English–French layout).
//! Without it, pairs are generated in code: `ToyGrammar` sentences and a word-for-word "translation"
//! that also moves adjectives after their noun, so the model must learn to reorder. The other
//! arguments are sentences to translate after training (after `--` if one starts with `-`);
//! `translate --help` lists the options (model, device, epochs, learning rate, batch size, width,
//! beams, held-out size, seed).

use burn::module::AutodiffModule;
use ember_lm::Result;
use ember_lm::data::{PairBatches, SplitMix64, Tokenizer, ToyGrammar, WordTokenizer, read_pairs};
use ember_lm::eval::corpus_bleu;
use ember_lm::generate::{GenerationConfig, Generator};
use ember_lm::models::{
    Conditioned, RnnSeq2Seq, RnnSeq2SeqConfig, Seq2SeqModel, TransformerSeq2Seq, TransformerSeq2SeqConfig,
};
use ember_lm::optim::{LrSchedule, OptimizerConfig};
use ember_lm::train::{Trainer, TrainerConfig, TranslationTask};

/// Built-in pairs: a sentence and its word-by-word translation with adjectives after nouns.
fn built_in(n: usize, seed: u64) -> Vec<(String, String)> {
    const DICT: &[(&str, &str)] = &[
        ("the", "le"),
        ("a", "un"),
        ("every", "chaque"),
        ("small", "petit"),
        ("old", "vieux"),
        ("red", "rouge"),
        ("happy", "heureux"),
        ("quiet", "calme"),
        ("cat", "chat"),
        ("dog", "chien"),
        ("bird", "oiseau"),
        ("farmer", "fermier"),
        ("child", "enfant"),
        ("king", "roi"),
        ("sees", "voit"),
        ("likes", "aime"),
        ("follows", "suit"),
        ("finds", "trouve"),
        ("sleeps", "dort"),
        ("runs", "court"),
        ("sings", "chante"),
        ("quickly", "vite"),
        ("slowly", "lentement"),
        ("today", "aujourd'hui"),
    ];
    const ADJECTIVES: &[&str] = &["small", "old", "red", "happy", "quiet"];
    fn tr(w: &str) -> &str {
        DICT.iter().find(|(e, _)| *e == w).map_or(w, |(_, f)| f)
    }
    let mut rng = SplitMix64::new(seed);
    (0..n)
        .map(|_| {
            let (s, _) = ToyGrammar.sentence(&mut rng);
            let words: Vec<&str> = s.trim_end().trim_end_matches('.').split_whitespace().collect();
            let mut out: Vec<&str> = Vec::new();
            let mut i = 0;
            while i < words.len() {
                if ADJECTIVES.contains(&words[i]) && i + 1 < words.len() {
                    out.push(tr(words[i + 1]));
                    out.push(tr(words[i]));
                    i += 2;
                } else {
                    out.push(tr(words[i]));
                    i += 1;
                }
            }
            (format!("{} .", words.join(" ")), format!("{} .", out.join(" ")))
        })
        .collect()
}

#[path = "common/cli.rs"]
mod cli;

use clap::{Parser, ValueEnum};
use cli::{Device, Init};

/// The encoder-decoders `--model` chooses from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ModelKind {
    /// The Transformer of PyTorch's translation tutorial.
    Transformer,
    /// The GRU encoder-decoder with Bahdanau attention (PyTorch's "NLP From Scratch").
    Rnn,
}

/// Train an encoder-decoder on sentence pairs, report held-out BLEU with beam search, and
/// translate the sentences given.
#[derive(Parser, Debug)]
#[command(name = "translate", version)]
struct Options {
    /// Tab-separated pairs `source<TAB>target`, one per line [default: pairs made in code].
    #[arg(long)]
    pairs: Option<String>,
    /// Model family.
    #[arg(long, value_enum, default_value_t = ModelKind::Transformer)]
    model: ModelKind,
    /// Where to compute (each needs its cargo feature).
    #[arg(long, value_enum, default_value_t = Device::best_compiled())]
    device: Device,
    /// Epochs [default: 20 with --pairs, else 6].
    #[arg(long)]
    epochs: Option<u64>,
    /// Adam's (peak) learning rate [default: 5e-4 for the Transformer, 3e-3 for rnn].
    #[arg(long)]
    lr: Option<f64>,
    /// Pairs per training batch.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Model width: d_model of the Transformer, hidden size of the GRUs.
    #[arg(long, default_value_t = 128)]
    width: usize,
    /// Beams of the beam search.
    #[arg(long, default_value_t = 4)]
    beams: usize,
    /// Initial weights: torch-modules, or word-language-model (rnn), or transformer-tutorial
    /// (the Transformer) [default: torch-modules for rnn, transformer-tutorial for the
    /// Transformer].
    #[arg(long, value_enum)]
    init: Option<Init>,
    /// Held-out sentences to score with BLEU.
    #[arg(long, default_value_t = 200)]
    eval: usize,
    /// Seed of the data split, initial weights and batch order.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// A run directory: metrics.csv, TensorBoard events, loss.svg, checkpoints [default:
    /// none, nothing is written].
    #[arg(long, value_name = "RUN_DIR")]
    out: Option<std::path::PathBuf>,
    /// Also checkpoint every this many steps (with --out) [default: at the end and on a new best].
    #[arg(long, requires = "out")]
    checkpoint_every: Option<u64>,
    /// Sentences to translate after training.
    sentences: Vec<String>,
}

fn main() {
    let o = Options::parse();
    cli::init_tracing();
    if let Err(e) = cli::on_device!("translate", o.device, run(&o)) {
        tracing::error!("{e}");
        std::process::exit(1);
    }
}

fn run<B: ember_lm::TrainBackend>(o: &Options) -> Result<()> {
    let device = Default::default();
    let mut pairs = match &o.pairs {
        Some(path) => read_pairs(path)?,
        None => built_in(3000, o.seed),
    };
    SplitMix64::new(o.seed).shuffle(&mut pairs);
    let held_out = (pairs.len() / 10).max(1);
    let (test, train) = pairs.split_at(held_out);
    let min_freq = if o.pairs.is_some() { 2 } else { 1 };
    let src_tok = WordTokenizer::from_corpus(train.iter().map(|p| p.0.as_str()), min_freq, true)?;
    let tgt_tok = WordTokenizer::from_corpus(train.iter().map(|p| p.1.as_str()), min_freq, true)?;
    println!(
        "{} training pairs, {} held out; vocabularies {} / {}",
        train.len(),
        test.len(),
        src_tok.vocab_size(),
        tgt_tok.vocab_size()
    );
    let data = PairBatches::from_texts(&src_tok, &tgt_tok, train, o.batch_size, 30)?.with_bucketing(true);
    let (pad, bos, eos) = (0u32, 2u32, 3u32);
    let epochs = o.epochs.unwrap_or(if o.pairs.is_some() { 20 } else { 6 });
    let trainer_config = TrainerConfig::new()
        .with_max_epochs(Some(epochs))
        .with_seed(o.seed)
        .with_run_dir(o.out.clone())
        .with_checkpoint_every(o.checkpoint_every);
    let (sv, tv) = (src_tok.vocab_size(), tgt_tok.vocab_size());
    if o.model == ModelKind::Rnn {
        let config = RnnSeq2SeqConfig::new(sv, tv, o.width)
            .with_dropout(0.1)
            .with_init(o.init.map(Into::into));
        let mut trainer = Trainer::new(
            trainer_config,
            TranslationTask::<RnnSeq2Seq<B>>::new(&config, pad),
            config.init::<B>(&device)?,
            &OptimizerConfig::adam().with_lr(o.lr.unwrap_or(3e-3)),
            LrSchedule::Constant,
            &device,
        )?;
        trainer.fit(&data, None)?;
        evaluate(&trainer.model().valid(), &src_tok, &tgt_tok, test, o, bos, eos)
    } else {
        let config = TransformerSeq2SeqConfig::new(sv, tv)
            .with_d_model(o.width)
            .with_n_heads(4)
            .with_num_encoder_layers(2)
            .with_num_decoder_layers(2)
            .with_d_ff(2 * o.width)
            .with_dropout(0.1)
            .with_max_len(64)
            .with_init(o.init.map(Into::into));
        let mut trainer = Trainer::new(
            trainer_config,
            TranslationTask::<TransformerSeq2Seq<B>>::new(&config, pad),
            config.init::<B>(&device)?,
            &OptimizerConfig::adam().with_lr(o.lr.unwrap_or(5e-4)),
            LrSchedule::warmup_cosine(100, 100 + epochs * data_batches(&data), 5e-5),
            &device,
        )?;
        trainer.fit(&data, None)?;
        evaluate(&trainer.model().valid(), &src_tok, &tgt_tok, test, o, bos, eos)
    }
}

fn data_batches(d: &PairBatches) -> u64 {
    ember_lm::data::Batches::num_batches(d) as u64
}

/// BLEU on up to `o.eval` held-out pairs with beam search, then the command-line sentences.
fn evaluate<B: ember_lm::Backend, M: Seq2SeqModel<B>>(
    model: &M,
    src_tok: &WordTokenizer,
    tgt_tok: &WordTokenizer,
    test: &[(String, String)],
    o: &Options,
    bos: u32,
    eos: u32,
) -> Result<()> {
    let device = B::Device::default();
    let config = GenerationConfig::new()
        .with_num_beams(o.beams.max(1))
        .with_max_new_tokens(30)
        .with_eos_token_ids(vec![eos]);
    let translate = |text: &str| -> Result<String> {
        let ids = src_tok.encode(text)?;
        if ids.is_empty() {
            return Ok(String::new());
        }
        let lm = Conditioned::new(model, &ids, 40, &device)?;
        let out = Generator::new(&lm, config.clone(), &device)?.generate(&[vec![bos]])?;
        tgt_tok.decode(&out[0][0].tokens)
    };
    let scored = &test[..o.eval.min(test.len())];
    let hyps = scored
        .iter()
        .map(|(s, _)| translate(s))
        .collect::<Result<Vec<_>>>()?;
    let refs = vec![scored.iter().map(|(_, t)| t.to_lowercase()).collect::<Vec<_>>()];
    let bleu = corpus_bleu(&hyps, &refs)?;
    println!(
        "held-out BLEU {:.2} on {} sentences ({} beams; n-gram precisions {:?}/{:?})",
        bleu.score,
        scored.len(),
        o.beams,
        bleu.counts,
        bleu.totals
    );
    for (i, (s, t)) in scored.iter().take(3).enumerate() {
        println!("  {s}\n    reference: {t}\n    model:     {}", hyps[i]);
    }
    for s in &o.sentences {
        println!("{s}\n  → {}", translate(s)?);
    }
    Ok(())
}
