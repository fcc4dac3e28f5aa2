//! `tinycats export`: a classifier folder or a generator file → ONNX (fp32, fp16 or int8 weights,
//! or int8-dynamic: int8 weights and integer Linear MatMuls).

use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tinycats_export::{nets, quantize, Quantize};

#[derive(Args)]
pub struct ExportArgs {
    /// A classifier folder (with model.json) or a generator .safetensors file.
    #[arg(long)]
    model: PathBuf,
    /// Output .onnx file (written atomically; nothing is left behind on error).
    #[arg(long)]
    out: PathBuf,
    /// Weight storage: none (fp32), fp16, int8 (per-channel, DequantizeLinear), int8-dynamic
    /// (int8 weights, Linear MatMuls in integers with activations quantized at run time).
    #[arg(long, default_value = "none")]
    quantize: String,
}

fn kv(k: &str, v: impl ToString) -> (String, String) {
    (k.to_string(), v.to_string())
}

pub fn export(a: ExportArgs) -> Result<ExitCode> {
    let q = Quantize::parse(&a.quantize)?;
    if a.out.extension().and_then(|e| e.to_str()) != Some("onnx") {
        bail!("--out {}: the file name must end in .onnx", a.out.display());
    }
    let (exported, what) = if a.model.join("model.json").is_file() {
        classifier(&a.model)?
    } else if a.model.is_file() || tinycats_models::weights::index_path(&a.model).is_file() {
        generator(&a.model)?
    } else {
        bail!("--model {}: not a classifier folder (no model.json) nor a generator .safetensors file", a.model.display());
    };
    let bytes = tinycats_export::encode(&quantize(exported, q));
    if let Some(p) = a.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(p).with_context(|| format!("cannot create {}", p.display()))?;
    }
    tinycats_data::hashing::write_atomic(&a.out, &bytes)?;
    println!("{what} → {} ({:.2} MB, weights {})", a.out.display(), bytes.len() as f64 / 1e6, q.name());
    Ok(ExitCode::SUCCESS)
}

fn classifier(dir: &Path) -> Result<(nets::Exported, &'static str)> {
    let p = tinycats_train::predictor::Predictor::load(dir, &tinycats_train::predictor::default_backbone())?;
    let m = &p.manifest;
    let tail = p.tail.clone().fold_bn();
    let meta = vec![
        kv("kind", "classifier"),
        kv("labels", serde_json::to_string(&m.classes)?),
        kv("image_size", m.size),
        kv("input", "image: float32 [N,3,S,S], RGB in [0,1], shorter side resized to S then centre-cropped"),
        kv("normalisation", "inside the graph: (x·255 − 127) / 128"),
        kv("output", "probs: float32 [N,C] softmax over labels"),
        kv("model_version", &m.version),
        kv("training_run_id", &m.run_id),
    ];
    Ok((nets::classifier(&p.front, &tail, m.cut, m.size as usize, &meta)?, "classifier"))
}

fn generator(path: &Path) -> Result<(nets::Exported, &'static str)> {
    let (model, meta) = tinycats_train::generator::load_generator(path)?;
    let version = std::fs::read(path.with_file_name("model.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .map(|v| (v["version"].as_str().unwrap_or("unversioned").to_string(), v["run_id"].as_str().unwrap_or("").to_string()))
        .unwrap_or(("unversioned".into(), String::new()));
    let md = vec![
        kv("kind", "generator"),
        kv("labels", serde_json::to_string(&meta.classes)?),
        kv("image_size", meta.dit.image_size),
        kv("null_class", meta.null_class()),
        kv("target", &meta.target),
        kv("flow", "x_t = (1 − t)·noise + t·image; t = 0 is noise, t = 1 the image; velocity v = image − noise"),
        kv("input", "x_t: float32 [N,3,S,S]; t: float32 [N] in [0,1]; breed: int64 [N] (null_class = unconditional)"),
        kv("output", if meta.target == "x" { "x_hat: the clean-image estimate in [-1,1]; v = (x_hat − x_t)/max(1 − t, 0.05)" } else { "velocity: v; Euler step x += v·dt" }),
        kv("normalisation", "images in [-1,1]: pixel = (x + 1)/2"),
        kv("guidance", "none inside: run breed and null_class, v = v_null + s·(v_breed − v_null)"),
        kv("ema", meta.ema),
        kv("training_step", meta.step),
        kv("model_version", version.0),
        kv("training_run_id", version.1),
    ];
    Ok((nets::dit(&model, &md)?, "generator"))
}
