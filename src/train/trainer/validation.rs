//! Validation: the task's validation step over the validation batches, the monitored metric, the
//! best value and early stopping.

use std::time::Instant;

use burn::module::AutodiffModule;

use super::Trainer;
use crate::data::Batches;
use crate::optim::PlateauMode;
use crate::train::metrics::{MetricRow, Window};
use crate::train::task::Task;
use crate::{Error, Result};

impl<B: crate::TrainBackend, T: Task<B>> Trainer<B, T> {
    /// Validates on the inner backend, reports the metric to a plateau schedule, updates the best
    /// value and the early-stopping count. Returns `(row, improved, stop)`.
    pub(super) fn validate_and_track(
        &mut self,
        valid: &dyn Batches<T::Batch>,
        started: Instant,
    ) -> Result<(MetricRow, bool, bool)> {
        let t0 = Instant::now();
        let inner = self.model().valid();
        let count = self
            .config
            .valid_batches
            .map_or(valid.num_batches(), |c| c.min(valid.num_batches()));
        let mut window = Window::default();
        let mut carry = None;
        for i in 0..count {
            let batch = valid.get(0, i, self.config.seed)?;
            let (stats, next) = self.task.valid_step(&inner, &batch, carry.take())?;
            carry = next;
            window.add(stats);
        }
        window.time = t0.elapsed();
        let row = self.finish_row(
            window.row(
                self.task.reported_metrics(),
                "valid",
                self.state.pos.step,
                self.state.pos.epoch,
                None,
            ),
            started,
        );
        let metric = row
            .get(&self.config.monitor.metric)
            .ok_or_else(|| Error::MissingMetric {
                metric: self.config.monitor.metric.clone(),
            })?;
        self.state.scheduler.report(metric);
        let mode = self.config.monitor.mode;
        let min_delta = self.config.early_stopping.map_or(0.0, |e| e.min_delta);
        let improved = metric.is_finite()
            && match self.state.tracker.best {
                None => true,
                Some(best) => match mode {
                    PlateauMode::Min => metric < best - min_delta,
                    PlateauMode::Max => metric > best + min_delta,
                },
            };
        if improved {
            self.state.tracker.best = Some(metric);
            self.state.tracker.best_step = Some(self.state.pos.step);
            self.state.tracker.bad_validations = 0;
        } else {
            self.state.tracker.bad_validations += 1;
        }
        let stop = self
            .config
            .early_stopping
            .is_some_and(|e| self.state.tracker.bad_validations >= e.patience.max(1));
        Ok((row, improved, stop))
    }
}
