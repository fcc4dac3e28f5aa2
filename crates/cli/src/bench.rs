//! `tinycats bench ...`: throughput measured next to a reference implementation in the same run,
//! printed as a ratio (never asserted in unit tests: timings belong here).

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use rayon::prelude::*;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;
use tinycats_data::pixels::{load_square, ResizeMode};

#[derive(Subcommand)]
pub enum BenchCmd {
    /// Decode + resize images/s vs Pillow on the same files and core count.
    Data(DataBench),
    /// Classifier-tail training step images/s (BN vs frozen BN), optionally vs PyTorch.
    ClassifierStep(StepBench),
    /// DiT flow-matching training step images/s (the generator's preset), optionally vs PyTorch.
    DitStep(DitBench),
    /// Run store: metric ingest points/s and a downsampled 1M-point history query.
    Store(StoreBench),
    /// Studio server: live-event delivery latency to many WebSocket subscribers (p99 vs 50 ms).
    Ws(crate::bench_ws::WsBench),
}

#[derive(Args)]
pub struct DataBench {
    /// Dataset folder (official layout).
    #[arg(long, default_value = "../shared/data/oxford-pets-subset")]
    dir: PathBuf,
    #[arg(long, default_value_t = 128)]
    size: u32,
    /// Worker threads (Rust) and processes (Pillow); default: all cores.
    #[arg(long)]
    threads: Option<usize>,
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Python interpreter with Pillow installed.
    #[arg(long, default_value = "python3")]
    python: String,
    /// Skip the Pillow reference.
    #[arg(long)]
    no_pillow: bool,
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: BenchCmd) -> Result<ExitCode> {
    match cmd {
        BenchCmd::Data(a) => data(a),
        BenchCmd::ClassifierStep(a) => classifier_step(a),
        BenchCmd::DitStep(a) => dit_step(a),
        BenchCmd::Store(a) => store(a),
        BenchCmd::Ws(a) => crate::bench_ws::run(a),
    }
}

/// A rayon pool of `threads` workers that flush subnormals, as the CLI's global pool does
/// (`tinycats_models::flush_denormals`), so benches time the same arithmetic as training.
fn pool_of(threads: usize) -> Result<rayon::ThreadPool> {
    Ok(rayon::ThreadPoolBuilder::new().num_threads(threads).start_handler(|_| tinycats_models::flush_denormals()).build()?)
}

fn data(a: DataBench) -> Result<ExitCode> {
    let threads = a.threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let files: Vec<PathBuf> = tinycats_data::layout::image_files(&a.dir)?.into_values().collect();
    if files.is_empty() {
        bail!("no images in {}/images", a.dir.display());
    }
    let pool = pool_of(threads)?;
    let once = || -> (usize, f64) {
        let t = Instant::now();
        let ok = pool.install(|| {
            files
                .par_iter()
                .map_init(fast_image_resize::Resizer::new, |rz, p| {
                    std::fs::read(p).ok().and_then(|b| load_square(&b, a.size, ResizeMode::Crop, rz).ok()).is_some() as usize
                })
                .sum()
        });
        (ok, t.elapsed().as_secs_f64())
    };
    once(); // warm-up (page cache)
    let mut best = f64::MAX;
    let mut ok = 0;
    for _ in 0..a.repeat.max(1) {
        let (k, s) = once();
        ok = k;
        best = best.min(s);
    }
    let rust_ips = ok as f64 / best;
    let mut out = serde_json::json!({"files": files.len(), "size": a.size, "threads": threads,
        "rust": {"images": ok, "seconds": best, "images_per_s": rust_ips}});
    if !a.no_pillow {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/bench_pillow.py");
        let o = std::process::Command::new(&a.python)
            .arg(&script)
            .args(["--dir", &a.dir.to_string_lossy(), "--size", &a.size.to_string(), "--procs", &threads.to_string(), "--repeat", &a.repeat.to_string()])
            .output()
            .with_context(|| format!("cannot run {} {}", a.python, script.display()))?;
        if !o.status.success() {
            bail!("Pillow reference failed (install it with scripts/setup.sh): {}", String::from_utf8_lossy(&o.stderr));
        }
        let p: serde_json::Value = serde_json::from_slice(&o.stdout).context("Pillow reference printed no JSON")?;
        let p_ips = p["images"].as_f64().unwrap_or(0.0) / p["seconds"].as_f64().unwrap_or(f64::MAX);
        out["pillow"] = serde_json::json!({"images": p["images"], "seconds": p["seconds"], "images_per_s": p_ips, "version": p["pillow"]});
        out["ratio_vs_pillow"] = serde_json::json!(rust_ips / p_ips);
    }
    if a.json {
        println!("{out}");
    } else {
        println!("decode+resize to {} on {} thread(s), {} files", a.size, threads, files.len());
        println!("  tinycats: {:>8.0} images/s ({} ok, best of {})", rust_ips, ok, a.repeat);
        if let Some(p) = out.get("pillow") {
            println!("  Pillow {}: {:>8.0} images/s", p["version"].as_str().unwrap_or("?"), p["images_per_s"].as_f64().unwrap_or(0.0));
            println!("  ratio: {:.2}x", out["ratio_vs_pillow"].as_f64().unwrap_or(0.0));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Where the PyTorch reference runs: beside burn, so a CUDA build compares against CUDA.
const TORCH_DEVICE: &str = if cfg!(feature = "cuda") { "cuda" } else { "cpu" };

/// Images per second of `run(steps, first_step)` after two warm-up steps. The device is synced
/// before and after the timed steps (a no-op on the CPU), so GPU timings cover all queued work.
fn images_per_s<B: burn::tensor::backend::Backend>(dev: &B::Device, batch: usize, steps: usize, mut run: impl FnMut(usize, usize)) -> Result<f64> {
    let sync = || B::sync(dev).map_err(|e| anyhow::anyhow!("device sync failed: {e:?}"));
    run(2, 0);
    sync()?;
    let t = Instant::now();
    run(steps, 2);
    sync()?;
    Ok(batch as f64 * steps as f64 / t.elapsed().as_secs_f64())
}

#[derive(Args)]
pub struct StepBench {
    #[arg(long, default_value_t = 64)]
    batch: usize,
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Threads for burn-flex (rayon) and PyTorch; default: all cores.
    #[arg(long)]
    threads: Option<usize>,
    /// Also run the PyTorch reference (scripts/bench_torch_tail.py) with this interpreter.
    #[arg(long)]
    torch: Option<String>,
    /// Measure burn then PyTorch this many times, alternating, and report each side's median:
    /// the dev VM's speed drifts by ~5% within minutes, so one round per side can mislead.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    #[arg(long)]
    json: bool,
}

/// A PyTorch reference script: beside the sources this binary was built from, else under
/// `scripts/` of the working directory (a binary carried to another machine).
fn torch_script(name: &str) -> PathBuf {
    let built = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts").join(name);
    if built.is_file() { built } else { PathBuf::from("scripts").join(name) }
}

/// The middle value (the upper one of an even count).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Training-step throughput of the shipped classifier's tail (block 15 + head + linear on
/// 192×7×7 features), with BatchNorm and with BN folded/frozen, against PyTorch in the same run.
/// Both sides take the shipped recipe's step: label-smoothed cross-entropy, grad-norm clip 1.0
/// (burn clips each parameter's norm, PyTorch the global norm; the cost is alike), AdamW.
pub fn classifier_step(a: StepBench) -> Result<ExitCode> {
    use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
    use burn::prelude::*;
    use tinycats_models::classifier::Tail;
    use tinycats_models::CpuTrain;
    if a.rounds == 0 || a.steps == 0 || a.batch == 0 {
        bail!("--rounds, --steps and --batch must each be at least 1");
    }
    let threads = a.threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let pool = pool_of(threads)?;
    let mut out = serde_json::json!({"batch": a.batch, "threads": threads, "steps": a.steps, "rounds": a.rounds, "backend": tinycats_models::BACKEND_NAME});
    let keys = ["burn_bn", "burn_frozen_bn", "torch_bn", "torch_frozen_bn"];
    let mut runs: std::collections::BTreeMap<&str, Vec<f64>> = keys.iter().map(|k| (*k, Vec::new())).collect();
    let script = torch_script("bench_torch_tail.py");
    for _ in 0..a.rounds {
        for frozen in [false, true] {
            let ips = pool.install(|| -> Result<f64> {
                let dev = Default::default();
                let m = Tail::<CpuTrain>::new(15, 13, &dev);
                let mut model = if frozen { m.fold_bn() } else { m };
                let clip = burn::grad_clipping::GradientClippingConfig::Norm(1.0);
                let mut optim = AdamWConfig::new().with_weight_decay(0.05).with_grad_clipping(Some(clip)).init::<CpuTrain, Tail<CpuTrain>>();
                let x = Tensor::<CpuTrain, 4>::random([a.batch, 192, 7, 7], burn::tensor::Distribution::Normal(0.0, 1.0), &dev);
                let labels: Vec<i64> = (0..a.batch as i64).map(|i| i % 13).collect();
                let y = Tensor::<CpuTrain, 1, Int>::from_data(TensorData::new(labels, [a.batch]), &dev);
                images_per_s::<CpuTrain>(&dev, a.batch, a.steps, |n, _| {
                    for _ in 0..n {
                        let logits = model.forward(x.clone());
                        let loss = burn::nn::loss::CrossEntropyLossConfig::new().with_smoothing(Some(0.1)).init(&dev).forward(logits, y.clone());
                        let g = GradientsParams::from_grads(loss.backward(), &model);
                        model = optim.step(1e-3, model.clone(), g);
                    }
                })
            })?;
            runs.get_mut(if frozen { "burn_frozen_bn" } else { "burn_bn" }).expect("key").push(ips);
        }
        if let Some(py) = &a.torch {
            let o = std::process::Command::new(py)
                .arg(&script)
                .args(["--batch", &a.batch.to_string(), "--steps", &a.steps.to_string(), "--threads", &threads.to_string()])
                .args(["--device", TORCH_DEVICE])
                .output()
                .with_context(|| format!("cannot run {py} {}", script.display()))?;
            if !o.status.success() {
                bail!("PyTorch reference failed: {}", String::from_utf8_lossy(&o.stderr));
            }
            for line in String::from_utf8_lossy(&o.stdout).lines() {
                let v: serde_json::Value = serde_json::from_str(line).with_context(|| format!("PyTorch reference printed a non-JSON line: {line}"))?;
                let key = format!("torch_{}", v["variant"].as_str().unwrap_or("?"));
                let ips = v["images_per_s"].as_f64().with_context(|| format!("PyTorch reference line has no images_per_s: {line}"))?;
                if let Some(r) = runs.get_mut(key.as_str()) {
                    r.push(ips);
                }
                out[&key] = v;
            }
        }
    }
    for (k, v) in &runs {
        if v.is_empty() {
            continue;
        }
        let (lo, hi) = v.iter().fold((f64::MAX, 0f64), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
        let entry = out.as_object_mut().expect("object").entry(*k).or_insert_with(|| serde_json::json!({}));
        let med = median(v.clone());
        entry["images_per_s"] = serde_json::json!(med);
        if entry.get("step_s").is_some() {
            // PyTorch's line is the last round's; its step time follows the median as well.
            entry["step_s"] = serde_json::json!(a.batch as f64 / med);
        }
        entry["rounds_images_per_s"] = serde_json::json!(v);
        entry["min"] = serde_json::json!(lo);
        entry["max"] = serde_json::json!(hi);
    }
    if a.torch.is_some() {
        for (b, t) in [("burn_bn", "torch_bn"), ("burn_frozen_bn", "torch_frozen_bn")] {
            let r = out[b]["images_per_s"].as_f64().unwrap_or(0.0) / out[t]["images_per_s"].as_f64().unwrap_or(f64::MAX);
            out[format!("ratio_{b}_vs_{t}")] = serde_json::json!(r);
            // Per round: burn's figure against PyTorch's from the same round.
            let per: Vec<f64> = runs[b].iter().zip(&runs[t]).map(|(x, y)| x / y).collect();
            out[format!("round_ratios_{b}_vs_{t}")] = serde_json::json!(per);
        }
    }
    if a.json {
        println!("{out}");
    } else {
        println!("classifier tail training step, batch {}, {} thread(s), fp32, median of {} round(s):", a.batch, threads, a.rounds);
        for k in keys {
            if let Some(v) = out.get(k) {
                println!(
                    "  {k:<16} {:>8.1} images/s  (min {:.1}, max {:.1})",
                    v["images_per_s"].as_f64().unwrap_or(0.0),
                    v["min"].as_f64().unwrap_or(0.0),
                    v["max"].as_f64().unwrap_or(0.0)
                );
            }
        }
        for (k, v) in out.as_object().into_iter().flatten().filter(|(k, _)| k.starts_with("ratio")) {
            println!("  {k}: {:.2}x", v.as_f64().unwrap_or(0.0));
        }
        for (k, v) in out.as_object().into_iter().flatten().filter(|(k, _)| k.starts_with("round_ratios")) {
            let r: Vec<String> = v.as_array().into_iter().flatten().map(|x| format!("{:.2}", x.as_f64().unwrap_or(0.0))).collect();
            println!("  {k}: {}", r.join(" "));
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub struct DitBench {
    /// DiT preset (tiny, small, base).
    #[arg(long, default_value = "small")]
    preset: String,
    /// Patch size instead of the preset's (e.g. 4: the 256-token run `gen-p4-64` trains).
    #[arg(long)]
    patch: Option<usize>,
    /// Input side and channels instead of the preset's, e.g. --size 16 --channels 4 --patch 2:
    /// the shipped latent generator's DiT (16×16×4 latents, 64 tokens).
    #[arg(long)]
    size: Option<usize>,
    #[arg(long)]
    channels: Option<usize>,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// Threads for burn-flex (rayon) and PyTorch; default: all cores.
    #[arg(long)]
    threads: Option<usize>,
    /// Also run the PyTorch reference (scripts/bench_torch_dit.py) with this interpreter.
    #[arg(long)]
    torch: Option<String>,
    #[arg(long)]
    json: bool,
}

/// One flow-matching training step of the generator's DiT (forward, velocity loss, backward,
/// AdamW with clipping) in burn-flex, against the same network in PyTorch in the same run.
pub fn dit_step(a: DitBench) -> Result<ExitCode> {
    use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
    use burn::prelude::*;
    use tinycats_models::dit::{Dit, DitConfig};
    use tinycats_models::CpuTrain;
    use tinycats_train::generator::{draw_step, flow_loss, ObjectiveConfig};
    let mut cfg = DitConfig::preset(&a.preset, 12).with_context(|| format!("--preset {}: use tiny, small or base", a.preset))?;
    cfg.patch = a.patch.unwrap_or(cfg.patch);
    cfg.image_size = a.size.unwrap_or(cfg.image_size);
    cfg.channels = a.channels.unwrap_or(cfg.channels);
    cfg.check().map_err(|e| anyhow::anyhow!("--patch/--size/--channels: {e}"))?;
    let threads = a.threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let pool = pool_of(threads)?;
    let (params, flops) = cfg.params_and_flops();
    let mut out = serde_json::json!({"backend": tinycats_models::BACKEND_NAME, "preset": a.preset, "patch": cfg.patch, "size": cfg.image_size, "channels": cfg.channels, "batch": a.batch, "threads": threads, "steps": a.steps, "params": params, "gflop_per_image_fwd": flops as f64 / 1e9});
    let ips = pool.install(|| -> Result<f64> {
        let dev = Default::default();
        let mut model = Dit::<CpuTrain>::new(cfg, &dev);
        let mut optim = AdamWConfig::new().with_beta_2(0.99).with_grad_clipping(Some(burn::grad_clipping::GradientClippingConfig::Norm(1.0))).init::<CpuTrain, Dit<CpuTrain>>();
        let (s, c) = (cfg.image_size, cfg.channels);
        let per = c * s * s;
        let x1 = Tensor::<CpuTrain, 4>::random([a.batch, c, s, s], burn::tensor::Distribution::Uniform(-1.0, 1.0), &dev);
        let labels: Vec<usize> = (0..a.batch).map(|i| i % 12).collect();
        let obj = ObjectiveConfig::default();
        images_per_s::<CpuTrain>(&dev, a.batch, a.steps, |n, k0| {
            for k in 0..n {
                let d = draw_step(&obj, 1, k0 + k, &labels, per, 12);
                let (loss, _) = flow_loss(&model, x1.clone(), &d, "velocity");
                let g = GradientsParams::from_grads(loss.backward(), &model);
                model = optim.step(4e-4, model.clone(), g);
            }
        })
    })?;
    out["burn"] = serde_json::json!({"images_per_s": ips, "gflop_per_s": 3.0 * flops as f64 * ips / 1e9});
    if let Some(py) = &a.torch {
        let script = torch_script("bench_torch_dit.py");
        let args = [
            "--size", &cfg.image_size.to_string(), "--channels", &cfg.channels.to_string(), "--patch", &cfg.patch.to_string(), "--hidden", &cfg.hidden.to_string(), "--depth", &cfg.depth.to_string(),
            "--heads", &cfg.heads.to_string(), "--batch", &a.batch.to_string(), "--steps", &a.steps.to_string(), "--threads", &threads.to_string(),
            "--device", TORCH_DEVICE,
        ];
        let o = std::process::Command::new(py).arg(&script).args(args).output().with_context(|| format!("cannot run {py} {}", script.display()))?;
        if !o.status.success() {
            bail!("PyTorch reference failed: {}", String::from_utf8_lossy(&o.stderr));
        }
        let v: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().last().unwrap_or("{}"))?;
        if v["params"].as_u64() != Some(params as u64) {
            bail!("PyTorch model has {} parameters, burn's has {params}: the references differ", v["params"]);
        }
        out["ratio_burn_vs_torch"] = serde_json::json!(ips / v["images_per_s"].as_f64().unwrap_or(f64::MAX));
        out["torch"] = v;
    }
    if a.json {
        println!("{out}");
    } else {
        println!("DiT {} ({}×{}×{}, patch {}) training step, batch {}, {} thread(s), fp32, {:.2} M params:", a.preset, cfg.image_size, cfg.image_size, cfg.channels, cfg.patch, a.batch, threads, params as f64 / 1e6);
        println!("  {} {:>8.1} images/s ({:.1} GFLOP/s)", tinycats_models::BACKEND_NAME, ips, out["burn"]["gflop_per_s"].as_f64().unwrap_or(0.0));
        if let Some(t) = out.get("torch") {
            println!("  PyTorch {} {:>8.1} images/s", t["torch"].as_str().unwrap_or("?"), t["images_per_s"].as_f64().unwrap_or(0.0));
            println!("  ratio burn / PyTorch: {:.2}x", out["ratio_burn_vs_torch"].as_f64().unwrap_or(0.0));
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub struct StoreBench {
    /// Metric points to ingest (one key, one run).
    #[arg(long, default_value_t = 1_000_000)]
    points: usize,
    /// Points per batch (one transaction each).
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
    /// Points the history query returns at most (min/max per bucket).
    #[arg(long, default_value_t = 2_000)]
    max_points: usize,
    #[arg(long)]
    json: bool,
}

/// Ingest rate and history-query latency of the SQLite run store, on a temporary file (WAL).
/// Goals (issue 6): ≥ 200k points/s ingest, < 50 ms for a 1M-point history query.
pub fn store(a: StoreBench) -> Result<ExitCode> {
    let dir = std::env::temp_dir().join(format!("tinycats-store-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("bench.db");
    let mut s = tinycats_track::Store::open(&path)?;
    let run = s.create_run("bench", "ingest", "bench", &serde_json::json!({}), None, None, None)?;
    let t = Instant::now();
    let mut step = 0i64;
    while (step as usize) < a.points {
        let n = a.batch.min(a.points - step as usize);
        let pts: Vec<(&str, i64, f64)> = (0..n as i64).map(|i| ("train/loss", step + i, ((step + i) as f64 * 1e-3).sin())).collect();
        s.log_metrics(run, &pts)?;
        step += n as i64;
    }
    let ingest = a.points as f64 / t.elapsed().as_secs_f64();
    let mut times = Vec::new();
    let mut h = None;
    for _ in 0..5 {
        let t = Instant::now();
        h = Some(s.history(run, "train/loss", a.max_points)?);
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let h = h.expect("ran");
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
    let out = serde_json::json!({"points": a.points, "batch": a.batch, "ingest_points_per_s": ingest, "history_ms_median": times[2], "history_ms_min": times[0], "returned": h.points.len(), "downsampled": h.downsampled});
    if a.json {
        println!("{out}");
    } else {
        println!("run store (SQLite WAL): ingest {:.0} points/s ({} points, batches of {}); goal ≥ 200,000", ingest, a.points, a.batch);
        println!("history of {} points → {} points (min/max per bucket): median {:.1} ms, best {:.1} ms; goal < 50 ms", a.points, h.points.len(), times[2], times[0]);
    }
    Ok(ExitCode::SUCCESS)
}
