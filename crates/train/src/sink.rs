//! How the training loop reports: every event goes to each sink in turn. A sink that fails is
//! logged and counted; it never stops training.

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize)]
pub struct StepEvent {
    pub epoch: usize,
    pub step: usize,
    pub loss: f64,
    pub lr: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochEvent {
    pub epoch: usize,
    pub step: usize,
    pub train_loss: f64,
    pub train_acc: f64,
    pub val_loss: f64,
    pub val_acc: f64,
    pub val_macro_f1: f64,
    pub lr: f64,
    pub seconds: f64,
    pub train_images_per_s: f64,
}

/// Running training totals of one epoch (summed over batches).
#[derive(Debug, Clone, Copy, Default)]
pub struct EpochTotals {
    pub loss_sum: f64,
    pub correct: usize,
    pub seen: usize,
}

impl EpochEvent {
    /// The epoch summary from training totals and the validation report.
    pub fn new(epoch: usize, step: usize, t: EpochTotals, val: &crate::metrics::Report, lr: f64, seconds: f64, train_seconds: f64) -> Self {
        let n = t.seen.max(1) as f64;
        EpochEvent {
            epoch,
            step,
            train_loss: t.loss_sum / n,
            train_acc: t.correct as f64 / n,
            val_loss: val.loss,
            val_acc: val.accuracy,
            val_macro_f1: val.macro_f1,
            lr,
            seconds,
            train_images_per_s: t.seen as f64 / train_seconds,
        }
    }
}

/// One followed sample's prediction at an interval: a validation image (stable id = source
/// image sha256) with its top-k classes, or a generated (breed, seed) pair with its thumbnail.
#[derive(Debug, Clone, Serialize)]
pub struct Prediction {
    pub epoch: usize,
    pub step: usize,
    pub sample_id: String,
    pub label: usize,
    pub top: Vec<(usize, f32)>,
    /// A thumbnail PNG, relative to the run folder.
    pub image: Option<String>,
    /// Model time per sample for this interval's batch (forward pass or sampling).
    pub latency_ms: f64,
}

pub trait Sink {
    fn on_start(&mut self, _config: &serde_json::Value) -> anyhow::Result<()> {
        Ok(())
    }
    fn on_step(&mut self, _e: &StepEvent) -> anyhow::Result<()> {
        Ok(())
    }
    fn on_epoch(&mut self, _e: &EpochEvent) -> anyhow::Result<()> {
        Ok(())
    }
    fn on_predictions(&mut self, _p: &[Prediction]) -> anyhow::Result<()> {
        Ok(())
    }
    fn on_checkpoint(&mut self, _path: &std::path::Path, _best: bool) -> anyhow::Result<()> {
        Ok(())
    }
}

/// Fans events out to several sinks, isolating failures.
#[derive(Default)]
pub struct Sinks {
    pub sinks: Vec<Box<dyn Sink>>,
    pub failures: usize,
}

impl Sinks {
    pub fn emit(&mut self, f: impl Fn(&mut dyn Sink) -> anyhow::Result<()>) {
        for s in self.sinks.iter_mut() {
            if let Err(e) = f(s.as_mut()) {
                self.failures += 1;
                tracing::warn!("sink failed (training continues): {e:#}");
            }
        }
    }
}

/// Human progress on stderr: one line per epoch with an ETA from the epochs' own durations.
pub struct ConsoleSink {
    pub epochs: usize,
    pub epoch_seconds: f64,
}

impl Sink for ConsoleSink {
    fn on_epoch(&mut self, e: &EpochEvent) -> anyhow::Result<()> {
        let done = e.epoch + 1;
        self.epoch_seconds += e.seconds;
        let per = self.epoch_seconds / done as f64;
        let eta = per * self.epochs.saturating_sub(done) as f64;
        eprintln!(
            "epoch {done:>3}/{} train loss {:.4} acc {:.3} | val loss {:.4} acc {:.3} F1 {:.3} | lr {:.2e} | {:.1}s ({:.0} img/s) eta {:.0}s",
            self.epochs, e.train_loss, e.train_acc, e.val_loss, e.val_acc, e.val_macro_f1, e.lr, e.seconds, e.train_images_per_s, eta
        );
        Ok(())
    }
}

/// Appends every event as a JSON line to `<run>/events.jsonl` (what the run store ingests).
pub struct JsonlSink {
    pub path: PathBuf,
}

impl JsonlSink {
    fn write(&self, kind: &str, v: impl Serialize) -> anyhow::Result<()> {
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&self.path)?;
        writeln!(f, "{}", serde_json::json!({"kind": kind, "data": v}))?;
        Ok(())
    }
}

impl Sink for JsonlSink {
    fn on_start(&mut self, c: &serde_json::Value) -> anyhow::Result<()> {
        self.write("start", c)
    }
    fn on_epoch(&mut self, e: &EpochEvent) -> anyhow::Result<()> {
        self.write("epoch", e)
    }
    fn on_predictions(&mut self, p: &[Prediction]) -> anyhow::Result<()> {
        self.write("predictions", p)
    }
    fn on_checkpoint(&mut self, path: &std::path::Path, best: bool) -> anyhow::Result<()> {
        self.write("checkpoint", serde_json::json!({"path": path, "best": best}))
    }
}
