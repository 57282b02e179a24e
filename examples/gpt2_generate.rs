//! Loads a Hugging Face GPT-2 checkpoint directory (`config.json`, `model.safetensors`,
//! `tokenizer.json`) and generates from a prompt, streaming the text as it is decoded. Under a
//! second with the tiny checkpoint (a real GPT-2 takes a few seconds on a CPU); runs offline on the tiny test checkpoint by default (random weights: the text is
//! gibberish, but the path is the one a real GPT-2 takes).
//!
//! ```text
//! cargo run --release --example gpt2_generate
//! cargo run --release --example gpt2_generate -- --model path/to/gpt2 --prompt "Hello, my dog" \
//!     --tokens 40 --temperature 0.8 --top-p 0.95 --seed 1
//! cargo run --release --example gpt2_generate -- --model path/to/gpt2 --tokens 40   # the model's settings
//! cargo run --release --example gpt2_generate -- --beams 4 --tokens 20        # beam search
//! ```
//!
//! A real GPT-2 directory: `huggingface-cli download gpt2 config.json generation_config.json
//! model.safetensors tokenizer.json --local-dir gpt2` (or `save_pretrained` from `transformers`).
//! The generation settings start from the directory's `generation_config.json`
//! (`GenerationConfig::from_pretrained`), as transformers' `generate` does; the options override
//! them.

use ember_lm::Result;
use ember_lm::data::{BpeTokenizer, Tokenizer};
use ember_lm::generate::{GenerationConfig, Generator};
use ember_lm::models::Gpt;

#[path = "common/cli.rs"]
mod cli;

use clap::Parser;
use cli::Device;

/// Load a Hugging Face GPT-2 directory and generate from a prompt, streaming the text.
#[derive(Parser, Debug)]
#[command(name = "gpt2_generate", version)]
struct Options {
    /// A `save_pretrained` directory: config.json, model.safetensors, tokenizer.json [default: the
    /// tiny test checkpoint, random weights].
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/gpt2-tiny"))]
    model: String,
    /// The text to continue.
    #[arg(long, default_value = "It was the best of times")]
    prompt: String,
    /// New tokens to generate.
    #[arg(long, default_value_t = 30)]
    tokens: usize,
    /// Sample at this temperature (0: greedy) [default: the model's generation_config.json,
    /// greedy for GPT-2, as transformers' generate].
    #[arg(long)]
    temperature: Option<f64>,
    /// Sample among the k most likely tokens only (0: all) [default: the model's, else 50].
    #[arg(long)]
    top_k: Option<usize>,
    /// Sample within the smallest set of this much probability [default: the model's, else 1].
    #[arg(long)]
    top_p: Option<f64>,
    /// Sampling seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Beam search with this many beams [default: the model's, else 1: no beam search].
    #[arg(long)]
    beams: Option<usize>,
    /// Where to compute (each needs its cargo feature).
    #[arg(long, value_enum, default_value_t = Device::best_compiled())]
    device: Device,
}

fn main() {
    let o = Options::parse();
    cli::init_tracing();
    if let Err(e) = cli::on_device!("gpt2_generate", o.device, run(&o)) {
        tracing::error!("{e}");
        std::process::exit(1);
    }
}

/// Generation needs no autodiff: the model runs on `B`'s inner backend.
fn run<B: ember_lm::TrainBackend>(o: &Options) -> Result<()> {
    let (dir, prompt) = (&o.model, &o.prompt);
    let device = Default::default();
    let model = Gpt::<B::InnerBackend>::from_pretrained(dir, &device)?;
    let tokenizer = BpeTokenizer::from_file(format!("{dir}/tokenizer.json"))?;
    let ids = tokenizer.encode(prompt)?;
    // The model's own settings (its EOS token, sampling or not), as transformers' generate starts
    // from them; the command line overrides what it sets.
    let mut config = GenerationConfig::from_pretrained(dir)?
        .with_max_new_tokens(o.tokens)
        .with_seed(o.seed);
    if let Some(t) = o.temperature {
        config = config.with_do_sample(t > 0.0).with_temperature(t.max(1e-6));
    }
    if let Some(k) = o.top_k {
        config = config.with_top_k(k);
    }
    if let Some(p) = o.top_p {
        config = config.with_top_p(p);
    }
    if let Some(b) = o.beams {
        let sample = config.do_sample && b == 1;
        config = config.with_num_beams(b).with_do_sample(sample);
    }
    let beams = config.num_beams;
    let generator = Generator::new(&model, config, &device)?.with_tokenizer(&tokenizer);
    print!("{prompt}");
    if beams == 1 {
        let g = generator.generate_streaming(&ids, |piece| {
            print!("{piece}");
            let _ = std::io::Write::flush(&mut std::io::stdout());
        })?;
        println!("\n[{} tokens, {:?}]", g.tokens.len(), g.finish);
    } else {
        let out = generator.generate(&[ids])?;
        let g = &out[0][0];
        println!(
            "{}\n[beam score {:.3}, {:?}]",
            tokenizer.decode(&g.tokens)?,
            g.score,
            g.finish
        );
    }
    Ok(())
}
