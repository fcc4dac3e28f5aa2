//! `tinycats`: the command-line front door. Each subcommand parses arguments, calls one stage
//! crate, and prints either a human summary or `--json`. No ML or file-format logic lives here.

mod bench;
mod bench_ws;
mod data_cmd;
mod export_cmd;
mod gen_cmd;
mod model_cmd;
mod progress;
mod runs_cmd;
mod serve_cmd;
mod train_cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "tinycats", version, about = "Train, track, explain and ship tiny cat-image models", long_about = None)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Datasets: fetch, import, verify, prepare, stats, fixture.
    #[command(subcommand)]
    Data(data_cmd::DataCmd),
    /// Train models with the shared engine.
    #[command(subcommand)]
    Train(train_cmd::TrainCmd),
    /// Copy a finished run's best weights into a model folder with a model card.
    Ship(train_cmd::ShipArgs),
    /// Classify image files with a trained classifier (default: the shipped one).
    Predict(model_cmd::PredictArgs),
    /// Evaluate a classifier on a prepared split: per-class metrics, confusion, ROC-AUC, ECE, speed.
    Eval(model_cmd::EvalArgs),
    /// Paint cats of a breed with the generator (default: the shipped one).
    Generate(gen_cmd::GenerateArgs),
    /// Evaluate a generator: FID-like score on EfficientNet-Lite0 embeddings and breed agreement.
    EvalGen(gen_cmd::EvalGenArgs),
    /// Reconstruct held-out photos with a latent autoencoder: L1, PSNR and a picture.
    EvalAe(gen_cmd::EvalAeArgs),
    /// Export a classifier or generator to ONNX (optionally fp16 / int8 weights).
    Export(export_cmd::ExportArgs),
    /// Tracked runs (SQLite run store): list, show, compare.
    #[command(subcommand)]
    Runs(runs_cmd::RunsCmd),
    /// The studio server: REST + WebSocket over the run store, models and the web app.
    Serve(serve_cmd::ServeArgs),
    /// Benchmarks that print ratios against a reference measured in the same run.
    #[command(subcommand)]
    Bench(bench::BenchCmd),
}

/// Runs tensor-heavy work on a worker of rayon's global pool. Called from the main thread, every
/// parallel tensor op would be injected into the pool while the main thread sleeps on a latch and
/// then has to be woken; on a worker the op runs half inline and the other worker steals the rest.
fn on_pool<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    rayon::scope(|_| f())
}

fn main() -> ExitCode {
    // RUST_LOG=debug etc.; quiet by default so --json output stays clean on stdout.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    // Subnormal floats slow x86 GEMMs by orders of magnitude (see `flush_denormals`); every
    // thread that does tensor math flushes them. If the pool already exists this is a no-op.
    tinycats_models::flush_denormals();
    // Freed activations stay in the heap instead of returning as fresh zeroed pages (see there).
    tinycats_models::keep_freed_memory();
    let _ = rayon::ThreadPoolBuilder::new().start_handler(|_| tinycats_models::flush_denormals()).build_global();
    let cli = Cli::parse();
    let res = match cli.cmd {
        Cmd::Data(c) => data_cmd::run(c),
        Cmd::Bench(c) => bench::run(c),
        Cmd::Train(c) => on_pool(move || train_cmd::run(c)),
        Cmd::Predict(a) => on_pool(move || model_cmd::predict(a)),
        Cmd::Ship(a) => train_cmd::ship(a),
        Cmd::Eval(a) => on_pool(move || model_cmd::eval(a)),
        Cmd::Generate(a) => on_pool(move || gen_cmd::generate(a)),
        Cmd::Runs(c) => runs_cmd::run(c),
        Cmd::Serve(a) => serve_cmd::serve(a),
        Cmd::Export(a) => export_cmd::export(a),
        Cmd::EvalGen(a) => on_pool(move || gen_cmd::eval_gen(a)),
        Cmd::EvalAe(a) => on_pool(move || gen_cmd::eval_ae(a)),
    };
    match res {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
