//! [`ModelInit`]: how a task model draws its initial weights, and the draws the schemes share.
//!
//! The same architecture trains to different losses at equal steps from different
//! initialisations (issue 20: a character-level LSTM model loses 0.12 nats at 2000 steps with the
//! word-language-model example's `U(-0.1, 0.1)` against `torch.nn`'s defaults), so the scheme is
//! a documented field of every task model's configuration rather than a fixed choice.

use burn::config::Config;
use burn::module::{Initializer, ModuleMapper, Param};
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
    /// Kaiming-uniform (`U(±1/√in)`) with its bias `U(±1/√in)`, and `nn.Transformer`'s reset of
    /// its stacks (Xavier-uniform on every matrix). A tied weight is the tensor the
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
    /// PyTorch's "Language Translation with nn.Transformer" tutorial: `nn.init.xavier_uniform_`
    /// on every parameter of two or more dimensions (the embeddings, every projection, the
    /// generator), the rest as [`TorchModules`]. Taken by `TransformerSeq2Seq`, whose default it
    /// is.
    ///
    /// [`TorchModules`]: ModelInit::TorchModules
    TransformerTutorial,
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

    /// A token table `[rows, cols]`: `N(0, 1)` as `nn.Embedding`, `U(±0.1)`, `N(0, 0.02)`, or
    /// Xavier-uniform.
    pub(crate) fn embedding<B: Backend>(
        self,
        rows: usize,
        cols: usize,
        device: &B::Device,
    ) -> Param<Tensor<B, 2>> {
        let init = match self {
            ModelInit::TorchModules => Initializer::Normal { mean: 0.0, std: 1.0 },
            ModelInit::TransformerTutorial => Initializer::Uniform {
                min: -xavier_bound(&[rows, cols]),
                max: xavier_bound(&[rows, cols]),
            },
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
            ModelInit::TransformerTutorial => {
                let mut layer = TorchLinear::new(d_in, d_out, bias, device);
                layer.weight = XavierMatrices.map_float(layer.weight);
                return layer;
            }
            ModelInit::WordLanguageModel => Initializer::Uniform { min: -0.1, max: 0.1 },
            ModelInit::Gpt2 => Initializer::Normal { mean: 0.0, std: 0.02 },
        };
        TorchLinear {
            weight: weight.init([d_out, d_in], device),
            bias: bias.then(|| Initializer::Zeros.init([d_out], device)),
        }
    }
}

/// torch's `xavier_uniform_` bound `√(6 / (fan_in + fan_out))` for a weight of shape `dims`
/// (`fan_in = dims[1]·r`, `fan_out = dims[0]·r`, `r` the product of the further dimensions).
fn xavier_bound(dims: &[usize]) -> f64 {
    let receptive: usize = dims[2..].iter().product();
    (6.0 / ((dims[0] + dims[1]) * receptive) as f64).sqrt()
}

/// Redraws every parameter of two or more dimensions Xavier-uniform, as the nn.Transformer
/// tutorial's `for p in model.parameters(): if p.dim() > 1: xavier_uniform_(p)`.
///
/// The new parameter stays lazy, like the one it replaces (which is never drawn): the draw
/// happens once the generator is seeded (`Trainer::new` seeds it and draws every lazy parameter
/// in module order). An eager draw here would come from an unseeded generator.
pub(crate) struct XavierMatrices;

impl<B: Backend> ModuleMapper<B> for XavierMatrices {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        if D < 2 {
            return param;
        }
        let (shape, device) = (param.shape(), param.lazy_device());
        let bound = xavier_bound(&shape.dims::<D>());
        Initializer::Uniform {
            min: -bound,
            max: bound,
        }
        .init(shape, &device)
    }
}
