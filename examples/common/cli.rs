//! What every example's command line shares: the device to run on, and the initialisation.
//!
//! Each example includes this file (`#[path = "common/cli.rs"] mod cli;`); it is not an example
//! itself.

use std::fmt;

/// Where a run computes: `cpu` (burn-ndarray), `flex` (burn-flex) or `wgpu` (burn-wgpu: a GPU
/// through Vulkan, Metal or DX12), each available when its cargo feature is compiled in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Device {
    /// burn-ndarray (the `ndarray` feature, on by default).
    Cpu,
    /// burn-flex (the `flex` feature): the faster CPU backend.
    Flex,
    /// burn-wgpu (the `wgpu` feature).
    Wgpu,
}

impl Device {
    /// `flex` when it is compiled in, else `cpu`.
    pub fn best_compiled() -> Self {
        if cfg!(feature = "flex") {
            Self::Flex
        } else if cfg!(feature = "ndarray") {
            Self::Cpu
        } else {
            Self::Wgpu
        }
    }

    /// The cargo feature this device needs.
    pub fn feature(self) -> &'static str {
        match self {
            Self::Cpu => "ndarray",
            Self::Flex => "flex",
            Self::Wgpu => "wgpu",
        }
    }

    /// An error naming the missing feature and how to build with it.
    pub fn not_compiled(self, example: &'static str) -> ember_lm::Error {
        ember_lm::Error::Config {
            module: example,
            message: format!(
                "--device {self} needs the `{}` cargo feature, which this build lacks: \
                 cargo run --release --features {} --example {example} -- ...",
                self.feature(),
                self.feature()
            ),
        }
    }
}

/// How the model's initial weights are drawn (`ember_lm::models::ModelInit`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
#[allow(dead_code)] // each example uses the schemes its model takes
pub enum Init {
    /// Each submodule as its `torch.nn` counterpart (`nn.Embedding` N(0, 1), `nn.Linear`).
    TorchModules,
    /// PyTorch's word_language_model example: embedding and output layer U(-0.1, 0.1).
    WordLanguageModel,
    /// GPT-2's (nanoGPT's `_init_weights`): N(0, 0.02), scaled residual projections.
    Gpt2,
    /// PyTorch's nn.Transformer translation tutorial: Xavier-uniform on every matrix.
    TransformerTutorial,
}

impl From<Init> for ember_lm::models::ModelInit {
    fn from(init: Init) -> Self {
        match init {
            Init::TorchModules => Self::TorchModules,
            Init::WordLanguageModel => Self::WordLanguageModel,
            Init::Gpt2 => Self::Gpt2,
            Init::TransformerTutorial => Self::TransformerTutorial,
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Cpu => "cpu",
            Self::Flex => "flex",
            Self::Wgpu => "wgpu",
        })
    }
}

/// Calls `$run::<B>($args…)` with `B` the autodiff backend of `$device`, or returns the error
/// naming the missing feature.
#[allow(unused_macros)]
macro_rules! on_device {
    ($example:literal, $device:expr, $run:ident ( $($arg:expr),* $(,)? )) => {{
        use burn::backend::Autodiff;
        #[allow(unreachable_patterns)]
        match $device {
            #[cfg(feature = "ndarray")]
            cli::Device::Cpu => $run::<Autodiff<burn::backend::NdArray>>($($arg),*),
            #[cfg(feature = "flex")]
            cli::Device::Flex => $run::<Autodiff<burn::backend::Flex>>($($arg),*),
            #[cfg(feature = "wgpu")]
            cli::Device::Wgpu => $run::<Autodiff<burn::backend::Wgpu>>($($arg),*),
            other => Err(other.not_compiled($example)),
        }
    }};
}
#[allow(unused_imports)]
pub(crate) use on_device;

/// Messages (the trainer's progress lines, errors) through `tracing`, written to stderr at INFO
/// and above, in colour on a terminal only.
pub fn init_tracing() {
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .without_time()
        .with_max_level(tracing::Level::INFO)
        .try_init();
}
