//! Data-parallel training over several devices with burn-collective's all-reduce.
//!
//! One replica per device, each in its own thread with its own [`Trainer`]: rank 0's parameters
//! are broadcast to the others at the start (as PyTorch's `DistributedDataParallel` does), each
//! replica reads every `world`-th batch, and after the backward pass the gradients and the loss are
//! averaged with `all_reduce(Mean)` so that every replica applies the same update. Rank 0 alone
//! writes the run directory and shows progress. Built with the `collective` feature.
//!
//! [`Trainer`]: super::Trainer

use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;

use crate::Result;

#[cfg(feature = "collective")]
mod imp {
    use burn::module::{AutodiffModule, ModuleMapper, ModuleVisitor, Param};
    use burn::optim::GradientsParams;
    use burn::tensor::backend::{AutodiffBackend, Backend};
    use burn::tensor::{ElementConversion, Tensor, TensorPrimitive};
    use burn_collective::{CollectiveConfig, PeerId, ReduceOperation};

    use crate::data::Batches;
    use crate::train::task::Task;
    use crate::train::trainer::{FitReport, Shard, Trainer};
    use crate::{Error, Result};

    fn err(what: &str, e: impl std::fmt::Debug) -> Error {
        Error::Collective {
            operation: what.to_string(),
            message: format!("{e:?}"),
        }
    }

    /// All-reduces each parameter's gradient in the model's visiting order.
    ///
    /// burn-optim's `GradientsParams::all_reduce` orders by `ParamId`, which differs between
    /// replicas built independently; the module structure is the same everywhere. A parameter
    /// without a gradient on this replica contributes zeros, so every replica makes the same calls.
    struct ReduceGrads<'a, G: Backend> {
        peer: PeerId,
        device: G::Device,
        grads: &'a mut GradientsParams,
        error: Option<Error>,
    }

    impl<B: Backend, G: Backend> ModuleVisitor<B> for ReduceGrads<'_, G> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if self.error.is_some() {
                return;
            }
            let grad = self
                .grads
                .remove::<G, D>(param.id)
                .unwrap_or_else(|| Tensor::<G, D>::zeros(param.shape(), &self.device));
            match burn_collective::all_reduce::<G>(
                self.peer,
                grad.into_primitive().tensor(),
                ReduceOperation::Mean,
            ) {
                Ok(t) => self
                    .grads
                    .register::<G, D>(param.id, Tensor::from_primitive(TensorPrimitive::Float(t))),
                Err(e) => self.error = Some(err("gradient all-reduce", e)),
            }
        }
    }

    /// Averages the gradients and the loss over all replicas.
    pub(crate) fn all_reduce<B: AutodiffBackend, M: AutodiffModule<B>>(
        device: &B::Device,
        rank: usize,
        model: &M,
        mut grads: GradientsParams,
        loss: f64,
    ) -> Result<(GradientsParams, f64)> {
        let peer = PeerId::from(rank);
        let mut visitor = ReduceGrads::<B::InnerBackend> {
            peer,
            device: device.clone(),
            grads: &mut grads,
            error: None,
        };
        model.visit(&mut visitor);
        if let Some(e) = visitor.error {
            return Err(e);
        }
        let loss = Tensor::<B::InnerBackend, 1>::from_floats([loss], device);
        let loss = burn_collective::all_reduce::<B::InnerBackend>(
            peer,
            loss.into_primitive().tensor(),
            ReduceOperation::Mean,
        )
        .map_err(|e| err("loss all-reduce", e))?;
        let loss: f64 = Tensor::<B::InnerBackend, 1>::from_primitive(TensorPrimitive::Float(loss))
            .into_scalar()
            .elem();
        Ok((grads, loss))
    }

    /// Replaces every parameter's value with rank 0's (a broadcast per parameter, in visiting
    /// order).
    struct Broadcast {
        peer: PeerId,
        root: bool,
        error: Option<Error>,
    }

    impl<B: AutodiffBackend> ModuleMapper<B> for Broadcast {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            param.map(|tensor| {
                if self.error.is_some() {
                    return tensor;
                }
                let sent = self
                    .root
                    .then(|| tensor.clone().inner().into_primitive().tensor());
                match burn_collective::broadcast::<B::InnerBackend>(self.peer, sent) {
                    Ok(t) => {
                        Tensor::from_inner(Tensor::from_primitive(TensorPrimitive::Float(t))).require_grad()
                    }
                    Err(e) => {
                        self.error = Some(err("parameter broadcast", e));
                        tensor
                    }
                }
            })
        }
    }

    /// Trains one replica per device in parallel and returns, per rank, the report and the model.
    ///
    /// `build(rank, device)` makes each replica's trainer; its model need not match the others'
    /// (rank 0's parameters are broadcast before the first step), but every replica must be built
    /// with the same configuration. Rank 0 keeps the run directory and the progress display; the
    /// others write nothing. Checkpoints hold rank 0's state and resume like any other (`build`
    /// can call [`Trainer::resume`]).
    ///
    /// An error in one replica (a bad batch, say) is returned, but the other replicas then wait
    /// in their next all-reduce: treat it as fatal for the process.
    pub fn fit_data_parallel<B, T, F>(
        devices: &[B::Device],
        build: F,
        train: &(dyn Batches<T::Batch> + Sync),
        valid: Option<&(dyn Batches<T::Batch> + Sync)>,
    ) -> Result<Vec<(FitReport, T::Model)>>
    where
        B: crate::TrainBackend,
        T: Task<B>,
        T::Model: Send,
        F: Fn(usize, &B::Device) -> Result<Trainer<B, T>> + Sync,
    {
        let world = devices.len();
        if world == 0 {
            return Err(Error::Data(
                "data-parallel training needs at least one device".into(),
            ));
        }
        if train.num_batches() < world {
            return Err(Error::Data(format!(
                "{} training batches (no batches for some replicas) cannot feed {world} data-parallel replicas",
                train.num_batches()
            )));
        }
        let build = &build;
        std::thread::scope(|scope| {
            let handles: Vec<_> = devices
                .iter()
                .enumerate()
                .map(|(rank, device)| {
                    scope.spawn(move || -> Result<(FitReport, T::Model)> {
                        let mut trainer = build(rank, device)?;
                        let peer = PeerId::from(rank);
                        let config = CollectiveConfig::default().with_num_devices(world);
                        burn_collective::register::<B::InnerBackend>(peer, device.clone(), config)
                            .map_err(|e| err("register", e))?;
                        let mut mapper = Broadcast {
                            peer,
                            root: rank == 0,
                            error: None,
                        };
                        trainer.map_model(|m| burn::module::Module::map(m, &mut mapper));
                        if let Some(e) = mapper.error {
                            return Err(e);
                        }
                        let valid = valid.map(|v| v as &dyn Batches<T::Batch>);
                        let report = trainer.fit_shard(train, valid, Shard { rank, world });
                        let _ = burn_collective::finish_collective::<B::InnerBackend>(peer);
                        Ok((report?, trainer.into_model()))
                    })
                })
                .collect();
            handles
                .into_iter()
                .enumerate()
                .map(|(rank, h)| h.join().map_err(|_| Error::WorkerPanicked { rank })?)
                .collect()
        })
    }
}

#[cfg(feature = "collective")]
pub use imp::fit_data_parallel;

/// Averages the gradients and the loss over the replicas.
#[cfg(feature = "collective")]
pub(crate) fn all_reduce<B: AutodiffBackend, M: AutodiffModule<B>>(
    device: &B::Device,
    rank: usize,
    model: &M,
    grads: GradientsParams,
    loss: f64,
) -> Result<(GradientsParams, f64)> {
    imp::all_reduce::<B, M>(device, rank, model, grads, loss)
}

/// Without the `collective` feature there is only one replica and nothing to reduce.
#[cfg(not(feature = "collective"))]
pub(crate) fn all_reduce<B: AutodiffBackend, M: AutodiffModule<B>>(
    _device: &B::Device,
    _rank: usize,
    _model: &M,
    grads: GradientsParams,
    loss: f64,
) -> Result<(GradientsParams, f64)> {
    Ok((grads, loss))
}
