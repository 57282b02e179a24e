//! The fallback: a layer-direction composed of burn tensor ops, for any backend.
//!
//! Per step: one recurrent matmul and the gate arithmetic; with lengths, a `[N, 1]` mask freezes
//! the state of sequences that have ended (or, walking in reverse, not yet started).

use burn::tensor::activation::relu;
use burn::tensor::{Tensor, TensorData, backend::Backend};

use super::{CellType, SequenceArgs, SequenceOutput};

/// One `[N, 1]` mask per step (1 while the sequence is still running), or `None` when every
/// sequence is full length.
pub(crate) fn step_masks<B: Backend>(
    lengths: Option<Vec<usize>>,
    time: usize,
    device: &B::Device,
) -> Option<Vec<Tensor<B, 2>>> {
    let lengths = lengths.filter(|l| l.iter().any(|&l| l < time))?;
    let batch = lengths.len();
    let masks = (0..time)
        .map(|t| {
            let m: Vec<f32> = lengths.iter().map(|&l| if t < l { 1.0 } else { 0.0 }).collect();
            Tensor::from_data(TensorData::new(m, [batch, 1]), device)
        })
        .collect();
    Some(masks)
}

/// `σ(x) = (1 + tanh(x / 2)) / 2`. burn 0.21's default `sigmoid` computes in f32 whatever the
/// backend's float type (it casts, then chains six ops), which breaks f64 gradient checks and costs
/// more passes over memory than this form.
pub(crate) fn sigmoid<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    (x * 0.5).tanh() * 0.5 + 0.5
}

/// The tensor-op composition of [`Backend::recurrent_sequence`](super::Backend::recurrent_sequence)
/// that backends without a kernel run, public as a reference for checking a new kernel.
pub fn forward<B: Backend>(args: SequenceArgs<B>) -> SequenceOutput<B> {
    let dims = args.dims();
    let (kind, input, h0, c0) = (args.kind, args.input, args.h0, args.c0);
    let (lengths, reverse, w) = (args.lengths, args.reverse, args.weights);
    let (batch, time, features, gh) = (dims.batch, dims.time, dims.input, dims.gates_hidden());
    let device = input.device();
    let w_ih = w.weight_ih.transpose(); // [I, G*H]
    let w_hh = w.weight_hh.transpose(); // [R, G*H]
    let w_hr = w.weight_hr.map(|w| w.transpose()); // [H, P]
    let b_ih = w.bias_ih.map(|b| b.unsqueeze::<2>()); // [1, G*H]
    let b_hh = w.bias_hh.map(|b| b.unsqueeze::<2>()); // [1, G*H]
    // GRU keeps b_hn inside r * (W_hn h + b_hn); the other cells can add one summed bias.
    let (b_x, b_h) = match (kind, b_ih, b_hh) {
        (CellType::Gru, bi, bh) => (bi, bh),
        (_, Some(bi), Some(bh)) => (Some(bi + bh), None),
        _ => (None, None),
    };
    let add = |t: Tensor<B, 2>, b: &Option<Tensor<B, 2>>| match b {
        Some(b) => t + b.clone(),
        None => t,
    };
    let masks = step_masks::<B>(lengths, time, &device);

    // Input projections. Without autodiff, one matmul over all steps; under autodiff, one per
    // step, because slicing a hoisted projection makes the backward pass materialise a
    // full-size gradient per step (quadratic in time).
    let projections: Vec<Tensor<B, 2>> = if B::ad_enabled(&device) {
        (0..time)
            .map(|t| {
                let x = input
                    .clone()
                    .slice([0..batch, t..t + 1])
                    .reshape([batch, features]);
                add(x.matmul(w_ih.clone()), &b_x)
            })
            .collect()
    } else {
        // [N, T, I] -> [N*T, I] -> [N*T, G*H] -> [N, T, G*H]
        let all = add(input.reshape([batch * time, features]).matmul(w_ih), &b_x);
        let all = all.reshape([batch, time, gh]);
        (0..time)
            .map(|t| all.clone().slice([0..batch, t..t + 1]).reshape([batch, gh]))
            .collect()
    };

    let mut h = h0;
    let mut c = c0;
    let mut outputs: Vec<Option<Tensor<B, 2>>> = vec![None; time];
    for s in 0..time {
        let t = if reverse { time - 1 - s } else { s };
        let x = projections[t].clone();
        let hh = add(h.clone().matmul(w_hh.clone()), &b_h);
        let (h_new, c_new) = match kind {
            CellType::RnnTanh => ((x + hh).tanh(), None),
            CellType::RnnRelu => (relu(x + hh), None),
            CellType::Lstm => {
                let [i, f, g, o] = chunk(x + hh);
                let c_prev = c.clone().expect("an LSTM has a cell state");
                let c_new = sigmoid(f) * c_prev + sigmoid(i) * g.tanh();
                let mut h_new = sigmoid(o) * c_new.clone().tanh();
                if let Some(w_hr) = &w_hr {
                    h_new = h_new.matmul(w_hr.clone());
                }
                (h_new, Some(c_new))
            }
            CellType::Gru => {
                let [xr, xz, xn] = chunk(x);
                let [hr, hz, hn] = chunk(hh);
                let r = sigmoid(xr + hr);
                let z = sigmoid(xz + hz);
                let n = (xn + r * hn).tanh();
                // (1 - z) * n + z * h
                (n.clone() + z * (h.clone() - n), None)
            }
        };
        match &masks {
            Some(masks) => {
                let m = masks[t].clone(); // [N, 1]
                outputs[t] = Some(h_new.clone() * m.clone());
                h = h.clone() + (h_new - h) * m.clone();
                c = c.zip(c_new).map(|(c, c_new)| c.clone() + (c_new - c) * m);
            }
            None => {
                outputs[t] = Some(h_new.clone());
                h = h_new;
                c = c_new;
            }
        }
    }
    // T x [N, R] -> [N, T, R]
    let output = Tensor::stack(
        outputs.into_iter().map(|o| o.expect("every step ran")).collect(),
        1,
    );
    SequenceOutput {
        output,
        h_n: h,
        c_n: c,
    }
}

fn chunk<B: Backend, const G: usize>(t: Tensor<B, 2>) -> [Tensor<B, 2>; G] {
    t.chunk(G, 1)
        .try_into()
        .unwrap_or_else(|_| unreachable!("chunk(G) returns G tensors"))
}
