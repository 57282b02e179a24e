//! [`TransformerEncoderLayer`] and [`TransformerDecoderLayer`]: PyTorch's `torch.nn.TransformerEncoderLayer` and
//! `torch.nn.TransformerDecoderLayer` (batch-first).

use burn::config::Config;
use burn::module::{Initializer, Module, Param};
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::Tensor;
use burn::tensor::activation::relu;

use super::attention::{AttentionMasks, AttentionMemory, MultiHeadAttention, MultiHeadAttentionConfig};
use super::kv_cache::KvCache;
use crate::io::StateDict;
use crate::{Backend, Error, Result};

/// The feed-forward activation of a Transformer layer.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum FeedForwardActivation {
    /// `relu` (PyTorch's default).
    Relu,
    /// Exact `gelu` (with `erf`), PyTorch's `"gelu"`.
    Gelu,
    /// `gelu` with the tanh approximation (GPT-2's `gelu_new`, PyTorch's `approximate="tanh"`).
    GeluTanh,
}

/// Configuration of a [`TransformerEncoderLayer`]; the options and defaults of
/// `torch.nn.TransformerEncoderLayer` (always batch-first).
#[derive(Config, Debug)]
pub struct TransformerEncoderLayerConfig {
    /// Model width.
    pub d_model: usize,
    /// Number of attention heads.
    pub n_heads: usize,
    /// Width of the feed-forward block. Default 2048.
    #[config(default = 2048)]
    pub d_ff: usize,
    /// Dropout after attention, inside and after the feed-forward block, only while training.
    /// Default 0.1.
    #[config(default = 0.1)]
    pub dropout: f64,
    /// Feed-forward activation. Default relu.
    #[config(default = "FeedForwardActivation::Relu")]
    pub activation: FeedForwardActivation,
    /// Layer norm before each block (pre-norm) instead of after it. Default false.
    #[config(default = false)]
    pub norm_first: bool,
    /// Layer-norm epsilon. Default 1e-5.
    #[config(default = 1e-5)]
    pub layer_norm_eps: f64,
    /// Biases in the linear layers and layer norms. Default true.
    #[config(default = true)]
    pub bias: bool,
}

/// A linear map in PyTorch's layout (`weight [out, in]`).
#[derive(Module, Debug)]
pub struct TorchLinear<B: Backend> {
    /// `[out, in]`.
    pub weight: Param<Tensor<B, 2>>,
    /// `[out]`.
    pub bias: Option<Param<Tensor<B, 1>>>,
}

impl<B: Backend> TorchLinear<B> {
    /// PyTorch's `nn.Linear` initialisation: `U(-1/sqrt(in), 1/sqrt(in))` for weight and bias.
    pub fn new(d_in: usize, d_out: usize, bias: bool, device: &B::Device) -> Self {
        let k = 1.0 / (d_in as f64).sqrt();
        let init = Initializer::Uniform { min: -k, max: k };
        Self {
            weight: init.init_with([d_out, d_in], Some(d_in), Some(d_out), device),
            bias: bias.then(|| init.init([d_out], device)),
        }
    }

    /// PyTorch's keys (`{name}.weight`, `{name}.bias`) with their shapes.
    pub(crate) fn keys(&self, name: &str) -> Vec<(String, Vec<usize>)> {
        let mut keys = vec![(format!("{name}.weight"), self.weight.dims().to_vec())];
        keys.extend(
            self.bias
                .as_ref()
                .map(|b| (format!("{name}.bias"), b.dims().to_vec())),
        );
        keys
    }

    /// Takes `{path}.weight` and `{path}.bias` from `dict` (already checked).
    pub(crate) fn load(self, dict: &StateDict, path: &str) -> Result<Self> {
        Ok(Self {
            weight: dict.fill(self.weight, &format!("{path}.weight"))?,
            bias: self
                .bias
                .map(|b| dict.fill(b, &format!("{path}.bias")))
                .transpose()?,
        })
    }

    /// `x Wᵀ + b` over the last dimension; an [`Error::Shape`] when `x`'s last size is not the
    /// layer's input size.
    ///
    /// # Shapes
    /// - `x`: `[batch, len, in]`; output `[batch, len, out]`
    pub fn forward(&self, x: Tensor<B, 3>) -> Result<Tensor<B, 3>> {
        let d_in = self.weight.dims()[1];
        if x.dims()[2] != d_in {
            return Err(Error::shape(
                "TorchLinear input",
                format!("[batch, len, {d_in}]"),
                &x.dims(),
            ));
        }
        Ok(self.apply(x))
    }

    /// [`forward`](Self::forward) for callers whose shapes are right by construction.
    pub(crate) fn apply(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [batch, len, d_in] = x.dims();
        let d_out = self.weight.dims()[0];
        // [B, T, in] -> [B*T, in] -> [B*T, out] -> [B, T, out]: a 2-D matmul, because broadcast
        // batched matmuls gave nondeterministic results on burn-wgpu 0.21 under llvmpipe.
        let mut y = x
            .reshape([batch * len, d_in])
            .matmul(self.weight.val().transpose());
        if let Some(b) = &self.bias {
            y = y + b.val().unsqueeze::<2>();
        }
        y.reshape([batch, len, d_out])
    }
}

/// A layer norm in PyTorch's parameterisation (`weight`, `bias`, biased variance).
#[derive(Module, Debug)]
pub struct TorchLayerNorm<B: Backend> {
    /// `[d]`, initialised to ones.
    pub weight: Param<Tensor<B, 1>>,
    /// `[d]`, initialised to zeros.
    pub bias: Option<Param<Tensor<B, 1>>>,
    eps: f64,
}

impl<B: Backend> TorchLayerNorm<B> {
    /// A norm over `d` features: ones, zeros (when `bias`), and `eps`.
    pub fn new(d: usize, eps: f64, bias: bool, device: &B::Device) -> Self {
        Self {
            weight: Initializer::Ones.init([d], device),
            bias: bias.then(|| Initializer::Zeros.init([d], device)),
            eps,
        }
    }

    /// PyTorch's keys (`{name}.weight`, `{name}.bias`) with their shapes.
    fn keys(&self, name: &str) -> Vec<(String, Vec<usize>)> {
        let mut keys = vec![(format!("{name}.weight"), self.weight.dims().to_vec())];
        keys.extend(
            self.bias
                .as_ref()
                .map(|b| (format!("{name}.bias"), b.dims().to_vec())),
        );
        keys
    }

    /// Takes `{path}.weight` and `{path}.bias` from `dict` (already checked).
    fn load(self, dict: &StateDict, path: &str) -> Result<Self> {
        Ok(Self {
            weight: dict.fill(self.weight, &format!("{path}.weight"))?,
            bias: self
                .bias
                .map(|b| dict.fill(b, &format!("{path}.bias")))
                .transpose()?,
            eps: self.eps,
        })
    }

    /// Normalises the last dimension, then scales and shifts it; an [`Error::Shape`] when `x`'s
    /// last size is not the norm's.
    ///
    /// # Shapes
    /// - `x`: `[batch, len, d]`; output the same
    pub fn forward(&self, x: Tensor<B, 3>) -> Result<Tensor<B, 3>> {
        let d = self.weight.dims()[0];
        if x.dims()[2] != d {
            return Err(Error::shape(
                "TorchLayerNorm input",
                format!("[batch, len, {d}]"),
                &x.dims(),
            ));
        }
        Ok(self.apply(x))
    }

    /// [`forward`](Self::forward) for callers whose shapes are right by construction.
    pub(crate) fn apply(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        // Biased variance over the last dimension, as PyTorch's layer norm.
        let centred = x.clone() - x.mean_dim(2);
        let var = centred.clone().powi_scalar(2).mean_dim(2);
        let y = centred / (var + self.eps).sqrt() * self.weight.val().unsqueeze::<3>();
        match &self.bias {
            Some(b) => y + b.val().unsqueeze::<3>(),
            None => y,
        }
    }
}

/// One Transformer encoder layer, computed as PyTorch's:
///
/// ```text
/// post-norm: x = norm1(x + dropout(self_attn(x)));  x = norm2(x + dropout(ff(x)))
/// pre-norm:  x = x + dropout(self_attn(norm1(x)));  x = x + dropout(ff(norm2(x)))
/// ff(x) = linear2(dropout(act(linear1(x))))
/// ```
///
/// Field names follow PyTorch's state dict (`self_attn.*`, `linear1.*`, `linear2.*`, `norm1.*`,
/// `norm2.*`); [`TransformerEncoderLayer::load_state_dict`] loads one.
#[derive(Module, Debug)]
pub struct TransformerEncoderLayer<B: Backend> {
    /// Self-attention.
    pub self_attn: MultiHeadAttention<B>,
    /// First feed-forward linear, `[d_ff, d_model]`.
    pub linear1: TorchLinear<B>,
    /// Second feed-forward linear, `[d_model, d_ff]`.
    pub linear2: TorchLinear<B>,
    /// Norm around attention.
    pub norm1: TorchLayerNorm<B>,
    /// Norm around the feed-forward block.
    pub norm2: TorchLayerNorm<B>,
    dropout: Dropout,
    #[module(skip)]
    activation: FeedForwardActivation,
    norm_first: bool,
}

impl TransformerEncoderLayerConfig {
    /// Builds the layer, or an [`Error::Config`] for invalid sizes or dropout.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<TransformerEncoderLayer<B>> {
        if self.d_ff == 0 {
            return Err(Error::Config {
                module: "TransformerEncoderLayerConfig",
                message: "d_ff must be positive, found 0".into(),
            });
        }
        super::check_param_size(
            "TransformerEncoderLayerConfig",
            "linear1 (d_ff × d_model)",
            &[self.d_ff, self.d_model],
        )?;
        let self_attn = MultiHeadAttentionConfig::new(self.d_model, self.n_heads)
            .with_dropout(self.dropout)
            .with_bias(self.bias)
            .init(device)?;
        let (d, ff) = (self.d_model, self.d_ff);
        Ok(TransformerEncoderLayer {
            self_attn,
            linear1: TorchLinear::new(d, ff, self.bias, device),
            linear2: TorchLinear::new(ff, d, self.bias, device),
            norm1: TorchLayerNorm::new(d, self.layer_norm_eps, self.bias, device),
            norm2: TorchLayerNorm::new(d, self.layer_norm_eps, self.bias, device),
            dropout: DropoutConfig::new(self.dropout).init(),
            activation: self.activation,
            norm_first: self.norm_first,
        })
    }
}

impl<B: Backend> TransformerEncoderLayer<B> {
    /// # Shapes
    /// - `x`: `[batch, time, d_model]`; masks as in [`AttentionMasks`] with `key_len = time`
    /// - output: `[batch, time, d_model]`
    pub fn forward(&self, x: Tensor<B, 3>, masks: &AttentionMasks<B>) -> Result<Tensor<B, 3>> {
        self.block(x, |h| Ok(self.self_attn.forward_self(h, masks, false)?.0))
    }

    /// The layer over new positions, attending to them and to the positions in `cache`, which
    /// it extends (incremental decoding; see [`MultiHeadAttention::forward_cached`]).
    ///
    /// # Shapes
    /// - `x`: `[batch, new, d_model]`; output: `[batch, new, d_model]`
    pub fn forward_cached(
        &self,
        x: Tensor<B, 3>,
        cache: &mut KvCache<B>,
        masks: &AttentionMasks<B>,
    ) -> Result<Tensor<B, 3>> {
        self.block(x, |h| self.self_attn.forward_cached(h, cache, masks))
    }

    /// The residual block around a given attention.
    fn block(
        &self,
        x: Tensor<B, 3>,
        attention: impl FnOnce(Tensor<B, 3>) -> Result<Tensor<B, 3>>,
    ) -> Result<Tensor<B, 3>> {
        let attend = |x| -> Result<Tensor<B, 3>> { Ok(self.dropout.forward(attention(x)?)) };
        if self.norm_first {
            let x = x.clone() + attend(self.norm1.apply(x))?;
            Ok(x.clone() + self.feed_forward(self.norm2.apply(x)))
        } else {
            let x = self.norm1.apply(x.clone() + attend(x)?);
            Ok(self.norm2.apply(x.clone() + self.feed_forward(x)))
        }
    }

    fn feed_forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let y = feed_forward(&self.linear1, &self.linear2, self.activation, &self.dropout, x);
        self.dropout.forward(y)
    }

    /// PyTorch's key names of this layer's parameters with their shapes.
    pub fn pytorch_keys(&self) -> Vec<(String, Vec<usize>)> {
        let mut keys = prefixed(self.self_attn.pytorch_keys(), "self_attn.");
        keys.extend(self.linear1.keys("linear1"));
        keys.extend(self.linear2.keys("linear2"));
        keys.extend(self.norm1.keys("norm1"));
        keys.extend(self.norm2.keys("norm2"));
        keys
    }

    /// Loads the state dict of a `torch.nn.TransformerEncoderLayer` (keys under `prefix`). A
    /// missing or unexpected key or a shape mismatch is an [`Error`] naming it.
    pub fn load_state_dict(self, dict: &StateDict, prefix: &str) -> Result<Self> {
        dict.check_exact(prefix, &self.pytorch_keys())?;
        Ok(Self {
            self_attn: self
                .self_attn
                .load_state_dict(dict, &format!("{prefix}self_attn."))?,
            linear1: self.linear1.load(dict, &format!("{prefix}linear1"))?,
            linear2: self.linear2.load(dict, &format!("{prefix}linear2"))?,
            norm1: self.norm1.load(dict, &format!("{prefix}norm1"))?,
            norm2: self.norm2.load(dict, &format!("{prefix}norm2"))?,
            ..self
        })
    }
}

/// `keys` with `prefix` in front of each name.
fn prefixed(keys: Vec<(String, Vec<usize>)>, prefix: &str) -> Vec<(String, Vec<usize>)> {
    keys.into_iter()
        .map(|(k, s)| (format!("{prefix}{k}"), s))
        .collect()
}

/// The feed-forward block `linear2(dropout(act(linear1(x))))`, shared by the encoder and decoder
/// layers.
fn feed_forward<B: Backend>(
    linear1: &TorchLinear<B>,
    linear2: &TorchLinear<B>,
    activation: FeedForwardActivation,
    dropout: &Dropout,
    x: Tensor<B, 3>,
) -> Tensor<B, 3> {
    let h = linear1.apply(x);
    let h = match activation {
        FeedForwardActivation::Relu => relu(h),
        FeedForwardActivation::Gelu => gelu_exact(h),
        FeedForwardActivation::GeluTanh => gelu_tanh(h),
    };
    linear2.apply(dropout.forward(h))
}

/// Exact `gelu`, `x/2 (1 + erf(x / sqrt 2))`, composed so that autodiff differentiates it exactly:
/// burn 0.21's default `gelu_backward` (used by burn-ndarray) is the derivative of the tanh
/// approximation, off by up to 1e-3 from PyTorch's gradients.
fn gelu_exact<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    x.clone() * 0.5 * ((x / std::f64::consts::SQRT_2).erf() + 1.0)
}

/// `gelu` with the tanh approximation: `x/2 (1 + tanh(sqrt(2/π) (x + 0.044715 x³)))`.
fn gelu_tanh<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let c = (2.0 / std::f64::consts::PI).sqrt();
    let inner = (x.clone() + x.clone().powi_scalar(3) * 0.044715) * c;
    x * 0.5 * (inner.tanh() + 1.0)
}

/// Configuration of a [`TransformerDecoderLayer`]; the options and defaults of
/// `torch.nn.TransformerDecoderLayer` (always batch-first).
#[derive(Config, Debug)]
pub struct TransformerDecoderLayerConfig {
    /// Model width.
    pub d_model: usize,
    /// Number of attention heads (self- and cross-attention).
    pub n_heads: usize,
    /// Width of the feed-forward block. Default 2048.
    #[config(default = 2048)]
    pub d_ff: usize,
    /// Dropout after each block and inside the feed-forward block, only while training. Default 0.1.
    #[config(default = 0.1)]
    pub dropout: f64,
    /// Feed-forward activation. Default relu.
    #[config(default = "FeedForwardActivation::Relu")]
    pub activation: FeedForwardActivation,
    /// Layer norm before each block (pre-norm) instead of after it. Default false.
    #[config(default = false)]
    pub norm_first: bool,
    /// Layer-norm epsilon. Default 1e-5.
    #[config(default = 1e-5)]
    pub layer_norm_eps: f64,
    /// Biases in the linear layers and layer norms. Default true.
    #[config(default = true)]
    pub bias: bool,
}

/// One Transformer decoder layer, computed as PyTorch's:
///
/// ```text
/// post-norm: x = norm1(x + sa(x));  x = norm2(x + mha(x, memory));  x = norm3(x + ff(x))
/// pre-norm:  x = x + sa(norm1(x));  x = x + mha(norm2(x), memory);  x = x + ff(norm3(x))
/// ```
///
/// Field names follow PyTorch's state dict (`self_attn.*`, `multihead_attn.*`, `linear1.*`,
/// `linear2.*`, `norm1.*` to `norm3.*`); [`TransformerDecoderLayer::load_state_dict`] loads one.
#[derive(Module, Debug)]
pub struct TransformerDecoderLayer<B: Backend> {
    /// Self-attention over the target.
    pub self_attn: MultiHeadAttention<B>,
    /// Cross-attention from the target to the memory.
    pub multihead_attn: MultiHeadAttention<B>,
    /// First feed-forward linear, `[d_ff, d_model]`.
    pub linear1: TorchLinear<B>,
    /// Second feed-forward linear, `[d_model, d_ff]`.
    pub linear2: TorchLinear<B>,
    /// Norm around self-attention.
    pub norm1: TorchLayerNorm<B>,
    /// Norm around cross-attention.
    pub norm2: TorchLayerNorm<B>,
    /// Norm around the feed-forward block.
    pub norm3: TorchLayerNorm<B>,
    dropout: Dropout,
    #[module(skip)]
    activation: FeedForwardActivation,
    norm_first: bool,
}

impl TransformerDecoderLayerConfig {
    /// Builds the layer, or an [`Error::Config`] for invalid sizes or dropout.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<TransformerDecoderLayer<B>> {
        if self.d_ff == 0 {
            return Err(Error::Config {
                module: "TransformerDecoderLayerConfig",
                message: "d_ff must be positive, found 0".into(),
            });
        }
        super::check_param_size(
            "TransformerDecoderLayerConfig",
            "linear1 (d_ff × d_model)",
            &[self.d_ff, self.d_model],
        )?;
        let attention = || {
            MultiHeadAttentionConfig::new(self.d_model, self.n_heads)
                .with_dropout(self.dropout)
                .with_bias(self.bias)
                .init(device)
        };
        let (d, ff, eps) = (self.d_model, self.d_ff, self.layer_norm_eps);
        Ok(TransformerDecoderLayer {
            self_attn: attention()?,
            multihead_attn: attention()?,
            linear1: TorchLinear::new(d, ff, self.bias, device),
            linear2: TorchLinear::new(ff, d, self.bias, device),
            norm1: TorchLayerNorm::new(d, eps, self.bias, device),
            norm2: TorchLayerNorm::new(d, eps, self.bias, device),
            norm3: TorchLayerNorm::new(d, eps, self.bias, device),
            dropout: DropoutConfig::new(self.dropout).init(),
            activation: self.activation,
            norm_first: self.norm_first,
        })
    }
}

impl<B: Backend> TransformerDecoderLayer<B> {
    /// # Shapes
    /// - `x`: `[batch, tgt_len, d_model]`; `memory`: `[batch, src_len, d_model]`
    /// - `self_masks`: key length `tgt_len` (usually `causal: true`); `cross_masks`: key length
    ///   `src_len` (usually the source padding)
    /// - output: `[batch, tgt_len, d_model]`
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        memory: Tensor<B, 3>,
        self_masks: &AttentionMasks<B>,
        cross_masks: &AttentionMasks<B>,
    ) -> Result<Tensor<B, 3>> {
        let memory = self.multihead_attn.project_memory(memory.clone(), memory)?;
        self.block(
            x,
            |h| Ok(self.self_attn.forward_self(h, self_masks, false)?.0),
            &memory,
            cross_masks,
        )
    }

    /// The layer over new target positions, attending to them and to the positions in `cache`
    /// (which it extends), and to a memory projected once by [`Self::project_memory`]:
    /// incremental decoding.
    ///
    /// # Shapes
    /// - `x`: `[batch, new, d_model]`; output: `[batch, new, d_model]`
    pub fn forward_cached(
        &self,
        x: Tensor<B, 3>,
        memory: &AttentionMemory<B>,
        cache: &mut KvCache<B>,
        self_masks: &AttentionMasks<B>,
        cross_masks: &AttentionMasks<B>,
    ) -> Result<Tensor<B, 3>> {
        self.block(
            x,
            |h| self.self_attn.forward_cached(h, cache, self_masks),
            memory,
            cross_masks,
        )
    }

    /// The cross-attention keys and values of `memory` (`[batch, src_len, d_model]`).
    pub fn project_memory(&self, memory: Tensor<B, 3>) -> Result<AttentionMemory<B>> {
        self.multihead_attn.project_memory(memory.clone(), memory)
    }

    fn block(
        &self,
        x: Tensor<B, 3>,
        self_attention: impl FnOnce(Tensor<B, 3>) -> Result<Tensor<B, 3>>,
        memory: &AttentionMemory<B>,
        cross_masks: &AttentionMasks<B>,
    ) -> Result<Tensor<B, 3>> {
        let sa = |x| -> Result<Tensor<B, 3>> { Ok(self.dropout.forward(self_attention(x)?)) };
        let ca = |x: Tensor<B, 3>| -> Result<Tensor<B, 3>> {
            let (y, _) = self
                .multihead_attn
                .forward_memory(x, memory, cross_masks, false)?;
            Ok(self.dropout.forward(y))
        };
        let ff = |x: Tensor<B, 3>| {
            let y = feed_forward(&self.linear1, &self.linear2, self.activation, &self.dropout, x);
            self.dropout.forward(y)
        };
        if self.norm_first {
            let x = x.clone() + sa(self.norm1.apply(x))?;
            let x = x.clone() + ca(self.norm2.apply(x))?;
            Ok(x.clone() + ff(self.norm3.apply(x)))
        } else {
            let x = self.norm1.apply(x.clone() + sa(x)?);
            let x = self.norm2.apply(x.clone() + ca(x)?);
            Ok(self.norm3.apply(x.clone() + ff(x)))
        }
    }

    /// PyTorch's key names of this layer's parameters with their shapes.
    pub fn pytorch_keys(&self) -> Vec<(String, Vec<usize>)> {
        let mut keys = prefixed(self.self_attn.pytorch_keys(), "self_attn.");
        keys.extend(prefixed(self.multihead_attn.pytorch_keys(), "multihead_attn."));
        keys.extend(self.linear1.keys("linear1"));
        keys.extend(self.linear2.keys("linear2"));
        keys.extend(self.norm1.keys("norm1"));
        keys.extend(self.norm2.keys("norm2"));
        keys.extend(self.norm3.keys("norm3"));
        keys
    }

    /// Loads the state dict of a `torch.nn.TransformerDecoderLayer` (keys under `prefix`). A
    /// missing or unexpected key or a shape mismatch is an [`Error`] naming it.
    pub fn load_state_dict(self, dict: &StateDict, prefix: &str) -> Result<Self> {
        dict.check_exact(prefix, &self.pytorch_keys())?;
        Ok(Self {
            self_attn: self
                .self_attn
                .load_state_dict(dict, &format!("{prefix}self_attn."))?,
            multihead_attn: self
                .multihead_attn
                .load_state_dict(dict, &format!("{prefix}multihead_attn."))?,
            linear1: self.linear1.load(dict, &format!("{prefix}linear1"))?,
            linear2: self.linear2.load(dict, &format!("{prefix}linear2"))?,
            norm1: self.norm1.load(dict, &format!("{prefix}norm1"))?,
            norm2: self.norm2.load(dict, &format!("{prefix}norm2"))?,
            norm3: self.norm3.load(dict, &format!("{prefix}norm3"))?,
            ..self
        })
    }
}

/// Stacks `num_layers` layers with an optional final norm, with PyTorch's key layout
/// (`layers.{i}.*`, `norm.*`). Implemented for the encoder and the decoder by the macro below.
macro_rules! layer_stack {
    ($stack:ident, $config:ident, $layer:ident, $layer_config:ident, $torch:literal) => {
        #[doc = concat!("Configuration of a [`", stringify!($stack), "`]; `torch.nn.", $torch, "`'s options.")]
        #[derive(Config, Debug)]
        pub struct $config {
            /// The configuration shared by every layer.
            pub layer: $layer_config,
            /// Number of layers.
            pub num_layers: usize,
            /// A final layer norm after the last layer (PyTorch's `norm` argument; usual with
            /// pre-norm layers). Default false, as PyTorch's `norm=None`.
            #[config(default = false)]
            pub final_norm: bool,
        }

        #[doc = concat!("A stack of [`", stringify!($layer), "`]s, as `torch.nn.", $torch, "`.")]
        #[derive(Module, Debug)]
        pub struct $stack<B: Backend> {
            /// The layers, `layers.{i}` in PyTorch's state dict.
            pub layers: Vec<$layer<B>>,
            /// The optional final norm, `norm` in PyTorch's state dict.
            pub norm: Option<TorchLayerNorm<B>>,
        }

        impl $config {
            /// Builds the stack, or an [`Error::Config`] for zero layers or an invalid layer.
            pub fn init<B: Backend>(&self, device: &B::Device) -> Result<$stack<B>> {
                if self.num_layers == 0 {
                    return Err(Error::Config {
                        module: stringify!($config),
                        message: "num_layers must be positive, found 0".into(),
                    });
                }
                let layers = (0..self.num_layers)
                    .map(|_| self.layer.init(device))
                    .collect::<Result<_>>()?;
                let l = &self.layer;
                Ok($stack {
                    layers,
                    norm: self
                        .final_norm
                        .then(|| TorchLayerNorm::new(l.d_model, l.layer_norm_eps, l.bias, device)),
                })
            }
        }

        impl<B: Backend> $stack<B> {
            /// PyTorch's key names of the stack's parameters with their shapes.
            pub fn pytorch_keys(&self) -> Vec<(String, Vec<usize>)> {
                let mut keys: Vec<(String, Vec<usize>)> = self
                    .layers
                    .iter()
                    .enumerate()
                    .flat_map(|(i, l)| prefixed(l.pytorch_keys(), &format!("layers.{i}.")))
                    .collect();
                if let Some(n) = &self.norm {
                    keys.extend(n.keys("norm"));
                }
                keys
            }

            #[doc = concat!("Loads the state dict of a `torch.nn.", $torch, "` (keys under `prefix`).")]
            /// A missing or unexpected key or a shape mismatch is an [`Error`] naming it.
            pub fn load_state_dict(self, dict: &StateDict, prefix: &str) -> Result<Self> {
                dict.check_exact(prefix, &self.pytorch_keys())?;
                let layers = self
                    .layers
                    .into_iter()
                    .enumerate()
                    .map(|(i, l)| l.load_state_dict(dict, &format!("{prefix}layers.{i}.")))
                    .collect::<Result<_>>()?;
                let norm = self
                    .norm
                    .map(|n| n.load(dict, &format!("{prefix}norm")))
                    .transpose()?;
                Ok(Self { layers, norm })
            }

            fn finish(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
                match &self.norm {
                    Some(n) => n.apply(x),
                    None => x,
                }
            }
        }
    };
}

layer_stack!(
    TransformerEncoder,
    TransformerEncoderConfig,
    TransformerEncoderLayer,
    TransformerEncoderLayerConfig,
    "TransformerEncoder"
);
layer_stack!(
    TransformerDecoder,
    TransformerDecoderConfig,
    TransformerDecoderLayer,
    TransformerDecoderLayerConfig,
    "TransformerDecoder"
);

impl<B: Backend> TransformerEncoder<B> {
    /// # Shapes
    /// - `x`: `[batch, time, d_model]`; output: `[batch, time, d_model]`
    pub fn forward(&self, x: Tensor<B, 3>, masks: &AttentionMasks<B>) -> Result<Tensor<B, 3>> {
        let mut x = x;
        for layer in &self.layers {
            x = layer.forward(x, masks)?;
        }
        Ok(self.finish(x))
    }

    /// One empty cache per layer for incremental decoding of `batch` sequences of at most
    /// `max_len` positions.
    pub fn new_caches(&self, batch: usize, max_len: usize, device: &B::Device) -> Vec<KvCache<B>> {
        self.layers
            .iter()
            .map(|l| l.self_attn.new_cache(batch, max_len, device))
            .collect()
    }

    /// The stack over new positions with one cache per layer (from [`Self::new_caches`]).
    ///
    /// # Shapes
    /// - `x`: `[batch, new, d_model]`; output: `[batch, new, d_model]`
    pub fn forward_cached(
        &self,
        x: Tensor<B, 3>,
        caches: &mut [KvCache<B>],
        masks: &AttentionMasks<B>,
    ) -> Result<Tensor<B, 3>> {
        check_cache_count(caches.len(), self.layers.len())?;
        let mut x = x;
        for (layer, cache) in self.layers.iter().zip(caches.iter_mut()) {
            x = layer.forward_cached(x, cache, masks)?;
        }
        Ok(self.finish(x))
    }
}

fn check_cache_count(found: usize, layers: usize) -> Result<()> {
    if found != layers {
        return Err(Error::Config {
            module: "transformer stack",
            message: format!("one KV cache per layer: expected {layers}, found {found}"),
        });
    }
    Ok(())
}

impl<B: Backend> TransformerDecoder<B> {
    /// # Shapes
    /// - `x`: `[batch, tgt_len, d_model]`; `memory`: `[batch, src_len, d_model]`
    /// - output: `[batch, tgt_len, d_model]`
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        memory: Tensor<B, 3>,
        self_masks: &AttentionMasks<B>,
        cross_masks: &AttentionMasks<B>,
    ) -> Result<Tensor<B, 3>> {
        let mut x = x;
        for layer in &self.layers {
            x = layer.forward(x, memory.clone(), self_masks, cross_masks)?;
        }
        Ok(self.finish(x))
    }

    /// One empty self-attention cache per layer, as [`TransformerEncoder::new_caches`].
    pub fn new_caches(&self, batch: usize, max_len: usize, device: &B::Device) -> Vec<KvCache<B>> {
        self.layers
            .iter()
            .map(|l| l.self_attn.new_cache(batch, max_len, device))
            .collect()
    }

    /// Each layer's cross-attention keys and values of `memory`, projected once for decoding.
    pub fn project_memory(&self, memory: Tensor<B, 3>) -> Result<Vec<AttentionMemory<B>>> {
        self.layers
            .iter()
            .map(|l| l.project_memory(memory.clone()))
            .collect()
    }

    /// The stack over new target positions, with one cache and one projected memory per layer.
    ///
    /// # Shapes
    /// - `x`: `[batch, new, d_model]`; output: `[batch, new, d_model]`
    pub fn forward_cached(
        &self,
        x: Tensor<B, 3>,
        memories: &[AttentionMemory<B>],
        caches: &mut [KvCache<B>],
        self_masks: &AttentionMasks<B>,
        cross_masks: &AttentionMasks<B>,
    ) -> Result<Tensor<B, 3>> {
        check_cache_count(caches.len(), self.layers.len())?;
        check_cache_count(memories.len(), self.layers.len())?;
        let mut x = x;
        for ((layer, cache), memory) in self.layers.iter().zip(caches.iter_mut()).zip(memories) {
            x = layer.forward_cached(x, memory, cache, self_masks, cross_masks)?;
        }
        Ok(self.finish(x))
    }
}
