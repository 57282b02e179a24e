//! The speech example's model, one training step (forward, CTC loss, backward, AdamW step) on a
//! batch of 16 utterances of 200 to 110 frames of 40 filterbank bins (2 s to 1.1 s of speech),
//! 24 classes: ember-lm's `SpeechRecognizer` (two stride-2 convolutions, a 2-layer bidirectional
//! LSTM of 128 per direction over the real lengths, `CtcLoss`) against the same network from
//! burn's modules (`Conv2d`, two `BiLstm` over the padded frames, `Linear`, burn's `CTCLoss`).
//! `benches/torch_speech.py` runs the same network in PyTorch (`pack_padded_sequence`,
//! `F.ctc_loss`).
//!
//! ```text
//! cargo bench --bench speech --features flex
//! cargo bench --bench speech --features wgpu -- wgpu
//! ```

use std::time::Duration;

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::loss::CTCLossConfig;
use burn::nn::{BiLstm, BiLstmConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::activation::{log_softmax, relu};
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};
use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use ember_lm::data::SplitMix64;
use ember_lm::nn::CtcLossConfig;
use ember_lm::optim::OptimizerConfig;
use ember_lm::speech::{SpeechRecognizer, SpeechRecognizerConfig};

const N: usize = 16;
const T: usize = 200;
const F: usize = 40;
const C: usize = 24;
const HIDDEN: usize = 128;

/// The same network from burn's modules.
#[derive(Module, Debug)]
struct BurnSpeech<B: Backend> {
    conv1: Conv2d<B>,
    conv2: Conv2d<B>,
    rnn1: BiLstm<B>,
    rnn2: BiLstm<B>,
    out: Linear<B>,
}

impl<B: Backend> BurnSpeech<B> {
    fn new(device: &B::Device) -> Self {
        let conv = |c_in| {
            Conv2dConfig::new([c_in, 32], [3, 3])
                .with_stride([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device)
        };
        Self {
            conv1: conv(1),
            conv2: conv(32),
            rnn1: BiLstmConfig::new(32 * F / 4, HIDDEN, true).init(device),
            rnn2: BiLstmConfig::new(2 * HIDDEN, HIDDEN, true).init(device),
            out: LinearConfig::new(2 * HIDDEN, C).init(device),
        }
    }

    fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [n, t, f] = x.dims();
        // [N, T, F] -> [N, 1, T, F] -> [N, 32, T/4, F/4] -> [N, T/4, 32·F/4]
        let x = relu(
            self.conv2
                .forward(relu(self.conv1.forward(x.reshape([n, 1, t, f])))),
        );
        let [_, c, t2, f2] = x.dims();
        let x = x.swap_dims(1, 2).reshape([n, t2, c * f2]);
        let (x, _) = self.rnn1.forward(x, None);
        let (x, _) = self.rnn2.forward(x, None);
        log_softmax(self.out.forward(x), 2)
    }
}

fn run<B: ember_lm::TrainBackend>(c: &mut Criterion, backend: &str) {
    let device = B::Device::default();
    B::seed(&device, 1);
    let mut rng = SplitMix64::new(5);
    let lengths: Vec<usize> = (0..N).map(|i| T - 6 * i).collect();
    let out_lengths: Vec<usize> = lengths
        .iter()
        .map(|&l| SpeechRecognizer::<B>::output_frames(l))
        .collect();
    // Transcripts of 12 to 24 characters, as the digit strings are.
    let targets: Vec<Vec<u32>> = (0..N)
        .map(|_| {
            let len = 12 + rng.below(13) as usize;
            (0..len).map(|_| 1 + rng.below(C as u64 - 1) as u32).collect()
        })
        .collect();
    let x = Tensor::<B, 3>::random([N, T, F], Distribution::Normal(0.0, 1.0), &device);
    let mut group = c.benchmark_group(format!("speech_train_step/{backend}"));
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(if backend == "wgpu" { 5 } else { 20 }));
    let config = SpeechRecognizerConfig::new(F, C)
        .with_hidden_size(HIDDEN)
        .with_num_layers(2)
        .with_dropout(0.0);
    let ctc = CtcLossConfig::new().init();
    let mut ours = Some(config.init::<B>(&device).unwrap());
    let mut optim = OptimizerConfig::adamw()
        .init::<B, _>(ours.as_ref().unwrap())
        .unwrap();
    let mut step = || {
        let model = ours.take().unwrap();
        let (lp, out) = model.forward(x.clone(), &lengths).unwrap();
        let loss = ctc.forward(lp, &targets, &out).unwrap();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        ours = Some(optim.step(model, grads));
        B::sync(&device).ok();
    };
    // Untimed steps first: wgpu compiles and autotunes its kernels on the first calls.
    (0..3).for_each(|_| step());
    group.bench_function("ember_lm/N16_T200_F40", |bench| bench.iter(&mut step));

    let (padded, il, tl) = burn_ctc::burn_ctc_inputs::<B>(&targets, &out_lengths, &device);
    let burn_ctc = CTCLossConfig::new().init();
    let mut burn = Some(BurnSpeech::<B>::new(&device));
    let mut adamw = AdamWConfig::new().with_weight_decay(0.01).init();
    let mut burn_step = || {
        let model = burn.take().unwrap();
        let lp = model.forward(x.clone()).swap_dims(0, 1);
        let loss = burn_ctc.forward_with_reduction(
            lp,
            padded.clone(),
            il.clone(),
            tl.clone(),
            burn::nn::loss::Reduction::Mean,
        );
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        burn = Some(adamw.step(1e-3, model, grads));
        B::sync(&device).ok();
    };
    (0..3).for_each(|_| burn_step());
    group.bench_function("burn_modules/N16_T200_F40", |bench| bench.iter(&mut burn_step));
    group.finish();
}

#[path = "common/burn_ctc.rs"]
mod burn_ctc;
#[path = "common/selected.rs"]
mod selected;

fn benches(c: &mut Criterion) {
    #[cfg(feature = "flex")]
    if selected::selected("flex") {
        run::<burn::backend::Autodiff<burn::backend::Flex>>(c, "flex");
    }
    #[cfg(not(feature = "flex"))]
    if selected::selected("ndarray") {
        run::<burn::backend::Autodiff<burn::backend::NdArray>>(c, "ndarray");
    }
    #[cfg(feature = "wgpu")]
    if selected::selected("wgpu") {
        run::<burn::backend::Autodiff<burn::backend::Wgpu>>(c, "wgpu");
    }
}

criterion_group!(speech, benches);
criterion_main!(speech);
