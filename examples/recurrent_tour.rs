//! A tour of ember-lm's recurrent layers, offline, in under a second with `--release`.
//!
//! 1. Loads an `nn.LSTM` state dict saved by PyTorch (the test fixture
//!    `tests/fixtures/recurrent/lstm_2l_bi_proj.weights.safetensors`: 2 layers, bidirectional,
//!    `proj_size` 3) and checks ember-lm's output against PyTorch's on the same input.
//! 2. Trains a bidirectional GRU with a linear head on a padded batch of variable-length sequences
//!    (predict, at every step, the sum of the inputs seen so far and still to come), with Adam,
//!    and prints the falling loss.
//!
//! Run: `cargo run --release --example recurrent_tour` (add `--features flex` and
//! `-- --device flex` for the Flex backend; `--help` lists the options).

use burn::module::AutodiffModule;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::{Distribution, TensorData};
use ember_lm::io::{StateDict, TorchWeights};
use ember_lm::nn::{Gru, GruConfig, LstmConfig, LstmState};

#[path = "common/cli.rs"]
mod cli;

use clap::Parser;

/// A tour of the recurrent layers: PyTorch weights in and PyTorch's numbers out, then a
/// bidirectional GRU trained on padded sequences of different lengths.
#[derive(Parser, Debug)]
#[command(name = "recurrent_tour", version)]
struct Options {
    /// Where to compute (each needs its cargo feature).
    #[arg(long, value_enum, default_value_t = cli::Device::best_compiled())]
    device: cli::Device,
}

fn main() {
    let o = Options::parse();
    cli::init_tracing();
    let name = o.device.to_string();
    if let Err(e) = cli::on_device!("recurrent_tour", o.device, tour(&name)) {
        tracing::error!("{e}");
        std::process::exit(1);
    }
}

fn tour<B>(name: &str) -> ember_lm::Result<()>
where
    B: ember_lm::TrainBackend,
{
    let device = B::Device::default();
    println!("backend: {name}");

    // 1. PyTorch weights in, PyTorch numbers out.
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/recurrent");
    let lstm = LstmConfig::new(4, 6)
        .with_num_layers(2)
        .with_bidirectional(true)
        .with_proj_size(3)
        .init::<B::InnerBackend>(&device)?
        .load_pytorch_file(fixtures.join("lstm_2l_bi_proj.weights.safetensors"))?;
    let reference = StateDict::from_file(fixtures.join("lstm_2l_bi_proj.io.safetensors"))?;
    let x = reference.tensor::<B::InnerBackend, 3>("input", &device)?;
    let state = LstmState {
        hidden: reference.tensor("h0", &device)?,
        cell: reference.tensor("c0", &device)?,
    };
    let (out, _) = lstm.forward(x, Some(state))?;
    let expected = reference.tensor::<B::InnerBackend, 3>("output", &device)?;
    let max_diff: f32 = (out - expected).abs().max().into_scalar().elem();
    println!("PyTorch LSTM (2 layers, bidirectional, proj_size 3): max |ours - torch| = {max_diff:.2e}");

    // 2. Train a bidirectional GRU on padded, variable-length sequences.
    let mut model = Tagger {
        gru: GruConfig::new(1, 24).with_bidirectional(true).init(&device)?,
        head: LinearConfig::new(48, 1).init(&device),
    };
    let mut optim = AdamConfig::new().init();
    B::seed(&device, 0);
    for step in 0..=300 {
        let (x, lengths, y) = batch::<B>(32, 12, &device);
        let pred = model.forward(x, &lengths)?;
        let loss = (pred - y).powi_scalar(2).mean();
        if step % 50 == 0 {
            let value: f32 = loss.clone().into_scalar().elem();
            println!("step {step:>3}: mean squared error {value:.4}");
        }
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(3e-3, model, grads);
    }
    let _inference = model.valid();
    Ok(())
}

/// A sequence tagger: bidirectional GRU, then a linear head at every step.
#[derive(Module, Debug)]
struct Tagger<B: ember_lm::Backend> {
    gru: Gru<B>,
    head: Linear<B>,
}

impl<B: ember_lm::Backend> Tagger<B> {
    fn forward(&self, x: Tensor<B, 3>, lengths: &[usize]) -> ember_lm::Result<Tensor<B, 3>> {
        let (h, _) = self.gru.forward_padded(x, lengths, None)?; // [batch, time, 48], zero at padding
        Ok(self.head.forward(h))
    }
}

/// Random sequences of 3..=time steps, padded with zeros; the target at each real step is the sum
/// of the whole sequence (which needs both directions), and zero at padding.
fn batch<B: Backend>(
    batch: usize,
    time: usize,
    device: &B::Device,
) -> (Tensor<B, 3>, Vec<usize>, Tensor<B, 3>) {
    let lengths: Vec<usize> = (0..batch).map(|i| 3 + (i * 7) % (time - 2)).collect();
    let mask: Vec<f32> = lengths
        .iter()
        .flat_map(|&l| (0..time).map(move |t| if t < l { 1.0 } else { 0.0 }))
        .collect();
    let mask = Tensor::<B, 3>::from_data(TensorData::new(mask, [batch, time, 1]), device);
    let x = Tensor::<B, 3>::random([batch, time, 1], Distribution::Uniform(-1.0, 1.0), device) * mask.clone();
    let total = x.clone().sum_dim(1); // [batch, 1, 1]
    let y = total.repeat_dim(1, time) * mask;
    (x, lengths, y)
}
