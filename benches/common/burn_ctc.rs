//! The inputs burn's `CTCLoss` takes: targets padded into a `[N, S]` tensor, and the input and
//! target lengths as tensors.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

/// `(padded targets [N, S], input lengths [N], target lengths [N])` on `device`.
pub fn burn_ctc_inputs<B: Backend>(
    targets: &[Vec<u32>],
    input_lengths: &[usize],
    device: &B::Device,
) -> (Tensor<B, 2, Int>, Tensor<B, 1, Int>, Tensor<B, 1, Int>) {
    let n = targets.len();
    let s = targets.iter().map(Vec::len).max().unwrap_or(1);
    let padded: Vec<i64> = targets
        .iter()
        .flat_map(|t| {
            t.iter()
                .map(|&l| l as i64)
                .chain(std::iter::repeat_n(0, s - t.len()))
        })
        .collect();
    let ints = |v: Vec<i64>| Tensor::<B, 1, Int>::from_data(TensorData::new(v, [n]), device);
    (
        Tensor::from_data(TensorData::new(padded, [n, s]), device),
        ints(input_lengths.iter().map(|&l| l as i64).collect()),
        ints(targets.iter().map(|t| t.len() as i64).collect()),
    )
}
