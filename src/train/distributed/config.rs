//! [`DistributedConfig`]: where this process stands among the nodes of a multi-node run, from
//! arguments or from the environment variables `torchrun` sets.

use std::time::Duration;

use crate::{Error, Result};

/// One node of a multi-node data-parallel run: how many nodes, which one this is, where the
/// orchestrator listens and where this node serves its tensors.
///
/// Every node runs the same program with its own `node_rank`; node 0 starts burn-collective's
/// global orchestrator unless [`start_orchestrator`](Self::start_orchestrator) is turned off
/// (a cluster that runs it apart, with `ember-orchestrator`). Global replica `r` is device
/// `r % devices_per_node` of node `r / devices_per_node`; replica 0 broadcasts the initial
/// parameters and alone writes the run directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistributedConfig {
    /// Nodes in the run (`torchrun`'s `--nnodes`). Default 1.
    pub num_nodes: usize,
    /// This node, `0..num_nodes` (`torchrun`'s `--node-rank`). Default 0.
    pub node_rank: usize,
    /// Devices (replicas) on every node. Default 1.
    pub devices_per_node: usize,
    /// The orchestrator's `host:port` (`MASTER_ADDR:MASTER_PORT`). Default `127.0.0.1:29500`.
    pub orchestrator: String,
    /// The host other nodes reach this one at. Default `127.0.0.1`.
    pub node_host: String,
    /// The port this node serves tensors on (all-reduce traffic between nodes). Default
    /// `29502 + node_rank`: the orchestrator's port plus 2 and the rank, so that nodes on one
    /// machine do not collide with each other or with the rendezvous (the orchestrator's port
    /// plus 1).
    pub data_port: u16,
    /// Whether node 0 starts the orchestrator in-process. Default true.
    pub start_orchestrator: bool,
    /// How long a collective operation may wait for the other nodes before the run stops with an
    /// error naming the step. Default 300 s.
    pub timeout: Duration,
}

impl Default for DistributedConfig {
    fn default() -> Self {
        Self {
            num_nodes: 1,
            node_rank: 0,
            devices_per_node: 1,
            orchestrator: "127.0.0.1:29500".into(),
            node_host: "127.0.0.1".into(),
            data_port: 29502,
            start_orchestrator: true,
            timeout: Duration::from_secs(300),
        }
    }
}

impl DistributedConfig {
    /// The configuration `torchrun` users know, from the environment:
    ///
    /// | variable | field | note |
    /// |---|---|---|
    /// | `WORLD_SIZE` | `num_nodes × devices_per_node` | |
    /// | `RANK` (or `NODE_RANK`) | `node_rank` | with one device per node, the global rank |
    /// | `LOCAL_WORLD_SIZE` | `devices_per_node` | default 1 |
    /// | `MASTER_ADDR`, `MASTER_PORT` | `orchestrator` | defaults `127.0.0.1`, `29500` |
    /// | `EMBER_NODE_HOST` | `node_host` | default `127.0.0.1`; on a cluster, the address the other nodes reach this one at |
    /// | `EMBER_DATA_PORT` | `data_port` | default `MASTER_PORT + 2 + node_rank` |
    /// | `EMBER_START_ORCHESTRATOR` | `start_orchestrator` | `0` when the orchestrator runs apart |
    /// | `EMBER_TIMEOUT_SECS` | `timeout` | default 300 |
    ///
    /// Unset variables take the defaults (one node); a value that does not parse, or a
    /// `WORLD_SIZE` that is not a multiple of `LOCAL_WORLD_SIZE`, is an [`Error::Config`]
    /// naming the variable.
    pub fn from_env() -> Result<Self> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) with the variables read through `get` (a launcher's own
    /// table, or a test's).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Self> {
        // Reads `name` and parses it, or `None` when it is unset.
        fn parse<T: std::str::FromStr>(
            get: &dyn Fn(&str) -> Option<String>,
            name: &str,
        ) -> Result<Option<T>> {
            match get(name) {
                Some(v) => v.trim().parse().map(Some).map_err(|_| Error::Config {
                    module: "DistributedConfig",
                    message: format!("environment variable {name} must be a number, found {v:?}"),
                }),
                None => Ok(None),
            }
        }
        let env = |name: &str| -> Result<Option<u64>> { parse(&get, name) };
        let defaults = Self::default();
        let devices = env("LOCAL_WORLD_SIZE")?.unwrap_or(1) as usize;
        let world = env("WORLD_SIZE")?.map_or(devices, |w| w as usize);
        let node_rank = match env("NODE_RANK")? {
            Some(r) => r as usize,
            None => env("RANK")?.unwrap_or(0) as usize / devices.max(1),
        };
        let host = get("MASTER_ADDR").unwrap_or_else(|| "127.0.0.1".into());
        let port: u16 = parse(&get, "MASTER_PORT")?.unwrap_or(29500);
        if devices == 0 || !world.is_multiple_of(devices) {
            return Err(Error::Config {
                module: "DistributedConfig",
                message: format!(
                    "WORLD_SIZE ({world}) must be a positive multiple of LOCAL_WORLD_SIZE ({devices})"
                ),
            });
        }
        let config = Self {
            num_nodes: world / devices,
            node_rank,
            devices_per_node: devices,
            orchestrator: format!("{host}:{port}"),
            node_host: get("EMBER_NODE_HOST").unwrap_or_else(|| "127.0.0.1".into()),
            data_port: parse(&get, "EMBER_DATA_PORT")?.unwrap_or(default_data_port(port, node_rank)),
            start_orchestrator: env("EMBER_START_ORCHESTRATOR")?.is_none_or(|v| v != 0),
            timeout: env("EMBER_TIMEOUT_SECS")?.map_or(defaults.timeout, Duration::from_secs),
        };
        config.validate()?;
        Ok(config)
    }

    /// The orchestrator's port (29500 when `orchestrator` does not parse, which
    /// [`validate`](Self::validate) refuses).
    pub fn orchestrator_port(&self) -> u16 {
        self.orchestrator
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or(29500)
    }

    /// Replicas in the whole run.
    pub fn world_size(&self) -> usize {
        self.num_nodes * self.devices_per_node
    }

    /// The global rank of this node's `local` device.
    pub fn global_rank(&self, local: usize) -> usize {
        self.node_rank * self.devices_per_node + local
    }

    /// Checks the fields: an [`Error::Config`] names the first that is out of range.
    pub fn validate(&self) -> Result<()> {
        let fail = |message: String| {
            Err(Error::Config {
                module: "DistributedConfig",
                message,
            })
        };
        if self.num_nodes == 0 || self.devices_per_node == 0 {
            return fail(format!(
                "num_nodes and devices_per_node must be positive, found {} and {}",
                self.num_nodes, self.devices_per_node
            ));
        }
        if self.node_rank >= self.num_nodes {
            return fail(format!(
                "node_rank must be in 0..{} (num_nodes), found {}",
                self.num_nodes, self.node_rank
            ));
        }
        if self
            .orchestrator
            .rsplit_once(':')
            .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
        {
            return fail(format!(
                "orchestrator must be host:port, found {:?}",
                self.orchestrator
            ));
        }
        if self.node_host.is_empty() || self.data_port == 0 {
            return fail(format!(
                "node_host must be set and data_port positive, found {:?} and {}",
                self.node_host, self.data_port
            ));
        }
        if self.timeout.is_zero() {
            return fail("timeout must be positive, found 0".into());
        }
        Ok(())
    }
}

/// A node's default data port: the orchestrator's port + 2 + its rank (+ 1 is the rendezvous),
/// saturating rather than wrapping.
pub fn default_data_port(orchestrator_port: u16, node_rank: usize) -> u16 {
    orchestrator_port
        .saturating_add(2)
        .saturating_add(u16::try_from(node_rank).unwrap_or(u16::MAX))
}
