// #monitor: CPU, memory, disk, GPUs and running jobs from GET /api/system (first paint) and the
// `system` WebSocket channel (a snapshot about every 2 s), with a rolling CPU chart.

import { useCallback, useEffect, useReducer, useState } from 'react';
import { api, type Snapshot, type StoredEvent } from './api';
import { LineChart } from './LineChart';
import { asSnapshot, CPU_WINDOW, formatPercent, freeOfTotal, gpuText, initialMonitor, monitorReducer, usedOfTotal } from './monitor';
import { formatTime } from './runsState';
import { useLiveChannel, WsBadge } from './useLive';

export function MonitorPage() {
  const [s, dispatch] = useReducer(monitorReducer, initialMonitor);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const ac = new AbortController();
    api
      .system(ac.signal)
      .then((snap) => dispatch(snap))
      .catch((e) => {
        if (!ac.signal.aborted) setError(e instanceof Error ? e.message : String(e));
      });
    return () => ac.abort();
  }, []);

  const onEvents = useCallback((evs: StoredEvent[]) => {
    for (const e of evs) {
      const snap = asSnapshot(e.body);
      if (snap) dispatch(snap);
    }
  }, []);
  const ws = useLiveChannel('system', onEvents);
  const snap: Snapshot | null = s.snapshot;
  const t0 = s.cpu.length ? s.cpu[s.cpu.length - 1].time : 0;

  return (
    <section className="page studio">
      <h2>Monitor</h2>
      <div className="toolbar">
        <WsBadge status={ws} />
        {snap ? <span className="muted">snapshot {formatTime(snap.time)}</span> : null}
      </div>
      {error ? <p className="error">{error}</p> : null}
      {snap ? (
        <table className="studio-table monitor">
          <tbody>
            <tr>
              <th>CPU</th>
              <td data-testid="monitor-cpu">
                {formatPercent(snap.cpu.percent)} of {snap.cpu.cores} core{snap.cpu.cores === 1 ? '' : 's'}
              </td>
            </tr>
            <tr>
              <th>memory</th>
              <td data-testid="monitor-mem">{usedOfTotal(snap.memory.used_bytes, snap.memory.total_bytes)}</td>
            </tr>
            <tr>
              <th>disk</th>
              <td data-testid="monitor-disk">
                {freeOfTotal(snap.disk.free_bytes, snap.disk.total_bytes)} <span className="muted">{snap.disk.path}</span>
              </td>
            </tr>
            <tr>
              <th>GPU</th>
              <td data-testid="monitor-gpu">
                {gpuText(snap).map((l) => (
                  <div key={l}>{l}</div>
                ))}
              </td>
            </tr>
            <tr>
              <th>jobs</th>
              <td data-testid="monitor-jobs">
                {snap.jobs.length === 0 ? (
                  <span className="muted">no running jobs</span>
                ) : (
                  snap.jobs.map((j) => (
                    <div key={j.id}>
                      job #{j.id} {j.status} · pid {j.pid ?? '—'}
                    </div>
                  ))
                )}
              </td>
            </tr>
          </tbody>
        </table>
      ) : (
        <p className="muted">waiting for the first snapshot…</p>
      )}
      <LineChart
        testId="monitor-cpu-chart"
        xLabel={`seconds (last ${CPU_WINDOW} snapshots)`}
        yLabel="CPU %"
        height={200}
        yDomain={[0, 100]}
        series={[{ id: 'cpu', label: 'CPU %', points: s.cpu.map((c) => ({ step: Math.round((c.time - t0) * 10) / 10, value: c.percent })), testId: 'curve-cpu' }]}
      />
    </section>
  );
}
