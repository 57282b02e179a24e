//! [`Seq2SeqModel`] and [`Conditioned`]: a sequence-to-sequence model with its source encoded is a
//! language model over the target, so generation (greedy, sampling, beam search) is written once.

use burn::tensor::{Bool, Int, Tensor, TensorData};

use super::language_model::index_tensor;
use super::{LanguageModel, RnnDecodeState, RnnSeq2Seq, Seq2SeqDecodeState, TransformerSeq2Seq};
use crate::{Backend, Error, Result};

/// What translation needs from an encoder-decoder: teacher-forced logits for training, and an
/// encoded-source state to decode from step by step.
pub trait Seq2SeqModel<B: Backend> {
    /// The decoding state (encoder outputs plus the decoder's caches or recurrent state).
    type State: Clone;

    /// The source vocabulary size.
    fn src_vocab_size(&self) -> usize;

    /// The target vocabulary size.
    fn tgt_vocab_size(&self) -> usize;

    /// The longest target the decoder takes (`None`: unbounded).
    fn max_tgt_len(&self) -> Option<usize>;

    /// Teacher-forced logits `[batch, tgt_len, vocab]` of a padded batch.
    fn teacher_forced(
        &self,
        src: Tensor<B, 2, Int>,
        src_lengths: &[usize],
        tgt_in: Tensor<B, 2, Int>,
        tgt_lengths: &[usize],
    ) -> Result<Tensor<B, 3>>;

    /// Encodes `src` and returns the state decoding starts from, with room for `max_tgt_len`
    /// target positions.
    fn start(&self, src: Tensor<B, 2, Int>, src_lengths: &[usize], max_tgt_len: usize)
    -> Result<Self::State>;

    /// Logits `[batch, new, vocab]` for target tokens `[batch, new]`; advances the state.
    fn decode(&self, tgt: Tensor<B, 2, Int>, state: &mut Self::State) -> Result<Tensor<B, 3>>;

    /// Keeps the batch rows `indices` (repeats allowed).
    fn reorder(&self, state: &mut Self::State, indices: &[usize]) -> Result<()>;
}

fn padding<B: Backend>(lengths: &[usize], len: usize, device: &B::Device) -> Option<Tensor<B, 2, Bool>> {
    lengths.iter().any(|&l| l < len).then(|| {
        let pad: Vec<bool> = lengths
            .iter()
            .flat_map(|&l| (0..len).map(move |t| t >= l))
            .collect();
        Tensor::from_data(TensorData::new(pad, [lengths.len(), len]), device)
    })
}

impl<B: Backend> Seq2SeqModel<B> for TransformerSeq2Seq<B> {
    type State = Seq2SeqDecodeState<B>;

    fn src_vocab_size(&self) -> usize {
        TransformerSeq2Seq::src_vocab_size(self)
    }

    fn tgt_vocab_size(&self) -> usize {
        TransformerSeq2Seq::tgt_vocab_size(self)
    }

    fn max_tgt_len(&self) -> Option<usize> {
        Some(self.max_len())
    }

    fn teacher_forced(
        &self,
        src: Tensor<B, 2, Int>,
        src_lengths: &[usize],
        tgt_in: Tensor<B, 2, Int>,
        tgt_lengths: &[usize],
    ) -> Result<Tensor<B, 3>> {
        let device = src.device();
        let (s, t) = (src.dims()[1], tgt_in.dims()[1]);
        self.forward(
            src,
            padding(src_lengths, s, &device),
            tgt_in,
            padding(tgt_lengths, t, &device),
        )
    }

    fn start(
        &self,
        src: Tensor<B, 2, Int>,
        src_lengths: &[usize],
        max_tgt_len: usize,
    ) -> Result<Self::State> {
        let device = src.device();
        let s = src.dims()[1];
        self.start_decoding(src, padding(src_lengths, s, &device), max_tgt_len)
    }

    fn decode(&self, tgt: Tensor<B, 2, Int>, state: &mut Self::State) -> Result<Tensor<B, 3>> {
        self.decode_step(tgt, state)
    }

    fn reorder(&self, state: &mut Self::State, indices: &[usize]) -> Result<()> {
        let device = self.generator_device();
        state.reorder(index_tensor::<B>(indices, &device))
    }
}

impl<B: Backend> Seq2SeqModel<B> for RnnSeq2Seq<B> {
    type State = RnnDecodeState<B>;

    fn src_vocab_size(&self) -> usize {
        RnnSeq2Seq::src_vocab_size(self)
    }

    fn tgt_vocab_size(&self) -> usize {
        RnnSeq2Seq::tgt_vocab_size(self)
    }

    fn max_tgt_len(&self) -> Option<usize> {
        None
    }

    fn teacher_forced(
        &self,
        src: Tensor<B, 2, Int>,
        src_lengths: &[usize],
        tgt_in: Tensor<B, 2, Int>,
        _tgt_lengths: &[usize],
    ) -> Result<Tensor<B, 3>> {
        // Padded target positions come after the real ones and are masked in the loss.
        self.forward(src, src_lengths, tgt_in)
    }

    fn start(
        &self,
        src: Tensor<B, 2, Int>,
        src_lengths: &[usize],
        _max_tgt_len: usize,
    ) -> Result<Self::State> {
        self.start_decoding(src, src_lengths)
    }

    fn decode(&self, tgt: Tensor<B, 2, Int>, state: &mut Self::State) -> Result<Tensor<B, 3>> {
        self.decode_step(tgt, state)
    }

    fn reorder(&self, state: &mut Self::State, indices: &[usize]) -> Result<()> {
        RnnSeq2Seq::reorder(self, state, indices)
    }
}

/// A [`Seq2SeqModel`] with one source encoded: a [`LanguageModel`] over the target, so that
/// [`Generator`](crate::generate::Generator) translates with greedy decoding, sampling or beam
/// search. The prompt is the target's BOS.
pub struct Conditioned<'a, B: Backend, M: Seq2SeqModel<B>> {
    model: &'a M,
    start: M::State,
    max_tgt_len: usize,
}

impl<'a, B: Backend, M: Seq2SeqModel<B>> Conditioned<'a, B, M> {
    /// Encodes the source ids `src` (one sentence) for decoding up to `max_tgt_len` positions
    /// (BOS included).
    pub fn new(model: &'a M, src: &[u32], max_tgt_len: usize, device: &B::Device) -> Result<Self> {
        if src.is_empty() {
            return Err(Error::Lengths("the source sentence is empty".into()));
        }
        let ids: Vec<i64> = src.iter().map(|&i| i as i64).collect();
        let src_t = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [1, src.len()]), device);
        let max_tgt_len = model.max_tgt_len().map_or(max_tgt_len, |m| m.min(max_tgt_len));
        Ok(Self {
            model,
            start: model.start(src_t, &[src.len()], max_tgt_len)?,
            max_tgt_len,
        })
    }
}

impl<B: Backend, M: Seq2SeqModel<B>> LanguageModel<B> for Conditioned<'_, B, M> {
    type State = M::State;

    fn vocab_size(&self) -> usize {
        self.model.tgt_vocab_size()
    }

    fn max_len(&self) -> Option<usize> {
        Some(self.max_tgt_len)
    }

    fn logits(&self, ids: Tensor<B, 2, Int>) -> Result<Tensor<B, 3>> {
        let mut state = self.init_state(ids.dims()[0], &ids.device());
        self.model.decode(ids, &mut state)
    }

    fn init_state(&self, batch: usize, _device: &B::Device) -> M::State {
        let mut state = self.start.clone();
        // One encoded source, copied to every row.
        self.model
            .reorder(&mut state, &vec![0; batch])
            .expect("row 0 exists in a one-row state");
        state
    }

    fn step(&self, ids: Tensor<B, 2, Int>, state: &mut M::State) -> Result<Tensor<B, 3>> {
        self.model.decode(ids, state)
    }

    fn reorder_state(&self, state: &mut M::State, indices: &[usize]) -> Result<()> {
        self.model.reorder(state, indices)
    }
}
