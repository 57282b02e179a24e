//! Exact resume: training N steps straight, and N/2 + checkpoint + resume + N/2, give bitwise
//! identical parameters, for a GPT (dropout on, accumulation with partial groups, clipping,
//! warmup-cosine, AdamW) and for an LSTM language model trained with truncated BPTT whose carried
//! state is checkpointed mid-epoch.
//!
//! On `NdArray<f64>`. NdArray f32 is not bitwise reproducible from run to run: burn-ndarray 0.21
//! computes `recip` (used by the backward of every division and `log`) with an approximate SIMD
//! reciprocal on the aligned part of a buffer and an exact division on the rest, so results depend
//! on allocation alignment (see `docs/training.md`). Flex f32 is deterministic and is checked too.
#![cfg(feature = "ndarray")]

mod common;

use std::path::Path;

use burn::backend::{Autodiff, NdArray};
use burn::tensor::backend::AutodiffBackend;
use common::train::*;
use ember_lm::data::{Batches, LmStreams, LmWindows};
use ember_lm::optim::{GradClip, LrSchedule, OptimizerConfig};
use ember_lm::train::{GptLmTask, Trainer};

/// burn's backend RNG (dropout) is one per backend and process: trainers running at the same time
/// on one backend would draw from it in turn, so these tests take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn adamw() -> OptimizerConfig {
    OptimizerConfig::adamw()
        .with_lr(3e-3)
        .with_clip(Some(GradClip::Norm(1.0)))
}

fn gpt_resume<B: AutodiffBackend + ember_lm::Backend>()
where
    B::InnerBackend: ember_lm::Backend,
{
    let device: B::Device = Default::default();
    let config = gpt_config(0.1); // dropout on: the backend RNG must be reseeded on resume too
    let mut models = same_gpts::<B>(&config, 2);
    let train = LmWindows::new(corpus(), 16, 4).unwrap().with_batches_per_epoch(5);
    let valid = LmWindows::new(corpus(), 16, 4).unwrap().with_batches_per_epoch(2);
    let schedule = LrSchedule::warmup_cosine(3, 12, 3e-4);
    let trainer_config = |dir: &Path, steps: u64| {
        quiet()
            .with_max_steps(Some(steps))
            .with_grad_accum(2) // 5 batches per epoch: every third step is a partial group
            .with_valid_every(Some(4))
            .with_checkpoint_every(Some(3))
            .with_run_dir(Some(dir.to_path_buf()))
    };

    let make = |dir: &Path, steps, model| {
        let task = GptLmTask::new(config.clone());
        Trainer::new(
            trainer_config(dir, steps),
            task,
            model,
            &adamw(),
            schedule.clone(),
            &device,
        )
        .unwrap()
    };
    let start = param_values(&models[0]);
    let straight_dir = tmp("straight");
    let mut straight = make(&straight_dir, 12, models.pop().unwrap());
    straight.fit(&train, Some(&valid)).unwrap();

    let dir = tmp("halves");
    let mut first = make(&dir, 6, models.pop().unwrap());
    first.fit(&train, Some(&valid)).unwrap();
    drop(first);
    // A new process would build a fresh model and trainer, then resume from the run directory.
    let mut second = make(&dir, 12, config.init::<B>(&device).unwrap())
        .resume(&dir)
        .unwrap();
    assert_eq!(second.step(), 6);
    second.fit(&train, Some(&valid)).unwrap();
    assert_eq!(second.step(), 12);
    assert_eq!(second.scheduler(), straight.scheduler());
    let (a, b) = (param_values(straight.model()), param_values(second.model()));
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!(x == y, "parameter {i} differs after resume");
    }
    // And the run really trained: the parameters moved.
    assert_ne!(start, a);
    let _ = std::fs::remove_dir_all(&straight_dir);
    let _ = std::fs::remove_dir_all(&dir);
}

fn bptt_resume<B: AutodiffBackend + ember_lm::Backend>()
where
    B::InnerBackend: ember_lm::Backend,
{
    let device: B::Device = Default::default();
    let streams = LmStreams::new(corpus(), 4, 20).unwrap();
    let per_epoch = streams.num_batches() as u64;
    assert!(per_epoch > 10);
    let valid = LmStreams::new(corpus()[..800].to_vec(), 2, 20).unwrap();
    let cfg = |dir: &Path, steps| {
        quiet()
            .with_max_steps(Some(steps))
            .with_valid_every(Some(10))
            .with_checkpoint_every(Some(per_epoch + 3)) // mid-epoch, with a carried state
            .with_run_dir(Some(dir.to_path_buf()))
    };
    let total = per_epoch + 8;
    let adam = OptimizerConfig::adam().with_lr(1e-2);
    let mut models = same_rnns::<B>(3);
    let make = |dir: &Path, steps, model| {
        let task = StreamTask::default();
        Trainer::<B, _>::new(cfg(dir, steps), task, model, &adam, LrSchedule::Constant, &device).unwrap()
    };

    let straight_dir = tmp("bptt-straight");
    let mut straight = make(&straight_dir, total, models.pop().unwrap());
    let report = straight.fit(&streams, Some(&valid)).unwrap();
    // Carried within an epoch, reset at each epoch start.
    let carried = straight.task().carried.borrow().clone();
    assert_eq!(carried.len() as u64, total);
    for (i, c) in carried.iter().enumerate() {
        assert_eq!(*c, !(i as u64).is_multiple_of(per_epoch), "batch {i}");
    }
    assert!(
        report.last_valid.unwrap().loss < (24f64).ln(),
        "the LM learns something"
    );

    let dir = tmp("bptt-halves");
    let mut first = make(&dir, per_epoch + 3, models.pop().unwrap());
    first.fit(&streams, Some(&valid)).unwrap();
    let ckpt = dir.join(format!("checkpoints/step-{:08}", per_epoch + 3));
    assert!(
        ckpt.join("carry.bin").is_file(),
        "the carried state is checkpointed"
    );
    let mut second = make(&dir, total, models.pop().unwrap()).resume(&dir).unwrap();
    second.fit(&streams, Some(&valid)).unwrap();
    assert!(
        second.task().carried.borrow()[0],
        "the first batch after resuming gets the saved state"
    );
    assert!(
        param_values(straight.model()) == param_values(second.model()),
        "parameters differ after resume"
    );
    let _ = std::fs::remove_dir_all(&straight_dir);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn gpt_resume_is_bitwise_identical_on_ndarray_f64() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    gpt_resume::<Autodiff<NdArray<f64>>>();
}

#[test]
fn truncated_bptt_carries_state_and_resumes_bitwise_on_ndarray_f64() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    bptt_resume::<Autodiff<NdArray<f64>>>();
}

#[cfg(feature = "flex")]
#[test]
fn gpt_resume_is_bitwise_identical_on_flex_f32() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    gpt_resume::<Autodiff<burn::backend::Flex>>();
}
