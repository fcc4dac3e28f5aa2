//! `tinycats`: the command-line front door. Each subcommand parses arguments, calls one stage
//! crate, and prints either a human summary or `--json`. No ML or file-format logic lives here.

mod bench;
mod data_cmd;
mod progress;

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
    /// Benchmarks that print ratios against a reference measured in the same run.
    #[command(subcommand)]
    Bench(bench::BenchCmd),
}

fn main() -> ExitCode {
    // RUST_LOG=debug etc.; quiet by default so --json output stays clean on stdout.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let res = match cli.cmd {
        Cmd::Data(c) => data_cmd::run(c),
        Cmd::Bench(c) => bench::run(c),
    };
    match res {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
