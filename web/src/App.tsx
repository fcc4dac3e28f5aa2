import { useEffect, useState } from 'react';
import { useModel, urlOptions } from './engine';
import { epText, progressText } from './lib/state';
import { ClassifyPage } from './pages/ClassifyPage';
import { GeneratePage } from './pages/GeneratePage';
import { BenchmarkPage } from './pages/BenchmarkPage';
import type { ModelKind } from './worker/protocol';
import { navPage, parseRoute, type Route } from './studio/route';
import { RunsPage } from './studio/RunsPage';
import { RunPage } from './studio/RunPage';
import { ComparePage } from './studio/ComparePage';
import { NewJobPage } from './studio/NewJobPage';
import { MonitorPage } from './studio/MonitorPage';

// In-browser inference pages, then the studio pages (served by `tinycats serve`).
const NAV: { page: string; label: string }[] = [
  { page: 'classify', label: 'Classify' },
  { page: 'generate', label: 'Generate' },
  { page: 'benchmark', label: 'Benchmark' },
  { page: 'runs', label: 'Runs' },
  { page: 'new-job', label: 'New job' },
  { page: 'monitor', label: 'Monitor' },
];
const INFERENCE = ['classify', 'generate', 'benchmark'];

// Hash routing: works on any static host and keeps ?ep=… / ?token=… in the query untouched.
const routeFromHash = (): Route => parseRoute(location.hash);

function ModelLine({ model }: { model: ModelKind }) {
  const s = useModel(model);
  return (
    <div className="model-line" data-testid={`model-${model}`} data-status={s.status}>
      <strong>{model}</strong>: <span data-testid={`ep-${model}`}>{epText(s)}</span> · <span>{progressText(s)}</span>
      {s.status === 'loading' && s.total ? <progress max={s.total} value={s.loaded} /> : null}
      {s.retry ? <span className="warn"> · {s.retry}</span> : null}
      {s.info ? <span className="muted"> · model {s.info.modelVersion}</span> : null}
      {s.fallbackReason && s.ep === 'wasm' ? <span className="muted" title={s.fallbackReason}> · WASM because: {s.fallbackReason}</span> : null}
    </div>
  );
}

export function App() {
  const [route, setRoute] = useState<Route>(routeFromHash);
  useEffect(() => {
    const on = () => setRoute(routeFromHash());
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  const active = navPage(route);
  return (
    <div className={`app${INFERENCE.includes(route.page) ? '' : ' wide'}`}>
      <header>
        <h1>tinycats</h1>
        <nav>
          {NAV.map(({ page, label }) => (
            <a key={page} href={`#${page}`} className={page === active ? 'active' : ''} data-testid={`nav-${page}`}>
              {label}
            </a>
          ))}
        </nav>
        <div className="status" hidden={!INFERENCE.includes(route.page)}>
          <div>
            provider request: <code data-testid="ep-request">{urlOptions.ep}</code> · cross-origin isolated:{' '}
            <code data-testid="isolated">{String(self.crossOriginIsolated)}</code>
          </div>
          <ModelLine model="classifier" />
          <ModelLine model="generator" />
        </div>
      </header>
      <main>
        {route.page === 'classify' && <ClassifyPage />}
        {route.page === 'generate' && <GeneratePage />}
        {route.page === 'benchmark' && <BenchmarkPage />}
        {route.page === 'runs' && <RunsPage />}
        {route.page === 'run' && <RunPage key={route.id} id={route.id} />}
        {route.page === 'compare' && <ComparePage ids={route.ids} />}
        {route.page === 'new-job' && <NewJobPage />}
        {route.page === 'monitor' && <MonitorPage />}
        {route.page === 'not-found' && (
          <p className="error" data-testid="not-found">
            No page <code>#{route.hash}</code>. Try <a href="#classify">classify</a> or <a href="#runs">runs</a>.
          </p>
        )}
      </main>
    </div>
  );
}
