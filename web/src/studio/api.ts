// Studio API: types written from the server contract (crates/server/src/openapi.json plus the
// job/system endpoints) and a small typed fetch client. The app is served by `tinycats serve` at
// the same origin, so the base is '' (relative /api/...). `?token=XYZ` in the page URL is sent
// as `Authorization: Bearer XYZ` on fetches and as `token=XYZ` on the WebSocket URL.

export type RunKind = 'classifier' | 'generator';
export const RUN_KINDS: readonly RunKind[] = ['classifier', 'generator'];

export interface RunRow {
  id: number;
  experiment: string;
  name: string;
  kind: RunKind;
  status: string;
  /** Unix seconds (may carry a fraction). */
  started: number;
  ended: number | null;
  git_commit: string | null;
  data_hash: string | null;
  dir: string | null;
}

export type SortKey = 'name' | 'kind' | 'status' | 'started' | 'ended';
export const SORT_KEYS: readonly SortKey[] = ['name', 'kind', 'status', 'started', 'ended'];
export type SortOrder = 'asc' | 'desc';

export interface RunsPage {
  runs: RunRow[];
  limit: number;
  offset: number;
  /** Absent on older servers; the UI then pages without a total. */
  total?: number;
}

export interface RunsQuery {
  filter?: string;
  limit?: number;
  offset?: number;
  sort?: SortKey;
  order?: SortOrder;
}

export interface RunDetail {
  run: RunRow;
  params: [string, string][];
  metrics: string[];
  /** [key, step, value] */
  last_metrics: [string, number, number][];
}

export interface Point {
  step: number;
  value: number;
}

export interface History {
  key: string;
  total_points: number;
  downsampled: boolean;
  buckets: number;
  points: Point[];
}

export interface Prediction {
  epoch: number;
  step: number;
  sample_id: string;
  label: number;
  /** [class index, probability] pairs, best first. */
  top: [number, number][];
  /** URL path of a thumbnail (generators), e.g. /api/runs/3/artifacts/samples/…png. */
  image: string | null;
  /** Model time per sample in that interval (ms); null for rows from older stores. */
  latency_ms?: number | null;
}

export interface Artifact {
  path: string;
  sha256: string;
  size: number;
}

export interface StoredEvent {
  seq: number;
  body: unknown;
}

export interface Experiment {
  name: string;
  runs: number;
}

export type JobStatus = 'queued' | 'running' | 'finished' | 'failed' | 'cancelled';

export interface Job {
  id: number;
  kind: RunKind;
  name: string;
  status: JobStatus;
  created: number;
  started: number | null;
  ended: number | null;
  run_id: number | null;
  run_dir: string;
  error: string | null;
  pid: number | null;
}

export interface JobRequest {
  kind: RunKind;
  config: string;
  set?: string[];
  name?: string;
}

export type ValidateResult = { valid: true; config: Record<string, unknown> } | { valid: false; error: string };

export interface GpuInfo {
  name: string;
  util_percent: number;
  mem_used_bytes: number;
  mem_total_bytes: number;
}

export interface Snapshot {
  time: number;
  cpu: { cores: number; percent: number };
  memory: { total_bytes: number; used_bytes: number };
  disk: { path: string; total_bytes: number; free_bytes: number };
  gpus: GpuInfo[];
  gpu_note: string | null;
  jobs: { id: number; status: string; pid: number | null }[];
}

/** Messages on /api/ws. */
export type WsMessage =
  | { type: 'event'; channel: string; seq: number; body: unknown }
  | { type: 'heartbeat'; seq: number }
  | { type: 'resync'; since: number }
  | { type: 'error'; error: string };

/** Parses one WebSocket text frame; null for anything that is not a known message. */
export function parseWsMessage(text: string): WsMessage | null {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    return null;
  }
  if (!m || typeof m !== 'object') return null;
  const o = m as Record<string, unknown>;
  const num = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
  switch (o.type) {
    case 'event':
      return num(o.seq) ? { type: 'event', channel: String(o.channel ?? ''), seq: o.seq as number, body: o.body } : null;
    case 'heartbeat':
      return num(o.seq) ? { type: 'heartbeat', seq: o.seq as number } : null;
    case 'resync':
      return num(o.since) ? { type: 'resync', since: o.since as number } : null;
    case 'error':
      return { type: 'error', error: String(o.error ?? 'unknown error') };
    default:
      return null;
  }
}

/** An HTTP error with the server's `{error}` message (422 for invalid configs, 401 without token). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly body?: unknown,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** The `?token=` page parameter, or null. */
export function tokenFromSearch(search: string): string | null {
  const t = new URLSearchParams(search).get('token');
  return t ? t : null;
}

/** `?a=1&b=x` from the defined, non-empty values (keeps insertion order). */
export function queryString(params: Record<string, string | number | boolean | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** ws(s)://host/api/ws?channel=…&since=…[&token=…] for a page at `loc`. */
export function wsUrl(loc: { protocol: string; host: string }, channel: string, since: number, token: string | null, base = ''): string {
  const proto = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${loc.host}${base}/api/ws${queryString({ channel, since, token })}`;
}

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export interface ApiOptions {
  base?: string;
  token?: string | null;
  fetch?: FetchLike;
}

const enc = encodeURIComponent;

export class StudioApi {
  readonly base: string;
  readonly token: string | null;
  private readonly fetchFn: FetchLike;

  constructor(opts: ApiOptions = {}) {
    this.base = opts.base ?? '';
    this.token = opts.token ?? null;
    this.fetchFn = opts.fetch ?? ((i, init) => fetch(i, init));
  }

  /** Headers for a request (the bearer token when there is one). */
  headers(json = false): Record<string, string> {
    const h: Record<string, string> = { Accept: 'application/json' };
    if (json) h['Content-Type'] = 'application/json';
    if (this.token) h.Authorization = `Bearer ${this.token}`;
    return h;
  }

  async request<T>(method: 'GET' | 'POST', path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const res = await this.fetchFn(this.base + path, {
      method,
      headers: this.headers(body !== undefined),
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
    const text = await res.text();
    let data: unknown = undefined;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = undefined;
      }
    }
    if (!res.ok) {
      const msg = data && typeof data === 'object' && 'error' in data ? String((data as { error: unknown }).error) : text.trim() || `HTTP ${res.status}`;
      throw new ApiError(res.status, msg, data);
    }
    if (data === undefined) throw new ApiError(res.status, `${path}: response is not JSON`);
    return data as T;
  }

  get<T>(path: string, signal?: AbortSignal): Promise<T> {
    return this.request<T>('GET', path, undefined, signal);
  }

  post<T>(path: string, body: unknown, signal?: AbortSignal): Promise<T> {
    return this.request<T>('POST', path, body, signal);
  }

  runs(q: RunsQuery = {}, signal?: AbortSignal): Promise<RunsPage> {
    return this.get(`/api/runs${queryString({ filter: q.filter, limit: q.limit, offset: q.offset, sort: q.sort, order: q.order })}`, signal);
  }

  run(id: number | string, signal?: AbortSignal): Promise<RunDetail> {
    return this.get(`/api/runs/${enc(String(id))}`, signal);
  }

  history(id: number | string, key: string, maxPoints = 1000, signal?: AbortSignal): Promise<History> {
    return this.get(`/api/runs/${enc(String(id))}/history${queryString({ key, max_points: maxPoints })}`, signal);
  }

  async predictions(id: number | string, q: { epoch?: number; sample?: string } = {}, signal?: AbortSignal): Promise<Prediction[]> {
    const r = await this.get<{ predictions: Prediction[] }>(`/api/runs/${enc(String(id))}/predictions${queryString({ epoch: q.epoch, sample: q.sample })}`, signal);
    return r.predictions;
  }

  async artifacts(id: number | string, signal?: AbortSignal): Promise<Artifact[]> {
    return (await this.get<{ artifacts: Artifact[] }>(`/api/runs/${enc(String(id))}/artifacts`, signal)).artifacts;
  }

  async events(channel: string, since = 0, signal?: AbortSignal): Promise<StoredEvent[]> {
    return (await this.get<{ events: StoredEvent[] }>(`/api/events${queryString({ channel, since })}`, signal)).events;
  }

  async experiments(signal?: AbortSignal): Promise<Experiment[]> {
    return (await this.get<{ experiments: Experiment[] }>('/api/experiments', signal)).experiments;
  }

  /** 200 → valid; 422 → {valid: false, error} (any other failure throws). */
  async validateConfig(kind: RunKind, config: string, set: string[] = [], signal?: AbortSignal): Promise<ValidateResult> {
    try {
      return await this.post<ValidateResult>('/api/configs/validate', { kind, config, set }, signal);
    } catch (e) {
      if (e instanceof ApiError && e.status === 422) return { valid: false, error: e.message };
      throw e;
    }
  }

  async defaultConfig(kind: RunKind, signal?: AbortSignal): Promise<string> {
    return (await this.get<{ kind: string; config: string }>(`/api/configs/default${queryString({ kind })}`, signal)).config;
  }

  async createJob(req: JobRequest, signal?: AbortSignal): Promise<Job> {
    return (await this.post<{ job: Job }>('/api/jobs', req, signal)).job;
  }

  async jobs(signal?: AbortSignal): Promise<Job[]> {
    return (await this.get<{ jobs: Job[] }>('/api/jobs', signal)).jobs;
  }

  async job(id: number, signal?: AbortSignal): Promise<Job> {
    return (await this.get<{ job: Job }>(`/api/jobs/${id}`, signal)).job;
  }

  async cancelJob(id: number, signal?: AbortSignal): Promise<Job> {
    return (await this.post<{ job: Job }>(`/api/jobs/${id}/cancel`, {}, signal)).job;
  }

  system(signal?: AbortSignal): Promise<Snapshot> {
    return this.get('/api/system', signal);
  }

  /** A same-origin resource URL (e.g. a prediction thumbnail) with `token=` when a token is set,
   *  since <img> cannot send an Authorization header. */
  resourceUrl(path: string): string {
    if (!this.token) return this.base + path;
    return `${this.base}${path}${path.includes('?') ? '&' : '?'}token=${enc(this.token)}`;
  }

  /** The WebSocket URL for a channel, for a page at `loc`. */
  wsUrl(loc: { protocol: string; host: string }, channel: string, since: number): string {
    return wsUrl(loc, channel, since, this.token, this.base);
  }
}

/** The app's client: same origin, token from the page URL. */
export const api = new StudioApi({ base: '', token: typeof location === 'undefined' ? null : tokenFromSearch(location.search) });

export const isActiveJob = (s: JobStatus | string) => s === 'queued' || s === 'running';
