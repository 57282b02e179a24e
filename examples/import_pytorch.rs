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

use burn::backend::NdArray;
use burn::tensor::Tensor;
use ember_lm::io::{StateDict, TorchWeights};
use ember_lm::nn::{LstmConfig, LstmState};
use ember_lm::{Error, Result};

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/recurrent");
    let mut weights = format!("{fixtures}/lstm_2l_bi_proj.weights.pt");
    let mut io = format!("{fixtures}/lstm_2l_bi_proj.io.safetensors");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().ok_or_else(|| Error::Config {
            module: "import_pytorch",
            message: format!("{a} needs a value"),
        })?;
        match a.as_str() {
            "--weights" => weights = v,
            "--io" => io = v,
            other => {
                return Err(Error::Config {
                    module: "import_pytorch",
                    message: format!("unknown argument `{other}`"),
                });
            }
        }
    }
    type B = NdArray;
    let device = Default::default();
    // torch.nn.LSTM(4, 6, num_layers=2, bidirectional=True, proj_size=3, batch_first=True)
    let lstm = LstmConfig::new(4, 6)
        .with_num_layers(2)
        .with_bidirectional(true)
        .with_proj_size(3)
        .init::<B>(&device)?
        .load_pytorch_file(&weights)?;
    let reference = StateDict::from_file(&io)?;
    let x: Tensor<B, 3> = reference.tensor("input", &device)?;
    let state = LstmState {
        hidden: reference.tensor("h0", &device)?,
        cell: reference.tensor("c0", &device)?,
    };
    let (out, state) = lstm.forward(x, Some(state))?;
    let torch_out: Tensor<B, 3> = reference.tensor("output", &device)?;
    let torch_h: Tensor<B, 3> = reference.tensor("h_n", &device)?;
    let row =
        |t: Tensor<B, 3>| -> Vec<f32> { t.slice([0..1, 0..1]).into_data().to_vec().unwrap_or_default() };
    println!("loaded {weights}");
    println!("output[0, 0]  ember-lm: {:?}", row(out.clone()));
    println!("output[0, 0]  PyTorch:  {:?}", row(torch_out.clone()));
    println!("h_n[0, 0]     ember-lm: {:?}", row(state.hidden.clone()));
    println!("h_n[0, 0]     PyTorch:  {:?}", row(torch_h.clone()));
    let diff: f32 = (out - torch_out).abs().max().into_scalar();
    let diff_h: f32 = (state.hidden - torch_h).abs().max().into_scalar();
    println!("largest difference: output {diff:.2e}, h_n {diff_h:.2e}");
    if diff > 1e-4 || diff_h > 1e-4 {
        return Err(Error::Data("the outputs differ from PyTorch's".into()));
    }
    Ok(())
}
