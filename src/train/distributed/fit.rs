//! [`fit_distributed`]: one node's part of a multi-node run, and [`run_orchestrator`].

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use burn_collective::{CollectiveConfig, PeerId};
use burn_communication::Address;

use super::config::DistributedConfig;
use super::reducer::Reducer;
use super::rendezvous::{NodeSeen, RendezvousClient, serve_rendezvous};
use super::replica::{self, Replica};
use crate::data::Batches;
use crate::train::task::Task;
use crate::train::trainer::{FitReport, Shard, Trainer};
use crate::{Error, Result};

/// Runs burn-collective's global orchestrator on `port` and ember-lm's rendezvous on `port + 1`
/// (all interfaces) until the process ends: in a thread of node 0, or apart from the nodes for
/// a cluster that wants it so (the `ember-orchestrator` binary, with
/// `EMBER_START_ORCHESTRATOR=0` on the nodes).
pub fn run_orchestrator(port: u16) -> Result<()> {
    serve_rendezvous(port.saturating_add(1))?;
    run_global_orchestrator(port)
}

/// burn-collective's global orchestrator on `port`, until the process ends.
fn run_global_orchestrator(port: u16) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Collective {
            operation: "orchestrator".into(),
            message: e.to_string(),
        })?;
    runtime.block_on(burn_collective::start_global_orchestrator(port));
    Ok(())
}

/// Fails at once when `port` is taken. burn's servers (the orchestrator, a node's data service)
/// only log a port they cannot take: the nodes would wait until the timeout, or exchange tensors
/// with whatever else listens there.
fn port_free(port: u16, operation: &str, setting: &str) -> Result<()> {
    std::net::TcpListener::bind(("0.0.0.0", port))
        .map(drop)
        .map_err(|e| Error::Collective {
            operation: operation.into(),
            message: format!(
                "cannot listen on port {port}: {e} (another run, or a port in the system's range \
                 for outgoing connections: choose another {setting})"
            ),
        })
}

/// The rendezvous address: the orchestrator's host, its port + 1 (the configuration is valid).
fn rendezvous_address(config: &DistributedConfig) -> String {
    let host = config
        .orchestrator
        .rsplit_once(':')
        .map_or("127.0.0.1", |(h, _)| h);
    format!("{host}:{}", config.orchestrator_port().saturating_add(1))
}

/// What every node must agree on: compared with node 0's at the rendezvous.
fn description<B: crate::TrainBackend, T: Task<B>>(
    config: &DistributedConfig,
    trainer: &Trainer<B, T>,
    train: &dyn Batches<T::Batch>,
    valid: Option<&dyn Batches<T::Batch>>,
) -> serde_json::Value {
    serde_json::json!({
        "num_nodes": config.num_nodes,
        "devices_per_node": config.devices_per_node,
        "trainer": trainer.run_description(),
        "train_batches": train.num_batches(),
        "valid_batches": valid.map(|v| v.num_batches()),
    })
}

/// The nodes' heartbeats as this node last heard them, in words.
fn describe_status(
    num_nodes: usize,
    seen: &Mutex<Option<std::collections::BTreeMap<usize, NodeSeen>>>,
) -> String {
    let seen = seen.lock().ok().and_then(|s| s.clone());
    let Some(seen) = seen else {
        return "node 0 (the rendezvous) stopped answering this node".into();
    };
    let quiet: Vec<String> = (0..num_nodes)
        .filter_map(|rank| match seen.get(&rank) {
            None => Some(format!("node {rank} never joined")),
            Some(seen) if seen.gone => Some(format!(
                "node {rank} disconnected (its process ended) after step {}",
                seen.step
            )),
            Some(seen) if seen.age > Duration::from_secs(5) => Some(format!(
                "node {rank} last heard at step {}, {} s ago",
                seen.step,
                seen.age.as_secs()
            )),
            Some(_) => None,
        })
        .collect();
    if quiet.is_empty() {
        "every node was still sending heartbeats".into()
    } else {
        quiet.join("; ")
    }
}

/// Trains this node's replicas as part of a run over `config.num_nodes` nodes, each running the
/// same program. `build(global_rank, device)` makes each replica's trainer, as for
/// [`fit_data_parallel`](crate::train::fit_data_parallel) (one call at a time, in rank order); to resume, each node resumes its
/// own run directory (all nodes must stand at the same step, which the rendezvous checks).
///
/// Global rank 0 shows progress; the first replica of every node writes its run directory
/// (`TrainerConfig::run_dir`), so that each machine keeps the checkpoints it resumes from. On one
/// machine or a shared filesystem, give each node its own directory.
///
/// Errors: a configuration that does not validate; `devices.len()` other than
/// `devices_per_node`; a node whose run differs from node 0's ([`Error::Config`] saying what
/// differs); a collective operation without an answer within `config.timeout`
/// ([`Error::Collective`] naming the step and the nodes not heard from). After an
/// [`Error::Collective`], end the process: threads blocked in burn-collective stay blocked.
pub fn fit_distributed<B, T, F>(
    config: &DistributedConfig,
    devices: &[B::Device],
    build: F,
    train: &(dyn Batches<T::Batch> + Sync),
    valid: Option<&(dyn Batches<T::Batch> + Sync)>,
) -> Result<Vec<(FitReport, T::Model)>>
where
    B: crate::TrainBackend,
    T: Task<B>,
    T::Model: Send,
    F: Fn(usize, &B::Device) -> Result<Trainer<B, T>> + Sync,
{
    config.validate()?;
    if devices.len() != config.devices_per_node {
        return Err(Error::Config {
            module: "DistributedConfig",
            message: format!(
                "devices_per_node is {}, but {} devices were given",
                config.devices_per_node,
                devices.len()
            ),
        });
    }
    let world = config.world_size();
    if train.num_batches() < world {
        return Err(Error::Data(format!(
            "{} training batches cannot feed {world} data-parallel replicas",
            train.num_batches()
        )));
    }
    port_free(config.data_port, "data service", "data_port")?;
    let rendezvous = rendezvous_address(config);
    let orchestrator_port = config.orchestrator_port();
    let node_rank = config.node_rank;
    let start_orchestrator = config.start_orchestrator;
    let timeout = config.timeout;
    // Joins the rendezvous with this node's description (node 0 starts it, and the
    // orchestrator), then sends heartbeats with the step once a second.
    let step = Arc::new(AtomicU64::new(0));
    let seen: Arc<Mutex<Option<std::collections::BTreeMap<usize, NodeSeen>>>> =
        Arc::new(Mutex::new(Some(Default::default())));
    let join = |me: serde_json::Value| -> Result<()> {
        if node_rank == 0 && start_orchestrator {
            port_free(orchestrator_port, "orchestrator", "orchestrator port")?;
            serve_rendezvous(orchestrator_port.saturating_add(1))?;
            std::thread::spawn(move || run_global_orchestrator(orchestrator_port));
        }
        let mut client = RendezvousClient::join(&rendezvous, node_rank, me, timeout)?;
        let (step, seen) = (step.clone(), seen.clone());
        std::thread::spawn(move || {
            loop {
                let status = client.beat(step.load(Ordering::Relaxed)).ok();
                let lost = status.is_none();
                if let Ok(mut s) = seen.lock() {
                    *s = status;
                }
                if lost {
                    return;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        });
        Ok(())
    };
    let num_nodes = config.num_nodes;
    let status: Arc<dyn Fn() -> String + Send + Sync> = {
        let seen = seen.clone();
        Arc::new(move || describe_status(num_nodes, &seen))
    };
    let on_step: Arc<dyn Fn(u64) + Send + Sync> = {
        let step = step.clone();
        Arc::new(move |s| step.store(s, Ordering::Relaxed))
    };
    // burn-communication connects only to `ws://` URLs (a bare host:port fails to parse there).
    let address = |a: String| {
        let a = if a.contains("://") { a } else { format!("ws://{a}") };
        Address::from_str(&a).map_err(|e| Error::Config {
            module: "DistributedConfig",
            message: format!("not an address: {a:?} ({e})"),
        })
    };
    let collective = CollectiveConfig::default()
        .with_num_devices(config.devices_per_node)
        .with_num_nodes(config.num_nodes as u32)
        .with_global_address(address(config.orchestrator.clone())?)
        .with_node_address(address(format!("{}:{}", config.node_host, config.data_port))?)
        .with_data_service_port(config.data_port);
    // The rendezvous needs the first replica's trainer, which lives in its thread: that thread
    // sends the description, this one joins and tells every replica whether to go on.
    let (describe_tx, describe_rx) = std::sync::mpsc::channel::<serde_json::Value>();
    let gates: Vec<_> = devices
        .iter()
        .map(|_| std::sync::mpsc::channel::<Option<String>>())
        .collect();
    let build = &build;
    let _turn = super::replica::one_run_at_a_time();
    let builds = &super::replica::BuildTurns::new();
    std::thread::scope(|scope| {
        let mut go = Vec::new();
        let handles: Vec<_> = gates
            .into_iter()
            .zip(devices)
            .enumerate()
            .map(|(local, ((gate_tx, gate_rx), device))| {
                go.push(gate_tx);
                let rank = config.global_rank(local);
                let describe_tx = (local == 0).then(|| describe_tx.clone());
                let (collective, status, on_step) = (collective.clone(), status.clone(), on_step.clone());
                scope.spawn(move || -> Result<(FitReport, T::Model)> {
                    let built = builds.take(local, || build(rank, device));
                    if let (Some(tx), Ok(trainer)) = (&describe_tx, &built) {
                        let valid = valid.map(|v| v as &dyn Batches<T::Batch>);
                        let _ = tx.send(description(config, trainer, train, valid));
                    }
                    drop(describe_tx);
                    let mut trainer = built?;
                    // The rendezvous's verdict: None to go on; the node's own error is returned by
                    // the calling thread.
                    match gate_rx.recv() {
                        Ok(None) => {}
                        Ok(Some(refusal)) => {
                            return Err(Error::Collective {
                                operation: "rendezvous".into(),
                                message: refusal,
                            });
                        }
                        Err(_) => {
                            return Err(Error::Collective {
                                operation: "rendezvous".into(),
                                message: "the node stopped before the rendezvous".into(),
                            });
                        }
                    }
                    let reducer = Reducer::<B::InnerBackend>::start(PeerId::from(rank), config.timeout);
                    reducer.register(device.clone(), collective, &*status)?;
                    replica::enter(Replica {
                        reducer,
                        status,
                        on_step,
                    });
                    let shard = Shard {
                        rank,
                        world,
                        writer: local == 0,
                    };
                    let result = replica::train_replica(&mut trainer, train, valid, shard, false);
                    replica::leave();
                    Ok((result?, trainer.into_model()))
                })
            })
            .collect();
        drop(describe_tx);
        let verdict = match describe_rx.recv() {
            Ok(me) => join(me),
            // The first replica failed to build; its thread returns the error.
            Err(_) => Ok(()),
        };
        let failure = verdict.err();
        for tx in &go {
            let _ = tx.send(failure.as_ref().map(ToString::to_string));
        }
        let results: Vec<Result<(FitReport, T::Model)>> = handles
            .into_iter()
            .enumerate()
            .map(|(local, h)| {
                h.join().map_err(|_| Error::WorkerPanicked {
                    rank: config.global_rank(local),
                })?
            })
            .collect();
        match failure {
            Some(e) => Err(e),
            None => results.into_iter().collect(),
        }
    })
}
