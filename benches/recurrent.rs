//! One training step (forward, mean-squared loss over the outputs, backward) of ember-lm's `Lstm`,
//! `Gru` and `Rnn` against burn's own `burn::nn::Lstm`/`Gru`/`Rnn` stacked to the same depth, on
//! the same backend, at the shapes of `../shared/bench/torch_rnn.py` (PyTorch on the same shapes).
//! Also the forward pass alone of ember-lm's layers, without autodiff.
//!
//! ```text
//! cargo bench --bench recurrent --features flex            # everything (about 15 minutes)
//! cargo bench --bench recurrent --features flex -- lstm    # a criterion filter
//! cargo bench --bench recurrent --features wgpu -- wgpu     # on a GPU (benches/torch_cuda.py for PyTorch)
//! ```

use burn::backend::{Autodiff, NdArray};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Distribution, Tensor};
use criterion::{BenchmarkId, Criterion, SamplingMode, criterion_group, criterion_main};
use ember_lm::nn::{GruConfig, LstmConfig, RnnConfig};

/// A model as a function from input to output.
type Forward<'a, B> = &'a dyn Fn(Tensor<B, 3>) -> Tensor<B, 3>;

/// batch, time, input, hidden, layers
const SHAPES: [(usize, usize, usize, usize, usize); 3] =
    [(8, 32, 64, 128, 1), (32, 64, 128, 256, 1), (32, 64, 256, 512, 2)];

fn id(kind: &str, (b, t, i, h, l): (usize, usize, usize, usize, usize)) -> String {
    format!("{kind}/B{b}_T{t}_I{i}_H{h}_L{l}")
}

/// A training step of a model given as a closure from input to output.
fn train_step<B: AutodiffBackend>(x: &Tensor<B, 3>, forward: &dyn Fn(Tensor<B, 3>) -> Tensor<B, 3>) {
    let out = forward(x.clone());
    let loss = out.powi_scalar(2).mean();
    let grads = loss.backward();
    // Wait for the backend: the gradients exist once this returns.
    B::sync(&x.device()).ok();
    drop(grads);
}

fn bench_backend<B: ember_lm::TrainBackend>(c: &mut Criterion, backend: &str) {
    let device = B::Device::default();
    let mut group = c.benchmark_group(format!("train_step/{backend}"));
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.measurement_time(std::time::Duration::from_secs(5));
    group.warm_up_time(std::time::Duration::from_secs(1));
    for shape in SHAPES {
        let (b, t, i, h, l) = shape;
        let x = Tensor::<B, 3>::random([b, t, i], Distribution::Normal(0.0, 1.0), &device);

        let ours = LstmConfig::new(i, h)
            .with_num_layers(l)
            .init::<B>(&device)
            .unwrap();
        group.bench_function(BenchmarkId::new("ember", id("lstm", shape)), |bench| {
            bench.iter(|| train_step(&x, &|x| ours.forward(x, None).unwrap().0))
        });
        let theirs: Vec<_> = (0..l)
            .map(|k| burn::nn::LstmConfig::new(if k == 0 { i } else { h }, h, true).init::<B>(&device))
            .collect();
        group.bench_function(BenchmarkId::new("burn", id("lstm", shape)), |bench| {
            bench.iter(|| train_step(&x, &|x| theirs.iter().fold(x, |x, m| m.forward(x, None).0)))
        });

        let ours = GruConfig::new(i, h)
            .with_num_layers(l)
            .init::<B>(&device)
            .unwrap();
        group.bench_function(BenchmarkId::new("ember", id("gru", shape)), |bench| {
            bench.iter(|| train_step(&x, &|x| ours.forward(x, None).unwrap().0))
        });
        let theirs: Vec<_> = (0..l)
            .map(|k| burn::nn::GruConfig::new(if k == 0 { i } else { h }, h, true).init::<B>(&device))
            .collect();
        group.bench_function(BenchmarkId::new("burn", id("gru", shape)), |bench| {
            bench.iter(|| train_step(&x, &|x| theirs.iter().fold(x, |x, m| m.forward(x, None))))
        });

        let ours = RnnConfig::new(i, h)
            .with_num_layers(l)
            .init::<B>(&device)
            .unwrap();
        group.bench_function(BenchmarkId::new("ember", id("rnn", shape)), |bench| {
            bench.iter(|| train_step(&x, &|x| ours.forward(x, None).unwrap().0))
        });
        let theirs: Vec<_> = (0..l)
            .map(|k| burn::nn::RnnConfig::new(if k == 0 { i } else { h }, h, true).init::<B>(&device))
            .collect();
        group.bench_function(BenchmarkId::new("burn", id("rnn", shape)), |bench| {
            bench.iter(|| train_step(&x, &|x| theirs.iter().fold(x, |x, m| m.forward(x, None).0)))
        });
    }
    group.finish();
}

fn bench_forward<B: ember_lm::Backend>(c: &mut Criterion, backend: &str) {
    let device = B::Device::default();
    let mut group = c.benchmark_group(format!("forward/{backend}"));
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.measurement_time(std::time::Duration::from_secs(3));
    group.warm_up_time(std::time::Duration::from_secs(1));
    for shape in SHAPES {
        let (b, t, i, h, l) = shape;
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
        let models: [(&str, Forward<B>); 3] = [
            ("lstm", &|x| lstm.forward(x, None).unwrap().0),
            ("gru", &|x| gru.forward(x, None).unwrap().0),
            ("rnn", &|x| rnn.forward(x, None).unwrap().0),
        ];
        for (kind, forward) in models {
            group.bench_function(BenchmarkId::new("ember", id(kind, shape)), |bench| {
                bench.iter(|| {
                    let out = forward(x.clone());
                    B::sync(&device).ok();
                    out
                })
            });
        }
    }
    group.finish();
}

/// Decoding with an LSTM: 64 single-token steps of one sequence, the state carried between
/// calls, as a language model's generation loop runs it (`benches/torch_forward.py`'s `decode`).
fn bench_decode<B: ember_lm::Backend>(c: &mut Criterion, backend: &str) {
    let device = B::Device::default();
    let mut group = c.benchmark_group(format!("decode/{backend}"));
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.measurement_time(std::time::Duration::from_secs(3));
    group.warm_up_time(std::time::Duration::from_secs(1));
    for (_, _, i, h, l) in SHAPES {
        let lstm = LstmConfig::new(i, h)
            .with_num_layers(l)
            .init::<B>(&device)
            .unwrap();
        let tokens = Tensor::<B, 3>::random([1, 64, i], Distribution::Normal(0.0, 1.0), &device);
        // [1, 64, I] -> 64 x [1, 1, I]
        let steps = tokens.chunk(64, 1);
        let name = format!("lstm/64_steps_I{i}_H{h}_L{l}");
        group.bench_function(BenchmarkId::new("ember", name), |bench| {
            bench.iter(|| {
                let mut state = None;
                for x in &steps {
                    let (_, next) = lstm.forward(x.clone(), state.take()).unwrap();
                    state = Some(next);
                }
                B::sync(&device).ok();
                state
            })
        });
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    bench_backend::<Autodiff<NdArray<f32>>>(c, "ndarray");
    bench_forward::<NdArray<f32>>(c, "ndarray");
    bench_decode::<NdArray<f32>>(c, "ndarray");
    #[cfg(feature = "flex")]
    {
        bench_backend::<Autodiff<burn::backend::Flex>>(c, "flex");
        bench_forward::<burn::backend::Flex>(c, "flex");
        bench_decode::<burn::backend::Flex>(c, "flex");
    }
    #[cfg(feature = "wgpu")]
    {
        bench_backend::<Autodiff<burn::backend::Wgpu>>(c, "wgpu");
        bench_forward::<burn::backend::Wgpu>(c, "wgpu");
    }
}

criterion_group!(recurrent, benches);
criterion_main!(recurrent);
