//! The fused recurrence in burn tensor ops, for backends whose tensors live on a device (wgpu): the
//! forward pass keeps each step's gates and states, and backpropagation through time is written
//! out by hand — one loop over the steps in reverse, then one matmul per weight gradient — so the
//! recurrence is a single autodiff node instead of a few dozen per step.

use std::sync::Arc;

use burn::tensor::Tensor;
use burn::tensor::activation::relu;

use super::composed::{sigmoid, step_masks};
use super::saved::{Saved, SavedSequence};
use super::{
    Backend, CellType, SequenceArgs, SequenceDims, SequenceGrads, SequenceOutput, SequenceOutputGrads,
};

/// What the backward pass reads: the arguments and, per step (by time index), the gates and the
/// states before the step. Every per-step tensor is `[N, ·]`.
pub(crate) struct DeviceWork<B: burn::tensor::backend::Backend> {
    kind: CellType,
    /// The sizes, from the forward's arguments.
    dims: SequenceDims,
    reverse: bool,
    input: Tensor<B, 3>,
    weight_ih: Tensor<B, 2>,
    weight_hh: Tensor<B, 2>,
    weight_hr: Option<Tensor<B, 2>>,
    has_bias: bool,
    masks: Option<Vec<Tensor<B, 2>>>,
    /// LSTM: i, f, g, o; GRU: r, z, n, W_hn h + b_hn; RNN: h'.
    gates: Vec<Vec<Tensor<B, 2>>>,
    h_prev: Vec<Tensor<B, 2>>,
    c_prev: Vec<Tensor<B, 2>>,
}

impl<B: burn::tensor::backend::Backend> DeviceWork<B> {
    pub(crate) fn kind(&self) -> CellType {
        self.kind
    }
}

/// The device recurrence as a [`Backend::recurrent_sequence_saved`] implementation.
pub fn device_sequence_saved<B: Backend>(args: SequenceArgs<B>) -> (SequenceOutput<B>, SavedSequence<B>) {
    let dims = args.dims();
    let (kind, input, h0, c0) = (args.kind, args.input, args.h0, args.c0);
    let (lengths, reverse, w) = (args.lengths, args.reverse, args.weights);
    let device = input.device();
    let (n, t_len, i, h, gh) = (
        dims.batch,
        dims.time,
        dims.input,
        dims.hidden,
        dims.gates_hidden(),
    );
    let has_bias = w.bias_ih.is_some();
    // One bias on the projections; GRU keeps b_hn apart, inside r ⊙ (W_hn h + b_hn).
    let (b_x, b_hn) = match (w.bias_ih, w.bias_hh) {
        (Some(bi), Some(bh)) if kind == CellType::Gru => {
            let rz = Tensor::cat(vec![bh.clone().slice(0..2 * h), Tensor::zeros([h], &device)], 0);
            (Some(bi + rz), Some(bh.slice(2 * h..3 * h).unsqueeze::<2>()))
        }
        (Some(bi), Some(bh)) => (Some(bi + bh), None),
        _ => (None, None),
    };
    // [N, T, I] -> [N*T, I] -> [N*T, G*H] -> [N, T, G*H]
    let mut xp = input
        .clone()
        .reshape([n * t_len, i])
        .matmul(w.weight_ih.clone().transpose());
    if let Some(b) = b_x {
        xp = xp + b.unsqueeze::<2>();
    }
    let xp = xp.reshape([n, t_len, gh]);
    let w_hh_t = w.weight_hh.clone().transpose(); // [R, G*H]
    let w_hr_t = w.weight_hr.clone().map(|w| w.transpose()); // [H, P]
    let masks = step_masks::<B>(lengths, t_len, &device);

    let mut hs = h0;
    let mut cs = c0;
    let mut gates = vec![Vec::new(); t_len];
    let mut h_prev = vec![hs.clone(); t_len];
    let mut c_prev = Vec::new();
    if kind == CellType::Lstm {
        c_prev = vec![cs.clone().expect("an LSTM has a cell state"); t_len];
    }
    let mut outputs = vec![hs.clone(); t_len];
    for s in 0..t_len {
        let t = if reverse { t_len - 1 - s } else { s };
        let x = xp.clone().slice([0..n, t..t + 1]).reshape([n, gh]);
        let hh = hs.clone().matmul(w_hh_t.clone());
        h_prev[t] = hs.clone();
        let (h_new, c_new) = match kind {
            CellType::RnnTanh | CellType::RnnRelu => {
                let a = if kind == CellType::RnnTanh {
                    (x + hh).tanh()
                } else {
                    relu(x + hh)
                };
                gates[t] = vec![a.clone()];
                (a, None)
            }
            CellType::Lstm => {
                let [ig, fg, gg, og]: [Tensor<B, 2>; 4] = chunks(x + hh);
                let (ig, fg, gg, og) = (sigmoid(ig), sigmoid(fg), gg.tanh(), sigmoid(og));
                let c = cs.clone().expect("an LSTM has a cell state");
                c_prev[t] = c.clone();
                let c_new = fg.clone() * c + ig.clone() * gg.clone();
                let mut h_new = og.clone() * c_new.clone().tanh();
                if let Some(w) = &w_hr_t {
                    h_new = h_new.matmul(w.clone());
                }
                gates[t] = vec![ig, fg, gg, og];
                (h_new, Some(c_new))
            }
            CellType::Gru => {
                let [xr, xz, xn]: [Tensor<B, 2>; 3] = chunks(x);
                let [hr, hz, hn]: [Tensor<B, 2>; 3] = chunks(hh);
                let lin = match &b_hn {
                    Some(b) => hn + b.clone(),
                    None => hn,
                };
                let r = sigmoid(xr + hr);
                let z = sigmoid(xz + hz);
                let nn = (xn + r.clone() * lin.clone()).tanh();
                let h_new = nn.clone() + z.clone() * (hs.clone() - nn.clone());
                gates[t] = vec![r, z, nn, lin];
                (h_new, None)
            }
        };
        match &masks {
            Some(masks) => {
                let m = masks[t].clone();
                outputs[t] = h_new.clone() * m.clone();
                hs = hs.clone() + (h_new - hs) * m.clone();
                cs = cs.zip(c_new).map(|(c, c_new)| c.clone() + (c_new - c) * m);
            }
            None => {
                outputs[t] = h_new.clone();
                hs = h_new;
                cs = c_new;
            }
        }
    }
    let out = SequenceOutput {
        output: Tensor::stack(outputs, 1), // T x [N, R] -> [N, T, R]
        h_n: hs,
        c_n: cs,
    };
    let work = DeviceWork {
        kind,
        dims,
        reverse,
        input,
        weight_ih: w.weight_ih,
        weight_hh: w.weight_hh,
        weight_hr: w.weight_hr,
        has_bias,
        masks,
        gates,
        h_prev,
        c_prev,
    };
    (out, SavedSequence::new(device, Saved::Device(Arc::new(work))))
}

/// Backpropagation through time for [`device_sequence_saved`].
pub(crate) fn backward<B: Backend>(w: &DeviceWork<B>, grads: SequenceOutputGrads<B>) -> SequenceGrads<B> {
    let d = w.dims;
    let (n, t_len, i, h, r, gh) = (d.batch, d.time, d.input, d.hidden, d.state, d.gates_hidden());
    let device = w.input.device();
    let mut dh = grads.h_n;
    let mut dc = grads
        .c_n
        .or_else(|| (w.kind == CellType::Lstm).then(|| Tensor::zeros([n, h], &device)));
    let mut d_x = vec![Tensor::<B, 2>::zeros([n, gh], &device); t_len];
    let mut d_gh = if w.kind == CellType::Gru {
        d_x.clone()
    } else {
        Vec::new()
    };
    let mut d_proj = Vec::new();
    let mut m_all = Vec::new();
    if w.weight_hr.is_some() {
        d_proj = vec![Tensor::<B, 2>::zeros([n, r], &device); t_len];
        m_all = vec![Tensor::<B, 2>::zeros([n, h], &device); t_len];
    }
    let one = |t: &Tensor<B, 2>| t.ones_like();
    for s in (0..t_len).rev() {
        let t = if w.reverse { t_len - 1 - s } else { s };
        let m = w.masks.as_ref().map(|m| m[t].clone()); // [N, 1]
        let masked = |x: Tensor<B, 2>| match &m {
            Some(m) => x * m.clone(),
            None => x,
        };
        // Outputs at padded steps are constant zeros: their gradient does not flow.
        let d_out = grads.output.clone().slice([0..n, t..t + 1]).reshape([n, r]);
        let dht = dh.clone() + masked(d_out);
        let g = &w.gates[t];
        // d (h W_hhᵀ) and the direct gradient to the previous state, before masking.
        let (dg_x, dg_h, direct) = match w.kind {
            CellType::RnnTanh | CellType::RnnRelu => {
                let a = g[0].clone();
                let deriv = if w.kind == CellType::RnnTanh {
                    one(&a) - a.clone() * a
                } else {
                    a.greater_elem(0.0).float()
                };
                let d = dht.clone() * deriv;
                (d.clone(), d, None)
            }
            CellType::Lstm => {
                let (ig, fg, gg, og) = (g[0].clone(), g[1].clone(), g[2].clone(), g[3].clone());
                let cp = w.c_prev[t].clone();
                let tc = (fg.clone() * cp.clone() + ig.clone() * gg.clone()).tanh();
                let dm = match &w.weight_hr {
                    Some(w_hr) => {
                        d_proj[t] = masked(dht.clone());
                        m_all[t] = og.clone() * tc.clone();
                        dht.clone().matmul(w_hr.clone()) // [N, P] x [P, H]
                    }
                    None => dht.clone(),
                };
                let dc_in = dc.clone().expect("an LSTM has a cell state");
                let dcn = dc_in.clone() + dm.clone() * og.clone() * (one(&tc) - tc.clone() * tc.clone());
                let di = dcn.clone() * gg.clone() * ig.clone() * (one(&ig) - ig.clone());
                let df = dcn.clone() * cp * fg.clone() * (one(&fg) - fg.clone());
                let dgg = dcn.clone() * ig * (one(&gg) - gg.clone() * gg);
                let dog = dm * tc * og.clone() * (one(&og) - og);
                let dc_prev = dcn * fg;
                dc = Some(match &m {
                    Some(m) => dc_in.clone() + (dc_prev - dc_in) * m.clone(),
                    None => dc_prev,
                });
                let d = Tensor::cat(vec![di, df, dgg, dog], 1);
                (d.clone(), d, None)
            }
            CellType::Gru => {
                let (rg, zg, ng, lin) = (g[0].clone(), g[1].clone(), g[2].clone(), g[3].clone());
                let hp = w.h_prev[t].clone();
                let dnp = dht.clone() * (one(&zg) - zg.clone()) * (one(&ng) - ng.clone() * ng.clone());
                let drp = dnp.clone() * lin * rg.clone() * (one(&rg) - rg.clone());
                let dzp = dht.clone() * (hp - ng) * zg.clone() * (one(&zg) - zg.clone());
                let dg_x = Tensor::cat(vec![drp.clone(), dzp.clone(), dnp.clone()], 1);
                let dg_h = Tensor::cat(vec![drp, dzp, dnp * rg], 1);
                (dg_x, dg_h, Some(dht.clone() * zg))
            }
        };
        let (dg_x, dg_h) = (masked(dg_x), masked(dg_h));
        // Sequences that did not step keep their state, and so their gradient.
        let kept = match &m {
            Some(m) => dh.clone() * (one(m) - m.clone()),
            None => dh.zeros_like(),
        };
        dh = kept + dg_h.clone().matmul(w.weight_hh.clone());
        if let Some(direct) = direct {
            dh = dh + masked(direct);
        }
        d_x[t] = dg_x;
        if w.kind == CellType::Gru {
            d_gh[t] = dg_h;
        }
    }
    // T x [N, ·] -> [N, T, ·] -> [N*T, ·]
    let rows = |v: Vec<Tensor<B, 2>>, width: usize| Tensor::stack::<3>(v, 1).reshape([n * t_len, width]);
    let dxp = rows(d_x, gh);
    let dgh = if w.kind == CellType::Gru {
        rows(d_gh, gh)
    } else {
        dxp.clone()
    };
    let h_prev = rows(w.h_prev.clone(), r);
    let x = w.input.clone().reshape([n * t_len, i]);
    let column_sums = |m: Tensor<B, 2>| m.sum_dim(0).reshape([gh]);
    SequenceGrads {
        input: grads
            .need_input
            .then(|| dxp.clone().matmul(w.weight_ih.clone()).reshape([n, t_len, i])),
        weight_ih: dxp.clone().transpose().matmul(x),
        bias_ih: w.has_bias.then(|| column_sums(dxp.clone())),
        weight_hh: dgh.clone().transpose().matmul(h_prev),
        bias_hh: w.has_bias.then(|| column_sums(dgh)),
        weight_hr: w
            .weight_hr
            .is_some()
            .then(|| rows(d_proj, d.proj).transpose().matmul(rows(m_all, h))),
        h0: dh,
        c0: dc,
    }
}

fn chunks<B: burn::tensor::backend::Backend, const G: usize>(t: Tensor<B, 2>) -> [Tensor<B, 2>; G] {
    t.chunk(G, 1)
        .try_into()
        .unwrap_or_else(|_| unreachable!("chunk(G) returns G tensors"))
}
