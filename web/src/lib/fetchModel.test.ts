import { describe, expect, it } from 'vitest';
import { backoffDelay, CACHE_NAME, fetchWithRetry, loadModelBytes, readWithProgress, validatorOf, type FetchDeps } from './fetchModel';

/** Response whose body arrives in the given chunks (exercises the ReadableStream path). */
function chunked(chunks: number[][], headers: Record<string, string> = {}, status = 200): Response {
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      for (const ch of chunks) c.enqueue(new Uint8Array(ch));
      c.close();
    },
  });
  return new Response(body, { status, headers });
}

/** In-memory stand-in for the Cache API (only what loadModelBytes uses). */
function memoryCaches(): CacheStorage & { store: Map<string, Response> } {
  const store = new Map<string, Response>();
  const cache = {
    match: async (k: string) => store.get(k)?.clone(),
    put: async (k: string, r: Response) => void store.set(k, r.clone()),
  };
  return { store, open: async (name: string) => (expect(name).toBe(CACHE_NAME), cache) } as unknown as CacheStorage & { store: Map<string, Response> };
}

function deps(fetchImpl: FetchDeps['fetch'], caches?: CacheStorage): FetchDeps & { slept: number[] } {
  const slept: number[] = [];
  return { fetch: fetchImpl, sleep: async (ms) => void slept.push(ms), caches, slept };
}

describe('backoff', () => {
  it('doubles from 500 ms and is capped', () => {
    expect([0, 1, 2, 3, 4, 10].map((a) => backoffDelay(a))).toEqual([500, 1000, 2000, 4000, 8000, 8000]);
  });
});

describe('fetchWithRetry', () => {
  it('retries network errors and 5xx, then succeeds', async () => {
    let n = 0;
    const d = deps(async () => {
      n++;
      if (n === 1) throw new TypeError('Failed to fetch');
      if (n === 2) return new Response('busy', { status: 503 });
      return new Response('ok');
    });
    const retries: string[] = [];
    const res = await fetchWithRetry('m.onnx', { deps: d, onRetry: (r) => retries.push(`${r.attempt}:${r.reason}`) });
    expect(await res.text()).toBe('ok');
    expect(retries).toEqual(['1:Failed to fetch', '2:HTTP 503']);
    expect(d.slept).toEqual([500, 1000]);
  });
  it('fails fast on 404', async () => {
    const d = deps(async () => new Response('no', { status: 404 }));
    await expect(fetchWithRetry('m.onnx', { deps: d })).rejects.toThrow(/HTTP 404 while fetching m.onnx/);
    expect(d.slept).toEqual([]);
  });
  it('gives up after the retry budget', async () => {
    const d = deps(async () => new Response('x', { status: 500 }));
    await expect(fetchWithRetry('m.onnx', { deps: d, retries: 2 })).rejects.toThrow(/after 3 attempts: HTTP 500/);
  });
});

describe('readWithProgress', () => {
  it('counts bytes chunk by chunk against Content-Length', async () => {
    const seen: [number, number | null][] = [];
    const bytes = await readWithProgress(chunked([[1, 2], [3], [4, 5, 6]], { 'content-length': '6' }), (l, t) => seen.push([l, t]));
    expect(Array.from(bytes)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(seen).toEqual([[0, 6], [2, 6], [3, 6], [6, 6]]);
  });
  it('reports a null total without Content-Length', async () => {
    const seen: (number | null)[] = [];
    await readWithProgress(chunked([[1]]), (_, t) => seen.push(t));
    expect(seen.every((t) => t === null)).toBe(true);
  });
});

describe('loadModelBytes + Cache API', () => {
  const url = 'http://x/models/m.onnx';
  it('downloads, caches with version + validator, then serves from cache while the ETag matches', async () => {
    const caches = memoryCaches();
    let etag = '"v1"';
    const calls: string[] = [];
    const d = deps(async (_u, init) => {
      calls.push(init?.method ?? 'GET');
      return init?.method === 'HEAD' ? new Response(null, { headers: { etag } }) : chunked([[7, 7, 7]], { etag, 'content-length': '3' });
    }, caches);
    const first = await loadModelBytes(url, { versionOf: () => 'v1', deps: d });
    expect(first.fromCache).toBe(false);
    const stored = caches.store.get(url)!;
    expect(stored.headers.get('x-model-version')).toBe('v1');
    expect(stored.headers.get('x-validator')).toBe('etag:"v1"');

    const second = await loadModelBytes(url, { versionOf: () => 'v1', deps: d });
    expect(second.fromCache).toBe(true);
    expect(Array.from(second.bytes)).toEqual([7, 7, 7]);

    etag = '"v2"'; // new weights on the server
    const third = await loadModelBytes(url, { versionOf: () => 'v2', deps: d });
    expect(third).toMatchObject({ fromCache: false, replacedVersion: 'v1' });
    expect(caches.store.get(url)!.headers.get('x-model-version')).toBe('v2');
    expect(calls).toEqual(['GET', 'HEAD', 'HEAD', 'GET']);
  });
  it('uses the cache when offline', async () => {
    const caches = memoryCaches();
    caches.store.set(url, new Response(new Uint8Array([1]), { headers: { 'x-validator': 'etag:"a"' } }));
    const d = deps(async () => {
      throw new TypeError('offline');
    }, caches);
    expect(await loadModelBytes(url, { versionOf: () => 'x', deps: d })).toMatchObject({ fromCache: true });
  });
  it('works without the Cache API', async () => {
    const d = deps(async () => chunked([[1, 2]]));
    expect(await loadModelBytes(url, { versionOf: () => 'x', deps: d })).toMatchObject({ fromCache: false });
  });
  it('validatorOf prefers ETag, then Last-Modified + length', () => {
    expect(validatorOf(new Headers({ etag: 'W/"1"', 'last-modified': 'x' }))).toBe('etag:W/"1"');
    expect(validatorOf(new Headers({ 'last-modified': 'Mon', 'content-length': '5' }))).toBe('lm:Mon;len:5');
    expect(validatorOf(new Headers())).toBe('');
  });
});
