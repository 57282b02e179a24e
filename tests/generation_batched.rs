//! Batched generation of prompts of different lengths: `Generator` against transformers'
//! left-padded `generate` (tests/fixtures/make_batched_generation.py), every row against the same
//! prompt generated alone (greedy, sampling, EOS, sliding window and hard stop, GPT and RNN), the
//! models' `forward_prompts` against their plain forward, and bad input.
#![cfg(feature = "ndarray")]

mod common;

use burn::backend::NdArray;
use burn::prelude::Backend as _;
use burn::tensor::{Int, Tensor, TensorData, s};
use common::fixture_path;
use ember_lm::generate::{ContextOverflow, FinishReason, Generation, GenerationConfig, Generator};
use ember_lm::models::{Gpt, GptConfig, LanguageModel, RnnLm, RnnLmConfig};
use ember_lm::{Error, Result};

type B = NdArray;
type Device = burn::backend::ndarray::NdArrayDevice;

/// A model run one prompt at a time: `M` with `prefill` declining every batch, so that
/// `Generator` takes its unbatched path — the reference each batched row must equal.
struct Alone<'m, M>(&'m M);

impl<M: LanguageModel<B>> LanguageModel<B> for Alone<'_, M> {
    type State = M::State;
    fn vocab_size(&self) -> usize {
        self.0.vocab_size()
    }
    fn max_len(&self) -> Option<usize> {
        self.0.max_len()
    }
    fn logits(&self, ids: Tensor<B, 2, Int>) -> Result<Tensor<B, 3>> {
        self.0.logits(ids)
    }
    fn init_state(&self, batch: usize, device: &Device) -> M::State {
        self.0.init_state(batch, device)
    }
    fn step(&self, ids: Tensor<B, 2, Int>, state: &mut M::State) -> Result<Tensor<B, 3>> {
        self.0.step(ids, state)
    }
    #[allow(clippy::type_complexity)]
    fn prefill(&self, _: &[&[u32]], _: &Device) -> Result<Option<(Tensor<B, 2>, M::State)>> {
        Ok(None)
    }
    fn reorder_state(&self, state: &mut M::State, indices: &[usize]) -> Result<()> {
        self.0.reorder_state(state, indices)
    }
}

fn dev() -> Device {
    Default::default()
}

fn run<M: LanguageModel<B>>(
    model: &M,
    config: &GenerationConfig,
    prompts: &[Vec<u32>],
) -> Vec<Vec<Generation>> {
    Generator::new(model, config.clone(), &dev())
        .unwrap()
        .generate(prompts)
        .unwrap()
}

/// Every batched row has the tokens and finish of its prompt run alone, and the same score.
fn assert_rows_equal_alone<M: LanguageModel<B>>(model: &M, config: &GenerationConfig, prompts: &[Vec<u32>]) {
    let batched = run(model, config, prompts);
    let alone = run(&Alone(model), config, prompts);
    assert_eq!(batched.len(), prompts.len());
    for (i, (b, a)) in batched.iter().zip(&alone).enumerate() {
        assert_eq!(b.len(), config.num_return_sequences);
        for (j, (b, a)) in b.iter().zip(a).enumerate() {
            assert_eq!(
                (&b.tokens, b.finish),
                (&a.tokens, a.finish),
                "prompt {i}, sequence {j}"
            );
            assert!(
                (b.score - a.score).abs() < 1e-3,
                "prompt {i}, sequence {j}: {} vs {}",
                b.score,
                a.score
            );
        }
    }
}

fn prompts(lengths: &[usize], vocab: u32) -> Vec<Vec<u32>> {
    lengths
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            (0..n as u32)
                .map(|t| (t * 7 + i as u32 * 13 + 1) % vocab)
                .collect()
        })
        .collect()
}

/// A random GPT with a short context, seeded.
fn small_gpt(block: usize) -> Gpt<B> {
    B::seed(&dev(), 11);
    GptConfig::new()
        .with_vocab_size(40)
        .with_block_size(block)
        .with_n_layer(2)
        .with_n_head(2)
        .with_n_embd(16)
        .init::<B>(&dev())
        .unwrap()
}

#[test]
fn batched_prompts_match_transformers_left_padded_generate() {
    let fixture = common::json_fixture("generation/batched_gpt2.json");
    let list = common::json_rows;
    let prompts = list(&fixture["prompts"]);
    let expected = list(&fixture["tokens"]);
    let eos = fixture["eos_token_id"].as_u64().unwrap() as u32;
    let config = GenerationConfig::greedy(fixture["max_new_tokens"].as_u64().unwrap() as usize)
        .with_eos_token_ids(vec![eos])
        .with_no_repeat_ngram_size(fixture["no_repeat_ngram_size"].as_u64().unwrap() as usize);
    let gpt = Gpt::<B>::from_pretrained(fixture_path("gpt2-tiny"), &dev()).unwrap();
    let out = run(&gpt, &config, &prompts);
    for (i, (row, want)) in out.iter().zip(&expected).enumerate() {
        assert_eq!(row[0].tokens, *want, "prompt {i}");
        let finish = if want.last() == Some(&eos) {
            FinishReason::Eos
        } else {
            FinishReason::MaxNewTokens
        };
        assert_eq!(row[0].finish, finish, "prompt {i}");
    }
    // The fixture has a row that ends early, so the batch shrinks while the others go on.
    assert!(expected.iter().any(|r| r.len() < config.max_new_tokens));
}

#[test]
fn batched_gpt_rows_equal_rows_alone() {
    let gpt = small_gpt(16);
    let ragged = prompts(&[1, 6, 11, 3], 40);
    // Greedy, past the context with a sliding window: every row reaches 30 tokens.
    let greedy = GenerationConfig::greedy(30);
    assert_rows_equal_alone(&gpt, &greedy, &ragged);
    let out = run(&gpt, &greedy, &ragged);
    assert!(out.iter().all(|r| r[0].tokens.len() == 30));

    // A hard stop: each row stops at its own context, block + 1 - its prompt's length.
    let stop = greedy.clone().with_context_overflow(ContextOverflow::Stop);
    assert_rows_equal_alone(&gpt, &stop, &ragged);
    for (row, p) in run(&gpt, &stop, &ragged).iter().zip(&ragged) {
        assert_eq!(
            (row[0].tokens.len(), row[0].finish),
            (16 + 1 - p.len(), FinishReason::Context)
        );
    }

    // Sampling, two sequences per prompt, each with its own seeded generator.
    let sample = GenerationConfig::greedy(24)
        .with_do_sample(true)
        .with_top_k(20)
        .with_temperature(1.3)
        .with_num_return_sequences(2)
        .with_seed(5);
    assert_rows_equal_alone(&gpt, &sample, &ragged);
    // An EOS that one sampled row reaches midway: that row leaves the batch, the rest go on.
    let first = run(&gpt, &sample, &ragged);
    let eos = first[1][0].tokens[4];
    let with_eos = sample.clone().with_eos_token_ids(vec![eos]);
    assert_rows_equal_alone(&gpt, &with_eos, &ragged);
    let ended = run(&gpt, &with_eos, &ragged);
    assert_eq!(ended[1][0].finish, FinishReason::Eos);
    assert!(ended[1][0].tokens.len() <= 5);
    assert!(
        ended
            .iter()
            .flatten()
            .any(|g| g.finish == FinishReason::MaxNewTokens)
    );

    // Prompts of one length, and a prompt longer than the context (cropped, as alone).
    assert_rows_equal_alone(&gpt, &greedy, &prompts(&[5, 5, 5], 40));
    assert_rows_equal_alone(&gpt, &GenerationConfig::greedy(8), &prompts(&[20, 2], 40));
}

#[test]
fn batched_rnn_rows_equal_rows_alone() {
    B::seed(&dev(), 12);
    let rnn = RnnLmConfig::new(30, 8, 12)
        .with_dropout(0.0)
        .init::<B>(&dev())
        .unwrap();
    let ragged = prompts(&[1, 7, 4, 12], 30);
    assert_rows_equal_alone(&rnn, &GenerationConfig::greedy(20), &ragged);
    let sample = GenerationConfig::greedy(20)
        .with_do_sample(true)
        .with_num_return_sequences(3)
        .with_seed(9);
    assert_rows_equal_alone(&rnn, &sample, &ragged);
}

/// Row `r`'s logits after its last token, from the plain forward of that prompt alone.
fn last_logits<M: LanguageModel<B>>(model: &M, prompt: &[u32]) -> Vec<f32> {
    let ids = Tensor::<B, 2, Int>::from_data(
        TensorData::new(
            prompt.iter().map(|&t| t as i64).collect::<Vec<_>>(),
            [1, prompt.len()],
        ),
        &dev(),
    );
    let logits = model.logits(ids).unwrap();
    logits.slice(s![0..1, -1.., ..]).into_data().to_vec().unwrap()
}

fn assert_rows_close(what: &str, batch: Tensor<B, 2>, rows: &[Vec<f32>]) {
    let got: Vec<f32> = batch.into_data().to_vec().unwrap();
    let width = rows[0].len();
    for (r, want) in rows.iter().enumerate() {
        for (g, w) in got[r * width..(r + 1) * width].iter().zip(want) {
            assert!(
                (g - w).abs() <= 1e-5 + 1e-4 * w.abs(),
                "{what} row {r}: {g} vs {w}"
            );
        }
    }
}

#[test]
fn forward_prompts_equal_each_prompt_alone_and_the_cache_goes_on() {
    let gpt = small_gpt(16);
    let ragged = prompts(&[2, 9, 5], 40);
    let refs: Vec<&[u32]> = ragged.iter().map(Vec::as_slice).collect();
    let mut cache = gpt.new_cache(3, &dev());
    let logits = gpt.forward_prompts(&refs, &mut cache).unwrap();
    assert_eq!(cache.left_padding(), &[7, 0, 4]);
    let alone: Vec<Vec<f32>> = ragged.iter().map(|p| last_logits(&gpt, p)).collect();
    assert_rows_close("Gpt prompts", logits, &alone);

    // One more token per row, then the rows reordered (the last row dropped): still each alone.
    let next = [3u32, 17, 29];
    let step = gpt.forward_cached_ids(&next, 3, &mut cache).unwrap();
    let extended: Vec<Vec<u32>> = ragged
        .iter()
        .zip(next)
        .map(|(p, t)| [p.as_slice(), &[t]].concat())
        .collect();
    let alone: Vec<Vec<f32>> = extended.iter().map(|p| last_logits(&gpt, p)).collect();
    assert_rows_close("Gpt step", step.reshape([3, 40]), &alone);
    gpt.reorder_state(&mut cache, &[1, 0]).unwrap();
    assert_eq!(cache.left_padding(), &[0, 7]);
    let step = gpt.forward_cached_ids(&[5, 6], 2, &mut cache).unwrap();
    let alone = vec![
        last_logits(&gpt, &[extended[1].as_slice(), &[5]].concat()),
        last_logits(&gpt, &[extended[0].as_slice(), &[6]].concat()),
    ];
    assert_rows_close("Gpt reordered step", step.reshape([2, 40]), &alone);

    // The RNN: packed by length, its states carried on.
    B::seed(&dev(), 13);
    let rnn: RnnLm<B> = RnnLmConfig::new(40, 8, 12)
        .with_dropout(0.0)
        .init(&dev())
        .unwrap();
    let (logits, state) = rnn.forward_prompts(&refs).unwrap();
    let alone: Vec<Vec<f32>> = ragged.iter().map(|p| last_logits(&rnn, p)).collect();
    assert_rows_close("RnnLm prompts", logits, &alone);
    let (step, _) = rnn.forward_ids(&next, 3, Some(state)).unwrap();
    let alone: Vec<Vec<f32>> = extended.iter().map(|p| last_logits(&rnn, p)).collect();
    assert_rows_close("RnnLm step", step.reshape([3, 40]), &alone);
}

#[test]
fn bad_prompt_batches_are_typed_errors() {
    let gpt = small_gpt(8);
    let mut cache = gpt.new_cache(2, &dev());
    let none: [&[u32]; 0] = [];
    assert!(matches!(
        gpt.forward_prompts(&none, &mut cache),
        Err(Error::Data(_))
    ));
    assert!(matches!(
        gpt.forward_prompts(&[&[1, 2], &[]], &mut cache),
        Err(Error::Data(_))
    ));
    assert!(matches!(
        gpt.forward_prompts(&[&[1, 2], &[1; 9]], &mut cache),
        Err(Error::TooLong { found: 9, .. })
    ));
    let err = gpt.forward_prompts(&[&[1, 2], &[40]], &mut cache).unwrap_err();
    assert!(
        matches!(
            err,
            Error::TokenId {
                found: 40,
                vocab_size: 40
            }
        ),
        "{err}"
    );
    // A failed call leaves the cache empty and usable.
    assert!(cache.is_empty() && cache.left_padding().is_empty());
    gpt.forward_prompts(&[&[1, 2], &[3]], &mut cache).unwrap();
    let again = gpt.forward_prompts(&[&[1, 2], &[3]], &mut cache).unwrap_err();
    assert!(again.to_string().contains("empty cache"), "{again}");
    // A step with a row count other than the padded cache's.
    assert!(matches!(
        gpt.forward_cached_ids(&[1, 2, 3], 3, &mut cache),
        Err(Error::Shape { .. })
    ));

    let rnn: RnnLm<B> = RnnLmConfig::new(10, 4, 4).init(&dev()).unwrap();
    assert!(matches!(rnn.forward_prompts(&none), Err(Error::Data(_))));
    assert!(matches!(rnn.forward_prompts(&[&[1], &[]]), Err(Error::Data(_))));
    assert!(matches!(
        rnn.forward_prompts(&[&[1], &[10]]),
        Err(Error::TokenId { found: 10, .. })
    ));

    // Through the Generator: a bad id in any prompt is refused before anything runs.
    let err = Generator::new(&gpt, GenerationConfig::greedy(3), &dev())
        .unwrap()
        .generate(&[vec![1, 2], vec![3, 99]])
        .unwrap_err();
    assert!(matches!(err, Error::TokenId { found: 99, .. }), "{err}");
}
