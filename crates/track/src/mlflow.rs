//! Mirroring a run to an MLflow tracking server over its REST API (`/api/2.0/mlflow/...`):
//! params, metrics (log-batch, at most 1000 per call as MLflow allows), tags, status and
//! artifacts (through the server's artifact proxy, `mlflow-artifacts:` URIs). The local run
//! store stays the source of truth; MLflow is a mirror.

use anyhow::{bail, Context, Result};
use std::path::Path;

/// MLflow's per-request limits for runs/log-batch.
pub const MAX_METRICS: usize = 1000;
pub const MAX_PARAMS: usize = 100;
/// MLflow rejects longer param values.
const MAX_PARAM_LEN: usize = 6000;

pub struct MlflowRun {
    base: String,
    pub experiment_id: String,
    pub run_id: String,
    artifact_uri: String,
    agent: ureq::Agent,
    pending: Vec<serde_json::Value>,
}

fn millis() -> i64 {
    (crate::now() * 1000.0) as i64
}

impl MlflowRun {
    fn call(agent: &ureq::Agent, base: &str, method: &str, path: &str, body: Option<serde_json::Value>) -> Result<serde_json::Value> {
        let url = format!("{base}/api/2.0/mlflow/{path}");
        let req = agent.request(method, &url);
        let r = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        match r {
            Ok(resp) => Ok(resp.into_json().unwrap_or(serde_json::Value::Null)),
            Err(ureq::Error::Status(code, resp)) => {
                let text = resp.into_string().unwrap_or_default();
                bail!("MLflow {method} {url}: HTTP {code}: {}", text.chars().take(500).collect::<String>())
            }
            Err(e) => bail!("MLflow {method} {url}: {e}"),
        }
    }

    /// Creates (or reuses) the experiment and starts a run with these tags.
    pub fn start(uri: &str, experiment: &str, run_name: &str, tags: &[(&str, &str)]) -> Result<MlflowRun> {
        let base = uri.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("--mlflow-uri `{uri}`: give the tracking server's http(s) URL, e.g. http://127.0.0.1:5000");
        }
        let agent = ureq::AgentBuilder::new().timeout(std::time::Duration::from_secs(30)).build();
        let exp = match Self::call(&agent, &base, "GET", &format!("experiments/get-by-name?experiment_name={}", urlencode(experiment)), None) {
            Ok(v) => v["experiment"]["experiment_id"].as_str().map(String::from),
            Err(e) if e.to_string().contains("RESOURCE_DOES_NOT_EXIST") => None,
            Err(e) => return Err(e),
        };
        let experiment_id = match exp {
            Some(id) => id,
            None => Self::call(&agent, &base, "POST", "experiments/create", Some(serde_json::json!({"name": experiment})))?["experiment_id"]
                .as_str()
                .context("MLflow experiments/create returned no experiment_id")?
                .to_string(),
        };
        let tags: Vec<_> = tags.iter().map(|(k, v)| serde_json::json!({"key": k, "value": v})).collect();
        let r = Self::call(&agent, &base, "POST", "runs/create", Some(serde_json::json!({"experiment_id": experiment_id, "run_name": run_name, "start_time": millis(), "tags": tags})))?;
        let info = &r["run"]["info"];
        Ok(MlflowRun {
            run_id: info["run_id"].as_str().context("MLflow runs/create returned no run_id")?.to_string(),
            artifact_uri: info["artifact_uri"].as_str().unwrap_or("").to_string(),
            experiment_id,
            base,
            agent,
            pending: Vec::new(),
        })
    }

    /// Logs params in batches of `MAX_PARAMS` (values cut to MLflow's limit).
    pub fn log_params(&self, params: &[(String, String)]) -> Result<()> {
        for chunk in params.chunks(MAX_PARAMS) {
            let ps: Vec<_> = chunk.iter().map(|(k, v)| serde_json::json!({"key": k, "value": v.chars().take(MAX_PARAM_LEN).collect::<String>()})).collect();
            Self::call(&self.agent, &self.base, "POST", "runs/log-batch", Some(serde_json::json!({"run_id": self.run_id, "params": ps})))?;
        }
        Ok(())
    }

    /// Queues a metric point; sent when `MAX_METRICS` are waiting or on `flush`.
    pub fn log_metric(&mut self, key: &str, step: i64, value: f64) -> Result<()> {
        if value.is_finite() {
            self.pending.push(serde_json::json!({"key": key, "value": value, "timestamp": millis(), "step": step}));
        }
        if self.pending.len() >= MAX_METRICS {
            self.flush()?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> Result<()> {
        while !self.pending.is_empty() {
            let n = self.pending.len().min(MAX_METRICS);
            let batch: Vec<_> = self.pending[..n].to_vec();
            Self::call(&self.agent, &self.base, "POST", "runs/log-batch", Some(serde_json::json!({"run_id": self.run_id, "metrics": batch})))?;
            self.pending.drain(..n);
        }
        Ok(())
    }

    pub fn set_tag(&self, key: &str, value: &str) -> Result<()> {
        Self::call(&self.agent, &self.base, "POST", "runs/set-tag", Some(serde_json::json!({"run_id": self.run_id, "key": key, "value": value})))?;
        Ok(())
    }

    /// Uploads a file through the server's artifact proxy to `<run artifacts>/<dest>`.
    pub fn log_artifact(&self, file: &Path, dest: &str) -> Result<()> {
        let Some(root) = self.artifact_uri.strip_prefix("mlflow-artifacts:") else {
            bail!("MLflow run artifact root `{}` is not served over HTTP (start the server with artifact serving)", self.artifact_uri);
        };
        let bytes = std::fs::read(file).with_context(|| format!("cannot read artifact {}", file.display()))?;
        let url = format!("{}/api/2.0/mlflow-artifacts/artifacts/{}/{}", self.base, root.trim_start_matches('/'), dest.trim_start_matches('/'));
        match self.agent.put(&url).send_bytes(&bytes) {
            Ok(_) => Ok(()),
            Err(ureq::Error::Status(code, r)) => bail!("MLflow artifact upload {url}: HTTP {code}: {}", r.into_string().unwrap_or_default()),
            Err(e) => bail!("MLflow artifact upload {url}: {e}"),
        }
    }

    /// Flushes metrics and sets the final status (FINISHED, FAILED or KILLED).
    pub fn end(&mut self, status: &str) -> Result<()> {
        self.flush()?;
        Self::call(&self.agent, &self.base, "POST", "runs/update", Some(serde_json::json!({"run_id": self.run_id, "status": status, "end_time": millis()})))?;
        Ok(())
    }
}

fn urlencode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}
