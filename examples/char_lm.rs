//! The main job: train a character-level language model, watch it, checkpoint it, and write text
//! with it. About 25 seconds on 2 CPU cores with the defaults (after the build); no download.
//!
//! ```text
//! cargo run --release --example char_lm                        # LSTM on the built-in corpus
//! cargo run --release --example char_lm -- --model gpt --steps 1500
//! cargo run --release --example char_lm -- --corpus ../shared/data/tinyshakespeare.txt --steps 2000
//! cargo run --release --example char_lm -- --resume runs/char_lm --steps 3000   # continue a run
//! cargo run --release --example char_lm -- generate --from runs/char_lm --prompt "the old " --temperature 0.8
//! ```
//!
//! With no `--corpus`, the text comes from `ember_lm::data::ToyGrammar`, a small stochastic grammar
//! of English-like sentences whose entropy is known, so the example reports the source's true
//! bits per character next to the model's validation bits per character: the gap is what the model
//! has left to learn.
//!
//! `char_lm --help` and `char_lm generate --help` list every option with its default: the model
//! family, sizes and initialisation (`--init`), device, learning rate, batch size, steps,
//! validation and checkpoint intervals, seed and run directory; and for `generate`, the run to
//! load and the sampling settings.

use std::path::PathBuf;

use burn::module::AutodiffModule;
use ember_lm::data::{
    Batches, CharTokenizer, LmShape, LmStreams, LmWindows, TokenBatch, Tokenizer, ToyGrammar, read_text,
    split_tail,
};
use ember_lm::generate::{GenerationConfig, Generator};
use ember_lm::models::{GptConfig, LanguageModel, RnnLmConfig};
use ember_lm::nn::{CellType, FeedForwardActivation};
use ember_lm::optim::{Algorithm, DecayGroups, GradClip, LrSchedule, OptimizerConfig};
use ember_lm::train::{
    DistributedConfig, FitReport, GptLmTask, RnnLmTask, RunTokenizer, Task, Trainer, TrainerConfig,
    default_data_port, load_run,
};
use ember_lm::{Error, Result};

#[path = "common/cli.rs"]
mod cli;

use clap::{Args, Parser, Subcommand, ValueEnum};
use cli::{Device, Init};

/// Train a character-level language model, checkpoint it, and generate text with it.
#[derive(Parser, Debug)]
#[command(name = "char_lm", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    train: TrainArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Generate text with a trained run.
    Generate(GenerateArgs),
}

/// The model families `--model` chooses from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ModelKind {
    /// An LSTM language model (PyTorch's word_language_model, on characters).
    Lstm,
    /// The same with a GRU.
    Gru,
    /// The same with a tanh RNN.
    Rnn,
    /// A GPT (nanoGPT's model).
    Gpt,
}

/// Training options. The model's sizes apply to a new run; `--resume` takes them from the run.
#[derive(Args, Debug)]
struct TrainArgs {
    /// Model family.
    #[arg(long, value_enum, default_value_t = ModelKind::Lstm, conflicts_with = "resume")]
    model: ModelKind,
    /// Where to compute (each needs its cargo feature).
    #[arg(long, value_enum, default_value_t = Device::best_compiled())]
    device: Device,
    /// Optimizer steps [default: 600, or 1000 for gpt].
    #[arg(long)]
    steps: Option<u64>,
    /// A UTF-8 text file to train on [default: a ToyGrammar corpus made in code].
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// The run directory (checkpoints, metrics.csv, TensorBoard events, loss.svg).
    #[arg(long, default_value = "runs/char_lm")]
    out: PathBuf,
    /// Continue the run in this directory from its last checkpoint, up to `--steps` in all.
    #[arg(long, value_name = "RUN_DIR")]
    resume: Option<PathBuf>,
    /// Seed of the initial weights, batch order and dropout.
    #[arg(long, default_value_t = 1337)]
    seed: u64,
    /// Peak learning rate of the warmup-cosine schedule [default: 3e-3, or 1e-3 for gpt].
    #[arg(long)]
    lr: Option<f64>,
    /// Sequences per batch: parallel streams, or windows for gpt [default: 32, or 12 for gpt].
    #[arg(long, conflicts_with = "resume")]
    batch_size: Option<usize>,
    /// Characters per sequence: the truncated-BPTT length, or gpt's block size.
    #[arg(long, default_value_t = 64, conflicts_with = "resume")]
    block_size: usize,
    /// Hidden size, or gpt's embedding width n_embd [default: 256, or 128 for gpt].
    #[arg(long, conflicts_with = "resume")]
    hidden: Option<usize>,
    /// Layers [default: 1, or 4 for gpt].
    #[arg(long, conflicts_with = "resume")]
    layers: Option<usize>,
    /// Attention heads (gpt).
    #[arg(long, default_value_t = 4, conflicts_with = "resume")]
    heads: usize,
    /// Embedding size of the recurrent models.
    #[arg(long, default_value_t = 128, conflicts_with = "resume")]
    embed: usize,
    /// Dropout probability.
    #[arg(long, default_value_t = 0.0, conflicts_with = "resume")]
    dropout: f64,
    /// Initial weights [default: torch-modules for the recurrent models, gpt2 for gpt].
    #[arg(long, value_enum, conflicts_with = "resume")]
    init: Option<Init>,
    /// Validate every this many steps.
    #[arg(long, default_value_t = 200)]
    valid_every: u64,
    /// Write a checkpoint every this many steps (and at the end).
    #[arg(long, default_value_t = 500)]
    checkpoint_every: u64,
    /// Log the training loss every this many steps.
    #[arg(long, default_value_t = 50)]
    log_every: u64,
    /// Train as one node of a multi-node run of this many nodes (the `collective` feature; README,
    /// "Training on several machines"). torchrun's WORLD_SIZE, RANK, MASTER_ADDR and MASTER_PORT
    /// are read when set; these options override them.
    #[arg(long)]
    nodes: Option<usize>,
    /// This node's rank, 0 to nodes - 1 (node 0 starts the orchestrator).
    #[arg(long, requires = "nodes")]
    node_rank: Option<usize>,
    /// The orchestrator's host:port, as every node reaches it [default: 127.0.0.1:29500].
    #[arg(long, requires = "nodes")]
    master: Option<String>,
    /// The host the other nodes reach this one at [default: 127.0.0.1].
    #[arg(long, requires = "nodes")]
    node_host: Option<String>,
    /// The port this node serves its tensors on [default: master's port + 2 + node rank; + 1 is
    /// the rendezvous].
    #[arg(long, requires = "nodes")]
    data_port: Option<u16>,
    /// Seconds a node waits for the others before the run stops with an error.
    #[arg(long, requires = "nodes")]
    node_timeout: Option<u64>,
}

/// The multi-node settings: the environment (torchrun's variables) overridden by the options;
/// `None` for a run on one node.
fn distributed(o: &TrainArgs) -> Result<Option<DistributedConfig>> {
    if o.nodes.is_none() && std::env::var("WORLD_SIZE").is_err() {
        return Ok(None);
    }
    let mut config = DistributedConfig::from_env()?;
    if let Some(n) = o.nodes {
        config.num_nodes = n;
    }
    if let Some(r) = o.node_rank {
        config.node_rank = r;
    }
    if let Some(m) = &o.master {
        config.orchestrator = m.clone();
    }
    if let Some(h) = &o.node_host {
        config.node_host = h.clone();
    }
    config.data_port = o
        .data_port
        .unwrap_or_else(|| default_data_port(config.orchestrator_port(), config.node_rank));
    if let Some(t) = o.node_timeout {
        config.timeout = std::time::Duration::from_secs(t);
    }
    config.validate()?;
    Ok((config.world_size() > 1).then_some(config))
}

/// Generation options.
#[derive(Args, Debug)]
struct GenerateArgs {
    /// The run directory to load (written by training).
    #[arg(long, value_name = "RUN_DIR")]
    from: PathBuf,
    /// The text to continue.
    #[arg(long, default_value = "the ")]
    prompt: String,
    /// Characters to generate.
    #[arg(long, default_value_t = 200)]
    tokens: usize,
    /// Sampling temperature; 0 decodes greedily.
    #[arg(long, default_value_t = 0.8)]
    temperature: f64,
    /// Sample among the k most likely characters only (0: all).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// Sample within the smallest set of this much probability (1: all).
    #[arg(long, default_value_t = 1.0)]
    top_p: f64,
    /// Sampling seed.
    #[arg(long, default_value_t = 1337)]
    seed: u64,
    /// Where to compute (each needs its cargo feature).
    #[arg(long, value_enum, default_value_t = Device::best_compiled())]
    device: Device,
}

/// What the run directory remembers besides the checkpoints, so that `generate` and `--resume`
/// can rebuild the model.
#[derive(serde::Serialize, serde::Deserialize)]
struct RunInfo {
    model: String,
    rnn: Option<RnnLmConfig>,
    gpt: Option<GptConfig>,
    source_bits_per_char: Option<f64>,
    /// Sequences per batch and characters per sequence (absent in runs before these options).
    #[serde(default)]
    batch_size: Option<usize>,
    #[serde(default)]
    block_size: Option<usize>,
}

fn main() {
    let cli = Cli::parse();
    cli::init_tracing();
    let result = match &cli.command {
        Some(Command::Generate(g)) => cli::on_device!("char_lm", g.device, generate(g)),
        None => cli::on_device!("char_lm", cli.train.device, train(&cli.train)),
    };
    if let Err(e) = result {
        tracing::error!("{e}");
        std::process::exit(1);
    }
}

fn train<B: ember_lm::TrainBackend>(o: &TrainArgs) -> Result<()> {
    let device = B::Device::default();
    // The weights drawn at `init` come from the seed too (the trainer seeds the lazy ones).
    ember_lm::train::seed_everything::<B>(o.seed, &device);
    let dir = o.resume.clone().unwrap_or_else(|| o.out.clone());
    let (text, source_bpc) = match &o.corpus {
        Some(path) => (read_text(path)?, None),
        None => (
            ToyGrammar.corpus(300_000, 7),
            Some(ToyGrammar.entropy_bits_per_char(50_000, 11)),
        ),
    };
    // The vocabulary is the corpus's characters; a resumed run reuses the saved one and its model
    // configuration. Resuming creates nothing: a directory that is not a run fails here, untouched.
    let tok_path = dir.join("tokenizer.json");
    let (tokenizer, saved) = if o.resume.is_some() {
        if !dir.join("checkpoints").is_dir() {
            return Err(Error::Checkpoint {
                path: dir.clone(),
                message: "--resume expects a run directory written by char_lm (with checkpoints/)".into(),
            });
        }
        (CharTokenizer::load(&tok_path)?, Some(load_info(&dir)?))
    } else {
        std::fs::create_dir_all(&dir).map_err(|e| Error::Save {
            path: dir.clone(),
            message: e.to_string(),
        })?;
        let t = CharTokenizer::from_corpus(&text)?;
        t.save(&tok_path)?;
        (t, None)
    };
    let ids: Vec<i64> = tokenizer.encode(&text)?.into_iter().map(i64::from).collect();
    let (train_ids, valid_ids) = split_tail(&ids, 0.1)?;
    let vocab = tokenizer.vocab_size();
    println!(
        "corpus: {} characters, vocabulary {vocab}{}",
        ids.len(),
        source_bpc
            .map(|b| format!(", source entropy {b:.3} bits/char (ToyGrammar)"))
            .unwrap_or_default()
    );
    let gpt = match &saved {
        Some(info) => info.gpt.is_some(),
        None => o.model == ModelKind::Gpt,
    };
    let steps = o.steps.unwrap_or(if gpt { 1000 } else { 600 });
    let batch = saved
        .as_ref()
        .and_then(|i| i.batch_size)
        .or(o.batch_size)
        .unwrap_or(if gpt { 12 } else { 32 });
    let block_size = saved.as_ref().and_then(|i| i.block_size).unwrap_or(o.block_size);
    let sizes = (batch, block_size);
    let trainer_config = TrainerConfig::new()
        .with_max_steps(Some(steps))
        .with_valid_every(Some(o.valid_every))
        .with_valid_batches(Some(20))
        .with_log_every(o.log_every)
        .with_checkpoint_every(Some(o.checkpoint_every))
        .with_seed(o.seed)
        .with_run_dir(Some(dir.clone()));
    let (optimizer, warmup) = if gpt {
        // nanoGPT's `train_shakespeare_char`: AdamW with β2 = 0.99, weight decay 0.1 on the
        // matrices only, 100 warmup steps.
        let adamw = Algorithm::AdamW {
            beta1: 0.9,
            beta2: 0.99,
            eps: 1e-8,
            amsgrad: false,
        };
        let optimizer = OptimizerConfig::new(adamw, o.lr.unwrap_or(1e-3))
            .with_weight_decay(0.1)
            .with_decay_groups(DecayGroups::NoRank1);
        (optimizer, (steps / 10).clamp(1, 100))
    } else {
        let optimizer = OptimizerConfig::adamw()
            .with_lr(o.lr.unwrap_or(3e-3))
            .with_weight_decay(0.01);
        (optimizer, (steps / 10).clamp(1, 50))
    };
    let optimizer = optimizer.with_clip(Some(GradClip::Norm(1.0)));
    let schedule = LrSchedule::warmup_cosine(warmup, steps.max(warmup + 1), 1e-4);
    let report = if gpt {
        // By default nanoGPT's small CPU configuration (block 64, batch 12, 4 layers of 4 heads,
        // 128 wide, no dropout), with its defaults: no biases, exact GELU, tied embeddings.
        let config = match saved.as_ref().and_then(|i| i.gpt.clone()) {
            Some(config) => config,
            None => GptConfig::new()
                .with_vocab_size(vocab)
                .with_block_size(block_size)
                .with_n_layer(o.layers.unwrap_or(4))
                .with_n_head(o.heads)
                .with_n_embd(o.hidden.unwrap_or(128))
                .with_dropout(o.dropout)
                .with_bias(false)
                .with_activation(FeedForwardActivation::Gelu)
                .with_init(o.init.map(Into::into)),
        };
        save_info(&dir, "gpt", None, Some(config.clone()), source_bpc, sizes)?;
        let train = LmWindows::new(
            train_ids,
            LmShape {
                batch_size: batch,
                seq_len: config.block_size,
            },
        )?;
        let valid = LmWindows::new(
            valid_ids,
            LmShape {
                batch_size: batch,
                seq_len: config.block_size,
            },
        )?;
        let make = || {
            Ok(Trainer::new(
                trainer_config.clone(),
                GptLmTask::new(config.clone()),
                config.init::<B>(&device)?,
                &optimizer,
                schedule.clone(),
                &device,
            )?
            .with_tokenizer(tokenizer.clone()))
        };
        fit_and_sample(make, &train, &valid, &tokenizer, o, &dir)?
    } else {
        let config = match saved.as_ref().and_then(|i| i.rnn.clone()) {
            Some(config) => config,
            None => {
                let cell = match o.model {
                    ModelKind::Gru => CellType::Gru,
                    ModelKind::Rnn => CellType::RnnTanh,
                    _ => CellType::Lstm,
                };
                RnnLmConfig::new(vocab, o.embed, o.hidden.unwrap_or(256))
                    .with_cell(cell)
                    .with_num_layers(o.layers.unwrap_or(1))
                    .with_dropout(o.dropout)
                    .with_init(o.init.map(Into::into))
            }
        };
        let kind = match config.cell {
            CellType::Lstm => "lstm",
            CellType::Gru => "gru",
            _ => "rnn",
        };
        save_info(&dir, kind, Some(config.clone()), None, source_bpc, sizes)?;
        // Parallel streams of `block_size` characters (truncated BPTT).
        let train = LmStreams::new(
            train_ids,
            LmShape {
                batch_size: batch,
                seq_len: block_size,
            },
        )?;
        let valid = LmStreams::new(
            valid_ids,
            LmShape {
                batch_size: (batch / 4).max(1),
                seq_len: block_size,
            },
        )?;
        let make = || {
            Ok(Trainer::new(
                trainer_config.clone(),
                RnnLmTask::new(config.clone()),
                config.init::<B>(&device)?,
                &optimizer,
                schedule.clone(),
                &device,
            )?
            .with_tokenizer(tokenizer.clone()))
        };
        fit_and_sample(make, &train, &valid, &tokenizer, o, &dir)?
    };
    if let Some(valid) = report.last_valid {
        let bpc = valid.loss / std::f64::consts::LN_2;
        println!(
            "validation: loss {:.4} nats/char, {:.3} bits/char{}",
            valid.loss,
            bpc,
            source_bpc
                .map(|b| format!(" (source entropy {b:.3}: {:.3} bits/char left to learn)", bpc - b))
                .unwrap_or_default()
        );
    }
    println!(
        "run directory: {} (metrics.csv, TensorBoard events, loss.svg, checkpoints)",
        dir.display()
    );
    Ok(())
}

/// Builds the trainer (`make`), resumes if asked, trains (alone, or as one node of several),
/// and prints samples from the trained model.
fn fit_and_sample<B, T>(
    make: impl Fn() -> Result<Trainer<B, T>> + Sync,
    train: &(dyn Batches<TokenBatch> + Sync),
    valid: &(dyn Batches<TokenBatch> + Sync),
    tokenizer: &CharTokenizer,
    o: &TrainArgs,
    dir: &std::path::Path,
) -> Result<FitReport>
where
    B: ember_lm::TrainBackend,
    T: Task<B, Batch = TokenBatch>,
    T::Model: Send,
    <T::Model as AutodiffModule<B>>::InnerModule: LanguageModel<B::InnerBackend>,
{
    let build = || {
        let trainer = make()?;
        if o.resume.is_some() {
            trainer.resume(dir)
        } else {
            Ok(trainer)
        }
    };
    let (report, model) = match distributed(o)? {
        None => {
            let mut trainer = build()?;
            let report = trainer.fit(train, Some(valid))?;
            (report, trainer.model().valid())
        }
        Some(config) => fit_on_nodes(&config, &build, train, valid)?,
    };
    samples(&model, tokenizer, o.seed)?;
    Ok(report)
}

/// One node's part of a multi-node run (one device per node).
#[cfg(feature = "collective")]
fn fit_on_nodes<B, T>(
    config: &DistributedConfig,
    build: &(dyn Fn() -> Result<Trainer<B, T>> + Sync),
    train: &(dyn Batches<TokenBatch> + Sync),
    valid: &(dyn Batches<TokenBatch> + Sync),
) -> Result<(FitReport, <T::Model as AutodiffModule<B>>::InnerModule)>
where
    B: ember_lm::TrainBackend,
    T: Task<B, Batch = TokenBatch>,
    T::Model: Send,
{
    let device = B::Device::default();
    let mut replicas =
        ember_lm::train::fit_distributed::<B, T, _>(config, &[device], |_, _| build(), train, Some(valid))?;
    let (report, model) = replicas.remove(0);
    Ok((report, model.valid()))
}

/// Without the `collective` feature there are no other nodes to train with.
#[cfg(not(feature = "collective"))]
fn fit_on_nodes<B, T>(
    _config: &DistributedConfig,
    _build: &(dyn Fn() -> Result<Trainer<B, T>> + Sync),
    _train: &(dyn Batches<TokenBatch> + Sync),
    _valid: &(dyn Batches<TokenBatch> + Sync),
) -> Result<(FitReport, <T::Model as AutodiffModule<B>>::InnerModule)>
where
    B: ember_lm::TrainBackend,
    T: Task<B, Batch = TokenBatch>,
{
    Err(Error::Config {
        module: "char_lm",
        message: "--nodes (or WORLD_SIZE) needs the `collective` cargo feature: \
                  cargo run --release --features collective --example char_lm -- --nodes ..."
            .into(),
    })
}

fn save_info(
    dir: &std::path::Path,
    model: &str,
    rnn: Option<RnnLmConfig>,
    gpt: Option<GptConfig>,
    source_bits_per_char: Option<f64>,
    (batch_size, block_size): (usize, usize),
) -> Result<()> {
    let info = RunInfo {
        model: model.into(),
        rnn,
        gpt,
        source_bits_per_char,
        batch_size: Some(batch_size),
        block_size: Some(block_size),
    };
    let json = serde_json::to_vec_pretty(&info).map_err(|e| Error::Data(e.to_string()))?;
    ember_lm::io::atomic_write(&dir.join("char_lm.json"), &json)
}

fn load_info(dir: &std::path::Path) -> Result<RunInfo> {
    let path = dir.join("char_lm.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::Load {
        path: path.clone(),
        message: e.to_string(),
    })?;
    serde_json::from_str(&text).map_err(|e| Error::Load {
        path,
        message: e.to_string(),
    })
}

/// Generates from `prompt`, handing text pieces to `on_text` as they are decoded.
fn stream_from<B: ember_lm::Backend, M: LanguageModel<B>>(
    model: &M,
    config: GenerationConfig,
    tokenizer: &CharTokenizer,
    prompt: &[u32],
    on_text: &mut dyn FnMut(&str),
) -> Result<()> {
    let device = B::Device::default();
    Generator::new(model, config, &device)?
        .with_tokenizer(tokenizer)
        .generate_streaming(prompt, on_text)?;
    Ok(())
}

/// Prints a few samples after training, continuing "the " at temperature 0.8.
fn samples<B: ember_lm::Backend, M: LanguageModel<B>>(
    model: &M,
    tokenizer: &CharTokenizer,
    seed: u64,
) -> Result<()> {
    let device = B::Device::default();
    let prompt_text = "the ";
    let prompt = tokenizer.encode(prompt_text).unwrap_or_else(|_| vec![0]);
    for i in 0..3 {
        let config = GenerationConfig::new()
            .with_do_sample(true)
            .with_temperature(0.8)
            .with_max_new_tokens(120)
            .with_seed(seed + i);
        let out = Generator::new(model, config, &device)?.generate(std::slice::from_ref(&prompt))?;
        println!(
            "--- sample {}\n{prompt_text}{}",
            i + 1,
            tokenizer.decode(&out[0][0].tokens)?
        );
    }
    Ok(())
}

fn generate<B: ember_lm::TrainBackend>(o: &GenerateArgs) -> Result<()> {
    let device: B::Device = Default::default();
    let dir = &o.from;
    let info = load_info(dir)?;
    let config = GenerationConfig::new()
        .with_do_sample(o.temperature > 0.0)
        .with_temperature(o.temperature.max(1e-6))
        .with_top_k(o.top_k)
        .with_top_p(o.top_p)
        .with_max_new_tokens(o.tokens)
        .with_seed(o.seed);
    let mut stream = |piece: &str| {
        print!("{piece}");
        let _ = std::io::Write::flush(&mut std::io::stdout());
    };
    // The run directory rebuilds the model and the tokenizer (`load_run`); char_lm.json says
    // which family to read its configuration as.
    if info.gpt.is_some() {
        let run = load_run::<GptConfig, B::InnerBackend>(dir, &device)?;
        let tokenizer = run_tokenizer(run.tokenizer, dir)?;
        let prompt = tokenizer.encode(&o.prompt)?;
        print!("{}", o.prompt);
        stream_from(&run.model, config, &tokenizer, &prompt, &mut stream)?;
    } else {
        let run = load_run::<RnnLmConfig, B::InnerBackend>(dir, &device)?;
        let tokenizer = run_tokenizer(run.tokenizer, dir)?;
        let prompt = tokenizer.encode(&o.prompt)?;
        print!("{}", o.prompt);
        stream_from(&run.model, config, &tokenizer, &prompt, &mut stream)?;
    }
    println!();
    Ok(())
}

/// The run's character tokenizer.
fn run_tokenizer(tokenizer: Option<RunTokenizer>, dir: &std::path::Path) -> Result<CharTokenizer> {
    match tokenizer {
        Some(RunTokenizer::Char(t)) => Ok(t),
        // Runs written before the trainer saved tokenizers: char_lm's own file.
        _ => CharTokenizer::load(dir.join("tokenizer.json")),
    }
}
