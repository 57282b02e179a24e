//! [`EncoderTokenizer::train_wordpiece`]: a BERT WordPiece tokenizer trained on a corpus
//! through Hugging Face `tokenizers` (BERT's normaliser and pre-tokeniser, `[CLS] a [SEP] b
//! [SEP]` templates), and [`EncoderTokenizer::save_pretrained`], so that a model trained from
//! scratch has a tokenizer transformers can load.

use std::path::Path;

use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::models::wordpiece::{WordPiece, WordPieceTrainerBuilder};
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, Tokenizer as HfTokenizer};

use super::encoder_tokenizer::EncoderTokenizer;
use super::tokenizer::Tokenizer;
use crate::{Error, Result};

/// BERT's special tokens, in the order they take the first ids.
const SPECIALS: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

impl EncoderTokenizer {
    /// Trains an uncased BERT WordPiece tokenizer of at most `vocab_size` tokens on `texts`
    /// (special tokens `[PAD]` 0, `[UNK]` 1, `[CLS]` 2, `[SEP]` 3, `[MASK]` 4), as
    /// `tokenizers`' `WordPieceTrainer` with `BertNormalizer(lowercase)` and `BertPreTokenizer`.
    pub fn train_wordpiece(texts: &[&str], vocab_size: usize) -> Result<Self> {
        if texts.is_empty() || vocab_size <= SPECIALS.len() {
            return Err(Error::Config {
                module: "EncoderTokenizer::train_wordpiece",
                message: format!(
                    "needs texts and a vocab_size above the {} special tokens, found {} texts and {vocab_size}",
                    SPECIALS.len(),
                    texts.len()
                ),
            });
        }
        let err = |e: tokenizers::Error| Error::Tokenizer(format!("WordPiece training failed: {e}"));
        let mut tokenizer = HfTokenizer::new(
            WordPiece::builder()
                .unk_token("[UNK]".into())
                .build()
                .map_err(err)?,
        );
        tokenizer
            .with_normalizer(Some(BertNormalizer::new(true, true, None, true)))
            .with_pre_tokenizer(Some(BertPreTokenizer))
            .with_decoder(Some(WordPieceDecoder::default()));
        let trainer = WordPieceTrainerBuilder::new()
            .vocab_size(vocab_size)
            .show_progress(false)
            .special_tokens(SPECIALS.iter().map(|t| AddedToken::from(*t, true)).collect())
            .build();
        super::hf_calls::train(&mut tokenizer, trainer, texts.iter().copied(), "WordPiece")?;
        let id = |t: &str| {
            tokenizer
                .token_to_id(t)
                .ok_or_else(|| Error::Tokenizer(format!("{t} is missing after training")))
        };
        let template = TemplateProcessing::builder()
            .try_single("[CLS] $A [SEP]")
            .map_err(|e| Error::Tokenizer(e.to_string()))?
            .try_pair("[CLS] $A [SEP] $B:1 [SEP]:1")
            .map_err(|e| Error::Tokenizer(e.to_string()))?
            .special_tokens(vec![("[CLS]", id("[CLS]")?), ("[SEP]", id("[SEP]")?)])
            .build()
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        tokenizer.with_post_processor(Some(template));
        Self::from_parts(tokenizer, &serde_json::Value::Null).map_err(Error::Tokenizer)
    }

    /// Writes `tokenizer.json` and a `tokenizer_config.json` naming the special tokens, which
    /// [`EncoderTokenizer::from_pretrained`] and transformers' `AutoTokenizer.from_pretrained` load.
    pub fn save_pretrained(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        let fail = |message: String| Error::Save {
            path: dir.to_path_buf(),
            message,
        };
        std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
        let json = self.inner().to_string(true).map_err(|e| fail(e.to_string()))?;
        crate::io::atomic_write(&dir.join("tokenizer.json"), json.as_bytes())?;
        let name = |id: Option<u32>| {
            id.and_then(|i| self.id_to_token(i))
                .map_or(serde_json::Value::Null, Into::into)
        };
        let s = self.special_tokens();
        let config = serde_json::json!({
            "tokenizer_class": "PreTrainedTokenizerFast",
            "pad_token": name(s.pad),
            "unk_token": name(s.unk),
            "cls_token": name(s.bos),
            "sep_token": name(s.eos),
            "mask_token": name(self.mask_token_id()),
            "model_max_length": 512,
        });
        crate::io::atomic_write(&dir.join("tokenizer_config.json"), config.to_string().as_bytes())
    }
}
