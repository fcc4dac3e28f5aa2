//! The studio server (`tinycats serve`): a REST + WebSocket API over the run store, the shipped
//! models, and the web app. Read-side first: runs (paged, filterable), run detail, metric history
//! (downsampled on the server, flagged), predictions by epoch or by sample, event replay, and a
//! WebSocket per channel that replays from `since=SEQ` and then follows the store live.
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
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tinycats_track::Store;

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
}

struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({"error": self.1}))).into_response()
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        let msg = format!("{e:#}");
        let code = if msg.contains("no run") { StatusCode::NOT_FOUND } else { StatusCode::INTERNAL_SERVER_ERROR };
        ApiError(code, msg)
    }
}

type ApiResult = Result<Json<serde_json::Value>, ApiError>;

/// Runs `f` on a fresh store connection off the async threads (SQLite is blocking).
async fn with_store<T: Send + 'static>(cfg: &AppConfig, f: impl FnOnce(&Store) -> anyhow::Result<T> + Send + 'static) -> Result<T, ApiError> {
    let path = cfg.store.clone();
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
}

async fn list_runs(State(c): State<Arc<AppConfig>>, Query(q): Query<ListQuery>) -> ApiResult {
    let limit = q.limit.unwrap_or(50).clamp(1, 1000);
    let offset = q.offset.unwrap_or(0);
    let runs = match with_store(&c, move |s| s.list_runs(q.filter.as_deref(), limit, offset)).await {
        Err(ApiError(_, e)) if e.contains("no run store") => vec![],
        r => r?,
    };
    Ok(Json(serde_json::json!({"runs": runs, "limit": limit, "offset": offset})))
}

async fn run_detail(State(c): State<Arc<AppConfig>>, UrlPath(id): UrlPath<String>) -> ApiResult {
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

async fn history(State(c): State<Arc<AppConfig>>, UrlPath(id): UrlPath<String>, Query(q): Query<HistoryQuery>) -> ApiResult {
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

async fn predictions(State(c): State<Arc<AppConfig>>, UrlPath(id): UrlPath<String>, Query(q): Query<PredQuery>) -> ApiResult {
    with_store(&c, move |s| {
        let r = s.find_run(&id)?;
        Ok(Json(serde_json::json!({"predictions": s.predictions(r.id, q.epoch, q.sample.as_deref())?})))
    })
    .await
}

#[derive(Deserialize)]
struct EventsQuery {
    channel: String,
    since: Option<i64>,
}

async fn events(State(c): State<Arc<AppConfig>>, Query(q): Query<EventsQuery>) -> ApiResult {
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
}

/// Validates a training config; errors name the key (what the new-job form shows inline).
async fn validate_config(Json(b): Json<ValidateBody>) -> Response {
    let r = match b.kind.as_str() {
        "classifier" => tinycats_train::config::ClassifierConfig::load(&b.config, "config", &[]).map(|c| serde_json::to_value(c).unwrap_or_default()),
        "generator" => tinycats_train::generator::GeneratorConfig::load(&b.config, "config", &[]).map(|c| serde_json::to_value(c).unwrap_or_default()),
        k => return ApiError(StatusCode::BAD_REQUEST, format!("field `kind` = \"{k}\": use classifier or generator")).into_response(),
    };
    match r {
        Ok(c) => Json(serde_json::json!({"valid": true, "config": c})).into_response(),
        Err(e) => (StatusCode::UNPROCESSABLE_ENTITY, Json(serde_json::json!({"valid": false, "error": format!("{e:#}")}))).into_response(),
    }
}

#[derive(Deserialize)]
struct WsQuery {
    channel: String,
    since: Option<i64>,
}

async fn ws(State(c): State<Arc<AppConfig>>, Query(q): Query<WsQuery>, up: WebSocketUpgrade) -> Response {
    up.on_upgrade(move |socket| follow(socket, c, q.channel, q.since.unwrap_or(0)))
}

/// Replays the channel's events after `since`, then follows the store. Every message carries
/// its per-channel sequence number, so a client that reconnects with `since=<last seq>` misses
/// nothing. A client that cannot keep up is dropped (the send times out) with a resync message;
/// training never waits for it, since events go to the store first.
async fn follow(mut socket: WebSocket, c: Arc<AppConfig>, channel: String, mut since: i64) {
    let mut beat = tokio::time::interval(c.heartbeat);
    beat.tick().await;
    loop {
        let ch = channel.clone();
        let batch = match with_store(&c, move |s| s.events_since(&ch, since)).await {
            Ok(b) => b,
            Err(ApiError(_, e)) if e.contains("no run store") => vec![],
            Err(ApiError(_, e)) => {
                let _ = socket.send(Message::Text(serde_json::json!({"type": "error", "error": e}).to_string().into())).await;
                return;
            }
        };
        for (seq, body) in batch {
            let msg = serde_json::json!({"type": "event", "channel": channel, "seq": seq, "body": body}).to_string();
            match tokio::time::timeout(Duration::from_secs(5), socket.send(Message::Text(msg.into()))).await {
                Ok(Ok(())) => since = seq,
                Ok(Err(_)) => return,
                Err(_) => {
                    let _ = socket.send(Message::Text(serde_json::json!({"type": "resync", "since": since}).to_string().into())).await;
                    return;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(c.poll) => {}
            _ = beat.tick() => {
                if socket.send(Message::Text(serde_json::json!({"type": "heartbeat", "seq": since}).to_string().into())).await.is_err() {
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

async fn auth(State(c): State<Arc<AppConfig>>, req: Request, next: Next) -> Response {
    if let Some(token) = &c.token {
        let bearer = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).map(str::to_string);
        let query = req.uri().query().and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("token=")).map(str::to_string));
        if bearer.as_deref() != Some(token) && query.as_deref() != Some(token) {
            return ApiError(StatusCode::UNAUTHORIZED, "missing or wrong bearer token".into()).into_response();
        }
    }
    next.run(req).await
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
    let c = Arc::new(cfg);
    let mut app = Router::new()
        .route("/api/health", get(|| async { Json(serde_json::json!({"ok": true, "version": env!("CARGO_PKG_VERSION")})) }))
        .route("/api/openapi.json", get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }))
        .route("/api/runs", get(list_runs))
        .route("/api/runs/{id}", get(run_detail))
        .route("/api/runs/{id}/history", get(history))
        .route("/api/runs/{id}/predictions", get(predictions))
        .route("/api/events", get(events))
        .route("/api/configs/validate", post(validate_config))
        .route("/api/ws", get(ws))
        // ServeDir resolves paths under the folder only (`..` is refused), so no traversal.
        .nest_service("/models", tower_http::services::ServeDir::new(&c.models));
    if let Some(dist) = &c.web_dist {
        app = app.fallback_service(tower_http::services::ServeDir::new(dist));
    }
    app.layer(DefaultBodyLimit::max(BODY_LIMIT)).layer(middleware::from_fn_with_state(c.clone(), auth)).layer(middleware::from_fn(isolation)).with_state(c)
}

/// Serves until the process ends.
pub async fn serve(addr: std::net::SocketAddr, cfg: AppConfig) -> anyhow::Result<()> {
    if !addr.ip().is_loopback() && cfg.token.is_none() {
        anyhow::bail!("--bind {addr}: binding beyond 127.0.0.1 requires --token (every request must then carry it)");
    }
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    axum::serve(listener, router(cfg)).await?;
    Ok(())
}
