//! One replica's side of data-parallel training, shared by the threads of
//! [`fit_data_parallel`](crate::train::fit_data_parallel) and the nodes of
//! [`fit_distributed`](super::fit_distributed): the [`Reducer`] it was given (kept per thread,
//! so that the trainer's step finds it), the broadcast of rank 0's parameters, and the mean of
//! the gradients and the loss.
//!
//! Tensors travel in the model's visiting order. burn-optim's `GradientsParams::all_reduce`
//! orders by `ParamId`, which differs between replicas built independently; the module
//! structure is the same everywhere. A parameter without a gradient on this replica contributes
//! zeros, so that every replica makes the same calls.

use std::any::Any;
use std::cell::RefCell;
use std::sync::Arc;

use burn::module::{AutodiffModule, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::ops::FloatTensor;
use burn::tensor::{ElementConversion, Tensor, TensorPrimitive};

use burn_collective::ReduceOperation;

use super::reducer::Reducer;
use crate::{Error, Result};

/// Length of the vector the loss is reduced in (see [`all_reduce`]); nodes beyond it would need a
/// longer one.
const LOSS_SLOTS: usize = 64;

/// What a replica thread holds while it trains.
pub(crate) struct Replica<G: Backend> {
    /// Its collective thread.
    pub reducer: Reducer<G>,
    /// Describes the other nodes when an operation times out.
    pub status: Arc<dyn Fn() -> String + Send + Sync>,
    /// Told each step reached (heartbeats).
    pub on_step: Arc<dyn Fn(u64) + Send + Sync>,
}

/// Taken for a whole run by [`fit_data_parallel`](crate::train::fit_data_parallel) and
/// [`fit_distributed`](super::fit_distributed): burn-collective's local server is one per process,
/// so two runs registering at once would refuse each other (`MultipleRegister`). A second run in
/// the same process waits for the first to end.
pub(crate) fn one_run_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static RUN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    RUN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs the replica threads' `build` calls one at a time, in rank order. A build usually seeds
/// burn's generator (global to the backend) and initialises a model, and a trainer seeds it
/// again: interleaved, one thread's seeding lands in the middle of another's initialisation and
/// rank 0's model (the one every replica starts from) would depend on thread timing.
pub(crate) struct BuildTurns {
    next: std::sync::Mutex<usize>,
    turn: std::sync::Condvar,
}

impl BuildTurns {
    pub(crate) fn new() -> Self {
        Self {
            next: std::sync::Mutex::new(0),
            turn: std::sync::Condvar::new(),
        }
    }

    /// Waits for turn `index` (0, 1, … in order), runs `build`, and passes the turn on, also
    /// when `build` fails or panics.
    pub(crate) fn take<R>(&self, index: usize, build: impl FnOnce() -> R) -> R {
        struct PassOn<'a>(&'a BuildTurns);
        impl Drop for PassOn<'_> {
            fn drop(&mut self) {
                *self.0.next.lock().unwrap_or_else(|p| p.into_inner()) += 1;
                self.0.turn.notify_all();
            }
        }
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        while *next != index {
            next = self.turn.wait(next).unwrap_or_else(|p| p.into_inner());
        }
        drop(next);
        let _pass_on = PassOn(self);
        build()
    }
}

thread_local! {
    static REPLICA: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// Makes `replica` this thread's for the trainer's steps (until [`leave`]).
pub(crate) fn enter<G: Backend>(replica: Replica<G>) {
    REPLICA.with(|r| *r.borrow_mut() = Some(Box::new(replica)));
}

/// Forgets this thread's replica.
pub(crate) fn leave() {
    REPLICA.with(|r| *r.borrow_mut() = None);
}

fn with<G: Backend, R>(f: impl FnOnce(&Replica<G>) -> Result<R>) -> Result<R> {
    REPLICA.with(
        |r| match r.borrow().as_ref().and_then(|b| b.downcast_ref::<Replica<G>>()) {
            Some(replica) => f(replica),
            None => Err(Error::Collective {
                operation: "all-reduce".into(),
                message:
                    "this thread is not a data-parallel replica (use fit_data_parallel or fit_distributed)"
                        .into(),
            }),
        },
    )
}

/// Collects each parameter's gradient in visiting order (zeros where it has none).
struct TakeGrads<'a, G: Backend> {
    device: G::Device,
    grads: &'a mut GradientsParams,
    taken: Vec<FloatTensor<G>>,
}

impl<B: Backend, G: Backend> ModuleVisitor<B> for TakeGrads<'_, G> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let grad = self
            .grads
            .remove::<G, D>(param.id)
            .unwrap_or_else(|| Tensor::<G, D>::zeros(param.shape(), &self.device));
        self.taken.push(grad.into_primitive().tensor());
    }
}

/// Registers the reduced gradients back, in the same order.
struct PutGrads<'a, G: Backend> {
    grads: &'a mut GradientsParams,
    reduced: std::vec::IntoIter<FloatTensor<G>>,
}

impl<B: Backend, G: Backend> ModuleVisitor<B> for PutGrads<'_, G> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(t) = self.reduced.next() {
            self.grads
                .register::<G, D>(param.id, Tensor::from_primitive(TensorPrimitive::Float(t)));
        }
    }
}

/// Averages the gradients and the loss of step `step` over all replicas.
pub(crate) fn all_reduce<B: AutodiffBackend, M: AutodiffModule<B>>(
    device: &B::Device,
    model: &M,
    mut grads: GradientsParams,
    loss: f64,
    step: u64,
) -> Result<(GradientsParams, f64)> {
    with::<B::InnerBackend, _>(|replica| {
        (replica.on_step)(step);
        let mut take = TakeGrads::<B::InnerBackend> {
            device: device.clone(),
            grads: &mut grads,
            taken: Vec::new(),
        };
        model.visit(&mut take);
        let mut tensors = take.taken;
        // The loss in every slot of a small vector: burn-collective's ring splits each tensor
        // into one slice per node along a dimension at least that long.
        let loss = Tensor::<B::InnerBackend, 1>::from_floats([loss; LOSS_SLOTS], device);
        tensors.push(loss.into_primitive().tensor());
        let mut reduced = replica.reducer.all_reduce(
            tensors,
            ReduceOperation::Mean,
            "gradient all-reduce",
            step,
            &*replica.status,
        )?;
        let loss = reduced.pop().map(|t| {
            Tensor::<B::InnerBackend, 1>::from_primitive(TensorPrimitive::Float(t))
                .slice(0..1)
                .into_scalar()
                .elem::<f64>()
        });
        model.visit(&mut PutGrads::<B::InnerBackend> {
            grads: &mut grads,
            reduced: reduced.into_iter(),
        });
        Ok((grads, loss.unwrap_or(f64::NAN)))
    })
}

/// Collects every parameter's value in visiting order, or zeros of its shape off the root.
struct Values<G: Backend> {
    root: bool,
    values: Vec<FloatTensor<G>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Values<B::InnerBackend> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let value = param.val().inner();
        let value = if self.root {
            value
        } else {
            Tensor::zeros(value.shape(), &value.device())
        };
        self.values.push(value.into_primitive().tensor());
    }
}

/// Replaces every parameter's value, in visiting order.
struct Replace<G: Backend> {
    values: std::vec::IntoIter<FloatTensor<G>>,
}

impl<B: AutodiffBackend> ModuleMapper<B> for Replace<B::InnerBackend> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        match self.values.next() {
            Some(t) => param.map(|_| {
                Tensor::from_inner(Tensor::from_primitive(TensorPrimitive::Float(t))).require_grad()
            }),
            None => param,
        }
    }
}

/// Every replica leaves with global rank 0's parameters (PyTorch's `DistributedDataParallel`
/// does the same at construction).
pub(crate) fn broadcast_parameters<B: AutodiffBackend, M: AutodiffModule<B>>(
    model: M,
    root: bool,
    step: u64,
) -> Result<M> {
    with::<B::InnerBackend, _>(|replica| {
        // The root's values plus zeros from every other replica: a broadcast, exactly.
        let mut values = Values::<B::InnerBackend> {
            root,
            values: Vec::new(),
        };
        model.visit(&mut values);
        let received = replica.reducer.all_reduce(
            values.values,
            ReduceOperation::Sum,
            "parameter broadcast",
            step,
            &*replica.status,
        )?;
        Ok(model.map(&mut Replace::<B::InnerBackend> {
            values: received.into_iter(),
        }))
    })
}

/// Leaves burn-collective at the end of training (its `finish_collective`).
pub(crate) fn finish<G: Backend>(step: u64) -> Result<()> {
    with::<G, _>(|replica| replica.reducer.finish(step, &*replica.status))
}

/// A replica's run once its reducer is entered: rank 0's parameters, the shard's fit, and
/// leaving the collective when `finish` (a multi-node run leaves it with the process: burn's
/// global `finish` panics in a background task when a peer has already closed their connection).
pub(crate) fn train_replica<B: crate::TrainBackend, T: crate::train::Task<B>>(
    trainer: &mut crate::train::Trainer<B, T>,
    train: &(dyn crate::data::Batches<T::Batch> + Sync),
    valid: Option<&(dyn crate::data::Batches<T::Batch> + Sync)>,
    shard: crate::train::trainer::Shard,
    finish: bool,
) -> Result<crate::train::FitReport> {
    let start = trainer.step();
    let mut failure = None;
    trainer.map_model(
        |m| match broadcast_parameters::<B, _>(m.clone(), shard.rank == 0, start) {
            Ok(m) => m,
            Err(e) => {
                failure = Some(e);
                m
            }
        },
    );
    if let Some(e) = failure {
        return Err(e);
    }
    let valid = valid.map(|v| v as &dyn crate::data::Batches<T::Batch>);
    let report = trainer.fit_shard(train, valid, shard)?;
    if finish {
        self::finish::<B::InnerBackend>(trainer.step())?;
    }
    Ok(report)
}
