//! `tinycats serve`: the studio server (REST + WebSocket over the run store, the shipped models,
//! and the built web app).

use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on; anything but loopback requires --token.
    #[arg(long, default_value = "127.0.0.1:8080")]
    bind: std::net::SocketAddr,
    /// Bearer token required on every request (and `?token=` on the WebSocket).
    #[arg(long, env = "TINYCATS_TOKEN")]
    token: Option<String>,
    /// Run store (default $TINYCATS_STORE or runs/tinycats.db).
    #[arg(long)]
    store: Option<PathBuf>,
    /// Built web app served at / (build it with `npm run build` in web/).
    #[arg(long, default_value = "web/dist")]
    web: PathBuf,
    /// Shipped models folder served at /models/.
    #[arg(long, default_value = "models")]
    models: PathBuf,
    /// Folder for the run folders and logs of jobs submitted to the server.
    #[arg(long, default_value = "runs/jobs")]
    runs: PathBuf,
    /// Training jobs run at once (each is a `tinycats train` process).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    max_jobs: u16,
}

pub fn serve(a: ServeArgs) -> Result<ExitCode> {
    let mut cfg = tinycats_server::AppConfig::new(crate::runs_cmd::store_path(a.store.as_deref()), a.models);
    cfg.web_dist = a.web.join("index.html").is_file().then_some(a.web.clone());
    cfg.token = a.token;
    cfg.runs = a.runs;
    cfg.max_jobs = a.max_jobs as usize;
    // Jobs run this very binary's `train` command: the same engine as the CLI.
    cfg.worker = std::env::current_exe().ok();
    if cfg.web_dist.is_none() {
        eprintln!("note: {} has no built web app (cd web && npm run build); serving the API and models only", a.web.display());
    }
    eprintln!("tinycats studio on http://{}/ (API: /api/openapi.json, store {})", a.bind, cfg.store.display());
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(tinycats_server::serve(a.bind, cfg))?;
    Ok(ExitCode::SUCCESS)
}
