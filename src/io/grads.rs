//! [`named_grads`]: a backward pass's gradients under the parameters' PyTorch keys, as a
//! PyTorch user reads `p.grad` over `model.named_parameters()`.

use std::collections::HashMap;

use burn::module::{AutodiffModule, ModuleVisitor, Param, ParamId};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Tensor, TensorData};

use super::TorchWeights;
use super::weights::{ExpectedKey, KeyKind, collect_keys};

/// The gradient of every parameter of `model` that has one in `grads` (from
/// `loss.backward()`), under its PyTorch key and in PyTorch's layout (transposed where PyTorch
/// stores the weight transposed), in [`named_parameters`](TorchWeights::named_parameters)'
/// order. A parameter the loss does not depend on has no gradient and is left out, as its
/// `p.grad` is `None` in PyTorch.
///
/// ```
/// # #[cfg(feature = "ndarray")] {
/// use burn::backend::{Autodiff, NdArray};
/// use ember_lm::io::named_grads;
/// use ember_lm::nn::LstmConfig;
///
/// type B = Autodiff<NdArray>;
/// let device = Default::default();
/// let lstm = LstmConfig::new(3, 4).init::<B>(&device)?;
/// let x = burn::tensor::Tensor::<B, 3>::ones([2, 5, 3], &device);
/// let grads = lstm.forward(x, None)?.0.sum().backward();
/// let named = named_grads(&lstm, &grads);
/// assert_eq!(named[0].0, "weight_ih_l0");
/// assert_eq!(named[0].1.shape.to_vec(), vec![16, 3]);
/// # }
/// # Ok::<(), ember_lm::Error>(())
/// ```
pub fn named_grads<B, M>(model: &M, grads: &B::Gradients) -> Vec<(String, TensorData)>
where
    B: AutodiffBackend,
    M: TorchWeights + AutodiffModule<B> + Clone,
{
    let keys: Vec<ExpectedKey> = collect_keys(&mut model.clone(), "")
        .into_iter()
        .filter(|k| k.kind == KeyKind::Param && k.param.is_some())
        .collect();
    struct Grads<'g, B: AutodiffBackend> {
        grads: &'g B::Gradients,
        found: HashMap<ParamId, TensorData>,
        transposed: HashMap<ParamId, bool>,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for Grads<'_, B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if let Some(g) = param.val().grad(self.grads) {
                let g = if self.transposed.get(&param.id) == Some(&true) {
                    g.transpose()
                } else {
                    g
                };
                self.found.insert(param.id, g.into_data());
            }
        }
    }
    let mut visitor = Grads::<B> {
        grads,
        found: HashMap::new(),
        transposed: keys.iter().filter_map(|k| k.param).collect(),
    };
    model.visit(&mut visitor);
    keys.into_iter()
        .filter_map(|k| {
            let g = visitor.found.get(&k.param?.0)?;
            Some((
                k.key,
                match k.part {
                    // A block of rows of a parameter stored under several keys.
                    Some((i, n)) => rows_of(g, i, n),
                    None => g.clone(),
                },
            ))
        })
        .collect()
}

/// Block `i` of `n` equal blocks of rows of `data`.
fn rows_of(data: &TensorData, i: usize, n: usize) -> TensorData {
    let shape = data.shape.to_vec();
    let per = data.num_elements() / n;
    let values: Vec<f64> = data.iter::<f64>().skip(i * per).take(per).collect();
    let mut part = shape;
    part[0] /= n;
    TensorData::new(values, part).convert_dtype(data.dtype)
}
