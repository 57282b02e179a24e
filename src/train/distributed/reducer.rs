//! [`Reducer`]: a replica's collective operations on a thread of their own, so that the training
//! thread can give up after a timeout instead of waiting forever on a node that died.
//!
//! burn-collective's calls block until every peer has joined and offer no cancellation; a
//! peer that never comes leaves them blocked. The training thread hands each batch of tensors to
//! the reducer's thread and waits for the answer in one-second slices up to the timeout; past it,
//! the step fails with an error naming the operation, the step and the nodes not heard from,
//! and the reducer's thread is left blocked until the process exits.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant};

use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn_collective::{CollectiveConfig, PeerId, ReduceOperation};

use crate::{Error, Result};

/// Work for the reducer's thread.
enum Job<G: Backend> {
    /// Registration with burn-collective (it returns once every peer has registered).
    Register(G::Device, CollectiveConfig),
    /// Leaving the collective at the end.
    Finish,
    /// `all_reduce` of each tensor with the operation, in order (`Sum` with zeros everywhere but
    /// the root is a broadcast: burn-collective 0.21 has none between nodes, and `x + 0` is exact).
    AllReduce(Vec<FloatTensor<G>>, ReduceOperation),
}

type Answer<G> = std::result::Result<Vec<FloatTensor<G>>, String>;

/// A replica's collective operations, run on their own thread with a timeout.
pub(crate) struct Reducer<G: Backend> {
    jobs: Sender<Job<G>>,
    answers: Receiver<Answer<G>>,
    timeout: Duration,
}

impl<G: Backend> Reducer<G> {
    /// Starts the thread for peer `peer`; [`register`](Self::register) first.
    pub(crate) fn start(peer: PeerId, timeout: Duration) -> Self {
        let (jobs, job_rx) = channel::<Job<G>>();
        let (answer_tx, answers) = channel::<Answer<G>>();
        std::thread::spawn(move || {
            for job in job_rx {
                let answer = match job {
                    Job::Register(device, config) => {
                        burn_collective::register::<G>(peer, device, config).map(|()| Vec::new())
                    }
                    Job::Finish => burn_collective::finish_collective::<G>(peer).map(|()| Vec::new()),
                    Job::AllReduce(tensors, op) => tensors
                        .into_iter()
                        .map(|t| burn_collective::all_reduce::<G>(peer, t, op))
                        .collect::<std::result::Result<Vec<_>, _>>(),
                };
                if answer_tx.send(answer.map_err(|e| format!("{e:?}"))).is_err() {
                    return;
                }
            }
        });
        Self {
            jobs,
            answers,
            timeout,
        }
    }

    /// Registers the peer on `device` with `config`, waiting for every other peer.
    pub(crate) fn register(
        &self,
        device: G::Device,
        config: CollectiveConfig,
        status: &dyn Fn() -> String,
    ) -> Result<()> {
        self.run(Job::Register(device, config), "registration", 0, status)
            .map(|_| ())
    }

    /// Leaves the collective (burn-collective's `finish_collective`).
    pub(crate) fn finish(&self, step: u64, status: &dyn Fn() -> String) -> Result<()> {
        self.run(Job::Finish, "finishing", step, status).map(|_| ())
    }

    /// `op` (mean or sum) of each of `tensors` over all replicas, in order. `what` and `step`
    /// name the operation in errors; `status` describes the nodes when it times out.
    pub(crate) fn all_reduce(
        &self,
        tensors: Vec<FloatTensor<G>>,
        op: ReduceOperation,
        what: &str,
        step: u64,
        status: &dyn Fn() -> String,
    ) -> Result<Vec<FloatTensor<G>>> {
        self.run(Job::AllReduce(tensors, op), what, step, status)
    }

    fn run(
        &self,
        job: Job<G>,
        what: &str,
        step: u64,
        status: &dyn Fn() -> String,
    ) -> Result<Vec<FloatTensor<G>>> {
        let fail = |message: String| Error::Collective {
            operation: format!("{what} at step {step}"),
            message,
        };
        self.jobs
            .send(job)
            .map_err(|_| fail("the collective thread has stopped after an earlier failure".into()))?;
        let start = Instant::now();
        loop {
            match self.answers.recv_timeout(Duration::from_secs(1)) {
                Ok(Ok(tensors)) => return Ok(tensors),
                Ok(Err(e)) => {
                    // A peer's process that ended shows in the heartbeats within a second or two.
                    std::thread::sleep(Duration::from_secs(2));
                    return Err(fail(format!("{e}; {}", status())));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(fail("the collective thread stopped".into()));
                }
                Err(RecvTimeoutError::Timeout) if start.elapsed() >= self.timeout => {
                    return Err(fail(format!(
                        "no answer from the other replicas within {} s; {}",
                        self.timeout.as_secs(),
                        status()
                    )));
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }
}
