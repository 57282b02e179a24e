//! Data-parallel training over several devices with burn-collective's all-reduce.
//!
//! One replica per device, each in its own thread with its own [`Trainer`]: rank 0's parameters
//! are broadcast to the others at the start (as PyTorch's `DistributedDataParallel` does), each
//! replica reads every `world`-th batch, and after the backward pass the gradients and the loss are
//! averaged with `all_reduce(Mean)` so that every replica applies the same update. Rank 0 alone
//! writes the run directory and shows progress. Built with the `collective` feature; the same
//! replicas across machines are [`fit_distributed`](super::fit_distributed).
//!
//! [`Trainer`]: super::Trainer

use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;

use crate::Result;

#[cfg(feature = "collective")]
mod imp {
    use std::sync::Arc;

    use burn_collective::{CollectiveConfig, PeerId};

    use crate::data::Batches;
    use crate::train::DistributedConfig;
    use crate::train::distributed::reducer::Reducer;
    use crate::train::distributed::replica::{self, Replica};
    use crate::train::task::Task;
    use crate::train::trainer::{FitReport, Shard, Trainer};
    use crate::{Error, Result};

    /// Trains one replica per device in parallel and returns, per rank, the report and the model.
    ///
    /// `build(rank, device)` makes each replica's trainer; its model need not match the others'
    /// (rank 0's parameters are broadcast before the first step), but every replica must be built
    /// with the same configuration. The calls run one at a time in rank order, so a `build` that
    /// seeds burn's generator and initialises a model gives rank 0 the same model every run.
    ///
    /// Rank 0 keeps the run directory and the progress display; the others write nothing.
    /// Checkpoints hold rank 0's state and resume like any other (`build` can call
    /// [`Trainer::resume`]).
    ///
    /// An error in one replica (a bad batch, say) is returned; the other replicas then give up
    /// at their next all-reduce after [`DistributedConfig::timeout`] (default 300 s).
    ///
    /// burn-collective keeps one collective per process: a second data-parallel or distributed
    /// run started in the same process while one trains waits for it to end.
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
        let timeout = DistributedConfig::default().timeout;
        let build = &build;
        let _turn = replica::one_run_at_a_time();
        let builds = &replica::BuildTurns::new();
        std::thread::scope(|scope| {
            let handles: Vec<_> = devices
                .iter()
                .enumerate()
                .map(|(rank, device)| {
                    scope.spawn(move || -> Result<(FitReport, T::Model)> {
                        let mut trainer = builds.take(rank, || build(rank, device))?;
                        let status: Arc<dyn Fn() -> String + Send + Sync> =
                            Arc::new(|| "the replicas are threads of this process".into());
                        let reducer = Reducer::<B::InnerBackend>::start(PeerId::from(rank), timeout);
                        let config = CollectiveConfig::default().with_num_devices(world);
                        reducer.register(device.clone(), config, &*status)?;
                        replica::enter(Replica {
                            reducer,
                            status,
                            on_step: Arc::new(|_| {}),
                        });
                        let result = replica::train_replica(
                            &mut trainer,
                            train,
                            valid,
                            Shard {
                                rank,
                                world,
                                writer: rank == 0,
                            },
                            true,
                        );
                        replica::leave();
                        Ok((result?, trainer.into_model()))
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

/// Averages the gradients and the loss of step `step` over the replicas.
#[cfg(feature = "collective")]
pub(crate) fn all_reduce<B: AutodiffBackend, M: AutodiffModule<B>>(
    device: &B::Device,
    model: &M,
    grads: GradientsParams,
    loss: f64,
    step: u64,
) -> Result<(GradientsParams, f64)> {
    super::distributed::replica::all_reduce::<B, M>(device, model, grads, loss, step)
}

/// Without the `collective` feature there is only one replica and nothing to reduce.
#[cfg(not(feature = "collective"))]
pub(crate) fn all_reduce<B: AutodiffBackend, M: AutodiffModule<B>>(
    _device: &B::Device,
    _model: &M,
    grads: GradientsParams,
    loss: f64,
    _step: u64,
) -> Result<(GradientsParams, f64)> {
    Ok((grads, loss))
}
