//! # ember-lm
//!
//! Sequence models and language models on [burn](https://burn.dev) 0.21, generic over burn's
//! [`Backend`](burn::tensor::backend::Backend): the same model code trains on the CPU
//! (burn-ndarray or burn-flex) and on the GPU (burn-wgpu), with autodiff.
//!
//! Layers follow PyTorch: the same options, the same defaults (where ember-lm departs from them it
//! says so, as `batch_first = true`), the same numbers, and they load the weights saved from the
//! matching `torch.nn` module.
//!
//! ```
//! # #[cfg(feature = "ndarray")] {
//! use burn::backend::NdArray;
//! use burn::tensor::{Distribution, Tensor};
//! use ember_lm::nn::LstmConfig;
//!
//! let device = Default::default();
//! let lstm = LstmConfig::new(16, 32)
//!     .with_num_layers(2)
//!     .with_bidirectional(true)
//!     .init::<NdArray>(&device)?;
//! let x = Tensor::<NdArray, 3>::random([4, 10, 16], Distribution::Normal(0.0, 1.0), &device);
//! // Sequences of 10, 7, 3 and 9 real steps, padded to 10.
//! let (out, state) = lstm.forward_padded(x, &[10, 7, 3, 9], None)?;
//! assert_eq!(out.dims(), [4, 10, 64]);
//! assert_eq!(state.hidden.dims(), [4, 4, 32]);
//! # }
//! # Ok::<(), ember_lm::Error>(())
//! ```
//!
//! The whole path — text, tokens, batches, training, generation — in one program:
//!
//! ```
//! # #[cfg(feature = "ndarray")] {
//! use burn::backend::{Autodiff, NdArray};
//! use ember_lm::prelude::*;
//!
//! type B = Autodiff<NdArray>;
//! let device = Default::default();
//! let text = ember_lm::data::ToyGrammar.corpus(20_000, 1); // a built-in corpus
//! let tokenizer = CharTokenizer::from_corpus(&text)?; // text -> ids
//! let ids: Vec<i64> = tokenizer.encode(&text)?.into_iter().map(i64::from).collect();
//! let streams = LmStreams::new(ids, LmShape { batch_size: 8, seq_len: 32 })?; // ids -> batches (truncated BPTT)
//! let config = RnnLmConfig::new(tokenizer.vocab_size(), 32, 64).with_dropout(0.0);
//! let mut trainer = Trainer::new(
//!     TrainerConfig::new()
//!         .with_max_steps(Some(30))
//!         .with_progress(ember_lm::train::ProgressMode::Off),
//!     ember_lm::train::RnnLmTask::new(config.clone()),
//!     config.init::<B>(&device)?,
//!     &OptimizerConfig::adamw().with_lr(1e-2),
//!     LrSchedule::Constant,
//!     &device,
//! )?;
//! let report = trainer.fit(&streams, None)?; // batches -> trained model
//! // Better than guessing uniformly among the characters already.
//! assert!(report.last_train.unwrap().bpc.unwrap() < (tokenizer.vocab_size() as f64).log2());
//! let model = burn::module::AutodiffModule::valid(trainer.model());
//! let prompt = tokenizer.encode("the ")?; // model -> text
//! let out = Generator::new(&model, GenerationConfig::greedy(20), &device)?.generate(&[prompt])?;
//! let continuation = tokenizer.decode(&out[0][0].tokens)?;
//! assert_eq!(continuation.chars().count(), 20);
//! # }
//! # Ok::<(), ember_lm::Error>(())
//! ```
//!
//! ## Backends and features
//! | feature | backend | notes |
//! |---|---|---|
//! | `ndarray` (default) | `burn::backend::NdArray` | with its `std`, `simd` and multi-threaded GEMM |
//! | `flex` | `burn::backend::Flex` | burn 0.21's faster pure-Rust CPU backend |
//! | `wgpu` | `burn::backend::Wgpu` | with `autotune` and `fusion` |
//! | `collective` | — | data-parallel training over several devices with burn-collective |
//!
//! Every module is generic over [`ember_lm::Backend`](Backend): burn's `Backend` plus the
//! whole-sequence recurrent operation (fused CPU kernels with their own backward on NdArray and
//! Flex, a tensor-op composition elsewhere). It is implemented for the three backends above and
//! for `Autodiff` of each; another burn backend needs one line (see [`backend`]).
//!
//! ## Loading PyTorch weights
//! [`io::StateDict`] reads a `state_dict` saved with `safetensors.torch.save_file` or `torch.save`
//! (through burn-store). Each module names its parameters once with PyTorch's keys
//! ([`io::TorchWeights`]: `weight_ih_l0`, `bias_hh_l1_reverse`, `layers.0.self_attn.in_proj_weight`,
//! ...), and that description both loads a state dict (`load_state_dict`, `load_pytorch_file`;
//! missing keys, unexpected keys and shape mismatches are one [`Error`] naming them all) and saves
//! one (`save_pytorch`, a `.safetensors` file that PyTorch loads with `strict=True`).
//! [`models::Gpt::save_pretrained`] writes a Hugging Face GPT-2 directory.
//!
//! ## Training
//! [`optim`] describes optimizers with PyTorch's defaults (on burn-optim), weight-decay groups, clipping and
//! learning-rate schedules; [`train`] runs a [`train::Task`] with the [`train::Trainer`] (accumulation,
//! validation, CSV/TensorBoard logs, atomic checkpoints and exact resume, early stopping, data-parallel training
//! with the `collective` feature) over batches from [`data`]. See `docs/training.md`.
//!
//! ## Text in, text out
//! [`data`] has tokenizers (character, word, byte-level BPE) and datasets; [`models`] the task
//! models (`RnnLm`, `Gpt`, `SequenceClassifier`, `RnnSeq2Seq`, `TransformerSeq2Seq`);
//! [`generate`] greedy decoding, sampling and beam search over any
//! [`models::LanguageModel`]; [`eval`] BLEU and classification metrics. See `docs/generation.md`.
//!
//! ## Errors
//! Bad input at the public API (wrong shapes, lengths out of range, invalid configurations,
//! corrupt or mismatched weight files) is a typed [`Error`], never a panic. Tensor ranks are
//! checked by the type system (`Tensor<B, 3>`).
#![deny(missing_docs)]

pub mod backend;
pub mod data;
mod error;
pub mod eval;
pub mod generate;
pub mod io;
mod log_space;
pub mod models;
pub mod nn;
pub mod optim;
pub mod speech;
pub mod train;

pub use backend::{Backend, TrainBackend};
pub use error::{Error, Result};

/// The Rust blocks of the README and of `docs/` are doctests, so that the guide cannot rot. They
/// need the features of the README's test command.
#[cfg(all(
    doctest,
    feature = "ndarray",
    feature = "flex",
    feature = "wgpu",
    feature = "collective"
))]
mod guide_doctests {
    #[doc = include_str!("../README.md")]
    struct Readme;
    #[doc = include_str!("../docs/getting-started.md")]
    struct GettingStarted;
    #[doc = include_str!("../docs/models.md")]
    struct Models;
    #[doc = include_str!("../docs/training.md")]
    struct Training;
    #[doc = include_str!("../docs/generation.md")]
    struct Generation;
    #[doc = include_str!("../docs/backends.md")]
    struct Backends;
    #[doc = include_str!("../docs/architecture.md")]
    struct Architecture;
    #[doc = include_str!("../docs/benchmarks.md")]
    struct Benchmarks;
}

/// The types most programs need: `use ember_lm::prelude::*;`.
///
/// It goes beside `use burn::prelude::*;`. burn's prelude exports its own `Backend`, so this one
/// names ember-lm's [`Backend`](crate::Backend) `EmberBackend` (and exports [`TrainBackend`]),
/// leaving no name imported twice. Bound generic code by `EmberBackend` (or
/// `ember_lm::Backend`): burn's `Backend` lacks the operations ember-lm's modules run on.
///
/// ```
/// use burn::prelude::*;
/// use ember_lm::prelude::*;
///
/// /// One LSTM layer's output width, on any backend ember-lm runs on.
/// fn width<B: EmberBackend>(device: &B::Device) -> ember_lm::Result<usize> {
///     let lstm: Lstm<B> = LstmConfig::new(4, 8).init(device)?;
///     let x = Tensor::<B, 3>::zeros([2, 3, 4], device);
///     Ok(lstm.forward(x, None)?.0.dims()[2])
/// }
///
/// /// Training code takes a `TrainBackend`: autodiff over an ember-lm backend.
/// fn trainable<B: TrainBackend>() {}
///
/// type B = burn::backend::NdArray;
/// assert_eq!(width::<B>(&Default::default())?, 8);
/// trainable::<burn::backend::Autodiff<B>>();
/// # Ok::<(), ember_lm::Error>(())
/// ```
pub mod prelude {
    pub use crate::data::{Batches, LmShape, LmStreams, LmWindows, TokenBatch};
    pub use crate::data::{BpeTokenizer, CharTokenizer, Tokenizer, WordTokenizer};
    pub use crate::generate::{GenerationConfig, Generator};
    pub use crate::io::{StateDict, TorchWeights};
    pub use crate::models::{Gpt, GptConfig, TransformerSeq2Seq, TransformerSeq2SeqConfig};
    pub use crate::models::{
        LanguageModel, RnnLm, RnnLmConfig, SequenceClassifier, SequenceClassifierConfig,
    };
    pub use crate::nn::{
        AttentionMasks, KvCache, MultiHeadAttention, MultiHeadAttentionConfig, TransformerDecoder,
        TransformerDecoderConfig, TransformerEncoder, TransformerEncoderConfig,
    };
    pub use crate::nn::{
        Gru, GruConfig, Lstm, LstmConfig, LstmState, Nonlinearity, Rnn, RnnConfig, lengths_from_padding_mask,
    };
    pub use crate::optim::{DecayGroups, GradClip, LrSchedule, OptimizerConfig};
    pub use crate::train::{GptLmTask, RnnLmTask, Task, Trainer, TrainerConfig, seed_everything};
    pub use crate::{Backend as EmberBackend, Error, Result, TrainBackend};
}
