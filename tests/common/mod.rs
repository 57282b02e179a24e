//! Helpers shared by the integration tests: fixtures written by `tests/fixtures/*.py`, tolerant
//! comparison, and a central-difference gradient checker.
#![allow(dead_code)]

pub mod attention;
pub mod bert;
pub mod ctc;
pub mod fused_ops;
pub mod gpt;
pub mod recurrent;
pub mod seq2seq;
pub mod speech;
pub mod train;
pub mod transformer;

use std::collections::HashMap;
use std::path::PathBuf;

use burn::tensor::{Tensor, TensorData, backend::Backend};
use safetensors::SafeTensors;

/// Path of a file under `tests/fixtures/`.
/// `EMBER_LM_FIXTURES` overrides the directory, for a test binary run away from its checkout
/// (the GPU machine of `benches/gpu_run.sh`).
pub fn fixture_path(rel: &str) -> PathBuf {
    std::env::var_os("EMBER_LM_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures"))
        .join(rel)
}

/// A JSON fixture under `tests/fixtures/`.
pub fn json_fixture(rel: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(fixture_path(rel)).unwrap_or_else(|e| panic!("fixture {rel}: {e}")))
        .unwrap_or_else(|e| panic!("fixture {rel}: {e}"))
}

/// A JSON array of strings.
pub fn json_strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// A JSON array of arrays of non-negative integers.
pub fn json_rows(v: &serde_json::Value) -> Vec<Vec<u32>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect()
        })
        .collect()
}

/// The tensors of a safetensors fixture, as f32, f64 or i64 host data.
pub struct Fixture {
    pub name: String,
    tensors: HashMap<String, TensorData>,
}

impl Fixture {
    pub fn load(rel: &str) -> Self {
        let bytes = std::fs::read(fixture_path(rel)).unwrap_or_else(|e| panic!("fixture {rel}: {e}"));
        let st = SafeTensors::deserialize(&bytes).expect("valid safetensors fixture");
        let tensors = st
            .tensors()
            .into_iter()
            .map(|(name, view)| {
                let shape = view.shape().to_vec();
                let raw = view.data();
                let data = match view.dtype() {
                    safetensors::Dtype::F32 => {
                        let v: Vec<f32> = raw
                            .chunks_exact(4)
                            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                            .collect();
                        TensorData::new(v, shape)
                    }
                    safetensors::Dtype::F64 => {
                        let v: Vec<f64> = raw
                            .chunks_exact(8)
                            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                            .collect();
                        TensorData::new(v, shape)
                    }
                    safetensors::Dtype::I64 => {
                        let v: Vec<i64> = raw
                            .chunks_exact(8)
                            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
                            .collect();
                        TensorData::new(v, shape)
                    }
                    safetensors::Dtype::U8 => {
                        let v: Vec<bool> = raw.iter().map(|&b| b != 0).collect();
                        TensorData::new(v, shape)
                    }
                    other => panic!("unsupported fixture dtype {other:?}"),
                };
                (name, data)
            })
            .collect();
        Self {
            name: rel.to_string(),
            tensors,
        }
    }

    pub fn keys(&self) -> impl Iterator<Item = String> + '_ {
        self.tensors.keys().cloned()
    }

    pub fn has(&self, key: &str) -> bool {
        self.tensors.contains_key(key)
    }

    pub fn data(&self, key: &str) -> TensorData {
        self.tensors
            .get(key)
            .unwrap_or_else(|| panic!("{}: no key {key}", self.name))
            .clone()
    }

    pub fn tensor<B: Backend, const D: usize>(&self, key: &str, device: &B::Device) -> Tensor<B, D> {
        Tensor::from_data(self.data(key), device)
    }

    pub fn lengths(&self) -> Vec<usize> {
        self.data("lengths").iter::<i64>().map(|v| v as usize).collect()
    }
}

/// Asserts `|a - b| <= atol + rtol * |b|` elementwise, with the worst offender in the message.
pub fn assert_close(what: &str, actual: TensorData, expected: TensorData, atol: f64, rtol: f64) {
    assert_eq!(actual.shape, expected.shape, "{what}: shape");
    let a: Vec<f64> = actual.iter::<f64>().collect();
    let b: Vec<f64> = expected.iter::<f64>().collect();
    let mut worst: Option<(usize, f64)> = None;
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        let excess = (x - y).abs() - (atol + rtol * y.abs());
        if (excess.is_nan() || excess > 0.0) && worst.is_none_or(|(_, w)| excess > w) {
            worst = Some((i, excess));
        }
    }
    if let Some((i, _)) = worst {
        panic!(
            "{what}: element {i} is {} but the reference is {} (atol {atol}, rtol {rtol})",
            a[i], b[i]
        );
    }
}

/// Central differences of a scalar function of one tensor, element by element.
pub fn finite_difference<B: Backend, const D: usize>(
    f: impl Fn(Tensor<B, D>) -> f64,
    x: &Tensor<B, D>,
    eps: f64,
) -> Vec<f64> {
    let data = x.to_data();
    let shape = data.shape.clone();
    let base: Vec<f64> = data.iter::<f64>().collect();
    let device = x.device();
    (0..base.len())
        .map(|i| {
            let mut plus = base.clone();
            plus[i] += eps;
            let mut minus = base.clone();
            minus[i] -= eps;
            let fp = f(Tensor::from_data(TensorData::new(plus, shape.clone()), &device));
            let fm = f(Tensor::from_data(TensorData::new(minus, shape.clone()), &device));
            (fp - fm) / (2.0 * eps)
        })
        .collect()
}
