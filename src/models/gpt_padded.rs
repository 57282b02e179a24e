//! [`Gpt::forward_padded`]: a batch of sequences of different lengths, padded on either side,
//! with an attention mask and position ids, as transformers' GPT-2 takes them; and
//! [`Gpt::forward_prompts`], the same padding kept in a KV cache for batched generation.

use burn::tensor::{Bool, Int, Tensor, TensorData};

use super::{Gpt, GptCache};
use crate::nn::{AttentionMasks, KvCache};
use crate::{Backend, Error, Result};

impl<B: Backend> Gpt<B> {
    /// Logits of a padded batch: `attention_mask` is 1 at real tokens and 0 at padding (left or
    /// right), as transformers' `attention_mask`; padded keys are never attended to. Positions
    /// are `position_ids` when given, else derived from the mask as transformers' `generate`
    /// does (`cumsum(mask) - 1`, padding at 1), so that every real position gets the logits of
    /// its sequence run alone. The logits at padded positions are meaningless (finite).
    ///
    /// # Shapes
    /// - `ids`, `attention_mask`, `position_ids`: `[batch, time]`, `time <= block_size`
    /// - output: `[batch, time, vocab_size]`
    pub fn forward_padded(
        &self,
        ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
        position_ids: Option<Tensor<B, 2, Int>>,
    ) -> Result<Tensor<B, 3>> {
        let [batch, time] = ids.dims();
        let device = ids.device();
        let shape_err = |what: &str, found: &[usize]| {
            Error::shape(
                format!("Gpt::forward_padded {what}"),
                format!("[{batch}, {time}] (the ids' shape)"),
                found,
            )
        };
        if attention_mask.dims() != [batch, time] {
            return Err(shape_err("attention_mask", &attention_mask.dims()));
        }
        if time > self.block_size {
            return Err(Error::TooLong {
                found: time,
                offset: 0,
                max: self.block_size,
            });
        }
        let mask: Vec<i64> = attention_mask
            .into_data()
            .convert::<i64>()
            .into_vec()
            .unwrap_or_default();
        if let Some(bad) = mask.iter().find(|&&m| m != 0 && m != 1) {
            return Err(Error::Data(format!(
                "Gpt::forward_padded attention_mask must hold 0 (padding) or 1 (token), found {bad}"
            )));
        }
        let positions: Vec<i64> = match position_ids {
            Some(p) => {
                if p.dims() != [batch, time] {
                    return Err(shape_err("position_ids", &p.dims()));
                }
                p.into_data().convert::<i64>().into_vec().unwrap_or_default()
            }
            // transformers' generate: cumsum(mask) - 1, with padding set to position 1.
            None => mask
                .chunks(time.max(1))
                .flat_map(|row| {
                    let mut seen = 0;
                    row.iter()
                        .map(move |&m| {
                            seen += m;
                            if m == 0 { 1 } else { seen - 1 }
                        })
                        .collect::<Vec<_>>()
                })
                .collect(),
        };
        if let Some(&bad) = positions
            .iter()
            .find(|&&p| p < 0 || p as usize >= self.block_size)
        {
            return Err(Error::Index {
                what: "Gpt::forward_padded position id".into(),
                index: bad,
                len: self.block_size,
            });
        }
        let tokens = crate::nn::lookup("Gpt ids", &self.wte.val(), ids)?;
        let pad = bool_mask::<B>(mask.iter().map(|&m| m == 0).collect(), [batch, time], &device);
        let x = self
            .drop
            .forward(tokens + self.positions(positions, [batch, time]));
        self.blocks_padded(x, pad.clone(), Some(pad), None)
    }

    /// Feeds prompts of different lengths (none empty) as one batch into `cache`, which must be
    /// empty and made for `prompts.len()` rows: they are padded on the left to the longest, and
    /// the cache remembers the padding, so that [`forward_cached`](Self::forward_cached) goes on
    /// with one new token per row, each at its own position. Returns the logits that follow each
    /// prompt, as if it had been run alone. Prompts of one length need no padding.
    ///
    /// # Shapes
    /// - `prompts`: `batch` sequences of at most `block_size` ids
    /// - output: `[batch, vocab_size]`
    pub fn forward_prompts(&self, prompts: &[&[u32]], cache: &mut GptCache<B>) -> Result<Tensor<B, 2>> {
        if !cache.is_empty() {
            return Err(Error::Data(format!(
                "Gpt::forward_prompts needs an empty cache, found one holding {} positions",
                cache.len()
            )));
        }
        super::check_prompts("Gpt::forward_prompts", prompts)?;
        let batch = prompts.len();
        let longest = prompts.iter().map(|p| p.len()).max().unwrap_or(0);
        // Rows padded on the left with id 0 (any valid id: padded keys are masked).
        let ids: Vec<u32> = prompts
            .iter()
            .flat_map(|p| std::iter::repeat_n(0, longest - p.len()).chain(p.iter().copied()))
            .collect();
        cache.left_pad = prompts.iter().map(|p| longest - p.len()).collect();
        if cache.left_pad.iter().all(|&p| p == 0) {
            cache.left_pad.clear();
        }
        let logits = match self.forward_cached_ids(&ids, batch, cache) {
            Ok(logits) => logits,
            Err(e) => {
                cache.reset();
                return Err(e);
            }
        };
        // [batch, longest, vocab] -> the last position, every prompt's last token.
        Ok(logits
            .slice([0..batch, longest - 1..longest, 0..self.vocab_size])
            .reshape([batch, self.vocab_size]))
    }

    /// The cached forward over a left-padded cache (`cache.left_pad` set).
    pub(super) fn decode_padded(
        &self,
        ids: Tensor<B, 2, Int>,
        cache: &mut GptCache<B>,
        checked: bool,
    ) -> Result<Tensor<B, 3>> {
        let [batch, new] = ids.dims();
        let offset = cache.len();
        if offset + new > self.block_size {
            return Err(Error::TooLong {
                found: new,
                offset,
                max: self.block_size,
            });
        }
        if cache.left_pad.len() != batch {
            return Err(Error::shape(
                "Gpt cached ids",
                format!("[{}, new] (the padded cache's rows)", cache.left_pad.len()),
                &ids.dims(),
            ));
        }
        let device = ids.device();
        let tokens = if checked {
            crate::nn::lookup_checked(&self.wte.val(), ids)
        } else {
            crate::nn::lookup("Gpt ids", &self.wte.val(), ids)?
        };
        let pads = &cache.left_pad;
        // Row r's token at cache position p sits at position p - pad[r] of its sequence.
        let positions: Vec<i64> = pads
            .iter()
            .flat_map(|&pad| (offset..offset + new).map(move |p| p.saturating_sub(pad) as i64))
            .collect();
        let keys: Vec<bool> = pads
            .iter()
            .flat_map(|&pad| (0..offset + new).map(move |p| p < pad))
            .collect();
        let queries: Vec<bool> = pads
            .iter()
            .flat_map(|&pad| (offset..offset + new).map(move |p| p < pad))
            .collect();
        let padded_queries = queries
            .iter()
            .any(|&q| q)
            .then(|| bool_mask::<B>(queries, [batch, new], &device));
        let key_padding = bool_mask::<B>(keys, [batch, offset + new], &device);
        let x = self
            .drop
            .forward(tokens + self.positions(positions, [batch, new]));
        let layers = cache.layers.iter_mut().collect();
        self.blocks_padded(x, key_padding, padded_queries, Some(layers))
    }

    /// `wpe` rows at `positions` (checked to lie below `block_size` by the callers).
    fn positions(&self, positions: Vec<i64>, [batch, time]: [usize; 2]) -> Tensor<B, 3> {
        let table = self.wpe.weight.val();
        let d = table.dims()[1];
        let positions =
            Tensor::<B, 1, Int>::from_data(TensorData::new(positions, [batch * time]), &table.device());
        // [B*T] -> [B*T, D] -> [B, T, D]
        table.select(0, positions).reshape([batch, time, d])
    }

    /// The blocks with padded keys masked (cached when `caches` is given), then the head.
    /// Padded query rows are zeroed after each block, so that a query with no visible key (left
    /// padding) cannot carry a NaN into later layers or the cache.
    fn blocks_padded(
        &self,
        mut x: Tensor<B, 3>,
        key_padding: Tensor<B, 2, Bool>,
        padded_queries: Option<Tensor<B, 2, Bool>>,
        caches: Option<Vec<&mut KvCache<B>>>,
    ) -> Result<Tensor<B, 3>> {
        let dims = x.dims();
        let masks = AttentionMasks {
            key_padding: Some(key_padding),
            causal: true,
            ..Default::default()
        };
        // [B, T] -> [B, T, 1] -> [B, T, D]
        let rows = padded_queries.map(|q| q.unsqueeze_dim::<3>(2).expand(dims));
        let mut caches = caches.map(Vec::into_iter);
        for block in &self.h {
            x = match caches.as_mut().and_then(Iterator::next) {
                Some(cache) => block.forward_cached(x, cache, &masks)?,
                None => block.forward(x, &masks)?,
            };
            if let Some(rows) = &rows {
                x = x.mask_fill(rows.clone(), 0.0);
            }
        }
        Ok(self.head(x))
    }
}

/// A `[batch, time]` boolean mask from host values, row after row.
fn bool_mask<B: Backend>(values: Vec<bool>, shape: [usize; 2], device: &B::Device) -> Tensor<B, 2, Bool> {
    Tensor::from_data(TensorData::new(values, shape), device)
}
