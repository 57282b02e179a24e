//! One optimizer step: micro-batches, accumulation, the all-reduce of data-parallel training,
//! clipping, the non-finite policy, the update and the schedule.

use std::time::Instant;

use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::ElementConversion;

use super::{Shard, StepInfo, Trainer};
use crate::data::{Batches, SplitMix64};
use crate::train::config::NonFinitePolicy;
use crate::train::metrics::{MetricRow, Window};
use crate::train::task::{BatchStats, Task};
use crate::{Error, Result};

impl<B: crate::TrainBackend, T: Task<B>> Trainer<B, T> {
    /// One optimizer step: up to `grad_accum` micro-batches, clipping, the non-finite policy, the
    /// update, the schedule.
    pub(super) fn train_step(
        &mut self,
        train: &dyn Batches<T::Batch>,
        n: usize,
        shard: Shard,
        window: &mut Window,
    ) -> Result<StepInfo> {
        if self.state.pos.batch_index == 0 {
            self.state.carry = None;
        }
        let epoch = self.state.pos.epoch;
        let group = self.config.grad_accum.min(n - self.state.pos.batch_index);
        let mut accumulator = GradientsAccumulator::<T::Model>::new();
        let mut stats = Vec::with_capacity(group);
        let mut non_finite_loss = None;
        let model = &self.state.model;
        for _ in 0..group {
            // Dropout and any other backend randomness: a pure function of (seed, micro-batch).
            B::seed(
                &self.device,
                SplitMix64::derive(self.config.seed, &[0xD0, self.state.pos.micro_step]).next_u64(),
            );
            let index = self.state.pos.batch_index * shard.world + shard.rank;
            let batch = train.get(epoch, index, self.config.seed)?;
            let out = self.task.train_step(model, &batch, self.state.carry.take())?;
            let loss: f64 = out.loss.clone().into_scalar().elem();
            if !loss.is_finite() && non_finite_loss.is_none() {
                non_finite_loss = Some(loss);
            }
            stats.push(BatchStats {
                loss,
                items: out.items,
                correct: out.correct,
            });
            // Averaged over the micro-batches of this step, partial groups included.
            let grads = out.loss.div_scalar(group as f64).backward();
            accumulator.accumulate::<B>(model, GradientsParams::from_grads(grads, model));
            self.state.carry = out.carry.map(|c| self.task.detach_carry(c));
            self.state.pos.batch_index += 1;
            self.state.pos.micro_step += 1;
        }
        let mut grads = accumulator.grads();
        let mut mean_loss = stats.iter().map(|s| s.loss).sum::<f64>() / group as f64;
        if shard.world > 1 {
            // Every replica leaves with the mean gradient and the mean loss, so all of them take
            // the same decisions (clipping, the non-finite policy) and the same update.
            (grads, mean_loss) = crate::train::parallel::all_reduce::<B, T::Model>(
                &self.device,
                model,
                grads,
                mean_loss,
                self.state.pos.step,
            )?;
            if !mean_loss.is_finite() && non_finite_loss.is_none() {
                non_finite_loss = Some(mean_loss);
            }
        }
        let grad_norm = self.state.optim.clip(model, &mut grads);
        let lr = self.state.scheduler.step();
        let step = self.state.pos.step;
        let problem = match non_finite_loss {
            Some(v) => Some(("loss", v)),
            None if !grad_norm.is_finite() => Some(("gradient norm", grad_norm)),
            None => None,
        };
        let skipped = problem.is_some();
        match problem {
            Some((what, value)) => match self.config.non_finite {
                NonFinitePolicy::Error => {
                    return Err(Error::NonFinite { what, value, step });
                }
                NonFinitePolicy::Skip => {
                    self.state.tracker.skipped_steps += 1;
                    // The carried state came from the bad batch.
                    self.state.carry = None;
                }
            },
            None => {
                self.state.update(lr, grads);
                for s in stats {
                    window.add(s);
                }
                window.add_step(grad_norm);
            }
        }
        self.state.pos.step += 1;
        if self.state.pos.batch_index >= n {
            self.state.pos.epoch += 1;
            self.state.pos.batch_index = 0;
        }
        Ok(StepInfo {
            step: self.state.pos.step,
            epoch,
            loss: mean_loss,
            lr,
            grad_norm,
            skipped,
        })
    }

    pub(super) fn finish_row(&self, mut row: MetricRow, started: Instant) -> MetricRow {
        row.skipped_steps = self.state.tracker.skipped_steps;
        row.elapsed = started.elapsed().as_secs_f64();
        row
    }
}
