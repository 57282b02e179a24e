//! [`SpeechRecognizer`]: a CTC acoustic model as DeepSpeech2 and the Conformer front ends build
//! it, read top to bottom:
//!
//! ```text
//! x = features [N, T, F] as one channel          [N, 1, T, F]
//! x = relu(conv1(x)); x = relu(conv2(x))         two 3×3 convolutions of stride 2: T/4, F/4
//! x = rnn(x as [N, T/4, C·F/4], lengths / 4)     a bidirectional LSTM or GRU stack (fused kernels)
//! log_probs = log_softmax(out(dropout(x)))       [N, T/4, classes], class 0 the blank by default
//! ```

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Dropout, DropoutConfig, PaddingConfig2d};
use burn::tensor::Tensor;
use burn::tensor::activation::{log_softmax, relu};

use crate::nn::{CellType, Recurrent, RecurrentConfig, TorchLinear};
use crate::{Backend, Error, Result};

/// Configuration of a [`SpeechRecognizer`].
#[derive(Config, Debug)]
pub struct SpeechRecognizerConfig {
    /// Feature dimensions per frame (mel bands or filterbank bins).
    pub n_features: usize,
    /// Output classes, the blank included.
    pub classes: usize,
    /// Channels of both convolutions. Default 32.
    #[config(default = 32)]
    pub conv_channels: usize,
    /// The recurrent cell. Default LSTM.
    #[config(default = "CellType::Lstm")]
    pub cell: CellType,
    /// Hidden units per direction. Default 256.
    #[config(default = 256)]
    pub hidden_size: usize,
    /// Recurrent layers. Default 3.
    #[config(default = 3)]
    pub num_layers: usize,
    /// Both directions. Default true.
    #[config(default = true)]
    pub bidirectional: bool,
    /// Dropout between recurrent layers and before the output layer (training only).
    /// Default 0.1.
    #[config(default = 0.1)]
    pub dropout: f64,
}

/// The acoustic model; see the module documentation.
#[derive(Module, Debug)]
pub struct SpeechRecognizer<B: Backend> {
    /// First convolution (1 → channels, stride 2 in time and frequency).
    pub conv1: Conv2d<B>,
    /// Second convolution (channels → channels, stride 2).
    pub conv2: Conv2d<B>,
    /// The recurrent stack.
    pub rnn: Recurrent<B>,
    /// The output layer to the classes.
    pub out: TorchLinear<B>,
    dropout: Dropout,
    n_features: usize,
}

/// A length after one 3×3 convolution of stride 2 with padding 1: `ceil(len / 2)`.
fn halved(len: usize) -> usize {
    len.div_ceil(2)
}

impl SpeechRecognizerConfig {
    /// Builds the model, or an [`Error::Config`] naming the field for zero sizes or a dropout
    /// outside `[0, 1)`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<SpeechRecognizer<B>> {
        let sizes = [
            ("n_features", self.n_features),
            ("classes", self.classes),
            ("conv_channels", self.conv_channels),
            ("hidden_size", self.hidden_size),
            ("num_layers", self.num_layers),
        ];
        if let Some((name, _)) = sizes.iter().find(|(_, v)| *v == 0) {
            return Err(Error::Config {
                module: "SpeechRecognizerConfig",
                message: format!("{name} must be positive, found 0"),
            });
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::Config {
                module: "SpeechRecognizerConfig",
                message: format!("dropout must be in [0, 1), found {}", self.dropout),
            });
        }
        let conv = |c_in: usize| {
            Conv2dConfig::new([c_in, self.conv_channels], [3, 3])
                .with_stride([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device)
        };
        let rnn_input = self.conv_channels * halved(halved(self.n_features));
        let directions = if self.bidirectional { 2 } else { 1 };
        Ok(SpeechRecognizer {
            conv1: conv(1),
            conv2: conv(self.conv_channels),
            rnn: RecurrentConfig::new(self.cell, rnn_input, self.hidden_size)
                .with_num_layers(self.num_layers)
                .with_bidirectional(self.bidirectional)
                .with_dropout(self.dropout)
                .init(device)?,
            out: TorchLinear::new(directions * self.hidden_size, self.classes, true, device),
            dropout: DropoutConfig::new(self.dropout).init(),
            n_features: self.n_features,
        })
    }
}

impl<B: Backend> SpeechRecognizer<B> {
    /// The frames an input of `frames` frames has after the convolutions: `ceil(ceil(frames / 2) / 2)`.
    pub fn output_frames(frames: usize) -> usize {
        halved(halved(frames))
    }

    /// Feature dimensions per input frame.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Output classes, the blank included.
    pub fn classes(&self) -> usize {
        self.out.weight.dims()[0]
    }

    /// Log-probabilities of the classes per output frame, and each utterance's output length.
    /// An [`Error::Shape`] when `lengths` does not have one entry per utterance or one exceeds
    /// the frames.
    ///
    /// # Shapes
    /// - `features`: `[N, T, F]`, utterance `i` in its first `lengths[i]` frames
    /// - output: `[N, ceil(T / 4), classes]` and `N` lengths
    pub fn forward(&self, features: Tensor<B, 3>, lengths: &[usize]) -> Result<(Tensor<B, 3>, Vec<usize>)> {
        let [n, t, f] = features.dims();
        if f != self.n_features {
            return Err(Error::shape(
                "SpeechRecognizer features",
                format!("[batch, frames, {}] (n_features)", self.n_features),
                &[n, t, f],
            ));
        }
        if lengths.len() != n || lengths.iter().any(|&l| l == 0 || l > t) {
            return Err(Error::shape(
                "SpeechRecognizer lengths",
                format!("{n} lengths in 1..={t}"),
                &[lengths.len()],
            ));
        }
        // [N, T, F] -> [N, 1, T, F] -> [N, C, T', F'] -> [N, T', C, F'] -> [N, T', C·F']
        let x = features.reshape([n, 1, t, f]);
        let x = relu(self.conv2.forward(relu(self.conv1.forward(x))));
        let [_, c, t2, f2] = x.dims();
        let x = x.swap_dims(1, 2).reshape([n, t2, c * f2]);
        let out_lengths: Vec<usize> = lengths.iter().map(|&l| Self::output_frames(l)).collect();
        let (h, _) = self.rnn.forward(x, Some(&out_lengths), None)?;
        let logits = self.out.forward(self.dropout.forward(h))?;
        Ok((log_softmax(logits, 2), out_lengths))
    }
}
