//! The checkpoint key names of the BERT family, written once per family: loading, saving,
//! `named_parameters` and `named_grads` all come from these visits.

use super::classify::{BertForSequenceClassification, BertForTokenClassification};
use super::config::EncoderFamily;
use super::layer::BertLayer;
use super::mlm::BertForMaskedLM;
use super::model::BertModel;
use crate::io::{TorchWeights, WeightPath};
use crate::{Backend, Result};

impl<B: Backend> TorchWeights for BertModel<B> {
    /// `BertModel` / `RobertaModel`: `embeddings.*`, `encoder.layer.{i}.*`, `pooler.dense.*`;
    /// `DistilBertModel`: `embeddings.*`, `transformer.layer.{i}.*`.
    fn visit_weights(&mut self, w: &mut WeightPath<'_, '_>) -> Result<()> {
        let family = self.config().family;
        let mut e = w.pp("embeddings");
        let emb = &mut self.embeddings;
        e.pp("word_embeddings")
            .tensor("weight", &mut emb.word_embeddings)?;
        e.pp("position_embeddings")
            .tensor("weight", &mut emb.position_embeddings)?;
        if let Some(types) = &mut emb.token_type_embeddings {
            e.pp("token_type_embeddings").tensor("weight", types)?;
        }
        e.module("LayerNorm", &mut emb.layer_norm)?;
        // Index buffers some checkpoints carry.
        e.buffer("position_ids");
        e.buffer("token_type_ids");
        let layers = match family {
            EncoderFamily::DistilBert => "transformer.layer",
            _ => "encoder.layer",
        };
        for (i, layer) in self.layers.iter_mut().enumerate() {
            let mut l = w.pp(format!("{layers}.{i}"));
            match family {
                EncoderFamily::DistilBert => distilbert_layer(&mut l, layer)?,
                _ => bert_layer(&mut l, layer)?,
            }
        }
        if let Some(pooler) = &mut self.pooler {
            w.pp("pooler").module("dense", pooler)?;
        }
        Ok(())
    }
}

/// BERT's and RoBERTa's layer: `attention.self.{query,key,value}`, `attention.output.dense`,
/// `attention.output.LayerNorm`, `intermediate.dense`, `output.dense`, `output.LayerNorm`.
fn bert_layer<B: Backend>(l: &mut WeightPath<'_, '_>, layer: &mut BertLayer<B>) -> Result<()> {
    let mut attention = l.pp("attention");
    let a = &mut layer.attention;
    let mut qkv = attention.pp("self");
    qkv.stacked(
        &["query.weight", "key.weight", "value.weight"],
        &mut a.in_proj_weight,
    )?;
    qkv.stacked_optional(&["query.bias", "key.bias", "value.bias"], &mut a.in_proj_bias)?;
    let mut out = attention.pp("output");
    out.pp("dense").tensor("weight", &mut a.out_proj_weight)?;
    out.pp("dense").optional("bias", &mut a.out_proj_bias)?;
    out.module("LayerNorm", &mut layer.attention_norm)?;
    l.pp("intermediate").module("dense", &mut layer.intermediate)?;
    let mut output = l.pp("output");
    output.module("dense", &mut layer.output)?;
    output.module("LayerNorm", &mut layer.output_norm)
}

/// DistilBERT's layer: `attention.{q_lin,k_lin,v_lin,out_lin}`, `sa_layer_norm`, `ffn.lin1`,
/// `ffn.lin2`, `output_layer_norm`.
fn distilbert_layer<B: Backend>(l: &mut WeightPath<'_, '_>, layer: &mut BertLayer<B>) -> Result<()> {
    let mut attention = l.pp("attention");
    let a = &mut layer.attention;
    attention.stacked(
        &["q_lin.weight", "k_lin.weight", "v_lin.weight"],
        &mut a.in_proj_weight,
    )?;
    attention.stacked_optional(&["q_lin.bias", "k_lin.bias", "v_lin.bias"], &mut a.in_proj_bias)?;
    attention.pp("out_lin").tensor("weight", &mut a.out_proj_weight)?;
    attention.pp("out_lin").optional("bias", &mut a.out_proj_bias)?;
    l.module("sa_layer_norm", &mut layer.attention_norm)?;
    let mut ffn = l.pp("ffn");
    ffn.module("lin1", &mut layer.intermediate)?;
    ffn.module("lin2", &mut layer.output)?;
    l.module("output_layer_norm", &mut layer.output_norm)
}

impl<B: Backend> TorchWeights for BertForMaskedLM<B> {
    /// `{family}.*` and BERT's `cls.predictions.*`, RoBERTa's `lm_head.*` or DistilBERT's
    /// `vocab_transform`, `vocab_layer_norm`, `vocab_projector`.
    fn visit_weights(&mut self, w: &mut WeightPath<'_, '_>) -> Result<()> {
        let family = self.bert.config().family;
        let body = family.prefix();
        w.module(body, &mut self.bert)?;
        let tied_to = format!("{body}.embeddings.word_embeddings.weight");
        let (transform, norm, decoder, bias) = match family {
            EncoderFamily::Bert => (
                "cls.predictions.transform.dense",
                "cls.predictions.transform.LayerNorm",
                "cls.predictions.decoder",
                "cls.predictions.bias",
            ),
            EncoderFamily::Roberta => (
                "lm_head.dense",
                "lm_head.layer_norm",
                "lm_head.decoder",
                "lm_head.bias",
            ),
            EncoderFamily::DistilBert => (
                "vocab_transform",
                "vocab_layer_norm",
                "vocab_projector",
                "vocab_projector.bias",
            ),
        };
        w.module(transform, &mut self.transform)?;
        w.module(norm, &mut self.transform_norm)?;
        let weight = format!("{decoder}.weight");
        match &mut self.decoder {
            Some(d) => w.tensor(&weight, d)?,
            None => w.tied(&weight, &self.bert.embeddings.word_embeddings, &tied_to)?,
        }
        w.tensor(bias, &mut self.decoder_bias)?;
        // BERT and RoBERTa also carry the same bias as `decoder.bias` in older checkpoints.
        if family != EncoderFamily::DistilBert {
            w.tied(&format!("{decoder}.bias"), &self.decoder_bias, bias)?;
        }
        Ok(())
    }
}

impl<B: Backend> TorchWeights for BertForSequenceClassification<B> {
    /// `{family}.*` and BERT's `classifier`, RoBERTa's `classifier.dense` and
    /// `classifier.out_proj`, or DistilBERT's `pre_classifier` and `classifier`.
    fn visit_weights(&mut self, w: &mut WeightPath<'_, '_>) -> Result<()> {
        let family = self.bert.config().family;
        w.module(family.prefix(), &mut self.bert)?;
        match (family, &mut self.pre_classifier) {
            (EncoderFamily::Roberta, Some(dense)) => {
                w.pp("classifier").module("dense", dense)?;
                w.pp("classifier").module("out_proj", &mut self.classifier)
            }
            (_, pre) => {
                if let Some(pre) = pre {
                    w.module("pre_classifier", pre)?;
                }
                w.module("classifier", &mut self.classifier)
            }
        }
    }
}

impl<B: Backend> TorchWeights for BertForTokenClassification<B> {
    /// `{family}.*` and `classifier`.
    fn visit_weights(&mut self, w: &mut WeightPath<'_, '_>) -> Result<()> {
        w.module(self.bert.config().family.prefix(), &mut self.bert)?;
        w.module("classifier", &mut self.classifier)
    }
}
