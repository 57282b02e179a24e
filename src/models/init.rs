//! [`ModelInit`]: how a task model draws its initial weights, and the draws the schemes share.
//!
//! The same architecture trains to different losses at equal steps from different
//! initialisations (issue 20: a character-level LSTM model loses 0.12 nats at 2000 steps with the
//! word-language-model example's `U(-0.1, 0.1)` against `torch.nn`'s defaults), so the scheme is
//! a documented field of every task model's configuration rather than a fixed choice.

use burn::config::Config;
use burn::module::{Initializer, Param};
use burn::tensor::Tensor;

use crate::nn::TorchLinear;
use crate::{Backend, Error, Result};

/// How a task model initialises its weights. Every scheme draws from burn's generator, so
/// [`seed_everything`](crate::train::seed_everything) before `init` fixes the draw.
///
/// Each model's `init` says which schemes it takes; another is an [`Error::Config`] naming the
/// `init` field. Recurrent layers are `nn.LSTM`/`nn.GRU`/`nn.RNN`'s `U(±1/√hidden)` and layer
/// norms ones and zeros under every scheme.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum ModelInit {
    /// Each submodule as its `torch.nn` counterpart initialises itself, as in a model written
    /// from `torch.nn` modules without an init function: `nn.Embedding` `N(0, 1)`, `nn.Linear`
    /// Kaiming-uniform (`U(±1/√in)`) with its bias `U(±1/√in)`. A tied weight is the tensor the
    /// reference model keeps (the embedding's for `RnnLm`, the head's for `Gpt`, as nanoGPT ties
    /// them). Every task model takes it.
    TorchModules,
    /// PyTorch's `examples/word_language_model` `RNNModel.init_weights`: the embeddings and the
    /// output layer `U(-0.1, 0.1)`, the output bias 0, the rest as [`TorchModules`]. Taken by
    /// `RnnLm` (the model it comes from), `SequenceClassifier` and `RnnSeq2Seq`.
    ///
    /// [`TorchModules`]: ModelInit::TorchModules
    WordLanguageModel,
    /// GPT-2's, as nanoGPT's `_init_weights`: every linear and embedding weight `N(0, 0.02)`,
    /// biases 0, the residual output projections `N(0, 0.02/√(2·n_layer))`. Taken by `Gpt`.
    Gpt2,
}

impl ModelInit {
    /// `self`, or an [`Error::Config`] naming the field when `module` does not take it.
    pub(crate) fn check(self, module: &'static str, accepted: &[ModelInit]) -> Result<Self> {
        if accepted.contains(&self) {
            return Ok(self);
        }
        Err(Error::Config {
            module,
            message: format!("init is {self:?}, but this model takes only {accepted:?}"),
        })
    }

    /// A token table `[rows, cols]`: `N(0, 1)` as `nn.Embedding`, `U(±0.1)`, or `N(0, 0.02)`.
    pub(crate) fn embedding<B: Backend>(
        self,
        rows: usize,
        cols: usize,
        device: &B::Device,
    ) -> Param<Tensor<B, 2>> {
        let init = match self {
            ModelInit::TorchModules => Initializer::Normal { mean: 0.0, std: 1.0 },
            ModelInit::WordLanguageModel => Initializer::Uniform { min: -0.1, max: 0.1 },
            ModelInit::Gpt2 => Initializer::Normal { mean: 0.0, std: 0.02 },
        };
        init.init([rows, cols], device)
    }

    /// The output layer `d_in → d_out`: `nn.Linear`'s, `U(±0.1)` with a zero bias, or
    /// `N(0, 0.02)` with a zero bias.
    pub(crate) fn output_layer<B: Backend>(
        self,
        d_in: usize,
        d_out: usize,
        bias: bool,
        device: &B::Device,
    ) -> TorchLinear<B> {
        let weight = match self {
            ModelInit::TorchModules => return TorchLinear::new(d_in, d_out, bias, device),
            ModelInit::WordLanguageModel => Initializer::Uniform { min: -0.1, max: 0.1 },
            ModelInit::Gpt2 => Initializer::Normal { mean: 0.0, std: 0.02 },
        };
        TorchLinear {
            weight: weight.init([d_out, d_in], device),
            bias: bias.then(|| Initializer::Zeros.init([d_out], device)),
        }
    }
}
