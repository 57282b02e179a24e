//! [`RnnSeq2Seq`]: a recurrent encoder-decoder with attention — PyTorch's "NLP From Scratch:
//! Translation with a Sequence to Sequence Network and Attention" model (`EncoderRNN` +
//! `AttnDecoderRNN` with `BahdanauAttention`), with padding masks and a choice of cell and score.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::activation::softmax;
use burn::tensor::{Bool, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::io::{TorchWeights, WeightPath};
use crate::models::ModelInit;
use crate::nn::lookup;
use crate::nn::{CellType, Recurrent, RecurrentConfig, RecurrentState, TorchLinear};
use crate::{Backend, Error, Result};

/// How the decoder scores the encoder outputs against its previous hidden state `q`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttentionScore {
    /// Bahdanau's additive score `vᵀ tanh(W_a q + U_a h)` (the tutorial's `BahdanauAttention`).
    Bahdanau,
    /// Luong's multiplicative "general" score `qᵀ W_a h`.
    LuongGeneral,
    /// Luong's "dot" score `qᵀ h`.
    LuongDot,
}

/// Configuration of an [`RnnSeq2Seq`].
#[derive(Config, Debug)]
pub struct RnnSeq2SeqConfig {
    /// Source vocabulary.
    pub src_vocab_size: usize,
    /// Target vocabulary.
    pub tgt_vocab_size: usize,
    /// Embedding and hidden size (the tutorial uses one size for both).
    pub hidden_size: usize,
    /// The cell of both recurrent stacks. Default GRU (the tutorial's).
    #[config(default = "CellType::Gru")]
    pub cell: CellType,
    /// The attention score. Default Bahdanau.
    #[config(default = "AttentionScore::Bahdanau")]
    pub score: AttentionScore,
    /// Dropout on the embeddings. Default 0.1 (the tutorial's).
    #[config(default = 0.1)]
    pub dropout: f64,
    /// How the embeddings and the output layer are drawn. `None` (the default) is
    /// [`ModelInit::TorchModules`], the tutorial's (its modules keep their own initialisation);
    /// [`ModelInit::WordLanguageModel`] draws them `U(-0.1, 0.1)` with a zero output bias. Attention and
    /// recurrent layers are initialised as their `torch.nn` counterparts either way.
    #[config(default = "None")]
    pub init: Option<ModelInit>,
}

impl RnnSeq2SeqConfig {
    /// Builds the model with the [`init`](Self::init) scheme.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<RnnSeq2Seq<B>> {
        let scheme = self.init.unwrap_or(ModelInit::TorchModules).check(
            "RnnSeq2SeqConfig",
            &[ModelInit::TorchModules, ModelInit::WordLanguageModel],
        )?;
        let h = self.hidden_size;
        if self.src_vocab_size == 0 || self.tgt_vocab_size == 0 || h == 0 {
            return Err(Error::Config {
                module: "RnnSeq2SeqConfig",
                message: format!(
                    "vocabularies and hidden_size must be > 0, found {}, {}, {h}",
                    self.src_vocab_size, self.tgt_vocab_size
                ),
            });
        }
        let check = crate::nn::check_param_size;
        check(
            "RnnSeq2SeqConfig",
            "the source embedding (src_vocab_size × hidden_size)",
            &[self.src_vocab_size, h],
        )?;
        check(
            "RnnSeq2SeqConfig",
            "the target embedding (tgt_vocab_size × hidden_size)",
            &[self.tgt_vocab_size, h],
        )?;
        Ok(RnnSeq2Seq {
            encoder_embedding: scheme.embedding(self.src_vocab_size, h, device),
            encoder_rnn: RecurrentConfig::new(self.cell, h, h).init(device)?,
            decoder_embedding: scheme.embedding(self.tgt_vocab_size, h, device),
            attn_wa: (self.score != AttentionScore::LuongDot)
                .then(|| TorchLinear::new(h, h, self.score == AttentionScore::Bahdanau, device)),
            attn_ua: (self.score == AttentionScore::Bahdanau).then(|| TorchLinear::new(h, h, true, device)),
            attn_va: (self.score == AttentionScore::Bahdanau).then(|| TorchLinear::new(h, 1, true, device)),
            decoder_rnn: RecurrentConfig::new(self.cell, 2 * h, h).init(device)?,
            out: scheme.output_layer(h, self.tgt_vocab_size, true, device),
            dropout: DropoutConfig::new(self.dropout).init(),
            score: self.score,
        })
    }
}

/// The encoder outputs and the decoder's recurrent state, for step-by-step decoding.
#[derive(Debug, Clone)]
pub struct RnnDecodeState<B: Backend> {
    /// `[batch, src_len, hidden]`.
    pub memory: Tensor<B, 3>,
    /// `[batch, src_len]`, `true` at source padding.
    pub src_padding: Option<Tensor<B, 2, Bool>>,
    /// The decoder's state (initially the encoder's final state).
    pub hidden: RecurrentState<B>,
    /// Target positions decoded so far.
    pub len: usize,
}

/// A recurrent encoder-decoder with attention.
///
/// ```text
/// encoder:  (h_1..h_S, s) = rnn_enc(dropout(E_src[x]))
/// decoder step t, from state s (initially the encoder's):
///   q = s (last layer);  a = softmax(score(q, h_1..h_S)) (padding masked);  c = Σ a_j h_j
///   (o, s) = rnn_dec([dropout(E_tgt[y_t]); c], s);  logits_t = W_out o + b
/// ```
#[derive(Module, Debug)]
pub struct RnnSeq2Seq<B: Backend> {
    /// `encoder.embedding.weight`.
    pub encoder_embedding: Param<Tensor<B, 2>>,
    /// `encoder.gru.*` (or `.lstm`/`.rnn`).
    pub encoder_rnn: Recurrent<B>,
    /// `decoder.embedding.weight`.
    pub decoder_embedding: Param<Tensor<B, 2>>,
    /// `decoder.attention.Wa` (absent for the dot score).
    pub attn_wa: Option<TorchLinear<B>>,
    /// `decoder.attention.Ua` (Bahdanau only).
    pub attn_ua: Option<TorchLinear<B>>,
    /// `decoder.attention.Va` (Bahdanau only).
    pub attn_va: Option<TorchLinear<B>>,
    /// `decoder.gru.*`.
    pub decoder_rnn: Recurrent<B>,
    /// `decoder.out`.
    pub out: TorchLinear<B>,
    dropout: Dropout,
    #[module(skip)]
    score: AttentionScore,
}

fn lengths_mask<B: Backend>(lengths: &[usize], len: usize, device: &B::Device) -> Tensor<B, 2, Bool> {
    let pad: Vec<bool> = lengths
        .iter()
        .flat_map(|&l| (0..len).map(move |t| t >= l))
        .collect();
    Tensor::from_data(TensorData::new(pad, [lengths.len(), len]), device)
}

impl<B: Backend> RnnSeq2Seq<B> {
    /// The source vocabulary size.
    pub fn src_vocab_size(&self) -> usize {
        self.encoder_embedding.dims()[0]
    }

    /// The target vocabulary size.
    pub fn tgt_vocab_size(&self) -> usize {
        self.out.weight.dims()[0]
    }

    /// Encodes a padded source batch and returns the state decoding starts from.
    ///
    /// # Shapes
    /// - `src`: `[batch, src_len]`, `src_lengths`: `batch` lengths in `1..=src_len`
    pub fn start_decoding(&self, src: Tensor<B, 2, Int>, src_lengths: &[usize]) -> Result<RnnDecodeState<B>> {
        let [batch, len] = src.dims();
        if src_lengths.len() != batch || src_lengths.iter().any(|&l| l == 0 || l > len) {
            return Err(Error::Lengths(format!(
                "{} source lengths for a batch of {batch}, each in 1..={len}: {src_lengths:?}",
                src_lengths.len()
            )));
        }
        let device = src.device();
        let x = self.dropout.forward(lookup(
            "RnnSeq2Seq source ids",
            &self.encoder_embedding.val(),
            src,
        )?);
        let padded = src_lengths.iter().any(|&l| l < len);
        let (memory, hidden) = self.encoder_rnn.forward(x, padded.then_some(src_lengths), None)?;
        Ok(RnnDecodeState {
            memory,
            src_padding: padded.then(|| lengths_mask::<B>(src_lengths, len, &device)),
            hidden,
            len: 0,
        })
    }

    /// The attention context for query `q` `[batch, hidden]`: `[batch, 1, hidden]`.
    fn context(&self, q: Tensor<B, 2>, state: &RnnDecodeState<B>) -> Tensor<B, 3> {
        let [batch, src_len, h] = state.memory.dims();
        let keys = state.memory.clone();
        let q3 = q.reshape([batch, 1, h]); // one query per row
        let scores = match self.score {
            AttentionScore::Bahdanau => {
                let (wa, ua, va) = (
                    self.attn_wa.as_ref().expect("Bahdanau has Wa"),
                    self.attn_ua.as_ref().expect("Bahdanau has Ua"),
                    self.attn_va.as_ref().expect("Bahdanau has Va"),
                );
                // [B, 1, H] + [B, S, H] -> [B, S, H] -> [B, S, 1] -> [B, S]
                va.apply((wa.apply(q3) + ua.apply(keys.clone())).tanh())
                    .reshape([batch, src_len])
            }
            AttentionScore::LuongGeneral | AttentionScore::LuongDot => {
                let k = match &self.attn_wa {
                    Some(wa) => wa.apply(keys.clone()),
                    None => keys.clone(),
                };
                // Σ_h q·k over features: [B, S, H] * [B, 1, H] -> [B, S]
                (k * q3).sum_dim(2).reshape([batch, src_len])
            }
        };
        let scores = match &state.src_padding {
            Some(pad) => scores.mask_fill(pad.clone(), f32::NEG_INFINITY),
            None => scores,
        };
        let weights = softmax(scores, 1); // [B, S]
        // Σ_j a_j h_j: [B, S, 1] * [B, S, H] -> sum over S -> [B, 1, H]
        (weights.reshape([batch, src_len, 1]) * keys).sum_dim(1)
    }

    /// Logits for the target tokens `tgt` `[batch, new]`, fed one position at a time.
    ///
    /// # Shapes
    /// - returns `[batch, new, tgt_vocab_size]`
    pub fn decode_step(&self, tgt: Tensor<B, 2, Int>, state: &mut RnnDecodeState<B>) -> Result<Tensor<B, 3>> {
        let [batch, new] = tgt.dims();
        let rows = state.memory.dims()[0];
        if batch != rows {
            return Err(Error::shape(
                "RnnSeq2Seq::decode_step target ids",
                format!("[{rows}, new] (the batch that start_decoding encoded)"),
                &tgt.dims(),
            ));
        }
        let emb = self.dropout.forward(lookup(
            "RnnSeq2Seq target ids",
            &self.decoder_embedding.val(),
            tgt,
        )?);
        let [_, _, h] = emb.dims();
        let mut outputs = Vec::with_capacity(new);
        for t in 0..new {
            let [layers, _, _] = state.hidden.hidden.dims();
            // The last layer's hidden state is the query: [L, B, H] -> [B, H].
            let q = state
                .hidden
                .hidden
                .clone()
                .slice([layers - 1..layers, 0..batch, 0..h])
                .reshape([batch, h]);
            let context = self.context(q, state);
            let input = Tensor::cat(vec![emb.clone().slice([0..batch, t..t + 1, 0..h]), context], 2);
            let (o, next) = self
                .decoder_rnn
                .forward(input, None, Some(state.hidden.clone()))?;
            state.hidden = next;
            outputs.push(self.out.apply(o));
        }
        state.len += new;
        Ok(Tensor::cat(outputs, 1))
    }

    /// Teacher-forced logits of a padded batch.
    ///
    /// # Shapes
    /// - `src` `[batch, src_len]` with `src_lengths`; `tgt_in` `[batch, tgt_len]` (starting with
    ///   BOS); output `[batch, tgt_len, tgt_vocab_size]`
    pub fn forward(
        &self,
        src: Tensor<B, 2, Int>,
        src_lengths: &[usize],
        tgt_in: Tensor<B, 2, Int>,
    ) -> Result<Tensor<B, 3>> {
        let mut state = self.start_decoding(src, src_lengths)?;
        self.decode_step(tgt_in, &mut state)
    }

    /// Keeps the batch rows `indices` of `state` (beam search).
    /// An [`Error::Index`] naming the first index outside the batch leaves `state` unchanged.
    pub fn reorder(&self, state: &mut RnnDecodeState<B>, indices: &[usize]) -> Result<()> {
        let batch = state.memory.dims()[0];
        super::language_model::check_row_indices("RnnSeq2Seq state reorder", indices, batch)?;
        let device = state.memory.device();
        let idx = super::language_model::index_tensor::<B>(indices, &device);
        state.memory = state.memory.clone().select(0, idx.clone());
        state.src_padding = state.src_padding.take().map(|p| p.select(0, idx));
        state.hidden = state.hidden.clone().select(indices)?;
        Ok(())
    }
}

impl<B: Backend> TorchWeights for RnnSeq2Seq<B> {
    /// The PyTorch tutorial's two modules saved together as `{"encoder.<key>": ...,
    /// "decoder.<key>": ...}` (for example `{**{f"encoder.{k}": v for k, v in
    /// encoder.state_dict().items()}, **{f"decoder.{k}": ...}}`): `encoder.embedding.weight`,
    /// `encoder.gru.*`, `decoder.embedding.weight`, `decoder.attention.{Wa,Ua,Va}.*`,
    /// `decoder.gru.*`, `decoder.out.*`. The recurrent keys use the cell's module name: `gru`,
    /// `lstm` or `rnn`.
    fn visit_weights(&mut self, w: &mut WeightPath<'_, '_>) -> Result<()> {
        let rnn_name = match self.encoder_rnn.cell_type() {
            CellType::Gru => "gru",
            CellType::Lstm => "lstm",
            CellType::RnnTanh | CellType::RnnRelu => "rnn",
        };
        let mut encoder = w.pp("encoder");
        encoder
            .pp("embedding")
            .tensor("weight", &mut self.encoder_embedding)?;
        encoder.module(rnn_name, &mut self.encoder_rnn)?;
        let mut decoder = w.pp("decoder");
        decoder
            .pp("embedding")
            .tensor("weight", &mut self.decoder_embedding)?;
        for (name, layer) in [
            ("Wa", &mut self.attn_wa),
            ("Ua", &mut self.attn_ua),
            ("Va", &mut self.attn_va),
        ] {
            if let Some(layer) = layer {
                decoder.pp("attention").module(name, layer)?;
            }
        }
        decoder.module(rnn_name, &mut self.decoder_rnn)?;
        decoder.module("out", &mut self.out)
    }
}
