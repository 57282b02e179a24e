//! Writing a checkpoint of the trainer's state, and preparing the run directory.

use std::path::{Path, PathBuf};

use super::{CheckpointMeta, Trainer};
use crate::io::atomic_write;
use crate::optim::OptimizerConfig;
use crate::train::checkpoint;
use crate::train::config::TrainerConfig;
use crate::train::metrics::MetricRow;
use crate::train::task::Task;
use crate::{Error, Result};

impl<B: crate::TrainBackend, T: Task<B>> Trainer<B, T> {
    pub(super) fn save_checkpoint(
        &mut self,
        run_dir: &Path,
        last_valid: Option<&MetricRow>,
        last_valid_step: Option<u64>,
    ) -> Result<PathBuf> {
        let metric = (last_valid_step == Some(self.state.pos.step))
            .then(|| last_valid.and_then(|r| r.get(&self.config.monitor.metric)))
            .flatten();
        let meta = CheckpointMeta {
            seed: self.config.seed,
            model_config: self.task.config_json(),
            metric,
        };
        let dir = self.state.save(run_dir, meta)?;
        checkpoint::prune(run_dir, self.config.keep_last, self.state.tracker.best_step);
        Ok(dir)
    }
}

/// Creates the run directory, checks that it is writable, and records the configuration.
pub(super) fn prepare_run_dir(
    dir: &Path,
    config: &TrainerConfig,
    optim: &OptimizerConfig,
    model: &serde_json::Value,
    tokenizer: Option<&crate::train::RunTokenizer>,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::Save {
        path: dir.to_path_buf(),
        message: format!("cannot create the run directory: {e}"),
    })?;
    // A process killed mid-write left its temporary files behind (the files they would have
    // replaced are intact): remove them, in the run directory and in every checkpoint.
    crate::io::remove_stale_temporaries(dir);
    for (_, step_dir) in checkpoint::list_all_dirs(dir) {
        crate::io::remove_stale_temporaries(&step_dir);
    }
    if let Some(t) = tokenizer {
        t.save(dir)?;
    }
    // A resumed run given no tokenizer keeps the one an earlier start recorded.
    let kind = match tokenizer {
        Some(t) => serde_json::Value::from(t.kind()),
        None => std::fs::read_to_string(dir.join("config.json"))
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .and_then(|json| json.get("tokenizer").cloned())
            .unwrap_or(serde_json::Value::Null),
    };
    let json = serde_json::json!({
        "trainer": config,
        "optimizer": optim,
        "model": model,
        "tokenizer": kind,
    });
    let bytes = serde_json::to_vec_pretty(&json).map_err(|e| Error::Save {
        path: dir.join("config.json"),
        message: e.to_string(),
    })?;
    atomic_write(&dir.join("config.json"), &bytes)
}
