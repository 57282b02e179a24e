//! A speech dataset made offline from real synthesised voices: spoken digit strings and short
//! command phrases, spoken by `espeak-ng` with varied voices, speed, pitch and word gap, with
//! noise and gain added; the test split's voices are never heard in training. Written as WAVs
//! and `path<TAB>transcript` manifests, the layout a user gives for their own recordings
//! ([`read_manifest`]).

use std::path::{Path, PathBuf};
use std::process::Command;

use rayon::prelude::*;

use super::wav::{Audio, read_wav, resample, write_wav};
use crate::data::SplitMix64;
use crate::{Error, Result};

/// Training voices: accents and espeak-ng variants (`-v LANG+VARIANT`).
const TRAIN_ACCENTS: [&str; 4] = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp"];
const TRAIN_VARIANTS: [&str; 8] = ["adam", "ed", "f2", "f3", "john", "linda", "max", "steph"];
/// Held-out voices: other accents and other variants.
const TEST_ACCENTS: [&str; 3] = ["en-029", "en-gb-x-gbclan", "en-us-nyc"];
const TEST_VARIANTS: [&str; 4] = ["andy", "annie", "belinda", "f4"];

const DIGITS: [&str; 10] = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
];
const COMMANDS: [&str; 12] = [
    "turn on the light",
    "turn off the light",
    "open the door",
    "close the door",
    "play some music",
    "stop the music",
    "volume up",
    "volume down",
    "go left",
    "go right",
    "call home",
    "what time is it",
];

/// Settings of [`synthesize`].
#[derive(Debug, Clone, PartialEq)]
pub struct SynthConfig {
    /// Training utterances. Default 2000.
    pub train_utterances: usize,
    /// Test utterances (held-out voices). Default 200.
    pub test_utterances: usize,
    /// Sample rate of the written WAVs. Default 16000.
    pub sample_rate: u32,
    /// Shortest and longest digit string. Default 3 to 6.
    pub digits: (usize, usize),
    /// Share of command phrases among the utterances. Default 0.3.
    pub command_share: f64,
    /// Seed of the texts, voices, prosody, noise and gain.
    pub seed: u64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self {
            train_utterances: 2000,
            test_utterances: 200,
            sample_rate: 16000,
            digits: (3, 6),
            command_share: 0.3,
            seed: 0,
        }
    }
}

/// The manifests [`synthesize`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthDataset {
    /// `train.tsv`.
    pub train: PathBuf,
    /// `test.tsv` (held-out voices).
    pub test: PathBuf,
}

/// One utterance to synthesise: its text and espeak-ng's settings.
#[derive(Debug, Clone)]
struct Utterance {
    text: String,
    voice: String,
    speed: u64,
    pitch: u64,
    gap: u64,
    gain: f32,
    noise: f32,
    seed: u64,
}

fn plan(
    n: usize,
    accents: &[&str],
    variants: &[&str],
    config: &SynthConfig,
    rng: &mut SplitMix64,
) -> Vec<Utterance> {
    let mut pick = |n: usize| rng.below(n as u64) as usize;
    (0..n)
        .map(|_| {
            let text = if (pick(1000) as f64) < config.command_share * 1000.0 {
                COMMANDS[pick(COMMANDS.len())].to_string()
            } else {
                let (lo, hi) = config.digits;
                let len = lo + pick(hi - lo + 1);
                (0..len).map(|_| DIGITS[pick(10)]).collect::<Vec<_>>().join(" ")
            };
            Utterance {
                text,
                voice: format!(
                    "{}+{}",
                    accents[pick(accents.len())],
                    variants[pick(variants.len())]
                ),
                speed: 130 + pick(71) as u64,
                pitch: 30 + pick(41) as u64,
                gap: pick(8) as u64,
                gain: 0.4 + 0.6 * pick(1000) as f32 / 1000.0,
                noise: 0.002 + 0.018 * pick(1000) as f32 / 1000.0,
                seed: pick(usize::MAX / 2) as u64,
            }
        })
        .collect()
}

/// Runs espeak-ng for one utterance and writes its WAV at `rate`.
fn render(u: &Utterance, path: &Path, rate: u32) -> Result<()> {
    let raw = path.with_extension("espeak.wav");
    let status = Command::new("espeak-ng")
        .args([
            "-v",
            &u.voice,
            "-s",
            &u.speed.to_string(),
            "-p",
            &u.pitch.to_string(),
            "-g",
            &u.gap.to_string(),
        ])
        .arg("-w")
        .arg(&raw)
        .arg(&u.text)
        .status()
        .map_err(|e| Error::Config {
            module: "speech dataset",
            message: format!("cannot run espeak-ng ({e}); install it (Debian: apt-get install espeak-ng)"),
        })?;
    if !status.success() {
        return Err(Error::Data(format!(
            "espeak-ng failed on {:?} with voice {}",
            u.text, u.voice
        )));
    }
    let audio = read_wav(&raw)?;
    std::fs::remove_file(&raw).ok();
    let mut samples = resample(&audio.samples, audio.sample_rate, rate)?;
    let mut rng = SplitMix64::new(u.seed);
    for s in &mut samples {
        // Uniform noise of the given amplitude, after the gain.
        *s = *s * u.gain + u.noise * (2.0 * rng.next_f64() as f32 - 1.0);
    }
    write_wav(
        path,
        &Audio {
            samples,
            sample_rate: rate,
        },
    )
}

/// Synthesises the dataset into `dir` (`train/`, `test/`, `train.tsv`, `test.tsv`). The same
/// configuration gives the same texts, voices and noise. Needs `espeak-ng` on the `PATH`.
pub fn synthesize(dir: impl AsRef<Path>, config: &SynthConfig) -> Result<SynthDataset> {
    let dir = dir.as_ref();
    if config.digits.0 == 0
        || config.digits.0 > config.digits.1
        || !(0.0..=1.0).contains(&config.command_share)
    {
        return Err(Error::Config {
            module: "SynthConfig",
            message: format!("digits must be 1 <= min <= max and command_share in [0, 1], found {config:?}"),
        });
    }
    let mut rng = SplitMix64::new(config.seed);
    let splits = [
        (
            "train",
            plan(
                config.train_utterances,
                &TRAIN_ACCENTS,
                &TRAIN_VARIANTS,
                config,
                &mut rng,
            ),
        ),
        (
            "test",
            plan(
                config.test_utterances,
                &TEST_ACCENTS,
                &TEST_VARIANTS,
                config,
                &mut rng,
            ),
        ),
    ];
    for (name, utterances) in &splits {
        let sub = dir.join(name);
        std::fs::create_dir_all(&sub).map_err(|e| Error::Save {
            path: sub.clone(),
            message: e.to_string(),
        })?;
        utterances
            .par_iter()
            .enumerate()
            .map(|(i, u)| render(u, &sub.join(format!("{i:05}.wav")), config.sample_rate))
            .collect::<Result<Vec<()>>>()?;
        let manifest: String = utterances
            .iter()
            .enumerate()
            .map(|(i, u)| format!("{name}/{i:05}.wav\t{}\n", u.text))
            .collect();
        crate::io::atomic_write(&dir.join(format!("{name}.tsv")), manifest.as_bytes())?;
    }
    Ok(SynthDataset {
        train: dir.join("train.tsv"),
        test: dir.join("test.tsv"),
    })
}

/// A manifest of `path<TAB>transcript` lines (paths relative to the manifest's directory, or
/// absolute): each audio file with its transcript. A line without a tab, an empty transcript or
/// a file that does not exist is an [`Error::Load`] naming the line.
pub fn read_manifest(path: impl AsRef<Path>) -> Result<Vec<(PathBuf, String)>> {
    let path = path.as_ref();
    let base = path.parent().unwrap_or(Path::new("."));
    crate::data::read_lines(path)?
        .into_iter()
        .map(|(n, line)| {
            let fail = |m: &str| Error::Load {
                path: path.to_path_buf(),
                message: format!("line {n}: {m}"),
            };
            let (file, text) = line
                .split_once('\t')
                .ok_or_else(|| fail("expected path<TAB>transcript"))?;
            if text.trim().is_empty() {
                return Err(fail("an empty transcript"));
            }
            let file = base.join(file);
            if !file.is_file() {
                return Err(fail(&format!("{} does not exist", file.display())));
            }
            Ok((file, text.trim().to_string()))
        })
        .collect()
}
