//! The CTC loss, forward and backward (the gradient of the logits through `log_softmax`), on a
//! batch of 16 utterances × 200 frames × 30 classes with targets of 20 to 50 labels: ember-lm's
//! `CtcLoss` (its CPU kernel) against burn's `CTCLoss` (burn's tensor-op recursion) on the same
//! backend. `benches/torch_ctc.py` runs PyTorch's CPU `ctc_loss` on the same shapes.
//!
//! ```text
//! cargo bench --bench ctc --features flex
//! cargo bench --bench ctc --features wgpu -- wgpu   # on a GPU (benches/torch_cuda.py ctc)
//! ```

use std::time::Duration;

use burn::backend::Autodiff;
use burn::nn::loss::CTCLossConfig;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Distribution, Tensor};
use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use ember_lm::data::SplitMix64;
use ember_lm::nn::{CtcLossConfig, Reduction};

const N: usize = 16;
const T: usize = 200;
const C: usize = 30;

fn run<B: ember_lm::Backend>(c: &mut Criterion, backend: &str) {
    type A<B> = Autodiff<B>;
    let device = B::Device::default();
    let mut rng = SplitMix64::new(3);
    let targets: Vec<Vec<u32>> = (0..N)
        .map(|_| {
            let len = 20 + rng.below(31) as usize;
            (0..len).map(|_| 1 + rng.below(C as u64 - 1) as u32).collect()
        })
        .collect();
    let input_lengths: Vec<usize> = (0..N).map(|i| T - 4 * (i % 5)).collect();
    let logits = Tensor::<A<B>, 3>::random([N, T, C], Distribution::Normal(0.0, 1.0), &device);
    let mut group = c.benchmark_group(format!("ctc_forward_backward/{backend}"));
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(if backend == "wgpu" { 5 } else { 1 }));
    let ours = CtcLossConfig::new().with_reduction(Reduction::Mean).init();
    group.bench_function("ember_lm/N16_T200_C30", |bench| {
        bench.iter(|| {
            let x = logits.clone().require_grad();
            let loss = ours
                .forward(log_softmax(x.clone(), 2), &targets, &input_lengths)
                .unwrap();
            let grad = x.grad(&loss.backward());
            B::sync(&device).ok();
            grad
        })
    });
    // burn's module: [T, N, C], padded targets and lengths as tensors.
    let (padded, il, tl) = burn_ctc::burn_ctc_inputs::<A<B>>(&targets, &input_lengths, &device);
    let burn_ctc = CTCLossConfig::new().init();
    group.bench_function("burn/N16_T200_C30", |bench| {
        bench.iter(|| {
            let x = logits.clone().require_grad();
            let lp = log_softmax(x.clone(), 2).swap_dims(0, 1);
            let loss = burn_ctc.forward_with_reduction(
                lp,
                padded.clone(),
                il.clone(),
                tl.clone(),
                burn::nn::loss::Reduction::Mean,
            );
            let grad = x.grad(&loss.backward());
            B::sync(&device).ok();
            grad
        })
    });
    group.finish();
}

#[path = "common/burn_ctc.rs"]
mod burn_ctc;
#[path = "common/selected.rs"]
mod selected;

fn benches(c: &mut Criterion) {
    #[cfg(feature = "flex")]
    if selected::selected("flex") {
        run::<burn::backend::Flex>(c, "flex");
    }
    if selected::selected("ndarray") {
        run::<burn::backend::NdArray>(c, "ndarray");
    }
    // On wgpu both rows run burn's kernel (ember-lm's CtcLoss falls back to it there).
    #[cfg(feature = "wgpu")]
    if selected::selected("wgpu") {
        run::<burn::backend::Wgpu>(c, "wgpu");
    }
}

criterion_group!(ctc, benches);
criterion_main!(ctc);
