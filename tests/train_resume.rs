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
use common::train::*;
use ember_lm::data::{Batches, LmShape, LmStreams};
use ember_lm::models::GptConfig;
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

fn gpt_resume<B: ember_lm::TrainBackend>() {
    let device: B::Device = Default::default();
    let config = gpt_config(0.1); // dropout on: the backend RNG must be reseeded on resume too
    let mut models = same_gpts::<B>(&config, 2);
    let train = gpt_windows().with_batches_per_epoch(5);
    let valid = gpt_windows().with_batches_per_epoch(2);
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

fn bptt_resume<B: ember_lm::TrainBackend>() {
    let device: B::Device = Default::default();
    let streams = LmStreams::new(
        corpus(),
        LmShape {
            batch_size: 4,
            seq_len: 20,
        },
    )
    .unwrap();
    let per_epoch = streams.num_batches() as u64;
    assert!(per_epoch > 10);
    let valid = LmStreams::new(
        corpus()[..800].to_vec(),
        LmShape {
            batch_size: 2,
            seq_len: 20,
        },
    )
    .unwrap();
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

/// A GPT trained for `steps` steps on NdArray f64 into `dir`, checkpointed at the end.
fn trained_run(dir: &Path, steps: u64) -> Trainer<Autodiff<NdArray<f64>>, GptLmTask> {
    trained_run_with(dir, steps, gpt_config(0.0))
}

/// [`trained_run`] for another GPT configuration.
fn trained_run_with(dir: &Path, steps: u64, config: GptConfig) -> Trainer<Autodiff<NdArray<f64>>, GptLmTask> {
    let mut t = Trainer::new(
        quiet()
            .with_max_steps(Some(steps))
            .with_run_dir(Some(dir.to_path_buf())),
        GptLmTask::new(config.clone()),
        config.init(&Default::default()).unwrap(),
        &adamw(),
        LrSchedule::Constant,
        &Default::default(),
    )
    .unwrap();
    t.fit(&gpt_windows(), None).unwrap();
    t
}

fn fresh_trainer(dir: &Path, steps: u64) -> Trainer<Autodiff<NdArray<f64>>, GptLmTask> {
    let config = gpt_config(0.0);
    Trainer::new(
        quiet()
            .with_max_steps(Some(steps))
            .with_run_dir(Some(dir.to_path_buf())),
        GptLmTask::new(config.clone()),
        config.init(&Default::default()).unwrap(),
        &adamw(),
        LrSchedule::Constant,
        &Default::default(),
    )
    .unwrap()
}

/// Replaces a checkpoint file's bytes and updates its size and CRC in the manifest, so that the
/// checksums pass and only decoding can notice.
fn replace_with_valid_checksum(ckpt: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(ckpt.join(name), bytes).unwrap();
    let path = ckpt.join("manifest.json");
    let mut manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for f in manifest["files"].as_array_mut().unwrap() {
        if f["name"] == name {
            f["bytes"] = bytes.len().into();
            f["crc32c"] = ember_lm::train::crc32c(bytes).into();
        }
    }
    std::fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();
}

#[test]
fn a_checkpoint_that_passes_its_checksum_but_does_not_decode_is_an_error() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tmp("undecodable");
    drop(trained_run(&dir, 2));
    let ckpt = dir.join("checkpoints/step-00000002");
    let good = std::fs::read(ckpt.join("model.safetensors")).unwrap();
    // A foreign model: an RNN language model's model.safetensors.
    let other = tmp("undecodable-other");
    {
        let rnn = ember_lm::models::RnnLmConfig::new(24, 8, 8);
        let mut t = Trainer::<Autodiff<NdArray<f64>>, _>::new(
            quiet().with_max_steps(Some(1)).with_run_dir(Some(other.clone())),
            ember_lm::train::RnnLmTask::new(rnn.clone()),
            rnn.init(&Default::default()).unwrap(),
            &adamw(),
            LrSchedule::Constant,
            &Default::default(),
        )
        .unwrap();
        t.fit(
            &LmStreams::new(
                corpus(),
                LmShape {
                    batch_size: 2,
                    seq_len: 8,
                },
            )
            .unwrap(),
            None,
        )
        .unwrap();
    }
    let foreign = std::fs::read(other.join("checkpoints/step-00000001/model.safetensors")).unwrap();
    // The same model's file with one tensor of another shape (a wider GPT's).
    let wide = tmp("undecodable-wide");
    drop(trained_run_with(
        &wide,
        1,
        GptConfig::new()
            .with_vocab_size(24)
            .with_block_size(16)
            .with_n_layer(2)
            .with_n_head(2)
            .with_n_embd(32),
    ));
    let wider = std::fs::read(wide.join("checkpoints/step-00000001/model.safetensors")).unwrap();
    let mut extended = good.clone();
    extended.extend_from_slice(&[0, 1, 2]);
    let cases: [(&str, &[u8], &str); 5] = [
        (
            "shortened",
            &good[..good.len() / 2],
            "model.safetensors: not safetensors",
        ),
        ("empty", &[], "model.safetensors: not safetensors"),
        ("extended", &extended, "model.safetensors: not safetensors"),
        ("foreign", &foreign, "is missing"),
        ("another shape", &wider, "has shape"),
    ];
    for (what, bytes, says) in cases {
        replace_with_valid_checksum(&ckpt, "model.safetensors", bytes);
        let err = ember_lm::train::load_model::<NdArray<f64>, _>(
            &dir,
            gpt_config(0.0).init(&Default::default()).unwrap(),
            &Default::default(),
        )
        .unwrap_err();
        assert!(
            matches!(err, ember_lm::Error::Checkpoint { .. }) && err.to_string().contains(says),
            "{what}: {err}"
        );
        let Err(err) = fresh_trainer(&dir, 4).resume(&dir) else {
            panic!("{what}: resume accepted it");
        };
        assert!(err.to_string().contains(says), "{what}: {err}");
    }
    // The optimizer state and the carried state go through the same decoder.
    replace_with_valid_checksum(&ckpt, "model.safetensors", &good);
    let opt = std::fs::read(ckpt.join("optimizer-0.bin")).unwrap();
    replace_with_valid_checksum(&ckpt, "optimizer-0.bin", &opt[..opt.len() - 7]);
    let Err(err) = fresh_trainer(&dir, 4).resume(&dir) else {
        panic!("a shortened optimizer state was accepted");
    };
    assert!(err.to_string().contains("optimizer state"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&other);
}

#[test]
fn a_checkpoint_holding_nan_weights_names_the_parameter() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tmp("nan-weights");
    let config = gpt_config(0.0);
    let mut model = config
        .init::<Autodiff<NdArray<f64>>>(&Default::default())
        .unwrap();
    let nan = burn::tensor::Tensor::full(model.wpe.weight.dims(), f64::NAN, &Default::default());
    model.wpe.weight = burn::module::Param::from_tensor(nan);
    let mut t = Trainer::new(
        quiet().with_max_steps(Some(0)).with_run_dir(Some(dir.clone())),
        GptLmTask::new(config.clone()),
        model,
        &adamw(),
        LrSchedule::Constant,
        &Default::default(),
    )
    .unwrap();
    t.fit(&gpt_windows(), None).unwrap();
    let err = ember_lm::train::load_model::<NdArray<f64>, _>(
        &dir,
        config.init(&Default::default()).unwrap(),
        &Default::default(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, ember_lm::Error::NotFinite { what } if what.contains("`wpe.weight`")),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn load_model_names_the_first_parameter_of_another_architecture() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tmp("other-arch");
    drop(trained_run(&dir, 1));
    let wider = GptConfig::new()
        .with_vocab_size(24)
        .with_block_size(16)
        .with_n_layer(2)
        .with_n_head(2)
        .with_n_embd(32);
    let err = ember_lm::train::load_model::<NdArray<f64>, _>(
        &dir,
        wider.init(&Default::default()).unwrap(),
        &Default::default(),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("`wte` [24, 16] in the checkpoint"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn seeded_initialisation_is_bitwise_repeatable() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    type B = Autodiff<NdArray<f64>>;
    let device = Default::default();
    // seed_everything before init seeds the weights drawn there (GPT's, the RNN LM's embeddings);
    // the trainer's seed draws those still lazy (the RNN LM's recurrent weights).
    let gpt = |seed: u64| {
        ember_lm::train::seed_everything::<B>(seed, &device);
        let model = gpt_config(0.0).init::<B>(&device).unwrap();
        let t = Trainer::new(
            quiet().with_max_steps(Some(1)).with_seed(seed),
            GptLmTask::new(gpt_config(0.0)),
            model,
            &adamw(),
            LrSchedule::Constant,
            &device,
        )
        .unwrap();
        param_values(t.model())
    };
    assert!(gpt(7) == gpt(7), "two GPTs seeded alike differ");
    assert!(gpt(7) != gpt(8));
    let rnn = |seed: u64| {
        ember_lm::train::seed_everything::<B>(seed, &device);
        let config = ember_lm::models::RnnLmConfig::new(24, 8, 8);
        let t = Trainer::<B, _>::new(
            quiet().with_max_steps(Some(1)).with_seed(seed),
            ember_lm::train::RnnLmTask::new(config.clone()),
            config.init(&device).unwrap(),
            &adamw(),
            LrSchedule::Constant,
            &device,
        )
        .unwrap();
        param_values(t.model())
    };
    assert!(rnn(7) == rnn(7), "two RNN LMs seeded alike differ");
    assert!(rnn(7) != rnn(8));
}

#[test]
fn a_resumed_run_rewrites_identical_checkpoint_bytes_and_cleans_up_after_a_kill() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tmp("stable-bytes");
    drop(trained_run(&dir, 4));
    let ckpt = dir.join("checkpoints/step-00000004");
    let read = |name: &str| std::fs::read(ckpt.join(name)).unwrap();
    let (model, optim) = (read("model.safetensors"), read("optimizer-0.bin"));
    // What a process killed after the checkpoint leaves: rows and events past step 4, and a
    // temporary file of an interrupted write.
    let csv = dir.join("metrics.csv");
    let mut text = std::fs::read_to_string(&csv).unwrap();
    text.push_str("train,6,0,1.0,2.7,1.4,,0.003,,100,0,1.0\n");
    std::fs::write(&csv, &text).unwrap();
    std::fs::write(ckpt.join(".model.safetensors.tmp-999999999"), b"half").unwrap();
    std::fs::write(dir.join(".metrics.csv.tmp-999999998"), b"half").unwrap();

    // Resume at step 4 and stop there: the final checkpoint is written again.
    let mut t = fresh_trainer(&dir, 4).resume(&dir).unwrap();
    t.fit(&gpt_windows(), None).unwrap();
    assert!(
        read("model.safetensors") == model,
        "model.safetensors bytes changed"
    );
    assert!(
        read("optimizer-0.bin") == optim,
        "optimizer-0.bin bytes changed (map order?)"
    );
    assert!(!ckpt.join(".model.safetensors.tmp-999999999").exists());
    assert!(!dir.join(".metrics.csv.tmp-999999998").exists());
    // The stale row is gone, the header and the rows up to step 4 stay.
    let rows = std::fs::read_to_string(&csv).unwrap();
    assert!(rows.starts_with("split,step,"), "{rows}");
    assert!(
        rows.lines()
            .skip(1)
            .all(|l| l.split(',').nth(1).unwrap().parse::<u64>().unwrap() <= 4),
        "{rows}"
    );
    assert!(rows.lines().any(|l| l.starts_with("train,4,")), "{rows}");
    // The resumed run's event file starts with PyTorch's purge markers at step 5.
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("events.out.tfevents.")
        })
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    // `...<pid>.<n>`: n counts the process's writers, so the resumed run's file sorts last.
    files.sort_by_key(|p| p.extension().unwrap().to_string_lossy().parse::<u64>().unwrap());
    let records = ember_lm::train::read_records(&std::fs::read(&files[1]).unwrap()).unwrap();
    // Event { step = 2: 5, session_log = 7: { status: START } }.
    assert!(records[2].windows(2).any(|w| w == [0x10, 5]), "{:?}", records[2]);
    assert!(
        records[2].ends_with(&[0x3a, 0x02, 0x08, 0x01]),
        "{:?}",
        records[2]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Run by `a_resumed_run_in_another_process_writes_the_same_optimizer_bytes` in a child process:
/// resumes the run in `EMBER_RESUME_DIR` and checkpoints it again at the same step.
#[test]
#[ignore = "a helper the test below runs in a child process"]
fn resume_helper_in_a_child_process() {
    let Ok(dir) = std::env::var("EMBER_RESUME_DIR") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let mut t = fresh_trainer(&dir, 4).resume(&dir).unwrap();
    t.fit(&gpt_windows(), None).unwrap();
}

#[test]
fn a_resumed_run_in_another_process_writes_the_same_optimizer_bytes() {
    // The optimizer state is a map keyed by parameter; a process's hash seed decides its order,
    // so the same state written by another process gave other bytes until it was sorted.
    let dir = tmp("other-process");
    {
        let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        drop(trained_run(&dir, 4));
    }
    let optim = dir.join("checkpoints/step-00000004/optimizer-0.bin");
    let before = std::fs::read(&optim).unwrap();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "resume_helper_in_a_child_process",
            "--ignored",
            "--test-threads=1",
        ])
        .env("EMBER_RESUME_DIR", &dir)
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        std::fs::read(&optim).unwrap() == before,
        "optimizer-0.bin bytes changed"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn monitoring_a_metric_the_task_does_not_report_is_a_typed_error() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // StreamTask reports no accuracy.
    let mut t = Trainer::<Autodiff<NdArray<f64>>, _>::new(
        quiet()
            .with_max_steps(Some(2))
            .with_valid_every(Some(1))
            .with_monitor(ember_lm::train::Monitor {
                metric: "acc".into(),
                mode: ember_lm::optim::PlateauMode::Max,
            }),
        StreamTask::default(),
        same_rnns(1).pop().unwrap(),
        &adamw(),
        LrSchedule::Constant,
        &Default::default(),
    )
    .unwrap();
    let streams = LmStreams::new(
        corpus(),
        LmShape {
            batch_size: 2,
            seq_len: 8,
        },
    )
    .unwrap();
    let err = t.fit(&streams, Some(&streams)).unwrap_err();
    assert!(
        matches!(&err, ember_lm::Error::MissingMetric { metric } if metric == "acc"),
        "{err}"
    );
}

/// A model with an integer parameter (a counter): its checkpoints keep burn's record
/// (`model.bin`, which alone holds integer parameters), it resumes to the same parameters, and a
/// record that passes its checksum but does not decode is a typed error.
#[derive(burn::module::Module, Debug)]
struct Counted<B: burn::tensor::backend::Backend> {
    w: burn::module::Param<burn::tensor::Tensor<B, 1>>,
    count: burn::module::Param<burn::tensor::Tensor<B, 1, burn::tensor::Int>>,
}

struct CountedTask;

impl<B: ember_lm::TrainBackend> ember_lm::train::Task<B> for CountedTask {
    type Model = Counted<B>;
    type Batch = ember_lm::data::TokenBatch;
    type Carry = ();
    type ValidCarry = ();

    fn train_step(
        &self,
        model: &Counted<B>,
        _: &ember_lm::data::TokenBatch,
        _: Option<()>,
    ) -> ember_lm::Result<ember_lm::train::TrainOutput<B, ()>> {
        let loss = (model.w.val() - 1.0).powi_scalar(2).sum();
        Ok(ember_lm::train::TrainOutput {
            loss,
            items: 1,
            correct: None,
            carry: None,
        })
    }

    fn valid_step(
        &self,
        model: &Counted<B::InnerBackend>,
        _: &ember_lm::data::TokenBatch,
        _: Option<()>,
    ) -> ember_lm::Result<(ember_lm::train::BatchStats, Option<()>)> {
        let loss = (model.w.val() - 1.0).powi_scalar(2).sum();
        Ok((ember_lm::train::BatchStats::from_loss(loss, 1, None), None))
    }
}

#[test]
fn a_model_with_integer_parameters_checkpoints_as_a_record() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    type A = Autodiff<NdArray<f64>>;
    let device = Default::default();
    let dir = tmp("counted");
    let model = || Counted::<A> {
        w: burn::module::Param::from_tensor(burn::tensor::Tensor::zeros([3], &device)),
        count: burn::module::Param::initialized(
            burn::module::ParamId::new(),
            burn::tensor::Tensor::from_ints([7, 8], &device),
        ),
    };
    let data = common::train::Fixed(vec![rows(&corpus(), 0, 2, 8)]);
    let trainer = |steps: u64| {
        Trainer::new(
            quiet()
                .with_max_steps(Some(steps))
                .with_run_dir(Some(dir.clone())),
            CountedTask,
            model(),
            &adamw(),
            LrSchedule::Constant,
            &device,
        )
        .unwrap()
    };
    let mut t = trainer(3);
    t.fit(&data, None).unwrap();
    let ckpt = dir.join("checkpoints/step-00000003");
    assert!(ckpt.join("model.bin").is_file() && !ckpt.join("model.safetensors").exists());
    let resumed = trainer(4).resume(&dir).unwrap();
    assert_eq!(param_values(resumed.model()), param_values(t.model()));
    assert_eq!(
        resumed.model().count.val().into_data(),
        t.model().count.val().into_data()
    );
    let good = std::fs::read(ckpt.join("model.bin")).unwrap();
    for (what, bytes) in [("empty", &good[..0]), ("shortened", &good[..good.len() / 2])] {
        replace_with_valid_checksum(&ckpt, "model.bin", bytes);
        let Err(err) = trainer(4).resume(&dir) else {
            panic!("{what}: resume accepted it");
        };
        assert!(
            matches!(err, ember_lm::Error::Checkpoint { .. })
                && err.to_string().contains("model.bin cannot decode"),
            "{what}: {err}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
