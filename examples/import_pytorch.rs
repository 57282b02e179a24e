//! Loads an LSTM trained in PyTorch from a `torch.save` (`.pt`) or `.safetensors` state dict, runs
//! it, and prints its outputs next to the ones PyTorch computed. Under a second.
//!
//! The weights and the reference come from `tests/fixtures/make_recurrent.py`; in substance:
//!
//! ```python
//! lstm = torch.nn.LSTM(4, 6, num_layers=2, bidirectional=True, proj_size=3, batch_first=True)
//! torch.save(lstm.state_dict(), "lstm.pt")           # or safetensors.torch.save_file(lstm.state_dict(), ...)
//! out, (h_n, c_n) = lstm(x, (h0, c0))                 # x: [3, 5, 4]; PyTorch's numbers are saved with x
//! ```
//!
//! ```text
//! cargo run --release --example import_pytorch
//! cargo run --release --example import_pytorch -- --weights lstm.safetensors --io io.safetensors
//! ```
//!
//! `--io` is a safetensors file with `input` `[batch, time, 4]`, `h0`, `c0` and PyTorch's `output`
//! and `h_n`.

use burn::tensor::{ElementConversion, Tensor};
use ember_lm::io::{StateDict, TorchWeights};
use ember_lm::nn::{LstmConfig, LstmState};
use ember_lm::{Error, Result};

#[path = "common/cli.rs"]
mod cli;

use clap::Parser;
use cli::Device;

/// Load an LSTM state dict saved by PyTorch and compare its outputs with PyTorch's.
#[derive(Parser, Debug)]
#[command(name = "import_pytorch", version)]
struct Options {
    /// The state dict of `nn.LSTM(4, 6, num_layers=2, bidirectional=True, proj_size=3)`: a
    /// `torch.save` `.pt` or a `.safetensors` file [default: the test fixture].
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/recurrent/lstm_2l_bi_proj.weights.pt"))]
    weights: String,
    /// A safetensors file with `input` `[batch, time, 4]`, `h0`, `c0` and PyTorch's `output` and
    /// `h_n` [default: the test fixture].
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/recurrent/lstm_2l_bi_proj.io.safetensors"))]
    io: String,
    /// Where to compute (each needs its cargo feature).
    #[arg(long, value_enum, default_value_t = Device::best_compiled())]
    device: Device,
}

fn main() {
    let o = Options::parse();
    cli::init_tracing();
    if let Err(e) = cli::on_device!("import_pytorch", o.device, run(&o)) {
        tracing::error!("{e}");
        std::process::exit(1);
    }
}

/// Inference only: the model runs on `A`'s inner backend.
fn run<A: ember_lm::TrainBackend>(o: &Options) -> Result<()> {
    type B<A> = <A as burn::tensor::backend::AutodiffBackend>::InnerBackend;
    let (weights, io) = (&o.weights, &o.io);
    let device = Default::default();
    // torch.nn.LSTM(4, 6, num_layers=2, bidirectional=True, proj_size=3, batch_first=True)
    let lstm = LstmConfig::new(4, 6)
        .with_num_layers(2)
        .with_bidirectional(true)
        .with_proj_size(3)
        .init::<B<A>>(&device)?
        .load_pytorch_file(weights)?;
    let reference = StateDict::from_file(io)?;
    let x: Tensor<B<A>, 3> = reference.tensor("input", &device)?;
    let state = LstmState {
        hidden: reference.tensor("h0", &device)?,
        cell: reference.tensor("c0", &device)?,
    };
    let (out, state) = lstm.forward(x, Some(state))?;
    let torch_out: Tensor<B<A>, 3> = reference.tensor("output", &device)?;
    let torch_h: Tensor<B<A>, 3> = reference.tensor("h_n", &device)?;
    let row =
        |t: Tensor<B<A>, 3>| -> Vec<f32> { t.slice([0..1, 0..1]).into_data().to_vec().unwrap_or_default() };
    println!("loaded {weights}");
    println!("output[0, 0]  ember-lm: {:?}", row(out.clone()));
    println!("output[0, 0]  PyTorch:  {:?}", row(torch_out.clone()));
    println!("h_n[0, 0]     ember-lm: {:?}", row(state.hidden.clone()));
    println!("h_n[0, 0]     PyTorch:  {:?}", row(torch_h.clone()));
    let diff: f32 = (out - torch_out).abs().max().into_scalar().elem();
    let diff_h: f32 = (state.hidden - torch_h).abs().max().into_scalar().elem();
    println!("largest difference: output {diff:.2e}, h_n {diff_h:.2e}");
    if diff > 1e-4 || diff_h > 1e-4 {
        return Err(Error::Data("the outputs differ from PyTorch's".into()));
    }
    Ok(())
}
