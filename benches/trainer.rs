//! Trainer overhead: one optimizer step of a tiny GPT through ember-lm's `Trainer` (batches from
//! `LmWindows`, loss and accuracy read back, global gradient norm, schedule, metrics window)
//! against a bare hand-written loop on the same model and data (batch, forward, cross-entropy,
//! backward, AdamW step, loss read back as a logging loop does). The model is tiny so that
//! per-step overhead shows.
//!
//! ```text
//! cargo bench --bench trainer --features flex
//! ```

use std::time::{Duration, Instant};

use burn::backend::{Autodiff, NdArray};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::GradientsParams;
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use criterion::{BenchmarkId, Criterion, SamplingMode, criterion_group, criterion_main};
use ember_lm::data::{Batches, LmShape, LmWindows};
use ember_lm::models::GptConfig;
use ember_lm::optim::{LrSchedule, OptimizerConfig};
use ember_lm::train::{GptLmTask, ProgressMode, Trainer, TrainerConfig};

/// vocab 64, block 32, 2 layers, 2 heads, width 32, batch 8.
fn config() -> GptConfig {
    GptConfig::new()
        .with_vocab_size(64)
        .with_block_size(32)
        .with_n_layer(2)
        .with_n_head(2)
        .with_n_embd(32)
}
const BATCH: usize = 8;

fn corpus() -> Vec<i64> {
    (0..20_000).map(|i: i64| (i * 7 + i / 3) % 64).collect()
}

fn bench_backend<B: ember_lm::TrainBackend>(c: &mut Criterion, backend: &str) {
    let device = B::Device::default();
    let data = LmWindows::new(
        corpus(),
        LmShape {
            batch_size: BATCH,
            seq_len: 32,
        },
    )
    .unwrap();
    let optim = OptimizerConfig::adamw();
    let mut group = c.benchmark_group(format!("train_step_tiny_gpt/{backend}"));
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(20)
        .warm_up_time(Duration::from_secs(2));

    group.bench_function(BenchmarkId::new("bare_loop", "V64_T32_L2_D32_B8"), |bench| {
        bench.iter_custom(|iters| {
            let mut model = config().init::<B>(&device).unwrap();
            let mut opt = optim.init::<B, _>(&model).unwrap();
            let start = Instant::now();
            for i in 0..iters {
                let batch = data.get(0, i as usize, 42).unwrap();
                let (x, y) = batch.inputs_targets().unwrap();
                let x = Tensor::<B, 2, Int>::from_data(TensorData::new(x, [BATCH, 32]), &device);
                let y = Tensor::<B, 1, Int>::from_data(TensorData::new(y, [BATCH * 32]), &device);
                let logits = model.forward(x).unwrap().reshape([BATCH * 32, 64]);
                let loss = CrossEntropyLossConfig::new().init(&device).forward(logits, y);
                let _logged: f64 = loss.clone().into_scalar().elem();
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                model = opt.step_lr(1e-3, model, grads);
            }
            B::sync(&device).ok();
            start.elapsed()
        })
    });

    group.bench_function(BenchmarkId::new("trainer", "V64_T32_L2_D32_B8"), |bench| {
        bench.iter_custom(|iters| {
            let model = config().init::<B>(&device).unwrap();
            let mut trainer = Trainer::new(
                TrainerConfig::new()
                    .with_max_steps(Some(iters))
                    .with_log_every(50)
                    .with_progress(ProgressMode::Off),
                GptLmTask::new(config()),
                model,
                &optim,
                LrSchedule::Constant,
                &device,
            )
            .unwrap();
            let start = Instant::now();
            trainer.fit(&data, None).unwrap();
            B::sync(&device).ok();
            start.elapsed()
        })
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    bench_backend::<Autodiff<NdArray<f32>>>(c, "ndarray");
    #[cfg(feature = "flex")]
    bench_backend::<Autodiff<burn::backend::Flex>>(c, "flex");
}

criterion_group!(trainer, benches);
criterion_main!(trainer);
