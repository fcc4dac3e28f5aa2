// #runs: the run table (server-side filter, sort and paging; select 2–5 to compare) and the jobs.

import { useEffect, useReducer, useState } from 'react';
import { api, ApiError, isActiveJob, SORT_KEYS, type Job, type RunsPage as RunsResponse, type SortKey } from './api';
import { MAX_COMPARE } from './route';
import { canCompare, compareHash, formatDuration, formatTime, hasNext, initialRunsState, pageText, runsQuery, runsReducer, sortIndicator, sortJobs } from './runsState';

const FILTER_DEBOUNCE_MS = 300;
const RUNS_REFRESH_MS = 5000;
const JOBS_REFRESH_MS = 2000;

const errText = (e: unknown) => (e instanceof Error ? e.message : String(e));

export function RunsPage() {
  const [s, dispatch] = useReducer(runsReducer, initialRunsState);
  const [filterText, setFilterText] = useState('');
  const [page, setPage] = useState<RunsResponse | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [tick, setTick] = useState(0);

  useEffect(() => {
    const t = setTimeout(() => dispatch({ type: 'filter', value: filterText }), FILTER_DEBOUNCE_MS);
    return () => clearTimeout(t);
  }, [filterText]);

  useEffect(() => {
    const ac = new AbortController();
    api
      .runs(runsQuery(s), ac.signal)
      .then((p) => {
        setPage(p);
        setError(null);
      })
      .catch((e) => {
        if (!ac.signal.aborted) setError(errText(e));
      });
    return () => ac.abort();
  }, [s.filter, s.sort, s.order, s.limit, s.offset, tick]);

  // Statuses and new runs appear without a reload.
  useEffect(() => {
    const t = setInterval(() => setTick((n) => n + 1), RUNS_REFRESH_MS);
    return () => clearInterval(t);
  }, []);

  const runs = page?.runs ?? [];
  const next = hasNext(s, runs.length, page?.total);
  const headers: { key: SortKey | null; label: string }[] = [
    { key: 'name', label: 'name' },
    { key: 'kind', label: 'kind' },
    { key: 'status', label: 'status' },
    { key: 'started', label: 'started' },
    { key: 'ended', label: 'ended' },
  ];

  return (
    <section className="page studio">
      <h2>Runs</h2>
      <div className="toolbar">
        <label>
          filter{' '}
          <input data-testid="runs-filter" type="search" value={filterText} placeholder="name, kind, status, experiment" onChange={(e) => setFilterText(e.target.value)} />
        </label>
        <button data-testid="compare" disabled={!canCompare(s.selected)} onClick={() => (location.hash = compareHash(s.selected))}>
          Compare{s.selected.length ? ` (${s.selected.length})` : ''}
        </button>
        <span className="muted">select 2–{MAX_COMPARE} runs to compare</span>
        {s.selected.length ? (
          <button className="link" onClick={() => dispatch({ type: 'clearSelection' })}>
            clear selection
          </button>
        ) : null}
      </div>
      {error ? (
        <p className="error" data-testid="runs-error">
          {error}
        </p>
      ) : null}
      <table data-testid="runs-table" className="studio-table" data-total={page?.total ?? ''}>
        <thead>
          <tr>
            <th />
            <th>id</th>
            {headers.map((h) => (
              <th key={h.label} aria-sort={h.key && s.sort === h.key ? (s.order === 'asc' ? 'ascending' : 'descending') : undefined}>
                {h.key && SORT_KEYS.includes(h.key) ? (
                  <button className="sort" data-testid={`sort-${h.key}`} onClick={() => dispatch({ type: 'sort', key: h.key! })}>
                    {h.label}
                    {sortIndicator(s, h.key)}
                  </button>
                ) : (
                  h.label
                )}
              </th>
            ))}
            <th>duration</th>
            <th>experiment</th>
          </tr>
        </thead>
        <tbody>
          {runs.map((r) => {
            const checked = s.selected.includes(r.id);
            return (
              <tr key={r.id} data-testid={`run-row-${r.id}`} className={checked ? 'selected' : ''}>
                <td>
                  <input
                    type="checkbox"
                    data-testid={`run-select-${r.id}`}
                    checked={checked}
                    disabled={!checked && s.selected.length >= MAX_COMPARE}
                    onChange={() => dispatch({ type: 'toggle', id: r.id })}
                    aria-label={`select run ${r.name}`}
                  />
                </td>
                <td>{r.id}</td>
                <td>
                  <a href={`#run/${r.id}`}>{r.name}</a>
                </td>
                <td>{r.kind}</td>
                <td>
                  <span className={`badge status-${r.status}`}>{r.status}</span>
                </td>
                <td>{formatTime(r.started)}</td>
                <td>{formatTime(r.ended)}</td>
                <td>{formatDuration(r.started, r.ended)}</td>
                <td>{r.experiment}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <div className="pager">
        <button data-testid="runs-prev" disabled={s.offset === 0} onClick={() => dispatch({ type: 'prev' })}>
          ← prev
        </button>
        <span data-testid="runs-page">{page ? pageText({ offset: page.offset, total: page.total, shown: runs.length }) : 'loading…'}</span>
        <button data-testid="runs-next" disabled={!next} onClick={() => dispatch({ type: 'next', total: page?.total, shown: runs.length })}>
          next →
        </button>
      </div>
      <JobsSection onChange={() => setTick((n) => n + 1)} />
    </section>
  );
}

function JobsSection({ onChange }: { onChange: () => void }) {
  const [jobs, setJobs] = useState<Job[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [unavailable, setUnavailable] = useState(false);
  const [busy, setBusy] = useState<number | null>(null);
  const [tick, setTick] = useState(0);

  useEffect(() => {
    if (unavailable) return;
    const ac = new AbortController();
    api
      .jobs(ac.signal)
      .then((j) => {
        setJobs(sortJobs(j));
        setError(null);
      })
      .catch((e) => {
        if (ac.signal.aborted) return;
        if (e instanceof ApiError && (e.status === 404 || e.status === 405)) setUnavailable(true);
        else setError(errText(e));
      });
    const t = setTimeout(() => setTick((n) => n + 1), JOBS_REFRESH_MS);
    return () => {
      ac.abort();
      clearTimeout(t);
    };
  }, [tick, unavailable]);

  async function cancel(id: number) {
    setBusy(id);
    try {
      const j = await api.cancelJob(id);
      setJobs((js) => (js ? js.map((x) => (x.id === j.id ? j : x)) : js));
      setError(null);
      onChange();
    } catch (e) {
      setError(`cancel job ${id}: ${errText(e)}`);
    } finally {
      setBusy(null);
      setTick((n) => n + 1);
    }
  }

  return (
    <>
      <h3>
        Jobs <a href="#new-job">new job</a>
      </h3>
      {unavailable ? <p className="muted">This server has no job API (GET /api/jobs → 404).</p> : null}
      {error ? (
        <p className="error" data-testid="jobs-error">
          {error}
        </p>
      ) : null}
      <table data-testid="jobs-table" className="studio-table">
        <thead>
          <tr>
            <th>id</th>
            <th>name</th>
            <th>kind</th>
            <th>status</th>
            <th>created</th>
            <th>run</th>
            <th>pid</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {(jobs ?? []).map((j) => (
            <tr key={j.id} data-testid={`job-row-${j.id}`}>
              <td>{j.id}</td>
              <td>{j.name}</td>
              <td>{j.kind}</td>
              <td>
                <span data-testid={`job-status-${j.id}`} className={`badge status-${j.status}`}>
                  {j.status}
                </span>
                {j.error ? (
                  <div className="error small" title={j.error}>
                    {j.error.length > 160 ? `${j.error.slice(0, 160)}…` : j.error}
                  </div>
                ) : null}
              </td>
              <td>{formatTime(j.created)}</td>
              <td>{j.run_id !== null ? <a href={`#run/${j.run_id}`}>run {j.run_id}</a> : <span className="muted">—</span>}</td>
              <td>{j.pid ?? '—'}</td>
              <td>
                {isActiveJob(j.status) ? (
                  <button data-testid={`job-cancel-${j.id}`} disabled={busy === j.id} onClick={() => void cancel(j.id)}>
                    Cancel
                  </button>
                ) : null}
              </td>
            </tr>
          ))}
          {jobs && jobs.length === 0 ? (
            <tr>
              <td colSpan={8} className="muted">
                no jobs yet
              </td>
            </tr>
          ) : null}
        </tbody>
      </table>
    </>
  );
}
