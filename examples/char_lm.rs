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
//! Options: `--model lstm|gru|rnn|gpt`, `--device cpu|flex|wgpu` (those compiled in; default
//! `flex` when built with `--features flex`, else `cpu`), `--steps N`, `--out DIR`, `--resume DIR`,
//! `--seed N`; for `generate`: `--from DIR`, `--prompt TEXT`, `--tokens N`, `--temperature T`,
//! `--top-k K`, `--top-p P`, `--seed N`.

use std::path::PathBuf;

use burn::module::AutodiffModule;
use ember_lm::data::{
    Batches, CharTokenizer, LmStreams, LmWindows, TokenBatch, Tokenizer, ToyGrammar, read_text, split_tail,
};
use ember_lm::generate::{GenerationConfig, Generator};
use ember_lm::models::{GptConfig, LanguageModel, RnnLmConfig};
use ember_lm::nn::{CellType, FeedForwardActivation};
use ember_lm::optim::{Algorithm, DecayGroups, GradClip, LrSchedule, OptimizerConfig};
use ember_lm::train::{FitReport, GptLmTask, RnnLmTask, Task, Trainer, TrainerConfig, load_model};
use ember_lm::{Error, Result};

/// Command-line options.
#[derive(Debug, Clone)]
struct Options {
    generate: bool,
    model: String,
    device: String,
    steps: Option<u64>,
    corpus: Option<PathBuf>,
    out: PathBuf,
    resume: Option<PathBuf>,
    from: Option<PathBuf>,
    prompt: String,
    tokens: usize,
    temperature: f64,
    top_k: usize,
    top_p: f64,
    seed: u64,
}

fn parse() -> Result<Options> {
    let default_device = if cfg!(feature = "flex") { "flex" } else { "cpu" };
    let mut o = Options {
        generate: false,
        model: "lstm".into(),
        device: default_device.into(),
        steps: None,
        corpus: None,
        out: PathBuf::from("runs/char_lm"),
        resume: None,
        from: None,
        prompt: "the ".into(),
        tokens: 200,
        temperature: 0.8,
        top_k: 0,
        top_p: 1.0,
        seed: 1337,
    };
    let mut args = std::env::args().skip(1);
    let bad = |m: String| Error::Config {
        module: "char_lm",
        message: m,
    };
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| bad(format!("{name} needs a value")));
        match a.as_str() {
            "generate" => o.generate = true,
            "--model" => o.model = value("--model")?,
            "--device" => o.device = value("--device")?,
            "--steps" => o.steps = Some(parse_as("--steps", &value("--steps")?)?),
            "--corpus" => o.corpus = Some(value("--corpus")?.into()),
            "--out" => o.out = value("--out")?.into(),
            "--resume" => o.resume = Some(value("--resume")?.into()),
            "--from" => o.from = Some(value("--from")?.into()),
            "--prompt" => o.prompt = value("--prompt")?,
            "--tokens" => o.tokens = parse_as("--tokens", &value("--tokens")?)?,
            "--temperature" => o.temperature = parse_as("--temperature", &value("--temperature")?)?,
            "--top-k" => o.top_k = parse_as("--top-k", &value("--top-k")?)?,
            "--top-p" => o.top_p = parse_as("--top-p", &value("--top-p")?)?,
            "--seed" => o.seed = parse_as("--seed", &value("--seed")?)?,
            other => {
                return Err(bad(format!(
                    "unknown argument `{other}` (see the header of examples/char_lm.rs)"
                )));
            }
        }
    }
    if !["lstm", "gru", "rnn", "gpt"].contains(&o.model.as_str()) {
        return Err(bad(format!(
            "--model must be lstm, gru, rnn or gpt, found `{}`",
            o.model
        )));
    }
    Ok(o)
}

/// `text`, the value of the option `name`, as a number.
fn parse_as<T: std::str::FromStr>(name: &str, text: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|e| Error::Config {
        module: "char_lm",
        message: format!("{name}: {e}"),
    })
}

/// What the run directory remembers besides the checkpoints, so that `generate` can rebuild the
/// model.
#[derive(serde::Serialize, serde::Deserialize)]
struct RunInfo {
    model: String,
    rnn: Option<RnnLmConfig>,
    gpt: Option<GptConfig>,
    source_bits_per_char: Option<f64>,
}

fn main() {
    if let Err(e) = parse().and_then(run) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(o: Options) -> Result<()> {
    match o.device.as_str() {
        "cpu" => go::<burn::backend::Autodiff<burn::backend::NdArray>>(o),
        #[cfg(feature = "flex")]
        "flex" => go::<burn::backend::Autodiff<burn::backend::Flex>>(o),
        #[cfg(feature = "wgpu")]
        "wgpu" => go::<burn::backend::Autodiff<burn::backend::Wgpu>>(o),
        other => Err(Error::Config {
            module: "char_lm",
            message: format!("device `{other}` is not compiled in (features: ndarray = cpu, flex, wgpu)"),
        }),
    }
}

fn go<B: ember_lm::TrainBackend>(o: Options) -> Result<()> {
    if o.generate {
        generate::<B>(&o)
    } else {
        train::<B>(&o)
    }
}

fn train<B: ember_lm::TrainBackend>(o: &Options) -> Result<()> {
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
    // The vocabulary is the corpus's characters; a resumed run reuses the saved one. Resuming
    // creates nothing: a directory that is not a run fails here, untouched.
    let tok_path = dir.join("tokenizer.json");
    let tokenizer = if o.resume.is_some() {
        if !dir.join("checkpoints").is_dir() {
            return Err(Error::Checkpoint {
                path: dir.clone(),
                message: "--resume expects a run directory written by char_lm (with checkpoints/)".into(),
            });
        }
        CharTokenizer::load(&tok_path)?
    } else {
        std::fs::create_dir_all(&dir).map_err(|e| Error::Save {
            path: dir.clone(),
            message: e.to_string(),
        })?;
        let t = CharTokenizer::from_corpus(&text)?;
        t.save(&tok_path)?;
        t
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
    let steps = o.steps.unwrap_or(if o.model == "gpt" { 1000 } else { 600 });
    let trainer_config = TrainerConfig::new()
        .with_max_steps(Some(steps))
        .with_valid_every(Some(200))
        .with_valid_batches(Some(20))
        .with_log_every(50)
        .with_checkpoint_every(Some(500))
        .with_seed(o.seed)
        .with_run_dir(Some(dir.clone()));
    let (optimizer, warmup) = if o.model == "gpt" {
        // nanoGPT's `train_shakespeare_char`: AdamW with β2 = 0.99, weight decay 0.1 on the
        // matrices only, 100 warmup steps.
        let adamw = Algorithm::AdamW {
            beta1: 0.9,
            beta2: 0.99,
            eps: 1e-8,
            amsgrad: false,
        };
        let optimizer = OptimizerConfig::new(adamw, 1e-3)
            .with_weight_decay(0.1)
            .with_decay_groups(DecayGroups::NoRank1);
        (optimizer, (steps / 10).clamp(1, 100))
    } else {
        let optimizer = OptimizerConfig::adamw().with_lr(3e-3).with_weight_decay(0.01);
        (optimizer, (steps / 10).clamp(1, 50))
    };
    let optimizer = optimizer.with_clip(Some(GradClip::Norm(1.0)));
    let schedule = LrSchedule::warmup_cosine(warmup, steps.max(warmup + 1), 1e-4);
    let mut info = RunInfo {
        model: o.model.clone(),
        rnn: None,
        gpt: None,
        source_bits_per_char: source_bpc,
    };
    let report = if o.model == "gpt" {
        // nanoGPT's small CPU configuration (block 64, batch 12, 4 layers of 4 heads, 128 wide, no
        // dropout), with its defaults: no biases, exact GELU, tied embeddings.
        let config = GptConfig::new(vocab, 64, 4, 4, 128)
            .with_dropout(0.0)
            .with_bias(false)
            .with_activation(FeedForwardActivation::Gelu);
        info.gpt = Some(config.clone());
        save_info(&dir, &info)?;
        let train = LmWindows::new(train_ids, 64, 12)?;
        let valid = LmWindows::new(valid_ids, 64, 12)?;
        let trainer = Trainer::new(
            trainer_config,
            GptLmTask::new(config.clone()),
            config.init::<B>(&device)?,
            &optimizer,
            schedule,
            &device,
        )?;
        fit_and_sample(trainer, &train, &valid, &tokenizer, o, &dir)?
    } else {
        let cell = match o.model.as_str() {
            "gru" => CellType::Gru,
            "rnn" => CellType::RnnTanh,
            _ => CellType::Lstm,
        };
        let config = RnnLmConfig::new(vocab, 128, 256)
            .with_cell(cell)
            .with_num_layers(1)
            .with_dropout(0.0);
        info.rnn = Some(config.clone());
        save_info(&dir, &info)?;
        // 32 parallel streams of 64 characters (truncated BPTT).
        let train = LmStreams::new(train_ids, 32, 64)?;
        let valid = LmStreams::new(valid_ids, 8, 64)?;
        let trainer = Trainer::new(
            trainer_config,
            RnnLmTask::new(config.clone()),
            config.init::<B>(&device)?,
            &optimizer,
            schedule,
            &device,
        )?;
        fit_and_sample(trainer, &train, &valid, &tokenizer, o, &dir)?
    };
    if let Some(valid) = report.last_valid {
        println!(
            "validation: loss {:.4} nats/char, {:.3} bits/char{}",
            valid.loss,
            valid.bpc,
            source_bpc
                .map(|b| format!(
                    " (source entropy {b:.3}: {:.3} bits/char left to learn)",
                    valid.bpc - b
                ))
                .unwrap_or_default()
        );
    }
    println!(
        "run directory: {} (metrics.csv, TensorBoard events, loss.svg, checkpoints)",
        dir.display()
    );
    Ok(())
}

/// Resumes if asked, trains, and prints samples from the trained model.
fn fit_and_sample<B, T>(
    mut trainer: Trainer<B, T>,
    train: &dyn Batches<TokenBatch>,
    valid: &dyn Batches<TokenBatch>,
    tokenizer: &CharTokenizer,
    o: &Options,
    dir: &std::path::Path,
) -> Result<FitReport>
where
    B: ember_lm::TrainBackend,
    T: Task<B, Batch = TokenBatch>,
    <T::Model as AutodiffModule<B>>::InnerModule: LanguageModel<B::InnerBackend>,
{
    if o.resume.is_some() {
        trainer = trainer.resume(dir)?;
    }
    let report = trainer.fit(train, Some(valid))?;
    samples(&trainer.model().valid(), tokenizer, o)?;
    Ok(report)
}

fn save_info(dir: &std::path::Path, info: &RunInfo) -> Result<()> {
    let json = serde_json::to_vec_pretty(info).map_err(|e| Error::Data(e.to_string()))?;
    ember_lm::io::atomic_write(&dir.join("char_lm.json"), &json)
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

/// Prints a few samples after training.
fn samples<B: ember_lm::Backend, M: LanguageModel<B>>(
    model: &M,
    tokenizer: &CharTokenizer,
    o: &Options,
) -> Result<()> {
    let device = B::Device::default();
    let prompt = tokenizer.encode(&o.prompt).unwrap_or_else(|_| vec![0]);
    for seed in 0..3 {
        let config = GenerationConfig::new()
            .with_do_sample(true)
            .with_temperature(o.temperature)
            .with_top_k(o.top_k)
            .with_top_p(o.top_p)
            .with_max_new_tokens(120)
            .with_seed(o.seed + seed);
        let out = Generator::new(model, config, &device)?.generate(std::slice::from_ref(&prompt))?;
        println!(
            "--- sample {}\n{}{}",
            seed + 1,
            o.prompt,
            tokenizer.decode(&out[0][0].tokens)?
        );
    }
    Ok(())
}

fn generate<B: ember_lm::TrainBackend>(o: &Options) -> Result<()> {
    let device: B::Device = Default::default();
    let dir = o.from.clone().ok_or_else(|| Error::Config {
        module: "char_lm",
        message: "generate needs --from RUN_DIR".into(),
    })?;
    let tokenizer = CharTokenizer::load(dir.join("tokenizer.json"))?;
    let text = std::fs::read_to_string(dir.join("char_lm.json")).map_err(|e| Error::Load {
        path: dir.join("char_lm.json"),
        message: e.to_string(),
    })?;
    let info: RunInfo = serde_json::from_str(&text).map_err(|e| Error::Load {
        path: dir.join("char_lm.json"),
        message: e.to_string(),
    })?;
    let prompt = tokenizer.encode(&o.prompt)?;
    let config = GenerationConfig::new()
        .with_do_sample(o.temperature > 0.0)
        .with_temperature(o.temperature.max(1e-6))
        .with_top_k(o.top_k)
        .with_top_p(o.top_p)
        .with_max_new_tokens(o.tokens)
        .with_seed(o.seed);
    print!("{}", o.prompt);
    let mut stream = |piece: &str| {
        print!("{piece}");
        let _ = std::io::Write::flush(&mut std::io::stdout());
    };
    match (info.gpt, info.rnn) {
        (Some(config_gpt), _) => {
            let model = load_model(&dir, config_gpt.init::<B::InnerBackend>(&device)?, &device)?;
            stream_from(&model, config, &tokenizer, &prompt, &mut stream)?;
        }
        (None, Some(config_rnn)) => {
            let model = load_model(&dir, config_rnn.init::<B::InnerBackend>(&device)?, &device)?;
            stream_from(&model, config, &tokenizer, &prompt, &mut stream)?;
        }
        (None, None) => {
            return Err(Error::Load {
                path: dir.join("char_lm.json"),
                message: "no model configuration".into(),
            });
        }
    }
    println!();
    Ok(())
}
