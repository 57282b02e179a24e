//! The trainer: non-finite batches, gradient accumulation, checkpoint atomicity and corruption, logs
//! (CSV, TensorBoard bytes against TensorBoard's own writer, plot), early stopping, hooks, bad
//! input. On `Autodiff<NdArray>` (f32); exact resume and truncated BPTT are in `train_resume.rs`.
#![cfg(feature = "ndarray")]

mod common;

use std::cell::RefCell;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::rc::Rc;

use burn::backend::{Autodiff, NdArray};
use burn::module::AutodiffModule;
use common::train::{Fixed, corpus, gpt_config, gpt_windows, param_values, quiet, rows, same_gpts, tmp};
use ember_lm::data::{LmShape, LmWindows, TokenBatch};
use ember_lm::models::{Gpt, GptConfig};
use ember_lm::optim::{GradClip, LrSchedule, OptimizerConfig, PlateauMode};
use ember_lm::train::{
    BatchStats, EarlyStopping, EventWriter, GptLmTask, Hook, Monitor, NonFinitePolicy, StepInfo, Task,
    TrainOutput, Trainer, TrainerConfig, read_records,
};
use ember_lm::{Error, Result};

type B = Autodiff<NdArray>;

/// A trainer for a fresh small GPT with `optimizer` and a constant learning rate.
fn gpt_trainer(cfg: TrainerConfig, optimizer: &OptimizerConfig) -> Trainer<B, GptLmTask> {
    let config = gpt_config(0.0);
    let device = Default::default();
    let model = config.init::<B>(&device).unwrap();
    Trainer::new(
        cfg,
        GptLmTask::new(config),
        model,
        optimizer,
        LrSchedule::Constant,
        &device,
    )
    .unwrap()
}

fn adamw() -> OptimizerConfig {
    OptimizerConfig::adamw()
        .with_lr(3e-3)
        .with_clip(Some(GradClip::Norm(1.0)))
}

/// Wraps the GPT task and poisons the loss of chosen training batches with NaN.
struct Poisoned {
    inner: GptLmTask,
    /// Training-batch counter and the calls to poison.
    calls: RefCell<usize>,
    poison: Vec<usize>,
}

impl Task<B> for Poisoned {
    type Model = Gpt<B>;
    type Batch = TokenBatch;
    type Carry = ();
    type ValidCarry = ();
    fn train_step(
        &self,
        model: &Gpt<B>,
        batch: &TokenBatch,
        carry: Option<()>,
    ) -> Result<TrainOutput<B, ()>> {
        let mut out = self.inner.train_step(model, batch, carry)?;
        let call = {
            let mut c = self.calls.borrow_mut();
            *c += 1;
            *c - 1
        };
        if self.poison.contains(&call) {
            out.loss = out.loss.mul_scalar(f32::NAN);
        }
        Ok(out)
    }
    fn valid_step(
        &self,
        model: &Gpt<NdArray>,
        batch: &TokenBatch,
        carry: Option<()>,
    ) -> Result<(BatchStats, Option<()>)> {
        <GptLmTask as Task<B>>::valid_step(&self.inner, model, batch, carry)
    }
}

#[test]
fn a_nan_batch_never_reaches_the_weights() {
    let device = Default::default();
    let config = gpt_config(0.0);
    let train = gpt_windows();
    let task = |poison: Vec<usize>| Poisoned {
        inner: GptLmTask::new(config.clone()),
        calls: RefCell::new(0),
        poison,
    };

    // Policy Error: the step is named, the parameters are those before it.
    let mut models = same_gpts::<B>(&config, 3);
    let before = param_values(&models[0]);
    let mut t = Trainer::new(
        quiet().with_max_steps(Some(5)),
        task(vec![0]),
        models.pop().unwrap(),
        &adamw(),
        LrSchedule::Constant,
        &device,
    )
    .unwrap();
    match t.fit(&train, None) {
        Err(Error::NonFinite { what, step, .. }) => assert_eq!((what, step), ("loss", 0)),
        other => panic!("expected a non-finite error, got {other:?}"),
    }
    assert_eq!(param_values(t.model()), before);

    // Policy Skip: the poisoned step leaves the weights alone and is counted; training goes on.
    let skipping = |steps, poison, model| {
        let cfg = quiet()
            .with_max_steps(Some(steps))
            .with_non_finite(NonFinitePolicy::Skip);
        Trainer::new(cfg, task(poison), model, &adamw(), LrSchedule::Constant, &device).unwrap()
    };
    let mut t = skipping(1, vec![0], models.pop().unwrap());
    let report = t.fit(&train, None).unwrap();
    assert_eq!((report.steps, report.skipped_steps), (1, 1));
    assert_eq!(param_values(t.model()), before);

    let mut t = skipping(3, vec![1], models.pop().unwrap());
    let report = t.fit(&train, None).unwrap();
    assert_eq!((report.steps, report.skipped_steps), (3, 1));
    assert_ne!(param_values(t.model()), before);
}

#[test]
fn accumulation_averages_micro_batches_and_keeps_a_partial_group() {
    let device = Default::default();
    let config = gpt_config(0.0);
    let len = 9;
    let ids: Vec<i64> = corpus()[..6 * len].to_vec();
    // k = 2 over three micro-batches of 2 rows: steps {b1, b2} and the partial {b3}.
    let accumulated = Fixed(vec![
        rows(&ids, 0, 2, len),
        rows(&ids, 2, 2, len),
        rows(&ids, 4, 2, len),
    ]);
    // k = 1 over the same rows: {b1 ∪ b2} (4 rows, the mean of the two means) and {b3}.
    let whole = Fixed(vec![rows(&ids, 0, 4, len), rows(&ids, 4, 2, len)]);
    let mut models = same_gpts::<B>(&config, 2);
    let sgd = OptimizerConfig::sgd(0.5);
    let run = |model, k, data: &Fixed| {
        let mut t = Trainer::new(
            quiet().with_max_epochs(Some(1)).with_grad_accum(k),
            GptLmTask::new(config.clone()),
            model,
            &sgd,
            LrSchedule::Constant,
            &device,
        )
        .unwrap();
        let report = t.fit(data, None).unwrap();
        assert_eq!(report.steps, 2, "the partial group is a step of its own");
        param_values(t.model())
    };
    let a = run(models.pop().unwrap(), 2, &accumulated);
    let b = run(models.pop().unwrap(), 1, &whole);
    for (x, y) in a.iter().flatten().zip(b.iter().flatten()) {
        assert!((x - y).abs() <= 1e-5 + 1e-4 * y.abs(), "{x} vs {y}");
    }
}

#[test]
fn checkpoints_are_pruned_checked_and_never_half_loaded() {
    let device = Default::default();
    let config = gpt_config(0.0);
    let train = gpt_windows();
    let valid = gpt_windows().with_batches_per_epoch(2);
    let dir = tmp("ckpt");
    let mut t = Trainer::new(
        quiet()
            .with_max_steps(Some(10))
            .with_checkpoint_every(Some(2))
            .with_keep_last(2)
            .with_valid_every(Some(5))
            .with_run_dir(Some(dir.clone())),
        GptLmTask::new(config.clone()),
        same_gpts::<B>(&config, 1).pop().unwrap(),
        &adamw(),
        LrSchedule::Constant,
        &device,
    )
    .unwrap();
    let report = t.fit(&train, Some(&valid)).unwrap();
    let mut kept: Vec<String> = std::fs::read_dir(dir.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    kept.sort();
    // The last two periodic ones (8, 10) and the best validation step (5 or 10).
    let best = report.best.unwrap().0;
    let mut expected = vec![8u64, 10, best];
    expected.sort();
    expected.dedup();
    let expected: Vec<String> = expected.iter().map(|s| format!("step-{s:08}")).collect();
    assert_eq!(kept, expected);
    for name in &kept {
        let d = dir.join("checkpoints").join(name);
        assert!(d.join("manifest.json").is_file());
        let leftovers: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left in {name}");
    }

    // An interrupted write (files but no manifest) is not a checkpoint: resume takes step 10.
    let partial = dir.join("checkpoints/step-00000099");
    std::fs::create_dir_all(&partial).unwrap();
    std::fs::write(partial.join("model.safetensors"), b"half").unwrap();
    let fresh = || gpt_trainer(quiet().with_max_steps(Some(12)), &adamw());
    assert_eq!(fresh().resume(&dir).unwrap().step(), 10);

    // Corruption and truncation are caught by the manifest's checksums, and nothing is loaded.
    let latest = dir.join("checkpoints/step-00000010");
    let model_bin = latest.join("model.safetensors");
    let good = std::fs::read(&model_bin).unwrap();
    let mut bad = good.clone();
    bad[good.len() / 2] ^= 0x40;
    std::fs::write(&model_bin, &bad).unwrap();
    let t = fresh();
    let before = param_values(t.model());
    let err = t.resume(&latest).err().expect("corrupt model.safetensors");
    assert!(
        matches!(&err, Error::Checkpoint { .. }) && err.to_string().contains("CRC"),
        "{err}"
    );
    std::fs::write(&model_bin, &good[..good.len() - 10]).unwrap();
    let err = fresh()
        .resume(&latest)
        .err()
        .expect("truncated model.safetensors");
    assert!(err.to_string().contains("bytes"), "{err}");
    std::fs::write(&model_bin, &good).unwrap();
    // A failed resume leaves the trainer usable and unchanged.
    let t = fresh();
    let err = t.resume(dir.join("nowhere")).err().unwrap();
    assert!(matches!(err, Error::Checkpoint { .. }), "{err}");
    // A fresh model is not where the checkpoint's training ended.
    let resumed = fresh().resume(&latest).unwrap();
    assert_ne!(
        param_values(resumed.model()),
        before,
        "a fresh model differs from the saved one"
    );

    // A checkpoint of another configuration is refused before anything is loaded.
    let other = GptConfig::new()
        .with_vocab_size(24)
        .with_block_size(16)
        .with_n_layer(2)
        .with_n_head(2)
        .with_n_embd(32);
    let t = Trainer::new(
        quiet().with_max_steps(Some(12)),
        GptLmTask::new(other.clone()),
        other.init::<B>(&device).unwrap(),
        &adamw(),
        LrSchedule::Constant,
        &device,
    )
    .unwrap();
    let err = t.resume(&dir).err().expect("another model");
    assert!(err.to_string().contains("model configuration"), "{err}");
    // ...and one with another optimizer too.
    let t = gpt_trainer(quiet().with_max_steps(Some(12)), &OptimizerConfig::sgd(0.1));
    let err = t.resume(&dir).err().expect("another optimizer");
    assert!(err.to_string().contains("optimizer"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_run_directory_has_csv_tensorboard_and_a_plot() {
    let train = gpt_windows();
    let valid = gpt_windows().with_batches_per_epoch(2);
    let dir = tmp("logs");
    let mut t = gpt_trainer(
        quiet()
            .with_max_steps(Some(8))
            .with_valid_every(Some(4))
            .with_run_dir(Some(dir.clone())),
        &adamw(),
    );
    t.fit(&train, Some(&valid)).unwrap();
    let csv = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("split,step,epoch,loss,ppl,bpc,acc,lr,grad_norm"));
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("train,")).count(),
        4,
        "{csv}"
    );
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("valid,")).count(),
        2,
        "{csv}"
    );
    // ppl = exp(loss) and bpc = loss / ln 2 on every row.
    for line in &lines[1..] {
        let f: Vec<&str> = line.split(',').collect();
        let (loss, ppl, bpc): (f64, f64, f64) = (
            f[3].parse().unwrap(),
            f[4].parse().unwrap(),
            f[5].parse().unwrap(),
        );
        assert!((ppl - loss.exp()).abs() < 1e-9 * ppl && (bpc - loss / std::f64::consts::LN_2).abs() < 1e-12);
        let acc: f64 = f[6].parse().unwrap();
        assert!((0.0..=1.0).contains(&acc));
    }
    let events: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("events.out.tfevents.")
        })
        .collect();
    assert_eq!(events.len(), 1);
    let records = read_records(&std::fs::read(&events[0]).unwrap()).unwrap();
    let has = |tag: &str| {
        records
            .iter()
            .any(|r| r.windows(tag.len()).any(|w| w == tag.as_bytes()))
    };
    for tag in [
        "brain.Event:2",
        "train/loss",
        "train/lr",
        "train/grad_norm",
        "train/acc",
        "valid/loss",
        "valid/ppl",
    ] {
        assert!(has(tag), "no {tag} in the event file");
    }
    let svg = std::fs::read_to_string(dir.join("loss.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("valid") && svg.contains("<polyline"),
        "{}",
        &svg[..200.min(svg.len())]
    );
    assert!(dir.join("config.json").is_file());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tensorboard_files_match_tensorboards_own_writer_byte_for_byte() {
    let reference = std::fs::read(common::fixture_path("tensorboard/events.out.tfevents.reference")).unwrap();
    let spec: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::fixture_path("tensorboard/scalars.json")).unwrap(),
    )
    .unwrap();
    let dir = tmp("tb");
    std::fs::create_dir_all(&dir).unwrap();
    let mut w = EventWriter::create(&dir, spec["start"].as_f64().unwrap()).unwrap();
    for e in spec["events"].as_array().unwrap() {
        w.scalar(
            e[0].as_str().unwrap(),
            e[1].as_f64().unwrap(),
            e[2].as_u64().unwrap(),
            e[3].as_f64().unwrap(),
        )
        .unwrap();
    }
    w.flush().unwrap();
    let ours = std::fs::read(w.path()).unwrap();
    assert_eq!(ours, reference);
    // TensorBoard's EventAccumulator read every scalar of that file back (recorded by the script).
    assert_eq!(spec["read_back"].as_object().unwrap().len(), 4);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_resumed_event_file_carries_pytorchs_purge_markers_byte_for_byte() {
    // The fixture's resumed file is what PyTorch's SummaryWriter(purge_step=251) writes; with the
    // killed run's file beside it, TensorBoard's own reader hid the killed run's step 300.
    let reference = std::fs::read(common::fixture_path(
        "tensorboard/resume/events.out.tfevents.1700000100.resumed",
    ))
    .unwrap();
    let spec: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::fixture_path("tensorboard/scalars.json")).unwrap(),
    )
    .unwrap();
    let resume = &spec["resume"];
    let dir = tmp("tb-resume");
    std::fs::create_dir_all(&dir).unwrap();
    let start = resume["start"].as_f64().unwrap();
    let mut w = EventWriter::create_resumed(&dir, start, resume["purge_step"].as_u64().unwrap()).unwrap();
    for e in resume["resumed"].as_array().unwrap() {
        w.scalar(
            e[0].as_str().unwrap(),
            e[1].as_f64().unwrap(),
            e[2].as_u64().unwrap(),
            start,
        )
        .unwrap();
    }
    w.flush().unwrap();
    assert_eq!(std::fs::read(w.path()).unwrap(), reference);
    let steps: Vec<u64> = resume["read_back"]["train/loss"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[0].as_u64().unwrap())
        .collect();
    assert_eq!(steps, [100, 200, 250, 300, 350]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn early_stopping_and_hooks() {
    let train = gpt_windows();
    let valid = gpt_windows().with_batches_per_epoch(1);
    // lr = 0: the validation loss never improves after the first validation.
    let mut t = gpt_trainer(
        quiet()
            .with_max_steps(Some(100))
            .with_valid_every(Some(2))
            .with_early_stopping(Some(EarlyStopping {
                patience: 3,
                min_delta: 0.0,
            })),
        &OptimizerConfig::sgd(0.0),
    );
    let report = t.fit(&train, Some(&valid)).unwrap();
    assert!(report.stopped_early);
    assert_eq!(
        report.steps, 8,
        "best at step 2, then 3 validations without improvement"
    );
    assert_eq!(report.best.unwrap().0, 2);

    // A hook sees every step and can stop the run; monitoring accuracy (higher is better).
    struct Counter(Rc<RefCell<Vec<u64>>>);
    impl Hook for Counter {
        fn on_step(&mut self, info: &StepInfo) -> ControlFlow<()> {
            self.0.borrow_mut().push(info.step);
            if info.step == 5 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        }
    }
    let seen = Rc::new(RefCell::new(Vec::new()));
    let mut t = gpt_trainer(
        quiet().with_max_steps(Some(100)).with_monitor(Monitor {
            metric: "acc".into(),
            mode: PlateauMode::Max,
        }),
        &adamw(),
    )
    .with_hook(Counter(seen.clone()));
    let report = t.fit(&train, Some(&valid)).unwrap();
    assert_eq!(*seen.borrow(), vec![1, 2, 3, 4, 5]);
    assert_eq!(report.steps, 5);
    assert!(report.last_valid.unwrap().acc.is_some());
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let device = Default::default();
    let config = gpt_config(0.0);
    let make = |cfg: TrainerConfig| {
        Trainer::new(
            cfg,
            GptLmTask::new(config.clone()),
            config.init::<B>(&device).unwrap(),
            &adamw(),
            LrSchedule::Constant,
            &device,
        )
    };
    // No stopping rule, zero accumulation, an unknown monitored metric.
    for cfg in [
        quiet(),
        quiet().with_max_steps(Some(1)).with_grad_accum(0),
        quiet().with_max_steps(Some(1)).with_monitor(Monitor {
            metric: "f1".into(),
            mode: PlateauMode::Max,
        }),
    ] {
        assert!(matches!(make(cfg).err().unwrap(), Error::Config { .. }));
    }
    // An empty dataset.
    let mut t = make(quiet().with_max_steps(Some(1))).unwrap();
    let err = t.fit(&Fixed(Vec::new()), None).unwrap_err();
    assert!(err.to_string().contains("no batches"), "{err}");
    // A batch whose ids do not fill [batch, len], and one with an id outside the vocabulary.
    let bad_shape = Fixed(vec![TokenBatch {
        ids: vec![1, 2, 3],
        batch: 2,
        len: 4,
        reset: Vec::new(),
    }]);
    assert!(matches!(
        t.fit(&bad_shape, None).unwrap_err(),
        Error::Shape { .. }
    ));
    let bad_id = Fixed(vec![TokenBatch {
        ids: vec![1, 2, 3, 99],
        batch: 1,
        len: 4,
        reset: Vec::new(),
    }]);
    assert!(matches!(
        t.fit(&bad_id, None).unwrap_err(),
        Error::TokenId { found: 99, .. }
    ));
    // A run directory that cannot be created (its parent is a file).
    let file = tmp("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let mut t = make(
        quiet()
            .with_max_steps(Some(1))
            .with_run_dir(Some(file.join("run"))),
    )
    .unwrap();
    let train = gpt_windows();
    let err = t.fit(&train, None).unwrap_err();
    assert!(
        matches!(&err, Error::Save { path, .. } if path.ends_with("run")),
        "{err}"
    );
    let _ = std::fs::remove_file(&file);
    // The model is intact after all that.
    assert_eq!(t.step(), 0);
    let _ = AutodiffModule::valid(t.model());
}

/// The GPT task with a floor on the time of each training step (a sleep), and slow validation.
struct Slow {
    inner: GptLmTask,
}

const STEP_FLOOR: std::time::Duration = std::time::Duration::from_millis(5);

impl Task<B> for Slow {
    type Model = Gpt<B>;
    type Batch = TokenBatch;
    type Carry = ();
    type ValidCarry = ();
    fn train_step(
        &self,
        model: &Gpt<B>,
        batch: &TokenBatch,
        carry: Option<()>,
    ) -> Result<TrainOutput<B, ()>> {
        std::thread::sleep(STEP_FLOOR);
        self.inner.train_step(model, batch, carry)
    }
    fn valid_step(
        &self,
        model: &Gpt<NdArray>,
        batch: &TokenBatch,
        carry: Option<()>,
    ) -> Result<(BatchStats, Option<()>)> {
        std::thread::sleep(10 * STEP_FLOOR);
        <GptLmTask as Task<B>>::valid_step(&self.inner, model, batch, carry)
    }
}

#[test]
fn throughput_counts_the_training_steps_of_its_window() {
    // Validation after every step and one log line at the end: that line's window holds all
    // 7 steps, so its time is at least 7 step floors, whatever validation took in between.
    // (It used to be the time since the last validation: about zero, and billions of items/s.)
    let device = Default::default();
    let config = gpt_config(0.0);
    let train = gpt_windows();
    let valid = gpt_windows().with_batches_per_epoch(1);
    let mut t = Trainer::new(
        quiet()
            .with_max_steps(Some(7))
            .with_log_every(100)
            .with_valid_every(Some(1)),
        Slow {
            inner: GptLmTask::new(config.clone()),
        },
        config.init::<B>(&device).unwrap(),
        &adamw(),
        LrSchedule::Constant,
        &device,
    )
    .unwrap();
    let report = t.fit(&train, Some(&valid)).unwrap();
    let row = report.last_train.unwrap();
    let items = 7.0 * 16.0 * 4.0;
    let ceiling = items / (7.0 * STEP_FLOOR.as_secs_f64());
    assert!(
        row.items_per_sec > 0.0 && row.items_per_sec <= ceiling,
        "{} items/s, at most {ceiling} possible",
        row.items_per_sec
    );
}

/// Two parameters and a loss whose gradient differs element by element.
#[derive(burn::module::Module, Debug)]
struct AdamParams<B: burn::tensor::backend::Backend> {
    w: burn::module::Param<burn::tensor::Tensor<B, 2>>,
    b: burn::module::Param<burn::tensor::Tensor<B, 1>>,
}

/// The optimizer's AdamW (one fused pass per parameter on the CPU backends) gives burn-optim's
/// AdamW bit for bit, with decoupled decay and without, on NdArray and Flex.
#[test]
fn fused_adamw_is_bitwise_burn_optims_adamw() {
    use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
    use burn::tensor::{Distribution, Tensor};
    use ember_lm::optim::DecayGroups;

    fn run<Bk: ember_lm::TrainBackend>(weight_decay: f64) {
        let device = Default::default();
        Bk::seed(&device, 9);
        let normal = |shape: Vec<usize>| {
            Tensor::<Bk, 1>::random(
                [shape.iter().product::<usize>()],
                Distribution::Normal(0.0, 1.0),
                &device,
            )
        };
        let model = AdamParams::<Bk> {
            w: burn::module::Param::from_tensor(normal(vec![7, 5]).reshape([7, 5]).require_grad()),
            b: burn::module::Param::from_tensor(normal(vec![5]).require_grad()),
        };
        let config = OptimizerConfig::adamw()
            .with_weight_decay(weight_decay)
            .with_decay_groups(DecayGroups::All);
        let mut ours = config.init::<Bk, _>(&model).unwrap();
        let mut reference = AdamWConfig::new()
            .with_beta_1(0.9)
            .with_beta_2(0.999)
            .with_epsilon(1e-8)
            .with_weight_decay(weight_decay as f32)
            .init::<Bk, AdamParams<Bk>>();
        // The gradients of Σ w³ + Σ exp(0.3 b), registered by hand.
        let grads = |m: &AdamParams<Bk>| {
            let mut g = GradientsParams::new();
            g.register::<Bk::InnerBackend, 2>(m.w.id, m.w.val().inner().powi_scalar(2) * 3.0);
            g.register::<Bk::InnerBackend, 1>(m.b.id, (m.b.val().inner() * 0.3).exp() * 0.3);
            g
        };
        let initial = model.w.val().into_data();
        let (mut a, mut b) = (model.clone(), model);
        for step in 0..5 {
            let lr = 1e-2 / (step + 1) as f64;
            let (ga, gb) = (grads(&a), grads(&b));
            a = ours.step_lr(lr, a, ga);
            b = reference.step(lr, b, gb);
            assert_eq!(
                a.w.val().into_data(),
                b.w.val().into_data(),
                "w after step {step}, decay {weight_decay}"
            );
            assert_eq!(
                a.b.val().into_data(),
                b.b.val().into_data(),
                "b after step {step}, decay {weight_decay}"
            );
        }
        assert_ne!(a.w.val().into_data(), initial, "the steps moved the parameters");
    }
    for decay in [0.0, 0.1] {
        run::<B>(decay);
        #[cfg(feature = "flex")]
        run::<Autodiff<burn::backend::Flex>>(decay);
    }
}

/// A run directory rebuilds its model and tokenizer with no program-side file: `load_run` gives
/// a model whose logits are bitwise the trained model's, and the tokenizer given to the trainer.
#[test]
fn load_run_rebuilds_the_trained_model_and_its_tokenizer() {
    use ember_lm::data::{CharTokenizer, Tokenizer};
    use ember_lm::models::{LanguageModel, RnnLmConfig};
    use ember_lm::train::{GptLmTask, RunTokenizer, load_run};
    let text = "the cat sat on the mat and the dog sat on the log ".repeat(40);
    let tokenizer = CharTokenizer::from_corpus(&text).unwrap();
    let ids: Vec<i64> = tokenizer
        .encode(&text)
        .unwrap()
        .into_iter()
        .map(i64::from)
        .collect();
    let config = GptConfig::new()
        .with_vocab_size(tokenizer.vocab_size())
        .with_block_size(16)
        .with_n_layer(1)
        .with_n_head(2)
        .with_n_embd(16);
    let dir = tmp("load-run");
    let device = Default::default();
    let make = |steps: u64| {
        Trainer::new(
            quiet()
                .with_max_steps(Some(steps))
                .with_run_dir(Some(dir.clone())),
            GptLmTask::new(config.clone()),
            config.init::<B>(&device).unwrap(),
            &OptimizerConfig::adamw().with_lr(1e-2),
            LrSchedule::Constant,
            &device,
        )
        .unwrap()
    };
    let mut trainer = make(6).with_tokenizer(tokenizer.clone());
    let data = LmWindows::new(
        ids.clone(),
        LmShape {
            batch_size: 4,
            seq_len: 16,
        },
    )
    .unwrap();
    trainer.fit(&data, None).unwrap();

    let run = load_run::<GptConfig, NdArray>(&dir, &device).unwrap();
    assert_eq!(run.step, 6);
    assert_eq!(run.config.vocab_size, config.vocab_size);
    let probe = burn::tensor::Tensor::<NdArray, 2, burn::tensor::Int>::from_data(
        burn::tensor::TensorData::new(ids[..16].to_vec(), [1, 16]),
        &device,
    );
    let trained = trainer.model().valid();
    assert_eq!(
        LanguageModel::logits(&run.model, probe.clone())
            .unwrap()
            .into_data(),
        LanguageModel::logits(&trained, probe).unwrap().into_data(),
        "the rebuilt model's logits are the trained model's, bit for bit"
    );
    let Some(RunTokenizer::Char(loaded)) = run.tokenizer else {
        panic!("the run's tokenizer is a CharTokenizer");
    };
    assert_eq!(
        loaded.encode("the dog").unwrap(),
        tokenizer.encode("the dog").unwrap()
    );

    // One checkpoint directory of the run works too, tokenizer included.
    let step_dir = std::fs::read_dir(dir.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .max()
        .unwrap();
    assert!(
        load_run::<GptConfig, NdArray>(&step_dir, &device)
            .unwrap()
            .tokenizer
            .is_some()
    );
    // The weights are a plain safetensors file: f32, by module path, readable without burn.
    let dict = ember_lm::io::StateDict::from_file(step_dir.join("model.safetensors")).unwrap();
    let wte = dict.data("wte").unwrap();
    assert_eq!(wte.dtype, burn::tensor::DType::F32);
    assert_eq!(wte, trained.wte.val().into_data());
    // Another model family is refused with the checkpoint named, not silently misread.
    let err = load_run::<RnnLmConfig, NdArray>(&dir, &device).err().unwrap();
    assert!(matches!(err, Error::Checkpoint { .. }), "{err}");
    assert!(err.to_string().contains("RnnLmConfig"), "{err}");
    // A resumed run not given the tokenizer again keeps it.
    let mut resumed = make(8).resume(&dir).unwrap();
    resumed.fit(&data, None).unwrap();
    let run = load_run::<GptConfig, NdArray>(&dir, &device).unwrap();
    assert_eq!(run.step, 8);
    assert!(run.tokenizer.is_some());
    std::fs::remove_dir_all(&dir).ok();
}

/// With a `tracing` subscriber, the trainer's progress lines are `INFO` events of target
/// `ember_lm::train` (without one they go to stderr).
#[test]
fn progress_lines_go_through_tracing() {
    use std::io::Write;
    use std::sync::{Arc, Mutex};
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let config = gpt_config(0.0);
        let mut trainer = Trainer::new(
            quiet()
                .with_progress(ember_lm::train::ProgressMode::Lines)
                .with_max_steps(Some(2)),
            ember_lm::train::GptLmTask::new(config.clone()),
            config.init::<B>(&Default::default()).unwrap(),
            &OptimizerConfig::adamw(),
            LrSchedule::Constant,
            &Default::default(),
        )
        .unwrap();
        let data = LmWindows::new(
            corpus(),
            LmShape {
                batch_size: 2,
                seq_len: 8,
            },
        )
        .unwrap();
        trainer.fit(&data, None).unwrap();
    });
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("INFO ember_lm::train: step      2"), "{text}");
    assert!(text.contains("train loss"), "{text}");
}
