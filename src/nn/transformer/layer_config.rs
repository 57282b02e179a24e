//! The options `torch.nn.TransformerEncoderLayer` and `TransformerDecoderLayer` share, declared
//! once ([`layer_config!`]), and the parts both layers build from them ([`LayerParts`]).

use burn::nn::{Dropout, DropoutConfig};

use crate::nn::attention::{MultiHeadAttention, MultiHeadAttentionConfig};
use crate::nn::linear::TorchLinear;
use crate::nn::norm::TorchLayerNorm;
use crate::{Backend, Error, Result};

/// Declares a layer configuration with PyTorch's Transformer-layer options and defaults (the
/// encoder and decoder layers take the same ones), and its `parts`.
macro_rules! layer_config {
    ($config:ident, $layer:ident, $torch:literal) => {
        #[doc = concat!("Configuration of a [`", stringify!($layer), "`]; the options and defaults of")]
        #[doc = concat!("`torch.nn.", $torch, "` (always batch-first).")]
        #[derive(Config, Debug)]
        pub struct $config {
            /// Model width.
            pub d_model: usize,
            /// Number of heads of each attention block.
            pub n_heads: usize,
            /// Width of the feed-forward block. Default 2048.
            #[config(default = 2048)]
            pub d_ff: usize,
            /// Dropout after each attention and feed-forward block and inside the feed-forward
            /// block, only while training. Default 0.1.
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

        impl $config {
            /// The checked feed-forward linears and the makers of the attention blocks and norms.
            fn parts<'d, B: Backend>(
                &self,
                device: &'d B::Device,
            ) -> Result<super::layer_config::LayerParts<'d, B>> {
                super::layer_config::LayerParts::new(
                    stringify!($config),
                    (self.d_model, self.n_heads, self.d_ff),
                    (self.dropout, self.layer_norm_eps, self.bias),
                    device,
                )
            }
        }
    };
}
pub(super) use layer_config;

/// What an encoder or decoder layer is built from: the feed-forward linears (sizes checked), and
/// makers of its attention blocks and norms, all with the configuration's options.
pub(super) struct LayerParts<'d, B: Backend> {
    pub linear1: TorchLinear<B>,
    pub linear2: TorchLinear<B>,
    pub dropout: Dropout,
    attention: MultiHeadAttentionConfig,
    norm: (usize, f64, bool),
    device: &'d B::Device,
}

impl<'d, B: Backend> LayerParts<'d, B> {
    /// An [`Error::Config`] naming `config` for a zero `d_ff` or a feed-forward layer over the
    /// parameter limit.
    pub fn new(
        config: &'static str,
        (d_model, n_heads, d_ff): (usize, usize, usize),
        (dropout, eps, bias): (f64, f64, bool),
        device: &'d B::Device,
    ) -> Result<Self> {
        if d_ff == 0 {
            return Err(Error::Config {
                module: config,
                message: "d_ff must be positive, found 0".into(),
            });
        }
        crate::nn::check_param_size(config, "linear1 (d_ff × d_model)", &[d_ff, d_model])?;
        Ok(Self {
            linear1: TorchLinear::new(d_model, d_ff, bias, device),
            linear2: TorchLinear::new(d_ff, d_model, bias, device),
            dropout: DropoutConfig::new(dropout).init(),
            attention: MultiHeadAttentionConfig::new(d_model, n_heads)
                .with_dropout(dropout)
                .with_bias(bias),
            norm: (d_model, eps, bias),
            device,
        })
    }

    /// An attention block (its own configuration errors: heads that do not divide the width, a
    /// dropout outside `[0, 1)`).
    pub fn attention(&self) -> Result<MultiHeadAttention<B>> {
        self.attention.init(self.device)
    }

    /// A layer norm over the model width.
    pub fn norm(&self) -> TorchLayerNorm<B> {
        let (d, eps, bias) = self.norm;
        TorchLayerNorm::new(d, eps, bias, self.device)
    }
}
