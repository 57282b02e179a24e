//! Audio in: WAV files through `hound` (PCM 8/16/24/32-bit and 32-bit float, channels mixed
//! down to mono), and resampling as `torchaudio.functional.resample` does it (a Hann-windowed
//! sinc, 6 zero crossings, roll-off 0.99).

use std::path::Path;

use crate::{Error, Result};

/// A mono signal in `[-1, 1]` and its sample rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    /// The samples.
    pub samples: Vec<f32>,
    /// Samples per second.
    pub sample_rate: u32,
}

/// Reads a WAV file, mixing its channels down to mono (their mean) and scaling integer samples
/// to `[-1, 1]` (divided by `2^(bits - 1)`, as torchaudio's `load`). A file that is not a WAV,
/// is truncated, or holds a format `hound` cannot read is an [`Error::Load`] naming it.
pub fn read_wav(path: impl AsRef<Path>) -> Result<Audio> {
    let path = path.as_ref();
    let fail = |message: String| Error::Load {
        path: path.to_path_buf(),
        message,
    };
    // hound reports bad input as errors; the guard keeps a panic on a malformed header an error.
    let read = std::panic::catch_unwind(|| -> std::result::Result<Audio, String> {
        let mut reader = hound::WavReader::open(path).map_err(|e| e.to_string())?;
        let spec = reader.spec();
        if spec.channels == 0 {
            return Err("the header declares 0 channels".into());
        }
        let interleaved: Vec<f32> = match spec.sample_format {
            hound::SampleFormat::Float if spec.bits_per_sample == 32 => reader
                .samples::<f32>()
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| e.to_string())?,
            hound::SampleFormat::Int if (8..=32).contains(&spec.bits_per_sample) => {
                let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f64;
                reader
                    .samples::<i32>()
                    .map(|s| s.map(|v| (v as f64 * scale) as f32))
                    .collect::<std::result::Result<_, _>>()
                    .map_err(|e| e.to_string())?
            }
            format => {
                return Err(format!(
                    "{format:?} samples of {} bits are not supported (PCM 8 to 32 bits, or 32-bit float)",
                    spec.bits_per_sample
                ));
            }
        };
        let channels = spec.channels as usize;
        let samples = interleaved
            .chunks(channels)
            .map(|frame| frame.iter().sum::<f32>() / channels as f32)
            .collect();
        Ok(Audio {
            samples,
            sample_rate: spec.sample_rate,
        })
    });
    match read {
        Ok(Ok(audio)) if audio.samples.is_empty() => Err(fail("no samples".into())),
        Ok(Ok(audio)) => Ok(audio),
        Ok(Err(message)) => Err(fail(message)),
        Err(_) => Err(fail("the WAV reader failed on a malformed file".into())),
    }
}

/// Writes mono 16-bit PCM (samples clamped to `[-1, 1]`), as datasets and tests need.
pub fn write_wav(path: impl AsRef<Path>, audio: &Audio) -> Result<()> {
    let path = path.as_ref();
    let fail = |e: hound::Error| Error::Save {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: audio.sample_rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).map_err(fail)?;
    for &s in &audio.samples {
        writer
            .write_sample((s.clamp(-1.0, 1.0) * 32767.0).round() as i16)
            .map_err(fail)?;
    }
    writer.finalize().map_err(fail)
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Resamples `samples` from `from` to `to` Hz as `torchaudio.functional.resample` with its
/// defaults: both rates divided by their gcd, a Hann-windowed sinc low-pass at 0.99 of the lower
/// Nyquist frequency with 6 zero crossings, `ceil(len · to / from)` output samples.
pub fn resample(samples: &[f32], from: u32, to: u32) -> Result<Vec<f32>> {
    if from == 0 || to == 0 {
        return Err(Error::Config {
            module: "resample",
            message: format!("sample rates must be positive, found {from} and {to}"),
        });
    }
    if from == to {
        return Ok(samples.to_vec());
    }
    let g = gcd(from as u64, to as u64);
    let (orig, new) = ((from as u64 / g) as usize, (to as u64 / g) as usize);
    const ZEROS: f64 = 6.0;
    let base = orig.min(new) as f64 * 0.99;
    let width = (ZEROS * orig as f64 / base).ceil() as usize;
    // kernel[phase][k], k over -width .. width + orig, as torchaudio's `_get_sinc_resample_kernel`.
    let taps = 2 * width + orig;
    let kernel: Vec<Vec<f64>> = (0..new)
        .map(|phase| {
            (0..taps)
                .map(|k| {
                    let idx = (k as f64 - width as f64) / orig as f64;
                    let t = ((-(phase as f64) / new as f64 + idx) * base).clamp(-ZEROS, ZEROS);
                    let window = (t * std::f64::consts::PI / ZEROS / 2.0).cos().powi(2);
                    let t = t * std::f64::consts::PI;
                    let sinc = if t == 0.0 { 1.0 } else { t.sin() / t };
                    sinc * window * base / orig as f64
                })
                .collect()
        })
        .collect();
    // The signal padded with `width` zeros before and `width + orig` after, then one output
    // per phase every `orig` input samples.
    let len = samples.len();
    let at = |i: isize| {
        if i < 0 || i as usize >= len {
            0.0
        } else {
            samples[i as usize] as f64
        }
    };
    let target = (new * len).div_ceil(orig);
    let mut out = Vec::with_capacity(target);
    let blocks = (len + 2 * width + orig - taps) / orig + 1;
    'outer: for b in 0..blocks {
        for row in &kernel {
            if out.len() == target {
                break 'outer;
            }
            let start = (b * orig) as isize - width as isize;
            let v: f64 = row
                .iter()
                .enumerate()
                .map(|(k, w)| w * at(start + k as isize))
                .sum();
            out.push(v as f32);
        }
    }
    Ok(out)
}
