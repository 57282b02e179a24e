//! A GPT training step (forward, cross-entropy, backward, AdamW step) of ember-lm's `Gpt` against
//! the same model built from burn's own `burn::nn::transformer::TransformerEncoder` (pre-norm,
//! causal mask, GELU), at nanoGPT's CPU and Shakespeare configurations, on ndarray and flex;
//! `../shared/bench/torch_gpt.py` runs PyTorch on the same shapes. Then decoding: tokens per
//! second generating 256 tokens after a 1-token prompt (with the CPU configuration's model) with the KV cache and without it
//! (re-running the whole prefix each step), inference only.
//!
//! ```text
//! cargo bench --bench gpt --features flex            # everything (about 10 minutes on 2 cores)
//! cargo bench --bench gpt --features flex -- decode  # a criterion filter
//! cargo bench --bench gpt --features wgpu -- wgpu     # on a GPU (benches/torch_cuda.py for PyTorch)
//! ```

use std::time::Duration;

use burn::backend::{Autodiff, NdArray};
use burn::module::Module;
use burn::nn::attention::generate_autoregressive_mask;
use burn::nn::loss::CrossEntropyLossConfig as BurnCrossEntropy;
use burn::nn::transformer::{TransformerEncoder, TransformerEncoderConfig, TransformerEncoderInput};
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Int, Tensor};
use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use ember_lm::models::GptConfig;
use ember_lm::nn::{CrossEntropyLossConfig, FeedForwardActivation};
use ember_lm::optim::OptimizerConfig;

/// vocab, block, layers, heads, width, batch: nanoGPT's CPU and Shakespeare configurations.
const CONFIGS: [(usize, usize, usize, usize, usize, usize); 2] =
    [(65, 64, 4, 4, 128, 12), (65, 256, 6, 6, 384, 8)];

fn name((v, t, l, h, d, b): (usize, usize, usize, usize, usize, usize)) -> String {
    format!("V{v}_T{t}_L{l}_H{h}_D{d}_B{b}")
}

/// A GPT made of burn's modules, as a burn user would write it.
#[derive(Module, Debug)]
struct BurnGpt<B: Backend> {
    tok: Embedding<B>,
    pos: Embedding<B>,
    blocks: TransformerEncoder<B>,
    ln: LayerNorm<B>,
    head: Linear<B>,
}

impl<B: Backend> BurnGpt<B> {
    fn new((v, t, l, h, d, _): (usize, usize, usize, usize, usize, usize), device: &B::Device) -> Self {
        Self {
            tok: EmbeddingConfig::new(v, d).init(device),
            pos: EmbeddingConfig::new(t, d).init(device),
            blocks: TransformerEncoderConfig::new(d, 4 * d, h, l)
                .with_dropout(0.0)
                .with_norm_first(true)
                .init(device),
            ln: LayerNormConfig::new(d).init(device),
            head: LinearConfig::new(d, v).with_bias(false).init(device),
        }
    }

    fn forward(&self, ids: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let [b, t] = ids.dims();
        let device = ids.device();
        let positions = Tensor::<B, 1, Int>::arange(0..t as i64, &device)
            .reshape([1, t])
            .repeat_dim(0, b);
        let x = self.tok.forward(ids) + self.pos.forward(positions);
        let mask = generate_autoregressive_mask::<B>(b, t, &device);
        let x = self
            .blocks
            .forward(TransformerEncoderInput::new(x).mask_attn(mask));
        self.head.forward(self.ln.forward(x))
    }
}

fn loss<B: Backend>(logits: Tensor<B, 3>, targets: Tensor<B, 2, Int>) -> Tensor<B, 1> {
    let [b, t, v] = logits.dims();
    BurnCrossEntropy::new()
        .init(&logits.device())
        .forward(logits.reshape([b * t, v]), targets.reshape([b * t]))
}

/// Benchmarks `routine` after running it `untimed` times first, once, when the filter selects
/// it: wgpu autotunes and compiles its kernels on the first calls of each shape (tens of seconds
/// on a GPU), which criterion's one-second warm-up would otherwise count in the first samples.
fn bench_warm<O>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: impl Into<String>,
    untimed: usize,
    mut routine: impl FnMut() -> O,
) {
    let mut warm = false;
    group.bench_function(id.into(), |bench| {
        if !warm {
            for _ in 0..untimed {
                let _ = routine();
            }
            warm = true;
        }
        bench.iter(&mut routine)
    });
}

fn train_backend<B: ember_lm::TrainBackend>(c: &mut Criterion, backend: &str) {
    let device = B::Device::default();
    let mut group = c.benchmark_group(format!("gpt_train_step/{backend}"));
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1));
    for cfg in CONFIGS {
        let (v, t, l, h, d, b) = cfg;
        let ids = Tensor::<B, 2, Int>::random([b, t], Distribution::Uniform(0.0, v as f64), &device);
        let targets = Tensor::<B, 2, Int>::random([b, t], Distribution::Uniform(0.0, v as f64), &device);

        // Exact GELU and a tied head, as the PyTorch reference.
        let mut ours = Some(
            GptConfig::new()
                .with_vocab_size(v)
                .with_block_size(t)
                .with_n_layer(l)
                .with_n_head(h)
                .with_n_embd(d)
                .with_activation(FeedForwardActivation::Gelu)
                .init::<B>(&device)
                .unwrap(),
        );
        // ember-lm's optimizer (PyTorch's AdamW defaults, one fused pass per parameter on the CPU
        // backends), as its trainer uses.
        let mut optim = OptimizerConfig::adamw()
            .init::<B, _>(ours.as_ref().unwrap())
            .unwrap();
        // ember-lm's own cross-entropy (the fused op), as its LM task uses.
        let ce = CrossEntropyLossConfig::new().init().unwrap();
        let ember_loss = |logits: Tensor<B, 3>| {
            let [b, t, v] = logits.dims();
            ce.forward(logits.reshape([b * t, v]), targets.clone().reshape([b * t]))
                .unwrap()
        };
        let mut step = || {
            let model = ours.take().unwrap();
            let grads = ember_loss(model.forward(ids.clone()).unwrap()).backward();
            let grads = GradientsParams::from_grads(grads, &model);
            ours = Some(optim.step_lr(1e-3, model, grads));
            B::sync(&device).ok();
        };
        bench_warm(&mut group, format!("ember_lm/{}", name(cfg)), 3, &mut step);
        // The same without the optimizer step: what AdamW costs is the difference.
        let model = ours.take().unwrap();
        bench_warm(&mut group, format!("ember_lm_no_optim/{}", name(cfg)), 3, || {
            let grads = ember_loss(model.forward(ids.clone()).unwrap()).backward();
            let grads = GradientsParams::from_grads(grads, &model);
            B::sync(&device).ok();
            grads
        });

        let mut burn = Some(BurnGpt::<B>::new(cfg, &device));
        let mut optim = AdamWConfig::new().init();
        let mut step = || {
            let model = burn.take().unwrap();
            let grads = loss(model.forward(ids.clone()), targets.clone()).backward();
            let grads = GradientsParams::from_grads(grads, &model);
            burn = Some(optim.step(1e-3, model, grads));
            B::sync(&device).ok();
        };
        bench_warm(&mut group, format!("burn_encoder/{}", name(cfg)), 3, &mut step);
    }
    group.finish();
}

/// Inference only, so on the plain backend.
fn decode_backend<B: ember_lm::Backend>(c: &mut Criterion, backend: &str) {
    let device = B::Device::default();
    // The CPU configuration's model, with room for the 256 tokens.
    let (v, _, l, h, d, _) = CONFIGS[0];
    let model = GptConfig::new()
        .with_vocab_size(v)
        .with_block_size(257)
        .with_n_layer(l)
        .with_n_head(h)
        .with_n_embd(d)
        .init::<B>(&device)
        .unwrap();
    let steps = 256;
    let mut group = c.benchmark_group(format!("gpt_decode_256/{backend}"));
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1));
    let first = Tensor::<B, 2, Int>::zeros([1, 1], &device);
    let next = |logits: Tensor<B, 3>| {
        let t = logits.dims()[1];
        logits.slice([0..1, t - 1..t]).argmax(2).reshape([1, 1])
    };
    let kv_cache = || {
        let mut cache = model.new_cache(1, &device);
        let mut token = first.clone();
        for _ in 0..steps {
            token = next(model.forward_cached(token, &mut cache).unwrap());
        }
        token.into_data()
    };
    // One untimed run first: every cache length is a new shape for wgpu's autotuner.
    bench_warm(&mut group, "kv_cache", 1, kv_cache);
    let no_cache = || {
        let mut seq = first.clone();
        for _ in 0..steps {
            let token = next(model.forward(seq.clone()).unwrap());
            seq = Tensor::cat(vec![seq, token], 1);
        }
        seq.into_data()
    };
    bench_warm(&mut group, "no_cache", 1, no_cache);
    group.finish();
}

fn benches(c: &mut Criterion) {
    train_backend::<Autodiff<NdArray<f32>>>(c, "ndarray");
    #[cfg(feature = "flex")]
    train_backend::<Autodiff<burn::backend::Flex>>(c, "flex");
    decode_backend::<NdArray<f32>>(c, "ndarray");
    #[cfg(feature = "flex")]
    decode_backend::<burn::backend::Flex>(c, "flex");
    #[cfg(feature = "wgpu")]
    {
        train_backend::<Autodiff<burn::backend::Wgpu>>(c, "wgpu");
        decode_backend::<burn::backend::Wgpu>(c, "wgpu");
    }
}

criterion_group!(gpt, benches);
criterion_main!(gpt);
