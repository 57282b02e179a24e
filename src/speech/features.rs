//! Audio features computed on the CPU: torchaudio's `MelSpectrogram` (Hann window, centred
//! frames with reflection padding, HTK or Slaney mel scale, power) and Kaldi's filterbank as
//! `torchaudio.compliance.kaldi.fbank` computes it (Povey window, pre-emphasis, DC removal,
//! power-of-two FFT, Kaldi's mel banks, log with a floor), per-utterance normalisation and
//! SpecAugment masking.

use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};

use crate::data::SplitMix64;
use crate::{Error, Result};

/// The mel scale of a [`MelSpectrogram`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MelScale {
    /// `2595 log10(1 + f / 700)` (torchaudio's default, `mel_scale="htk"`).
    Htk,
    /// Slaney's: linear below 1 kHz, logarithmic above (librosa's default, `mel_scale="slaney"`).
    Slaney,
}

/// torchaudio's `transforms.MelSpectrogram`, with its defaults except where a field says.
#[derive(Debug, Clone, PartialEq)]
pub struct MelSpectrogram {
    /// Samples per second. Default 16000.
    pub sample_rate: u32,
    /// FFT size (and window length). Default 400.
    pub n_fft: usize,
    /// Samples between frames. Default `n_fft / 2`.
    pub hop_length: usize,
    /// Mel bands. Default 128.
    pub n_mels: usize,
    /// Lowest frequency of the bands. Default 0.
    pub f_min: f64,
    /// Highest frequency (`None`: `sample_rate / 2`). Default `None`.
    pub f_max: Option<f64>,
    /// Exponent of the magnitude (2: power, 1: magnitude). Default 2.
    pub power: f64,
    /// The mel scale. Default HTK.
    pub mel_scale: MelScale,
    /// Slaney's area normalisation of the bands (`norm="slaney"`). Default false.
    pub slaney_norm: bool,
}

impl Default for MelSpectrogram {
    fn default() -> Self {
        Self {
            sample_rate: 16000,
            n_fft: 400,
            hop_length: 200,
            n_mels: 128,
            f_min: 0.0,
            f_max: None,
            power: 2.0,
            mel_scale: MelScale::Htk,
            slaney_norm: false,
        }
    }
}

fn hz_to_mel(f: f64, scale: MelScale) -> f64 {
    match scale {
        MelScale::Htk => 2595.0 * (1.0 + f / 700.0).log10(),
        MelScale::Slaney => {
            let (f_sp, min_log_hz, min_log_mel, logstep) = slaney();
            if f >= min_log_hz {
                min_log_mel + (f / min_log_hz).ln() / logstep
            } else {
                f / f_sp
            }
        }
    }
}

fn mel_to_hz(m: f64, scale: MelScale) -> f64 {
    match scale {
        MelScale::Htk => 700.0 * (10f64.powf(m / 2595.0) - 1.0),
        MelScale::Slaney => {
            let (f_sp, min_log_hz, min_log_mel, logstep) = slaney();
            if m >= min_log_mel {
                min_log_hz * (logstep * (m - min_log_mel)).exp()
            } else {
                f_sp * m
            }
        }
    }
}

/// Slaney's constants: Hz per mel below 1 kHz, the break, its mel, the log step above.
fn slaney() -> (f64, f64, f64, f64) {
    (200.0 / 3.0, 1000.0, 15.0, 6.4f64.ln() / 27.0)
}

/// A real FFT of `n` points and the power (`|X|^power`) of its first `n / 2 + 1` bins.
struct Spectrum {
    fft: Arc<dyn RealToComplex<f64>>,
}

impl Spectrum {
    fn new(n: usize) -> Self {
        Self {
            fft: RealFftPlanner::<f64>::new().plan_fft_forward(n),
        }
    }

    fn power(&self, frame: &mut [f64], power: f64) -> Vec<f64> {
        let mut out = self.fft.make_output_vec();
        // The frame is exactly n long; the FFT cannot fail.
        self.fft.process(frame, &mut out).expect("an n-point frame");
        out.iter().map(|c| c.norm().powf(power)).collect()
    }
}

impl MelSpectrogram {
    fn check(&self, samples: usize) -> Result<()> {
        let fail = |m: String| {
            Err(Error::Config {
                module: "MelSpectrogram",
                message: m,
            })
        };
        if self.n_fft < 2 || self.hop_length == 0 || self.n_mels == 0 || self.sample_rate == 0 {
            return fail(format!(
                "n_fft >= 2, hop_length, n_mels and sample_rate > 0; found {self:?}"
            ));
        }
        let nyquist = self.sample_rate as f64 / 2.0;
        let f_max = self.f_max.unwrap_or(nyquist);
        if !(self.f_min >= 0.0 && self.f_min < f_max && f_max <= nyquist && self.power > 0.0) {
            return fail(format!(
                "needs 0 <= f_min < f_max <= sample_rate / 2 and power > 0, found f_min {}, f_max {f_max}, power {}",
                self.f_min, self.power
            ));
        }
        if samples <= self.n_fft / 2 {
            return Err(Error::Data(format!(
                "MelSpectrogram: {samples} samples; reflection padding needs more than n_fft / 2 = {}",
                self.n_fft / 2
            )));
        }
        Ok(())
    }

    /// The mel filterbank `[n_fft / 2 + 1, n_mels]` (torchaudio's `melscale_fbanks`).
    pub fn filterbank(&self) -> Vec<Vec<f64>> {
        let n_freqs = self.n_fft / 2 + 1;
        let nyquist = self.sample_rate as f64 / 2.0;
        let f_max = self.f_max.unwrap_or(nyquist);
        let (lo, hi) = (
            hz_to_mel(self.f_min, self.mel_scale),
            hz_to_mel(f_max, self.mel_scale),
        );
        let f_pts: Vec<f64> = (0..self.n_mels + 2)
            .map(|i| {
                mel_to_hz(
                    lo + (hi - lo) * i as f64 / (self.n_mels + 1) as f64,
                    self.mel_scale,
                )
            })
            .collect();
        (0..n_freqs)
            .map(|k| {
                let f = nyquist * k as f64 / (n_freqs - 1) as f64;
                (0..self.n_mels)
                    .map(|m| {
                        let down = (f - f_pts[m]) / (f_pts[m + 1] - f_pts[m]);
                        let up = (f_pts[m + 2] - f) / (f_pts[m + 2] - f_pts[m + 1]);
                        let w = down.min(up).max(0.0);
                        if self.slaney_norm {
                            w * 2.0 / (f_pts[m + 2] - f_pts[m])
                        } else {
                            w
                        }
                    })
                    .collect()
            })
            .collect()
    }

    /// The mel spectrogram of `samples`, frames centred (`1 + len / hop_length` of them, the
    /// signal reflected at both ends).
    ///
    /// # Shapes
    /// - output: `frames × n_mels`, frame after frame
    pub fn compute(&self, samples: &[f32]) -> Result<Vec<f32>> {
        self.check(samples.len())?;
        let (n, pad) = (self.n_fft, self.n_fft / 2);
        // Reflection padding: x[pad], ..., x[1], x[0], ..., x[len - 1], x[len - 2], ...
        let len = samples.len();
        let at = |i: isize| -> f64 {
            let j = if i < 0 {
                (-i) as usize
            } else if i as usize >= len {
                2 * (len - 1) - i as usize
            } else {
                i as usize
            };
            samples[j] as f64
        };
        // torchaudio's periodic Hann window.
        let window: Vec<f64> = (0..n)
            .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos())
            .collect();
        let bank = self.filterbank();
        let spectrum = Spectrum::new(n);
        let frames = 1 + len / self.hop_length;
        let mut out = Vec::with_capacity(frames * self.n_mels);
        let mut frame = vec![0.0; n];
        for t in 0..frames {
            let start = (t * self.hop_length) as isize - pad as isize;
            for (i, v) in frame.iter_mut().enumerate() {
                *v = at(start + i as isize) * window[i];
            }
            let power = spectrum.power(&mut frame, self.power);
            for m in 0..self.n_mels {
                out.push(power.iter().zip(&bank).map(|(p, row)| p * row[m]).sum::<f64>() as f32);
            }
        }
        Ok(out)
    }
}

/// Kaldi's filterbank features as `torchaudio.compliance.kaldi.fbank` computes them with its
/// defaults (no dither): 25 ms frames every 10 ms, only whole frames (`snip_edges`), DC
/// offset removed, pre-emphasis 0.97, Povey window, FFT rounded up to a power of two, power
/// spectrum, Kaldi's mel banks (`1127 ln(1 + f / 700)`, 20 Hz to Nyquist), natural log floored
/// at f32's epsilon.
#[derive(Debug, Clone, PartialEq)]
pub struct KaldiFbank {
    /// Samples per second. Default 16000.
    pub sample_rate: u32,
    /// Mel bins. Default 23.
    pub num_mel_bins: usize,
    /// Frame length in milliseconds. Default 25.
    pub frame_length_ms: f64,
    /// Frame shift in milliseconds. Default 10.
    pub frame_shift_ms: f64,
    /// Lowest band edge in Hz. Default 20.
    pub low_freq: f64,
    /// Highest band edge in Hz; 0 or less counts from Nyquist (Kaldi's convention). Default 0.
    pub high_freq: f64,
    /// Pre-emphasis coefficient. Default 0.97.
    pub preemphasis: f64,
}

impl Default for KaldiFbank {
    fn default() -> Self {
        Self {
            sample_rate: 16000,
            num_mel_bins: 23,
            frame_length_ms: 25.0,
            frame_shift_ms: 10.0,
            low_freq: 20.0,
            high_freq: 0.0,
            preemphasis: 0.97,
        }
    }
}

impl KaldiFbank {
    /// The log filterbank energies of `samples`.
    ///
    /// # Shapes
    /// - output: `frames × num_mel_bins`, frame after frame, `frames = 1 + (len - frame) / shift`
    pub fn compute(&self, samples: &[f32]) -> Result<Vec<f32>> {
        let sr = self.sample_rate as f64;
        let frame_len = (sr * self.frame_length_ms / 1000.0) as usize;
        let shift = (sr * self.frame_shift_ms / 1000.0) as usize;
        let nyquist = sr / 2.0;
        let high = if self.high_freq <= 0.0 {
            nyquist + self.high_freq
        } else {
            self.high_freq
        };
        if frame_len < 2
            || shift == 0
            || self.num_mel_bins == 0
            || !(self.low_freq >= 0.0 && self.low_freq < high && high <= nyquist)
        {
            return Err(Error::Config {
                module: "KaldiFbank",
                message: format!(
                    "needs a frame of 2+ samples, a shift, bins and 0 <= low_freq < high_freq <= Nyquist; found {self:?}"
                ),
            });
        }
        if samples.len() < frame_len {
            return Err(Error::Data(format!(
                "KaldiFbank: {} samples, fewer than one frame of {frame_len}",
                samples.len()
            )));
        }
        let padded = frame_len.next_power_of_two();
        let bins = self.banks(padded, high);
        let window: Vec<f64> = (0..frame_len)
            .map(|i| {
                (0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / (frame_len - 1) as f64).cos())
                    .powf(0.85)
            })
            .collect();
        let spectrum = Spectrum::new(padded);
        let frames = 1 + (samples.len() - frame_len) / shift;
        let mut out = Vec::with_capacity(frames * self.num_mel_bins);
        let mut frame = vec![0.0; padded];
        for t in 0..frames {
            let raw = &samples[t * shift..t * shift + frame_len];
            let mean = raw.iter().map(|&v| v as f64).sum::<f64>() / frame_len as f64;
            let x: Vec<f64> = raw.iter().map(|&v| v as f64 - mean).collect();
            frame.fill(0.0);
            for i in 0..frame_len {
                // Kaldi's pre-emphasis: the first sample against itself.
                let previous = if i == 0 { x[0] } else { x[i - 1] };
                frame[i] = (x[i] - self.preemphasis * previous) * window[i];
            }
            let power = spectrum.power(&mut frame, 2.0);
            for row in &bins {
                let e: f64 = row.iter().zip(&power).map(|(w, p)| w * p).sum();
                out.push((e.max(f32::EPSILON as f64)).ln() as f32);
            }
        }
        Ok(out)
    }

    /// Kaldi's triangular mel banks over the FFT's first `padded / 2` bins (the Nyquist bin's
    /// weight is 0): `[num_mel_bins][padded / 2 + 1]`.
    fn banks(&self, padded: usize, high: f64) -> Vec<Vec<f64>> {
        let mel = |f: f64| 1127.0 * (1.0 + f / 700.0).ln();
        let (lo, hi) = (mel(self.low_freq), mel(high));
        let delta = (hi - lo) / (self.num_mel_bins + 1) as f64;
        let width = self.sample_rate as f64 / padded as f64;
        (0..self.num_mel_bins)
            .map(|b| {
                let (left, center, right) = (
                    lo + b as f64 * delta,
                    lo + (b + 1) as f64 * delta,
                    lo + (b + 2) as f64 * delta,
                );
                (0..=padded / 2)
                    .map(|k| {
                        if k == padded / 2 {
                            return 0.0;
                        }
                        let m = mel(width * k as f64);
                        if m > left && m <= center {
                            (m - left) / (center - left)
                        } else if m > center && m < right {
                            (right - m) / (right - center)
                        } else {
                            0.0
                        }
                    })
                    .collect()
            })
            .collect()
    }
}

/// Normalises each of `dims` feature dimensions to zero mean and unit variance over the
/// utterance's frames (per-utterance CMVN), in place; a constant dimension becomes 0.
pub fn normalize_utterance(features: &mut [f32], dims: usize) {
    if dims == 0 || features.is_empty() {
        return;
    }
    let frames = features.len() / dims;
    for d in 0..dims {
        let values = || features.iter().skip(d).step_by(dims).map(|&v| v as f64);
        let mean = values().sum::<f64>() / frames as f64;
        let var = values().map(|v| (v - mean) * (v - mean)).sum::<f64>() / frames as f64;
        let scale = if var > 1e-10 { 1.0 / var.sqrt() } else { 0.0 };
        for v in features.iter_mut().skip(d).step_by(dims) {
            *v = ((*v as f64 - mean) * scale) as f32;
        }
    }
}

/// SpecAugment's masks (Park et al., 2019): `freq_masks` bands of up to `freq_width` feature
/// dimensions and `time_masks` spans of up to `time_width` frames (never more than
/// `max_time_ratio` of the utterance), set to `fill` (0 after normalisation, the mean).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpecAugment {
    /// Frequency masks per utterance.
    pub freq_masks: usize,
    /// Their widest width.
    pub freq_width: usize,
    /// Time masks per utterance.
    pub time_masks: usize,
    /// Their widest width in frames.
    pub time_width: usize,
    /// The widest time mask as a share of the frames.
    pub max_time_ratio: f64,
    /// The value masked positions take.
    pub fill: f32,
}

impl Default for SpecAugment {
    /// Two frequency masks of up to 15 bins, two time masks of up to 40 frames and 20% of the
    /// utterance, filled with 0 (LibriSpeech's basic policy, scaled to short utterances).
    fn default() -> Self {
        Self {
            freq_masks: 2,
            freq_width: 15,
            time_masks: 2,
            time_width: 40,
            max_time_ratio: 0.2,
            fill: 0.0,
        }
    }
}

impl SpecAugment {
    /// Masks `features` (`frames × dims`) in place with draws from `rng`.
    pub fn apply(&self, features: &mut [f32], dims: usize, rng: &mut SplitMix64) {
        if dims == 0 {
            return;
        }
        let frames = features.len() / dims;
        for _ in 0..self.freq_masks {
            let width = rng.below(self.freq_width.min(dims) as u64 + 1) as usize;
            let start = rng.below((dims - width) as u64 + 1) as usize;
            for t in 0..frames {
                features[t * dims + start..t * dims + start + width].fill(self.fill);
            }
        }
        let widest = self
            .time_width
            .min((frames as f64 * self.max_time_ratio) as usize);
        for _ in 0..self.time_masks {
            let width = rng.below(widest as u64 + 1) as usize;
            let start = rng.below((frames - width) as u64 + 1) as usize;
            features[start * dims..(start + width) * dims].fill(self.fill);
        }
    }
}
