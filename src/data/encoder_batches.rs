//! [`EncoderBatches`]: examples for a BERT-family model, encoded once by an
//! [`EncoderTokenizer`] and served as padded [`EncoderBatch`]es: sequence labels, token labels,
//! or masked-language-model targets drawn afresh for every batch (dynamic masking, 80/10/10, as
//! transformers' `DataCollatorForLanguageModeling`).

use super::encoded::EncodedBatch;
use super::encoder_tokenizer::{EncodeOptions, EncoderTokenizer, Padding};
use super::order::batches;
use super::{Batches, SplitMix64, Tokenizer};
use crate::{Error, Result};

/// One batch: the encoded rows and their labels.
#[derive(Debug, Clone, PartialEq)]
pub struct EncoderBatch {
    /// Ids, attention mask and token types, padded to the batch's longest row.
    pub input: EncodedBatch,
    /// The labels.
    pub labels: EncoderLabels,
}

/// The labels of an [`EncoderBatch`].
#[derive(Debug, Clone, PartialEq)]
pub enum EncoderLabels {
    /// A class per row.
    Classes(Vec<i64>),
    /// `num_labels` values per row (multi-label targets or regression).
    Values(Vec<f32>),
    /// A label per position, -100 where no loss is taken (padding, special tokens, sub-word
    /// continuations, unmasked tokens).
    Tokens(Vec<i64>),
}

/// Per-example labels as stored.
#[derive(Debug, Clone)]
enum Stored {
    Classes(Vec<i64>),
    Values(Vec<Vec<f32>>),
    Tokens(Vec<Vec<i64>>),
    /// Masked-LM: targets are drawn per batch.
    Masked(Masking),
}

/// transformers' `DataCollatorForLanguageModeling` settings.
#[derive(Debug, Clone, Copy)]
struct Masking {
    probability: f64,
    mask_id: u32,
    vocab_size: u32,
}

/// One encoded example: ids, token types and which positions are special tokens.
#[derive(Debug, Clone)]
struct Row {
    ids: Vec<u32>,
    types: Vec<u32>,
    special: Vec<bool>,
}

/// Encoded examples served as [`EncoderBatch`]es; see the module documentation.
#[derive(Debug, Clone)]
pub struct EncoderBatches {
    rows: Vec<Row>,
    labels: Stored,
    batch_size: usize,
    pad_id: u32,
    shuffle: bool,
    bucket: bool,
}

/// Options for encoding one example at a time (no padding), truncated to `max_length`.
fn options(max_length: usize) -> EncodeOptions {
    EncodeOptions {
        max_length: Some(max_length),
        padding: Padding::Longest,
        add_special_tokens: true,
    }
}

impl EncoderBatches {
    /// Texts (or text pairs, when `seconds` is given) with a class each, for a sequence
    /// classifier; each encoded with special tokens and truncated to `max_length`. A class
    /// `>= num_labels` is an error naming the example.
    pub fn sequence_classification(
        tokenizer: &EncoderTokenizer,
        texts: &[&str],
        seconds: Option<&[&str]>,
        classes: &[usize],
        num_labels: usize,
        max_length: usize,
        batch_size: usize,
    ) -> Result<Self> {
        if classes.len() != texts.len() {
            return Err(Error::Data(format!(
                "EncoderBatches: {} texts but {} labels",
                texts.len(),
                classes.len()
            )));
        }
        if let Some((i, c)) = classes.iter().enumerate().find(|(_, c)| **c >= num_labels) {
            return Err(Error::Data(format!(
                "example {i}: class {c} is outside 0..{num_labels}"
            )));
        }
        let rows = encode_rows(tokenizer, texts, seconds, max_length)?;
        Self::new(
            rows,
            Stored::Classes(classes.iter().map(|&c| c as i64).collect()),
            tokenizer,
            batch_size,
        )
    }

    /// Texts with `num_labels` values each (multi-label 0/1 targets, or regression targets).
    pub fn sequence_values(
        tokenizer: &EncoderTokenizer,
        texts: &[&str],
        values: &[Vec<f32>],
        max_length: usize,
        batch_size: usize,
    ) -> Result<Self> {
        let width = values.first().map_or(0, Vec::len);
        if values.len() != texts.len() || width == 0 || values.iter().any(|v| v.len() != width) {
            return Err(Error::Data(format!(
                "EncoderBatches: {} texts need as many label rows of one positive width",
                texts.len()
            )));
        }
        let rows = encode_rows(tokenizer, texts, None, max_length)?;
        Self::new(rows, Stored::Values(values.to_vec()), tokenizer, batch_size)
    }

    /// Pre-split words with a label per word, for a token classifier: the first sub-token of
    /// each word takes the word's label and the others -100 (transformers' token-classification
    /// recipe); special tokens -100. A label `>= num_labels` is an error naming the example.
    pub fn token_classification(
        tokenizer: &EncoderTokenizer,
        words: &[Vec<String>],
        labels: &[Vec<usize>],
        num_labels: usize,
        max_length: usize,
        batch_size: usize,
    ) -> Result<Self> {
        if words.len() != labels.len() {
            return Err(Error::Data(format!(
                "EncoderBatches: {} sentences but {} label rows",
                words.len(),
                labels.len()
            )));
        }
        let mut rows = Vec::with_capacity(words.len());
        let mut targets = Vec::with_capacity(words.len());
        for (i, (w, l)) in words.iter().zip(labels).enumerate() {
            if w.len() != l.len() {
                return Err(Error::Data(format!(
                    "example {i}: {} words but {} labels",
                    w.len(),
                    l.len()
                )));
            }
            if let Some(bad) = l.iter().find(|&&c| c >= num_labels) {
                return Err(Error::Data(format!(
                    "example {i}: label {bad} is outside 0..{num_labels}"
                )));
            }
            let (row, word_ids) = tokenizer.encode_words(w, max_length)?;
            let mut previous = None;
            targets.push(
                word_ids
                    .iter()
                    .map(|&word| {
                        let first = word.is_some() && word != previous;
                        previous = word;
                        match word {
                            Some(wi) if first => l[wi as usize] as i64,
                            _ => -100,
                        }
                    })
                    .collect(),
            );
            rows.push(row);
        }
        let rows = rows
            .into_iter()
            .map(|(ids, types, special)| Row { ids, types, special })
            .collect();
        Self::new(rows, Stored::Tokens(targets), tokenizer, batch_size)
    }

    /// Texts for masked-language-model training: every batch masks each non-special token with
    /// probability `mlm_probability` (transformers' default 0.15), and of those puts the mask
    /// token in 80%, a random token in 10% and leaves 10% unchanged; the loss is taken at the
    /// chosen positions only. The draw depends on `(seed, epoch, batch)`, so a resumed run masks
    /// as the straight one did.
    pub fn masked_lm(
        tokenizer: &EncoderTokenizer,
        texts: &[&str],
        mlm_probability: f64,
        max_length: usize,
        batch_size: usize,
    ) -> Result<Self> {
        if !(mlm_probability > 0.0 && mlm_probability < 1.0) {
            return Err(Error::Config {
                module: "EncoderBatches::masked_lm",
                message: format!("mlm_probability must be in (0, 1), found {mlm_probability}"),
            });
        }
        let mask_id = tokenizer.mask_token_id().ok_or_else(|| Error::Config {
            module: "EncoderBatches::masked_lm",
            message: "the tokenizer has no mask token ([MASK] or <mask>)".into(),
        })?;
        let rows = encode_rows(tokenizer, texts, None, max_length)?;
        let masking = Masking {
            probability: mlm_probability,
            mask_id,
            vocab_size: tokenizer.vocab_size() as u32,
        };
        Self::new(rows, Stored::Masked(masking), tokenizer, batch_size)
    }

    fn new(rows: Vec<Row>, labels: Stored, tokenizer: &EncoderTokenizer, batch_size: usize) -> Result<Self> {
        if rows.is_empty() || batch_size == 0 {
            return Err(Error::Data(format!(
                "EncoderBatches: {} examples, batch size {batch_size}; both must be > 0",
                rows.len()
            )));
        }
        Ok(Self {
            rows,
            labels,
            batch_size,
            pad_id: tokenizer.special_tokens().pad.unwrap_or(0),
            shuffle: true,
            bucket: false,
        })
    }

    /// Shuffle each epoch (default true).
    pub fn with_shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }

    /// Group examples of similar lengths, so that batches pad little (default false).
    pub fn with_bucketing(mut self, bucket: bool) -> Self {
        self.bucket = bucket;
        self
    }

    /// The number of examples.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Never true (construction refuses an empty set).
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// Each text (or pair) encoded alone, unpadded.
fn encode_rows(
    tokenizer: &EncoderTokenizer,
    texts: &[&str],
    seconds: Option<&[&str]>,
    max_length: usize,
) -> Result<Vec<Row>> {
    if let Some(s) = seconds
        && s.len() != texts.len()
    {
        return Err(Error::Data(format!(
            "EncoderBatches: {} first texts but {} second texts",
            texts.len(),
            s.len()
        )));
    }
    (0..texts.len())
        .map(|i| {
            let enc = match seconds {
                Some(s) => tokenizer.encode_pairs(&[(texts[i], s[i])], &options(max_length))?,
                None => tokenizer.encode_batch(&texts[i..i + 1], &options(max_length))?,
            };
            let special = enc.word_ids[0].iter().map(Option::is_none).collect();
            Ok(Row {
                ids: enc.batch.input_ids,
                types: enc.batch.token_type_ids,
                special,
            })
        })
        .collect()
}

impl Batches<EncoderBatch> for EncoderBatches {
    fn num_batches(&self) -> usize {
        self.rows.len().div_ceil(self.batch_size)
    }

    fn get(&self, epoch: u64, index: usize, seed: u64) -> Result<EncoderBatch> {
        let lengths: Vec<usize> = self.rows.iter().map(|r| r.ids.len()).collect();
        let order = batches(&lengths, self.batch_size, self.shuffle, self.bucket, seed, epoch);
        let picked = order
            .get(index)
            .ok_or_else(|| Error::Data(format!("batch {index} of an epoch of {}", order.len())))?;
        let len = picked.iter().map(|&i| lengths[i]).max().unwrap_or(0);
        let mut input = EncodedBatch {
            batch: picked.len(),
            seq_len: len,
            input_ids: Vec::with_capacity(picked.len() * len),
            attention_mask: Vec::with_capacity(picked.len() * len),
            token_type_ids: Vec::with_capacity(picked.len() * len),
        };
        for &i in picked {
            let r = &self.rows[i];
            let pad = len - r.ids.len();
            input
                .input_ids
                .extend(r.ids.iter().copied().chain(std::iter::repeat_n(self.pad_id, pad)));
            input
                .attention_mask
                .extend(std::iter::repeat_n(1, r.ids.len()).chain(std::iter::repeat_n(0, pad)));
            input
                .token_type_ids
                .extend(r.types.iter().copied().chain(std::iter::repeat_n(0, pad)));
        }
        let labels = match &self.labels {
            Stored::Classes(c) => EncoderLabels::Classes(picked.iter().map(|&i| c[i]).collect()),
            Stored::Values(v) => {
                EncoderLabels::Values(picked.iter().flat_map(|&i| v[i].iter().copied()).collect())
            }
            Stored::Tokens(t) => EncoderLabels::Tokens(
                picked
                    .iter()
                    .flat_map(|&i| {
                        t[i].iter()
                            .copied()
                            .chain(std::iter::repeat_n(-100, len - t[i].len()))
                    })
                    .collect(),
            ),
            Stored::Masked(m) => {
                let special: Vec<bool> = picked
                    .iter()
                    .flat_map(|&i| {
                        let s = &self.rows[i].special;
                        s.iter().copied().chain(std::iter::repeat_n(true, len - s.len()))
                    })
                    .collect();
                let mut rng = SplitMix64::derive(seed, &[0x4D4C4D, epoch, index as u64]);
                EncoderLabels::Tokens(mask_tokens(&mut input.input_ids, &special, *m, &mut rng))
            }
        };
        Ok(EncoderBatch { input, labels })
    }
}

/// Masks `ids` in place as transformers' `torch_mask_tokens`; returns the labels (the original
/// id at chosen positions, -100 elsewhere). `special` marks positions never chosen.
fn mask_tokens(ids: &mut [u32], special: &[bool], m: Masking, rng: &mut SplitMix64) -> Vec<i64> {
    ids.iter_mut()
        .zip(special)
        .map(|(id, &skip)| {
            if skip || rng.next_f64() >= m.probability {
                return -100;
            }
            let original = *id as i64;
            let r = rng.next_f64();
            if r < 0.8 {
                *id = m.mask_id;
            } else if r < 0.9 {
                *id = rng.below(m.vocab_size as u64) as u32;
            }
            original
        })
        .collect()
}
