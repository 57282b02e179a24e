//! The Hugging Face GPT-2 parity check (used by the CPU tests and the wgpu suite).
#![allow(dead_code)]

use super::{Fixture, assert_close, fixture_path};
use burn::tensor::{Int, Tensor};
use ember_lm::models::Gpt;

/// A one-block GPT over 10 ids with a context of 8 and width 8, for behaviour tests.
pub fn tiny_config() -> ember_lm::models::GptConfig {
    ember_lm::models::GptConfig::new()
        .with_vocab_size(10)
        .with_block_size(8)
        .with_n_layer(1)
        .with_n_head(2)
        .with_n_embd(8)
}

/// The tiny checkpoint written by `tests/fixtures/make_gpt2.py`.
pub fn tiny_dir() -> std::path::PathBuf {
    fixture_path("gpt2-tiny")
}

/// Greedy decoding of `steps` tokens after `prompt` with the KV cache.
pub fn greedy<B: ember_lm::Backend>(model: &Gpt<B>, prompt: Tensor<B, 2, Int>, steps: usize) -> Vec<i64> {
    let device = prompt.device();
    let mut cache = model.new_cache(1, &device);
    let mut tokens: Vec<i64> = prompt.to_data().iter::<i64>().collect();
    let mut logits = model.forward_cached(prompt, &mut cache).unwrap();
    for _ in 0..steps {
        let t = logits.dims()[1];
        // [1, t, V] -> last position -> [1, 1]
        let next = logits.slice([0..1, t - 1..t]).argmax(2).reshape([1, 1]);
        tokens.push(next.to_data().iter::<i64>().next().unwrap());
        logits = model.forward_cached(next, &mut cache).unwrap();
    }
    tokens
}

/// Logits, loss, two gradients and the greedy continuation against Hugging Face's `GPT2LMHeadModel`.
pub fn check_gpt2<B: ember_lm::TrainBackend>(device: &B::Device, atol: f64, rtol: f64) {
    let io = Fixture::load("gpt2-tiny-reference.safetensors");
    let model = Gpt::<B>::from_pretrained(tiny_dir(), device).unwrap();
    let ids = Tensor::<B, 2, Int>::from_data(io.data("ids"), device);
    let logits = model.forward(ids.clone()).unwrap();
    assert_close("gpt2 logits", logits.to_data(), io.data("logits"), atol, rtol);

    // GPT2LMHeadModel's loss with labels = ids: position t predicts token t + 1, averaged.
    let loss = ember_lm::nn::CrossEntropyLossConfig::new()
        .init()
        .unwrap()
        .language_model(logits, ids)
        .unwrap();
    assert_close(
        "gpt2 loss",
        loss.to_data().convert::<f32>(),
        io.data("loss"),
        atol,
        rtol,
    );
    let grads = loss.backward();
    assert_close(
        "gpt2 grad wte",
        model.wte.val().grad(&grads).unwrap().to_data(),
        io.data("grad.wte"),
        atol,
        rtol,
    );
    // The same gradients by PyTorch key (nanoGPT's names, Linear layout), as `p.grad` over
    // `named_parameters()`: the tied lm_head once, as wte.
    let named = ember_lm::io::named_grads(&model, &grads);
    let by_key = |k: &str| named.iter().find(|(key, _)| key == k).map(|(_, g)| g.clone());
    assert!(
        by_key("lm_head.weight").is_none(),
        "a tied parameter is listed once"
    );
    assert_close(
        "gpt2 named grad wte",
        by_key("transformer.wte.weight").expect("wte's gradient"),
        io.data("grad.wte"),
        atol,
        rtol,
    );
    let c_attn_named = by_key("transformer.h.0.attn.c_attn.weight").expect("c_attn's gradient");
    let c_attn_named: Tensor<B::InnerBackend, 2> = Tensor::from_data(c_attn_named, device);
    assert_close(
        "gpt2 named grad h.0.attn.c_attn.weight",
        c_attn_named.transpose().to_data(),
        io.data("grad.h.0.attn.c_attn.weight"),
        atol,
        rtol,
    );
    assert_eq!(
        named.len(),
        ember_lm::io::TorchWeights::named_parameters(&model)
            .unwrap()
            .len(),
        "every parameter of the tiny GPT-2 has a gradient"
    );
    // Ours is PyTorch's Linear layout [3D, D]; Conv1D's is [D, 3D].
    let c_attn = model.h[0].self_attn.in_proj_weight.val().grad(&grads).unwrap();
    assert_close(
        "gpt2 grad h.0.attn.c_attn.weight",
        c_attn.transpose().to_data(),
        io.data("grad.h.0.attn.c_attn.weight"),
        atol,
        rtol,
    );

    let margin = io.data("greedy_margin").iter::<f64>().next().unwrap();
    assert!(
        margin > 1e-2,
        "the fixture's greedy choices must not be near-ties ({margin})"
    );
    let prompt = Tensor::<B, 2, Int>::from_data(io.data("prompt"), device);
    let expected: Vec<i64> = io.data("greedy").iter::<i64>().collect();
    assert_eq!(greedy(&model, prompt, 20), expected, "greedy continuation");
}
