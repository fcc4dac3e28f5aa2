//! `tinycats bench ws`: live-event delivery to many WebSocket subscribers on loopback. A real
//! server (same settings as `tinycats serve`) over a temp store; N clients follow one run's
//! channel; a writer appends events to the store (as a training process does) at a fixed rate;
//! each client measures append→receive latency from the timestamp inside the event.

use anyhow::{bail, Context, Result};
use clap::Args;
use futures_util::StreamExt;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Args)]
pub struct WsBench {
    /// WebSocket clients following the run channel.
    #[arg(long, default_value_t = 1000)]
    subscribers: usize,
    /// Events appended (one every --interval-ms).
    #[arg(long, default_value_t = 100)]
    events: usize,
    #[arg(long, default_value_t = 50)]
    interval_ms: u64,
    #[arg(long)]
    json: bool,
}

/// The goal the p99 is compared with (issue: < 50 ms).
const GOAL_MS: f64 = 50.0;

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((p / 100.0) * (sorted.len() - 1) as f64).round() as usize]
}

pub fn run(a: WsBench) -> Result<ExitCode> {
    if a.subscribers == 0 || a.events == 0 {
        bail!("--subscribers and --events must be ≥ 1");
    }
    let t = tempfile::tempdir()?;
    let store_path = t.path().join("store.db");
    let mut store = tinycats_track::Store::open(&store_path)?;
    let run = store.create_run("bench", "ws", "generator", &serde_json::json!({}), None, None, None)?;
    let channel = format!("run/{run}");
    let cfg = tinycats_server::AppConfig::new(store_path.clone(), t.path().join("models"));
    let poll = cfg.poll;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let (lat, received, connected) = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(tinycats_server::serve_on(listener, cfg));
        let lat = Arc::new(Mutex::new(Vec::with_capacity(a.subscribers * a.events)));
        let ready = Arc::new(tokio::sync::Semaphore::new(0));
        let mut clients = Vec::new();
        for _ in 0..a.subscribers {
            let (url, lat, ready, expect) = (format!("ws://{addr}/api/ws?channel={channel}&since=0"), lat.clone(), ready.clone(), a.events);
            clients.push(tokio::spawn(async move {
                let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.with_context(|| format!("connect {url}"))?;
                let mut got = 0usize;
                let mut warm = false;
                while let Some(m) = ws.next().await {
                    let now = tinycats_track::now();
                    let text = match m? {
                        tokio_tungstenite::tungstenite::Message::Text(t) => t,
                        _ => continue,
                    };
                    let v: serde_json::Value = serde_json::from_str(&text)?;
                    if v["type"] == "resync" {
                        bail!("dropped as a slow client (resync)");
                    }
                    if v["type"] != "event" {
                        continue;
                    }
                    if v["body"]["warmup"] == true {
                        if !warm {
                            warm = true;
                            ready.add_permits(1);
                        }
                        continue;
                    }
                    if let Some(t) = v["body"]["t"].as_f64() {
                        lat.lock().map_err(|_| anyhow::anyhow!("lock"))?.push((now - t) * 1000.0);
                        got += 1;
                        if got == expect {
                            break;
                        }
                    }
                }
                Ok::<usize, anyhow::Error>(got)
            }));
        }
        // Warm-up events until every client is subscribed and has seen one.
        let n = a.subscribers as u32;
        let w = store_path.clone();
        let ch = channel.clone();
        let warm = tokio::spawn(async move {
            let s = tinycats_track::Store::open(&w)?;
            for _ in 0..600 {
                s.append_event(run, &ch, &serde_json::json!({"warmup": true}))?;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok::<(), anyhow::Error>(())
        });
        tokio::time::timeout(Duration::from_secs(60), ready.acquire_many(n)).await.context("not every subscriber connected within 60 s")??.forget();
        warm.abort();
        tokio::time::sleep(Duration::from_millis(200)).await;
        // The measured events, written from a plain thread like a training process.
        let (w, ch, events, every) = (store_path.clone(), channel.clone(), a.events, Duration::from_millis(a.interval_ms));
        let writer = std::thread::spawn(move || -> Result<()> {
            let s = tinycats_track::Store::open(&w)?;
            for i in 0..events {
                s.append_event(run, &ch, &serde_json::json!({"i": i, "t": tinycats_track::now()}))?;
                std::thread::sleep(every);
            }
            Ok(())
        });
        let mut received = 0usize;
        let mut connected = 0usize;
        for c in clients {
            match tokio::time::timeout(Duration::from_secs(120), c).await {
                Ok(Ok(Ok(k))) => {
                    received += k;
                    connected += 1;
                }
                Ok(Ok(Err(e))) => eprintln!("client: {e:#}"),
                _ => eprintln!("client did not finish"),
            }
        }
        writer.join().map_err(|_| anyhow::anyhow!("writer panicked"))??;
        let v = lat.lock().map_err(|_| anyhow::anyhow!("lock"))?.clone();
        Ok::<_, anyhow::Error>((v, received, connected))
    })?;
    let mut l = lat;
    l.sort_by(f64::total_cmp);
    let (p50, p99, max) = (pct(&l, 50.0), pct(&l, 99.0), l.last().copied().unwrap_or(f64::NAN));
    let expected = a.subscribers * a.events;
    let out = serde_json::json!({
        "subscribers": a.subscribers, "events": a.events, "interval_ms": a.interval_ms, "server_poll_ms": poll.as_millis() as u64,
        "delivered": received, "expected": expected, "clients_completed": connected,
        "p50_ms": p50, "p99_ms": p99, "max_ms": max, "goal_p99_ms": GOAL_MS, "p99_over_goal": p99 / GOAL_MS,
    });
    if a.json {
        println!("{out}");
    } else {
        println!(
            "{} subscribers × {} events: delivered {}/{} ({} clients complete); latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; p99 / goal {:.0} ms = {:.2}",
            a.subscribers, a.events, received, expected, connected, p50, p99, max, GOAL_MS, p99 / GOAL_MS
        );
    }
    Ok(if received == expected { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
