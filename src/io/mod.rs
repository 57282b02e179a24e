//! Weights in and out: PyTorch state dicts read through burn-store, keyed by PyTorch's own names,
//! and atomic file writes for checkpoints and logs.
mod atomic;
mod crc;
pub(crate) mod json;
mod pickle_guard;
pub(crate) mod record;
mod state_dict;

pub use atomic::atomic_write;
pub(crate) use atomic::{remove_stale_temporaries, sync_dir};
pub use crc::crc32c;
pub use state_dict::StateDict;
