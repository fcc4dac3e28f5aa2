// #compare/<id>,<id>,…: 2–5 runs overlaid for one metric, and their last values side by side.

import { useEffect, useMemo, useState } from 'react';
import { api, type History, type RunDetail } from './api';
import { colorFor, formatValue } from './chart';
import { LineChart } from './LineChart';
import { MAX_COMPARE, MIN_COMPARE } from './route';
import { commonKeys, lastMetricsTable } from './compare';
import { defaultKey, downsampleText } from './series';
import { MetricSelect } from './MetricSelect';

const errText = (e: unknown) => (e instanceof Error ? e.message : String(e));

export function ComparePage({ ids }: { ids: number[] }) {
  const [details, setDetails] = useState<(RunDetail | null)[]>([]);
  const [errors, setErrors] = useState<string[]>([]);
  const [picked, setPicked] = useState<string | null>(null);
  const [hist, setHist] = useState<Record<number, History>>({});
  const idKey = ids.join(',');

  useEffect(() => {
    const ac = new AbortController();
    setDetails([]);
    setErrors([]);
    Promise.all(
      ids.map((id) =>
        api.run(id, ac.signal).then(
          (d) => ({ d, e: null as string | null }),
          (e) => ({ d: null, e: `run ${id}: ${errText(e)}` }),
        ),
      ),
    ).then((rs) => {
      if (ac.signal.aborted) return;
      setDetails(rs.map((r) => r.d));
      setErrors(rs.flatMap((r) => (r.e ? [r.e] : [])));
    });
    return () => ac.abort();
  }, [idKey]);

  const loaded = details.filter((d): d is RunDetail => d !== null);
  const keys = useMemo(() => commonKeys(loaded.map((d) => d.metrics)), [details]);
  const key = defaultKey(keys, picked);

  useEffect(() => {
    if (!key || loaded.length === 0) return;
    const ac = new AbortController();
    setHist({});
    for (const d of loaded) {
      api
        .history(d.run.id, key, 1000, ac.signal)
        .then((h) => setHist((m) => ({ ...m, [d.run.id]: h })))
        .catch((e) => {
          if (!ac.signal.aborted) setErrors((es) => [...es, `run ${d.run.id} ${key}: ${errText(e)}`]);
        });
    }
    return () => ac.abort();
  }, [key, details]);

  if (ids.length < MIN_COMPARE) {
    return (
      <section className="page studio">
        <h2>Compare</h2>
        <p className="error">
          Pick {MIN_COMPARE}–{MAX_COMPARE} runs on the <a href="#runs">runs page</a> (the URL looks like #compare/1,2).
        </p>
      </section>
    );
  }

  const table = lastMetricsTable(loaded);
  return (
    <section className="page studio">
      <h2>Compare {ids.length} runs</h2>
      {errors.map((e) => (
        <p key={e} className="error">
          {e}
        </p>
      ))}
      <div className="toolbar">
        <MetricSelect testId="compare-key" keys={keys} value={key} onChange={setPicked} />
        {loaded.length && keys.length === 0 ? <span className="muted">these runs share no metric</span> : null}
        {loaded.map((d) => {
          const t = downsampleText(hist[d.run.id]);
          return t ? (
            <span key={d.run.id} className="muted">
              {d.run.name}: {t}
            </span>
          ) : null;
        })}
      </div>
      {key ? (
        <LineChart
          testId="compare-chart"
          yLabel={key}
          series={loaded.map((d, i) => ({
            id: String(d.run.id),
            label: `#${d.run.id} ${d.run.name}`,
            points: hist[d.run.id]?.points ?? [],
            color: colorFor(i),
            testId: `curve-run-${d.run.id}`,
          }))}
        />
      ) : null}
      <table className="studio-table" data-testid="compare-table">
        <thead>
          <tr>
            <th>metric</th>
            {loaded.map((d, i) => (
              <th key={d.run.id}>
                <span className="swatch" style={{ background: colorFor(i) }} /> <a href={`#run/${d.run.id}`}>{d.run.name}</a>
                <div className="muted small">
                  {d.run.kind} · {d.run.status}
                </div>
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {table.map((row) => (
            <tr key={row.key}>
              <td>{row.key}</td>
              {row.cells.map((c, i) => (
                <td key={i} className={c && row.best === i ? 'best' : ''}>
                  {c ? (
                    <>
                      {formatValue(c.value)} <span className="muted small">@{c.step}</span>
                    </>
                  ) : (
                    '—'
                  )}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
