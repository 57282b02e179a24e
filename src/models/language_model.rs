//! [`LanguageModel`]: what generation and language-model training need from a model.

use burn::tensor::{Int, Tensor, TensorData};

use super::{Gpt, GptCache, RnnLm};
use crate::nn::RecurrentState;
use crate::{Backend, Error, Result};

/// A causal language model: a full forward for training, and incremental decoding with a state
/// (an RNN's hidden state, a Transformer's KV cache) for generation. `RnnLm` and `Gpt` implement
/// it; [`generate`](crate::generate) and the language-model task are written once against it.
pub trait LanguageModel<B: Backend> {
    /// What decoding carries from one step to the next.
    type State: Clone;

    /// The vocabulary size.
    fn vocab_size(&self) -> usize;

    /// The longest sequence the model can attend to (`None`: unbounded, as an RNN).
    fn max_len(&self) -> Option<usize>;

    /// Logits for every position of `ids` `[batch, time]`: `[batch, time, vocab]`.
    fn logits(&self, ids: Tensor<B, 2, Int>) -> Result<Tensor<B, 3>>;

    /// Logits of a padded batch: `attention_mask` `[batch, time]` is 1 at real tokens and 0 at
    /// padding (left or right, each row's tokens contiguous), as transformers' `attention_mask`.
    /// Every real position gets the logits of its sequence run alone; padded positions get
    /// zeros. `Gpt` runs the batch at once ([`Gpt::forward_padded`]); the default runs each row's
    /// tokens through [`logits`](Self::logits).
    fn logits_padded(
        &self,
        ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
    ) -> Result<Tensor<B, 3>> {
        let [batch, time] = ids.dims();
        if attention_mask.dims() != [batch, time] {
            return Err(Error::shape(
                "LanguageModel::logits_padded attention_mask",
                format!("[{batch}, {time}] (the ids' shape)"),
                &attention_mask.dims(),
            ));
        }
        let mask: Vec<i64> = attention_mask
            .into_data()
            .convert::<i64>()
            .into_vec()
            .unwrap_or_default();
        let device = ids.device();
        let vocab = self.vocab_size();
        let mut rows = Vec::with_capacity(batch);
        for (r, row) in mask.chunks(time.max(1)).enumerate() {
            let start = row.iter().position(|&m| m == 1).unwrap_or(time);
            let end = row.iter().rposition(|&m| m == 1).map_or(start, |e| e + 1);
            if row.iter().any(|&m| m != 0 && m != 1) || row[start..end].contains(&0) {
                return Err(Error::Data(format!(
                    "LanguageModel::logits_padded: row {r} of attention_mask must be 0s, then 1s, then 0s \
                     (one contiguous run of tokens), found {row:?}"
                )));
            }
            // [1, time, vocab] from zeros around the row's own logits.
            let mut parts = Vec::new();
            if start > 0 {
                parts.push(Tensor::zeros([1, start, vocab], &device));
            }
            if end > start {
                parts.push(self.logits(ids.clone().slice([r..r + 1, start..end]))?);
            }
            if end < time {
                parts.push(Tensor::zeros([1, time - end.max(start), vocab], &device));
            }
            rows.push(Tensor::cat(parts, 1));
        }
        Ok(Tensor::cat(rows, 0))
    }

    /// The state before any token, for `batch` sequences.
    fn init_state(&self, batch: usize, device: &B::Device) -> Self::State;

    /// Feeds `ids` `[batch, new]` after what `state` holds; returns their logits
    /// `[batch, new, vocab]` and advances the state.
    fn step(&self, ids: Tensor<B, 2, Int>, state: &mut Self::State) -> Result<Tensor<B, 3>>;

    /// [`step`](Self::step) for ids on the host, `batch` rows of `ids.len() / batch` tokens (how
    /// generation feeds its sampled tokens). `Gpt` and `RnnLm` check them on the host, which
    /// spares a read back from the device per step; the default builds the tensor and calls
    /// `step`.
    fn step_ids(
        &self,
        ids: &[u32],
        batch: usize,
        state: &mut Self::State,
        device: &B::Device,
    ) -> Result<Tensor<B, 3>> {
        let ids = crate::nn::host_ids(
            "LanguageModel::step_ids ids",
            ids,
            batch,
            self.vocab_size(),
            device,
        )?;
        self.step(ids, state)
    }

    /// Feeds `prompts` (of any lengths, none empty) as one batch from a fresh state, as batched
    /// generation starts: returns the logits that follow each prompt `[batch, vocab]` (each as
    /// if run alone) and a state from which [`step_ids`](Self::step_ids) goes on with one token
    /// per row. `Gpt` pads on the left and masks the padding in its cache; `RnnLm` packs the
    /// prompts by length. The default batches prompts of one length and returns `Ok(None)`
    /// for others, which [`Generator`](crate::generate::Generator) then runs one at a time.
    #[allow(clippy::type_complexity)]
    fn prefill(&self, prompts: &[&[u32]], device: &B::Device) -> Result<Option<(Tensor<B, 2>, Self::State)>> {
        check_prompts("LanguageModel::prefill", prompts)?;
        if prompts.iter().any(|p| p.len() != prompts[0].len()) {
            return Ok(None);
        }
        let batch = prompts.len();
        let mut state = self.init_state(batch, device);
        let ids: Vec<u32> = prompts.concat();
        let logits = self.step_ids(&ids, batch, &mut state, device)?;
        let [b, t, v] = logits.dims();
        // [batch, time, vocab] -> the last position.
        Ok(Some((
            logits.slice([0..b, t - 1..t, 0..v]).reshape([b, v]),
            state,
        )))
    }

    /// Keeps the state's batch rows `indices`, in that order (beam search).
    fn reorder_state(&self, state: &mut Self::State, indices: &[usize]) -> Result<()>;
}

/// An [`Error::Data`] unless there is at least one prompt and every prompt has a token.
pub(crate) fn check_prompts(what: &str, prompts: &[&[u32]]) -> Result<()> {
    if prompts.is_empty() {
        return Err(Error::Data(format!("{what}: no prompts")));
    }
    match prompts.iter().position(|p| p.is_empty()) {
        Some(r) => Err(Error::Data(format!(
            "{what}: prompt {r} is empty (every prompt needs at least one token)"
        ))),
        None => Ok(()),
    }
}

/// An [`Error::Index`] naming the first of `indices` outside `0..rows`; none may be empty.
pub(crate) fn check_row_indices(what: &str, indices: &[usize], rows: usize) -> Result<()> {
    if indices.is_empty() {
        return Err(Error::Data(format!(
            "{what}: no indices (at least one row must be kept)"
        )));
    }
    match indices.iter().find(|&&i| i >= rows) {
        Some(&bad) => Err(Error::Index {
            what: what.to_string(),
            index: bad as i64,
            len: rows,
        }),
        None => Ok(()),
    }
}

/// Batch-row indices as an Int tensor on `device`.
pub(crate) fn index_tensor<B: Backend>(indices: &[usize], device: &B::Device) -> Tensor<B, 1, Int> {
    let data: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
    Tensor::from_data(TensorData::new(data, [indices.len()]), device)
}

impl<B: Backend> LanguageModel<B> for Gpt<B> {
    type State = GptCache<B>;

    fn vocab_size(&self) -> usize {
        Gpt::vocab_size(self)
    }

    fn max_len(&self) -> Option<usize> {
        Some(self.block_size())
    }

    fn logits(&self, ids: Tensor<B, 2, Int>) -> Result<Tensor<B, 3>> {
        self.forward(ids)
    }

    fn logits_padded(
        &self,
        ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
    ) -> Result<Tensor<B, 3>> {
        let pad = attention_mask.clone().equal_elem(0);
        let logits = self.forward_padded(ids, attention_mask, None)?;
        // [B, T] -> [B, T, 1] -> [B, T, V]: zeros at padding, as the trait promises.
        let dims = logits.dims();
        Ok(logits.mask_fill(pad.unsqueeze_dim::<3>(2).expand(dims), 0.0))
    }

    fn init_state(&self, batch: usize, device: &B::Device) -> GptCache<B> {
        self.new_cache(batch, device)
    }

    fn step(&self, ids: Tensor<B, 2, Int>, state: &mut GptCache<B>) -> Result<Tensor<B, 3>> {
        self.forward_cached(ids, state)
    }

    fn step_ids(
        &self,
        ids: &[u32],
        batch: usize,
        state: &mut GptCache<B>,
        _: &B::Device,
    ) -> Result<Tensor<B, 3>> {
        self.forward_cached_ids(ids, batch, state)
    }

    fn prefill(&self, prompts: &[&[u32]], device: &B::Device) -> Result<Option<(Tensor<B, 2>, GptCache<B>)>> {
        let mut cache = self.new_cache(prompts.len(), device);
        let logits = self.forward_prompts(prompts, &mut cache)?;
        Ok(Some((logits, cache)))
    }

    fn reorder_state(&self, state: &mut GptCache<B>, indices: &[usize]) -> Result<()> {
        let device = self.wte.val().device();
        state.reorder(index_tensor::<B>(indices, &device))
    }
}

/// The state of an [`RnnLm`] during decoding: `None` before the first token.
pub type RnnLmState<B> = Option<RecurrentState<B>>;

impl<B: Backend> LanguageModel<B> for RnnLm<B> {
    type State = RnnLmState<B>;

    fn vocab_size(&self) -> usize {
        RnnLm::vocab_size(self)
    }

    fn max_len(&self) -> Option<usize> {
        None
    }

    fn logits(&self, ids: Tensor<B, 2, Int>) -> Result<Tensor<B, 3>> {
        Ok(self.forward(ids, None)?.0)
    }

    fn init_state(&self, _batch: usize, _device: &B::Device) -> RnnLmState<B> {
        None
    }

    fn step(&self, ids: Tensor<B, 2, Int>, state: &mut RnnLmState<B>) -> Result<Tensor<B, 3>> {
        let (logits, next) = self.forward(ids, state.take())?;
        *state = Some(next);
        Ok(logits)
    }

    fn step_ids(
        &self,
        ids: &[u32],
        batch: usize,
        state: &mut RnnLmState<B>,
        _: &B::Device,
    ) -> Result<Tensor<B, 3>> {
        let (logits, next) = self.forward_ids(ids, batch, state.take())?;
        *state = Some(next);
        Ok(logits)
    }

    fn prefill(&self, prompts: &[&[u32]], _: &B::Device) -> Result<Option<(Tensor<B, 2>, RnnLmState<B>)>> {
        let (logits, state) = self.forward_prompts(prompts)?;
        Ok(Some((logits, Some(state))))
    }

    fn reorder_state(&self, state: &mut RnnLmState<B>, indices: &[usize]) -> Result<()> {
        // Checked before the state is taken, so a bad index leaves it as it was.
        if let Some(s) = state.as_ref() {
            check_row_indices("RnnLm state reorder", indices, s.batch())?;
        }
        if let Some(s) = state.take() {
            *state = Some(s.select(indices)?);
        }
        Ok(())
    }
}
