//! `tinycats predict` and `tinycats eval` for the breed classifier.

use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;
use tinycats_data::cache::{Cache, Split};
use tinycats_train::metrics;
use tinycats_train::predictor::{default_backbone, default_model_dir, hwc_to_chw, Predictor};

#[derive(Args)]
pub struct PredictArgs {
    /// Image files (JPEG, PNG, GIF, WebP; recognised by content).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Model folder (model.json + tail.safetensors); default: the shipped models/classifier.
    #[arg(long)]
    model: Option<PathBuf>,
    /// ImageNet backbone weights (made by scripts/setup.sh).
    #[arg(long)]
    backbone: Option<PathBuf>,
    #[arg(long, default_value_t = 3)]
    top: usize,
    /// One JSON object per line: {"file","top":[{"label","prob"}]} or {"file","error"}.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct EvalArgs {
    #[arg(long)]
    model: Option<PathBuf>,
    #[arg(long)]
    backbone: Option<PathBuf>,
    /// Prepared cache (same label set as the model).
    #[arg(long, default_value = "data/pets/prepared/224-cats_other-crop")]
    data: PathBuf,
    /// train | val | test
    #[arg(long, default_value = "test")]
    split: String,
    /// Folder for eval.json, confusion.json/.png, pr_curves.json.
    #[arg(long, default_value = "eval")]
    out: PathBuf,
    #[arg(long)]
    json: bool,
}

fn load(model: Option<PathBuf>, backbone: Option<PathBuf>) -> Result<Predictor> {
    Predictor::load(&model.unwrap_or_else(default_model_dir), &backbone.unwrap_or_else(default_backbone))
}

pub fn predict(a: PredictArgs) -> Result<ExitCode> {
    let p = load(a.model, a.backbone)?;
    let classes = p.manifest.classes.clone();
    let mut failed = 0;
    for f in &a.files {
        let res = std::fs::read(f).with_context(|| format!("cannot read {}", f.display())).and_then(|b| p.preprocess(&b)).and_then(|x| p.probs(x, 1));
        match res {
            Ok(probs) => {
                let mut top: Vec<(usize, f32)> = probs.iter().copied().enumerate().collect();
                top.sort_by(|x, y| y.1.total_cmp(&x.1));
                top.truncate(a.top.max(1));
                if a.json {
                    let t: Vec<serde_json::Value> = top.iter().map(|(i, pr)| serde_json::json!({"label": classes[*i], "prob": pr})).collect();
                    println!("{}", serde_json::json!({"file": f, "top": t}));
                } else {
                    let t: Vec<String> = top.iter().map(|(i, pr)| format!("{} {:.1}%", classes[*i], pr * 100.0)).collect();
                    println!("{}: {}", f.display(), t.join(", "));
                }
            }
            Err(e) => {
                failed += 1;
                if a.json {
                    println!("{}", serde_json::json!({"file": f, "error": format!("{e:#}")}));
                } else {
                    eprintln!("{}: error: {e:#}", f.display());
                }
            }
        }
    }
    Ok(if failed > 0 { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

pub fn eval(a: EvalArgs) -> Result<ExitCode> {
    let p = load(a.model, a.backbone)?;
    let cache = Cache::open(&a.data)?;
    if cache.index.classes != p.manifest.classes {
        anyhow::bail!("{}: classes {:?} differ from the model's {:?}", a.data.display(), cache.index.classes, p.manifest.classes);
    }
    if cache.size() != p.manifest.size {
        anyhow::bail!("{}: images are {} px, the model expects {}", a.data.display(), cache.size(), p.manifest.size);
    }
    let split = match a.split.as_str() {
        "train" => Split::Train,
        "val" => Split::Val,
        "test" => Split::Test,
        s => anyhow::bail!("--split `{s}`: use train, val or test"),
    };
    let idx = cache.split(split);
    let s = cache.size() as usize;
    let t = Instant::now();
    let mut probs = Vec::new();
    for chunk in idx.chunks(32) {
        let x: Vec<f32> = chunk.iter().flat_map(|&i| hwc_to_chw(cache.image(i), s)).collect();
        probs.extend(p.probs(x, chunk.len())?);
    }
    let secs = t.elapsed().as_secs_f64();
    let labels: Vec<usize> = idx.iter().map(|&i| cache.index.entries[i].label).collect();
    let classes = &p.manifest.classes;
    let r = metrics::report(&probs, &labels, classes);
    let (flops, params) = tinycats_models::efficientnet::flops_and_params(s, classes.len());
    std::fs::create_dir_all(&a.out).with_context(|| format!("cannot create {}", a.out.display()))?;
    let pr: serde_json::Value = classes.iter().enumerate().map(|(k, c)| (c.clone(), serde_json::json!(metrics::pr_curve(&probs, &labels, k, classes.len(), 20)))).collect::<serde_json::Map<_, _>>().into();
    std::fs::write(a.out.join("pr_curves.json"), serde_json::to_vec(&pr)?)?;
    std::fs::write(a.out.join("confusion.json"), serde_json::to_vec(&serde_json::json!({"classes": classes, "matrix": r.confusion}))?)?;
    metrics::confusion_png(&r.confusion).save(a.out.join("confusion.png")).context("cannot write confusion.png")?;
    let summary = serde_json::json!({"split": a.split, "report": r, "params": params, "flops_per_image": flops, "images_per_s": idx.len() as f64 / secs, "threads": rayon::current_num_threads()});
    std::fs::write(a.out.join("eval.json"), serde_json::to_vec_pretty(&summary)?)?;
    if a.json {
        println!("{summary}");
    } else {
        println!("{} {} images: top-1 {:.2}%  top-3 {:.2}%  macro-F1 {:.3}  macro ROC-AUC {:.4}  ECE {:.3}", a.split, r.n, 100.0 * r.accuracy, 100.0 * r.top3, r.macro_f1, r.macro_roc_auc.unwrap_or(f64::NAN), r.ece);
        println!("{:<20} {:>9} {:>9} {:>9} {:>8}", "class", "precision", "recall", "F1", "support");
        for c in &r.per_class {
            println!("{:<20} {:>9.3} {:>9.3} {:>9.3} {:>8}", c.label, c.precision, c.recall, c.f1, c.support);
        }
        println!("params {params}, {:.3} GFLOPs/image, {:.1} images/s end-to-end; written to {}", flops as f64 / 1e9, idx.len() as f64 / secs, a.out.display());
    }
    Ok(ExitCode::SUCCESS)
}
