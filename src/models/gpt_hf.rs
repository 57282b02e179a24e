//! Loading checkpoints with GPT-2's names into a [`Gpt`]: a Hugging Face GPT-2 directory
//! (`Conv1D` weights) or a nanoGPT `ckpt.pt` (`nn.Linear` weights).

use std::path::Path;

use burn::module::Param;
use burn::tensor::{ElementConversion, Tensor};
use serde::Deserialize;

use super::gpt::{Gpt, GptConfig};
use crate::io::StateDict;
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
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let hf: HfGpt2Config = crate::io::json::parse_naming_fields(&text).map_err(fail)?;
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
        Ok(
            GptConfig::new(hf.vocab_size, hf.n_positions, hf.n_layer, hf.n_head, hf.n_embd)
                .with_n_inner(hf.n_inner)
                .with_layer_norm_eps(hf.layer_norm_epsilon)
                .with_activation(activation)
                .with_tie_weights(hf.tie_word_embeddings),
        )
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
        let weights = ["model.safetensors", "pytorch_model.bin"]
            .iter()
            .map(|f| dir.join(f))
            .find(|p| p.exists())
            .ok_or_else(|| Error::Load {
                path: dir.to_path_buf(),
                message: "neither model.safetensors nor pytorch_model.bin is there".into(),
            })?;
        let dict = StateDict::from_file(&weights)?;
        config.init::<B>(device)?.load_hf_state_dict(&dict)
    }

    /// Loads the weights of a GPT-2 state dict with Hugging Face's key names (see
    /// [`Gpt::from_pretrained`]).
    pub fn load_hf_state_dict(self, dict: &StateDict) -> Result<Self> {
        let prefix = if dict.keys().any(|k| k.starts_with("transformer.")) {
            "transformer."
        } else {
            ""
        };
        self.load_gpt2_names(dict, prefix, Projection::Conv1D)
    }

    /// Loads a nanoGPT checkpoint (`ckpt.pt` as nanoGPT's `train.py` writes it): the state dict
    /// under its `"model"` key, with the `_orig_mod.` prefix of `torch.compile` removed; the
    /// optimizer state and the rest of the file are ignored.
    ///
    /// The configuration is nanoGPT's `model_args`, which the caller gives: `GptConfig::new(
    /// vocab_size, block_size, n_layer, n_head, n_embd).with_bias(bias)
    /// .with_activation(FeedForwardActivation::Gelu)` (nanoGPT's GELU is the exact one). A key
    /// or shape that does not fit it is an [`Error`] naming the key.
    ///
    /// ```no_run
    /// # use burn::backend::NdArray;
    /// # use ember_lm::models::{Gpt, GptConfig};
    /// # use ember_lm::nn::FeedForwardActivation;
    /// // nanoGPT's shakespeare_char model: n_layer 6, n_head 6, n_embd 384, block 256, bias False.
    /// let config = GptConfig::new(65, 256, 6, 6, 384)
    ///     .with_bias(false)
    ///     .with_activation(FeedForwardActivation::Gelu);
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
        self.load_gpt2_names(&dict, "transformer.", Projection::Linear)
    }

    /// Loads GPT-2's key names under `prefix` (and `lm_head.weight` beside it), with the
    /// projections stored as `projection` says.
    fn load_gpt2_names(mut self, dict: &StateDict, prefix: &str, projection: Projection) -> Result<Self> {
        // A projection `in -> out` is stored `[in, out]` by Conv1D, `[out, in]` by nn.Linear.
        let stored = |inp: usize, out: usize| match projection {
            Projection::Conv1D => vec![inp, out],
            Projection::Linear => vec![out, inp],
        };
        let device = self.wte.lazy_device();
        let [vocab, d] = self.wte.dims();
        let d_ff = self.h[0].linear1.weight.dims()[0];
        let bias = self.ln_f.bias.is_some();
        let tied = self.lm_head.is_none();
        let mut keys = vec![
            ("wte.weight".to_string(), vec![vocab, d]),
            ("wpe.weight".to_string(), vec![self.block_size(), d]),
            ("ln_f.weight".to_string(), vec![d]),
        ];
        if bias {
            keys.push(("ln_f.bias".into(), vec![d]));
        }
        for i in 0..self.h.len() {
            let mut add = |name: &str, shape: Vec<usize>, is_bias: bool| {
                if !is_bias || bias {
                    keys.push((format!("h.{i}.{name}"), shape));
                }
            };
            add("ln_1.weight", vec![d], false);
            add("ln_1.bias", vec![d], true);
            add("attn.c_attn.weight", stored(d, 3 * d), false);
            add("attn.c_attn.bias", vec![3 * d], true);
            add("attn.c_proj.weight", stored(d, d), false);
            add("attn.c_proj.bias", vec![d], true);
            add("ln_2.weight", vec![d], false);
            add("ln_2.bias", vec![d], true);
            add("mlp.c_fc.weight", stored(d, d_ff), false);
            add("mlp.c_fc.bias", vec![d_ff], true);
            add("mlp.c_proj.weight", stored(d_ff, d), false);
            add("mlp.c_proj.bias", vec![d], true);
        }
        let head_key = "lm_head.weight";
        let buffer = |k: &str| k.ends_with("attn.bias") || k.ends_with("attn.masked_bias");
        // The LM head sits outside `transformer.`: checked on its own below.
        let outside = |k: &str| !prefix.is_empty() && !k.starts_with(prefix);
        dict.check_exact_ignoring(prefix, &keys, |k| buffer(k) || k == head_key)?;
        let extra: Vec<String> = dict
            .keys()
            .filter(|k| outside(k) && *k != head_key)
            .map(String::from)
            .collect();
        if !extra.is_empty() {
            return Err(Error::UnexpectedKeys {
                source_name: dict.source().to_string(),
                keys: extra,
            });
        }
        match (dict.shape(head_key), tied) {
            (None, false) => {
                return Err(Error::MissingKeys {
                    source_name: dict.source().to_string(),
                    keys: vec![head_key.into()],
                });
            }
            (Some(shape), _) if shape != vec![vocab, d] => {
                return Err(Error::KeyShape {
                    source_name: dict.source().to_string(),
                    key: head_key.into(),
                    expected: vec![vocab, d],
                    found: shape,
                });
            }
            _ => {}
        }

        let get1 = |k: &str| -> Result<Param<Tensor<B, 1>>> {
            Ok(Param::from_tensor(
                dict.tensor::<B, 1>(&format!("{prefix}{k}"), &device)?,
            ))
        };
        let get2 =
            |k: &str| -> Result<Tensor<B, 2>> { dict.tensor::<B, 2>(&format!("{prefix}{k}"), &device) };
        // Into PyTorch's Linear layout `[out, in]`.
        let conv = |k: &str| -> Result<Param<Tensor<B, 2>>> {
            let w = get2(k)?;
            Ok(Param::from_tensor(match projection {
                Projection::Conv1D => w.transpose(),
                Projection::Linear => w,
            }))
        };
        self.wte = Param::from_tensor(get2("wte.weight")?);
        self.wpe.weight = Param::from_tensor(get2("wpe.weight")?);
        self.ln_f.weight = get1("ln_f.weight")?;
        if bias {
            self.ln_f.bias = Some(get1("ln_f.bias")?);
        }
        for (i, block) in self.h.iter_mut().enumerate() {
            let k = |name: &str| format!("h.{i}.{name}");
            let b = |name: &str| -> Result<Option<Param<Tensor<B, 1>>>> {
                if bias { Ok(Some(get1(&k(name))?)) } else { Ok(None) }
            };
            block.norm1.weight = get1(&k("ln_1.weight"))?;
            block.norm1.bias = b("ln_1.bias")?;
            block.self_attn.in_proj_weight = conv(&k("attn.c_attn.weight"))?;
            block.self_attn.in_proj_bias = b("attn.c_attn.bias")?;
            block.self_attn.out_proj_weight = conv(&k("attn.c_proj.weight"))?;
            block.self_attn.out_proj_bias = b("attn.c_proj.bias")?;
            block.norm2.weight = get1(&k("ln_2.weight"))?;
            block.norm2.bias = b("ln_2.bias")?;
            block.linear1.weight = conv(&k("mlp.c_fc.weight"))?;
            block.linear1.bias = b("mlp.c_fc.bias")?;
            block.linear2.weight = conv(&k("mlp.c_proj.weight"))?;
            block.linear2.bias = b("mlp.c_proj.bias")?;
        }
        match &mut self.lm_head {
            Some(head) => head.weight = Param::from_tensor(dict.tensor::<B, 2>(head_key, &device)?),
            // A tied model takes its head from `wte`; a stored head must then be the same matrix,
            // or the checkpoint's model was not tied and would silently lose its head.
            None if dict.shape(head_key).is_some() => {
                let head = dict.tensor::<B, 2>(head_key, &device)?;
                let differs = (head - self.wte.val()).abs().max().into_scalar().elem::<f64>() > 0.0;
                if differs {
                    return Err(Error::Data(format!(
                        "{}: `{head_key}` differs from `{prefix}wte.weight`, so the checkpoint's head is \
                         not tied; build the model with tie_weights = false",
                        dict.source()
                    )));
                }
            }
            None => {}
        }
        Ok(self)
    }
}

/// How a checkpoint stores a projection's weight.
#[derive(Debug, Clone, Copy)]
enum Projection {
    /// GPT-2's `Conv1D` (Hugging Face): `[in, out]`.
    Conv1D,
    /// `nn.Linear` (nanoGPT): `[out, in]`.
    Linear,
}
