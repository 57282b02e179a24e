//! Generation: every logits processor against `transformers`' own, beam search against
//! `GPT2LMHeadModel.generate` on the tiny GPT-2 fixture, greedy decoding and beam search against
//! hand-computed results on a model with fixed logits, sampling (seeds, filters, frequencies), EOS
//! and stop strings, streaming, and bad input.
#![cfg(feature = "ndarray")]

mod common;

use burn::backend::NdArray;
use burn::tensor::{Int, Tensor, TensorData, s};
use common::{Fixture, fixture_path};
use ember_lm::data::{BpeTokenizer, Tokenizer};
use ember_lm::generate::processors::{self, log_softmax};
use ember_lm::generate::{BeamStopping, ContextOverflow, FinishReason, GenerationConfig, Generator};
use ember_lm::models::{Gpt, LanguageModel};
use ember_lm::{Error, Result};

type B = NdArray;

/// A language model whose next-token logits depend only on the last token: `table[last]`.
struct Table {
    table: Vec<Vec<f32>>,
}

impl LanguageModel<B> for Table {
    /// The last token of each row.
    type State = Vec<u32>;

    fn vocab_size(&self) -> usize {
        self.table.len()
    }
    fn max_len(&self) -> Option<usize> {
        None
    }
    fn logits(&self, ids: Tensor<B, 2, Int>) -> Result<Tensor<B, 3>> {
        let mut s = Vec::new();
        self.step(ids, &mut s)
    }
    fn init_state(&self, batch: usize, _device: &burn::backend::ndarray::NdArrayDevice) -> Vec<u32> {
        vec![0; batch]
    }
    fn step(&self, ids: Tensor<B, 2, Int>, state: &mut Vec<u32>) -> Result<Tensor<B, 3>> {
        let [b, t] = ids.dims();
        let ids: Vec<i64> = ids.into_data().iter::<i64>().collect();
        let v = self.table.len();
        let mut out = Vec::with_capacity(b * t * v);
        for id in &ids {
            out.extend_from_slice(&self.table[*id as usize]);
        }
        *state = ids.chunks(t).map(|r| *r.last().unwrap() as u32).collect();
        Ok(Tensor::from_data(
            TensorData::new(out, [b, t, v]),
            &Default::default(),
        ))
    }
    fn reorder_state(&self, state: &mut Vec<u32>, indices: &[usize]) -> Result<()> {
        *state = indices.iter().map(|&i| state[i]).collect();
        Ok(())
    }
}

/// Tokens 0..4; from any token the log-probabilities below (rows = previous token).
fn table() -> Table {
    let p = |v: [f64; 4]| v.iter().map(|x| x.ln() as f32).collect::<Vec<f32>>();
    Table {
        table: vec![
            p([0.0999, 0.5, 0.4, 0.0001]), // after 0
            p([0.05, 0.05, 0.1, 0.8]),     // after 1
            p([0.05, 0.9, 0.04, 0.01]),    // after 2
            p([0.25, 0.26, 0.24, 0.25]),   // after 3
        ],
    }
}

fn dev() -> burn::backend::ndarray::NdArrayDevice {
    Default::default()
}

#[test]
fn processors_match_transformers() {
    let fx = Fixture::load("generation/processors.safetensors");
    let logits: Vec<f32> = fx.data("logits").iter::<f32>().collect();
    let history: Vec<u32> = fx.data("history").iter::<i64>().map(|v| v as u32).collect();
    let (rows, v) = (4, 40);
    let h = history.len() / rows;
    type Apply = fn(&mut [f32], &[u32]);
    let cases: [(&str, Apply); 9] = [
        ("repetition_1.3", |l, ids| {
            processors::repetition_penalty(l, ids, 1.3)
        }),
        ("repetition_0.8", |l, ids| {
            processors::repetition_penalty(l, ids, 0.8)
        }),
        ("no_repeat_2", |l, ids| processors::no_repeat_ngram(l, ids, 2)),
        ("no_repeat_3", |l, ids| processors::no_repeat_ngram(l, ids, 3)),
        ("temperature_0.7", |l, _| processors::temperature(l, 0.7)),
        ("top_k_5", |l, _| processors::top_k(l, 5)),
        ("top_p_0.8", |l, _| processors::top_p(l, 0.8)),
        ("top_p_0.3", |l, _| processors::top_p(l, 0.3)),
        ("min_p_0.1", |l, _| processors::min_p(l, 0.1)),
    ];
    for (name, apply) in cases {
        let expected: Vec<f32> = fx.data(name).iter::<f32>().collect();
        let mut changed = false;
        for r in 0..rows {
            let mut row = logits[r * v..(r + 1) * v].to_vec();
            apply(&mut row, &history[r * h..(r + 1) * h]);
            for (i, (a, e)) in row.iter().zip(&expected[r * v..(r + 1) * v]).enumerate() {
                let same = (a.is_infinite() && a == e) || (a - e).abs() <= 1e-6 * e.abs().max(1.0);
                assert!(same, "{name} row {r} token {i}: {a} vs transformers {e}");
                changed |= a != &logits[r * v + i];
            }
        }
        assert!(changed, "{name}: the fixture should exercise the processor");
    }
}

#[test]
fn beam_search_matches_transformers_generate() {
    let device = dev();
    let gpt = Gpt::<B>::from_pretrained(fixture_path("gpt2-tiny"), &device).unwrap();
    let fixture: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture_path("generation/beams.json")).unwrap())
            .unwrap();
    let ids = |v: &serde_json::Value| -> Vec<u32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect()
    };
    let prompt = ids(&fixture["prompt"]);
    let greedy = Generator::new(&gpt, GenerationConfig::greedy(12), &device)
        .unwrap()
        .generate(std::slice::from_ref(&prompt))
        .unwrap();
    assert_eq!(greedy[0][0].tokens, ids(&fixture["greedy"]));
    for case in fixture["cases"].as_array().unwrap() {
        let s = &case["settings"];
        let stopping = match &s["early_stopping"] {
            serde_json::Value::Bool(true) => BeamStopping::Eager,
            serde_json::Value::Bool(false) => BeamStopping::Heuristic,
            _ => BeamStopping::Never,
        };
        let config = GenerationConfig::new()
            .with_num_beams(s["num_beams"].as_u64().unwrap() as usize)
            .with_max_new_tokens(s["max_new_tokens"].as_u64().unwrap() as usize)
            .with_length_penalty(s["length_penalty"].as_f64().unwrap())
            .with_early_stopping(stopping)
            .with_num_return_sequences(s["num_return_sequences"].as_u64().unwrap() as usize)
            .with_eos_token_ids(ids(&s["eos_token_id"]))
            .with_no_repeat_ngram_size(s["no_repeat_ngram_size"].as_u64().unwrap_or(0) as usize)
            .with_repetition_penalty(s["repetition_penalty"].as_f64().unwrap_or(1.0));
        let out = Generator::new(&gpt, config, &device)
            .unwrap()
            .generate(std::slice::from_ref(&prompt))
            .unwrap();
        let expected: Vec<Vec<u32>> = case["sequences"].as_array().unwrap().iter().map(ids).collect();
        let got: Vec<Vec<u32>> = out[0].iter().map(|g| g.tokens.clone()).collect();
        assert_eq!(got, expected, "beam search {s}");
        for (g, e) in out[0].iter().zip(case["scores"].as_array().unwrap()) {
            let e = e.as_f64().unwrap();
            assert!(
                (g.score - e).abs() <= 1e-4 * e.abs().max(1.0),
                "score {} vs {e} ({s})",
                g.score
            );
        }
    }
}

#[test]
fn greedy_and_beam_search_on_fixed_logits() {
    let model = table();
    let device = dev();
    // Greedy from [0]: 0 → 1 (0.5) → 3 (0.8) → 1 (0.26) → 3 (0.8).
    let out = Generator::new(&model, GenerationConfig::greedy(4), &device)
        .unwrap()
        .generate(&[vec![0]])
        .unwrap();
    assert_eq!(out[0][0].tokens, vec![1, 3, 1, 3]);
    let expected = (0.5f64 * 0.8 * 0.26 * 0.8).ln();
    assert!((out[0][0].score - expected).abs() < 1e-5);
    assert_eq!(out[0][0].finish, FinishReason::MaxNewTokens);

    // Beam search, 2 beams, 2 tokens, length_penalty 0 (raw log-probabilities):
    // paths from 0: 1→3 = .5·.8 = .40, 2→1 = .4·.9 = .36, 1→2 = .05, 0→1 = .05 ... → [1, 3], [2, 1].
    let config = GenerationConfig::new()
        .with_num_beams(2)
        .with_num_return_sequences(2)
        .with_max_new_tokens(2)
        .with_length_penalty(0.0);
    let out = Generator::new(&model, config, &device)
        .unwrap()
        .generate(&[vec![0]])
        .unwrap();
    let got: Vec<Vec<u32>> = out[0].iter().map(|g| g.tokens.clone()).collect();
    assert_eq!(got, vec![vec![1, 3], vec![2, 1]]);
    assert!((out[0][0].score - 0.40f64.ln()).abs() < 1e-5 && (out[0][1].score - 0.36f64.ln()).abs() < 1e-5);
    // With three tokens greedy is beaten: 2→1→3 = .4·.9·.8 = .288 > 1→3→1 = .5·.8·.26 = .104.
    let config = GenerationConfig::new()
        .with_num_beams(2)
        .with_max_new_tokens(3)
        .with_length_penalty(0.0);
    let out = Generator::new(&model, config, &device)
        .unwrap()
        .generate(&[vec![0]])
        .unwrap();
    assert_eq!(out[0][0].tokens, vec![2, 1, 3]);
    // EOS = 3 ends a hypothesis: [1, 3] (.40) is finished and kept; early stopping returns it.
    let config = GenerationConfig::new()
        .with_num_beams(2)
        .with_max_new_tokens(5)
        .with_eos_token_ids(vec![3])
        .with_early_stopping(BeamStopping::Eager)
        .with_length_penalty(0.0);
    let out = Generator::new(&model, config, &device)
        .unwrap()
        .generate(&[vec![0]])
        .unwrap();
    assert_eq!(
        (out[0][0].tokens.clone(), out[0][0].finish),
        (vec![1, 3], FinishReason::Eos)
    );
}

#[test]
fn sampling_is_seeded_filtered_and_distributed_as_the_probabilities() {
    let model = table();
    let device = dev();
    let sample = |seed, k, p| {
        let config = GenerationConfig::new()
            .with_do_sample(true)
            .with_max_new_tokens(30)
            .with_seed(seed)
            .with_top_k(k)
            .with_top_p(p);
        Generator::new(&model, config, &device)
            .unwrap()
            .generate(&[vec![0]])
            .unwrap()[0][0]
            .tokens
            .clone()
    };
    assert_eq!(sample(1, 0, 1.0), sample(1, 0, 1.0), "same seed, same tokens");
    assert_ne!(sample(1, 0, 1.0), sample(2, 0, 1.0));
    // top_k = 1 is greedy.
    let greedy = Generator::new(&model, GenerationConfig::greedy(30), &device)
        .unwrap()
        .generate(&[vec![0]])
        .unwrap();
    assert_eq!(sample(3, 1, 1.0), greedy[0][0].tokens);
    // Frequencies of the first token after 0 follow [.0999, .5, .4, .0001].
    let mut counts = [0usize; 4];
    for seed in 0..4000 {
        let config = GenerationConfig::new()
            .with_do_sample(true)
            .with_max_new_tokens(1)
            .with_seed(seed);
        let t = Generator::new(&model, config, &device)
            .unwrap()
            .generate(&[vec![0]])
            .unwrap()[0][0]
            .tokens[0];
        counts[t as usize] += 1;
    }
    for (c, p) in counts.iter().zip([0.0999, 0.5, 0.4, 0.0001]) {
        let expected = 4000.0 * p;
        // Four standard deviations of a binomial count.
        assert!(
            (*c as f64 - expected).abs() <= 4.0 * (expected * (1.0 - p)).sqrt() + 1.0,
            "{counts:?}"
        );
    }
    // top_p = 0.55 after 0 keeps {1, 2} (0.5 + 0.4 ≥ 0.55 from the top; 0.0999 is cut).
    let mut row = table().table[0].clone();
    processors::top_p(&mut row, 0.55);
    let kept: Vec<usize> = (0..4).filter(|&i| row[i].is_finite()).collect();
    assert_eq!(kept, vec![1, 2]);
    let lp = log_softmax(&row);
    assert!((lp[1].exp() - 0.5 / 0.9).abs() < 1e-6);
}

#[test]
fn eos_stop_strings_streaming_and_batched_prompts() {
    let device = dev();
    let gpt = Gpt::<B>::from_pretrained(fixture_path("gpt2-tiny"), &device).unwrap();
    let tok = BpeTokenizer::from_file(fixture_path("gpt2-tiny/tokenizer.json")).unwrap();
    let prompts = vec![
        tok.encode("It was the").unwrap(),
        tok.encode("Café").unwrap(),
        vec![7],
    ];
    let generator = Generator::new(&gpt, GenerationConfig::greedy(8), &device).unwrap();
    let out = generator.generate(&prompts).unwrap();
    // Each prompt alone gives the same as in a batch of prompts of different lengths.
    for (p, o) in prompts.iter().zip(&out) {
        let alone = generator.generate(std::slice::from_ref(p)).unwrap();
        assert_eq!(alone[0][0].tokens, o[0].tokens);
        assert_eq!(o[0].tokens.len(), 8);
    }
    // Several EOS tokens: the earliest one to appear ends the sequence, and is included.
    let tokens = &out[0][0].tokens;
    let eos = vec![tokens[5], tokens[2]];
    let config = GenerationConfig::greedy(8).with_eos_token_ids(eos);
    let o = Generator::new(&gpt, config, &device)
        .unwrap()
        .generate(&prompts[..1])
        .unwrap();
    let first = tokens
        .iter()
        .position(|t| *t == tokens[2] || *t == tokens[5])
        .unwrap();
    assert_eq!(o[0][0].tokens, tokens[..=first].to_vec());
    assert_eq!(o[0][0].finish, FinishReason::Eos);
    // A stop string: generation stops once the decoded text contains it.
    let text = tok.decode(&tokens[..4]).unwrap();
    let stop: String = text
        .chars()
        .skip(text.chars().count().saturating_sub(2))
        .collect();
    let config = GenerationConfig::greedy(8).with_stop_strings(vec![stop.clone()]);
    let o = Generator::new(&gpt, config, &device)
        .unwrap()
        .with_tokenizer(&tok)
        .generate(&prompts[..1])
        .unwrap();
    assert_eq!(o[0][0].finish, FinishReason::StopString);
    assert!(tok.decode(&o[0][0].tokens).unwrap().contains(&stop));
    assert!(o[0][0].tokens.len() <= 4);
    // Streaming: the pieces are the decoded text, in order.
    let mut pieces = Vec::new();
    let g = Generator::new(&gpt, GenerationConfig::greedy(8), &device)
        .unwrap()
        .with_tokenizer(&tok)
        .generate_streaming(&prompts[0], |p| pieces.push(p.to_string()))
        .unwrap();
    assert_eq!(pieces.concat(), tok.decode(&g.tokens).unwrap());
    assert_eq!(g.tokens, *tokens);
    // A hard stop at the context: a prompt of block_size tokens leaves room for the one token
    // its logits predict; a longer one is an error.
    let config = GenerationConfig::greedy(8).with_context_overflow(ContextOverflow::Stop);
    let stopping = Generator::new(&gpt, config, &device).unwrap();
    let full = vec![1u32; 64];
    let o = stopping.generate(&[full]).unwrap();
    assert_eq!((o[0][0].tokens.len(), o[0][0].finish), (1, FinishReason::Context));
    let o = stopping.generate(&[vec![1u32; 62]]).unwrap();
    assert_eq!((o[0][0].tokens.len(), o[0][0].finish), (3, FinishReason::Context));
    assert!(matches!(
        stopping.generate(&[vec![1u32; 65]]),
        Err(Error::TooLong {
            found: 65,
            max: 64,
            ..
        })
    ));
}

#[test]
fn bad_generation_settings_are_errors() {
    let model = table();
    let device = dev();
    for config in [
        GenerationConfig::new().with_top_p(0.0),
        GenerationConfig::new().with_top_p(1.5),
        GenerationConfig::new().with_do_sample(true).with_temperature(0.0),
        GenerationConfig::new().with_num_beams(0),
        GenerationConfig::new()
            .with_num_beams(2)
            .with_num_return_sequences(3),
        GenerationConfig::new().with_repetition_penalty(0.0),
    ] {
        assert!(matches!(
            Generator::new(&model, config, &device),
            Err(Error::Config { .. })
        ));
    }
    let generator = Generator::new(&model, GenerationConfig::greedy(3), &device).unwrap();
    assert!(
        matches!(generator.generate(&[vec![]]), Err(Error::Config { .. })),
        "empty prompt without BOS"
    );
    assert!(matches!(
        generator.generate(&[vec![9]]),
        Err(Error::TokenId { found: 9, .. })
    ));
    let with_bos = Generator::new(
        &model,
        GenerationConfig::greedy(2).with_bos_token_id(Some(0)),
        &device,
    )
    .unwrap();
    assert_eq!(with_bos.generate(&[vec![]]).unwrap()[0][0].tokens, vec![1, 3]);
    // Streaming without a tokenizer.
    assert!(generator.generate_streaming(&[0], |_| {}).is_err());
}

/// Decoding from host ids (what generation feeds back) gives the logits of the tensor path, and
/// ids checked on the host fail as the device check does: a typed error naming the id.
#[test]
fn host_ids_decode_like_tensor_ids() {
    use ember_lm::models::RnnLmConfig;
    let gpt = common::gpt::tiny_config().init::<B>(&dev()).unwrap();
    let ids = [3u32, 1, 4, 1, 5, 9];
    let tensor = Tensor::<B, 2, Int>::from_data(
        TensorData::new(ids.iter().map(|&i| i as i64).collect::<Vec<_>>(), [2, 3]),
        &dev(),
    );
    let mut a = gpt.init_state(2, &dev());
    let mut b = gpt.init_state(2, &dev());
    let want = gpt.step(tensor.clone(), &mut a).unwrap();
    let got = gpt.step_ids(&ids, 2, &mut b, &dev()).unwrap();
    assert_eq!(got.into_data(), want.into_data());
    // A second step on each state: the caches advanced alike.
    let want = gpt.step(tensor.clone().slice([0..2, 0..1]), &mut a).unwrap();
    let got = gpt.step_ids(&[3, 1], 2, &mut b, &dev()).unwrap();
    assert_eq!(got.into_data(), want.into_data());

    let rnn = RnnLmConfig::new(10, 4, 6).init::<B>(&dev()).unwrap();
    let (mut a, mut b) = (rnn.init_state(2, &dev()), rnn.init_state(2, &dev()));
    let want = rnn.step(tensor, &mut a).unwrap();
    let got = rnn.step_ids(&ids, 2, &mut b, &dev()).unwrap();
    assert_eq!(got.into_data(), want.into_data());

    let mut cache = gpt.init_state(1, &dev());
    let err = gpt.step_ids(&[2, 10], 1, &mut cache, &dev()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::TokenId {
                found: 10,
                vocab_size: 10
            }
        ),
        "{err}"
    );
    let err = rnn.step_ids(&[12], 1, &mut None, &dev()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::TokenId {
                found: 12,
                vocab_size: 10
            }
        ),
        "{err}"
    );
    // Ids that do not split into `batch` equal rows, no ids, and no rows.
    for (ids, batch) in [(&[1u32, 2, 3][..], 2), (&[][..], 1), (&[1][..], 0)] {
        let err = gpt.step_ids(ids, batch, &mut cache, &dev()).unwrap_err();
        assert!(err.to_string().contains("rows of equal length"), "{err}");
    }
    assert_eq!(cache.len(), 0, "a refused step leaves the cache as it was");
}

/// Past `block_size` the default sliding window goes on as nanoGPT's `generate` does: every token
/// is the argmax of a full forward over the last `block_size` tokens, and the output reaches the
/// requested length. Until the context is full it equals the cached run that stops there.
#[test]
fn generation_slides_its_window_past_the_context() {
    let device = dev();
    let gpt = Gpt::<B>::from_pretrained(fixture_path("gpt2-tiny"), &device).unwrap();
    let block = gpt.block_size();
    assert_eq!(block, 64);
    let prompt: Vec<u32> = (0..10).map(|i| (i * 7 + 3) % 100).collect();
    let new = 100;
    let greedy = GenerationConfig::greedy(new);
    let slid = Generator::new(&gpt, greedy.clone(), &device)
        .unwrap()
        .generate(std::slice::from_ref(&prompt))
        .unwrap();
    let slid = &slid[0][0];
    assert_eq!(
        (slid.tokens.len(), slid.finish),
        (new, FinishReason::MaxNewTokens)
    );

    // nanoGPT's loop: crop to the last block_size tokens, full forward, argmax of the last row.
    let mut idx = prompt.clone();
    for _ in 0..new {
        let window = &idx[idx.len().saturating_sub(block)..];
        let ids = Tensor::<B, 2, Int>::from_data(
            TensorData::new(
                window.iter().map(|&t| t as i64).collect::<Vec<_>>(),
                [1, window.len()],
            ),
            &device,
        );
        let logits = gpt.logits(ids).unwrap();
        let last: Vec<f32> = logits.slice(s![0..1, -1.., ..]).into_data().to_vec().unwrap();
        idx.push(processors::argmax(&last).unwrap());
    }
    assert_eq!(slid.tokens, idx[prompt.len()..]);

    // The cached run with a hard stop: the same tokens until the context is full.
    let stop = greedy.clone().with_context_overflow(ContextOverflow::Stop);
    let stopped = Generator::new(&gpt, stop, &device)
        .unwrap()
        .generate(std::slice::from_ref(&prompt))
        .unwrap();
    let stopped = &stopped[0][0];
    assert_eq!(stopped.finish, FinishReason::Context);
    assert_eq!(stopped.tokens.len(), block + 1 - prompt.len());
    assert_eq!(stopped.tokens, slid.tokens[..stopped.tokens.len()]);

    // A prompt longer than the context is cropped to its last block_size tokens.
    let long: Vec<u32> = idx[..block + 20].to_vec();
    let from_long = Generator::new(&gpt, GenerationConfig::greedy(5), &device)
        .unwrap()
        .generate(std::slice::from_ref(&long))
        .unwrap();
    let from_cropped = Generator::new(&gpt, GenerationConfig::greedy(5), &device)
        .unwrap()
        .generate(&[long[20..].to_vec()])
        .unwrap();
    assert_eq!(from_long[0][0].tokens, from_cropped[0][0].tokens);

    // Beam search slides too: it reaches the requested length.
    let beams = GenerationConfig::greedy(70).with_num_beams(3);
    let out = Generator::new(&gpt, beams, &device)
        .unwrap()
        .generate(std::slice::from_ref(&prompt))
        .unwrap();
    assert_eq!(out[0][0].tokens.len(), 70);
    assert_eq!(out[0][0].finish, FinishReason::MaxNewTokens);
}

/// `generation_config.json` as transformers wrote it maps field by field to what transformers
/// reads back (`expected.json`, `tests/fixtures/make_generation_config.py`); unset fields keep the
/// defaults transformers' `generate` resolves them to; an option ember-lm lacks is refused by name.
#[test]
fn generation_config_json_reads_as_transformers_reads_it() {
    use serde_json::Value;
    for case in ["sampling", "beams"] {
        let dir = fixture_path(&format!("generation_config/{case}"));
        let c = GenerationConfig::from_pretrained(&dir).unwrap();
        let text = std::fs::read_to_string(dir.join("expected.json")).unwrap();
        let want: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
        let d = GenerationConfig::new();
        let f = |k: &str| want[k].as_f64();
        let u = |k: &str| want[k].as_u64().map(|v| v as usize);
        assert_eq!(
            c.max_new_tokens,
            u("max_new_tokens").unwrap_or(d.max_new_tokens),
            "{case}"
        );
        assert_eq!(
            c.do_sample,
            want["do_sample"].as_bool().unwrap_or(false),
            "{case}"
        );
        assert_eq!(c.temperature, f("temperature").unwrap_or(1.0), "{case}");
        assert_eq!(c.top_k, u("top_k").unwrap_or(50), "{case}");
        assert_eq!(c.top_p, f("top_p").unwrap_or(1.0), "{case}");
        assert_eq!(c.min_p, f("min_p"), "{case}");
        assert_eq!(
            c.repetition_penalty,
            f("repetition_penalty").unwrap_or(1.0),
            "{case}"
        );
        assert_eq!(
            c.no_repeat_ngram_size,
            u("no_repeat_ngram_size").unwrap_or(0),
            "{case}"
        );
        assert_eq!(c.num_beams, u("num_beams").unwrap_or(1), "{case}");
        assert_eq!(c.length_penalty, f("length_penalty").unwrap_or(1.0), "{case}");
        let stopping = match &want["early_stopping"] {
            Value::Bool(true) => BeamStopping::Eager,
            Value::String(s) if s == "never" => BeamStopping::Never,
            _ => BeamStopping::Heuristic,
        };
        assert_eq!(c.early_stopping, stopping, "{case}");
        assert_eq!(
            c.num_return_sequences,
            u("num_return_sequences").unwrap_or(1),
            "{case}"
        );
        let eos: Vec<u32> = want["eos_token_id"]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_u64().unwrap() as u32).collect())
            .unwrap_or_default();
        assert_eq!(c.eos_token_ids, eos, "{case}");
        assert_eq!(
            c.bos_token_id,
            want["bos_token_id"].as_u64().map(|v| v as u32),
            "{case}"
        );
    }
    let err = GenerationConfig::from_pretrained(fixture_path("generation_config/unsupported")).unwrap_err();
    assert!(
        err.to_string()
            .contains("`diversity_penalty` is 0.5, which ember-lm"),
        "{err}"
    );
    // The tiny GPT-2's file: its EOS (0) comes with it, as transformers' generate uses it.
    let c = GenerationConfig::from_pretrained(fixture_path("gpt2-tiny")).unwrap();
    assert_eq!((c.eos_token_ids.clone(), c.bos_token_id), (vec![0], Some(0)));
    // No generation_config.json: config.json's generation fields, as from_model_config.
    let dir = std::env::temp_dir().join(format!("ember-genconf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("config.json"),
        r#"{"model_type": "gpt2", "eos_token_id": 5, "n_embd": 8}"#,
    )
    .unwrap();
    assert_eq!(
        GenerationConfig::from_pretrained(&dir).unwrap().eos_token_ids,
        vec![5]
    );
    // Broken files are errors that name them.
    std::fs::write(dir.join("generation_config.json"), "{ not json").unwrap();
    let err = GenerationConfig::from_pretrained(&dir).unwrap_err();
    assert!(err.to_string().contains("generation_config.json"), "{err}");
    std::fs::write(dir.join("generation_config.json"), r#"{"eos_token_id": -1}"#).unwrap();
    assert!(GenerationConfig::from_pretrained(&dir).is_err());
    std::fs::write(dir.join("generation_config.json"), r#"{"max_length": 50}"#).unwrap();
    let err = GenerationConfig::from_pretrained(&dir).unwrap_err();
    assert!(err.to_string().contains("max_new_tokens"), "{err}");
    std::fs::write(dir.join("generation_config.json"), r#"{"top_p": 1.5}"#).unwrap();
    assert!(GenerationConfig::from_pretrained(&dir).is_err());
    std::fs::remove_dir_all(&dir).ok();
}

/// A padded batch, left or right, with its attention mask: `Gpt::forward_padded` equals
/// transformers' GPT-2 given the same mask and `generate`'s position ids, at every real position
/// (fixture `tests/fixtures/make_padded_gpt2.py`), and each row equals that prompt run alone;
/// the trait's default (row by row) agrees, as does an RnnLm.
#[test]
fn padded_batches_match_transformers_at_real_positions() {
    let device = dev();
    let gpt = Gpt::<B>::from_pretrained(fixture_path("gpt2-tiny"), &device).unwrap();
    let io = Fixture::load("generation/padded_gpt2.safetensors");
    for side in ["left", "right"] {
        let ids = Tensor::<B, 2, Int>::from_data(io.data(&format!("{side}_ids")), &device);
        let mask = Tensor::<B, 2, Int>::from_data(io.data(&format!("{side}_mask")), &device);
        let want = io.tensor::<B, 3>(&format!("{side}_logits"), &device);
        let got = gpt.forward_padded(ids.clone(), mask.clone(), None).unwrap();
        let m: Vec<i64> = mask.clone().into_data().convert::<i64>().into_vec().unwrap();
        let [batch, time, vocab] = got.dims();
        for b in 0..batch {
            for t in (0..time).filter(|&t| m[b * time + t] == 1) {
                let pick = |x: &Tensor<B, 3>| x.clone().slice([b..b + 1, t..t + 1, 0..vocab]).into_data();
                common::assert_close(
                    &format!("{side} row {b} position {t}"),
                    pick(&got),
                    pick(&want),
                    1e-4,
                    1e-4,
                );
            }
        }
        assert!(
            !got.clone().is_nan().any().into_scalar(),
            "{side}: NaN in the padded logits"
        );
        // The trait: Gpt's batched path, and the default row by row, agree at real positions.
        let batched = LanguageModel::logits_padded(&gpt, ids.clone(), mask.clone()).unwrap();
        let rows = row_by_row(&gpt, ids, mask);
        common::assert_close(
            &format!("{side} trait"),
            batched.into_data(),
            rows.into_data(),
            1e-4,
            1e-4,
        );
    }
    // Edges: a row that is all padding stays finite and leaves the others as they were; a row
    // of one token equals that token alone (the unpadded forward, itself checked against
    // transformers in tests/gpt.rs).
    let ids = Tensor::<B, 2, Int>::from_data(
        TensorData::new(vec![5i64, 17, 300, 0, 0, 42, 0, 0, 0], [3, 3]),
        &device,
    );
    let mask = Tensor::<B, 2, Int>::from_data(
        TensorData::new(vec![1i64, 1, 1, 0, 0, 1, 0, 0, 0], [3, 3]),
        &device,
    );
    let got = gpt.forward_padded(ids.clone(), mask, None).unwrap();
    assert!(
        !got.clone().is_nan().any().into_scalar(),
        "an all-padding row gave NaN"
    );
    let alone =
        |row: std::ops::Range<usize>, len: usize| gpt.forward(ids.clone().slice([row, 0..len])).unwrap();
    let vocab = got.dims()[2];
    common::assert_close(
        "full row",
        got.clone().slice([0..1, 0..3, 0..vocab]).into_data(),
        alone(0..1, 3).into_data(),
        1e-5,
        1e-5,
    );
    let one = Tensor::<B, 2, Int>::from_data(TensorData::new(vec![42i64], [1, 1]), &device);
    common::assert_close(
        "one-token row",
        got.slice([1..2, 2..3, 0..vocab]).into_data(),
        gpt.forward(one).unwrap().into_data(),
        1e-5,
        1e-5,
    );
    // Bad masks are errors that say what they expected.
    let ids = Tensor::<B, 2, Int>::from_data(io.data("left_ids"), &device);
    let two = Tensor::<B, 2, Int>::from_data(TensorData::new(vec![2i64; 21], [3, 7]), &device);
    assert!(gpt.forward_padded(ids.clone(), two, None).is_err());
    let short = Tensor::<B, 2, Int>::from_data(TensorData::new(vec![1i64; 6], [3, 2]), &device);
    assert!(matches!(
        gpt.forward_padded(ids.clone(), short, None),
        Err(Error::Shape { .. })
    ));
    let far = Tensor::<B, 2, Int>::from_data(TensorData::new(vec![64i64; 21], [3, 7]), &device);
    let ones = Tensor::<B, 2, Int>::from_data(TensorData::new(vec![1i64; 21], [3, 7]), &device);
    assert!(matches!(
        gpt.forward_padded(ids.clone(), ones, Some(far)),
        Err(Error::Index { .. })
    ));
    let holes = Tensor::<B, 2, Int>::from_data(
        TensorData::new([1i64, 0, 1, 1, 1, 1, 1].repeat(3), [3, 7]),
        &device,
    );
    let err = row_by_row_result(&gpt, ids, holes).unwrap_err();
    assert!(err.to_string().contains("one contiguous run"), "{err}");
}

/// The trait's default implementation, called on a type that does not override it.
struct Rows<'a>(&'a Gpt<B>);

impl LanguageModel<B> for Rows<'_> {
    type State = <Gpt<B> as LanguageModel<B>>::State;
    fn vocab_size(&self) -> usize {
        LanguageModel::vocab_size(self.0)
    }
    fn max_len(&self) -> Option<usize> {
        LanguageModel::max_len(self.0)
    }
    fn logits(&self, ids: Tensor<B, 2, Int>) -> Result<Tensor<B, 3>> {
        self.0.forward(ids)
    }
    fn init_state(&self, batch: usize, device: &burn::backend::ndarray::NdArrayDevice) -> Self::State {
        self.0.init_state(batch, device)
    }
    fn step(&self, ids: Tensor<B, 2, Int>, state: &mut Self::State) -> Result<Tensor<B, 3>> {
        self.0.step(ids, state)
    }
    fn reorder_state(&self, state: &mut Self::State, indices: &[usize]) -> Result<()> {
        self.0.reorder_state(state, indices)
    }
}

fn row_by_row_result(gpt: &Gpt<B>, ids: Tensor<B, 2, Int>, mask: Tensor<B, 2, Int>) -> Result<Tensor<B, 3>> {
    Rows(gpt).logits_padded(ids, mask)
}

fn row_by_row(gpt: &Gpt<B>, ids: Tensor<B, 2, Int>, mask: Tensor<B, 2, Int>) -> Tensor<B, 3> {
    row_by_row_result(gpt, ids, mask).unwrap()
}
