//! The crate's typed error.
//!
//! Every fallible public function returns [`Result`]. Messages say what was expected and what was
//! found, so that a wrong shape or a corrupt file is diagnosed from the message alone.

use std::path::PathBuf;

/// Everything that can go wrong at ember-lm's public API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A tensor argument has the wrong shape.
    #[error("{what}: expected shape {expected}, found {found:?}")]
    Shape {
        /// Which argument (for example `"Lstm input"`).
        what: String,
        /// The expected shape, written with symbolic sizes where they are free (`[batch, time, 4]`).
        expected: String,
        /// The shape that was passed.
        found: Vec<usize>,
    },
    /// A configuration value is out of its valid range.
    #[error("invalid configuration for {module}: {message}")]
    Config {
        /// The module whose configuration is invalid (for example `"LstmConfig"`).
        module: &'static str,
        /// What is wrong, with the value found.
        message: String,
    },
    /// Per-sequence lengths (or a padding mask) that do not fit the batch.
    #[error("invalid sequence lengths: {0}")]
    Lengths(String),
    /// A state dict does not fit the module: missing keys, unexpected keys and shape mismatches,
    /// all reported together (PyTorch's `load_state_dict` lists).
    #[error("{source_name}: the state dict does not fit the module: {report}")]
    StateDict {
        /// The file (or other source) that was read.
        source_name: String,
        /// What did not fit, each key in the source's naming.
        report: crate::io::KeyReport,
    },
    /// A [`KvCache`](crate::nn::KvCache) cannot take the new positions.
    #[error("KV cache full: it holds {capacity} positions, {needed} were needed")]
    CacheFull {
        /// The cache's maximum length.
        capacity: usize,
        /// The length the append would have reached.
        needed: usize,
    },
    /// A token id outside `0..vocab_size`.
    #[error("token id {found} is outside the vocabulary (0..{vocab_size})")]
    TokenId {
        /// The offending id.
        found: i64,
        /// The vocabulary size.
        vocab_size: usize,
    },
    /// An index outside the rows it selects from (a beam-search reorder of a decoding state).
    #[error("{what}: index {index} is outside 0..{len}")]
    Index {
        /// What was indexed (for example `"RnnLm state reorder"`).
        what: String,
        /// The offending index.
        index: i64,
        /// The number of rows.
        len: usize,
    },
    /// A sequence longer than the model's context (`block_size`).
    #[error(
        "sequence of {found} positions (with {offset} already cached) exceeds the context of {max} positions"
    )]
    TooLong {
        /// Positions asked for in this call.
        found: usize,
        /// Positions already in the cache.
        offset: usize,
        /// The model's context length.
        max: usize,
    },
    /// A weight or configuration file could not be read or parsed.
    #[error("cannot load {path}: {message}")]
    Load {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A file or directory could not be written (a run directory, a checkpoint).
    #[error("cannot write {path}: {message}")]
    Save {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A checkpoint is incomplete, corrupt, or belongs to a different model or run.
    #[error("checkpoint {path}: {message}")]
    Checkpoint {
        /// The checkpoint directory or file.
        path: PathBuf,
        /// What is wrong, with what was expected and what was found.
        message: String,
    },
    /// The loss or the gradient norm was NaN or infinite, and the policy is to stop.
    #[error("non-finite {what} ({value}) at optimizer step {step}")]
    NonFinite {
        /// `"loss"` or `"gradient norm"`.
        what: &'static str,
        /// The value found.
        value: f64,
        /// The optimizer step (0-based) whose batch produced it.
        step: u64,
    },
    /// Values that must be finite are NaN or infinite: loaded weights, or the logits that a token is
    /// chosen from.
    #[error("{what} holds NaN or infinite values")]
    NotFinite {
        /// What holds them, named as the user knows it (a parameter and its file, the logits of
        /// a generation step).
        what: String,
    },
    /// A state could not be serialised (an optimizer's or a model's record).
    #[error("cannot serialise {what}: {message}")]
    Serialize {
        /// What was being serialised (for example `"the optimizer state"`).
        what: String,
        /// The serialiser's message.
        message: String,
    },
    /// A collective operation of data-parallel training failed (registration, broadcast,
    /// all-reduce).
    #[error("burn-collective {operation} failed: {message}")]
    Collective {
        /// The operation (for example `"all-reduce"`).
        operation: String,
        /// burn-collective's message.
        message: String,
    },
    /// A data-parallel replica's thread panicked.
    #[error("data-parallel replica {rank} panicked")]
    WorkerPanicked {
        /// The replica's rank.
        rank: usize,
    },
    /// The metric chosen for the best checkpoint and early stopping is not one the task reports.
    #[error("the monitored metric `{metric}` is not reported by this task")]
    MissingMetric {
        /// The metric named in `TrainerConfig::monitor`.
        metric: String,
    },
    /// The Hugging Face `tokenizers` library failed to train, encode or decode.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A dataset or batch source that cannot be trained on (empty, inconsistent).
    #[error("{0}")]
    Data(String),
}

/// `Result` with ember-lm's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A shape error for `what`, expected `expected`, found `found`.
    pub(crate) fn shape(what: impl Into<String>, expected: impl Into<String>, found: &[usize]) -> Self {
        Self::Shape {
            what: what.into(),
            expected: expected.into(),
            found: found.to_vec(),
        }
    }
}
