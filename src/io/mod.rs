//! Weights in and out: PyTorch state dicts read through burn-store and written as safetensors,
//! keyed by PyTorch's own names through one weight tree ([`TorchWeights`]), and atomic file
//! writes for checkpoints and logs.
mod atomic;
mod crc;
mod export;
mod grads;
pub(crate) mod json;
mod key_report;
mod pickle_guard;
pub(crate) mod record;
mod state_dict;
mod weights;

pub use atomic::atomic_write;
pub(crate) use atomic::{remove_stale_temporaries, sync_dir};
pub use crc::crc32c;
pub(crate) use export::write_safetensors;
pub use grads::named_grads;
pub use key_report::{KeyReport, ShapeMismatch};
pub use state_dict::StateDict;
pub use weights::{LoadInfo, TorchWeights, WeightPath};
pub(crate) use weights::{load_into, load_lenient, state_dict_of};
