//! Multi-node training on loopback: each node is a child process of this test binary (the
//! `node` test, which does nothing unless `EMBER_TEST_NODE` is set), configured through the
//! environment variables a `torchrun` user sets, on ports chosen free at run time on 127.0.0.1.
//!
//! - Two nodes end with the parameters, bit for bit, of two replicas of `fit_data_parallel` in
//!   one process over the same batches (two addends: the sum does not depend on their order).
//! - A node that dies stops the other within its timeout, with an error naming the node and the
//!   step; both resumed from their run directories end where the uninterrupted run ends.
//! - A node with another model is refused at the start, saying what differs.
#![cfg(all(feature = "collective", feature = "ndarray"))]

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use burn::backend::{Autodiff, NdArray};
use common::train::{gpt_config, gpt_windows, param_values, quiet, same_gpts, tmp};
use ember_lm::optim::{LrSchedule, OptimizerConfig};
use ember_lm::train::{
    DistributedConfig, GptLmTask, Hook, StepInfo, Trainer, fit_data_parallel, fit_distributed,
};

type B = Autodiff<NdArray>;

const STEPS: u64 = 6;

/// The run every node makes: AdamW, or SGD (updates linear in the gradients) with `sgd`.
fn trainer(width: usize, out: Option<PathBuf>, sgd: bool) -> Trainer<B, GptLmTask> {
    let config = gpt_config(0.0).with_n_embd(width);
    // The same initial weights in every process and every run: seeded here, and the replicas'
    // builds take turns (burn's generator is global to the backend, and `Trainer::new` seeds it).
    <B as burn::tensor::backend::Backend>::seed(&Default::default(), 7);
    let model = same_gpts::<B>(&config, 1).remove(0);
    Trainer::new(
        quiet()
            .with_max_steps(Some(STEPS))
            .with_seed(3)
            .with_run_dir(out)
            .with_checkpoint_every(Some(2)),
        GptLmTask::new(config),
        model,
        &if sgd {
            OptimizerConfig::sgd(1e-1)
        } else {
            OptimizerConfig::adamw().with_lr(1e-2)
        },
        LrSchedule::Constant,
        &Default::default(),
    )
    .unwrap()
}

/// Ends the process at a step, as a crashed machine would.
struct DieAt(u64);

impl Hook for DieAt {
    fn on_step(&mut self, info: &StepInfo) -> std::ops::ControlFlow<()> {
        if info.step == self.0 {
            std::process::exit(9);
        }
        std::ops::ControlFlow::Continue(())
    }
}

/// One node, when run as a child: trains and writes its final parameters' bits, or prints its
/// error and exits with 3.
#[test]
fn node() {
    let Ok(out) = std::env::var("EMBER_TEST_NODE") else {
        return;
    };
    let out = PathBuf::from(out);
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    let width = env("EMBER_TEST_WIDTH").unwrap_or(16) as usize;
    let die_at = env("EMBER_TEST_DIE_AT");
    let resume = std::env::var("EMBER_TEST_RESUME").is_ok();
    let sgd = std::env::var("EMBER_TEST_SGD").is_ok();
    let config = DistributedConfig::from_env().unwrap();
    let run_dir = out.join("run");
    let result = fit_distributed::<B, GptLmTask, _>(
        &config,
        &[Default::default()],
        |_, _| {
            let t = trainer(width, Some(run_dir.clone()), sgd);
            let t = if resume { t.resume(&run_dir)? } else { t };
            Ok(match die_at {
                Some(step) => t.with_hook(DieAt(step)),
                None => t,
            })
        },
        &gpt_windows(),
        None,
    );
    match result {
        Ok(mut replicas) => {
            let (_, model) = replicas.remove(0);
            let bits: Vec<Vec<u64>> = param_values(&model)
                .iter()
                .map(|p| p.iter().map(|v| v.to_bits()).collect())
                .collect();
            std::fs::write(out.join("params.json"), serde_json::to_string(&bits).unwrap()).unwrap();
        }
        Err(e) => {
            eprintln!("NODE ERROR: {e}");
            std::process::exit(3);
        }
    }
}

/// Held by each test that starts nodes, for its whole length. Clusters running at once in one
/// test binary would compete for free ports: a port chosen free can be taken before its node
/// binds it (and another cluster's node may be the one listening there).
fn one_cluster_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static CLUSTER: std::sync::Mutex<()> = std::sync::Mutex::new(());
    CLUSTER.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A port free on 127.0.0.1 whose successor is free too (the rendezvous listens there).
fn free_port_pair() -> u16 {
    loop {
        let a = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = a.local_addr().unwrap().port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `n` nodes of one run, node `i` in `dirs[i]`, with `extra(i)` added to its environment.
fn start(dirs: &[PathBuf], extra: impl Fn(usize) -> Vec<(&'static str, String)>) -> Vec<Child> {
    start_at(free_port_pair(), dirs, extra)
}

/// [`start`] with the orchestrator at `master`.
fn start_at(
    master: u16,
    dirs: &[PathBuf],
    extra: impl Fn(usize) -> Vec<(&'static str, String)>,
) -> Vec<Child> {
    dirs.iter()
        .enumerate()
        .map(|(rank, dir)| {
            std::fs::create_dir_all(dir).unwrap();
            let mut cmd = Command::new(std::env::current_exe().unwrap());
            cmd.args(["node", "--exact", "--nocapture", "--test-threads", "1"])
                .env("EMBER_TEST_NODE", dir)
                .env("WORLD_SIZE", dirs.len().to_string())
                .env("RANK", rank.to_string())
                .env("MASTER_ADDR", "127.0.0.1")
                .env("MASTER_PORT", master.to_string())
                .env("EMBER_DATA_PORT", free_port().to_string())
                .env("EMBER_TIMEOUT_SECS", "15")
                .stdout(Stdio::null())
                // A file, not a pipe: a pipe nobody reads until the end can fill and block.
                .stderr(std::fs::File::create(dir.join("stderr.txt")).unwrap());
            for (k, v) in extra(rank) {
                cmd.env(k, v);
            }
            cmd.spawn().unwrap()
        })
        .collect()
}

/// Waits for every node of `dirs` (killing all past `limit`); returns each one's exit code and
/// stderr.
fn wait(dirs: &[PathBuf], children: Vec<Child>, limit: Duration) -> Vec<(Option<i32>, String)> {
    let start = Instant::now();
    let mut children: Vec<Child> = children;
    loop {
        if children.iter_mut().all(|c| matches!(c.try_wait(), Ok(Some(_)))) {
            break;
        }
        if start.elapsed() > limit {
            for c in &mut children {
                let _ = c.kill();
            }
            panic!("the nodes did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    children
        .into_iter()
        .zip(dirs)
        .map(|(mut c, dir)| {
            let status = c.wait().unwrap();
            let err = std::fs::read_to_string(dir.join("stderr.txt")).unwrap_or_default();
            (status.code(), err)
        })
        .collect()
}

/// The largest relative difference between two parameter sets (of bits), in words.
fn largest_difference(a: &[Vec<u64>], b: &[Vec<u64>]) -> String {
    let mut worst = (0.0f64, 0, 0);
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        for (j, (u, v)) in x.iter().zip(y).enumerate() {
            let (u, v) = (f64::from_bits(*u), f64::from_bits(*v));
            let d = (u - v).abs() / v.abs().max(1e-12);
            if d > worst.0 {
                worst = (d, i, j);
            }
        }
    }
    format!("{:.3e} (parameter {}, element {})", worst.0, worst.1, worst.2)
}

fn params(dir: &Path) -> Vec<Vec<u64>> {
    serde_json::from_str(&std::fs::read_to_string(dir.join("params.json")).unwrap()).unwrap()
}

/// Two replicas of `fit_data_parallel` in this process, on the same batches.
fn reference() -> Vec<Vec<u64>> {
    reference_of(2, false)
}

/// `n` replicas of `fit_data_parallel` in this process, on the same batches.
fn reference_of(n: usize, sgd: bool) -> Vec<Vec<u64>> {
    let devices: Vec<_> = (0..n).map(|_| Default::default()).collect();
    let results = fit_data_parallel::<B, GptLmTask, _>(
        &devices,
        |_, _| Ok(trainer(16, None, sgd)),
        &gpt_windows(),
        None,
    )
    .unwrap();
    param_values(&results[0].1)
        .iter()
        .map(|p| p.iter().map(|v| v.to_bits()).collect())
        .collect()
}

/// burn-collective keeps one collective per process: two data-parallel runs started at once
/// take turns instead of refusing each other's registration (`MultipleRegister`).
#[test]
fn two_data_parallel_runs_in_one_process_take_turns() {
    let runs: Vec<_> = (0..2).map(|_| std::thread::spawn(reference)).collect();
    let ends: Vec<_> = runs.into_iter().map(|r| r.join().unwrap()).collect();
    assert!(ends[0] == ends[1], "the two runs ended differently");
}

/// The replicas' builds run one at a time in rank order: each seeds burn's global generator and
/// initialises a model, and `Trainer::new` seeds it again, so interleaved builds would give rank 0
/// (whose parameters every replica starts from) a model that depends on thread timing.
#[test]
fn replicas_are_built_one_at_a_time_in_rank_order() {
    let events = std::sync::Mutex::new(Vec::new());
    let devices: Vec<_> = (0..3).map(|_| Default::default()).collect();
    let ends = fit_data_parallel::<B, GptLmTask, _>(
        &devices,
        |rank, _| {
            events.lock().unwrap().push(format!("start {rank}"));
            // Long enough for the other threads to reach their builds.
            std::thread::sleep(Duration::from_millis(50));
            let t = trainer(16, None, false);
            events.lock().unwrap().push(format!("end {rank}"));
            Ok(t)
        },
        &gpt_windows(),
        None,
    )
    .unwrap();
    assert_eq!(
        events.into_inner().unwrap(),
        ["start 0", "end 0", "start 1", "end 1", "start 2", "end 2"]
    );
    assert!(
        ends.iter()
            .all(|(_, m)| param_values(m) == param_values(&ends[0].1))
    );
}

#[test]
fn two_nodes_train_as_two_local_replicas_bit_for_bit() {
    let _cluster = one_cluster_at_a_time();
    let base = tmp("two-nodes");
    let dirs = [base.join("n0"), base.join("n1")];
    let results = wait(&dirs, start(&dirs, |_| Vec::new()), Duration::from_secs(120));
    for (code, err) in &results {
        assert_eq!(*code, Some(0), "{err}");
    }
    let (a, b) = (params(&dirs[0]), params(&dirs[1]));
    assert!(a == b, "the nodes' parameters differ");
    let r = reference();
    assert!(
        a == r,
        "two nodes differ from two local replicas by {}",
        largest_difference(&a, &r)
    );
    std::fs::remove_dir_all(&base).ok();
}

/// Three nodes sum three addends in the ring's order, three local replicas in the tree's: the
/// results agree to rounding. With SGD the update is `lr · g`, linear in the gradient: one f32
/// rounding of a three-term sum moves a gradient element by at most 2 ulps of the largest term
/// (2.4e-7 relative, and the gradients here are below 1 in size), so a step moves a parameter by
/// at most `lr · 2.4e-7` = 2.4e-8 more or less than the other order, and six steps, with those
/// changes feeding the later gradients through a model whose gradient is smooth, stay well below
/// 1e-6 (allowed). All three nodes agree bit for bit: each receives the same reduced sums.
#[test]
fn three_nodes_agree_and_match_three_local_replicas_to_rounding() {
    let _cluster = one_cluster_at_a_time();
    let base = tmp("three-nodes");
    let dirs = [base.join("n0"), base.join("n1"), base.join("n2")];
    let results = wait(
        &dirs,
        start(&dirs, |_| vec![("EMBER_TEST_SGD", "1".into())]),
        Duration::from_secs(120),
    );
    for (code, err) in &results {
        assert_eq!(*code, Some(0), "{err}");
    }
    let p: Vec<_> = dirs.iter().map(|d| params(d)).collect();
    assert!(p[0] == p[1] && p[1] == p[2], "the nodes' parameters differ");
    let r = reference_of(3, true);
    let mut worst = 0.0f64;
    for (x, y) in p[0].iter().flatten().zip(r.iter().flatten()) {
        worst = worst.max((f64::from_bits(*x) - f64::from_bits(*y)).abs());
    }
    eprintln!("three nodes vs three local replicas: largest difference {worst:e}");
    assert!(
        worst < 1e-6,
        "three nodes differ from three local replicas by {worst:e}"
    );
    std::fs::remove_dir_all(&base).ok();
}

#[test]
fn a_dead_node_stops_the_other_and_both_resume_to_the_same_end() {
    let _cluster = one_cluster_at_a_time();
    let base = tmp("dead-node");
    let dirs = [base.join("n0"), base.join("n1")];
    let started = Instant::now();
    let results = wait(
        &dirs,
        start(&dirs, |rank| {
            if rank == 1 {
                vec![("EMBER_TEST_DIE_AT", "3".into())]
            } else {
                Vec::new()
            }
        }),
        Duration::from_secs(120),
    );
    assert_eq!(results[1].0, Some(9), "{}", results[1].1);
    let (code, err) = &results[0];
    assert_eq!(*code, Some(3), "node 0 should stop with an error: {err}");
    assert!(err.contains("node 1") && err.contains("step 3"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(90),
        "took {:?}",
        started.elapsed()
    );
    // Both resume from their last checkpoint (step 2) and finish the run.
    let results = wait(
        &dirs,
        start(&dirs, |_| vec![("EMBER_TEST_RESUME", "1".into())]),
        Duration::from_secs(120),
    );
    for (code, err) in &results {
        assert_eq!(*code, Some(0), "{err}");
    }
    assert!(params(&dirs[0]) == reference(), "the resumed run ends elsewhere");
    assert!(params(&dirs[1]) == params(&dirs[0]));
    std::fs::remove_dir_all(&base).ok();
}

#[test]
fn a_node_with_another_model_is_refused_at_the_start() {
    let _cluster = one_cluster_at_a_time();
    let base = tmp("mismatch");
    let dirs = [base.join("n0"), base.join("n1")];
    let results = wait(
        &dirs,
        start(&dirs, |rank| {
            if rank == 1 {
                vec![("EMBER_TEST_WIDTH", "32".into())]
            } else {
                Vec::new()
            }
        }),
        Duration::from_secs(90),
    );
    let (code, err) = &results[1];
    assert_eq!(*code, Some(3), "{err}");
    assert!(
        err.contains("n_embd") && err.contains("16") && err.contains("32"),
        "{err}"
    );
    // Node 0 waited for a node that never registered, and says so.
    let (code, err) = &results[0];
    assert_eq!(*code, Some(3), "{err}");
    assert!(err.contains("node 1"), "{err}");
    std::fs::remove_dir_all(&base).ok();
}

#[test]
fn the_configuration_reads_torchrun_variables_and_refuses_bad_values() {
    let vars = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    };
    // Nothing set: one node, the defaults.
    let one = DistributedConfig::from_vars(|_| None).unwrap();
    assert_eq!((one.num_nodes, one.node_rank, one.world_size()), (1, 0, 1));
    assert_eq!(
        (one.orchestrator.as_str(), one.data_port),
        ("127.0.0.1:29500", 29502)
    );
    // torchrun with 2 processes per node on 2 nodes: global rank 3 is node 1's second process.
    let c = DistributedConfig::from_vars(vars(&[
        ("WORLD_SIZE", "4"),
        ("LOCAL_WORLD_SIZE", "2"),
        ("RANK", "3"),
        ("MASTER_ADDR", "10.0.0.1"),
        ("MASTER_PORT", "30000"),
        ("EMBER_TIMEOUT_SECS", "7"),
        ("EMBER_START_ORCHESTRATOR", "0"),
    ]))
    .unwrap();
    assert_eq!((c.num_nodes, c.devices_per_node, c.node_rank), (2, 2, 1));
    assert_eq!(
        (c.orchestrator.as_str(), c.orchestrator_port()),
        ("10.0.0.1:30000", 30000)
    );
    // 30000 + 2 + node rank 1 (30001 is the rendezvous).
    assert_eq!(c.data_port, 30003);
    assert_eq!((c.timeout, c.start_orchestrator), (Duration::from_secs(7), false));
    assert_eq!((c.world_size(), c.global_rank(1)), (4, 3));
    // Bad values name the variable or the field.
    let err = DistributedConfig::from_vars(vars(&[("MASTER_PORT", "abc")])).unwrap_err();
    assert!(err.to_string().contains("MASTER_PORT"), "{err}");
    let err = DistributedConfig::from_vars(vars(&[("MASTER_PORT", "70000")])).unwrap_err();
    assert!(err.to_string().contains("MASTER_PORT"), "{err}");
    let err =
        DistributedConfig::from_vars(vars(&[("WORLD_SIZE", "3"), ("LOCAL_WORLD_SIZE", "2")])).unwrap_err();
    assert!(err.to_string().contains("LOCAL_WORLD_SIZE"), "{err}");
    let err = DistributedConfig::from_vars(vars(&[("WORLD_SIZE", "2"), ("RANK", "2")])).unwrap_err();
    assert!(err.to_string().contains("node_rank"), "{err}");
    let err = DistributedConfig::from_vars(vars(&[("EMBER_TIMEOUT_SECS", "0")])).unwrap_err();
    assert!(err.to_string().contains("timeout"), "{err}");
    // A huge rank saturates the default port instead of overflowing.
    assert_eq!(ember_lm::train::default_data_port(65000, 100_000), u16::MAX);
    let config = DistributedConfig {
        orchestrator: "nohost".into(),
        ..Default::default()
    };
    assert!(
        config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("orchestrator")
    );
}

/// A cluster that runs the orchestrator apart: `ember-orchestrator PORT`, and nodes started with
/// `EMBER_START_ORCHESTRATOR=0`; the run ends as with node 0's own orchestrator.
#[test]
fn nodes_train_with_the_orchestrator_binary() {
    let _cluster = one_cluster_at_a_time();
    let base = tmp("orchestrator-bin");
    let dirs = [base.join("n0"), base.join("n1")];
    let master = free_port_pair();
    let mut orchestrator = Command::new(env!("CARGO_BIN_EXE_ember-orchestrator"))
        .arg(master.to_string())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let results = wait(
        &dirs,
        start_at(master, &dirs, |_| vec![("EMBER_START_ORCHESTRATOR", "0".into())]),
        Duration::from_secs(120),
    );
    let _ = orchestrator.kill();
    let _ = orchestrator.wait();
    for (code, err) in &results {
        assert_eq!(*code, Some(0), "{err}");
    }
    assert!(
        params(&dirs[0]) == reference(),
        "the run differs from two local replicas"
    );
    std::fs::remove_dir_all(&base).ok();
}

/// Node 0 of two, alone, with a port already taken (the orchestrator's, or its data port when
/// `data` is set): it must fail on the port at once, before waiting for node 1.
fn a_taken_port_is_an_error_at_once(data: bool) {
    let _cluster = one_cluster_at_a_time();
    let base = tmp("port-taken");
    let dirs = [base.join("n0")];
    let taken = TcpListener::bind(("0.0.0.0", 0)).unwrap();
    let port = taken.local_addr().unwrap().port();
    let started = Instant::now();
    let env = |_| {
        let mut env = vec![("WORLD_SIZE", "2".to_string())];
        if data {
            env.push(("EMBER_DATA_PORT", port.to_string()));
        }
        env
    };
    let children = if data {
        start(&dirs, env)
    } else {
        start_at(port, &dirs, env)
    };
    let results = wait(&dirs, children, Duration::from_secs(60));
    let (code, err) = &results[0];
    assert_eq!(*code, Some(3), "{err}");
    let setting = if data { "data_port" } else { "orchestrator port" };
    assert!(
        err.contains(&format!("cannot listen on port {port}")) && err.contains(setting),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    std::fs::remove_dir_all(&base).ok();
}

/// An orchestrator port already taken is an error at once, not a wait for the timeout.
#[test]
fn a_taken_orchestrator_port_is_an_error_at_once() {
    a_taken_port_is_an_error_at_once(false);
}

/// A data port already taken is an error at once: burn's data service would only log it, and the
/// other nodes would exchange tensors with whatever listens there.
#[test]
fn a_taken_data_port_is_an_error_at_once() {
    a_taken_port_is_an_error_at_once(true);
}
