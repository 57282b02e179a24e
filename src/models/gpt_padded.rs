//! [`Gpt::forward_padded`]: a batch of sequences of different lengths, padded on either side,
//! with an attention mask and position ids, as transformers' GPT-2 takes them.

use burn::tensor::{Bool, Int, Tensor, TensorData};

use super::Gpt;
use crate::nn::AttentionMasks;
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
        let d = tokens.dims()[2];
        let positions = Tensor::<B, 1, Int>::from_data(TensorData::new(positions, [batch * time]), &device);
        // [B*T] -> [B*T, D] -> [B, T, D]
        let wpe = self
            .wpe
            .weight
            .val()
            .select(0, positions)
            .reshape([batch, time, d]);
        let mut x = self.drop.forward(tokens + wpe);
        let pad = Tensor::<B, 2, Bool>::from_data(
            TensorData::new(mask.iter().map(|&m| m == 0).collect::<Vec<_>>(), [batch, time]),
            &device,
        );
        let masks = AttentionMasks {
            key_padding: Some(pad.clone()),
            causal: true,
            ..Default::default()
        };
        // [B, T] -> [B, T, 1] -> [B, T, D]: padded positions' states, zeroed after each block so
        // that a query with no visible key (left padding) cannot carry a NaN into later layers.
        let pad_rows = pad.unsqueeze_dim::<3>(2).expand([batch, time, d]);
        for block in &self.h {
            x = block.forward(x, &masks)?.mask_fill(pad_rows.clone(), 0.0);
        }
        Ok(self.head(x))
    }
}
