//! [`BertForMaskedLM::fill_mask`]: transformers' `fill-mask` pipeline: the most likely tokens
//! at each mask token of a text.

use burn::tensor::activation::softmax;

use super::mlm::BertForMaskedLM;
use crate::data::{EncodeOptions, EncoderTokenizer, Tokenizer};
use crate::{Backend, Error, Result};

/// One candidate for a masked position.
#[derive(Debug, Clone, PartialEq)]
pub struct MaskCandidate {
    /// The token's id.
    pub token_id: u32,
    /// The token as the vocabulary spells it.
    pub token: String,
    /// Its probability at the masked position (softmax over the vocabulary).
    pub score: f32,
    /// The text decoded with the candidate in the mask's place (other masks left as they are).
    pub sequence: String,
}

impl<B: Backend> BertForMaskedLM<B> {
    /// For each mask token of `text` (`[MASK]`, `<mask>`), the `top_k` most likely tokens,
    /// best first, as transformers' `pipeline("fill-mask", top_k=...)`. A text without a mask
    /// token, a tokenizer without one, or `top_k = 0` is an error.
    pub fn fill_mask(
        &self,
        tokenizer: &EncoderTokenizer,
        text: &str,
        top_k: usize,
    ) -> Result<Vec<Vec<MaskCandidate>>> {
        let mask = tokenizer.mask_token_id().ok_or_else(|| Error::Config {
            module: "fill_mask",
            message: "the tokenizer has no mask token ([MASK] or <mask>)".into(),
        })?;
        if top_k == 0 {
            return Err(Error::Config {
                module: "fill_mask",
                message: "top_k must be positive, found 0".into(),
            });
        }
        let enc = tokenizer.encode_batch(&[text], &EncodeOptions::default())?;
        let ids = &enc.batch.input_ids;
        let positions: Vec<usize> = (0..ids.len()).filter(|&p| ids[p] == mask).collect();
        if positions.is_empty() {
            let spelling = tokenizer.id_to_token(mask).unwrap_or_default();
            return Err(Error::Data(format!(
                "fill_mask: the text has no mask token {spelling}: {text:?}"
            )));
        }
        let logits = self.forward(&enc.batch)?;
        let [_, len, vocab] = logits.dims();
        // [1, T, V] -> [T, V] -> probabilities per position.
        let probs: Vec<f32> = softmax(logits.reshape([len, vocab]), 1)
            .into_data()
            .convert::<f32>()
            .into_vec()
            .map_err(|e| Error::Data(format!("cannot read the probabilities back: {e:?}")))?;
        positions
            .iter()
            .map(|&p| {
                let row = &probs[p * vocab..(p + 1) * vocab];
                let mut order: Vec<usize> = (0..vocab).collect();
                order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
                order
                    .into_iter()
                    .take(top_k)
                    .map(|t| {
                        let mut filled = ids.clone();
                        filled[p] = t as u32;
                        Ok(MaskCandidate {
                            token_id: t as u32,
                            token: tokenizer.id_to_token(t as u32).unwrap_or_default(),
                            score: row[t],
                            sequence: tokenizer.decode(&filled)?,
                        })
                    })
                    .collect()
            })
            .collect()
    }
}
