//! The recurrent parity runner: builds the layer of each fixture case, loads its PyTorch weights,
//! runs it, back-propagates the fixture's loss and compares everything with PyTorch's numbers.
#![allow(dead_code)]

use super::{Fixture, assert_close, fixture_path};
use burn::tensor::{Tensor, TensorData};
use ember_lm::io::TorchWeights;
use ember_lm::nn::{GruConfig, LstmConfig, LstmState, Nonlinearity, RecurrentWeights, RnnConfig};
use serde::Deserialize;

#[derive(Deserialize, Debug, Clone)]
pub struct Case {
    pub name: String,
    pub kind: String,
    pub input_size: usize,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub bidirectional: bool,
    pub bias: bool,
    pub nonlinearity: String,
    pub proj_size: usize,
    pub ragged: bool,
    pub init_state: bool,
    pub batch_first: bool,
}

pub fn manifest() -> Vec<Case> {
    let text = std::fs::read_to_string(fixture_path("recurrent/manifest.json")).expect("manifest");
    serde_json::from_str(&text).expect("manifest parses")
}

/// What a case produced: output, h_n, c_n, and gradients keyed as in the fixture.
struct Results {
    values: Vec<(String, TensorData)>,
}

fn run_case<B: ember_lm::TrainBackend>(case: &Case, device: &B::Device) -> Results {
    let io = Fixture::load(&format!("recurrent/{}.io.safetensors", case.name));
    let weights = fixture_path(&format!("recurrent/{}.weights.safetensors", case.name));
    let x: Tensor<B, 3> = io.tensor::<B, 3>("input", device).require_grad();
    let lengths = io.lengths();
    let h0 = case
        .init_state
        .then(|| io.tensor::<B, 3>("h0", device).require_grad());
    let c0 = (case.init_state && case.kind == "lstm").then(|| io.tensor::<B, 3>("c0", device).require_grad());

    let (output, h_n, c_n, cells): (_, _, Option<Tensor<B, 3>>, Vec<RecurrentWeights<B>>) =
        match case.kind.as_str() {
            "lstm" => {
                let m = LstmConfig::new(case.input_size, case.hidden_size)
                    .with_num_layers(case.num_layers)
                    .with_bidirectional(case.bidirectional)
                    .with_bias(case.bias)
                    .with_proj_size(case.proj_size)
                    .with_batch_first(case.batch_first)
                    .init::<B>(device)
                    .unwrap()
                    .load_pytorch_file(&weights)
                    .unwrap();
                let state = h0.clone().map(|h| LstmState {
                    hidden: h,
                    cell: c0.clone().unwrap(),
                });
                let (out, st) = if case.ragged {
                    m.forward_padded(x.clone(), &lengths, state).unwrap()
                } else {
                    m.forward(x.clone(), state).unwrap()
                };
                (out, st.hidden, Some(st.cell), m.into_stack().cells)
            }
            "gru" => {
                let m = GruConfig::new(case.input_size, case.hidden_size)
                    .with_num_layers(case.num_layers)
                    .with_bidirectional(case.bidirectional)
                    .with_bias(case.bias)
                    .with_batch_first(case.batch_first)
                    .init::<B>(device)
                    .unwrap()
                    .load_pytorch_file(&weights)
                    .unwrap();
                let (out, h) = if case.ragged {
                    m.forward_padded(x.clone(), &lengths, h0.clone()).unwrap()
                } else {
                    m.forward(x.clone(), h0.clone()).unwrap()
                };
                (out, h, None, m.into_stack().cells)
            }
            "rnn" => {
                let nl = if case.nonlinearity == "relu" {
                    Nonlinearity::Relu
                } else {
                    Nonlinearity::Tanh
                };
                let m = RnnConfig::new(case.input_size, case.hidden_size)
                    .with_num_layers(case.num_layers)
                    .with_bidirectional(case.bidirectional)
                    .with_bias(case.bias)
                    .with_nonlinearity(nl)
                    .with_batch_first(case.batch_first)
                    .init::<B>(device)
                    .unwrap()
                    .load_pytorch_file(&weights)
                    .unwrap();
                let (out, h) = if case.ragged {
                    m.forward_padded(x.clone(), &lengths, h0.clone()).unwrap()
                } else {
                    m.forward(x.clone(), h0.clone()).unwrap()
                };
                (out, h, None, m.into_stack().cells)
            }
            other => panic!("unknown kind {other}"),
        };

    // The fixture's scalar loss: every output and state element weighted by a fixed random tensor.
    let mut loss = (output.clone() * io.tensor::<B, 3>("w_out", device)).sum()
        + (h_n.clone() * io.tensor::<B, 3>("w_h", device)).sum();
    if let Some(c_n) = &c_n {
        loss = loss + (c_n.clone() * io.tensor::<B, 3>("w_c", device)).sum();
    }
    let grads = loss.backward();

    let mut values = vec![
        ("output".to_string(), output.to_data()),
        ("h_n".to_string(), h_n.to_data()),
        (
            "grad.input".to_string(),
            x.grad(&grads).expect("input grad").to_data(),
        ),
    ];
    if let Some(c_n) = c_n {
        values.push(("c_n".into(), c_n.to_data()));
    }
    if let Some(h0) = &h0 {
        values.push(("grad.h0".into(), h0.grad(&grads).expect("h0 grad").to_data()));
    }
    if let Some(c0) = &c0 {
        values.push(("grad.c0".into(), c0.grad(&grads).expect("c0 grad").to_data()));
    }
    let dirs = if case.bidirectional { 2 } else { 1 };
    for (idx, cell) in cells.iter().enumerate() {
        let suffix = format!("l{}{}", idx / dirs, if idx % dirs == 1 { "_reverse" } else { "" });
        let mut push2 = |name: &str, p: &burn::module::Param<Tensor<B, 2>>| {
            values.push((
                format!("grad.{name}_{suffix}"),
                p.val().grad(&grads).expect(name).to_data(),
            ));
        };
        push2("weight_ih", &cell.weight_ih);
        push2("weight_hh", &cell.weight_hh);
        if let Some(w) = &cell.weight_hr {
            push2("weight_hr", w);
        }
        for (name, b) in [("bias_ih", &cell.bias_ih), ("bias_hh", &cell.bias_hh)] {
            if let Some(b) = b {
                values.push((
                    format!("grad.{name}_{suffix}"),
                    b.val().grad(&grads).expect(name).to_data(),
                ));
            }
        }
    }
    Results { values }
}

/// Runs every fixture case on backend `B` and compares against PyTorch.
pub fn check_all<B: ember_lm::TrainBackend>(device: &B::Device, atol: f64, rtol: f64, only: Option<&[&str]>) {
    let cases = manifest();
    assert!(cases.len() >= 14, "the manifest lists every configuration");
    for case in cases
        .iter()
        .filter(|c| only.is_none_or(|o| o.contains(&c.name.as_str())))
    {
        let io = Fixture::load(&format!("recurrent/{}.io.safetensors", case.name));
        let results = run_case::<B>(case, device);
        let mut compared = std::collections::BTreeSet::new();
        for (key, actual) in results.values {
            let expected = io.data(&key);
            assert_close(&format!("{} {key}", case.name), actual, expected, atol, rtol);
            compared.insert(key);
        }
        // Every reference in the fixture was compared: a parameter whose gradient we forgot to
        // check would otherwise pass unnoticed.
        let references: std::collections::BTreeSet<String> = io
            .keys()
            .filter(|k| k.starts_with("grad.") || ["output", "h_n", "c_n"].contains(&k.as_str()))
            .collect();
        assert_eq!(compared, references, "{}: compared tensors", case.name);
    }
}
