//! The studio server over a real run store on loopback: REST shapes, downsampled history,
//! WebSocket replay from `since` then live events with no gap, token, traversal, body limit.

use futures_util::StreamExt;
use std::time::Duration;
use tinycats_server::{router, AppConfig};
use tinycats_track::Store;

async fn start(token: Option<&str>) -> (String, tempfile::TempDir, std::path::PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("store.db");
    let models = t.path().join("models");
    std::fs::create_dir_all(models.join("classifier")).unwrap();
    std::fs::write(models.join("classifier/model.json"), b"{\"arch\":\"x\"}").unwrap();
    std::fs::write(t.path().join("secret.txt"), b"secret").unwrap();
    let mut cfg = AppConfig::new(store.clone(), models);
    cfg.token = token.map(String::from);
    cfg.heartbeat = Duration::from_secs(30);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router(cfg)).await.unwrap() });
    (format!("127.0.0.1:{}", addr.port()), t, store)
}

fn get(url: &str) -> (u16, serde_json::Value) {
    match ureq::get(url).call() {
        Ok(r) => (r.status(), serde_json::from_str(&r.into_string().unwrap()).unwrap_or(serde_json::Value::Null)),
        Err(ureq::Error::Status(c, r)) => (c, serde_json::from_str(&r.into_string().unwrap()).unwrap_or(serde_json::Value::Null)),
        Err(e) => panic!("{url}: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_and_websocket_replay() {
    let (addr, _t, store) = start(None).await;
    let mut s = Store::open(&store).unwrap();
    let id = s.create_run("default", "gen-a", "generator", &serde_json::json!({"train": {"steps": 10}}), Some("abc"), None, None).unwrap();
    let pts: Vec<(&str, i64, f64)> = (0..5000).map(|i| ("train/loss", i, 1.0 / (1.0 + i as f64))).collect();
    s.log_metrics(id, &pts).unwrap();
    for i in 0..3 {
        s.append_event(id, &format!("run/{id}"), &serde_json::json!({"i": i})).unwrap();
    }
    let base = format!("http://{addr}");
    let (code, runs) = tokio::task::spawn_blocking({ let b = base.clone(); move || get(&format!("{b}/api/runs?filter=gen")) }).await.unwrap();
    assert_eq!(code, 200);
    assert_eq!(runs["runs"][0]["name"], "gen-a");
    let (code, h) = tokio::task::spawn_blocking({ let b = base.clone(); move || get(&format!("{b}/api/runs/gen-a/history?key=train/loss&max_points=100")) }).await.unwrap();
    assert_eq!(code, 200);
    assert_eq!(h["downsampled"], true);
    assert_eq!(h["total_points"], 5000);
    assert!(h["points"].as_array().unwrap().len() <= 100);
    let (code, e) = tokio::task::spawn_blocking({ let b = base.clone(); move || get(&format!("{b}/api/runs/nope")) }).await.unwrap();
    assert_eq!(code, 404, "{e}");
    let (code, api) = tokio::task::spawn_blocking({ let b = base.clone(); move || get(&format!("{b}/api/openapi.json")) }).await.unwrap();
    assert_eq!(code, 200);
    assert!(api["paths"]["/api/ws"].is_object());

    // Reconnect with since=1: events 2 and 3 replayed, then a new one arrives live.
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/api/ws?channel=run/{id}&since=1")).await.unwrap();
    let mut seqs = Vec::new();
    while seqs.len() < 2 {
        let m = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap().unwrap().unwrap();
        let v: serde_json::Value = serde_json::from_str(m.to_text().unwrap()).unwrap();
        if v["type"] == "event" {
            seqs.push(v["seq"].as_i64().unwrap());
        }
    }
    assert_eq!(seqs, vec![2, 3]);
    s.append_event(id, &format!("run/{id}"), &serde_json::json!({"i": 3})).unwrap();
    let m = loop {
        let m = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap().unwrap().unwrap();
        let v: serde_json::Value = serde_json::from_str(m.to_text().unwrap()).unwrap();
        if v["type"] == "event" {
            break v;
        }
    };
    assert_eq!(m["seq"], 4);
    assert_eq!(m["body"]["i"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_traversal_and_body_limit() {
    let (addr, _t, _) = start(Some("s3cret")).await;
    let base = format!("http://{addr}");
    let b = base.clone();
    let (code, _) = tokio::task::spawn_blocking(move || get(&format!("{b}/api/health"))).await.unwrap();
    assert_eq!(code, 401, "no token → refused");
    let b = base.clone();
    let r = tokio::task::spawn_blocking(move || {
        let ok = ureq::get(&format!("{b}/api/health")).set("Authorization", "Bearer s3cret").call().unwrap().status();
        // `?token=` on the page load sets an HttpOnly cookie; the app's later requests carry it.
        let first = ureq::get(&format!("{b}/api/health?token=s3cret")).call().unwrap();
        let cookie = first.header("set-cookie").expect("token cookie set").to_string();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
        let pair = cookie.split(';').next().unwrap().to_string();
        assert_eq!(ureq::get(&format!("{b}/models/classifier/model.json")).set("Cookie", &pair).call().unwrap().status(), 200);
        match ureq::get(&format!("{b}/api/health")).set("Cookie", "tinycats_token=wrong").call() {
            Err(ureq::Error::Status(401, _)) => {}
            other => panic!("a wrong cookie must be refused: {:?}", other.map(|r| r.status())),
        }
        let model = ureq::get(&format!("{b}/models/classifier/model.json")).set("Authorization", "Bearer s3cret").call().unwrap().into_string().unwrap();
        let trav = match ureq::get(&format!("{b}/models/../secret.txt")).set("Authorization", "Bearer s3cret").call() {
            Ok(r) => (r.status(), r.into_string().unwrap()),
            Err(ureq::Error::Status(c, r)) => (c, r.into_string().unwrap_or_default()),
            Err(e) => panic!("{e}"),
        };
        let enc = match ureq::get(&format!("{b}/models/%2e%2e/secret.txt")).set("Authorization", "Bearer s3cret").call() {
            Ok(r) => (r.status(), r.into_string().unwrap()),
            Err(ureq::Error::Status(c, r)) => (c, r.into_string().unwrap_or_default()),
            Err(e) => panic!("{e}"),
        };
        let big = "x".repeat(tinycats_server::BODY_LIMIT + 10);
        let body = serde_json::json!({"kind": "classifier", "config": big}).to_string();
        let too_big = match ureq::post(&format!("{b}/api/configs/validate")).set("Authorization", "Bearer s3cret").set("Content-Type", "application/json").send_string(&body) {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(c, _)) => c,
            Err(e) => panic!("{e}"),
        };
        let bad = match ureq::post(&format!("{b}/api/configs/validate")).set("Authorization", "Bearer s3cret").set("Content-Type", "application/json").send_string(&serde_json::json!({"kind": "generator", "config": "[objective]\ntarget = \"noise\"\n"}).to_string()) {
            Ok(r) => (r.status(), serde_json::from_str::<serde_json::Value>(&r.into_string().unwrap()).unwrap()),
            Err(ureq::Error::Status(c, r)) => (c, serde_json::from_str::<serde_json::Value>(&r.into_string().unwrap()).unwrap()),
            Err(e) => panic!("{e}"),
        };
        (ok, model, trav, enc, too_big, bad)
    })
    .await
    .unwrap();
    assert_eq!(r.0, 200);
    assert!(r.1.contains("arch"));
    assert!(!r.2 .1.contains("secret") && r.2 .0 != 200, "path traversal served {:?}", r.2);
    assert!(!r.3 .1.contains("secret") && r.3 .0 != 200, "encoded traversal served {:?}", r.3);
    assert_eq!(r.4, 413, "oversized body must be refused");
    assert_eq!(r.5 .0, 422);
    assert!(r.5 .1["error"].as_str().unwrap().contains("objective.target"), "{}", r.5 .1);
    let e = tinycats_server::serve("0.0.0.0:0".parse().unwrap(), AppConfig::new("x.db".into(), ".".into()))
    .await
    .unwrap_err();
    assert!(e.to_string().contains("--token"), "{e}");
}
