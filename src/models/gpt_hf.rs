//! Loading checkpoints with GPT-2's names into a [`Gpt`]: a Hugging Face GPT-2 directory
//! (`Conv1D` weights) or a nanoGPT `ckpt.pt` (`nn.Linear` weights).

use std::path::Path;

use serde::Deserialize;

use super::gpt::{Gpt, GptConfig};
use super::gpt_names::{Gpt2Names, Projection};
use crate::io::{StateDict, TorchWeights, atomic_write, load_into, state_dict_of, write_safetensors};
use crate::nn::FeedForwardActivation;
use crate::{Backend, Error, Result};

/// The fields of a GPT-2 `config.json` that shape the model.
#[derive(Deserialize)]
struct HfGpt2Config {
    vocab_size: usize,
    n_positions: usize,
    n_embd: usize,
    n_layer: usize,
    n_head: usize,
    #[serde(default)]
    n_inner: Option<usize>,
    #[serde(default = "default_eps")]
    layer_norm_epsilon: f64,
    #[serde(default = "default_activation")]
    activation_function: String,
    #[serde(default = "default_true")]
    tie_word_embeddings: bool,
    #[serde(default = "default_true")]
    scale_attn_weights: bool,
    #[serde(default)]
    scale_attn_by_inverse_layer_idx: bool,
    #[serde(default)]
    model_type: Option<String>,
}

fn default_eps() -> f64 {
    1e-5
}
fn default_activation() -> String {
    "gelu_new".into()
}
fn default_true() -> bool {
    true
}

impl GptConfig {
    /// The configuration in a Hugging Face GPT-2 `config.json`, or an [`Error::Load`] naming the
    /// field that is missing or that the model cannot follow (an activation other than GELU,
    /// unscaled or layer-scaled attention).
    pub fn from_hf_config(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let fail = |message: String| Error::Load {
            path: path.to_path_buf(),
            message,
        };
        let hf: HfGpt2Config = crate::io::json::read_config(path, crate::io::json::parse_naming_fields)?;
        if let Some(kind) = hf.model_type.as_deref().filter(|k| *k != "gpt2") {
            return Err(fail(format!("model_type is `{kind}`, only `gpt2` is supported")));
        }
        let activation = match hf.activation_function.as_str() {
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => FeedForwardActivation::GeluTanh,
            "gelu" => FeedForwardActivation::Gelu,
            "relu" => FeedForwardActivation::Relu,
            other => return Err(fail(format!("activation_function `{other}` is not supported"))),
        };
        if !hf.scale_attn_weights || hf.scale_attn_by_inverse_layer_idx {
            return Err(fail(
                "only attention scaled by 1/sqrt(head_dim) is supported (scale_attn_weights = true, \
                 scale_attn_by_inverse_layer_idx = false)"
                    .into(),
            ));
        }
        // Checked here in config.json's own terms (GptConfig::init would speak of its fields).
        if hf.n_head == 0 || !hf.n_embd.is_multiple_of(hf.n_head) {
            return Err(fail(format!(
                "n_embd ({}) must be a positive multiple of n_head ({})",
                hf.n_embd, hf.n_head
            )));
        }
        if hf.vocab_size == 0 || hf.n_positions == 0 || hf.n_layer == 0 {
            return Err(fail(format!(
                "vocab_size, n_positions and n_layer must be positive, found {}, {} and {}",
                hf.vocab_size, hf.n_positions, hf.n_layer
            )));
        }
        if !(hf.layer_norm_epsilon > 0.0 && hf.layer_norm_epsilon.is_finite()) {
            return Err(fail(format!(
                "layer_norm_epsilon must be a finite value > 0, found {}",
                hf.layer_norm_epsilon
            )));
        }
        Ok(GptConfig::new()
            .with_vocab_size(hf.vocab_size)
            .with_block_size(hf.n_positions)
            .with_n_layer(hf.n_layer)
            .with_n_head(hf.n_head)
            .with_n_embd(hf.n_embd)
            .with_n_inner(hf.n_inner)
            .with_layer_norm_eps(hf.layer_norm_epsilon)
            .with_activation(activation)
            .with_tie_weights(hf.tie_word_embeddings))
    }
}

impl<B: Backend> Gpt<B> {
    /// Loads a Hugging Face GPT-2 checkpoint directory, as `save_pretrained` writes it:
    /// `config.json` and `model.safetensors` (or `pytorch_model.bin`), from `GPT2LMHeadModel`
    /// (keys under `transformer.`) or `GPT2Model`.
    ///
    /// GPT-2's `Conv1D` layers store their weights `[in, out]`; they are transposed into
    /// PyTorch's `[out, in]`, and `c_attn`'s packed Q, K and V are exactly the layout of
    /// [`MultiHeadAttention`](crate::nn::MultiHeadAttention)'s `in_proj_weight`. A tied
    /// `lm_head.weight` may be present or not. The causal-mask buffers older checkpoints carry
    /// (`attn.bias`, `attn.masked_bias`) are ignored. Any other missing or unexpected key, or a
    /// shape mismatch, is an [`Error`] naming it.
    pub fn from_pretrained(dir: impl AsRef<Path>, device: &B::Device) -> Result<Self> {
        let dir = dir.as_ref();
        let config = GptConfig::from_hf_config(dir.join("config.json"))?;
        let dict = StateDict::from_pretrained_dir(dir)?;
        config.init::<B>(device)?.load_hf_state_dict(&dict)
    }

    /// Loads the weights of a GPT-2 state dict with Hugging Face's key names (see
    /// [`Gpt::from_pretrained`]).
    pub fn load_hf_state_dict(mut self, dict: &StateDict) -> Result<Self> {
        let body = if dict.keys().any(|k| k.starts_with("transformer.")) {
            "transformer."
        } else {
            ""
        };
        let mut names = Gpt2Names::new(&mut self, Projection::Conv1D, body);
        load_into(&mut names, dict, "")?;
        Ok(self)
    }

    /// Loads a nanoGPT checkpoint (`ckpt.pt` as nanoGPT's `train.py` writes it): the state dict
    /// under its `"model"` key, with the `_orig_mod.` prefix of `torch.compile` removed; the
    /// optimizer state and the rest of the file are ignored.
    ///
    /// The configuration is nanoGPT's `model_args`, which the caller gives with
    /// [`GptConfig::nanogpt`] (the exact GELU, as nanoGPT, and its sizes and `bias`). A key
    /// or shape that does not fit it is an [`Error`] naming the key.
    ///
    /// ```no_run
    /// # use burn::backend::NdArray;
    /// # use ember_lm::models::{Gpt, GptConfig};
    /// // nanoGPT's shakespeare_char model: n_layer 6, n_head 6, n_embd 384, block 256, bias False.
    /// let config = GptConfig::nanogpt()
    ///     .with_vocab_size(65)
    ///     .with_block_size(256)
    ///     .with_n_layer(6)
    ///     .with_n_head(6)
    ///     .with_n_embd(384)
    ///     .with_bias(false);
    /// let gpt = config.init::<NdArray>(&Default::default())?.load_nanogpt_checkpoint("out-shakespeare-char/ckpt.pt")?;
    /// # Ok::<(), ember_lm::Error>(())
    /// ```
    pub fn load_nanogpt_checkpoint(self, path: impl AsRef<Path>) -> Result<Self> {
        let dict = StateDict::from_torch_checkpoint(path, "model")?;
        self.load_nanogpt_state_dict(&dict)
    }

    /// Loads a state dict of nanoGPT's `GPT` (`transformer.wte.weight`, ...,
    /// `transformer.h.{i}.attn.c_attn.weight` as `nn.Linear` `[3 n_embd, n_embd]`, ...,
    /// `lm_head.weight`), with or without `torch.compile`'s `_orig_mod.` prefix.
    pub fn load_nanogpt_state_dict(self, dict: &StateDict) -> Result<Self> {
        // Cloning copies the key map only: tensors are read when a parameter takes them.
        let dict = dict.clone().strip_prefix("_orig_mod.")?;
        self.load_state_dict(&dict, "")
    }
}

impl GptConfig {
    /// This configuration as a Hugging Face GPT-2 `config.json`, or an [`Error::Config`] for an
    /// option GPT-2 has no field for (`bias = false`).
    pub fn to_hf_config(&self) -> Result<serde_json::Value> {
        if !self.bias {
            return Err(Error::Config {
                module: "GptConfig",
                message: "bias is false, and Hugging Face's GPT-2 always has biases; export with \
                          save_pytorch (nanoGPT's layout) instead"
                    .into(),
            });
        }
        let activation = match self.activation {
            FeedForwardActivation::GeluTanh => "gelu_new",
            FeedForwardActivation::Gelu => "gelu",
            FeedForwardActivation::Relu => "relu",
        };
        Ok(serde_json::json!({
            "architectures": ["GPT2LMHeadModel"],
            "model_type": "gpt2",
            "vocab_size": self.vocab_size,
            "n_positions": self.block_size,
            "n_embd": self.n_embd,
            "n_layer": self.n_layer,
            "n_head": self.n_head,
            "n_inner": self.n_inner,
            "activation_function": activation,
            "layer_norm_epsilon": self.layer_norm_eps,
            "resid_pdrop": self.dropout,
            "embd_pdrop": self.dropout,
            "attn_pdrop": self.dropout,
            "tie_word_embeddings": self.tie_weights,
            "scale_attn_weights": true,
            "scale_attn_by_inverse_layer_idx": false,
            "reorder_and_upcast_attn": false,
        }))
    }
}

impl<B: Backend> Gpt<B> {
    /// Writes a Hugging Face GPT-2 directory that `GPT2LMHeadModel.from_pretrained(dir)` loads:
    /// `config.json` and `model.safetensors` (keys under `transformer.`, the projections in
    /// `Conv1D`'s `[in, out]` layout, and `lm_head.weight`). [`Gpt::from_pretrained`] reads it
    /// back. A model GPT-2 cannot express (`bias = false`) is an [`Error::Config`]; a file that
    /// cannot be written is an [`Error::Save`].
    pub fn save_pretrained(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        let config = self.config().to_hf_config()?;
        std::fs::create_dir_all(dir).map_err(|e| Error::Save {
            path: dir.to_path_buf(),
            message: e.to_string(),
        })?;
        let mut model = self.clone();
        let tensors = state_dict_of(
            &mut Gpt2Names::new(&mut model, Projection::Conv1D, "transformer."),
            "",
        )?;
        write_safetensors(&dir.join("model.safetensors"), &tensors)?;
        let json = serde_json::to_string_pretty(&config).map_err(|e| Error::Serialize {
            what: "config.json".into(),
            message: e.to_string(),
        })?;
        atomic_write(&dir.join("config.json"), json.as_bytes())
    }
}
