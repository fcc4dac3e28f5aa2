import { useState } from 'react';
import { engine } from '../engine';
import type { FinalOf } from '../worker/client';
import type { BenchResult, Ep, ModelKind } from '../worker/protocol';

const hasWebGpu = typeof navigator !== 'undefined' && 'gpu' in navigator;

export function BenchmarkPage() {
  const [runs, setRuns] = useState(20);
  const [eps, setEps] = useState<Record<Ep, boolean>>({ wasm: true, webgpu: hasWebGpu });
  const [rows, setRows] = useState<(BenchResult | { model: ModelKind; ep: Ep; error: string })[]>([]);
  const [running, setRunning] = useState(false);

  async function run() {
    setRunning(true);
    setRows([]);
    for (const ep of (['wasm', 'webgpu'] as const).filter((e) => eps[e])) {
      for (const model of ['classifier', 'generator'] as const) {
        try {
          await engine.ensure(model);
          const r = (await engine.client.request({ type: 'bench', model, ep, runs })) as FinalOf<'benched'>;
          setRows((rs) => [...rs, r]);
        } catch (e) {
          setRows((rs) => [...rs, { model, ep, error: (e as Error).message }]);
        }
      }
    }
    setRunning(false);
  }

  return (
    <section className="page">
      <h2>Benchmark</h2>
      <p className="muted">
        One warm-up run, then N timed runs per model and provider. Classifier: one 224×224 image. Generator: one sampling step (one batch-2 call: conditional +
        unconditional), so an image costs about steps × p50.
      </p>
      <div className="gen-form">
        <label>
          runs
          <input data-testid="bench-runs" type="number" min={1} max={1000} value={runs} onChange={(e) => setRuns(Math.max(1, Math.min(1000, Number(e.target.value) || 1)))} />
        </label>
        {(['wasm', 'webgpu'] as const).map((ep) => (
          <label key={ep}>
            <input type="checkbox" data-testid={`bench-ep-${ep}`} checked={eps[ep]} onChange={(e) => setEps({ ...eps, [ep]: e.target.checked })} />
            {ep}
            {ep === 'webgpu' && !hasWebGpu ? ' (no navigator.gpu)' : ''}
          </label>
        ))}
        <button data-testid="bench-run" onClick={() => void run()} disabled={running}>
          {running ? 'running…' : 'run'}
        </button>
      </div>
      <table data-testid="bench-table" data-done={String(!running && rows.length > 0)}>
        <thead>
          <tr>
            <th>model</th>
            <th>provider</th>
            <th>runs</th>
            <th>p50 ms</th>
            <th>p95 ms</th>
            <th>mean ms</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) =>
            'error' in r ? (
              <tr key={r.model + r.ep} data-testid="bench-row" data-model={r.model} data-ep={r.ep}>
                <td>{r.model}</td>
                <td>{r.ep}</td>
                <td colSpan={4} className="error">
                  {r.error}
                </td>
              </tr>
            ) : (
              <tr key={r.model + r.ep} data-testid="bench-row" data-model={r.model} data-ep={r.ep} data-p50={r.p50} data-p95={r.p95}>
                <td>{r.model}</td>
                <td>{r.ep}</td>
                <td>{r.runs}</td>
                <td>{r.p50.toFixed(1)}</td>
                <td>{r.p95.toFixed(1)}</td>
                <td>{r.mean.toFixed(1)}</td>
              </tr>
            ),
          )}
        </tbody>
      </table>
    </section>
  );
}
