//! The run store: one SQLite file (WAL) with versioned migrations. Metrics are append-only
//! (run, key, step, time, value) and ingested in batches inside one transaction; history
//! queries downsample on the server side (min and max per bucket, so spikes survive) and say so.

use anyhow::{bail, Context, Result};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use std::path::Path;

pub mod mlflow;

/// Schema migrations in order; `user_version` records how many have run.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE experiments (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created REAL NOT NULL);
     CREATE TABLE runs (id INTEGER PRIMARY KEY, experiment INTEGER NOT NULL REFERENCES experiments(id), name TEXT NOT NULL,
        kind TEXT NOT NULL, status TEXT NOT NULL, config TEXT NOT NULL, git_commit TEXT, data_hash TEXT,
        started REAL NOT NULL, ended REAL, dir TEXT, UNIQUE(experiment, name));
     CREATE TABLE params (run INTEGER NOT NULL REFERENCES runs(id), key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (run, key));
     CREATE TABLE metrics (run INTEGER NOT NULL, key TEXT NOT NULL, step INTEGER NOT NULL, time REAL NOT NULL, value REAL NOT NULL);
     CREATE INDEX metrics_run_key_step ON metrics (run, key, step);
     CREATE TABLE artifacts (run INTEGER NOT NULL REFERENCES runs(id), path TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL, PRIMARY KEY (run, path));
     CREATE TABLE predictions (run INTEGER NOT NULL, epoch INTEGER NOT NULL, step INTEGER NOT NULL, sample_id TEXT NOT NULL,
        label INTEGER NOT NULL, top TEXT NOT NULL, image TEXT, latency_ms REAL);
     CREATE INDEX predictions_run_epoch ON predictions (run, epoch);
     CREATE INDEX predictions_run_sample ON predictions (run, sample_id);
     CREATE TABLE events (run INTEGER NOT NULL, channel TEXT NOT NULL, seq INTEGER NOT NULL, time REAL NOT NULL, body TEXT NOT NULL,
        PRIMARY KEY (channel, seq));",
    // Rollups for fast downsampled history: per (run, key, level, block of 2^level steps) the
    // minimum and maximum with their steps, maintained at ingest.
    "CREATE TABLE rollups (run INTEGER NOT NULL, key TEXT NOT NULL, level INTEGER NOT NULL, block INTEGER NOT NULL,
        min_step INTEGER NOT NULL, min REAL NOT NULL, max_step INTEGER NOT NULL, max REAL NOT NULL, n INTEGER NOT NULL,
        PRIMARY KEY (run, key, level, block)) WITHOUT ROWID;",
    // The server's job queue: a config waits (`queued`), a worker runs it (`running`, with the
    // worker's pid and, once the run registers, its run id), and it ends `finished`, `failed`
    // or `cancelled`.
    "CREATE TABLE jobs (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL, config TEXT NOT NULL, overrides TEXT NOT NULL,
        status TEXT NOT NULL, created REAL NOT NULL, started REAL, ended REAL, run_dir TEXT NOT NULL, run_id INTEGER, error TEXT, pid INTEGER);
     CREATE INDEX jobs_status ON jobs (status, id);
     CREATE INDEX runs_dir ON runs (dir);",
];

/// Rollup block sizes (log2 of steps per block).
const LEVELS: [i64; 3] = [6, 10, 14];

pub fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

pub struct Store {
    conn: Connection,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RunRow {
    pub id: i64,
    pub experiment: String,
    pub name: String,
    pub kind: String,
    pub status: String,
    pub started: f64,
    pub ended: Option<f64>,
    pub git_commit: Option<String>,
    pub data_hash: Option<String>,
    pub dir: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Point {
    pub step: i64,
    pub value: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct History {
    pub key: String,
    pub total_points: usize,
    /// True when `points` is a min/max-per-bucket reduction of `total_points` points.
    pub downsampled: bool,
    pub buckets: usize,
    pub points: Vec<Point>,
}

/// A queued, running or ended training job (see the `jobs` migration).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct JobRow {
    pub id: i64,
    pub kind: String,
    pub name: String,
    pub config: String,
    pub overrides: Vec<String>,
    pub status: String,
    pub created: f64,
    pub started: Option<f64>,
    pub ended: Option<f64>,
    pub run_dir: String,
    pub run_id: Option<i64>,
    pub error: Option<String>,
    pub pid: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ArtifactRow {
    pub path: String,
    pub sha256: String,
    pub size: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PredictionRow {
    pub epoch: i64,
    pub step: i64,
    pub sample_id: String,
    pub label: i64,
    pub top: serde_json::Value,
    pub image: Option<String>,
    pub latency_ms: Option<f64>,
}

/// Switches the file to WAL. SQLite returns BUSY at once, without calling the busy handler,
/// when two connections that both hold a read lock race to switch a fresh file (waiting could
/// deadlock), so that case is retried here for as long as the busy timeout would have waited.
fn set_wal(conn: &Connection) -> Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut pause = std::time::Duration::from_millis(1);
    loop {
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0)) {
            Ok(mode) if mode.eq_ignore_ascii_case("wal") => return Ok(()),
            // In-memory databases answer "memory": WAL does not apply there.
            Ok(mode) if mode.eq_ignore_ascii_case("memory") => return Ok(()),
            Ok(mode) => bail!("cannot switch the store to WAL mode (SQLite kept journal_mode = {mode})"),
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::DatabaseBusy && std::time::Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_millis(50));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

impl Store {
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(p) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(p).with_context(|| format!("cannot create {}", p.display()))?;
        }
        let conn = Connection::open(path).with_context(|| format!("cannot open run store {}", path.display()))?;
        Self::init(conn).with_context(|| format!("run store {}", path.display()))
    }

    pub fn in_memory() -> Result<Store> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Store> {
        // WAL: readers (the server) never block the writer (training); NORMAL sync is durable
        // at checkpoints and fast per batch. The busy timeout comes first: switching a fresh
        // file to WAL needs the lock another process may hold.
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        set_wal(&conn)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let mut s = Store { conn };
        s.migrate()?;
        Ok(s)
    }

    fn migrate(&mut self) -> Result<()> {
        let v: usize = self.conn.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))? as usize;
        if v > MIGRATIONS.len() {
            bail!("the store has schema version {v}, newer than this tinycats ({}); upgrade tinycats", MIGRATIONS.len());
        }
        for (i, m) in MIGRATIONS.iter().enumerate().skip(v) {
            // IMMEDIATE takes the write lock first, and the version is read again under it:
            // two processes opening a fresh store at once must not both run a migration.
            let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let now_v: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
            if now_v as usize > i {
                tx.commit()?;
                continue;
            }
            tx.execute_batch(m).with_context(|| format!("migration {}", i + 1))?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
        }
        Ok(())
    }

    pub fn schema_version(&self) -> Result<i64> {
        Ok(self.conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    fn experiment_id(&self, name: &str) -> Result<i64> {
        self.conn.execute("INSERT OR IGNORE INTO experiments (name, created) VALUES (?1, ?2)", params![name, now()])?;
        Ok(self.conn.query_row("SELECT id FROM experiments WHERE name = ?1", [name], |r| r.get(0))?)
    }

    /// Registers a run (status `running`) with its config and flattened params.
    #[allow(clippy::too_many_arguments)]
    pub fn create_run(&mut self, experiment: &str, name: &str, kind: &str, config: &serde_json::Value, git_commit: Option<&str>, data_hash: Option<&str>, dir: Option<&Path>) -> Result<i64> {
        let exp = self.experiment_id(experiment)?;
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO runs (experiment, name, kind, status, config, git_commit, data_hash, started, dir) VALUES (?1, ?2, ?3, 'running', ?4, ?5, ?6, ?7, ?8)",
            params![exp, name, kind, config.to_string(), git_commit, data_hash, now(), dir.map(|d| d.display().to_string())],
        )
        .with_context(|| format!("run `{name}` already exists in experiment `{experiment}`"))?;
        let id = tx.last_insert_rowid();
        {
            let mut st = tx.prepare("INSERT INTO params (run, key, value) VALUES (?1, ?2, ?3)")?;
            for (k, v) in flatten(config) {
                st.execute(params![id, k, v])?;
            }
        }
        tx.commit()?;
        Ok(id)
    }

    pub fn set_status(&self, run: i64, status: &str) -> Result<()> {
        let ended = if status == "running" { None } else { Some(now()) };
        let n = self.conn.execute("UPDATE runs SET status = ?2, ended = ?3 WHERE id = ?1", params![run, status, ended])?;
        if n == 0 {
            bail!("no run with id {run}");
        }
        self.append_event(run, &format!("run/{run}"), &serde_json::json!({"kind": "status", "data": {"status": status}}))?;
        Ok(())
    }

    /// Appends metric points (key, step, value) in one transaction, updating the rollups.
    pub fn log_metrics(&mut self, run: i64, points: &[(&str, i64, f64)]) -> Result<()> {
        let t = now();
        // Per (key, level, block): (min_step, min, max_step, max) of this batch.
        let mut agg: std::collections::HashMap<(&str, i64, i64), (i64, f64, i64, f64, i64)> = std::collections::HashMap::new();
        for &(k, step, v) in points {
            for l in LEVELS {
                let e = agg.entry((k, l, step >> l)).or_insert((step, v, step, v, 0));
                e.4 += 1;
                if v < e.1 {
                    (e.0, e.1) = (step, v);
                }
                if v > e.3 {
                    (e.2, e.3) = (step, v);
                }
            }
        }
        let tx = self.conn.transaction()?;
        {
            let mut st = tx.prepare_cached("INSERT INTO metrics (run, key, step, time, value) VALUES (?1, ?2, ?3, ?4, ?5)")?;
            for (k, s, v) in points {
                st.execute(params![run, k, s, t, v])?;
            }
            let mut up = tx.prepare_cached(
                "INSERT INTO rollups (run, key, level, block, min_step, min, max_step, max, n) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (run, key, level, block) DO UPDATE SET
                   min_step = CASE WHEN excluded.min < min THEN excluded.min_step ELSE min_step END, min = MIN(min, excluded.min),
                   max_step = CASE WHEN excluded.max > max THEN excluded.max_step ELSE max_step END, max = MAX(max, excluded.max), n = n + excluded.n",
            )?;
            for ((k, l, b), (s0, mn, s1, mx, n)) in agg {
                up.execute(params![run, k, l, b, s0, mn, s1, mx, n])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn log_predictions(&mut self, run: i64, rows: &[PredictionRow]) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut st = tx.prepare_cached("INSERT INTO predictions (run, epoch, step, sample_id, label, top, image, latency_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")?;
            for p in rows {
                st.execute(params![run, p.epoch, p.step, p.sample_id, p.label, p.top.to_string(), p.image, p.latency_ms])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn log_artifact(&self, run: i64, path: &str, sha256: &str, size: u64) -> Result<()> {
        self.conn.execute("INSERT OR REPLACE INTO artifacts (run, path, sha256, size) VALUES (?1, ?2, ?3, ?4)", params![run, path, sha256, size as i64])?;
        Ok(())
    }

    /// Appends an event to `channel` with the next sequence number of that channel (one
    /// statement, so two processes appending to one channel cannot take the same number).
    pub fn append_event(&self, run: i64, channel: &str, body: &serde_json::Value) -> Result<i64> {
        Ok(self.conn.query_row(
            "INSERT INTO events (run, channel, seq, time, body) SELECT ?1, ?2, COALESCE(MAX(seq), 0) + 1, ?3, ?4 FROM events WHERE channel = ?2 RETURNING seq",
            params![run, channel, now(), body.to_string()],
            |r| r.get(0),
        )?)
    }

    /// The channel's newest sequence number (0 when empty).
    pub fn last_seq(&self, channel: &str) -> Result<i64> {
        Ok(self.conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM events WHERE channel = ?1", [channel], |r| r.get(0))?)
    }

    /// Events of `channel` after sequence number `since` (a reconnecting client's replay).
    pub fn events_since(&self, channel: &str, since: i64) -> Result<Vec<(i64, serde_json::Value)>> {
        let mut st = self.conn.prepare("SELECT seq, body FROM events WHERE channel = ?1 AND seq > ?2 ORDER BY seq")?;
        let rows = st.query_map(params![channel, since], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        rows.map(|r| {
            let (s, b) = r?;
            Ok((s, serde_json::from_str(&b)?))
        })
        .collect()
    }

    fn run_row(r: &rusqlite::Row) -> rusqlite::Result<RunRow> {
        Ok(RunRow {
            id: r.get(0)?,
            experiment: r.get(1)?,
            name: r.get(2)?,
            kind: r.get(3)?,
            status: r.get(4)?,
            started: r.get(5)?,
            ended: r.get(6)?,
            git_commit: r.get(7)?,
            data_hash: r.get(8)?,
            dir: r.get(9)?,
        })
    }

    /// Columns runs can be sorted by (`list_runs_sorted`).
    pub const RUN_SORT_KEYS: [&'static str; 6] = ["name", "kind", "status", "started", "ended", "id"];

    const RUN_COLS: &'static str = "r.id, e.name, r.name, r.kind, r.status, r.started, r.ended, r.git_commit, r.data_hash, r.dir FROM runs r JOIN experiments e ON e.id = r.experiment";

    /// Runs, optionally filtered by a name/kind/status/experiment substring, sorted (`sort` is
    /// one of name, kind, status, started, ended; newest first by default) and paged, with the
    /// total number of matching runs.
    pub fn list_runs_sorted(&self, filter: Option<&str>, sort: Option<&str>, descending: bool, limit: usize, offset: usize) -> Result<(Vec<RunRow>, usize)> {
        let col = match sort.unwrap_or("started") {
            "name" => "r.name",
            "kind" => "r.kind",
            "status" => "r.status",
            "started" => "r.started",
            "ended" => "r.ended",
            "id" => "r.id",
            other => bail!("sort = `{other}`: use one of {}", Self::RUN_SORT_KEYS.join(", ")),
        };
        let dir = if descending { "DESC" } else { "ASC" };
        let pat = format!("%{}%", filter.unwrap_or(""));
        let cond = "(r.name LIKE ?1 OR r.kind LIKE ?1 OR r.status LIKE ?1 OR e.name LIKE ?1)";
        let mut st = self.conn.prepare(&format!("SELECT {} WHERE {cond} ORDER BY {col} {dir}, r.id {dir} LIMIT ?2 OFFSET ?3", Self::RUN_COLS))?;
        let rows = st.query_map(params![pat, limit as i64, offset as i64], Self::run_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        let total: i64 = self.conn.query_row(&format!("SELECT COUNT(*) FROM runs r JOIN experiments e ON e.id = r.experiment WHERE {cond}"), [&pat], |r| r.get(0))?;
        Ok((rows, total as usize))
    }

    /// Runs, newest first, optionally filtered by kind/status substring, paged.
    pub fn list_runs(&self, filter: Option<&str>, limit: usize, offset: usize) -> Result<Vec<RunRow>> {
        Ok(self.list_runs_sorted(filter, None, true, limit, offset)?.0)
    }

    /// Experiments with their number of runs.
    pub fn experiments(&self) -> Result<Vec<(String, i64)>> {
        let mut st = self.conn.prepare("SELECT e.name, COUNT(r.id) FROM experiments e LEFT JOIN runs r ON r.experiment = e.id GROUP BY e.id ORDER BY e.name")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn artifacts(&self, run: i64) -> Result<Vec<ArtifactRow>> {
        let mut st = self.conn.prepare("SELECT path, sha256, size FROM artifacts WHERE run = ?1 ORDER BY path")?;
        let rows = st.query_map([run], |r| Ok(ArtifactRow { path: r.get(0)?, sha256: r.get(1)?, size: r.get(2)? }))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The newest run registered with this run folder.
    pub fn run_by_dir(&self, dir: &str) -> Result<Option<i64>> {
        Ok(self.conn.query_row("SELECT id FROM runs WHERE dir = ?1 ORDER BY id DESC LIMIT 1", [dir], |r| r.get(0)).optional()?)
    }

    const JOB_COLS: &'static str = "id, kind, name, config, overrides, status, created, started, ended, run_dir, run_id, error, pid FROM jobs";

    fn job_row(r: &rusqlite::Row) -> rusqlite::Result<JobRow> {
        let ov: String = r.get(4)?;
        Ok(JobRow {
            id: r.get(0)?,
            kind: r.get(1)?,
            name: r.get(2)?,
            config: r.get(3)?,
            overrides: serde_json::from_str(&ov).unwrap_or_default(),
            status: r.get(5)?,
            created: r.get(6)?,
            started: r.get(7)?,
            ended: r.get(8)?,
            run_dir: r.get(9)?,
            run_id: r.get(10)?,
            error: r.get(11)?,
            pid: r.get(12)?,
        })
    }

    /// Queues a job; `run_dir` may contain `{id}`, replaced by the job id.
    pub fn create_job(&self, kind: &str, name: &str, config: &str, overrides: &[String], run_dir: &str) -> Result<JobRow> {
        self.conn.execute(
            "INSERT INTO jobs (kind, name, config, overrides, status, created, run_dir) VALUES (?1, ?2, ?3, ?4, 'queued', ?5, ?6)",
            params![kind, name, config, serde_json::to_string(overrides)?, now(), run_dir],
        )?;
        let id = self.conn.last_insert_rowid();
        self.conn.execute("UPDATE jobs SET run_dir = replace(run_dir, '{id}', ?2) WHERE id = ?1", params![id, id.to_string()])?;
        self.job_event(id)
    }

    /// Every job change is also an event on the `jobs` channel (the UI's live job list).
    fn job_event(&self, id: i64) -> Result<JobRow> {
        let j = self.job(id)?;
        self.append_event(0, "jobs", &serde_json::json!({"kind": "job", "data": &j}))?;
        Ok(j)
    }

    pub fn job(&self, id: i64) -> Result<JobRow> {
        self.conn.query_row(&format!("SELECT {} WHERE id = ?1", Self::JOB_COLS), [id], Self::job_row).optional()?.with_context(|| format!("no job {id}"))
    }

    /// Jobs, newest first.
    pub fn jobs(&self, limit: usize) -> Result<Vec<JobRow>> {
        let mut st = self.conn.prepare(&format!("SELECT {} ORDER BY id DESC LIMIT ?1", Self::JOB_COLS))?;
        let rows = st.query_map([limit as i64], Self::job_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Atomically moves the oldest queued job to `running` (None when the queue is empty).
    pub fn claim_job(&self) -> Result<Option<JobRow>> {
        let id: Option<i64> = self
            .conn
            .query_row("UPDATE jobs SET status = 'running', started = ?1 WHERE id = (SELECT id FROM jobs WHERE status = 'queued' ORDER BY id LIMIT 1) RETURNING id", [now()], |r| r.get(0))
            .optional()?;
        id.map(|i| self.job_event(i)).transpose()
    }

    pub fn set_job_pid(&self, id: i64, pid: Option<i64>) -> Result<()> {
        self.conn.execute("UPDATE jobs SET pid = ?2 WHERE id = ?1", params![id, pid])?;
        Ok(())
    }

    pub fn set_job_run(&self, id: i64, run: i64) -> Result<()> {
        self.conn.execute("UPDATE jobs SET run_id = ?2 WHERE id = ?1", params![id, run])?;
        self.job_event(id).map(|_| ())
    }

    /// Ends a job (finished, failed or cancelled). A job that has already ended keeps its
    /// first ending (a cancel racing the worker's exit does not flip it); returns whether it changed.
    pub fn end_job(&self, id: i64, status: &str, error: Option<&str>) -> Result<bool> {
        let n = self.conn.execute(
            "UPDATE jobs SET status = ?2, ended = ?3, error = ?4, pid = NULL WHERE id = ?1 AND status IN ('queued', 'running')",
            params![id, status, now(), error],
        )?;
        if n > 0 {
            self.job_event(id)?;
        }
        Ok(n > 0)
    }

    /// A run by id or by name (the newest with that name).
    pub fn find_run(&self, id_or_name: &str) -> Result<RunRow> {
        let by_id = id_or_name.parse::<i64>().ok();
        let r = self
            .conn
            .query_row(&format!("SELECT {} WHERE r.id = ?1 OR r.name = ?2 ORDER BY r.id DESC LIMIT 1", Self::RUN_COLS), params![by_id.unwrap_or(-1), id_or_name], Self::run_row)
            .optional()?;
        r.with_context(|| format!("no run `{id_or_name}` in the store"))
    }

    pub fn params(&self, run: i64) -> Result<Vec<(String, String)>> {
        let mut st = self.conn.prepare("SELECT key, value FROM params WHERE run = ?1 ORDER BY key")?;
        let rows = st.query_map([run], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn metric_keys(&self, run: i64) -> Result<Vec<String>> {
        let mut st = self.conn.prepare("SELECT DISTINCT key FROM metrics WHERE run = ?1 ORDER BY key")?;
        let rows = st.query_map([run], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The last value of each metric.
    pub fn last_metrics(&self, run: i64) -> Result<Vec<(String, i64, f64)>> {
        let mut st = self.conn.prepare("SELECT key, step, value FROM metrics m WHERE run = ?1 AND rowid = (SELECT rowid FROM metrics WHERE run = m.run AND key = m.key ORDER BY step DESC, rowid DESC LIMIT 1) ORDER BY key")?;
        let rows = st.query_map([run], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Metric history with at most `max_points` points: all points when they fit, else per
    /// step bucket the minimum and the maximum (in step order), flagged `downsampled`.
    pub fn history(&self, run: i64, key: &str, max_points: usize) -> Result<History> {
        let max_points = max_points.max(2);
        // Count and step range from the rollups (a few index lookups, not a scan of the points).
        let top = LEVELS[LEVELS.len() - 1];
        let n: i64 = self.conn.query_row("SELECT COALESCE(SUM(n), 0) FROM rollups WHERE run = ?1 AND key = ?2 AND level = ?3", params![run, key, top], |r| r.get(0))?;
        let (lo, hi): (Option<i64>, Option<i64>) = self.conn.query_row(
            "SELECT (SELECT MIN(block) FROM rollups WHERE run = ?1 AND key = ?2 AND level = ?3), (SELECT MAX(block) FROM rollups WHERE run = ?1 AND key = ?2 AND level = ?3)",
            params![run, key, LEVELS[0]],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let (lo, hi) = (lo.map(|b| b << LEVELS[0]), hi.map(|b| ((b + 1) << LEVELS[0]) - 1));
        let n = n as usize;
        if n <= max_points {
            let mut st = self.conn.prepare_cached("SELECT step, value FROM metrics WHERE run = ?1 AND key = ?2 ORDER BY step, rowid")?;
            let points = st.query_map(params![run, key], |r| Ok(Point { step: r.get(0)?, value: r.get(1)? }))?.collect::<rusqlite::Result<Vec<_>>>()?;
            return Ok(History { key: key.into(), total_points: n, downsampled: false, buckets: points.len(), points });
        }
        let (lo, hi) = (lo.unwrap_or(0), hi.unwrap_or(0));
        // The finest rollup level whose blocks fit; adjacent blocks are merged further in Rust
        // when even the coarsest level has too many.
        let span = hi - lo + 1;
        let want_blocks = (max_points / 2).max(1) as i64;
        let level = LEVELS.iter().copied().find(|&l| (span >> l) + 2 <= want_blocks).unwrap_or(LEVELS[LEVELS.len() - 1]);
        let mut st = self.conn.prepare_cached("SELECT block, min_step, min, max_step, max FROM rollups WHERE run = ?1 AND key = ?2 AND level = ?3 ORDER BY block")?;
        let blocks = st
            .query_map(params![run, key, level], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, f64>(2)?, r.get::<_, i64>(3)?, r.get::<_, f64>(4)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let group = blocks.len().div_ceil(want_blocks as usize).max(1);
        let mut points = Vec::with_capacity(max_points);
        let mut buckets = 0;
        for g in blocks.chunks(group) {
            let mn = g.iter().min_by(|a, b| a.2.total_cmp(&b.2)).expect("non-empty");
            let mx = g.iter().max_by(|a, b| a.4.total_cmp(&b.4)).expect("non-empty");
            let (a, b) = (Point { step: mn.1, value: mn.2 }, Point { step: mx.3, value: mx.4 });
            if a.step <= b.step {
                points.push(a);
                if b != a {
                    points.push(b);
                }
            } else {
                points.push(b);
                points.push(a);
            }
            buckets += 1;
        }
        Ok(History { key: key.into(), total_points: n, downsampled: true, buckets, points })
    }

    pub fn predictions(&self, run: i64, epoch: Option<i64>, sample: Option<&str>) -> Result<Vec<PredictionRow>> {
        let mut st = self.conn.prepare(
            "SELECT epoch, step, sample_id, label, top, image, latency_ms FROM predictions WHERE run = ?1 AND (?2 IS NULL OR epoch = ?2) AND (?3 IS NULL OR sample_id = ?3) ORDER BY epoch, sample_id",
        )?;
        let rows = st.query_map(params![run, epoch, sample], |r| {
            let top: String = r.get(4)?;
            Ok(PredictionRow { epoch: r.get(0)?, step: r.get(1)?, sample_id: r.get(2)?, label: r.get(3)?, top: serde_json::from_str(&top).unwrap_or(serde_json::Value::Null), image: r.get(5)?, latency_ms: r.get(6)? })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// `{"a": {"b": 1}}` → [("a.b", "1")]: config as searchable params.
pub fn flatten(v: &serde_json::Value) -> Vec<(String, String)> {
    fn go(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    go(&if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") }, x, out);
                }
            }
            other => out.push((prefix.to_string(), match other {
                serde_json::Value::String(s) => s.clone(),
                o => o.to_string(),
            })),
        }
    }
    let mut out = Vec::new();
    go("", v, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_versioned_and_idempotent() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s.db");
        let mut s = Store::open(&p).unwrap();
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
        let id = s.create_run("default", "r1", "classifier", &serde_json::json!({"train": {"epochs": 3}}), Some("abc"), None, None).unwrap();
        s.log_metrics(id, &[("loss", 1, 0.5)]).unwrap();
        drop(s);
        let s = Store::open(&p).unwrap();
        assert_eq!(s.list_runs(None, 10, 0).unwrap().len(), 1, "reopening keeps data and does not re-run migrations");
        assert_eq!(s.params(id).unwrap(), vec![("train.epochs".to_string(), "3".to_string())]);
        s.conn.pragma_update(None, "user_version", 99).unwrap();
        drop(s);
        let e = Store::open(&p).err().unwrap();
        assert!(format!("{e:#}").contains("schema version 99"), "{e:#}");
    }

    #[test]
    fn history_downsamples_with_min_and_max_and_says_so() {
        let mut s = Store::in_memory().unwrap();
        let id = s.create_run("default", "r", "generator", &serde_json::json!({}), None, None, None).unwrap();
        let pts: Vec<(&str, i64, f64)> = (0..10_000).map(|i| ("loss", i, if i == 7_777 { 100.0 } else if i == 3_333 { -5.0 } else { (i as f64 * 0.01).sin() })).collect();
        s.log_metrics(id, &pts).unwrap();
        let full = s.history(id, "loss", 20_000).unwrap();
        assert!(!full.downsampled);
        assert_eq!(full.points.len(), 10_000);
        let h = s.history(id, "loss", 200).unwrap();
        assert!(h.downsampled && h.total_points == 10_000);
        assert!(h.points.len() <= 200, "{} points", h.points.len());
        assert!(h.points.iter().any(|p| p.step == 7_777 && p.value == 100.0), "the spike survives");
        assert!(h.points.iter().any(|p| p.step == 3_333 && p.value == -5.0), "the dip survives");
        assert!(h.points.windows(2).all(|w| w[0].step <= w[1].step), "in step order");
        assert_eq!(s.last_metrics(id).unwrap(), vec![("loss".to_string(), 9_999, (9_999f64 * 0.01).sin())]);
    }

    #[test]
    fn two_writers_on_one_file_lose_nothing() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s.db");
        let ids: Vec<i64> = {
            let mut s = Store::open(&p).unwrap();
            (0..2).map(|i| s.create_run("default", &format!("job{i}"), "classifier", &serde_json::json!({}), None, None, None).unwrap()).collect()
        };
        let handles: Vec<_> = ids
            .iter()
            .map(|&id| {
                let p = p.clone();
                std::thread::spawn(move || {
                    let mut s = Store::open(&p).unwrap();
                    for b in 0..50 {
                        let pts: Vec<(&str, i64, f64)> = (0..100).map(|i| ("loss", b * 100 + i, id as f64)).collect();
                        s.log_metrics(id, &pts).unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let s = Store::open(&p).unwrap();
        for id in ids {
            let h = s.history(id, "loss", 100_000).unwrap();
            assert_eq!(h.total_points, 5_000);
            assert!(h.points.iter().all(|p| p.value == id as f64), "points of job {id} mixed up");
        }
    }

    #[test]
    fn events_have_per_channel_sequence_numbers_and_replay() {
        let mut s = Store::in_memory().unwrap();
        let a = s.create_run("default", "a", "classifier", &serde_json::json!({}), None, None, None).unwrap();
        for i in 0..5 {
            assert_eq!(s.append_event(a, "run/a", &serde_json::json!({"i": i})).unwrap(), i + 1);
        }
        assert_eq!(s.append_event(a, "system", &serde_json::json!({})).unwrap(), 1);
        let missed = s.events_since("run/a", 3).unwrap();
        assert_eq!(missed.iter().map(|e| e.0).collect::<Vec<_>>(), vec![4, 5]);
        assert_eq!(missed[0].1["i"], 3);
        let e = s.create_run("default", "a", "classifier", &serde_json::json!({}), None, None, None).unwrap_err();
        assert!(format!("{e:#}").contains("already exists"), "{e:#}");
        assert!(s.set_status(999, "finished").is_err());
        assert!(s.find_run("nope").unwrap_err().to_string().contains("nope"));
    }

    #[test]
    fn job_queue_claims_in_order_and_ends_once() {
        let s = Store::in_memory().unwrap();
        let a = s.create_job("generator", "a", "[train]\nsteps = 1\n", &["train.batch_size=2".into()], "runs/job-{id}-a").unwrap();
        let b = s.create_job("classifier", "b", "", &[], "runs/job-{id}").unwrap();
        assert_eq!((a.status.as_str(), a.run_dir.as_str()), ("queued", format!("runs/job-{}-a", a.id).as_str()));
        assert_eq!(a.overrides, vec!["train.batch_size=2".to_string()]);
        let c1 = s.claim_job().unwrap().unwrap();
        assert_eq!((c1.id, c1.status.as_str()), (a.id, "running"));
        assert!(c1.started.is_some());
        assert_eq!(s.claim_job().unwrap().unwrap().id, b.id);
        assert!(s.claim_job().unwrap().is_none(), "queue empty");
        assert!(s.end_job(a.id, "cancelled", Some("by user")).unwrap());
        assert!(!s.end_job(a.id, "finished", None).unwrap(), "an ended job keeps its first ending");
        assert_eq!(s.job(a.id).unwrap().status, "cancelled");
        assert!(s.job(999).unwrap_err().to_string().contains("no job 999"));
        // Every change is an event on `jobs`: 2 created, 2 claimed, 1 ended.
        assert_eq!(s.events_since("jobs", 0).unwrap().len(), 5);
    }

    #[test]
    fn two_processes_opening_a_fresh_store_at_once_both_succeed() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("fresh.db");
        let hs: Vec<_> = (0..8).map(|_| { let p = p.clone(); std::thread::spawn(move || Store::open(&p).map(|s| s.schema_version().unwrap())) }).collect();
        for h in hs {
            assert_eq!(h.join().unwrap().unwrap(), MIGRATIONS.len() as i64);
        }
    }

}
