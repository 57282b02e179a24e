//! The run directory's logs (`metrics.csv`, TensorBoard events) and the progress display.

use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};

use super::config::ProgressMode;
use super::metrics::MetricRow;
use super::tensorboard::EventWriter;
use crate::io::atomic_write;
use crate::{Error, Result};

/// Where rows go: CSV, TensorBoard, the terminal.
pub(crate) struct RunLog {
    csv: Option<(PathBuf, File)>,
    tb: Option<EventWriter>,
    progress: Progress,
}

enum Progress {
    Bar(ProgressBar),
    Lines,
    Off,
}

fn wall_time() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl RunLog {
    /// Opens the run directory's logs for a run at optimizer step `step` (0 for a new run). Rows
    /// that an earlier, interrupted process wrote past `step` are dropped from `metrics.csv`, and
    /// a new TensorBoard file beside earlier ones starts with PyTorch's purge markers at
    /// `step + 1`, so that the resumed run's points are not shown twice.
    pub(crate) fn open(
        run_dir: Option<&Path>,
        tensorboard: bool,
        mode: ProgressMode,
        total: Option<u64>,
        step: u64,
    ) -> Result<Self> {
        let mut csv = None;
        let mut tb = None;
        if let Some(dir) = run_dir {
            let path = dir.join("metrics.csv");
            let save_err = |e: std::io::Error| Error::Save {
                path: path.clone(),
                message: e.to_string(),
            };
            truncate_csv(&path, step)?;
            let fresh = !path.exists();
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(save_err)?;
            if fresh {
                writeln!(file, "{}", MetricRow::CSV_HEADER).map_err(save_err)?;
            }
            csv = Some((path, file));
            if tensorboard {
                tb = Some(if has_event_files(dir) {
                    EventWriter::create_resumed(dir, wall_time(), step + 1)?
                } else {
                    EventWriter::create(dir, wall_time())?
                });
            }
        }
        let bar = match mode {
            ProgressMode::Bar => true,
            ProgressMode::Auto => std::io::stderr().is_terminal(),
            _ => false,
        };
        let progress = if bar {
            let pb = match total {
                Some(n) => ProgressBar::new(n),
                None => ProgressBar::no_length(),
            };
            pb.set_style(
                ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} steps [{elapsed_precise}<{eta_precise}] {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            Progress::Bar(pb)
        } else if mode == ProgressMode::Off {
            Progress::Off
        } else {
            Progress::Lines
        };
        Ok(Self { csv, tb, progress })
    }

    pub(crate) fn csv_path(&self) -> Option<&Path> {
        self.csv.as_ref().map(|(p, _)| p.as_path())
    }

    pub(crate) fn set_position(&self, step: u64) {
        if let Progress::Bar(pb) = &self.progress {
            pb.set_position(step);
        }
    }

    pub(crate) fn row(&mut self, row: &MetricRow) -> Result<()> {
        if let Some((path, file)) = &mut self.csv {
            writeln!(file, "{}", row.csv()).map_err(|e| Error::Save {
                path: path.clone(),
                message: e.to_string(),
            })?;
        }
        if let Some(tb) = &mut self.tb {
            let now = wall_time();
            for (tag, value) in row.scalars() {
                tb.scalar(&tag, value, row.step, now)?;
            }
            tb.flush()?;
        }
        let line = describe(row);
        match &self.progress {
            Progress::Bar(pb) => {
                if row.split == "valid" {
                    bar_say(pb, &line);
                } else {
                    pb.set_message(format!("loss {:.4}", row.loss));
                }
            }
            Progress::Lines => say(&line),
            Progress::Off => {}
        }
        Ok(())
    }

    pub(crate) fn message(&self, text: &str) {
        match &self.progress {
            Progress::Bar(pb) => bar_say(pb, text),
            Progress::Lines => say(text),
            Progress::Off => {}
        }
    }

    pub(crate) fn finish(&mut self) -> Result<()> {
        if let Progress::Bar(pb) = &self.progress {
            // indicatif leaves a finished bar's line open, so what the program prints next would
            // continue it: clear the bar and end with a complete line instead.
            let (steps, elapsed) = (pb.position(), pb.elapsed());
            pb.finish_and_clear();
            say(&format!("{steps} steps in {:.1} s", elapsed.as_secs_f64()));
        }
        if let Some((path, file)) = &mut self.csv {
            file.sync_all().map_err(|e| Error::Save {
                path: path.clone(),
                message: e.to_string(),
            })?;
        }
        if let Some(tb) = &mut self.tb {
            tb.flush()?;
        }
        Ok(())
    }
}

/// A message for the user: an `INFO` event of target `ember_lm::train` when the program has
/// a `tracing` subscriber, else a line on stderr (so that a program without one still
/// sees its training progress).
fn say(text: &str) {
    if has_subscriber() {
        tracing::info!(target: "ember_lm::train", "{text}");
    } else {
        eprintln!("{text}");
    }
}

/// Whether a `tracing` subscriber (global, or scoped to this thread) receives events.
fn has_subscriber() -> bool {
    tracing::dispatcher::get_default(|d| !d.is::<tracing::subscriber::NoSubscriber>())
}

/// [`say`] above a progress bar: the bar is hidden while the subscriber writes, then redrawn,
/// so the two never interleave on one line.
fn bar_say(pb: &ProgressBar, text: &str) {
    if has_subscriber() {
        pb.suspend(|| tracing::info!(target: "ember_lm::train", "{text}"));
    } else {
        pb.println(text);
    }
}

/// Drops the rows of `metrics.csv` whose step is past `step` (the header and the other rows kept,
/// the file rewritten atomically); nothing to do for a missing file or one with no such row.
fn truncate_csv(path: &Path, step: u64) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    // `split,step,...`: the step is the second field.
    let past = |line: &str| {
        line.split(',')
            .nth(1)
            .and_then(|s| s.parse::<u64>().ok())
            .is_some_and(|s| s > step)
    };
    if !text.lines().any(past) {
        return Ok(());
    }
    let kept: String = text
        .lines()
        .filter(|l| !past(l) && !l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    atomic_write(path, kept.as_bytes())
}

fn has_event_files(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.filter_map(|e| e.ok()).any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("events.out.tfevents.")
        })
    })
}

/// One human-readable line for a row.
fn describe(row: &MetricRow) -> String {
    let mut s = format!(
        "step {:>6} epoch {:>3} | {} loss {:.4}",
        row.step, row.epoch, row.split, row.loss
    );
    if let Some(ppl) = row.ppl {
        s += &format!(" ppl {ppl:.2}");
    }
    if let Some(bpc) = row.bpc {
        s += &format!(" bpc {bpc:.4}");
    }
    if let Some(acc) = row.acc {
        s += &format!(" acc {:.4}", acc);
    }
    if let Some(lr) = row.lr {
        s += &format!(" | lr {lr:.3e}");
    }
    if let Some(g) = row.grad_norm {
        s += &format!(" | grad {g:.3}");
    }
    s += &format!(" | {:.0} items/s", row.items_per_sec);
    if row.skipped_steps > 0 {
        s += &format!(" | skipped {}", row.skipped_steps);
    }
    s
}
