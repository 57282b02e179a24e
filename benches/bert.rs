//! A BERT-base-sized encoder (12 layers, 768 wide, 12 heads, vocabulary 30522), sequence 128,
//! batch 8: a fine-tuning step of `BertForSequenceClassification` (forward, cross-entropy,
//! backward, AdamW with the BERT recipe's groups) and inference (forward only, tokens per
//! second), against the same encoder built from burn's own `TransformerEncoder` (post-norm,
//! exact GELU, padding mask). `benches/torch_bert.py` runs transformers' `BertForSequenceClassification`
//! on the same shapes.
//!
//! ```text
//! cargo bench --bench bert --features flex              # about 10 minutes on 2 cores
//! cargo bench --bench bert --features flex -- infer     # a criterion filter
//! cargo bench --bench bert --features wgpu -- wgpu      # on a GPU (benches/torch_cuda.py bert)
//! ```

use std::time::Duration;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig as BurnCrossEntropy;
use burn::nn::transformer::{TransformerEncoder, TransformerEncoderConfig, TransformerEncoderInput};
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor, TensorData};
use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use ember_lm::data::EncodedBatch;
use ember_lm::models::bert::{BertConfig, SequenceLabels};
use ember_lm::optim::{DecayGroups, OptimizerConfig};

const VOCAB: usize = 30522;
const BATCH: usize = 8;
const SEQ: usize = 128;

/// BERT's encoder from burn's modules, as a burn user would write it (post-norm, exact GELU).
#[derive(Module, Debug)]
struct BurnBert<B: Backend> {
    tok: Embedding<B>,
    pos: Embedding<B>,
    ln: LayerNorm<B>,
    blocks: TransformerEncoder<B>,
    pooler: Linear<B>,
    head: Linear<B>,
}

impl<B: Backend> BurnBert<B> {
    fn new(device: &B::Device) -> Self {
        Self {
            tok: EmbeddingConfig::new(VOCAB, 768).init(device),
            pos: EmbeddingConfig::new(512, 768).init(device),
            ln: LayerNormConfig::new(768).init(device),
            blocks: TransformerEncoderConfig::new(768, 3072, 12, 12)
                .with_dropout(0.0)
                .init(device),
            pooler: LinearConfig::new(768, 768).init(device),
            head: LinearConfig::new(768, 2).init(device),
        }
    }

    fn forward(&self, ids: Tensor<B, 2, Int>, pad: Tensor<B, 2, Bool>) -> Tensor<B, 2> {
        let [b, t] = ids.dims();
        let device = ids.device();
        let positions = Tensor::<B, 1, Int>::arange(0..t as i64, &device)
            .reshape([1, t])
            .repeat_dim(0, b);
        let x = self
            .ln
            .forward(self.tok.forward(ids) + self.pos.forward(positions));
        let x = self.blocks.forward(TransformerEncoderInput::new(x).mask_pad(pad));
        let first = x.slice([0..b, 0..1, 0..768]).reshape([b, 768]);
        self.head.forward(self.pooler.forward(first).tanh())
    }
}

/// A batch of 8 rows of 128 random ids, the last rows padded a little, as real data is.
fn batch() -> EncodedBatch {
    let mut rng = ember_lm::data::SplitMix64::new(3);
    let lengths = [128, 128, 120, 110, 128, 96, 128, 100];
    let mut ids = Vec::new();
    let mut mask = Vec::new();
    for &n in &lengths {
        for p in 0..SEQ {
            ids.push(if p < n { 1000 + rng.below(20000) as u32 } else { 0 });
            mask.push(u32::from(p < n));
        }
    }
    EncodedBatch {
        batch: BATCH,
        seq_len: SEQ,
        token_type_ids: vec![0; ids.len()],
        input_ids: ids,
        attention_mask: mask,
    }
}

fn base() -> BertConfig {
    BertConfig::new()
        .with_hidden_dropout_prob(0.0)
        .with_attention_probs_dropout_prob(0.0)
}

fn run<B: ember_lm::TrainBackend>(c: &mut Criterion, backend: &str) {
    let device = B::Device::default();
    let input = batch();
    let labels = SequenceLabels::Classes((0..BATCH as i64).map(|i| i % 2).collect());
    let mut group = c.benchmark_group(format!("bert_base_train_step/{backend}"));
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(if backend == "wgpu" { 10 } else { 60 }));
    // Untimed steps first on the GPU: wgpu compiles and autotunes its kernels on the first calls.
    let warm = if backend == "wgpu" { 3 } else { 0 };
    let mut ours = Some(base().init_sequence_classification::<B>(&device).unwrap());
    let mut optim = OptimizerConfig::adamw()
        .with_lr(2e-5)
        .with_weight_decay(0.01)
        .with_decay_groups(DecayGroups::NoRank1)
        .init::<B, _>(ours.as_ref().unwrap())
        .unwrap();
    let mut step = || {
        let model = ours.take().unwrap();
        let loss = model.loss(model.forward(&input).unwrap(), &labels).unwrap();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        ours = Some(optim.step(model, grads));
        B::sync(&device).ok();
    };
    (0..warm).for_each(|_| step());
    group.bench_function("ember_lm/B8_T128", |bench| bench.iter(&mut step));
    let ids = Tensor::<B, 2, Int>::from_data(
        TensorData::new(input.input_ids.iter().map(|&t| t as i64).collect(), [BATCH, SEQ]),
        &device,
    );
    let pad = Tensor::<B, 2, Bool>::from_data(
        TensorData::new(
            input.attention_mask.iter().map(|&m| m == 0).collect(),
            [BATCH, SEQ],
        ),
        &device,
    );
    let targets =
        Tensor::<B, 1, Int>::from_data(TensorData::new(vec![0i64, 1, 0, 1, 0, 1, 0, 1], [BATCH]), &device);
    let mut burn = Some(BurnBert::<B>::new(&device));
    let mut adamw = AdamWConfig::new().with_weight_decay(0.01).init();
    let mut burn_step = || {
        let model = burn.take().unwrap();
        let logits = model.forward(ids.clone(), pad.clone());
        let loss = BurnCrossEntropy::new()
            .init(&device)
            .forward(logits, targets.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        burn = Some(adamw.step(2e-5, model, grads));
        B::sync(&device).ok();
    };
    (0..warm).for_each(|_| burn_step());
    group.bench_function("burn_encoder/B8_T128", |bench| bench.iter(&mut burn_step));
    group.finish();

    // Inference on the plain backend: 8 × 128 tokens per iteration.
    let mut group = c.benchmark_group(format!("bert_base_infer/{backend}"));
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .throughput(criterion::Throughput::Elements((BATCH * SEQ) as u64));
    let model = base()
        .init_sequence_classification::<B::InnerBackend>(&device)
        .unwrap();
    let infer = || {
        let out = model.forward(&input).unwrap();
        B::InnerBackend::sync(&device).ok();
        out
    };
    (0..warm).for_each(|_| drop(infer()));
    group.bench_function("ember_lm/B8_T128", |bench| bench.iter(infer));
    let burn = BurnBert::<B::InnerBackend>::new(&device);
    let (ids, pad) = (ids.inner(), pad.inner());
    let burn_infer = || {
        let out = burn.forward(ids.clone(), pad.clone());
        B::InnerBackend::sync(&device).ok();
        out
    };
    (0..warm).for_each(|_| drop(burn_infer()));
    group.bench_function("burn_encoder/B8_T128", |bench| bench.iter(burn_infer));
    group.finish();
}

#[path = "common/selected.rs"]
mod selected;

fn benches(c: &mut Criterion) {
    #[cfg(feature = "flex")]
    if selected::selected("flex") {
        run::<burn::backend::Autodiff<burn::backend::Flex>>(c, "flex");
    }
    #[cfg(not(feature = "flex"))]
    if selected::selected("ndarray") {
        run::<burn::backend::Autodiff<burn::backend::NdArray>>(c, "ndarray");
    }
    #[cfg(feature = "wgpu")]
    if selected::selected("wgpu") {
        run::<burn::backend::Autodiff<burn::backend::Wgpu>>(c, "wgpu");
    }
}

criterion_group!(bert, benches);
criterion_main!(bert);
