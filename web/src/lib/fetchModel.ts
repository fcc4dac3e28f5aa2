// Model download: byte-level progress, retries with exponential backoff, and the Cache API so
// a reload does not re-download megabytes. Dependencies are injected so tests can run in Node.

export interface RetryInfo {
  attempt: number; // 1-based number of the attempt that failed
  delayMs: number;
  reason: string;
}

export interface FetchDeps {
  fetch: (input: string, init?: RequestInit) => Promise<Response>;
  sleep: (ms: number) => Promise<void>;
  caches?: CacheStorage;
}

export const defaultDeps = (): FetchDeps => ({
  fetch: (i, init) => fetch(i, init),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
  caches: typeof caches !== 'undefined' ? caches : undefined,
});

/** Delay before retry number `attempt` (0-based): 500 ms, 1 s, 2 s, ... capped. */
export function backoffDelay(attempt: number, baseMs = 500, maxMs = 8000): number {
  return Math.min(maxMs, baseMs * 2 ** attempt);
}

/** Only transient failures are worth retrying; a 404 will still be a 404 in a second. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

export class HttpError extends Error {
  constructor(readonly status: number, url: string) {
    super(`HTTP ${status} while fetching ${url}`);
  }
}

export async function fetchWithRetry(
  url: string,
  opts: { retries?: number; init?: RequestInit; onRetry?: (r: RetryInfo) => void; deps?: FetchDeps } = {},
): Promise<Response> {
  const deps = opts.deps ?? defaultDeps();
  const retries = opts.retries ?? 3;
  for (let attempt = 0; ; attempt++) {
    let reason: string;
    try {
      const res = await deps.fetch(url, opts.init);
      if (res.ok) return res;
      if (!isRetryableStatus(res.status)) throw new HttpError(res.status, url);
      reason = `HTTP ${res.status}`;
    } catch (e) {
      if (e instanceof HttpError) throw e;
      reason = e instanceof Error ? e.message : String(e);
    }
    if (attempt >= retries) throw new Error(`could not fetch ${url} after ${attempt + 1} attempts: ${reason}`);
    const delayMs = backoffDelay(attempt);
    opts.onRetry?.({ attempt: attempt + 1, delayMs, reason });
    await deps.sleep(delayMs);
  }
}

/** Reads a body chunk by chunk, reporting bytes so far (total = Content-Length or null). */
export async function readWithProgress(res: Response, onProgress?: (loaded: number, total: number | null) => void): Promise<Uint8Array> {
  const len = Number(res.headers.get('content-length'));
  // Compressed transfers report the compressed length; only trust it as an upper bound.
  const total = Number.isFinite(len) && len > 0 ? len : null;
  if (!res.body) {
    const buf = new Uint8Array(await res.arrayBuffer());
    onProgress?.(buf.length, total ?? buf.length);
    return buf;
  }
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  onProgress?.(0, total);
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    onProgress?.(loaded, total);
  }
  const out = new Uint8Array(loaded);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/** What identifies one server-side version of the file without downloading it. */
export function validatorOf(headers: Headers): string {
  const etag = headers.get('etag');
  if (etag) return `etag:${etag}`;
  const lm = headers.get('last-modified');
  const len = headers.get('content-length');
  return lm || len ? `lm:${lm ?? ''};len:${len ?? ''}` : '';
}

export const CACHE_NAME = 'tinycats-models-v1';

export interface LoadedBytes {
  bytes: Uint8Array;
  fromCache: boolean;
  /** model_version of the copy that was cached before, when it was replaced. */
  replacedVersion?: string;
}

/**
 * Cache entries are keyed by the model URL and record the model_version (read from the model's
 * metadata after loading) plus the server's validator (ETag / Last-Modified + length). On a
 * later load a HEAD request compares validators: if the server has a different file (e.g. new
 * weights with a new model_version), it is downloaded again and the entry replaced. Offline,
 * the cached copy is used as is.
 */
export async function loadModelBytes(
  url: string,
  opts: {
    versionOf: (bytes: Uint8Array) => string;
    onProgress?: (loaded: number, total: number | null) => void;
    onRetry?: (r: RetryInfo) => void;
    deps?: FetchDeps;
    useCache?: boolean;
  },
): Promise<LoadedBytes> {
  const deps = opts.deps ?? defaultDeps();
  let cache: Cache | undefined;
  if (opts.useCache !== false && deps.caches) {
    try {
      cache = await deps.caches.open(CACHE_NAME);
    } catch {
      cache = undefined; // e.g. storage disabled: just download every time
    }
  }
  let replacedVersion: string | undefined;
  if (cache) {
    const hit = await cache.match(url);
    if (hit) {
      const cachedValidator = hit.headers.get('x-validator') ?? '';
      let current: string | null = null;
      try {
        const head = await deps.fetch(url, { method: 'HEAD', cache: 'no-store' });
        if (head.ok) current = validatorOf(head.headers);
      } catch {
        current = null; // offline: trust the cache
      }
      if (current === null || current === '' || current === cachedValidator) {
        const bytes = new Uint8Array(await hit.arrayBuffer());
        opts.onProgress?.(bytes.length, bytes.length);
        return { bytes, fromCache: true };
      }
      replacedVersion = hit.headers.get('x-model-version') ?? undefined;
    }
  }
  const res = await fetchWithRetry(url, { init: { cache: 'no-store' }, onRetry: opts.onRetry, deps });
  const validator = validatorOf(res.headers);
  const bytes = await readWithProgress(res, opts.onProgress);
  if (cache) {
    const version = opts.versionOf(bytes);
    try {
      await cache.put(
        url,
        new Response(bytes.slice().buffer, {
          headers: { 'content-type': 'application/octet-stream', 'x-model-version': version, 'x-validator': validator },
        }),
      );
    } catch {
      // Quota exceeded etc.: caching is an optimisation, never a reason to fail the load.
    }
  }
  return { bytes, fromCache: false, replacedVersion };
}
