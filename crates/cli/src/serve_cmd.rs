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
}

pub fn serve(a: ServeArgs) -> Result<ExitCode> {
    let cfg = tinycats_server::AppConfig {
        store: crate::runs_cmd::store_path(a.store.as_deref()),
        web_dist: a.web.join("index.html").is_file().then_some(a.web.clone()),
        models: a.models,
        token: a.token,
        poll: std::time::Duration::from_millis(250),
        heartbeat: std::time::Duration::from_secs(15),
    };
    if cfg.web_dist.is_none() {
        eprintln!("note: {} has no built web app (cd web && npm run build); serving the API and models only", a.web.display());
    }
    eprintln!("tinycats studio on http://{}/ (API: /api/openapi.json, store {})", a.bind, cfg.store.display());
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(tinycats_server::serve(a.bind, cfg))?;
    Ok(ExitCode::SUCCESS)
}
