//! Central finite differences on `NdArray<f64>` against the autodiff gradients of each recurrent
//! layer, on padded bidirectional stacks with an initial state: the gradient with respect to the
//! input, the initial state and a recurrent weight of the reverse direction.

mod common;

use burn::backend::{Autodiff, NdArray};
use burn::module::Param;
use burn::tensor::{Distribution, Tensor, backend::Backend};
use common::finite_difference;
use ember_lm::nn::{GruConfig, LstmConfig, LstmState, Nonlinearity, RecurrentWeights, RnnConfig};

type Inner = NdArray<f64>;
type Ad = Autodiff<Inner>;

const LENGTHS: [usize; 3] = [4, 2, 3];
const EPS: f64 = 1e-6;

/// A scalar loss over a layer's output and final states, and the layer's cells so that one weight
/// can be replaced.
trait Layer<B: Backend>: Sized {
    fn cells_mut(&mut self) -> &mut Vec<RecurrentWeights<B>>;
    fn loss(&self, x: Tensor<B, 3>, h0: Tensor<B, 3>, weights: &[Tensor<B, 3>]) -> Tensor<B, 1>;
}

impl<B: ember_lm::Backend> Layer<B> for ember_lm::nn::Lstm<B> {
    fn cells_mut(&mut self) -> &mut Vec<RecurrentWeights<B>> {
        &mut self.cells
    }
    fn loss(&self, x: Tensor<B, 3>, h0: Tensor<B, 3>, w: &[Tensor<B, 3>]) -> Tensor<B, 1> {
        let cell = Tensor::ones([h0.dims()[0], h0.dims()[1], self.hidden_size()], &h0.device()) * 0.3;
        let state = LstmState { hidden: h0, cell };
        let (out, st) = self.forward_padded(x, &LENGTHS, Some(state)).unwrap();
        (out * w[0].clone()).sum() + (st.hidden * w[1].clone()).sum() + (st.cell * w[2].clone()).sum()
    }
}

macro_rules! hidden_only_layer {
    ($t:ty) => {
        impl<B: ember_lm::Backend> Layer<B> for $t {
            fn cells_mut(&mut self) -> &mut Vec<RecurrentWeights<B>> {
                &mut self.cells
            }
            fn loss(&self, x: Tensor<B, 3>, h0: Tensor<B, 3>, w: &[Tensor<B, 3>]) -> Tensor<B, 1> {
                let (out, h) = self.forward_padded(x, &LENGTHS, Some(h0)).unwrap();
                (out * w[0].clone()).sum() + (h * w[1].clone()).sum()
            }
        }
    };
}
hidden_only_layer!(ember_lm::nn::Gru<B>);
hidden_only_layer!(ember_lm::nn::Rnn<B>);

fn random<B: Backend, const D: usize>(shape: [usize; D], device: &B::Device) -> Tensor<B, D> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
}

fn assert_grad(what: &str, autodiff: Tensor<Inner, 2>, numeric: Vec<f64>) {
    let a: Vec<f64> = autodiff.to_data().iter::<f64>().collect();
    assert_eq!(a.len(), numeric.len(), "{what}: sizes");
    assert!(
        a.iter().any(|v| v.abs() > 1e-3),
        "{what}: the gradient is not trivially zero"
    );
    for (i, (x, y)) in a.iter().zip(&numeric).enumerate() {
        assert!(
            (x - y).abs() <= 1e-6 + 1e-5 * y.abs(),
            "{what}[{i}]: autodiff {x}, finite difference {y}"
        );
    }
}

/// Checks d loss / d input, d loss / d h0 and d loss / d weight_hh of cell `cell`.
fn check<L>(name: &str, build: impl Fn(&burn::tensor::Device<Ad>) -> L, out_size: usize, state_size: usize)
where
    L: Layer<Ad>,
    L: burn::module::AutodiffModule<Ad>,
    L::InnerModule: Layer<Inner>,
{
    let device = Default::default();
    Ad::seed(&device, 7);
    let mut layer = build(&device);
    let cells = layer.cells_mut().len();
    let x: Tensor<Ad, 3> = random([3, 4, 3], &device).require_grad();
    let h0: Tensor<Ad, 3> = random([cells, 3, state_size], &device).require_grad();
    let weights: Vec<Tensor<Ad, 3>> = vec![
        random([3, 4, out_size], &device),
        random([cells, 3, state_size], &device),
        random([cells, 3, 5], &device),
    ];
    let grads = layer.loss(x.clone(), h0.clone(), &weights).backward();
    let target = cells - 1; // the last cell: the reverse direction of the top layer
    let w_hh = layer.cells_mut()[target].weight_hh.val();
    let grad_x = x.grad(&grads).unwrap();
    let grad_h0 = h0.grad(&grads).unwrap();
    let grad_w = w_hh.grad(&grads).unwrap();

    let inner = layer.valid();
    let wi: Vec<Tensor<Inner, 3>> = weights.iter().map(|w| w.clone().inner()).collect();
    let (xi, h0i) = (x.inner(), h0.inner());
    let eval = |l: &L::InnerModule, x: Tensor<Inner, 3>, h0: Tensor<Inner, 3>| -> f64 {
        l.loss(x, h0, &wi).into_scalar()
    };
    let numeric_x = finite_difference(|x| eval(&inner, x, h0i.clone()), &xi, EPS);
    assert_grad(&format!("{name} d/d input"), grad_x.reshape([3, -1]), numeric_x);
    let numeric_h0 = finite_difference(|h| eval(&inner, xi.clone(), h), &h0i, EPS);
    assert_grad(
        &format!("{name} d/d h0"),
        grad_h0.reshape([cells as i32, -1]),
        numeric_h0,
    );
    let numeric_w = finite_difference(
        |w| {
            let mut l = inner.clone();
            l.cells_mut()[target].weight_hh = Param::from_tensor(w);
            eval(&l, xi.clone(), h0i.clone())
        },
        &w_hh.inner(),
        EPS,
    );
    assert_grad(&format!("{name} d/d weight_hh"), grad_w, numeric_w);
}

#[test]
fn lstm_bidirectional_padded_with_projection() {
    check(
        "lstm",
        |d| {
            LstmConfig::new(3, 5)
                .with_num_layers(2)
                .with_bidirectional(true)
                .with_proj_size(2)
                .init(d)
                .unwrap()
        },
        4,
        2,
    );
}

#[test]
fn gru_bidirectional_padded() {
    check(
        "gru",
        |d| {
            GruConfig::new(3, 5)
                .with_num_layers(2)
                .with_bidirectional(true)
                .init(d)
                .unwrap()
        },
        10,
        5,
    );
}

#[test]
fn rnn_tanh_and_relu_bidirectional_padded() {
    for nl in [Nonlinearity::Tanh, Nonlinearity::Relu] {
        check(
            &format!("rnn {nl:?}"),
            |d| {
                RnnConfig::new(3, 5)
                    .with_num_layers(2)
                    .with_bidirectional(true)
                    .with_nonlinearity(nl)
                    .init(d)
                    .unwrap()
            },
            10,
            5,
        );
    }
}

/// The encoder layer (self-attention with padding and causal masks, gelu feed-forward, pre-norm):
/// d loss / d input by central differences.
#[test]
fn transformer_encoder_layer_input_gradient() {
    use burn::module::AutodiffModule;
    use burn::tensor::{Bool, TensorData};
    use ember_lm::nn::{AttentionMasks, FeedForwardActivation, TransformerEncoderLayerConfig};
    let device = Default::default();
    Ad::seed(&device, 9);
    let layer = TransformerEncoderLayerConfig::new(6, 2)
        .with_d_ff(10)
        .with_dropout(0.0)
        .with_norm_first(true)
        .with_activation(FeedForwardActivation::Gelu)
        .init::<Ad>(&device)
        .unwrap();
    let padding = TensorData::new(vec![false, false, false, false, false, false, true, true], [2, 4]);
    let masks = AttentionMasks {
        key_padding: Some(Tensor::<Ad, 2, Bool>::from_data(padding, &device)),
        causal: true,
        ..Default::default()
    };
    let x: Tensor<Ad, 3> = random([2, 4, 6], &device).require_grad();
    let w: Tensor<Ad, 3> = random([2, 4, 6], &device);
    let grads = (layer.forward(x.clone(), &masks).unwrap() * w.clone())
        .sum()
        .backward();
    let grad_x = x.grad(&grads).unwrap();
    let inner = layer.valid();
    let inner_masks = AttentionMasks {
        key_padding: masks.key_padding.clone().map(|m| m.inner()),
        causal: true,
        ..Default::default()
    };
    let wi = w.inner();
    let numeric = finite_difference(
        |x| {
            (inner.forward(x, &inner_masks).unwrap() * wi.clone())
                .sum()
                .into_scalar()
        },
        &x.inner(),
        EPS,
    );
    assert_grad("encoder layer d/d input", grad_x.reshape([2, -1]), numeric);
}

/// CTC on `NdArray<f64>`: the kernel's gradient of the logits (through `log_softmax`) against
/// central differences, with ragged inputs, a repeated label and an empty target.
#[test]
fn ctc_matches_finite_differences() {
    use burn::tensor::activation::log_softmax;
    use ember_lm::nn::{CtcLossConfig, Reduction};
    let device = Default::default();
    Inner::seed(&device, 5);
    let targets = vec![vec![1, 1, 2], vec![], vec![3, 1]];
    let lengths = [6, 4, 5];
    let ctc = CtcLossConfig::new().with_reduction(Reduction::Mean).init();
    let loss = |x: Tensor<Ad, 3>| ctc.forward(log_softmax(x, 2), &targets, &lengths).unwrap();
    let x = Tensor::<Inner, 3>::random([3, 6, 4], Distribution::Normal(0.0, 1.0), &device);
    let xa = Tensor::<Ad, 3>::from_inner(x.clone()).require_grad();
    let grad: Vec<f64> = xa
        .grad(&loss(xa.clone()).backward())
        .unwrap()
        .into_data()
        .iter::<f64>()
        .collect();
    let numeric = finite_difference(|x| loss(Tensor::from_inner(x)).into_scalar(), &x, EPS);
    for (i, (a, n)) in grad.iter().zip(&numeric).enumerate() {
        assert!((a - n).abs() < 1e-6 + 1e-5 * n.abs(), "element {i}: {a} vs {n}");
    }
}
