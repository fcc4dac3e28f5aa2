// #run/<id>: header, live metric curves (REST history + the run's WebSocket channel) and the
// predictions gallery.

import { useCallback, useEffect, useMemo, useReducer, useState } from 'react';
import { api, type Prediction, type RunDetail, type StoredEvent } from './api';
import { LineChart } from './LineChart';
import { classNames, className, formatProb, groupByEpoch, isCorrect, labelName, pickEpochIndex } from './predictions';
import { formatDuration, formatTime } from './runsState';
import { defaultKey, downsampleText, initialLiveRun, liveRunReducer, metricKeys } from './series';
import { formatValue } from './chart';
import { useLiveChannel, WsBadge } from './useLive';
import { MetricSelect } from './MetricSelect';

const HISTORY_POINTS = 1000;
const errText = (e: unknown) => (e instanceof Error ? e.message : String(e));

export function RunPage({ id }: { id: number }) {
  const [detail, setDetail] = useState<RunDetail | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [live, dispatch] = useReducer(liveRunReducer, initialLiveRun);
  const [picked, setPicked] = useState<string | null>(null);
  const [detailTick, setDetailTick] = useState(0);

  useEffect(() => {
    dispatch({ type: 'reset' });
    setPicked(null);
    setDetail(null);
  }, [id]);

  useEffect(() => {
    const ac = new AbortController();
    api
      .run(id, ac.signal)
      .then((d) => {
        setDetail(d);
        setError(null);
      })
      .catch((e) => {
        if (!ac.signal.aborted) setError(errText(e));
      });
    return () => ac.abort();
  }, [id, detailTick]);

  const onEvents = useCallback((evs: StoredEvent[]) => dispatch({ type: 'events', bodies: evs.map((e) => e.body) }), []);
  const ws = useLiveChannel(`run/${id}`, onEvents);

  // A status event (finished, failed…) refreshes the header and last metrics.
  useEffect(() => {
    if (live.status) setDetailTick((n) => n + 1);
  }, [live.status]);

  const keys = useMemo(() => metricKeys(detail?.metrics ?? [], live.series), [detail?.metrics, live.series]);
  const key = defaultKey(keys, picked);

  useEffect(() => {
    if (!key) return;
    const ac = new AbortController();
    api
      .history(id, key, HISTORY_POINTS, ac.signal)
      .then((h) => dispatch({ type: 'history', history: h }))
      .catch(() => {
        /* live points still arrive; the header shows fetch errors */
      });
    return () => ac.abort();
  }, [id, key]);

  const status = live.status ?? detail?.run.status ?? '…';
  const points = key ? (live.series[key] ?? []) : [];
  const ds = key ? downsampleText(live.history[key]) : null;
  const names = classNames(detail?.params);

  return (
    <section className="page studio">
      {error ? (
        <p className="error" data-testid="run-error">
          {error}
        </p>
      ) : null}
      <h2>
        Run <span data-testid="run-name">{detail?.run.name ?? `#${id}`}</span>{' '}
        <span className={`badge status-${status}`} data-testid="run-status">
          {status}
        </span>
      </h2>
      {detail ? (
        <p className="muted">
          #{detail.run.id} · <span data-testid="run-kind">{detail.run.kind}</span> · experiment {detail.run.experiment} · started {formatTime(detail.run.started)} ·{' '}
          {detail.run.ended ? `ended ${formatTime(detail.run.ended)} · ` : ''}
          {formatDuration(detail.run.started, detail.run.ended)}
          {detail.run.git_commit ? ` · git ${detail.run.git_commit.slice(0, 10)}` : ''}
          {detail.run.dir ? ` · ${detail.run.dir}` : ''}
        </p>
      ) : null}
      <div className="toolbar">
        <WsBadge status={ws} />
        {live.lastStep !== null ? <span className="muted">last step {live.lastStep}</span> : null}
      </div>

      <h3>Metrics</h3>
      <div className="toolbar">
        <MetricSelect testId="metric-key" keys={keys} value={key} onChange={setPicked} />
        {key ? (
          <span>
            <span data-testid={`points-${key}`}>{points.length}</span> points
          </span>
        ) : (
          <span className="muted">no metrics yet</span>
        )}
        {ds ? (
          <span className="muted" data-testid="downsampled">
            {ds}
          </span>
        ) : null}
      </div>
      {key ? <LineChart series={[{ id: key, label: key, points, testId: `curve-${key}` }]} yLabel={key} /> : null}

      {detail && detail.last_metrics.length ? (
        <details>
          <summary>last values</summary>
          <table className="studio-table" data-testid="last-metrics">
            <tbody>
              {detail.last_metrics.map(([k, step, v]) => (
                <tr key={k}>
                  <td>{k}</td>
                  <td>{formatValue(v)}</td>
                  <td className="muted">step {step}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </details>
      ) : null}
      {detail && detail.params.length ? (
        <details>
          <summary>params ({detail.params.length})</summary>
          <table className="studio-table" data-testid="run-params">
            <tbody>
              {detail.params.map(([k, v]) => (
                <tr key={k}>
                  <td>{k}</td>
                  <td>
                    <code>{v}</code>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </details>
      ) : null}

      <Gallery runId={id} version={live.predictionsVersion} statusKey={status} names={names} />
    </section>
  );
}

function Gallery({ runId, version, statusKey, names }: { runId: number; version: number; statusKey: string; names: string[] | null }) {
  const [preds, setPreds] = useState<Prediction[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [chosen, setChosen] = useState<number | null>(null);
  const [follow, setFollow] = useState(true);
  const [sample, setSample] = useState<string | null>(null);
  const [history, setHistory] = useState<Prediction[] | null>(null);

  useEffect(() => {
    setPreds([]);
    setChosen(null);
    setFollow(true);
    setSample(null);
  }, [runId]);

  // Refetch on each predictions event (debounced: an event burst is one request).
  useEffect(() => {
    const ac = new AbortController();
    const t = setTimeout(
      () =>
        api
          .predictions(runId, {}, ac.signal)
          .then((p) => {
            setPreds(p);
            setError(null);
          })
          .catch((e) => {
            if (!ac.signal.aborted) setError(errText(e));
          }),
      version === 0 ? 0 : 250,
    );
    return () => {
      clearTimeout(t);
      ac.abort();
    };
  }, [runId, version, statusKey]);

  useEffect(() => {
    if (!sample) {
      setHistory(null);
      return;
    }
    const ac = new AbortController();
    api
      .predictions(runId, { sample }, ac.signal)
      .then(setHistory)
      .catch((e) => {
        if (!ac.signal.aborted) setError(errText(e));
      });
    return () => ac.abort();
  }, [runId, sample, version]);

  const groups = useMemo(() => groupByEpoch(preds), [preds]);
  const idx = pickEpochIndex(groups.epochs, chosen, follow);
  const epoch = idx >= 0 ? groups.epochs[idx] : null;
  const cards = epoch !== null ? (groups.byEpoch.get(epoch) ?? []) : [];

  return (
    <>
      <h3>Predictions</h3>
      {error ? <p className="error">{error}</p> : null}
      {groups.epochs.length === 0 ? (
        <p className="muted" data-testid="pred-empty">
          no predictions yet
        </p>
      ) : (
        <div className="toolbar">
          <label>
            epoch{' '}
            <input
              type="range"
              data-testid="pred-epoch"
              min={0}
              max={groups.epochs.length - 1}
              step={1}
              value={idx}
              onChange={(e) => {
                const i = Number(e.target.value);
                setChosen(groups.epochs[i]);
                setFollow(i === groups.epochs.length - 1);
              }}
            />
          </label>
          <span data-testid="pred-epoch-value">
            {epoch} ({idx + 1} of {groups.epochs.length})
          </span>
          <span className="muted">{follow ? 'following the latest' : ''}</span>
        </div>
      )}
      <div className="pred-grid">
        {cards.map((p) => (
          <PredCard key={p.sample_id} p={p} names={names} selected={p.sample_id === sample} onClick={() => setSample(p.sample_id === sample ? null : p.sample_id)} />
        ))}
      </div>
      {sample && history ? (
        <div data-testid="pred-history" className="pred-history">
          <h4>
            {sample} across {history.length} epoch{history.length === 1 ? '' : 's'}
          </h4>
          <table className="studio-table">
            <thead>
              <tr>
                <th>epoch</th>
                <th>step</th>
                <th>true</th>
                <th>top</th>
                <th>ms</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {history.map((p) => (
                <tr key={`${p.epoch}-${p.step}`}>
                  <td>{p.epoch}</td>
                  <td>{p.step}</td>
                  <td>{labelName(names, p)}</td>
                  <td>{p.top.length ? p.top.map(([c, pr]) => `${className(names, c)} ${formatProb(pr)}`).join(', ') : '—'}</td>
                  <td>{p.latency_ms != null ? p.latency_ms.toFixed(1) : '—'}</td>
                  <td>{p.image ? <img className="thumb" src={api.resourceUrl(p.image)} alt={`${p.sample_id} at ${p.epoch}`} /> : null}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </>
  );
}

function PredCard({ p, names, selected, onClick }: { p: Prediction; names: string[] | null; selected: boolean; onClick: () => void }) {
  const ok = isCorrect(p);
  return (
    <button className={`pred-card${selected ? ' selected' : ''}${ok === true ? ' ok' : ok === false ? ' wrong' : ''}`} data-testid="pred-card" data-sample={p.sample_id} onClick={onClick}>
      {p.image ? <img className="thumb" src={api.resourceUrl(p.image)} alt={p.sample_id} loading="lazy" /> : null}
      <div className="sample" title={p.sample_id}>
        {p.sample_id.length > 18 ? `${p.sample_id.slice(0, 16)}…` : p.sample_id}
      </div>
      <div>
        true: <strong>{labelName(names, p)}</strong>
      </div>
      {p.top.length ? (
        <ol className="top">
          {p.top.map(([c, pr]) => (
            <li key={c}>
              {className(names, c)} <span className="muted">{formatProb(pr)}</span>
            </li>
          ))}
        </ol>
      ) : null}
    </button>
  );
}
