// #new-job: kind, the full TOML config (prefilled from the server's default), a Predictions
// panel sent as overrides, Validate and Start. After Start the job is polled every second until
// it has a run, then the page moves to #run/<run_id>.

import { useEffect, useMemo, useRef, useState } from 'react';
import { api, ApiError, RUN_KINDS, type Job, type RunKind } from './api';
import { applyOverrides, cleanJobName, panelFromConfig, panelOverrides, type PredPanel } from './configEdit';

const JOB_POLL_MS = 1000;
const errText = (e: unknown) => (e instanceof Error ? e.message : String(e));

export function NewJobPage() {
  const [kind, setKind] = useState<RunKind>('classifier');
  const [config, setConfig] = useState('');
  const [panel, setPanel] = useState<PredPanel>(() => panelFromConfig('classifier', ''));
  const [name, setName] = useState('');
  const [loading, setLoading] = useState(true);
  const [configError, setConfigError] = useState<string | null>(null);
  const [valid, setValid] = useState(false);
  const [busy, setBusy] = useState(false);
  const [job, setJob] = useState<Job | null>(null);
  const edited = useRef(false);

  useEffect(() => {
    const ac = new AbortController();
    setLoading(true);
    edited.current = false;
    api
      .defaultConfig(kind, ac.signal)
      .then((text) => {
        if (edited.current) return; // never overwrite what the user typed meanwhile
        setConfig(text);
        setPanel(panelFromConfig(kind, text));
        setConfigError(null);
      })
      .catch((e) => {
        if (!ac.signal.aborted) setConfigError(`default config: ${errText(e)}`);
      })
      .finally(() => {
        if (!ac.signal.aborted) setLoading(false);
      });
    return () => ac.abort();
  }, [kind]);

  // Poll the started job until it has a run, then go there.
  useEffect(() => {
    if (!job || job.run_id !== null || job.status === 'failed' || job.status === 'cancelled' || job.status === 'finished') return;
    const t = setTimeout(() => {
      api
        .job(job.id)
        .then(setJob)
        .catch(() => setJob({ ...job })); // retry on the next tick
    }, JOB_POLL_MS);
    return () => clearTimeout(t);
  }, [job]);
  useEffect(() => {
    if (job?.run_id != null) location.hash = `#run/${job.run_id}`;
  }, [job?.run_id]);

  const over = useMemo(() => panelOverrides(kind, panel), [kind, panel]);
  const panelErrors = Object.values(over.errors);

  function editConfig(text: string) {
    edited.current = true;
    setConfig(text);
    setPanel(panelFromConfig(kind, text));
    setValid(false);
  }

  function editPanel(p: Partial<PredPanel>) {
    setPanel((x) => ({ ...x, ...p }));
    setValid(false);
  }

  async function validate() {
    setBusy(true);
    setValid(false);
    try {
      const r = await api.validateConfig(kind, config, over.set);
      if (r.valid) {
        setConfigError(null);
        setValid(true);
      } else setConfigError(r.error);
    } catch (e) {
      setConfigError(errText(e));
    } finally {
      setBusy(false);
    }
  }

  async function start() {
    setBusy(true);
    setValid(false);
    try {
      const j = await api.createJob({ kind, config, set: over.set, name: cleanJobName(name) });
      setConfigError(null);
      setJob(j);
    } catch (e) {
      setConfigError(e instanceof ApiError && e.status === 422 ? e.message : errText(e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="page studio">
      <h2>New job</h2>
      <div className="toolbar">
        <label>
          kind{' '}
          <select data-testid="job-kind" value={kind} onChange={(e) => setKind(e.target.value as RunKind)} disabled={busy}>
            {RUN_KINDS.map((k) => (
              <option key={k} value={k}>
                {k}
              </option>
            ))}
          </select>
        </label>
        <label>
          name{' '}
          <input data-testid="job-name" value={name} placeholder="(automatic)" onChange={(e) => setName(e.target.value)} />
        </label>
        {loading ? <span className="muted">loading the default config…</span> : null}
      </div>
      <div className="job-form">
        <label className="config">
          config (TOML)
          <textarea data-testid="job-config" value={config} spellCheck={false} rows={28} readOnly={loading} onChange={(e) => editConfig(e.target.value)} />
        </label>
        <fieldset className="pred-panel">
          <legend>Predictions</legend>
          <label className="check">
            <input type="checkbox" data-testid="pred-enabled" checked={panel.enabled} onChange={(e) => editPanel({ enabled: e.target.checked })} /> enabled
          </label>
          <label>
            samples{kind === 'generator' ? ' (images per breed)' : ''}
            <input
              data-testid="pred-samples"
              type="number"
              min={1}
              value={panel.samples}
              placeholder={kind === 'classifier' ? '(ids in the config)' : ''}
              disabled={!panel.enabled}
              onChange={(e) => editPanel({ samples: e.target.value })}
            />
          </label>
          <label>
            every {kind === 'classifier' ? '("epoch" or steps)' : '(steps)'}
            <input data-testid="pred-every" type="text" value={panel.every} disabled={!panel.enabled} onChange={(e) => editPanel({ every: e.target.value })} />
          </label>
          <label>
            seed{kind === 'generator' ? ' (first seed)' : ''}
            <input data-testid="pred-seed" type="number" min={0} value={panel.seed} disabled={!panel.enabled} onChange={(e) => editPanel({ seed: e.target.value })} />
          </label>
          {panelErrors.map((m) => (
            <div key={m} className="error small" data-testid="pred-error">
              {m}
            </div>
          ))}
          <div className="muted small">
            sent as overrides:
            <code data-testid="job-overrides">{over.set.map((s) => ` --set ${s}`).join('')}</code>
          </div>
          <button className="link" disabled={panelErrors.length > 0} onClick={() => editConfig(applyOverrides(config, over.set))}>
            write into the config text
          </button>
        </fieldset>
      </div>
      {configError ? (
        <pre className="error config-error" data-testid="config-error">
          {configError}
        </pre>
      ) : null}
      {valid ? (
        <p className="ok" data-testid="config-valid">
          config is valid
        </p>
      ) : null}
      <div className="toolbar">
        <button data-testid="job-validate" disabled={busy || loading || panelErrors.length > 0} onClick={() => void validate()}>
          Validate
        </button>
        <button data-testid="job-start" disabled={busy || loading || panelErrors.length > 0 || (job !== null && job.run_id === null && job.status !== 'failed')} onClick={() => void start()}>
          Start
        </button>
      </div>
      {job ? (
        <p data-testid="job-created">
          job #{job.id} <strong>{job.name}</strong>: <span className={`badge status-${job.status}`}>{job.status}</span>
          {job.run_id !== null ? (
            <>
              {' '}
              · <a href={`#run/${job.run_id}`} data-testid="job-run-link">run {job.run_id}</a>
            </>
          ) : job.status === 'queued' || job.status === 'running' ? (
            <span className="muted"> · waiting for its run…</span>
          ) : null}
          {job.error ? <span className="error"> · {job.error}</span> : null}
        </p>
      ) : null}
    </section>
  );
}
