//! Training across machines: every node runs the same program with its own
//! [`DistributedConfig`]; burn-collective's global orchestrator (started by node 0) connects the
//! nodes, whose replicas average their gradients with a ring all-reduce, exactly as the
//! replicas of [`fit_data_parallel`](crate::train::fit_data_parallel) do on one machine.
//!
//! Beside it, node 0 runs a rendezvous (its orchestrator port + 1) that refuses a node whose run
//! differs (model configuration, world size, data, resume step) and carries heartbeats; each
//! collective operation runs on a thread of its own and gives up after
//! [`DistributedConfig::timeout`], with an error that names the step and the nodes not heard
//! from, so that a dead node stops the others instead of hanging them.
mod config;
#[cfg(feature = "collective")]
mod fit;
#[cfg(feature = "collective")]
pub(crate) mod reducer;
#[cfg(feature = "collective")]
mod rendezvous;
#[cfg(feature = "collective")]
pub(crate) mod replica;

pub use config::{DistributedConfig, default_data_port};
#[cfg(feature = "collective")]
pub use fit::{fit_distributed, run_orchestrator};
