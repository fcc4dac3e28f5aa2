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
    let decoder_out = decoder_path(&a.out);
    let (exported, what, decoder) = if a.model.join("model.json").is_file() {
        let (e, w) = classifier(&a.model)?;
        (e, w, None)
    } else if a.model.is_file() || tinycats_models::weights::index_path(&a.model).is_file() {
        generator(&a.model, &decoder_out)?
    } else {
        bail!("--model {}: not a classifier folder (no model.json) nor a generator .safetensors file", a.model.display());
    };
    // Both graphs are built before anything is written.
    let bytes = tinycats_export::encode(&quantize(exported, q));
    let decoder = decoder.map(|d| tinycats_export::encode(&quantize(d, q)));
    if let Some(p) = a.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(p).with_context(|| format!("cannot create {}", p.display()))?;
    }
    if let Some(d) = &decoder {
        tinycats_data::hashing::write_atomic(&decoder_out, d)?;
        println!("latent decoder → {} ({:.2} MB, weights {})", decoder_out.display(), d.len() as f64 / 1e6, q.name());
    }
    tinycats_data::hashing::write_atomic(&a.out, &bytes)?;
    println!("{what} → {} ({:.2} MB, weights {})", a.out.display(), bytes.len() as f64 / 1e6, q.name());
    Ok(ExitCode::SUCCESS)
}

/// Where a latent generator's decoder graph goes: `X.onnx` → `X.decoder.onnx`, beside it.
pub fn decoder_path(out: &Path) -> PathBuf {
    let stem = out.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
    out.with_file_name(format!("{stem}.decoder.onnx"))
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

/// The DiT graph and, for a latent generator, its decoder's graph (written to `decoder_out`,
/// which the DiT's `decoder` metadata names).
fn generator(path: &Path, decoder_out: &Path) -> Result<(nets::Exported, &'static str, Option<nets::Exported>)> {
    let (model, meta) = tinycats_train::generator::load_generator(path)?;
    let version = std::fs::read(path.with_file_name("model.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .map(|v| (v["version"].as_str().unwrap_or("unversioned").to_string(), v["run_id"].as_str().unwrap_or("").to_string()))
        .unwrap_or(("unversioned".into(), String::new()));
    let latent = tinycats_train::generator::latent_autoencoder(path, &meta)?;
    let mut md = vec![
        kv("kind", "generator"),
        kv("labels", serde_json::to_string(&meta.classes)?),
        kv("image_size", meta.image_size()),
        kv("null_class", meta.null_class()),
        kv("target", &meta.target),
        kv("flow", "x_t = (1 − t)·noise + t·image; t = 0 is noise, t = 1 the image; velocity v = image − noise"),
        kv("input", format!("x_t: float32 [N,{},S,S]; t: float32 [N] in [0,1]; breed: int64 [N] (null_class = unconditional)", meta.dit.channels)),
        kv("output", if meta.target == "x" { "x_hat: the clean-image estimate in [-1,1]; v = (x_hat − x_t)/max(1 − t, 0.05)" } else { "velocity: v; Euler step x += v·dt" }),
        kv(
            "normalisation",
            if latent.is_some() {
                "x_t is the autoencoder's normalised latent; the decoder graph maps the final latent to an image in [-1,1]: pixel = (x + 1)/2"
            } else {
                "images in [-1,1]: pixel = (x + 1)/2"
            },
        ),
        kv("guidance", "none inside: run breed and null_class, v = v_null + s·(v_breed − v_null)"),
        kv("ema", meta.ema),
        kv("training_step", meta.step),
        kv("model_version", version.0),
        kv("training_run_id", version.1),
    ];
    let decoder = match latent {
        None => None,
        Some((ae, lm)) => {
            // The DiT works on the normalised latent; the decoder graph turns it into pixels.
            let file = decoder_out.file_name().map(|f| f.to_string_lossy().to_string()).unwrap_or_default();
            md.extend([kv("latent_channels", meta.dit.channels), kv("latent_size", meta.dit.image_size), kv("decoder", &file)]);
            let dmd = vec![kv("kind", "latent_decoder"), kv("image_size", lm.ae.image_size), kv("latent_channels", lm.ae.latent_channels), kv("latent_size", lm.ae.latent_size()), kv("input", "latent: float32 [N,C,L,L], the generator's normalised latent"), kv("output", "image: float32 [N,3,S,S] in [-1,1]")];
            Some(nets::decoder(&ae.decoder, &lm.mean, &lm.std, &dmd)?)
        }
    };
    Ok((nets::dit(&model, &md)?, "generator", decoder))
}
