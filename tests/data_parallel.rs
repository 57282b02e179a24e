//! Data-parallel training through burn-collective: replicas stay identical, and two replicas on
//! half batches take the same steps as one trainer on whole batches. Runs on as many CPU devices
//! as burn-collective accepts here (two replicas of NdArray's CPU device, one thread each); with
//! several GPUs the same code takes `WgpuDevice::DiscreteGpu(i)` devices (see `docs/training.md`).
#![cfg(all(feature = "collective", feature = "ndarray"))]

mod common;

use burn::backend::{Autodiff, NdArray};
use common::train::{Fixed, corpus, gpt_config, param_values, quiet, rows, same_gpts};
use ember_lm::optim::{LrSchedule, OptimizerConfig};
use ember_lm::train::{GptLmTask, Trainer, fit_data_parallel};

type B = Autodiff<NdArray>;

#[test]
fn two_replicas_on_half_batches_match_one_trainer_on_whole_batches() {
    let config = gpt_config(0.0);
    let len = 9;
    let ids: Vec<i64> = corpus()[..8 * len].to_vec();
    // Replica r reads batches r, r + 2, ...: step 1 is {b1 | b2}, step 2 {b3 | b4}.
    let halves = Fixed((0..4).map(|i| rows(&ids, 2 * i, 2, len)).collect());
    let wholes = Fixed(vec![rows(&ids, 0, 4, len), rows(&ids, 4, 4, len)]);
    let sgd = OptimizerConfig::sgd(0.5);
    let start = same_gpts::<B>(&config, 1).pop().unwrap();

    let device = Default::default();
    let mut single = Trainer::new(
        quiet().with_max_epochs(Some(1)),
        GptLmTask::new(config.clone()),
        start.clone(),
        &sgd,
        LrSchedule::Constant,
        &device,
    )
    .unwrap();
    single.fit(&wholes, None).unwrap();

    // Rank 1 starts from other weights: the broadcast from rank 0 must replace them.
    let devices = vec![device; 2];
    let results = fit_data_parallel::<B, _, _>(
        &devices,
        |rank, device| {
            let model = if rank == 0 {
                start.clone()
            } else {
                config.init::<B>(device)?
            };
            Trainer::new(
                quiet().with_max_epochs(Some(1)),
                GptLmTask::new(config.clone()),
                model,
                &sgd,
                LrSchedule::Constant,
                device,
            )
        },
        &halves,
        None,
    )
    .unwrap();
    assert_eq!(results.len(), 2);
    for (report, _) in &results {
        assert_eq!(report.steps, 2);
    }
    let (r0, r1) = (param_values(&results[0].1), param_values(&results[1].1));
    assert!(r0 == r1, "the replicas drifted apart");
    assert_ne!(r0, param_values(&start), "the replicas trained");
    let s = param_values(single.model());
    for (x, y) in r0.iter().flatten().zip(s.iter().flatten()) {
        assert!((x - y).abs() <= 1e-5 + 1e-4 * y.abs(), "{x} vs {y}");
    }
    // Fewer batches than replicas is an error, not a hang.
    let err = fit_data_parallel::<B, _, _>(
        &devices[..1],
        |_, device| {
            Trainer::new(
                quiet().with_max_steps(Some(1)),
                GptLmTask::new(config.clone()),
                config.init::<B>(device)?,
                &sgd,
                LrSchedule::Constant,
                device,
            )
        },
        &Fixed(Vec::new()),
        None,
    )
    .unwrap_err();
    assert!(err.to_string().contains("no batches"), "{err}");
}
