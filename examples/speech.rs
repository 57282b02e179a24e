//! Speech recognition: synthesises a spoken-digits-and-commands dataset with espeak-ng (once),
//! trains a `SpeechRecognizer` (convolutions, bidirectional LSTM, CTC) on Kaldi filterbank
//! features, reports word and character error rates on voices never heard in training with
//! greedy and beam decoding (a character n-gram model of the training transcripts in the beam),
//! then transcribes the WAV files given.
//!
//! ```text
//! cargo run --release --features flex --example speech -- --out runs/speech
//! cargo run --release --features flex --example speech -- --from runs/speech my.wav other.wav
//! cargo run --release --features flex --example speech -- --train-manifest train.tsv --test-manifest test.tsv
//! ```
//!
//! A manifest has one `path<TAB>transcript` line per utterance, paths relative to the
//! manifest (the layout the synthesised set is written in). `speech --help` lists the options.
//! `docs/benchmarks.md` records what the defaults reach and how long they take.

use std::path::PathBuf;
use std::time::Instant;

use burn::module::AutodiffModule;
use ember_lm::data::Batches;
use ember_lm::nn::CellType;
use ember_lm::optim::{GradClip, LrSchedule, OptimizerConfig};
use ember_lm::speech::{
    BeamOptions, CharAlphabet, Decoding, FeatureExtractor, KaldiFbank, NgramLm, SpecAugment, SpeechBatch,
    SpeechBatches, SpeechRecognizer, SpeechRecognizerConfig, SpeechScores, SynthConfig, read_wav, synthesize,
};
use ember_lm::train::{CtcTask, Monitor, Trainer, TrainerConfig, load_model};
use ember_lm::{Error, Result};

#[path = "common/cli.rs"]
mod cli;

use clap::Parser;
use cli::Device;

/// Train a speech recogniser on synthesised voices (or your manifests), report WER and CER on
/// held-out voices, and transcribe the WAV files given.
#[derive(Parser, Debug)]
#[command(name = "speech", version)]
struct Options {
    /// Directory of the synthesised dataset, made with espeak-ng when its manifests are missing.
    #[arg(long, default_value = "speech-data")]
    data: PathBuf,
    /// Training utterances to synthesise.
    #[arg(long, default_value_t = 2000)]
    train_utterances: usize,
    /// Test utterances to synthesise (held-out voices).
    #[arg(long, default_value_t = 200)]
    test_utterances: usize,
    /// Your training manifest (`path<TAB>transcript`) instead of the synthesised set.
    #[arg(long, requires = "test_manifest")]
    train_manifest: Option<PathBuf>,
    /// Your test manifest (with --train-manifest).
    #[arg(long, requires = "train_manifest")]
    test_manifest: Option<PathBuf>,
    /// A run directory written by --out: transcribe (and test) with its model, no training.
    #[arg(long, value_name = "RUN_DIR", conflicts_with_all = ["out", "train_manifest"])]
    from: Option<PathBuf>,
    /// Epochs over the training utterances.
    #[arg(long, default_value_t = 30)]
    epochs: u64,
    /// Stop after this many optimizer steps [default: the epochs decide].
    #[arg(long)]
    steps: Option<u64>,
    /// Seed of the dataset, the initial weights, the batch order and SpecAugment.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Where to compute (each needs its cargo feature).
    #[arg(long, value_enum, default_value_t = Device::best_compiled())]
    device: Device,
    /// AdamW's peak learning rate (linear warmup over 5% of the steps, then cosine decay).
    #[arg(long, default_value_t = 3e-3)]
    lr: f64,
    /// Utterances per batch.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Kaldi filterbank bins per frame.
    #[arg(long, default_value_t = 40)]
    mel_bins: usize,
    /// Channels of the two convolutions.
    #[arg(long, default_value_t = 32)]
    conv_channels: usize,
    /// The recurrent cell.
    #[arg(long, value_enum, default_value_t = Cell::Lstm)]
    cell: Cell,
    /// Hidden units per direction.
    #[arg(long, default_value_t = 128)]
    hidden: usize,
    /// Recurrent layers.
    #[arg(long, default_value_t = 2)]
    layers: usize,
    /// Dropout between the recurrent layers and before the output layer.
    #[arg(long, default_value_t = 0.1)]
    dropout: f64,
    /// Train without SpecAugment's time and frequency masks.
    #[arg(long)]
    no_spec_augment: bool,
    /// Beam width of the beam decoding.
    #[arg(long, default_value_t = 8)]
    beam: usize,
    /// Order of the character n-gram language model in the beam (0: none).
    #[arg(long, default_value_t = 5)]
    lm_order: usize,
    /// The language model's weight in the beam.
    #[arg(long, default_value_t = 0.5)]
    lm_weight: f64,
    /// A run directory: metrics.csv, TensorBoard events, loss.svg, checkpoints, the alphabet and
    /// settings (for --from) [default: none, nothing is written].
    #[arg(long, value_name = "RUN_DIR")]
    out: Option<PathBuf>,
    /// Validate every this many steps [default: at the end of each epoch].
    #[arg(long)]
    valid_every: Option<u64>,
    /// WAV files to transcribe (any rate, mono or mixed down).
    wavs: Vec<PathBuf>,
}

/// The recurrent cell of the model.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum Cell {
    /// Long short-term memory.
    Lstm,
    /// Gated recurrent unit.
    Gru,
}

/// What `--from` needs besides the checkpoint: the model, the features and the alphabet.
#[derive(serde::Serialize, serde::Deserialize)]
struct RunSettings {
    model: SpeechRecognizerConfig,
    mel_bins: usize,
    alphabet: CharAlphabet,
    /// Training transcripts, for the beam's language model.
    transcripts: Vec<String>,
}

fn main() {
    let o = Options::parse();
    cli::init_tracing();
    if let Err(e) = cli::on_device!("speech", o.device, run(&o)) {
        tracing::error!("{e}");
        std::process::exit(1);
    }
}

fn extractor(mel_bins: usize) -> FeatureExtractor {
    FeatureExtractor::Fbank(KaldiFbank {
        num_mel_bins: mel_bins,
        ..KaldiFbank::default()
    })
}

/// The manifests to train and test on: the user's, or the synthesised set (made if missing).
fn manifests(o: &Options) -> Result<(PathBuf, PathBuf)> {
    if let (Some(train), Some(test)) = (&o.train_manifest, &o.test_manifest) {
        return Ok((train.clone(), test.clone()));
    }
    let (train, test) = (o.data.join("train.tsv"), o.data.join("test.tsv"));
    if !(train.is_file() && test.is_file()) {
        let start = Instant::now();
        println!(
            "synthesising {} training and {} test utterances with espeak-ng into {}",
            o.train_utterances,
            o.test_utterances,
            o.data.display()
        );
        synthesize(
            &o.data,
            &SynthConfig {
                train_utterances: o.train_utterances,
                test_utterances: o.test_utterances,
                seed: o.seed,
                ..SynthConfig::default()
            },
        )?;
        println!("synthesised in {:.1} s", start.elapsed().as_secs_f64());
    }
    Ok((train, test))
}

fn run<B: ember_lm::TrainBackend>(o: &Options) -> Result<()> {
    let device = B::Device::default();
    let start = Instant::now();
    let (settings, model) = match &o.from {
        Some(dir) => {
            let path = dir.join("speech.json");
            let text = std::fs::read_to_string(&path).map_err(|e| Error::Load {
                path: path.clone(),
                message: e.to_string(),
            })?;
            let settings: RunSettings = serde_json::from_str(&text).map_err(|e| Error::Load {
                path: path.clone(),
                message: e.to_string(),
            })?;
            let model = settings.model.init::<B::InnerBackend>(&device)?;
            let model = load_model(dir, model, &device)?;
            (settings, model)
        }
        None => train::<B>(o, &device)?,
    };
    let features = extractor(settings.mel_bins);
    // The beam's language model: character n-grams of the training transcripts.
    let lm = if o.lm_order > 0 {
        let sequences = settings
            .transcripts
            .iter()
            .map(|t| settings.alphabet.encode(t))
            .collect::<Result<Vec<_>>>()?;
        Some(NgramLm::train(
            &sequences,
            o.lm_order,
            settings.alphabet.classes(),
            0.1,
        )?)
    } else {
        None
    };
    let beam = Decoding::Beam {
        options: BeamOptions {
            beam_width: o.beam,
            lm_weight: o.lm_weight,
            ..BeamOptions::default()
        },
        lm: lm.as_ref().map(|l| l as &dyn ember_lm::speech::LabelLm),
    };
    if o.from.is_none() || o.test_manifest.is_some() || o.data.join("test.tsv").is_file() {
        let (_, test_manifest) = manifests(o)?;
        let test = SpeechBatches::from_manifest(&test_manifest, &features, &settings.alphabet, 32)?
            .with_shuffle(false);
        let decode_start = Instant::now();
        let greedy = model.evaluate(&test, &settings.alphabet, Decoding::Greedy)?;
        report("greedy", &greedy, test.len())?;
        let beamed = model.evaluate(&test, &settings.alphabet, beam)?;
        report(
            &format!("beam {} + {}-gram LM", o.beam, o.lm_order),
            &beamed,
            test.len(),
        )?;
        println!(
            "test decoding took {:.1} s; examples (reference | beam):",
            decode_start.elapsed().as_secs_f64()
        );
        for (r, h) in beamed.transcripts.iter().take(5) {
            println!("  {r} | {h}");
        }
    }
    if !o.wavs.is_empty() {
        let utterances = o
            .wavs
            .iter()
            .map(|p| features.extract(&read_wav(p)?))
            .collect::<Result<Vec<_>>>()?;
        let batch = SpeechBatch::unlabelled(&utterances, features.dims())?;
        for (path, text) in o
            .wavs
            .iter()
            .zip(model.transcribe(&batch, &settings.alphabet, beam)?)
        {
            println!("{}: {text}", path.display());
        }
    }
    println!("total wall time {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}

fn report(name: &str, scores: &SpeechScores, n: usize) -> Result<()> {
    println!(
        "test ({n} utterances), {name}: WER {:.2}% CER {:.2}%",
        100.0 * scores.wer.rate,
        100.0 * scores.cer.rate
    );
    // The digit strings alone, the figure the synthesised set is judged by.
    const DIGITS: [&str; 10] = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    ];
    let (refs, hyps): (Vec<&str>, Vec<&str>) = scores
        .transcripts
        .iter()
        .filter(|(r, _)| r.split(' ').all(|w| DIGITS.contains(&w)))
        .map(|(r, h)| (r.as_str(), h.as_str()))
        .unzip();
    if !refs.is_empty() {
        let wer = ember_lm::eval::word_error_rate(&refs, &hyps)?;
        println!(
            "    digit strings ({} utterances): WER {:.2}%",
            refs.len(),
            100.0 * wer.rate
        );
    }
    Ok(())
}

/// Trains on the training manifest (10% of it held back for validation) and returns the model.
fn train<B: ember_lm::TrainBackend>(
    o: &Options,
    device: &B::Device,
) -> Result<(RunSettings, SpeechRecognizer<B::InnerBackend>)> {
    let (train_manifest, _) = manifests(o)?;
    let transcripts: Vec<String> = ember_lm::speech::read_manifest(&train_manifest)?
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    let alphabet = CharAlphabet::from_transcripts(transcripts.iter().map(String::as_str))?;
    let features = extractor(o.mel_bins);
    let start = Instant::now();
    let all = SpeechBatches::from_manifest(&train_manifest, &features, &alphabet, o.batch_size)?;
    let n = all.len();
    println!(
        "features of {} utterances in {:.1} s; alphabet {:?} ({} classes with the blank)",
        n,
        start.elapsed().as_secs_f64(),
        alphabet.chars().iter().collect::<String>(),
        alphabet.classes()
    );
    let (train, valid) = split(all, &features, o)?;
    let config = SpeechRecognizerConfig::new(o.mel_bins, alphabet.classes())
        .with_conv_channels(o.conv_channels)
        .with_cell(match o.cell {
            Cell::Lstm => CellType::Lstm,
            Cell::Gru => CellType::Gru,
        })
        .with_hidden_size(o.hidden)
        .with_num_layers(o.layers)
        .with_dropout(o.dropout);
    let total_steps = o.steps.unwrap_or(o.epochs * train.num_batches() as u64);
    let settings = RunSettings {
        model: config.clone(),
        mel_bins: o.mel_bins,
        alphabet: alphabet.clone(),
        transcripts,
    };
    if let Some(out) = &o.out {
        std::fs::create_dir_all(out).map_err(|e| Error::Save {
            path: out.clone(),
            message: e.to_string(),
        })?;
        let path = out.join("speech.json");
        let json = serde_json::to_string(&settings).map_err(|e| Error::Save {
            path: path.clone(),
            message: e.to_string(),
        })?;
        std::fs::write(&path, json).map_err(|e| Error::Save {
            path,
            message: e.to_string(),
        })?;
    }
    let mut trainer = Trainer::new(
        TrainerConfig::new()
            .with_max_epochs(Some(o.epochs))
            .with_max_steps(o.steps)
            .with_seed(o.seed)
            .with_run_dir(o.out.clone())
            .with_valid_every(o.valid_every)
            .with_monitor(Monitor {
                metric: "loss".into(),
                mode: ember_lm::optim::PlateauMode::Min,
            }),
        CtcTask::new(config.clone()),
        config.init::<B>(device)?,
        &OptimizerConfig::adamw()
            .with_lr(o.lr)
            .with_weight_decay(1e-2)
            .with_clip(Some(GradClip::Norm(5.0))),
        LrSchedule::WarmupCosine {
            warmup_steps: total_steps / 20,
            decay_steps: total_steps,
            min_lr: o.lr / 20.0,
        },
        device,
    )?;
    let start = Instant::now();
    trainer.fit(&train, Some(&valid))?;
    println!("trained in {:.1} s", start.elapsed().as_secs_f64());
    Ok((settings, trainer.model().valid()))
}

/// The training manifest's utterances, the last 10% held back for validation; SpecAugment on the
/// training part unless turned off.
fn split(
    all: SpeechBatches,
    features: &FeatureExtractor,
    o: &Options,
) -> Result<(SpeechBatches, SpeechBatches)> {
    let n_valid = (all.len() / 10).max(1);
    let (train, valid) = all.split_tail(n_valid)?;
    let augment = (!o.no_spec_augment).then_some(SpecAugment {
        freq_masks: 2,
        freq_width: features.dims() / 5,
        time_masks: 2,
        time_width: 10,
        max_time_ratio: 0.1,
        fill: 0.0,
    });
    Ok((train.with_spec_augment(augment), valid.with_shuffle(false)))
}
