//! Weights in and out: PyTorch state dicts read through burn-store, keyed by PyTorch's own names,
//! and atomic file writes for checkpoints and logs.
mod atomic;
mod state_dict;

pub use atomic::atomic_write;
pub(crate) use atomic::sync_dir;
pub use state_dict::StateDict;
