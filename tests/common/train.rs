//! Helpers for the trainer tests: a corpus, models with identical weights, a small LSTM language
//! model whose task carries its state (truncated BPTT), and parameter snapshots.

use std::cell::RefCell;
use std::path::PathBuf;

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Embedding, EmbeddingConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use ember_lm::Result;
use ember_lm::data::{Batches, LmShape, LmWindows, TokenBatch};
use ember_lm::models::{Gpt, GptConfig};
use ember_lm::nn::{Lstm, LstmConfig, LstmState, TorchLinear};
use ember_lm::train::{BatchStats, ProgressMode, Task, TrainOutput, TrainerConfig};

/// A fresh temporary directory, unique within the process (tests run in parallel).
pub fn tmp(name: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("ember-train-{}-{n}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Every float parameter's values (as f64), in visiting order.
pub fn param_values<B: Backend, M: Module<B>>(model: &M) -> Vec<Vec<f64>> {
    struct V(Vec<Vec<f64>>);
    impl<B: Backend> ModuleVisitor<B> for V {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
            self.0.push(p.val().into_data().iter::<f64>().collect());
        }
    }
    let mut v = V(Vec::new());
    model.visit(&mut v);
    v.0
}

/// A deterministic, learnable but not trivial sequence over 24 symbols.
pub fn corpus() -> Vec<i64> {
    (0..3000).map(|i: i64| (i * 7 + i / 5) % 24).collect()
}

/// The tests' language-model windows over [`corpus`]: batches of 4 windows of 16 tokens.
pub fn gpt_windows() -> LmWindows {
    LmWindows::new(
        corpus(),
        LmShape {
            batch_size: 4,
            seq_len: 16,
        },
    )
    .unwrap()
}

pub fn gpt_config(dropout: f64) -> GptConfig {
    GptConfig::new()
        .with_vocab_size(24)
        .with_block_size(16)
        .with_n_layer(2)
        .with_n_head(2)
        .with_n_embd(16)
        .with_dropout(dropout)
}

/// `n` GPTs with the same weights (burn initialises parameters lazily, so a clone of an untouched
/// model would draw new ones: materialise first, then clone).
pub fn same_gpts<B: ember_lm::TrainBackend>(config: &GptConfig, n: usize) -> Vec<Gpt<B>> {
    let model = config.init::<B>(&Default::default()).unwrap();
    param_values(&model);
    (0..n).map(|_| model.clone()).collect()
}

/// No progress output, a training row every 2 steps.
pub fn quiet() -> TrainerConfig {
    TrainerConfig::new()
        .with_progress(ProgressMode::Off)
        .with_log_every(2)
}

/// Embedding, one LSTM layer, a linear head.
#[derive(Module, Debug)]
pub struct TinyRnnLm<B: ember_lm::Backend> {
    embedding: Embedding<B>,
    lstm: Lstm<B>,
    head: TorchLinear<B>,
}

impl<B: ember_lm::Backend> TinyRnnLm<B> {
    pub fn new(vocab: usize, hidden: usize, device: &B::Device) -> Self {
        Self {
            embedding: EmbeddingConfig::new(vocab, hidden).init(device),
            lstm: LstmConfig::new(hidden, hidden).init(device).unwrap(),
            head: TorchLinear::new(hidden, vocab, true, device),
        }
    }

    /// Mean loss over a stream batch from `state` (rows flagged `reset` start from zeros), with
    /// the number of targets and the final state.
    pub fn loss(
        &self,
        batch: &TokenBatch,
        state: Option<[Tensor<B, 3>; 2]>,
    ) -> Result<(Tensor<B, 1>, usize, [Tensor<B, 3>; 2])> {
        let device = self.head.weight.val().device();
        let (x, y) = batch.inputs_targets()?;
        let t = batch.len - 1;
        let x = Tensor::<B, 2, Int>::from_data(TensorData::new(x, [batch.batch, t]), &device);
        let y = Tensor::<B, 1, Int>::from_data(TensorData::new(y, [batch.batch * t]), &device);
        let state =
            state.map(|[h, c]| {
                let keep: Vec<f32> = batch.reset.iter().map(|&r| if r { 0.0 } else { 1.0 }).collect();
                let keep = Tensor::<B, 1>::from_data(TensorData::new(keep, [batch.batch]), &device)
                    .reshape([1, batch.batch, 1]);
                LstmState {
                    hidden: h * keep.clone(),
                    cell: c * keep,
                }
            });
        let (out, state) = self.lstm.forward(self.embedding.forward(x), state)?;
        let logits = self.head.forward(out)?; // [batch, t, vocab]
        let [b, t, v] = logits.dims();
        let loss = CrossEntropyLossConfig::new()
            .init(&device)
            .forward(logits.reshape([b * t, v]), y);
        Ok((loss, b * t, [state.hidden, state.cell]))
    }
}

/// `n` LSTM LMs with the same weights.
pub fn same_rnns<B: ember_lm::Backend>(n: usize) -> Vec<TinyRnnLm<B>> {
    let model = TinyRnnLm::<B>::new(24, 16, &Default::default());
    param_values(&model);
    (0..n).map(|_| model.clone()).collect()
}

/// Language modelling on stream batches with the state carried; records, per training batch,
/// whether a carried state came in.
#[derive(Default)]
pub struct StreamTask {
    pub carried: RefCell<Vec<bool>>,
}

impl<B: ember_lm::TrainBackend> Task<B> for StreamTask {
    type Model = TinyRnnLm<B>;
    type Batch = TokenBatch;
    type Carry = [Tensor<B, 3>; 2];
    type ValidCarry = [Tensor<B::InnerBackend, 3>; 2];

    fn train_step(
        &self,
        model: &TinyRnnLm<B>,
        batch: &TokenBatch,
        carry: Option<Self::Carry>,
    ) -> Result<TrainOutput<B, Self::Carry>> {
        self.carried.borrow_mut().push(carry.is_some());
        let (loss, items, state) = model.loss(batch, carry)?;
        Ok(TrainOutput {
            loss,
            items,
            correct: None,
            carry: Some(state),
        })
    }

    fn valid_step(
        &self,
        model: &TinyRnnLm<B::InnerBackend>,
        batch: &TokenBatch,
        carry: Option<Self::ValidCarry>,
    ) -> Result<(BatchStats, Option<Self::ValidCarry>)> {
        let (loss, items, state) = model.loss(batch, carry)?;
        let loss: f64 = loss.into_scalar().elem();
        Ok((
            BatchStats {
                loss,
                items,
                correct: None,
            },
            Some(state),
        ))
    }

    fn detach_carry(&self, [h, c]: Self::Carry) -> Self::Carry {
        [h.detach(), c.detach()]
    }
}

/// Fixed batches, in order.
pub struct Fixed(pub Vec<TokenBatch>);

impl Batches<TokenBatch> for Fixed {
    fn num_batches(&self) -> usize {
        self.0.len()
    }
    fn get(&self, _epoch: u64, index: usize, _seed: u64) -> Result<TokenBatch> {
        Ok(self.0[index].clone())
    }
}

/// Rows `from..from + n` of `ids` laid out as rows of `len` tokens.
pub fn rows(ids: &[i64], from: usize, n: usize, len: usize) -> TokenBatch {
    TokenBatch {
        ids: ids[from * len..(from + n) * len].to_vec(),
        batch: n,
        len,
        reset: Vec::new(),
    }
}
