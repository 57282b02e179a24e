//! GPT-2's parameter names for a [`Gpt`], in nanoGPT's layout (`nn.Linear`, the model's own
//! [`TorchWeights`]) and in Hugging Face's (`Conv1D`, through [`Gpt2Names`]).

use burn::module::Param;
use burn::tensor::Tensor;

use super::gpt::Gpt;
use crate::io::{TorchWeights, WeightPath};
use crate::{Backend, Result};

/// How a checkpoint stores a projection's weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Projection {
    /// GPT-2's `Conv1D` (Hugging Face): `[in, out]`.
    Conv1D,
    /// `nn.Linear` (nanoGPT): `[out, in]`.
    Linear,
}

/// A [`Gpt`] seen through GPT-2's names: the body under `body` (`"transformer."`, or `""` for
/// Hugging Face's bare `GPT2Model`) and `lm_head.weight` beside it.
pub(crate) struct Gpt2Names<'m, B: Backend> {
    gpt: &'m mut Gpt<B>,
    projection: Projection,
    body: &'static str,
}

impl<'m, B: Backend> Gpt2Names<'m, B> {
    pub fn new(gpt: &'m mut Gpt<B>, projection: Projection, body: &'static str) -> Self {
        Self {
            gpt,
            projection,
            body,
        }
    }
}

impl<B: Backend> TorchWeights for Gpt2Names<'_, B> {
    fn visit_weights(&mut self, w: &mut WeightPath<'_, '_>) -> Result<()> {
        let gpt = &mut *self.gpt;
        let projection = self.projection;
        // A projection's weight, stored as `projection` says, and its optional bias.
        let project = |w: &mut WeightPath<'_, '_>,
                       weight: &mut Param<Tensor<B, 2>>,
                       bias: &mut Option<Param<Tensor<B, 1>>>|
         -> Result<()> {
            match projection {
                Projection::Conv1D => w.transposed("weight", weight)?,
                Projection::Linear => w.tensor("weight", weight)?,
            }
            w.optional("bias", bias)
        };
        let mut body = w.under(self.body);
        body.pp("wte").tensor("weight", &mut gpt.wte)?;
        body.pp("wpe").tensor("weight", &mut gpt.wpe.weight)?;
        for (i, block) in gpt.h.iter_mut().enumerate() {
            let mut h = body.pp(format!("h.{i}"));
            h.module("ln_1", &mut block.norm1)?;
            let mut attn = h.pp("attn");
            let a = &mut block.self_attn;
            project(&mut attn.pp("c_attn"), &mut a.in_proj_weight, &mut a.in_proj_bias)?;
            project(
                &mut attn.pp("c_proj"),
                &mut a.out_proj_weight,
                &mut a.out_proj_bias,
            )?;
            // The causal-mask buffers older checkpoints carry.
            attn.buffer("bias");
            attn.buffer("masked_bias");
            h.module("ln_2", &mut block.norm2)?;
            let mut mlp = h.pp("mlp");
            let (fc, out) = (&mut block.linear1, &mut block.linear2);
            project(&mut mlp.pp("c_fc"), &mut fc.weight, &mut fc.bias)?;
            project(&mut mlp.pp("c_proj"), &mut out.weight, &mut out.bias)?;
        }
        body.module("ln_f", &mut gpt.ln_f)?;
        match &mut gpt.lm_head {
            Some(head) => w.pp("lm_head").tensor("weight", &mut head.weight),
            None => w.tied("lm_head.weight", &gpt.wte, &format!("{}wte.weight", self.body)),
        }
    }
}

impl<B: Backend> TorchWeights for Gpt<B> {
    /// nanoGPT's `GPT`: `transformer.wte.weight`, ..., `transformer.h.{i}.attn.c_attn.weight` as
    /// `nn.Linear` `[3 n_embd, n_embd]`, ..., `lm_head.weight` (saved also when tied, as
    /// PyTorch's `state_dict` holds the shared tensor under both names).
    fn visit_weights(&mut self, w: &mut WeightPath<'_, '_>) -> Result<()> {
        Gpt2Names::new(self, Projection::Linear, "transformer.").visit_weights(w)
    }
}
