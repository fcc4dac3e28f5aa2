//! The job queue's worker. A job is a validated config in the store's `jobs` table; the worker
//! runs it as `tinycats train <kind> --config … --run-dir …` — the very command a user would
//! type, so jobs use the same engine, sinks and run store as the CLI, and a job that crashes
//! cannot take the server down. Up to `max_jobs` run at once; cancel kills the process and
//! marks both the job and its run `cancelled`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tinycats_track::{JobRow, Store};
use tokio::sync::{oneshot, Notify};

pub struct JobRunner {
    pub store: PathBuf,
    /// Job run folders and logs go here (`job-<id>-<name>/`, `job-<id>.log`).
    pub runs: PathBuf,
    /// The `tinycats` binary that runs jobs; None disables the queue.
    pub worker: Option<PathBuf>,
    pub max_jobs: usize,
    /// One store connection, opened on first use (the worker loop polls the queue often).
    conn: Mutex<Option<Store>>,
    cancels: Mutex<HashMap<i64, oneshot::Sender<()>>>,
    running: Mutex<HashMap<i64, u32>>,
    wake: Notify,
}

/// Lower-case letters, digits and dashes (a job name inside a folder name).
pub fn slug(name: &str) -> String {
    let s: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    let s = s.trim_matches('-').chars().take(40).collect::<String>();
    s.split('-').filter(|p| !p.is_empty()).collect::<Vec<_>>().join("-")
}

fn blocking<T: Send + 'static>(f: impl FnOnce() -> anyhow::Result<T> + Send + 'static) -> impl std::future::Future<Output = anyhow::Result<T>> {
    async move { tokio::task::spawn_blocking(f).await.map_err(|e| anyhow::anyhow!("{e}"))? }
}

/// The last `n` lines of a log (the error a failed job shows).
fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

impl JobRunner {
    pub fn new(store: PathBuf, runs: PathBuf, worker: Option<PathBuf>, max_jobs: usize) -> Arc<JobRunner> {
        Arc::new(JobRunner { store, runs, worker, max_jobs: max_jobs.max(1), conn: Mutex::new(None), cancels: Mutex::new(HashMap::new()), running: Mutex::new(HashMap::new()), wake: Notify::new() })
    }

    /// Runs `f` on the runner's store connection (call from blocking threads only).
    fn with<T>(&self, f: impl FnOnce(&Store) -> anyhow::Result<T>) -> anyhow::Result<T> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        if conn.is_none() {
            *conn = Some(Store::open(&self.store)?);
        }
        f(conn.as_ref().expect("opened above"))
    }

    /// Running jobs and their worker pids (for the system monitor).
    pub fn running(&self) -> Vec<(i64, u32)> {
        let mut v: Vec<(i64, u32)> = self.running.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(a, b)| (*a, *b)).collect();
        v.sort();
        v
    }

    /// Queues a job (already validated by the caller).
    pub async fn submit(self: &Arc<Self>, kind: String, name: String, config: String, overrides: Vec<String>) -> anyhow::Result<JobRow> {
        if self.worker.is_none() {
            anyhow::bail!("this server runs no jobs (started without a worker binary)");
        }
        let dir = self.runs.join(format!("job-{{id}}{}", if slug(&name).is_empty() { String::new() } else { format!("-{}", slug(&name)) }));
        let dir = dir.to_string_lossy().to_string();
        let me = self.clone();
        let job = blocking(move || me.with(|s| s.create_job(&kind, &name, &config, &overrides, &dir))).await?;
        self.wake.notify_one();
        Ok(job)
    }

    /// Cancels a queued job at once; a running one has its process killed (waits for that).
    pub async fn cancel(self: &Arc<Self>, id: i64) -> anyhow::Result<JobRow> {
        let me = self.clone();
        let job = blocking(move || me.with(|s| s.job(id))).await?;
        match job.status.as_str() {
            "queued" => {
                let me = self.clone();
                blocking(move || me.with(|s| s.end_job(id, "cancelled", Some("cancelled before it started")))).await?;
            }
            "running" => {
                let tx = self.cancels.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                if let Some(tx) = tx {
                    let _ = tx.send(());
                }
                for _ in 0..200 {
                    let me = self.clone();
                    if blocking(move || me.with(|s| s.job(id))).await?.status != "running" {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            _ => {}
        }
        let me = self.clone();
        blocking(move || me.with(|s| s.job(id))).await
    }

    /// The worker loop: marks jobs a previous server left `running` as failed, then starts
    /// queued jobs whenever a slot is free.
    pub fn start(self: &Arc<Self>) {
        if self.worker.is_none() {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            let m = me.clone();
            let _ = blocking(move || {
                m.with(|s| {
                    for j in s.jobs(10_000)?.into_iter().filter(|j| j.status == "running") {
                        s.end_job(j.id, "failed", Some("the server stopped while this job ran"))?;
                    }
                    Ok(())
                })
            })
            .await;
            loop {
                while me.running.lock().unwrap_or_else(|e| e.into_inner()).len() < me.max_jobs {
                    let m = me.clone();
                    match blocking(move || m.with(|s| s.claim_job())).await {
                        Ok(Some(job)) => me.launch(job).await,
                        Ok(None) => break,
                        Err(e) => {
                            tracing::warn!("job queue: {e:#}");
                            break;
                        }
                    }
                }
                tokio::select! {
                    _ = me.wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
        });
    }

    async fn launch(self: &Arc<Self>, job: JobRow) {
        let id = job.id;
        let cfg_path = self.runs.join(format!("job-{id}.toml"));
        let log_path = self.runs.join(format!("job-{id}.log"));
        let spawned = (|| -> anyhow::Result<tokio::process::Child> {
            std::fs::create_dir_all(&self.runs)?;
            std::fs::write(&cfg_path, &job.config)?;
            let log = std::fs::File::create(&log_path)?;
            let mut cmd = tokio::process::Command::new(self.worker.as_ref().expect("checked in start"));
            cmd.args(["train", &job.kind, "--config"]).arg(&cfg_path).arg("--run-dir").arg(&job.run_dir).arg("--store").arg(&self.store);
            for o in &job.overrides {
                cmd.arg("--set").arg(o);
            }
            cmd.stdin(std::process::Stdio::null()).stdout(log.try_clone()?).stderr(log).kill_on_drop(true);
            Ok(cmd.spawn()?)
        })();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                let (m, msg) = (self.clone(), format!("could not start the worker: {e:#}"));
                let _ = blocking(move || m.with(|s| s.end_job(id, "failed", Some(&msg)))).await;
                return;
            }
        };
        let pid = child.id().unwrap_or(0);
        self.running.lock().unwrap_or_else(|e| e.into_inner()).insert(id, pid);
        let (tx, mut rx) = oneshot::channel();
        self.cancels.lock().unwrap_or_else(|e| e.into_inner()).insert(id, tx);
        let m = self.clone();
        let _ = blocking(move || m.with(|s| s.set_job_pid(id, Some(pid as i64)))).await;
        let me = self.clone();
        tokio::spawn(async move {
            let mut run_id: Option<i64> = None;
            let outcome = loop {
                tokio::select! {
                    st = child.wait() => break Some(st),
                    _ = &mut rx => {
                        let _ = child.kill().await;
                        break None;
                    }
                    _ = tokio::time::sleep(Duration::from_millis(200)), if run_id.is_none() => {
                        run_id = me.link_run(id, &job.run_dir).await;
                    }
                }
            };
            if run_id.is_none() {
                run_id = me.link_run(id, &job.run_dir).await;
            }
            let (status, error) = match outcome {
                None => ("cancelled", Some("cancelled while running".to_string())),
                Some(Ok(s)) if s.success() => ("finished", None),
                Some(Ok(s)) => ("failed", Some(format!("{s}: {}", tail(&log_path, 12)))),
                Some(Err(e)) => ("failed", Some(format!("waiting for the worker: {e}"))),
            };
            let m = me.clone();
            let _ = blocking(move || {
                m.with(|s| {
                    s.end_job(id, status, error.as_deref())?;
                    // The worker records finished/failed itself; a killed one cannot.
                    if let (Some(r), "cancelled") = (run_id, status) {
                        s.set_status(r, "cancelled")?;
                    }
                    Ok(())
                })
            })
            .await;
            me.cancels.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
            me.running.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
            me.wake.notify_one();
        });
    }

    /// Finds the run the worker registered for this job's folder and records it on the job.
    async fn link_run(self: &Arc<Self>, id: i64, dir: &str) -> Option<i64> {
        let (m, dir) = (self.clone(), dir.to_string());
        blocking(move || {
            m.with(|s| {
                let r = s.run_by_dir(&dir)?;
                if let Some(r) = r {
                    s.set_job_run(id, r)?;
                }
                Ok(r)
            })
        })
        .await
        .ok()
        .flatten()
    }
}
