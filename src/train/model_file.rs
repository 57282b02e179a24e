//! A checkpoint's model as `model.safetensors`: every float parameter under its module path
//! (`h.0.self_attn.in_proj_weight`), in its own float type (so f32 stays f32 and a resume is
//! exact), readable by any safetensors tool. burn's `ParamId` of each parameter rides in the
//! file's metadata, so that the optimizer state, which is keyed by it, stays attached on resume.
//! A model with integer or boolean parameters keeps burn's record (`model.bin`) instead.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, DType, Int, Tensor, TensorData};
use safetensors::SafeTensors;
use safetensors::tensor::{Dtype, TensorView};

/// The metadata key holding `{path: id}` as JSON with sorted keys: a single entry, because
/// safetensors writes its metadata map in hash order, and a resumed run must rewrite identical
/// bytes.
const IDS_KEY: &str = "ember_lm.param_ids";

/// The model's float parameters as safetensors bytes; `None` when it also has integer or
/// boolean parameters (which only burn's record holds).
pub(crate) fn encode<B: Backend, M: Module<B>>(model: &M) -> std::result::Result<Option<Vec<u8>>, String> {
    struct Collect {
        path: Vec<String>,
        floats: Vec<(String, ParamId, TensorData)>,
        others: bool,
    }
    impl<B: Backend> ModuleVisitor<B> for Collect {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.floats
                .push((self.path.join("."), param.id, param.val().into_data()));
        }
        fn visit_int<const D: usize>(&mut self, _: &Param<Tensor<B, D, Int>>) {
            self.others = true;
        }
        fn visit_bool<const D: usize>(&mut self, _: &Param<Tensor<B, D, Bool>>) {
            self.others = true;
        }
    }
    let mut c = Collect {
        path: Vec::new(),
        floats: Vec::new(),
        others: false,
    };
    model.visit(&mut c);
    if c.others {
        return Ok(None);
    }
    let mut ids = std::collections::BTreeMap::new();
    let mut views = Vec::with_capacity(c.floats.len());
    for (path, id, data) in &c.floats {
        let dtype = match data.dtype {
            DType::F32 => Dtype::F32,
            DType::F64 => Dtype::F64,
            DType::F16 => Dtype::F16,
            DType::BF16 => Dtype::BF16,
            other => return Err(format!("parameter `{path}` holds {other:?}")),
        };
        let view = TensorView::new(dtype, data.shape.to_vec(), data.as_bytes())
            .map_err(|e| format!("parameter `{path}`: {e}"))?;
        ids.insert(path.as_str(), id.serialize());
        views.push((path.as_str(), view));
    }
    let ids = serde_json::to_string(&ids).map_err(|e| e.to_string())?;
    let metadata = HashMap::from([(IDS_KEY.to_string(), ids)]);
    safetensors::serialize(views, Some(metadata))
        .map(Some)
        .map_err(|e| e.to_string())
}

/// `model` with the parameters of `bytes` (written by [`encode`]): each by its path, with its
/// shape checked and its id restored. The first problem is the error; the model is not returned
/// half-loaded.
pub(crate) fn decode<B: Backend, M: Module<B>>(
    bytes: &[u8],
    model: M,
    device: &B::Device,
) -> std::result::Result<M, String> {
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| format!("not safetensors: {e}"))?;
    let ids: HashMap<String, ParamId> = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get(IDS_KEY))
        .and_then(|json| serde_json::from_str::<HashMap<String, String>>(json).ok())
        .map(|m| {
            m.into_iter()
                .filter_map(|(path, id)| Some((path, ParamId::try_deserialize(&id)?)))
                .collect()
        })
        .unwrap_or_default();
    let tensors = SafeTensors::deserialize(bytes).map_err(|e| format!("not safetensors: {e}"))?;
    struct Load<'a, B: Backend> {
        tensors: &'a SafeTensors<'a>,
        ids: &'a HashMap<String, ParamId>,
        device: &'a B::Device,
        path: Vec<String>,
        loaded: usize,
        error: Option<String>,
    }
    impl<B: Backend> Load<'_, B> {
        fn value<const D: usize>(
            &self,
            path: &str,
            shape: [usize; D],
        ) -> std::result::Result<Tensor<B, D>, String> {
            let view = self
                .tensors
                .tensor(path)
                .map_err(|_| format!("parameter `{path}` is missing"))?;
            if view.shape() != shape {
                return Err(format!(
                    "parameter `{path}` has shape {:?}, the model's is {shape:?}",
                    view.shape()
                ));
            }
            let raw = view.data();
            let data = match view.dtype() {
                Dtype::F32 => TensorData::new(
                    raw.chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect::<Vec<_>>(),
                    shape,
                ),
                Dtype::F64 => TensorData::new(
                    raw.chunks_exact(8)
                        .map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
                        .collect::<Vec<_>>(),
                    shape,
                ),
                other => return Err(format!("parameter `{path}` is {other:?}, f32 or f64 expected")),
            };
            Ok(Tensor::from_data(data, self.device))
        }
    }
    impl<B: Backend> ModuleMapper<B> for Load<'_, B> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            if self.error.is_some() {
                return param;
            }
            let path = self.path.join(".");
            match self.value::<D>(&path, param.shape().dims()) {
                Ok(value) => {
                    self.loaded += 1;
                    let value = value.set_require_grad(param.is_require_grad());
                    Param::initialized(self.ids.get(&path).copied().unwrap_or(param.id), value)
                }
                Err(e) => {
                    self.error = Some(e);
                    param
                }
            }
        }
    }
    let mut load = Load::<B> {
        tensors: &tensors,
        ids: &ids,
        device,
        path: Vec::new(),
        loaded: 0,
        error: None,
    };
    let model = model.map(&mut load);
    if let Some(e) = load.error {
        return Err(e);
    }
    if load.loaded != tensors.len() {
        return Err(format!(
            "it holds {} tensors, the model has {} parameters",
            tensors.len(),
            load.loaded
        ));
    }
    Ok(model)
}
