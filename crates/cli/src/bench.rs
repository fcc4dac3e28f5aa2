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
    }
}

fn data(a: DataBench) -> Result<ExitCode> {
    let threads = a.threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let files: Vec<PathBuf> = tinycats_data::layout::image_files(&a.dir)?.into_values().collect();
    if files.is_empty() {
        bail!("no images in {}/images", a.dir.display());
    }
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
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
