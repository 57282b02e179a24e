//! [`TransformerEncoder`] and [`TransformerDecoder`]: stacks of layers with PyTorch's key layout.

use burn::config::Config;
use burn::module::Module;
use burn::tensor::Tensor;

use crate::io::{TorchWeights, WeightPath};
use crate::nn::attention::{AttentionMasks, AttentionMemory};
use crate::nn::kv_cache::KvCache;
use crate::nn::norm::TorchLayerNorm;
use crate::{Backend, Error, Result};

use super::{
    TransformerDecoderLayer, TransformerDecoderLayerConfig, TransformerEncoderLayer,
    TransformerEncoderLayerConfig,
};

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
            /// One empty self-attention cache per layer, for incremental decoding of `batch`
            /// sequences of at most `max_len` positions.
            pub fn new_caches(&self, batch: usize, max_len: usize, device: &B::Device) -> Vec<KvCache<B>> {
                self.layers
                    .iter()
                    .map(|l| l.self_attn.new_cache(batch, max_len, device))
                    .collect()
            }

            fn finish(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
                match &self.norm {
                    Some(n) => n.apply(x),
                    None => x,
                }
            }
        }

        impl<B: Backend> TorchWeights for $stack<B> {
            #[doc = concat!("`torch.nn.", $torch, "`'s keys: `layers.{i}.*`, `norm.*`.")]
            fn visit_weights(&mut self, w: &mut WeightPath<'_, '_>) -> Result<()> {
                for (i, layer) in self.layers.iter_mut().enumerate() {
                    w.pp("layers").module(i, layer)?;
                }
                match &mut self.norm {
                    Some(norm) => w.module("norm", norm),
                    None => Ok(()),
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
