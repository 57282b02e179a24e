//! Loads a Hugging Face GPT-2 checkpoint directory (`config.json`, `model.safetensors`,
//! `tokenizer.json`) and generates from a prompt, streaming the text as it is decoded. Under a
//! second with the tiny checkpoint (a real GPT-2 takes a few seconds on a CPU); runs offline on the tiny test checkpoint by default (random weights: the text is
//! gibberish, but the path is the one a real GPT-2 takes).
//!
//! ```text
//! cargo run --release --example gpt2_generate
//! cargo run --release --example gpt2_generate -- --model path/to/gpt2 --prompt "Hello, my dog" \
//!     --tokens 40 --temperature 0.8 --top-p 0.95 --seed 1
//! cargo run --release --example gpt2_generate -- --beams 4 --tokens 20        # beam search
//! ```
//!
//! A real GPT-2 directory: `huggingface-cli download gpt2 config.json model.safetensors tokenizer.json
//! --local-dir gpt2` (or `save_pretrained` from `transformers`).

use burn::backend::NdArray;
use ember_lm::data::{BpeTokenizer, Tokenizer};
use ember_lm::generate::{GenerationConfig, Generator};
use ember_lm::models::Gpt;
use ember_lm::{Error, Result};

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let mut dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/gpt2-tiny").to_string();
    let (mut prompt, mut tokens, mut temperature, mut top_k, mut top_p, mut seed, mut beams) = (
        "It was the best of times".to_string(),
        30usize,
        0.8f64,
        50usize,
        0.95f64,
        0u64,
        1usize,
    );
    let mut args = std::env::args().skip(1);
    let bad = |m: String| Error::Config {
        module: "gpt2_generate",
        message: m,
    };
    while let Some(a) = args.next() {
        let v = args.next().ok_or_else(|| bad(format!("{a} needs a value")))?;
        let num = |e: String| bad(format!("{a}: {e}"));
        match a.as_str() {
            "--model" => dir = v,
            "--prompt" => prompt = v,
            "--tokens" => tokens = v.parse().map_err(|e| num(format!("{e}")))?,
            "--temperature" => temperature = v.parse().map_err(|e| num(format!("{e}")))?,
            "--top-k" => top_k = v.parse().map_err(|e| num(format!("{e}")))?,
            "--top-p" => top_p = v.parse().map_err(|e| num(format!("{e}")))?,
            "--seed" => seed = v.parse().map_err(|e| num(format!("{e}")))?,
            "--beams" => beams = v.parse().map_err(|e| num(format!("{e}")))?,
            other => return Err(bad(format!("unknown argument `{other}`"))),
        }
    }
    let device = Default::default();
    let model = Gpt::<NdArray>::from_pretrained(&dir, &device)?;
    let tokenizer = BpeTokenizer::from_file(format!("{dir}/tokenizer.json"))?;
    let ids = tokenizer.encode(&prompt)?;
    let eos: Vec<u32> = tokenizer.special_tokens().eos.into_iter().collect();
    let config = GenerationConfig::new()
        .with_max_new_tokens(tokens)
        .with_do_sample(beams == 1 && temperature > 0.0)
        .with_temperature(temperature.max(1e-6))
        .with_top_k(top_k)
        .with_top_p(top_p)
        .with_num_beams(beams)
        .with_eos_token_ids(eos)
        .with_seed(seed);
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
