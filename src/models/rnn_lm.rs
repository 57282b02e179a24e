//! [`RnnLm`]: PyTorch's word-language-model (`examples/word_language_model`'s `RNNModel`).

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::{Int, Tensor};

use crate::io::{TorchWeights, WeightPath};
use crate::models::ModelInit;
use crate::nn::lookup;
use crate::nn::{CellType, Recurrent, RecurrentConfig, RecurrentState, TorchLinear};
use crate::{Backend, Error, Result};

/// Configuration of an [`RnnLm`]; PyTorch's `RNNModel(rnn_type, ntoken, ninp, nhid, nlayers,
/// dropout, tie_weights)` with its initialisation.
#[derive(Config, Debug)]
pub struct RnnLmConfig {
    /// Vocabulary size (`ntoken`).
    pub vocab_size: usize,
    /// Embedding size (`ninp`).
    pub embed_size: usize,
    /// Hidden size (`nhid`).
    pub hidden_size: usize,
    /// The cell. Default LSTM.
    #[config(default = "CellType::Lstm")]
    pub cell: CellType,
    /// Stacked layers (`nlayers`). Default 2.
    #[config(default = 2)]
    pub num_layers: usize,
    /// Dropout on the embeddings, between layers and on the output (`dropout`). Default 0.2
    /// (the example's command-line default).
    #[config(default = 0.2)]
    pub dropout: f64,
    /// Share the decoder's weight with the embedding (`tie_weights`). Default false. When the
    /// embedding and hidden sizes differ, a linear projection `hidden → embed` is added before the
    /// decoder (PyTorch's model refuses that case).
    #[config(default = false)]
    pub tie_weights: bool,
    /// How the weights are drawn. `None` (the default) is [`ModelInit::TorchModules`];
    /// [`ModelInit::WordLanguageModel`] is the example's `init_weights`. On Tiny Shakespeare's
    /// characters (2 × 128 LSTM, 2000 steps) `torch.nn`'s defaults reach a validation loss 0.16
    /// nats lower than the example's `U(-0.1, 0.1)`, and on its words the two are level: see
    /// `docs/benchmarks.md`, "Learning quality at equal steps".
    #[config(default = "None")]
    pub init: Option<ModelInit>,
}

impl RnnLmConfig {
    /// Builds the model with the [`init`](Self::init) scheme: the embedding `N(0, 1)` and the
    /// decoder as `nn.Linear` (`TorchModules`), or both `U(-0.1, 0.1)` with a zero decoder bias
    /// (`WordLanguageModel`); recurrent weights as `nn.LSTM`/`nn.GRU`/`nn.RNN` either way. A tied
    /// decoder shares the embedding, as `RNNModel` ties them.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<RnnLm<B>> {
        if self.vocab_size == 0 || self.embed_size == 0 || self.hidden_size == 0 {
            return Err(Error::Config {
                module: "RnnLmConfig",
                message: format!(
                    "vocab_size, embed_size and hidden_size must be > 0, found {}, {}, {}",
                    self.vocab_size, self.embed_size, self.hidden_size
                ),
            });
        }
        let scheme = self.init.unwrap_or(ModelInit::TorchModules).check(
            "RnnLmConfig",
            &[ModelInit::TorchModules, ModelInit::WordLanguageModel],
        )?;
        let (v, e, h) = (self.vocab_size, self.embed_size, self.hidden_size);
        let check = crate::nn::check_param_size;
        check("RnnLmConfig", "the embedding (vocab_size × embed_size)", &[v, e])?;
        check("RnnLmConfig", "the decoder (vocab_size × hidden_size)", &[v, h])?;
        let rnn = RecurrentConfig::new(self.cell, e, h)
            .with_num_layers(self.num_layers)
            .with_dropout(self.dropout)
            .init(device)?;
        let proj = (self.tie_weights && e != h).then(|| TorchLinear::new(h, e, false, device));
        let encoder = scheme.embedding(v, e, device);
        // `nn.Linear(nhid, ntoken)`; tied, its weight gives way to the embedding's (RNNModel's
        // `decoder.weight = encoder.weight`) and its bias stays.
        let decoder = scheme.output_layer(h, v, true, device);
        Ok(RnnLm {
            encoder,
            rnn,
            proj,
            decoder_weight: (!self.tie_weights).then_some(decoder.weight),
            decoder_bias: decoder
                .bias
                .unwrap_or_else(|| Param::from_tensor(Tensor::zeros([v], device))),
            dropout: DropoutConfig::new(self.dropout).init(),
            vocab_size: v,
        })
    }
}

/// A recurrent language model: embedding, dropout, an `Rnn`/`Lstm`/`Gru` stack, dropout, a
/// linear decoder (optionally tied to the embedding).
///
/// ```text
/// x = dropout(E[ids]);  (o, state) = rnn(x, state);  logits = dropout(o) Dᵀ + b
/// ```
///
/// Parameters are named after PyTorch's `RNNModel` (`encoder.weight`, `rnn.*`, `decoder.weight`,
/// `decoder.bias`), whose state dict [`TorchWeights::load_state_dict`] reads and [`TorchWeights::save_pytorch`] writes.
#[derive(Module, Debug)]
pub struct RnnLm<B: Backend> {
    /// The embedding `[vocab, embed]` (`encoder.weight`).
    pub encoder: Param<Tensor<B, 2>>,
    /// The recurrent stack (`rnn.*`).
    pub rnn: Recurrent<B>,
    /// `hidden → embed` before a tied decoder when the sizes differ.
    pub proj: Option<TorchLinear<B>>,
    /// The decoder weight `[vocab, hidden]`; `None` when tied to `encoder`.
    pub decoder_weight: Option<Param<Tensor<B, 2>>>,
    /// The decoder bias `[vocab]` (kept when tied, as in PyTorch).
    pub decoder_bias: Param<Tensor<B, 1>>,
    dropout: Dropout,
    vocab_size: usize,
}

impl<B: Backend> RnnLm<B> {
    /// The vocabulary size.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// Logits for every position, from `state` (zeros when `None`), and the final state.
    ///
    /// # Shapes
    /// - `ids`: `[batch, time]`
    /// - returns `[batch, time, vocab]` and the state `[layers, batch, hidden]`
    pub fn forward(
        &self,
        ids: Tensor<B, 2, Int>,
        state: Option<RecurrentState<B>>,
    ) -> Result<(Tensor<B, 3>, RecurrentState<B>)> {
        let x = lookup("RnnLm input ids", &self.encoder.val(), ids)?;
        self.run(x, None, state)
    }

    /// [`forward`](Self::forward) for ids on the host, `batch` rows of `ids.len() / batch`
    /// tokens: they are checked against the vocabulary on the host, so a decoding step reads
    /// nothing back from the device but its logits.
    pub fn forward_ids(
        &self,
        ids: &[u32],
        batch: usize,
        state: Option<RecurrentState<B>>,
    ) -> Result<(Tensor<B, 3>, RecurrentState<B>)> {
        let table = self.encoder.val();
        let ids = crate::nn::host_ids("RnnLm input ids", ids, batch, self.vocab_size, &table.device())?;
        self.run(crate::nn::lookup_checked(&table, ids), None, state)
    }

    /// Runs prompts of different lengths (none empty) as one batch from a zero state, padded on
    /// the right and packed by their lengths (as `pack_padded_sequence`): returns the logits
    /// after each prompt's last token and each row's state there, as if run alone.
    ///
    /// # Shapes
    /// - `prompts`: `batch` sequences; output `[batch, vocab]` and the state `[layers, batch, hidden]`
    pub fn forward_prompts(&self, prompts: &[&[u32]]) -> Result<(Tensor<B, 2>, RecurrentState<B>)> {
        super::check_prompts("RnnLm::forward_prompts", prompts)?;
        let batch = prompts.len();
        let lengths: Vec<usize> = prompts.iter().map(|p| p.len()).collect();
        let longest = lengths.iter().copied().max().unwrap_or(0);
        let ids: Vec<u32> = prompts
            .iter()
            .flat_map(|p| p.iter().copied().chain(std::iter::repeat_n(0, longest - p.len())))
            .collect();
        let table = self.encoder.val();
        let device = table.device();
        let ids = crate::nn::host_ids("RnnLm input ids", &ids, batch, self.vocab_size, &device)?;
        let (logits, state) = self.run(crate::nn::lookup_checked(&table, ids), Some(&lengths), None)?;
        // [batch, longest, vocab] -> [batch * longest, vocab] -> row r's position lengths[r] - 1.
        let last: Vec<usize> = lengths
            .iter()
            .enumerate()
            .map(|(r, &len)| r * longest + len - 1)
            .collect();
        let logits = logits
            .reshape([batch * longest, self.vocab_size])
            .select(0, crate::models::index_tensor::<B>(&last, &device));
        Ok((logits, state))
    }

    /// Everything after the embedding lookup `x` `[batch, time, embed]`.
    fn run(
        &self,
        x: Tensor<B, 3>,
        lengths: Option<&[usize]>,
        state: Option<RecurrentState<B>>,
    ) -> Result<(Tensor<B, 3>, RecurrentState<B>)> {
        let x = self.dropout.forward(x);
        let (out, state) = self.rnn.forward(x, lengths, state)?;
        let out = self.dropout.forward(out);
        let out = match &self.proj {
            Some(p) => p.apply(out),
            None => out,
        };
        let [b, t, d] = out.dims();
        let weight = match &self.decoder_weight {
            Some(w) => w.val(),
            None => self.encoder.val(),
        };
        // [b·t, d] x [d, vocab]: a 2-D matmul, then back to [b, t, vocab].
        let logits = out.reshape([b * t, d]).matmul(weight.transpose()) + self.decoder_bias.val().unsqueeze();
        Ok((logits.reshape([b, t, self.vocab_size]), state))
    }
}

impl<B: Backend> TorchWeights for RnnLm<B> {
    /// PyTorch's `RNNModel` (word_language_model): `encoder.weight`, `rnn.*`, `decoder.weight`,
    /// `decoder.bias`. A tied `decoder.weight` is saved too, as PyTorch saves the shared tensor
    /// under both names, and may be absent on loading. The projection that ties different sizes
    /// (not in PyTorch's model) is `proj.weight`.
    fn visit_weights(&mut self, w: &mut WeightPath<'_, '_>) -> Result<()> {
        w.pp("encoder").tensor("weight", &mut self.encoder)?;
        w.module("rnn", &mut self.rnn)?;
        if let Some(proj) = &mut self.proj {
            w.module("proj", proj)?;
        }
        let mut decoder = w.pp("decoder");
        match &mut self.decoder_weight {
            Some(weight) => decoder.tensor("weight", weight)?,
            None => decoder.tied("weight", &self.encoder, "encoder.weight")?,
        }
        decoder.tensor("bias", &mut self.decoder_bias)
    }
}
