//! Run tracking from the CLI: the `StoreSink` that records every training run in the SQLite run
//! store, and `tinycats runs list|show|compare`.

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tinycats_track::{PredictionRow, Store};
use tinycats_train::sink::{EpochEvent, Prediction, Sink, StepEvent};

/// The store file: `--store`, else $TINYCATS_STORE, else runs/tinycats.db.
pub fn store_path(explicit: Option<&Path>) -> PathBuf {
    explicit.map(Path::to_path_buf).or_else(|| std::env::var_os("TINYCATS_STORE").map(PathBuf::from)).unwrap_or_else(|| PathBuf::from("runs/tinycats.db"))
}

/// Records a run's metrics, predictions and checkpoints; `finish` sets its final status.
pub struct StoreSink {
    pub store: Store,
    pub run: i64,
}

impl StoreSink {
    /// Opens the store and registers the run (called before training starts).
    pub fn start(path: &Path, kind: &str, run_dir: &Path, config: &serde_json::Value, git_commit: &str, data_hash: Option<&str>) -> Result<StoreSink> {
        let mut store = Store::open(path)?;
        let name = run_dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "run".into());
        // Run folders repeat (a resumed run, the same folder name elsewhere): take the first free
        // `name`, `name-2`, `name-3`, ... A per-second timestamp collided when a run was killed and
        // resumed within one second.
        let name = (1..)
            .map(|k| if k == 1 { name.clone() } else { format!("{name}-{k}") })
            .find(|n| store.find_run(n).is_err())
            .expect("an unbounded range always yields a free name");
        let run = store.create_run("default", &name, kind, config, Some(git_commit), data_hash, Some(run_dir))?;
        Ok(StoreSink { store, run })
    }
}

impl Sink for StoreSink {
    fn on_step(&mut self, e: &StepEvent) -> Result<()> {
        self.store.log_metrics(self.run, &[("train/loss", e.step as i64, e.loss), ("lr", e.step as i64, e.lr)])?;
        self.store.append_event(self.run, &format!("run/{}", self.run), &serde_json::json!({"kind": "step", "data": e}))?;
        Ok(())
    }
    fn on_epoch(&mut self, e: &EpochEvent) -> Result<()> {
        let s = e.step as i64;
        self.store.log_metrics(
            self.run,
            &[("train/loss", s, e.train_loss), ("train/acc", s, e.train_acc), ("val/loss", s, e.val_loss), ("val/acc", s, e.val_acc), ("val/macro_f1", s, e.val_macro_f1), ("lr", s, e.lr), ("images_per_s", s, e.train_images_per_s)],
        )?;
        self.store.append_event(self.run, &format!("run/{}", self.run), &serde_json::json!({"kind": "epoch", "data": e}))?;
        Ok(())
    }
    fn on_predictions(&mut self, p: &[Prediction]) -> Result<()> {
        let rows: Vec<PredictionRow> = p
            .iter()
            .map(|x| PredictionRow { epoch: x.epoch as i64, step: x.step as i64, sample_id: x.sample_id.clone(), label: x.label as i64, top: serde_json::json!(x.top), image: x.image.clone(), latency_ms: Some(x.latency_ms) })
            .collect();
        self.store.log_predictions(self.run, &rows)?;
        let (epoch, step) = p.first().map(|x| (x.epoch, x.step)).unwrap_or((0, 0));
        self.store.append_event(self.run, &format!("run/{}", self.run), &serde_json::json!({"kind": "predictions", "data": {"epoch": epoch, "step": step, "count": p.len()}}))?;
        Ok(())
    }
    fn on_checkpoint(&mut self, path: &Path, best: bool) -> Result<()> {
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let sha = tinycats_data::hashing::sha256_file(path).unwrap_or_default();
        self.store.log_artifact(self.run, &path.display().to_string(), &sha, size)?;
        self.store.append_event(self.run, &format!("run/{}", self.run), &serde_json::json!({"kind": "checkpoint", "path": path, "best": best}))?;
        Ok(())
    }
}

/// Mirrors metrics and checkpoints to MLflow (see `tinycats_track::mlflow`).
pub struct MlflowSink(pub std::sync::Arc<std::sync::Mutex<tinycats_track::mlflow::MlflowRun>>);

impl Sink for MlflowSink {
    fn on_step(&mut self, e: &StepEvent) -> Result<()> {
        let mut m = self.0.lock().map_err(|_| anyhow::anyhow!("mlflow lock poisoned"))?;
        m.log_metric("train/loss", e.step as i64, e.loss)?;
        m.log_metric("lr", e.step as i64, e.lr)
    }
    fn on_epoch(&mut self, e: &EpochEvent) -> Result<()> {
        let mut m = self.0.lock().map_err(|_| anyhow::anyhow!("mlflow lock poisoned"))?;
        let s = e.step as i64;
        for (k, v) in [("train/loss_epoch", e.train_loss), ("train/acc", e.train_acc), ("val/loss", e.val_loss), ("val/acc", e.val_acc), ("val/macro_f1", e.val_macro_f1), ("images_per_s", e.train_images_per_s)] {
            m.log_metric(k, s, v)?;
        }
        m.flush()
    }
    fn on_checkpoint(&mut self, path: &Path, _best: bool) -> Result<()> {
        let mut m = self.0.lock().map_err(|_| anyhow::anyhow!("mlflow lock poisoned"))?;
        m.flush()?;
        // Single-file checkpoints only (sharded ones stay local; their index names the parts).
        if path.is_file() && std::fs::metadata(path).map(|x| x.len()).unwrap_or(u64::MAX) <= 64 << 20 {
            let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            m.log_artifact(path, &format!("checkpoints/{name}"))?;
        }
        Ok(())
    }
}

/// A run's tracking: always the local store, plus an MLflow mirror when asked for.
pub struct Tracking {
    store: PathBuf,
    pub run: i64,
    run_dir: PathBuf,
    mlflow: Option<std::sync::Arc<std::sync::Mutex<tinycats_track::mlflow::MlflowRun>>>,
}

/// Registers the run in the store (and in MLflow with `mlflow_uri`) and adds their sinks.
#[allow(clippy::too_many_arguments)]
pub fn start_tracking(store: &Path, kind: &str, run_dir: &Path, config: &serde_json::Value, git: &str, data_hash: Option<&str>, mlflow_uri: Option<&str>, sinks: &mut tinycats_train::sink::Sinks) -> Result<Tracking> {
    // MLflow first: an unreachable server is refused before anything is recorded.
    let mlflow = match mlflow_uri {
        Some(uri) => {
            let name = run_dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "run".into());
            let dir = run_dir.display().to_string();
            let m = tinycats_track::mlflow::MlflowRun::start(uri, "tinycats", &name, &[("tinycats.kind", kind), ("mlflow.source.git.commit", git), ("tinycats.run_dir", &dir)])?;
            m.log_params(&tinycats_track::flatten(config))?;
            if let Some(h) = data_hash {
                m.set_tag("tinycats.data_hash", h)?;
            }
            eprintln!("mirroring to MLflow: {uri} (experiment {}, run {})", m.experiment_id, m.run_id);
            Some(std::sync::Arc::new(std::sync::Mutex::new(m)))
        }
        None => None,
    };
    let tracked = StoreSink::start(store, kind, run_dir, config, git, data_hash)?;
    let run = tracked.run;
    sinks.sinks.push(Box::new(tracked));
    if let Some(m) = &mlflow {
        sinks.sinks.push(Box::new(MlflowSink(m.clone())));
    }
    Ok(Tracking { store: store.to_path_buf(), run, run_dir: run_dir.to_path_buf(), mlflow })
}

impl Tracking {
    /// Final status in the store and MLflow (with the run's config and result as artifacts).
    pub fn finish(&self, ok: bool) -> Result<()> {
        Store::open(&self.store)?.set_status(self.run, if ok { "finished" } else { "failed" })?;
        if let Some(m) = &self.mlflow {
            let mut m = m.lock().map_err(|_| anyhow::anyhow!("mlflow lock poisoned"))?;
            for f in ["config.toml", "run.json", "result.json"] {
                let p = self.run_dir.join(f);
                if p.is_file() {
                    if let Err(e) = m.log_artifact(&p, f) {
                        eprintln!("warning: MLflow artifact {f}: {e:#}");
                    }
                }
            }
            m.end(if ok { "FINISHED" } else { "FAILED" })?;
        }
        Ok(())
    }
}

#[derive(Subcommand)]
pub enum RunsCmd {
    /// Runs, newest first.
    List(ListArgs),
    /// One run: status, config params, last metric values.
    Show(ShowArgs),
    /// Last metric values of several runs side by side.
    Compare(CompareArgs),
}

#[derive(Args)]
pub struct ListArgs {
    /// Substring of the run name, kind, status or experiment.
    #[arg(long)]
    filter: Option<String>,
    #[arg(long, default_value_t = 50)]
    limit: usize,
    #[arg(long, default_value_t = 0)]
    offset: usize,
    #[arg(long)]
    store: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct ShowArgs {
    /// Run id or name.
    run: String,
    #[arg(long)]
    store: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct CompareArgs {
    /// Two or more run ids or names.
    #[arg(num_args = 2..)]
    runs: Vec<String>,
    #[arg(long)]
    store: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

fn open(p: Option<&Path>) -> Result<Store> {
    let path = store_path(p);
    if !path.is_file() {
        bail!("no run store at {} (train something first, or pass --store)", path.display());
    }
    Store::open(&path)
}

pub fn run(cmd: RunsCmd) -> Result<ExitCode> {
    match cmd {
        RunsCmd::List(a) => {
            let s = open(a.store.as_deref())?;
            let runs = s.list_runs(a.filter.as_deref(), a.limit, a.offset)?;
            if a.json {
                println!("{}", serde_json::to_string(&runs)?);
            } else {
                println!("{:>4}  {:<28} {:<11} {:<9} started", "id", "name", "kind", "status");
                for r in runs {
                    println!("{:>4}  {:<28} {:<11} {:<9} {:.0}", r.id, r.name, r.kind, r.status, r.started);
                }
            }
        }
        RunsCmd::Show(a) => {
            let s = open(a.store.as_deref())?;
            let r = s.find_run(&a.run)?;
            let params = s.params(r.id)?;
            let last = s.last_metrics(r.id)?;
            if a.json {
                println!("{}", serde_json::json!({"run": r, "params": params, "last_metrics": last}));
            } else {
                println!("run {} `{}` ({}, {}), git {}", r.id, r.name, r.kind, r.status, r.git_commit.as_deref().unwrap_or("?"));
                for (k, step, v) in &last {
                    println!("  {k:<16} {v:>12.5} (step {step})");
                }
                println!("  {} config params", params.len());
            }
        }
        RunsCmd::Compare(a) => {
            let s = open(a.store.as_deref())?;
            let mut cols = Vec::new();
            for name in &a.runs {
                let r = s.find_run(name)?;
                let last = s.last_metrics(r.id)?;
                cols.push((r, last));
            }
            let mut keys: Vec<String> = cols.iter().flat_map(|c| c.1.iter().map(|m| m.0.clone())).collect();
            keys.sort();
            keys.dedup();
            if a.json {
                let v: Vec<serde_json::Value> = cols.iter().map(|(r, l)| serde_json::json!({"run": r, "last_metrics": l})).collect();
                println!("{}", serde_json::Value::Array(v));
            } else {
                print!("{:<16}", "metric");
                for (r, _) in &cols {
                    print!(" {:>14}", r.name.chars().take(14).collect::<String>());
                }
                println!();
                for k in keys {
                    print!("{k:<16}");
                    for (_, l) in &cols {
                        match l.iter().find(|m| m.0 == k) {
                            Some(m) => print!(" {:>14.5}", m.2),
                            None => print!(" {:>14}", "—"),
                        }
                    }
                    println!();
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run killed and resumed within one second registers twice under its folder's name: the
    /// second registration must get a new name, not fail on the store's unique constraint.
    #[test]
    fn registering_the_same_run_folder_again_gets_a_fresh_name() {
        let t = tempfile::tempdir().unwrap();
        let db = t.path().join("store.db");
        let dir = t.path().join("killed");
        let names: Vec<String> = (0..3)
            .map(|_| {
                let s = StoreSink::start(&db, "classifier", &dir, &serde_json::json!({}), "abc", None).unwrap();
                s.store.find_run(&s.run.to_string()).unwrap().name
            })
            .collect();
        assert_eq!(names, ["killed", "killed-2", "killed-3"]);
    }
}
