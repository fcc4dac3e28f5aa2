//! The studio server with its job worker (this crate's `tinycats` binary) on a generated
//! dataset: configs validated with errors naming the key, two jobs training at once and both
//! writing metrics and prediction thumbnails, cancel of a running job, the system monitor; and
//! MLflow mirroring against a real `mlflow server` from PyPI.

use std::path::{Path, PathBuf};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

mod common;
use common::{ok_json, tc};

fn s(p: &Path) -> String {
    p.to_string_lossy().to_string()
}

/// A 16 px prepared cache of generated cat photos (what the tiny generator preset trains on).
fn tiny_cache(t: &Path) -> String {
    let (src, ds) = (t.join("src"), t.join("ds"));
    assert!(tc(&["data", "fixture", &s(&src), "--breeds", "all-cats", "--per-class", "3", "--size", "32"]).status.success());
    ok_json(&["data", "import", &s(&src), "--dest", &s(&ds), "--json"]);
    ok_json(&["data", "verify", &s(&ds), "--json"]);
    ok_json(&["data", "prepare", &s(&ds), "--size", "16", "--json"])["out"].as_str().unwrap().to_string()
}

fn call(method: &str, url: &str, body: Option<serde_json::Value>) -> (u16, serde_json::Value) {
    let req = ureq::request(method, url);
    let r = match body {
        Some(b) => req.send_json(b),
        None => req.call(),
    };
    match r {
        Ok(r) => (r.status(), r.into_json().unwrap_or(serde_json::Value::Null)),
        Err(ureq::Error::Status(c, r)) => (c, r.into_json().unwrap_or(serde_json::Value::Null)),
        Err(e) => panic!("{method} {url}: {e}"),
    }
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts the server (with its worker) on a free loopback port in a background thread.
fn start_server(t: &Path, max_jobs: usize) -> (String, PathBuf) {
    let store = t.join("store.db");
    let mut cfg = tinycats_server::AppConfig::new(store.clone(), t.join("models"));
    cfg.runs = t.join("jobs");
    cfg.worker = Some(PathBuf::from(env!("CARGO_BIN_EXE_tinycats")));
    cfg.max_jobs = max_jobs;
    cfg.monitor_every = Duration::from_millis(300);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async move { tinycats_server::serve_on(tokio::net::TcpListener::from_std(listener).unwrap(), cfg).await.unwrap() });
    });
    (format!("http://{addr}"), store)
}

fn job(base: &str, id: i64) -> serde_json::Value {
    call("GET", &format!("{base}/api/jobs/{id}"), None).1["job"].clone()
}

#[test]
fn jobs_validate_run_concurrently_and_cancel() {
    let t = tempfile::tempdir().unwrap();
    let cache = tiny_cache(t.path());
    let (base, _store) = start_server(t.path(), 2);
    let config = format!("[data]\ncache = \"{cache}\"\n[model]\npreset = \"tiny\"\n[train]\nsteps = 24\nbatch_size = 4\nlog_every = 4\ncheckpoint_every = 12\n[predictions]\nevery = 12\nsample_steps = 2\n");

    // The default config round-trips through validation; a bad value is refused naming the key.
    let (code, d) = call("GET", &format!("{base}/api/configs/default?kind=generator"), None);
    assert_eq!(code, 200);
    assert_eq!(call("POST", &format!("{base}/api/configs/validate"), Some(serde_json::json!({"kind": "generator", "config": d["config"]}))).0, 200);
    let (code, e) = call("POST", &format!("{base}/api/jobs"), Some(serde_json::json!({"kind": "generator", "config": config, "set": ["train.steps=0"]})));
    assert_eq!(code, 422, "{e}");
    assert!(e["error"].as_str().unwrap().contains("train.steps"), "{e}");
    let (code, e) = call("POST", &format!("{base}/api/jobs"), Some(serde_json::json!({"kind": "painter", "config": ""})));
    assert_eq!(code, 400, "{e}");
    assert_eq!(call("GET", &format!("{base}/api/jobs/999"), None).0, 404);

    // Two jobs at once: both run, overlap in time, and write their own metrics and thumbnails.
    let ids: Vec<i64> = ["a", "b"]
        .iter()
        .map(|n| {
            let (code, j) = call("POST", &format!("{base}/api/jobs"), Some(serde_json::json!({"kind": "generator", "config": config, "name": format!("tiny {n}")})));
            assert_eq!(code, 201, "{j}");
            assert_eq!(j["job"]["status"], "queued");
            j["job"]["id"].as_i64().unwrap()
        })
        .collect();
    let mut both_running = false;
    wait_for("both jobs to end", Duration::from_secs(300), || {
        let js: Vec<_> = ids.iter().map(|&i| job(&base, i)).collect();
        both_running |= js.iter().all(|j| j["status"] == "running");
        js.iter().all(|j| !["queued", "running"].contains(&j["status"].as_str().unwrap()))
    });
    for &id in &ids {
        let j = job(&base, id);
        assert_eq!(j["status"], "finished", "{j}");
        let run = j["run_id"].as_i64().expect("the job's run is linked");
        let (_, h) = call("GET", &format!("{base}/api/runs/{run}/history?key=train/loss"), None);
        assert_eq!(h["points"].as_array().unwrap().last().unwrap()["step"], 24, "{h}");
        let (_, d) = call("GET", &format!("{base}/api/runs/{run}"), None);
        assert_eq!(d["run"]["status"], "finished");
        let (_, p) = call("GET", &format!("{base}/api/runs/{run}/predictions"), None);
        let preds = p["predictions"].as_array().unwrap();
        assert_eq!(preds.len(), 2 * 12, "12 breeds at steps 12 and 24");
        assert!(preds.iter().all(|p| p["latency_ms"].as_f64().unwrap() > 0.0), "sampling time per image is recorded");
        let img = preds[0]["image"].as_str().expect("generator predictions carry a thumbnail");
        let r = ureq::get(&format!("{base}{img}")).call().unwrap();
        assert_eq!(r.content_type(), "image/png");
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut r.into_reader(), &mut bytes).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        // Run files stay inside the run folder.
        assert_eq!(call("GET", &format!("{base}/api/runs/{run}/artifacts/..%2F..%2Fstore.db"), None).0, 400);
        assert_eq!(call("GET", &format!("{base}/api/runs/{run}/artifacts/nope.png"), None).0, 404);
    }
    let (ja, jb) = (job(&base, ids[0]), job(&base, ids[1]));
    let time = |j: &serde_json::Value, k: &str| j[k].as_f64().unwrap();
    let (a0, a1, b0, b1) = (time(&ja, "started"), time(&ja, "ended"), time(&jb, "started"), time(&jb, "ended"));
    assert!(both_running || (a0 < b1 && b0 < a1), "the two jobs did not run at the same time");
    let runs = call("GET", &format!("{base}/api/runs?sort=name&order=asc"), None).1;
    assert_eq!(runs["total"], 2);
    assert!(runs["runs"][0]["name"].as_str().unwrap() < runs["runs"][1]["name"].as_str().unwrap());

    // Cancel a long job while it runs: the process goes, job and run say cancelled.
    let (_, j) = call("POST", &format!("{base}/api/jobs"), Some(serde_json::json!({"kind": "generator", "config": config, "set": ["train.steps=100000"]})));
    let id = j["job"]["id"].as_i64().unwrap();
    wait_for("the long job to register its run", Duration::from_secs(60), || job(&base, id)["run_id"].is_i64());
    let pid = job(&base, id)["pid"].as_i64().expect("a running job has a pid");
    // The monitor lists the job's process.
    wait_for("the monitor to list the job", Duration::from_secs(10), || {
        let (_, sys) = call("GET", &format!("{base}/api/system"), None);
        assert!(sys["cpu"]["cores"].as_u64().unwrap() >= 1 && sys["memory"]["total_bytes"].as_u64().unwrap() > 0, "{sys}");
        sys["jobs"].as_array().unwrap().iter().any(|j| j["id"] == id && j["pid"] == pid)
    });
    let (code, c) = call("POST", &format!("{base}/api/jobs/{id}/cancel"), None);
    assert_eq!(code, 200);
    assert_eq!(c["job"]["status"], "cancelled", "{c}");
    assert!(!Path::new(&format!("/proc/{pid}")).exists() || std::fs::read_to_string(format!("/proc/{pid}/stat")).map(|s| s.contains(") Z")).unwrap_or(true), "the worker process is gone");
    let run = c["job"]["run_id"].as_i64().unwrap();
    assert_eq!(call("GET", &format!("{base}/api/runs/{run}"), None).1["run"]["status"], "cancelled");
    // A queued job cancels without running; cancelling an ended job changes nothing.
    let (_, c2) = call("POST", &format!("{base}/api/jobs/{id}/cancel"), None);
    assert_eq!(c2["job"]["status"], "cancelled");
    let (_, ev) = call("GET", &format!("{base}/api/events?channel=jobs&since=0"), None);
    assert!(ev["events"].as_array().unwrap().iter().any(|e| e["body"]["data"]["status"] == "cancelled"), "job changes are events");
}

/// The MLflow server from PyPI (scripts/setup.sh installs `mlflow<3.18`), on a free port.
/// `mlflow server` forks uvicorn and job-runner workers, so it runs in its own process group and
/// the whole group is killed: killing only the parent left ~18 processes behind after every run.
struct Mlflow(std::process::Child);
impl Mlflow {
    /// Live (non-zombie) processes in process group `pgid`, from /proc/*/stat.
    fn live_in_group(pgid: u32) -> usize {
        let Ok(dir) = std::fs::read_dir("/proc") else { return 0 };
        dir.filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("stat")).ok())
            .filter(|stat| {
                // "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after ')'.
                let rest: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
                rest.len() > 2 && rest[0] != "Z" && rest[2] == pgid.to_string()
            })
            .count()
    }
}
impl Drop for Mlflow {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", self.0.id())]).output();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn mlflow_mirror_reads_back() {
    let probe = Command::new("python3").args(["-c", "import mlflow"]).output().expect("python3");
    assert!(probe.status.success(), "MLflow is not installed: run scripts/setup.sh (pip install 'mlflow<3.18')");
    let t = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let uri = format!("http://127.0.0.1:{port}");
    let server = Mlflow(
        Command::new("python3")
            .args(["-m", "mlflow", "server", "--host", "127.0.0.1", "--port", &port.to_string(), "--workers", "1"])
            .arg("--backend-store-uri")
            .arg(format!("sqlite:///{}", t.path().join("mlflow.db").display()))
            .arg("--artifacts-destination")
            .arg(t.path().join("artifacts"))
            .current_dir(t.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(t.path().join("mlflow.log")).unwrap())
            .process_group(0)
            .spawn()
            .expect("start mlflow server"),
    );
    wait_for("mlflow /health", Duration::from_secs(120), || ureq::get(&format!("{uri}/health")).call().is_ok());

    let cache = tiny_cache(t.path());
    let run = t.path().join("mirrored");
    let o = tc(&[
        "train", "generator", "--run-dir", &s(&run), "--set", "model.preset=tiny", "--set", &format!("data.cache=\"{cache}\""), "--set", "train.steps=6", "--set", "train.batch_size=4",
        "--set", "train.log_every=1", "--set", "train.checkpoint_every=3", "--set", "predictions.every=3", "--set", "predictions.sample_steps=2", "--store", &s(&t.path().join("store.db")),
        "--mlflow-uri", &uri,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let api = |path: &str| -> serde_json::Value { ureq::get(&format!("{uri}/api/2.0/mlflow/{path}")).call().unwrap_or_else(|e| panic!("{path}: {e}")).into_json().unwrap() };
    let exp = api("experiments/get-by-name?experiment_name=tinycats")["experiment"]["experiment_id"].as_str().unwrap().to_string();
    let found: serde_json::Value = ureq::post(&format!("{uri}/api/2.0/mlflow/runs/search")).send_json(serde_json::json!({"experiment_ids": [exp]})).unwrap().into_json().unwrap();
    let r = &found["runs"][0];
    assert_eq!(r["info"]["run_name"], "mirrored");
    assert_eq!(r["info"]["status"], "FINISHED");
    let params = r["data"]["params"].as_array().unwrap();
    assert!(params.iter().any(|p| p["key"] == "model.preset" && p["value"] == "tiny"), "{params:?}");
    assert!(r["data"]["tags"].as_array().unwrap().iter().any(|t| t["key"] == "tinycats.kind" && t["value"] == "generator"));
    let id = r["info"]["run_id"].as_str().unwrap();
    let h = api(&format!("metrics/get-history?run_id={id}&metric_key=train/loss"));
    let steps: Vec<i64> = h["metrics"].as_array().unwrap().iter().map(|m| m["step"].as_i64().unwrap()).collect();
    assert_eq!(steps, (1..=6).collect::<Vec<_>>(), "every logged step arrives once");
    // The same run in the local store has the same loss values.
    let local = ok_json(&["runs", "show", "mirrored", "--store", &s(&t.path().join("store.db")), "--json"]);
    let last = local["last_metrics"].as_array().unwrap().iter().find(|m| m[0] == "train/loss").unwrap()[2].as_f64().unwrap();
    let mirrored = h["metrics"].as_array().unwrap().last().unwrap()["value"].as_f64().unwrap();
    assert!((last - mirrored).abs() < 1e-9, "{last} vs {mirrored}");
    let files = api(&format!("artifacts/list?run_id={id}"));
    let names: Vec<&str> = files["files"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert!(names.contains(&"config.toml") && names.contains(&"result.json"), "{names:?}");

    // An unreachable server is refused before anything is recorded.
    let o = tc(&["train", "generator", "--run-dir", &s(&t.path().join("never")), "--set", "model.preset=tiny", "--set", &format!("data.cache=\"{cache}\""), "--mlflow-uri", "http://127.0.0.1:9", "--store", &s(&t.path().join("store2.db"))]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("MLflow"), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!t.path().join("store2.db").exists(), "nothing recorded for a refused run");

    // Stopping the server leaves none of its worker processes behind.
    let pgid = server.0.id();
    assert!(Mlflow::live_in_group(pgid) > 1, "the server runs with its workers in its own process group");
    drop(server);
    wait_for("mlflow's worker processes to exit", Duration::from_secs(10), || Mlflow::live_in_group(pgid) == 0);
}
