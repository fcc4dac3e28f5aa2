//! Training configuration: TOML with every key validated (errors name the key and the allowed
//! values), `--set key=value` overrides, stored with every run.

use crate::schedule::{ScheduleConfig, KINDS};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// A folder made by `tinycats data prepare` (224 px for EfficientNet-Lite0).
    pub cache: PathBuf,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self { cache: PathBuf::from("data/pets/prepared/224-cats_other-crop") }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// efficientnet-lite0
    pub kind: String,
    /// linear-probe (pooled features → linear) | tail (train blocks cut..16 + head + linear)
    /// | scratch (the small ResNet-style CNN from random weights, on augmented pixels)
    pub mode: String,
    /// First trainable block for mode = tail (0..=16; 16 = head conv + linear only).
    pub cut: usize,
    pub dropout: f64,
    /// Staged unfreezing: the pretrained blocks train only from this epoch on (0 = from the start);
    /// the head conv and the linear layer always train.
    pub unfreeze_epoch: usize,
    /// scratch: channels of the first stage (doubling per stage).
    pub width: usize,
    /// Fold BatchNorm into the convolutions and keep its statistics frozen while training.
    pub freeze_bn: bool,
    /// ImageNet weights (made by scripts/setup.sh).
    pub weights: PathBuf,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            kind: "efficientnet-lite0".into(),
            mode: "tail".into(),
            cut: 15,
            dropout: 0.2,
            unfreeze_epoch: 0,
            width: 32,
            freeze_bn: true,
            weights: PathBuf::from("data/weights/efficientnet-lite0.safetensors"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeatureConfig {
    /// Augmented views cached per training image (view 0 = plain, 1 = flipped, more = random crops).
    pub views: usize,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        Self { views: 2 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ClassWeights {
    Mode(String),
    Explicit(Vec<f64>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainSection {
    pub epochs: usize,
    pub batch_size: usize,
    pub seed: u64,
    pub label_smoothing: f64,
    /// Global gradient-norm clip; 0 disables.
    pub grad_clip: f64,
    /// Optimizer step every N batches (gradients summed in between).
    pub accum_steps: usize,
    /// "none" | "auto" (inverse frequency) | [w0, w1, ...] (one per class, all ≥ 0)
    pub class_weights: ClassWeights,
}

impl Default for TrainSection {
    fn default() -> Self {
        Self { epochs: 30, batch_size: 64, seed: 42, label_smoothing: 0.1, grad_clip: 1.0, accum_steps: 1, class_weights: ClassWeights::Mode("none".into()) }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimConfig {
    pub lr: f64,
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
}

impl Default for OptimConfig {
    fn default() -> Self {
        Self { lr: 1e-3, weight_decay: 0.05, beta1: 0.9, beta2: 0.999 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EarlyStopping {
    /// val_loss | val_acc | val_macro_f1
    pub metric: String,
    /// Epochs without improvement before stopping; 0 disables.
    pub patience: usize,
}

impl Default for EarlyStopping {
    fn default() -> Self {
        Self { metric: "val_acc".into(), patience: 0 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckpointConfig {
    /// Epoch checkpoints kept besides `best`.
    pub keep_last: usize,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        Self { keep_last: 2 }
    }
}

/// Which validation samples to follow: a count (chosen stratified, seeded) or explicit ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PredSamples {
    Count(usize),
    Ids(Vec<String>),
}

/// When to predict them: `"epoch"` (after each epoch's validation) or every N optimizer steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PredEvery {
    Steps(usize),
    Named(String),
}

/// Predictions during training: the same validation samples at every interval, so one image's
/// prediction can be followed across epochs. Disabled means the hook is not installed at all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PredictionsConfig {
    pub enabled: bool,
    pub samples: PredSamples,
    pub every: PredEvery,
    pub seed: u64,
    /// Top-k classes stored per prediction.
    pub top_k: usize,
}

impl Default for PredictionsConfig {
    fn default() -> Self {
        Self { enabled: true, samples: PredSamples::Count(24), every: PredEvery::Named("epoch".into()), seed: 0, top_k: 3 }
    }
}

impl PredictionsConfig {
    /// Every N optimizer steps, or None for once per epoch.
    pub fn every_steps(&self) -> Option<usize> {
        match &self.every {
            PredEvery::Steps(n) => Some(*n),
            PredEvery::Named(_) => None,
        }
    }

    pub fn validate(&self) -> Result<()> {
        match &self.samples {
            PredSamples::Count(n) => range("predictions.samples", *n as f64, 1.0, 1000.0)?,
            PredSamples::Ids(ids) if ids.is_empty() || ids.len() > 1000 => bail!("config key `predictions.samples` lists {} ids; give 1..=1000 (or a count)", ids.len()),
            PredSamples::Ids(_) => {}
        }
        match &self.every {
            PredEvery::Steps(n) => range("predictions.every", *n as f64, 1.0, 1e9)?,
            PredEvery::Named(s) if s != "epoch" => bail!("config key `predictions.every` = \"{s}\": use \"epoch\" or a number of optimizer steps ≥ 1"),
            PredEvery::Named(_) => {}
        }
        range("predictions.top_k", self.top_k as f64, 1.0, 100.0)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ClassifierConfig {
    pub data: DataConfig,
    pub model: ModelConfig,
    pub features: FeatureConfig,
    pub train: TrainSection,
    pub optim: OptimConfig,
    pub schedule: ScheduleConfig,
    pub early_stopping: EarlyStopping,
    pub checkpoint: CheckpointConfig,
    pub predictions: PredictionsConfig,
}

pub fn range(key: &str, v: f64, lo: f64, hi: f64) -> Result<()> {
    if !(lo..=hi).contains(&v) || v.is_nan() {
        bail!("config key `{key}` = {v} is out of range {lo}..={hi}");
    }
    Ok(())
}

pub fn one_of(key: &str, v: &str, allowed: &[&str]) -> Result<()> {
    if !allowed.contains(&v) {
        bail!("config key `{key}` = \"{v}\" is not allowed; use one of: {}", allowed.join(", "));
    }
    Ok(())
}

impl ClassifierConfig {
    /// Parses TOML, applies `key=value` overrides, validates.
    pub fn load(text: &str, source: &str, overrides: &[String]) -> Result<Self> {
        let cfg: ClassifierConfig = load_toml(text, source, overrides)?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<()> {
        one_of("model.kind", &self.model.kind, &["efficientnet-lite0"])?;
        one_of("model.mode", &self.model.mode, &["linear-probe", "tail", "scratch"])?;
        range("model.width", self.model.width as f64, 4.0, 256.0)?;
        range("model.cut", self.model.cut as f64, 0.0, 16.0)?;
        range("model.dropout", self.model.dropout, 0.0, 0.9)?;
        range("features.views", self.features.views as f64, 1.0, 16.0)?;
        range("train.epochs", self.train.epochs as f64, 1.0, 10_000.0)?;
        range("train.batch_size", self.train.batch_size as f64, 1.0, 4096.0)?;
        range("train.label_smoothing", self.train.label_smoothing, 0.0, 0.5)?;
        range("train.grad_clip", self.train.grad_clip, 0.0, 1e6)?;
        range("train.accum_steps", self.train.accum_steps as f64, 1.0, 1024.0)?;
        match &self.train.class_weights {
            ClassWeights::Mode(m) => one_of("train.class_weights", m, &["none", "auto"])?,
            ClassWeights::Explicit(w) => {
                if let Some((i, v)) = w.iter().enumerate().find(|(_, v)| !(**v >= 0.0) || !v.is_finite()) {
                    bail!("config key `train.class_weights[{i}]` = {v}: weights must be finite and ≥ 0");
                }
                if w.iter().all(|v| *v == 0.0) {
                    bail!("config key `train.class_weights`: at least one weight must be > 0");
                }
            }
        }
        range("optim.lr", self.optim.lr, 1e-8, 10.0)?;
        range("optim.weight_decay", self.optim.weight_decay, 0.0, 1.0)?;
        range("optim.beta1", self.optim.beta1, 0.0, 0.9999)?;
        range("optim.beta2", self.optim.beta2, 0.0, 0.99999)?;
        one_of("schedule.kind", &self.schedule.kind, &KINDS)?;
        range("schedule.warmup_epochs", self.schedule.warmup_epochs, 0.0, 1000.0)?;
        range("schedule.gamma", self.schedule.gamma, 0.0, 1.0)?;
        range("schedule.factor", self.schedule.factor, 0.0, 1.0)?;
        one_of("early_stopping.metric", &self.early_stopping.metric, &["val_loss", "val_acc", "val_macro_f1"])?;
        self.predictions.validate()
    }

    /// Class weights for `classes` given per-class training counts; length mismatch is an error.
    pub fn class_weights(&self, counts: &[usize]) -> Result<Vec<f32>> {
        let c = counts.len();
        Ok(match &self.train.class_weights {
            ClassWeights::Mode(m) if m == "auto" => {
                let n: usize = counts.iter().sum();
                counts.iter().map(|&k| if k == 0 { 0.0 } else { n as f32 / (c as f32 * k as f32) }).collect()
            }
            ClassWeights::Mode(_) => vec![1.0; c],
            ClassWeights::Explicit(w) => {
                if w.len() != c {
                    bail!("config key `train.class_weights` has {} values; the dataset has {c} classes", w.len());
                }
                w.iter().map(|&v| v as f32).collect()
            }
        })
    }
}

/// Parses TOML into `T` after applying `key=value` overrides. Type errors come with the offending
/// line (and so the key): from the user's own text when nothing was overridden, else from the
/// merged text.
pub fn load_toml<T: serde::de::DeserializeOwned>(text: &str, source: &str, overrides: &[String]) -> Result<T> {
    let mut table: toml::Table = toml::from_str(text).with_context(|| format!("{source}: invalid TOML"))?;
    for o in overrides {
        set_override(&mut table, o)?;
    }
    if overrides.is_empty() {
        toml::from_str(text).map_err(|e| anyhow::anyhow!("{source}: {e}"))
    } else {
        let merged = toml::to_string(&table)?;
        toml::from_str(&merged).map_err(|e| anyhow::anyhow!("{source} with --set {}: {e}", overrides.join(" --set ")))
    }
}

/// Applies `a.b.c=value`; the value is parsed as TOML (number, bool, array, quoted string) or
/// taken as a bare string.
pub fn set_override(table: &mut toml::Table, kv: &str) -> Result<()> {
    let Some((key, raw)) = kv.split_once('=') else {
        bail!("override `{kv}` must look like key=value (e.g. train.epochs=5)");
    };
    let key = key.trim();
    let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {}", raw.trim()))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.trim().to_string()));
    let parts: Vec<&str> = key.split('.').collect();
    let mut cur = table;
    for p in &parts[..parts.len() - 1] {
        let entry = cur.entry(p.to_string()).or_insert_with(|| toml::Value::Table(Default::default()));
        cur = entry.as_table_mut().with_context(|| format!("override `{key}`: `{p}` is not a section"))?;
    }
    cur.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_overrides_apply() {
        let c = ClassifierConfig::load("", "t", &["train.epochs=3".into(), "model.mode=linear-probe".into(), "train.class_weights=auto".into()]).unwrap();
        assert_eq!(c.train.epochs, 3);
        assert_eq!(c.model.mode, "linear-probe");
        assert_eq!(c.class_weights(&[10, 30]).unwrap(), vec![2.0, 2.0 / 3.0]);
        let c = ClassifierConfig::load("[train]\nclass_weights = [1.0, 0.5]\n", "t", &[]).unwrap();
        assert_eq!(c.class_weights(&[1, 1]).unwrap(), vec![1.0, 0.5]);
        let e = c.class_weights(&[1, 1, 1]).unwrap_err().to_string();
        assert!(e.contains("train.class_weights") && e.contains("3 classes"), "{e}");
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("[model]\nmode = \"full\"\n", "model.mode"),
            ("[optim]\nlr = -1.0\n", "optim.lr"),
            ("[schedule]\nkind = \"linear\"\n", "schedule.kind"),
            ("[train]\nclass_weights = [1.0, -2.0]\n", "train.class_weights[1]"),
            ("[train]\nclass_weights = \"sometimes\"\n", "train.class_weights"),
            ("[train]\nepoch = 3\n", "epoch"),
            ("[train]\nepochs = \"many\"\n", "epochs"),
        ];
        for (toml, key) in cases {
            let e = ClassifierConfig::load(toml, "cfg.toml", &[]).unwrap_err().to_string();
            assert!(e.contains(key), "{toml:?} → {e}");
        }
        // Without overrides the error points at the user's own line.
        let e = ClassifierConfig::load("# c\n[train]\nepoch = 3\n", "cfg.toml", &[]).unwrap_err().to_string();
        assert!(e.contains("line 3"), "{e}");
        let e = ClassifierConfig::load("", "t", &["train.epochs=\"x\"".into()]).unwrap_err().to_string();
        assert!(e.contains("--set train.epochs") && e.contains("epochs"), "{e}");
        let e = ClassifierConfig::load("", "t", &["noequals".into()]).unwrap_err().to_string();
        assert!(e.contains("key=value"), "{e}");
    }
}
