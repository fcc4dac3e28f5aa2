//! `tinycats data ...`

use crate::progress;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use tinycats_data::{fetch, fixtures, import, labels::LabelSet, pixels::ResizeMode, prepare, stats, verify};

#[derive(Subcommand)]
pub enum DataCmd {
    /// Download the official Oxford-IIIT Pet archives (resumable, sha256-verified), then import them.
    Fetch(FetchArgs),
    /// Import an official-layout folder, a .tar/.tar.gz of one, or class folders (<breed>/<img>).
    Import(ImportArgs),
    /// Decode every image; convert what can be converted, quarantine the rest; write a report.
    Verify(VerifyArgs),
    /// Resize, split and label into a memory-mappable training cache with a dataset card.
    Prepare(PrepareArgs),
    /// Counts per breed (raw folder) or per class and split (prepared cache).
    Stats(StatsArgs),
    /// Write a small synthetic dataset in the official layout, with every known file quirk.
    Fixture(FixtureArgs),
}

#[derive(Args)]
pub struct FetchArgs {
    /// Dataset folder to create (archives go to DEST/downloads).
    #[arg(long, default_value = "data/oxford-pets")]
    dest: PathBuf,
    /// Base URL serving images.tar.gz and annotations.tar.gz instead of the official site.
    #[arg(long)]
    mirror: Option<String>,
    /// JSON manifest {"files":[{name,url,size,sha256}]} replacing the official file list.
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// Download and verify only; do not unpack.
    #[arg(long)]
    no_import: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct ImportArgs {
    /// One or more sources (folders or archives), merged into DEST.
    #[arg(required = true)]
    src: Vec<PathBuf>,
    #[arg(long)]
    dest: PathBuf,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct VerifyArgs {
    dir: PathBuf,
    /// Report only; change nothing on disk.
    #[arg(long)]
    check: bool,
    /// Smallest accepted image side in pixels.
    #[arg(long, default_value_t = 32)]
    min_side: u32,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct PrepareArgs {
    dir: PathBuf,
    /// Output side length N (shorter side to N, then centre crop; see --mode).
    #[arg(long)]
    size: u32,
    /// cats+other (13 classes), cats (12) or breeds37.
    #[arg(long, default_value = "cats+other")]
    labels: String,
    /// train,val,test fractions.
    #[arg(long, default_value = "0.8,0.1,0.1")]
    split: String,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// crop or letterbox.
    #[arg(long, default_value = "crop")]
    mode: String,
    /// Crop mode: keep this share of the shorter side around the centre (0.3..=1), so the animal
    /// fills more of the frame.
    #[arg(long, default_value_t = 1.0)]
    zoom: f64,
    /// Output folder (default DIR/prepared/<size>-<labels>-<mode>[-zoom<Z>]).
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct StatsArgs {
    dir: PathBuf,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct FixtureArgs {
    dir: PathBuf,
    #[arg(long, default_value_t = 6)]
    per_class: usize,
    #[arg(long, default_value_t = 64)]
    size: u32,
    /// Comma-separated breeds (default: Abyssinian,Bengal,Birman,beagle,pug; `all-cats` for the 12 cats + 2 dogs).
    #[arg(long)]
    breeds: Option<String>,
    #[arg(long)]
    no_quirks: bool,
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    println!("{}", serde_json::to_string(v)?);
    Ok(())
}

pub fn run(cmd: DataCmd) -> Result<ExitCode> {
    match cmd {
        DataCmd::Fetch(a) => {
            let mut m = match &a.manifest {
                Some(p) => fetch::Manifest::load(p)?,
                None => fetch::Manifest::official(),
            };
            if let Some(base) = &a.mirror {
                m = m.with_mirror(base);
            }
            let downloads = a.dest.join("downloads");
            let pb = progress::bytes_bar("download");
            let mut cb = |name: &str, done: u64, total: Option<u64>| {
                pb.set_message(name.to_string());
                if let Some(t) = total {
                    pb.set_length(t);
                }
                pb.set_position(done);
            };
            let paths = fetch::fetch_all(&m, &downloads, &mut cb)?;
            pb.finish_and_clear();
            let summary = if a.no_import { None } else { Some(import::import(&paths, &a.dest)?) };
            if a.json {
                print_json(&serde_json::json!({"downloads": paths, "import": summary}))?;
            } else {
                for p in &paths {
                    println!("verified {}", p.display());
                }
                if let Some(s) = summary {
                    println!("imported {} images ({} annotated) into {}", s.images, s.annotated, a.dest.display());
                    println!("next: tinycats data verify {}", a.dest.display());
                }
            }
        }
        DataCmd::Import(a) => {
            let s = import::import(&a.src, &a.dest)?;
            if a.json {
                print_json(&s)?;
            } else {
                println!("imported {} images ({} annotated, {} already present) into {}", s.images, s.annotated, s.unchanged, a.dest.display());
            }
        }
        DataCmd::Verify(a) => {
            let n = tinycats_data::layout::image_files(&a.dir).map(|f| f.len()).unwrap_or(0);
            let pb = progress::bar(n as u64, "verify");
            let r = verify::verify(&a.dir, &verify::VerifyOptions { min_side: a.min_side, check_only: a.check }, &|k| pb.set_position(k as u64))?;
            pb.finish_and_clear();
            if a.json {
                print_json(&r)?;
            } else {
                println!("{} images: {} ok, {} converted, {} quarantined", r.images, r.ok, r.converted, r.quarantined);
                for p in &r.problems {
                    let act = serde_json::to_value(p.action)?;
                    let kind = serde_json::to_value(p.kind)?;
                    println!("  {:<40} {:<22} {}{}", p.file, kind.as_str().unwrap_or(""), act.as_str().unwrap_or(""), p.detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default());
                }
                if !a.check {
                    println!("report: {}", a.dir.join(tinycats_data::layout::VERIFY_REPORT).display());
                }
            }
        }
        DataCmd::Prepare(a) => {
            let opts = prepare::PrepareOptions {
                size: a.size,
                labels: LabelSet::parse(&a.labels)?,
                split: prepare::parse_split(&a.split)?,
                seed: a.seed,
                mode: ResizeMode::parse(&a.mode)?,
                zoom: a.zoom,
                out: a.out,
            };
            let pb = progress::bar(0, "prepare");
            let s = prepare::prepare(&a.dir, &opts, &|k, n| {
                pb.set_length(n as u64);
                pb.set_position(k as u64)
            })?;
            pb.finish_and_clear();
            if a.json {
                print_json(&s)?;
            } else {
                let verb = if s.unchanged { "unchanged (inputs and options match)" } else { "written" };
                println!("{} images, {} classes → {} [{verb}]", s.images, s.classes.len(), s.out.display());
                if s.missing > 0 {
                    println!("  {} annotated image(s) without a file were skipped", s.missing);
                }
                println!("  card: {}", s.out.join("CARD.md").display());
            }
        }
        DataCmd::Stats(a) => {
            let s = stats::stats(&a.dir)?;
            if a.json {
                print_json(&s)?;
            } else {
                println!("{}", serde_json::to_string_pretty(&s)?);
            }
        }
        DataCmd::Fixture(a) => {
            let breeds = match a.breeds.as_deref() {
                None => fixtures::FixtureSpec::default().breeds,
                Some("all-cats") => {
                    let mut v: Vec<String> = tinycats_data::labels::CAT_BREEDS.iter().map(|s| s.to_string()).collect();
                    v.extend(["beagle".into(), "pug".into()]);
                    v
                }
                Some(list) => list.split(',').map(|s| s.trim().to_string()).collect(),
            };
            let spec = fixtures::FixtureSpec { breeds, per_class: a.per_class, size: a.size, quirks: !a.no_quirks, seed: a.seed };
            let info = fixtures::write_fixture(&a.dir, &spec).with_context(|| format!("writing fixture to {}", a.dir.display()))?;
            println!("wrote {} clean images and {} quirk files to {}", info.clean, info.quirks.len(), a.dir.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
