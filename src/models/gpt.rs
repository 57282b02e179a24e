//! [`Gpt`]: a decoder-only Transformer language model, configured like nanoGPT and GPT-2.

use burn::config::Config;
use burn::module::{Initializer, Module, Param};
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::{Int, Tensor};

use crate::models::ModelInit;
use crate::nn::{
    AttentionMasks, FeedForwardActivation, KvCache, LearnedPositions, PositionsConfig, TorchLayerNorm,
    TorchLinear, TransformerEncoderLayer, TransformerEncoderLayerConfig,
};
use crate::{Backend, Error, Result};

/// Configuration of a [`Gpt`], with nanoGPT's names. `GptConfig::new()` is GPT-2 small (124M,
/// as transformers' `GPT2Config()`); every size is set by name, so two cannot be swapped:
///
/// ```
/// use ember_lm::models::GptConfig;
///
/// let config = GptConfig::new()
///     .with_vocab_size(65)
///     .with_block_size(256)
///     .with_n_layer(6)
///     .with_n_head(6)
///     .with_n_embd(384);
/// assert_eq!((config.n_inner, config.dropout), (None, 0.0));
/// ```
#[derive(Config, Debug)]
pub struct GptConfig {
    /// Vocabulary size. Default 50257, GPT-2's (nanoGPT's character-level Shakespeare: 65).
    #[config(default = 50257)]
    pub vocab_size: usize,
    /// Context length: the most positions one sequence may have (GPT-2's `n_positions`).
    /// Default 1024, GPT-2's.
    #[config(default = 1024)]
    pub block_size: usize,
    /// Number of Transformer blocks. Default 12, GPT-2 small's.
    #[config(default = 12)]
    pub n_layer: usize,
    /// Attention heads per block; `n_embd` must be divisible by it. Default 12, GPT-2 small's.
    #[config(default = 12)]
    pub n_head: usize,
    /// Model width. Default 768, GPT-2 small's.
    #[config(default = 768)]
    pub n_embd: usize,
    /// Dropout on embeddings, attention weights and residual branches, only while training.
    /// Default 0, as nanoGPT (GPT-2 used 0.1).
    #[config(default = 0.0)]
    pub dropout: f64,
    /// Biases in the linear layers and layer norms. Default true, as GPT-2.
    #[config(default = true)]
    pub bias: bool,
    /// Width of the feed-forward layer; `None` (the default) is `4 n_embd`, GPT-2's `n_inner`.
    #[config(default = "None")]
    pub n_inner: Option<usize>,
    /// Layer-norm epsilon. Default 1e-5, as GPT-2.
    #[config(default = 1e-5)]
    pub layer_norm_eps: f64,
    /// Feed-forward activation. Default the tanh approximation of GELU (GPT-2's `gelu_new`).
    #[config(default = "FeedForwardActivation::GeluTanh")]
    pub activation: FeedForwardActivation,
    /// Share the LM head's weight with the token embedding. Default true, as GPT-2 and nanoGPT.
    #[config(default = true)]
    pub tie_weights: bool,
    /// How the weights are drawn. `None` (the default) is [`ModelInit::Gpt2`] (GPT-2's and
    /// nanoGPT's `_init_weights`); [`ModelInit::TorchModules`] is nanoGPT's modules without it
    /// (`nn.Linear` and `nn.Embedding` defaults, the tied weight being the head's), 0.32 nats
    /// behind on Tiny Shakespeare at 1000 steps (`docs/benchmarks.md`, "Learning quality at equal
    /// steps").
    #[config(default = "None")]
    pub init: Option<ModelInit>,
}

/// A GPT: token and learned position embeddings, pre-norm Transformer blocks with causal
/// self-attention, a final layer norm and a linear head to vocabulary logits:
///
/// ```text
/// x = dropout(wte[ids] + wpe[positions])
/// x = block_i(x)            for each of the n_layer blocks (pre-norm, causal)
/// logits = ln_f(x) Wᵀ       W = wte (tied) or lm_head.weight
/// ```
///
/// Each block is a [`TransformerEncoderLayer`] with `norm_first` and a causal mask, the same
/// computation as GPT-2's `ln_1 / attn / ln_2 / mlp`. [`Gpt::from_pretrained`] loads a Hugging Face
/// GPT-2 checkpoint.
#[derive(Module, Debug)]
pub struct Gpt<B: Backend> {
    /// Token embedding `[vocab_size, n_embd]` (GPT-2's `wte`).
    pub wte: Param<Tensor<B, 2>>,
    /// Position embedding `[block_size, n_embd]` (GPT-2's `wpe`).
    pub wpe: LearnedPositions<B>,
    /// The blocks (GPT-2's `h`).
    pub h: Vec<TransformerEncoderLayer<B>>,
    /// Final layer norm.
    pub ln_f: TorchLayerNorm<B>,
    /// The LM head `[vocab_size, n_embd]`, absent when tied to `wte`.
    pub lm_head: Option<TorchLinear<B>>,
    pub(super) drop: Dropout,
    pub(super) vocab_size: usize,
    pub(super) block_size: usize,
    /// The configuration it was built from (for `save_pretrained`'s `config.json`).
    #[module(skip)]
    config: GptConfig,
}

/// The per-block key/value caches of a [`Gpt`] for incremental decoding.
#[derive(Clone, Debug)]
pub struct GptCache<B: Backend> {
    /// One cache per block.
    pub layers: Vec<KvCache<B>>,
    /// Left padding of each row, set by [`Gpt::forward_prompts`] for prompts of different
    /// lengths (empty: no padding). Padded positions are never attended to, and each row's
    /// positions count from its first real token.
    pub(super) left_pad: Vec<usize>,
}

impl<B: Backend> GptCache<B> {
    /// Positions decoded so far (the position offset of the next token).
    pub fn len(&self) -> usize {
        self.layers.first().map_or(0, KvCache::len)
    }

    /// Whether nothing has been decoded yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every position (and any padding).
    pub fn reset(&mut self) {
        self.layers.iter_mut().for_each(KvCache::reset);
        self.left_pad.clear();
    }

    /// The left padding of each row (empty when the rows are not padded).
    pub fn left_padding(&self) -> &[usize] {
        &self.left_pad
    }

    /// Reorders the batch (sequence `i` becomes sequence `indices[i]`), as beam search needs.
    pub fn reorder(&mut self, indices: Tensor<B, 1, Int>) -> Result<()> {
        KvCache::reorder_all(&mut self.layers, indices.clone())?;
        if !self.left_pad.is_empty() {
            // The indices were checked above; the padding follows its rows.
            let idx: Vec<i64> = indices
                .into_data()
                .convert::<i64>()
                .into_vec()
                .unwrap_or_default();
            self.left_pad = idx.iter().map(|&i| self.left_pad[i as usize]).collect();
        }
        Ok(())
    }
}

impl GptConfig {
    /// nanoGPT's `GPTConfig()`: GPT-2 small's sizes with the vocabulary padded to 50304 (a
    /// multiple of 64) and the exact GELU of `nn.GELU()` (GPT-2 itself uses the tanh
    /// approximation, [`GptConfig::new`]'s default). Set the sizes of a nanoGPT run by name.
    pub fn nanogpt() -> Self {
        Self::new()
            .with_vocab_size(50304)
            .with_activation(FeedForwardActivation::Gelu)
    }

    /// Builds the model with the [`init`](Self::init) scheme. `Gpt2` (GPT-2's, as nanoGPT):
    /// weights `N(0, 0.02)`, the residual output projections `N(0, 0.02 / sqrt(2 n_layer))`,
    /// zero biases, unit norms. `TorchModules`: every projection as `nn.Linear` (weight and bias
    /// `U(±1/√in)`), the position table `N(0, 1)` as `nn.Embedding`, the token table `N(0, 1)`,
    /// or the head's `U(±1/√n_embd)` when tied (nanoGPT's `wte.weight = lm_head.weight`). An
    /// [`Error::Config`] for zero sizes, `n_embd` not divisible by `n_head`, or another scheme.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<Gpt<B>> {
        let scheme = self
            .init
            .unwrap_or(ModelInit::Gpt2)
            .check("GptConfig", &[ModelInit::Gpt2, ModelInit::TorchModules])?;
        if self.vocab_size == 0 || self.block_size == 0 || self.n_layer == 0 {
            return Err(Error::Config {
                module: "GptConfig",
                message: format!(
                    "vocab_size, block_size and n_layer must be positive, found {}, {} and {}",
                    self.vocab_size, self.block_size, self.n_layer
                ),
            });
        }
        if self.n_head == 0 || !self.n_embd.is_multiple_of(self.n_head) {
            return Err(Error::Config {
                module: "GptConfig",
                message: format!(
                    "n_embd ({}) must be a positive multiple of n_head ({})",
                    self.n_embd, self.n_head
                ),
            });
        }
        let d = self.n_embd;
        let check = crate::nn::check_param_size;
        check("GptConfig", "wte (vocab_size × n_embd)", &[self.vocab_size, d])?;
        check("GptConfig", "wpe (block_size × n_embd)", &[self.block_size, d])?;
        let layer = TransformerEncoderLayerConfig::new(d, self.n_head)
            .with_d_ff(self.n_inner.unwrap_or(4 * d))
            .with_dropout(self.dropout)
            .with_activation(self.activation)
            .with_norm_first(true)
            .with_layer_norm_eps(self.layer_norm_eps)
            .with_bias(self.bias);
        // Lazy, like every other parameter: drawn once the generator is seeded (`Trainer::new`
        // seeds it and draws the lazy parameters in module order), not from an unseeded one here.
        let normal = |shape: [usize; 2], std: f64| Initializer::Normal { mean: 0.0, std }.init(shape, device);
        let zero_bias =
            |b: Option<Param<Tensor<B, 1>>>| b.map(|p| Initializer::Zeros.init(p.shape(), &p.lazy_device()));
        let residual_std = 0.02 / (2.0 * self.n_layer as f64).sqrt();
        let h = (0..self.n_layer)
            .map(|_| {
                let mut block = layer.init::<B>(device)?;
                let attn = &mut block.self_attn;
                if scheme == ModelInit::TorchModules {
                    // nanoGPT's `c_attn` and `c_proj` are `nn.Linear`s, not `nn.MultiheadAttention`'s
                    // Xavier projections; the feed-forward layers already are `nn.Linear`s.
                    let [rows, cols] = attn.in_proj_weight.dims();
                    let qkv = TorchLinear::<B>::new(cols, rows, attn.in_proj_bias.is_some(), device);
                    (attn.in_proj_weight, attn.in_proj_bias) = (qkv.weight, qkv.bias);
                    let [rows, cols] = attn.out_proj_weight.dims();
                    let out = TorchLinear::<B>::new(cols, rows, attn.out_proj_bias.is_some(), device);
                    (attn.out_proj_weight, attn.out_proj_bias) = (out.weight, out.bias);
                    return Ok(block);
                }
                attn.in_proj_weight = normal(attn.in_proj_weight.dims(), 0.02);
                attn.in_proj_bias = zero_bias(attn.in_proj_bias.take());
                attn.out_proj_weight = normal(attn.out_proj_weight.dims(), residual_std);
                attn.out_proj_bias = zero_bias(attn.out_proj_bias.take());
                block.linear1.weight = normal(block.linear1.weight.dims(), 0.02);
                block.linear1.bias = zero_bias(block.linear1.bias.take());
                block.linear2.weight = normal(block.linear2.weight.dims(), residual_std);
                block.linear2.bias = zero_bias(block.linear2.bias.take());
                Ok(block)
            })
            .collect::<Result<Vec<_>>>()?;
        let v = self.vocab_size;
        let (wte, lm_head) = match (scheme, self.tie_weights) {
            (ModelInit::TorchModules, true) => (TorchLinear::new(d, v, false, device).weight, None),
            (ModelInit::TorchModules, false) => (
                scheme.embedding(v, d, device),
                Some(TorchLinear::new(d, v, false, device)),
            ),
            _ => {
                let lm_head = (!self.tie_weights).then(|| {
                    let mut head = TorchLinear::new(d, v, false, device);
                    head.weight = normal([v, d], 0.02);
                    head
                });
                (normal([v, d], 0.02), lm_head)
            }
        };
        let mut wpe = PositionsConfig::new(d, self.block_size).init_learned(device)?;
        if scheme == ModelInit::TorchModules {
            wpe.weight = scheme.embedding(self.block_size, d, device);
        }
        Ok(Gpt {
            wte,
            wpe,
            h,
            ln_f: TorchLayerNorm::new(d, self.layer_norm_eps, self.bias, device),
            lm_head,
            drop: DropoutConfig::new(self.dropout).init(),
            vocab_size: self.vocab_size,
            block_size: self.block_size,
            config: self.clone(),
        })
    }
}

impl<B: Backend> Gpt<B> {
    /// Vocabulary size.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// Context length.
    pub fn block_size(&self) -> usize {
        self.block_size
    }

    /// The configuration the model was built from.
    pub fn config(&self) -> &GptConfig {
        &self.config
    }

    /// Logits for every position of `ids` (causal: position `t` sees `ids[.., ..=t]`).
    ///
    /// # Shapes
    /// - `ids`: `[batch, time]` with `time <= block_size` and ids in `0..vocab_size`
    /// - output: `[batch, time, vocab_size]`
    pub fn forward(&self, ids: Tensor<B, 2, Int>) -> Result<Tensor<B, 3>> {
        let mut x = self.embed(ids, 0, false)?;
        let causal = causal();
        for block in &self.h {
            x = block.forward(x, &causal)?;
        }
        Ok(self.head(x))
    }

    /// An empty cache for incremental decoding of `batch` sequences, up to `block_size` positions.
    pub fn new_cache(&self, batch: usize, device: &B::Device) -> GptCache<B> {
        GptCache {
            layers: self
                .h
                .iter()
                .map(|b| b.self_attn.new_cache(batch, self.block_size, device))
                .collect(),
            left_pad: Vec::new(),
        }
    }

    /// Logits for new positions, attending to the positions in `cache` (which it extends):
    /// incremental decoding, O(cached positions) attention work per new token. Feeding a prompt
    /// and then one token at a time gives the logits of [`Gpt::forward`] over the whole sequence.
    ///
    /// # Shapes
    /// - `ids`: `[batch, new]` with `cache.len() + new <= block_size`
    /// - output: `[batch, new, vocab_size]`
    pub fn forward_cached(&self, ids: Tensor<B, 2, Int>, cache: &mut GptCache<B>) -> Result<Tensor<B, 3>> {
        self.decode(ids, cache, false)
    }

    /// [`forward_cached`](Self::forward_cached) for ids on the host, `batch` rows of
    /// `ids.len() / batch` tokens: they are checked against the vocabulary on the host, so a
    /// decoding step reads nothing back from the device but its logits.
    ///
    /// # Shapes
    /// - `ids`: `batch * new` tokens, row after row; output `[batch, new, vocab_size]`
    pub fn forward_cached_ids(
        &self,
        ids: &[u32],
        batch: usize,
        cache: &mut GptCache<B>,
    ) -> Result<Tensor<B, 3>> {
        let device = self.wte.val().device();
        let ids = crate::nn::host_ids("Gpt ids", ids, batch, self.vocab_size, &device)?;
        self.decode(ids, cache, true)
    }

    /// The cached forward; `checked`: the ids were checked on the host.
    fn decode(&self, ids: Tensor<B, 2, Int>, cache: &mut GptCache<B>, checked: bool) -> Result<Tensor<B, 3>> {
        if cache.layers.len() != self.h.len() {
            return Err(Error::Config {
                module: "GptCache",
                message: format!(
                    "expected {} layer caches, found {}",
                    self.h.len(),
                    cache.layers.len()
                ),
            });
        }
        if !cache.left_pad.is_empty() {
            return self.decode_padded(ids, cache, checked);
        }
        let mut x = self.embed(ids, cache.len(), checked)?;
        let causal = causal();
        for (block, layer_cache) in self.h.iter().zip(cache.layers.iter_mut()) {
            x = block.forward_cached(x, layer_cache, &causal)?;
        }
        Ok(self.head(x))
    }

    /// `dropout(wte[ids] + wpe[offset ..])`, after checking the length and (unless `checked`,
    /// already done on the host) the ids.
    fn embed(&self, ids: Tensor<B, 2, Int>, offset: usize, checked: bool) -> Result<Tensor<B, 3>> {
        let time = ids.dims()[1];
        if offset + time > self.block_size {
            return Err(Error::TooLong {
                found: time,
                offset,
                max: self.block_size,
            });
        }
        let tokens = if checked {
            crate::nn::lookup_checked(&self.wte.val(), ids)
        } else {
            crate::nn::lookup("Gpt ids", &self.wte.val(), ids)?
        };
        Ok(self.drop.forward(self.wpe.forward(tokens, offset)?))
    }

    /// `ln_f(x) Wᵀ`.
    pub(super) fn head(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [batch, time, d] = x.dims();
        let w = match &self.lm_head {
            Some(head) => head.weight.val(),
            None => self.wte.val(),
        };
        // [B, T, D] -> [B*T, D] x [D, V] -> [B, T, V] (2-D matmul, see MultiHeadAttention)
        self.ln_f
            .apply(x)
            .reshape([batch * time, d])
            .matmul(w.transpose())
            .reshape([batch, time, self.vocab_size])
    }
}

fn causal<B: Backend>() -> AttentionMasks<B> {
    AttentionMasks {
        causal: true,
        ..Default::default()
    }
}
