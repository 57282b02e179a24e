//! Runs training steps of one recurrent layer, or of a GPT, at one shape, for measuring peak
//! resident memory with `/usr/bin/time -v` (PyTorch's side: `torch_peak_memory.py`, same
//! arguments).
//!
//! ```text
//! cargo bench --features flex --bench peak_memory --no-run
//! /usr/bin/time -v target/release/deps/peak_memory-* lstm flex 32 64 256 512 2 5
//! ```
//! Arguments: kind (lstm|gru|rnn), backend (ndarray|flex), batch, time, input, hidden, layers, steps;
//! or `gpt`, backend, batch, block, layers, heads, width, steps (vocabulary 65, exact GELU, tied
//! head; a whole training step: forward, cross-entropy, backward, AdamW):
//!
//! ```text
//! /usr/bin/time -f "%M KB" target/release/deps/peak_memory-* gpt flex 4 1024 4 4 128 3
//! ```

use burn::backend::{Autodiff, NdArray};
use burn::tensor::{Distribution, Tensor};
use ember_lm::nn::{GruConfig, LstmConfig, RnnConfig};

fn gpt<B: ember_lm::TrainBackend>(dims: &[usize]) {
    use burn::tensor::Int;
    use ember_lm::models::GptConfig;
    use ember_lm::nn::{CrossEntropyLossConfig, FeedForwardActivation};
    use ember_lm::optim::OptimizerConfig;
    let device = B::Device::default();
    let [b, t, layers, heads, width, steps] = dims.try_into().expect("six sizes");
    let v = 65;
    let mut model = GptConfig::new()
        .with_vocab_size(v)
        .with_block_size(t)
        .with_n_layer(layers)
        .with_n_head(heads)
        .with_n_embd(width)
        .with_activation(FeedForwardActivation::Gelu)
        .init::<B>(&device)
        .unwrap();
    let mut optim = OptimizerConfig::adamw().init::<B, _>(&model).unwrap();
    let loss = CrossEntropyLossConfig::new().init().unwrap();
    let ids = Tensor::<B, 2, Int>::random([b, t], Distribution::Uniform(0.0, v as f64), &device);
    let targets = Tensor::<B, 1, Int>::random([b * t], Distribution::Uniform(0.0, v as f64), &device);
    for _ in 0..steps {
        // [B, T, V] -> [B*T, V]
        let logits = model.forward(ids.clone()).unwrap().reshape([b * t, v]);
        let grads = loss.forward(logits, targets.clone()).unwrap().backward();
        let grads = burn::optim::GradientsParams::from_grads(grads, &model);
        model = optim.step_lr(1e-3, model, grads);
    }
}

fn run<B: ember_lm::TrainBackend>(kind: &str, dims: &[usize]) {
    if kind == "gpt" {
        return gpt::<B>(dims);
    }
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
