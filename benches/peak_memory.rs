//! Runs training steps of one recurrent layer at one shape, for measuring peak resident memory
//! with `/usr/bin/time -v` (PyTorch's side: the same step in `torch_rnn.py`'s shapes).
//!
//! ```text
//! cargo bench --features flex --bench peak_memory --no-run
//! /usr/bin/time -v target/release/deps/peak_memory-* lstm flex 32 64 256 512 2 5
//! ```
//! Arguments: kind (lstm|gru|rnn), backend (ndarray|flex), batch, time, input, hidden, layers, steps.

use burn::backend::{Autodiff, NdArray};
use burn::tensor::{Distribution, Tensor};
use ember_lm::nn::{GruConfig, LstmConfig, RnnConfig};

fn run<B: ember_lm::TrainBackend>(kind: &str, dims: &[usize]) {
    let device = B::Device::default();
    let [b, t, i, h, l, steps] = dims.try_into().expect("six sizes");
    let x = Tensor::<B, 3>::random([b, t, i], Distribution::Normal(0.0, 1.0), &device);
    let lstm = LstmConfig::new(i, h)
        .with_num_layers(l)
        .init::<B>(&device)
        .unwrap();
    let gru = GruConfig::new(i, h)
        .with_num_layers(l)
        .init::<B>(&device)
        .unwrap();
    let rnn = RnnConfig::new(i, h)
        .with_num_layers(l)
        .init::<B>(&device)
        .unwrap();
    for _ in 0..steps {
        let out = match kind {
            "lstm" => lstm.forward(x.clone(), None).unwrap().0,
            "gru" => gru.forward(x.clone(), None).unwrap().0,
            _ => rnn.forward(x.clone(), None).unwrap().0,
        };
        let grads = out.powi_scalar(2).mean().backward();
        drop(grads);
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if args.len() < 8 {
        eprintln!("usage: peak_memory KIND BACKEND B T I H LAYERS STEPS");
        return;
    }
    let dims: Vec<usize> = args[2..8].iter().map(|s| s.parse().expect("a size")).collect();
    match args[1].as_str() {
        #[cfg(feature = "flex")]
        "flex" => run::<Autodiff<burn::backend::Flex>>(&args[0], &dims),
        _ => run::<Autodiff<NdArray>>(&args[0], &dims),
    }
}
