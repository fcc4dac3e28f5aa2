//! The studio server (`tinycats serve`): a REST + WebSocket API over the run store, the shipped
//! models, and the web app. Read-side first: runs (paged, filterable), run detail, metric history
//! (downsampled on the server, flagged), predictions by epoch or by sample, event replay, and a
//! WebSocket per channel that replays from `since=SEQ` and then follows the store live (see
//! `hub`), a job queue whose worker runs the CLI's own training command (see `jobs`), and a
//! system monitor (see `monitor`).
//!
//! Security: the CLI binds 127.0.0.1 unless told otherwise, and refuses other addresses without a
//! token; with a token every endpoint (and the WebSocket) needs `Authorization: Bearer TOKEN`
//! (or `?token=` for browsers' WebSockets). Request bodies are limited to `BODY_LIMIT`.

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tinycats_track::Store;

pub mod hub;
pub mod jobs;
pub mod monitor;

pub const BODY_LIMIT: usize = 256 * 1024;

#[derive(Clone)]
pub struct AppConfig {
    pub store: PathBuf,
    /// Built web app (web/dist); served at / when present.
    pub web_dist: Option<PathBuf>,
    /// Shipped models folder, served at /models/.
    pub models: PathBuf,
    pub token: Option<String>,
    /// How often a WebSocket looks for new events in the store.
    pub poll: Duration,
    pub heartbeat: Duration,
    /// Where job run folders go.
    pub runs: PathBuf,
    /// The `tinycats` binary that runs jobs (None: the server queues nothing).
    pub worker: Option<PathBuf>,
    /// Jobs running at once.
    pub max_jobs: usize,
    /// System monitor sampling interval.
    pub monitor_every: Duration,
}

impl AppConfig {
    /// Defaults for a store and models folder: no web app, no token, no worker.
    pub fn new(store: PathBuf, models: PathBuf) -> AppConfig {
        AppConfig {
            store,
            web_dist: None,
            models,
            token: None,
            poll: Duration::from_millis(5),
            heartbeat: Duration::from_secs(15),
            runs: PathBuf::from("runs/jobs"),
            worker: None,
            max_jobs: 1,
            monitor_every: Duration::from_secs(2),
        }
    }
}

/// What the handlers share: the configuration, the live event hub, the job runner and the
/// system monitor.
pub struct App {
    pub cfg: AppConfig,
    pub hub: Arc<hub::Hub>,
    pub jobs: Arc<jobs::JobRunner>,
    pub monitor: Arc<monitor::Monitor>,
}

type St = State<Arc<App>>;

struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({"error": self.1}))).into_response()
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        let msg = format!("{e:#}");
        let code = if msg.contains("no run") || msg.contains("no job") { StatusCode::NOT_FOUND } else { StatusCode::INTERNAL_SERVER_ERROR };
        ApiError(code, msg)
    }
}

type ApiResult = Result<Json<serde_json::Value>, ApiError>;

/// Runs `f` on a fresh store connection off the async threads (SQLite is blocking).
async fn with_store<T: Send + 'static>(cfg: &App, f: impl FnOnce(&Store) -> anyhow::Result<T> + Send + 'static) -> Result<T, ApiError> {
    let path = cfg.cfg.store.clone();
    tokio::task::spawn_blocking(move || {
        if !path.is_file() {
            anyhow::bail!("no run store at {} yet (no run recorded)", path.display());
        }
        f(&Store::open(&path)?)
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(ApiError::from)
}

#[derive(Deserialize)]
struct ListQuery {
    filter: Option<String>,
    limit: Option<usize>,
    offset: Option<usize>,
    sort: Option<String>,
    order: Option<String>,
}

async fn list_runs(State(c): St, Query(q): Query<ListQuery>) -> ApiResult {
    let limit = q.limit.unwrap_or(50).clamp(1, 1000);
    let offset = q.offset.unwrap_or(0);
    let desc = match q.order.as_deref() {
        None | Some("desc") => true,
        Some("asc") => false,
        Some(o) => return Err(ApiError(StatusCode::BAD_REQUEST, format!("order = `{o}`: use asc or desc"))),
    };
    if let Some(sort) = q.sort.as_deref() {
        if !Store::RUN_SORT_KEYS.contains(&sort) {
            return Err(ApiError(StatusCode::BAD_REQUEST, format!("sort = `{sort}`: use one of {}", Store::RUN_SORT_KEYS.join(", "))));
        }
    }
    let (runs, total) = match with_store(&c, move |s| s.list_runs_sorted(q.filter.as_deref(), q.sort.as_deref(), desc, limit, offset)).await {
        Err(ApiError(_, e)) if e.contains("no run store") => (vec![], 0),
        r => r?,
    };
    Ok(Json(serde_json::json!({"runs": runs, "limit": limit, "offset": offset, "total": total})))
}

async fn experiments(State(c): St) -> ApiResult {
    let ex = match with_store(&c, |s| s.experiments()).await {
        Err(ApiError(_, e)) if e.contains("no run store") => vec![],
        r => r?,
    };
    Ok(Json(serde_json::json!({"experiments": ex.into_iter().map(|(name, runs)| serde_json::json!({"name": name, "runs": runs})).collect::<Vec<_>>()})))
}

async fn run_detail(State(c): St, UrlPath(id): UrlPath<String>) -> ApiResult {
    with_store(&c, move |s| {
        let r = s.find_run(&id)?;
        Ok(Json(serde_json::json!({"run": r, "params": s.params(r.id)?, "metrics": s.metric_keys(r.id)?, "last_metrics": s.last_metrics(r.id)?})))
    })
    .await
}

#[derive(Deserialize)]
struct HistoryQuery {
    key: String,
    max_points: Option<usize>,
}

async fn history(State(c): St, UrlPath(id): UrlPath<String>, Query(q): Query<HistoryQuery>) -> ApiResult {
    let max = q.max_points.unwrap_or(2000).clamp(2, 100_000);
    with_store(&c, move |s| {
        let r = s.find_run(&id)?;
        Ok(Json(serde_json::to_value(s.history(r.id, &q.key, max)?)?))
    })
    .await
}

#[derive(Deserialize)]
struct PredQuery {
    epoch: Option<i64>,
    sample: Option<String>,
}

async fn predictions(State(c): St, UrlPath(id): UrlPath<String>, Query(q): Query<PredQuery>) -> ApiResult {
    with_store(&c, move |s| {
        let r = s.find_run(&id)?;
        let mut p = s.predictions(r.id, q.epoch, q.sample.as_deref())?;
        // Thumbnails are stored relative to the run folder; clients get their URL.
        for row in p.iter_mut() {
            if let Some(img) = row.image.take() {
                row.image = Some(format!("/api/runs/{}/artifacts/{img}", r.id));
            }
        }
        Ok(Json(serde_json::json!({"predictions": p})))
    })
    .await
}

#[derive(Deserialize)]
struct EventsQuery {
    channel: String,
    since: Option<i64>,
}

async fn events(State(c): St, Query(q): Query<EventsQuery>) -> ApiResult {
    let since = q.since.unwrap_or(0);
    let ev = with_store(&c, move |s| s.events_since(&q.channel, since)).await?;
    Ok(Json(serde_json::json!({"events": ev.into_iter().map(|(seq, body)| serde_json::json!({"seq": seq, "body": body})).collect::<Vec<_>>()})))
}

#[derive(Deserialize)]
struct ValidateBody {
    /// classifier | generator
    kind: String,
    /// TOML text of the config.
    config: String,
    /// `key=value` overrides, as the CLI's `--set`.
    #[serde(default)]
    set: Vec<String>,
    /// A job's name (jobs only).
    #[serde(default)]
    name: String,
}

/// Validates a config with the training engine's own loader; errors name the key.
fn validate(kind: &str, text: &str, set: &[String]) -> Result<serde_json::Value, ApiError> {
    let r = match kind {
        "classifier" => tinycats_train::config::ClassifierConfig::load(text, "config", set).map(|c| serde_json::to_value(c).unwrap_or_default()),
        "generator" => tinycats_train::generator::GeneratorConfig::load(text, "config", set).map(|c| serde_json::to_value(c).unwrap_or_default()),
        k => return Err(ApiError(StatusCode::BAD_REQUEST, format!("field `kind` = \"{k}\": use classifier or generator"))),
    };
    r.map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, format!("{e:#}")))
}

/// Validates a training config; errors name the key (what the new-job form shows inline).
async fn validate_config(Json(b): Json<ValidateBody>) -> Response {
    match validate(&b.kind, &b.config, &b.set) {
        Ok(c) => Json(serde_json::json!({"valid": true, "config": c})).into_response(),
        Err(ApiError(StatusCode::UNPROCESSABLE_ENTITY, e)) => (StatusCode::UNPROCESSABLE_ENTITY, Json(serde_json::json!({"valid": false, "error": e}))).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct KindQuery {
    kind: String,
}

/// The default config of a kind as TOML (every key shown): the new-job form's starting text.
async fn default_config(Query(q): Query<KindQuery>) -> ApiResult {
    let text = match q.kind.as_str() {
        "classifier" => tinycats_train::config::ClassifierConfig::load("", "defaults", &[]).and_then(|c| Ok(toml::to_string(&c)?)),
        "generator" => tinycats_train::generator::GeneratorConfig::load("", "defaults", &[]).and_then(|c| Ok(toml::to_string(&c)?)),
        k => return Err(ApiError(StatusCode::BAD_REQUEST, format!("kind = `{k}`: use classifier or generator"))),
    }?;
    Ok(Json(serde_json::json!({"kind": q.kind, "config": text})))
}

/// POST a config → validated (422 naming the key) → queued (201).
async fn submit_job(State(c): St, Json(b): Json<ValidateBody>) -> Response {
    if let Err(e) = validate(&b.kind, &b.config, &b.set) {
        return match e {
            ApiError(StatusCode::UNPROCESSABLE_ENTITY, m) => (StatusCode::UNPROCESSABLE_ENTITY, Json(serde_json::json!({"error": m}))).into_response(),
            e => e.into_response(),
        };
    }
    if b.name.len() > 200 {
        return ApiError(StatusCode::BAD_REQUEST, "field `name`: at most 200 characters".into()).into_response();
    }
    match c.jobs.submit(b.kind, b.name, b.config, b.set).await {
        Ok(j) => (StatusCode::CREATED, Json(serde_json::json!({"job": j}))).into_response(),
        Err(e) if e.to_string().contains("runs no jobs") => ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn list_jobs(State(c): St) -> ApiResult {
    let jobs = match with_store(&c, |s| s.jobs(500)).await {
        Err(ApiError(_, e)) if e.contains("no run store") => vec![],
        r => r?,
    };
    Ok(Json(serde_json::json!({"jobs": jobs})))
}

async fn job_detail(State(c): St, UrlPath(id): UrlPath<i64>) -> ApiResult {
    let j = with_store(&c, move |s| s.job(id)).await?;
    Ok(Json(serde_json::json!({"job": j})))
}

async fn cancel_job(State(c): St, UrlPath(id): UrlPath<i64>) -> ApiResult {
    let j = c.jobs.cancel(id).await?;
    Ok(Json(serde_json::json!({"job": j})))
}

async fn system(State(c): St) -> Response {
    Json(c.monitor.latest().unwrap_or_else(|| c.monitor.sample(&c.jobs.running()))).into_response()
}

async fn list_artifacts(State(c): St, UrlPath(id): UrlPath<String>) -> ApiResult {
    with_store(&c, move |s| {
        let r = s.find_run(&id)?;
        Ok(Json(serde_json::json!({"artifacts": s.artifacts(r.id)?, "dir": r.dir})))
    })
    .await
}

/// A relative path of plain components only (no `..`, no root, no drive).
fn safe_relative(p: &str) -> Option<PathBuf> {
    let path = Path::new(p);
    let ok = !p.is_empty() && path.components().all(|c| matches!(c, std::path::Component::Normal(_)));
    ok.then(|| path.to_path_buf())
}

/// A file inside a run's folder (checkpoints, sample grids, thumbnails). Paths are checked
/// component by component and again after resolving links, so nothing outside the folder is
/// reachable.
async fn artifact_file(State(c): St, UrlPath((id, rel)): UrlPath<(String, String)>) -> Response {
    let Some(rel) = safe_relative(&rel) else {
        return ApiError(StatusCode::BAD_REQUEST, format!("artifact path `{rel}` must be relative, without `..`")).into_response();
    };
    let r = with_store(&c, move |s| {
        let run = s.find_run(&id)?;
        let dir = PathBuf::from(run.dir.clone().ok_or_else(|| anyhow::anyhow!("run {} has no folder", run.id))?);
        let (base, file) = (dir.canonicalize()?, dir.join(&rel).canonicalize().map_err(|_| anyhow::anyhow!("no run artifact `{}`", rel.display()))?);
        if !file.starts_with(&base) || !file.is_file() {
            anyhow::bail!("no run artifact `{}`", rel.display());
        }
        Ok((std::fs::read(&file)?, file))
    })
    .await;
    match r {
        Ok((bytes, file)) => {
            let ct = match file.extension().and_then(|e| e.to_str()) {
                Some("png") => "image/png",
                Some("json") => "application/json",
                Some("txt" | "log" | "toml" | "md" | "jsonl") => "text/plain; charset=utf-8",
                _ => "application/octet-stream",
            };
            ([(header::CONTENT_TYPE, ct)], bytes).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// Shipped models: each folder under models/ with its manifest and files.
async fn models(State(c): St) -> ApiResult {
    let dir = c.cfg.models.clone();
    let list = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        let mut entries: Vec<_> = std::fs::read_dir(&dir).map(|r| r.flatten().collect()).unwrap_or_default();
        entries.sort_by_key(|e| e.file_name());
        for e in entries.into_iter().filter(|e| e.path().is_dir()) {
            let manifest: serde_json::Value = std::fs::read(e.path().join("model.json")).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or(serde_json::Value::Null);
            let mut files: Vec<_> = std::fs::read_dir(e.path()).map(|r| r.flatten().filter(|f| f.path().is_file()).map(|f| (f.file_name().to_string_lossy().to_string(), f.metadata().map(|m| m.len()).unwrap_or(0))).collect()).unwrap_or_default();
            files.sort();
            let name = e.file_name().to_string_lossy().to_string();
            out.push(serde_json::json!({"name": name, "manifest": manifest, "files": files.into_iter().map(|(f, size)| serde_json::json!({"path": f, "url": format!("/models/{name}/{f}"), "size": size})).collect::<Vec<_>>()}));
        }
        out
    })
    .await
    .unwrap_or_default();
    Ok(Json(serde_json::json!({"models": list})))
}

#[derive(Deserialize)]
struct WsQuery {
    channel: String,
    since: Option<i64>,
}

async fn ws(State(c): St, Query(q): Query<WsQuery>, up: WebSocketUpgrade) -> Response {
    up.on_upgrade(move |socket| follow(socket, c, q.channel, q.since.unwrap_or(0)))
}

/// Sends with a deadline; a client that cannot take a message in time is too slow.
async fn send(socket: &mut WebSocket, text: String) -> Result<(), bool> {
    match tokio::time::timeout(Duration::from_secs(5), socket.send(Message::Text(text.into()))).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(false),
        Err(_) => Err(true),
    }
}

/// Replays the channel's events after `since` (from the store, or the monitor's ring for
/// `system`), then follows live ones from the hub. Every message carries its per-channel
/// sequence number, so a client that reconnects with `since=<last seq>` misses nothing. A
/// client that falls behind is dropped with a resync message; training never waits for it,
/// since events go to the store first.
async fn follow(mut socket: WebSocket, c: Arc<App>, channel: String, mut since: i64) {
    let mut live = if channel == "system" { c.monitor.tx.subscribe() } else { c.hub.subscribe(&channel).await };
    let replay: Vec<(i64, String)> = if channel == "system" {
        c.monitor.since(since)
    } else {
        let ch = channel.clone();
        match with_store(&c, move |s| s.events_since(&ch, since)).await {
            Ok(b) => b.into_iter().map(|(seq, body)| (seq, hub::event_message(&channel, seq, &body))).collect(),
            Err(ApiError(_, e)) if e.contains("no run store") => vec![],
            Err(ApiError(_, e)) => {
                let _ = send(&mut socket, serde_json::json!({"type": "error", "error": e}).to_string()).await;
                return;
            }
        }
    };
    for (seq, msg) in replay {
        if seq <= since {
            continue;
        }
        if send(&mut socket, msg).await.is_err() {
            let _ = send(&mut socket, serde_json::json!({"type": "resync", "since": since}).to_string()).await;
            return;
        }
        since = seq;
    }
    let mut beat = tokio::time::interval(c.cfg.heartbeat);
    beat.tick().await;
    loop {
        tokio::select! {
            m = live.recv() => match m {
                Ok(w) => {
                    if w.0 <= since {
                        continue;
                    }
                    match send(&mut socket, w.1.clone()).await {
                        Ok(()) => since = w.0,
                        Err(false) => return,
                        Err(true) => {
                            let _ = send(&mut socket, serde_json::json!({"type": "resync", "since": since}).to_string()).await;
                            return;
                        }
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    let _ = send(&mut socket, serde_json::json!({"type": "resync", "since": since}).to_string()).await;
                    return;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
            _ = beat.tick() => {
                if send(&mut socket, serde_json::json!({"type": "heartbeat", "seq": since}).to_string()).await.is_err() {
                    return;
                }
            }
            m = socket.recv() => match m {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                _ => {}
            },
        }
    }
}

/// With a token, every request needs it: as `Authorization: Bearer`, as `?token=` (browsers'
/// WebSockets and the first page load), or as the HttpOnly same-site cookie set after either,
/// so the web app's scripts, models and images load without putting the token in every URL.
async fn auth(State(c): St, req: Request, next: Next) -> Response {
    let Some(token) = c.cfg.token.clone() else {
        return next.run(req).await;
    };
    let bearer = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).map(str::to_string);
    let query = req.uri().query().and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("token=")).map(str::to_string));
    let cookie = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| kv.trim().strip_prefix("tinycats_token=").map(str::to_string));
    let explicit = bearer.as_deref() == Some(&token) || query.as_deref() == Some(&token);
    if !explicit && cookie.as_deref() != Some(&token) {
        return ApiError(StatusCode::UNAUTHORIZED, "missing or wrong bearer token".into()).into_response();
    }
    let mut r = next.run(req).await;
    if explicit && cookie.as_deref() != Some(&token) {
        if let Ok(v) = HeaderValue::from_str(&format!("tinycats_token={token}; HttpOnly; SameSite=Strict; Path=/")) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    r
}

/// Cross-origin isolation for the web app (WASM threads in onnxruntime-web).
async fn isolation(req: Request, next: Next) -> Response {
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    h.insert("cross-origin-embedder-policy", HeaderValue::from_static("require-corp"));
    r
}

pub const OPENAPI: &str = include_str!("openapi.json");

pub fn router(cfg: AppConfig) -> Router {
    app_router(app(cfg))
}

/// The shared state for a configuration (no background tasks started).
pub fn app(cfg: AppConfig) -> Arc<App> {
    let hub = hub::Hub::new(cfg.store.clone(), cfg.poll);
    let jobs = jobs::JobRunner::new(cfg.store.clone(), cfg.runs.clone(), cfg.worker.clone(), cfg.max_jobs);
    let disk = if cfg.runs.exists() { cfg.runs.clone() } else { PathBuf::from(".") };
    Arc::new(App { monitor: monitor::Monitor::new(disk), cfg, hub, jobs })
}

/// Starts the job worker and the system monitor's sampler (needs a tokio runtime).
pub fn start_background(a: &Arc<App>) {
    a.jobs.start();
    let a = a.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(a.cfg.monitor_every);
        loop {
            tick.tick().await;
            let m = a.clone();
            if let Ok(s) = tokio::task::spawn_blocking(move || m.monitor.sample(&m.jobs.running())).await {
                a.monitor.publish(&s);
            }
        }
    });
}

pub fn app_router(c: Arc<App>) -> Router {
    let mut app = Router::new()
        .route("/api/health", get(|| async { Json(serde_json::json!({"ok": true, "version": env!("CARGO_PKG_VERSION")})) }))
        .route("/api/openapi.json", get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }))
        .route("/api/experiments", get(experiments))
        .route("/api/runs", get(list_runs))
        .route("/api/runs/{id}", get(run_detail))
        .route("/api/runs/{id}/history", get(history))
        .route("/api/runs/{id}/predictions", get(predictions))
        .route("/api/runs/{id}/artifacts", get(list_artifacts))
        .route("/api/runs/{id}/artifacts/{*path}", get(artifact_file))
        .route("/api/models", get(models))
        .route("/api/events", get(events))
        .route("/api/configs/validate", post(validate_config))
        .route("/api/configs/default", get(default_config))
        .route("/api/jobs", get(list_jobs).post(submit_job))
        .route("/api/jobs/{id}", get(job_detail))
        .route("/api/jobs/{id}/cancel", post(cancel_job))
        .route("/api/system", get(system))
        .route("/api/ws", get(ws))
        // ServeDir resolves paths under the folder only (`..` is refused), so no traversal.
        .nest_service("/models", tower_http::services::ServeDir::new(&c.cfg.models));
    if let Some(dist) = &c.cfg.web_dist {
        app = app.fallback_service(tower_http::services::ServeDir::new(dist));
    }
    app.layer(DefaultBodyLimit::max(BODY_LIMIT)).layer(middleware::from_fn_with_state(c.clone(), auth)).layer(middleware::from_fn(isolation)).with_state(c)
}

/// Serves on an open listener with the job worker and the monitor running, until the process ends.
pub async fn serve_on(listener: tokio::net::TcpListener, cfg: AppConfig) -> anyhow::Result<()> {
    let a = app(cfg);
    start_background(&a);
    axum::serve(listener, app_router(a)).await?;
    Ok(())
}

/// Serves until the process ends.
pub async fn serve(addr: std::net::SocketAddr, cfg: AppConfig) -> anyhow::Result<()> {
    if !addr.ip().is_loopback() && cfg.token.is_none() {
        anyhow::bail!("--bind {addr}: binding beyond 127.0.0.1 requires --token (every request must then carry it)");
    }
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    serve_on(listener, cfg).await
}
