//! Weights in and out: PyTorch state dicts read through burn-store, keyed by PyTorch's own names.
mod state_dict;

pub use state_dict::StateDict;
