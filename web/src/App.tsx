import { useEffect, useState } from 'react';
import { useModel, urlOptions } from './engine';
import { epText, progressText } from './lib/state';
import { ClassifyPage } from './pages/ClassifyPage';
import { GeneratePage } from './pages/GeneratePage';
import { BenchmarkPage } from './pages/BenchmarkPage';
import type { ModelKind } from './worker/protocol';

const PAGES = ['classify', 'generate', 'benchmark'] as const;
type Page = (typeof PAGES)[number];

// Hash routing: works on any static host and keeps ?ep=… in the query untouched.
function pageFromHash(): Page {
  const h = location.hash.replace(/^#\/?/, '');
  return (PAGES as readonly string[]).includes(h) ? (h as Page) : 'classify';
}

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
  const [page, setPage] = useState<Page>(pageFromHash);
  useEffect(() => {
    const on = () => setPage(pageFromHash());
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return (
    <div className="app">
      <header>
        <h1>tinycats</h1>
        <nav>
          {PAGES.map((p) => (
            <a key={p} href={`#${p}`} className={p === page ? 'active' : ''} data-testid={`nav-${p}`}>
              {p[0].toUpperCase() + p.slice(1)}
            </a>
          ))}
        </nav>
        <div className="status">
          <div>
            provider request: <code data-testid="ep-request">{urlOptions.ep}</code> · cross-origin isolated:{' '}
            <code data-testid="isolated">{String(self.crossOriginIsolated)}</code>
          </div>
          <ModelLine model="classifier" />
          <ModelLine model="generator" />
        </div>
      </header>
      <main>
        {page === 'classify' && <ClassifyPage />}
        {page === 'generate' && <GeneratePage />}
        {page === 'benchmark' && <BenchmarkPage />}
      </main>
    </div>
  );
}
