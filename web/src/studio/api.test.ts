import { describe, expect, it } from 'vitest';
import { ApiError, parseWsMessage, queryString, StudioApi, tokenFromSearch, wsUrl, type FetchLike } from './api';

interface Call {
  url: string;
  init?: RequestInit;
}

function fakeFetch(reply: (c: Call) => { status: number; body: unknown }): { fetch: FetchLike; calls: Call[] } {
  const calls: Call[] = [];
  const fetch: FetchLike = async (url, init) => {
    const c = { url, init };
    calls.push(c);
    const r = reply(c);
    const text = typeof r.body === 'string' ? r.body : JSON.stringify(r.body);
    return new Response(text, { status: r.status, headers: { 'Content-Type': 'application/json' } });
  };
  return { fetch, calls };
}

describe('token and URLs', () => {
  it('reads ?token= from the page URL', () => {
    expect(tokenFromSearch('?token=abc&ep=wasm')).toBe('abc');
    expect(tokenFromSearch('?ep=wasm')).toBeNull();
    expect(tokenFromSearch('?token=')).toBeNull();
  });
  it('builds query strings from defined values only', () => {
    expect(queryString({ a: 1, b: undefined, c: '', d: null, e: 'x y' })).toBe('?a=1&e=x+y');
    expect(queryString({})).toBe('');
  });
  it('builds WebSocket URLs with since and token', () => {
    expect(wsUrl({ protocol: 'http:', host: '127.0.0.1:8080' }, 'run/3', 17, null)).toBe('ws://127.0.0.1:8080/api/ws?channel=run%2F3&since=17');
    expect(wsUrl({ protocol: 'https:', host: 'h' }, 'system', 0, 't k')).toBe('wss://h/api/ws?channel=system&since=0&token=t+k');
  });
  it('adds the token to resource URLs for <img>', () => {
    expect(new StudioApi().resourceUrl('/api/runs/3/artifacts/a.png')).toBe('/api/runs/3/artifacts/a.png');
    expect(new StudioApi({ token: 'x/y' }).resourceUrl('/a.png')).toBe('/a.png?token=x%2Fy');
    expect(new StudioApi({ token: 'x' }).resourceUrl('/a.png?v=1')).toBe('/a.png?v=1&token=x');
  });
});

describe('StudioApi', () => {
  it('sends the bearer token and the list parameters', async () => {
    const f = fakeFetch(() => ({ status: 200, body: { runs: [], limit: 20, offset: 40, total: 41 } }));
    const api = new StudioApi({ token: 'sekrit', fetch: f.fetch });
    const p = await api.runs({ filter: 'gen', limit: 20, offset: 40, sort: 'name', order: 'asc' });
    expect(p.total).toBe(41);
    expect(f.calls[0].url).toBe('/api/runs?filter=gen&limit=20&offset=40&sort=name&order=asc');
    expect((f.calls[0].init!.headers as Record<string, string>).Authorization).toBe('Bearer sekrit');
    expect(f.calls[0].init!.method).toBe('GET');
  });
  it('omits Authorization without a token and encodes path parts', async () => {
    const f = fakeFetch(() => ({ status: 200, body: { key: 'train/loss', total_points: 3, downsampled: false, buckets: 0, points: [] } }));
    const api = new StudioApi({ base: '/studio', fetch: f.fetch });
    await api.history(7, 'train/loss', 1000);
    expect(f.calls[0].url).toBe('/studio/api/runs/7/history?key=train%2Floss&max_points=1000');
    expect((f.calls[0].init!.headers as Record<string, string>).Authorization).toBeUndefined();
  });
  it('unwraps envelopes', async () => {
    const job = { id: 4, kind: 'generator', name: 'g', status: 'queued', created: 1, started: null, ended: null, run_id: null, run_dir: 'r', error: null, pid: null };
    const f = fakeFetch((c) => {
      if (c.url.startsWith('/api/predictions')) return { status: 404, body: {} };
      if (c.url.includes('/predictions')) return { status: 200, body: { predictions: [{ epoch: 1 }] } };
      if (c.url === '/api/jobs') return c.init?.method === 'POST' ? { status: 201, body: { job } } : { status: 200, body: { jobs: [job] } };
      if (c.url.endsWith('/cancel')) return { status: 200, body: { job: { ...job, status: 'cancelled' } } };
      if (c.url.startsWith('/api/configs/default')) return { status: 200, body: { kind: 'generator', config: '[train]\nsteps = 1\n' } };
      if (c.url.startsWith('/api/events')) return { status: 200, body: { events: [{ seq: 1, body: {} }] } };
      return { status: 500, body: { error: 'unexpected' } };
    });
    const api = new StudioApi({ fetch: f.fetch });
    expect(await api.predictions(3, { sample: 'Bengal#seed1' })).toEqual([{ epoch: 1 }]);
    expect(f.calls[0].url).toBe('/api/runs/3/predictions?sample=Bengal%23seed1');
    expect((await api.createJob({ kind: 'generator', config: 'x', set: ['a=1'], name: 'g' })).id).toBe(4);
    expect(JSON.parse(String(f.calls[1].init!.body))).toEqual({ kind: 'generator', config: 'x', set: ['a=1'], name: 'g' });
    expect((f.calls[1].init!.headers as Record<string, string>)['Content-Type']).toBe('application/json');
    expect(await api.jobs()).toHaveLength(1);
    expect((await api.cancelJob(4)).status).toBe('cancelled');
    expect(f.calls[3].url).toBe('/api/jobs/4/cancel');
    expect(await api.defaultConfig('generator')).toContain('steps = 1');
    expect(f.calls[4].url).toBe('/api/configs/default?kind=generator');
    expect(await api.events('run/3', 5)).toHaveLength(1);
    expect(f.calls[5].url).toBe('/api/events?channel=run%2F3&since=5');
  });
  it('turns {error} bodies into ApiError with the status', async () => {
    const f = fakeFetch(() => ({ status: 401, body: { error: 'missing or wrong bearer token' } }));
    const api = new StudioApi({ fetch: f.fetch });
    const e = await api.run(1).catch((x) => x);
    expect(e).toBeInstanceOf(ApiError);
    expect(e.status).toBe(401);
    expect(e.message).toBe('missing or wrong bearer token');
  });
  it('reports non-JSON error bodies and non-JSON successes', async () => {
    const f = fakeFetch((c) => (c.url.includes('runs') ? { status: 502, body: 'Bad Gateway' } : { status: 200, body: 'not json' }));
    const api = new StudioApi({ fetch: f.fetch });
    await expect(api.run(1)).rejects.toThrow('Bad Gateway');
    await expect(api.system()).rejects.toThrow('not JSON');
  });
  it('maps a 422 from validate to {valid: false, error}', async () => {
    const f = fakeFetch((c) =>
      JSON.parse(String(c.init!.body)).config.includes('steps = 0')
        ? { status: 422, body: { valid: false, error: 'config key `train.steps` = 0: must be in 1..1e9' } }
        : { status: 200, body: { valid: true, config: { train: { steps: 5 } } } },
    );
    const api = new StudioApi({ fetch: f.fetch });
    expect(await api.validateConfig('generator', '[train]\nsteps = 0\n')).toEqual({ valid: false, error: 'config key `train.steps` = 0: must be in 1..1e9' });
    expect(await api.validateConfig('generator', '[train]\nsteps = 5\n', ['predictions.every=2'])).toMatchObject({ valid: true });
    expect(JSON.parse(String(f.calls[1].init!.body)).set).toEqual(['predictions.every=2']);
  });
});

describe('WebSocket messages', () => {
  it('parses the four message types', () => {
    expect(parseWsMessage('{"type":"event","channel":"run/1","seq":3,"body":{"kind":"step"}}')).toEqual({ type: 'event', channel: 'run/1', seq: 3, body: { kind: 'step' } });
    expect(parseWsMessage('{"type":"heartbeat","seq":9}')).toEqual({ type: 'heartbeat', seq: 9 });
    expect(parseWsMessage('{"type":"resync","since":4}')).toEqual({ type: 'resync', since: 4 });
    expect(parseWsMessage('{"type":"error","error":"boom"}')).toEqual({ type: 'error', error: 'boom' });
  });
  it('rejects garbage', () => {
    expect(parseWsMessage('nope')).toBeNull();
    expect(parseWsMessage('[1]')).toBeNull();
    expect(parseWsMessage('{"type":"event","seq":"x"}')).toBeNull();
    expect(parseWsMessage('{"type":"other"}')).toBeNull();
    expect(parseWsMessage('null')).toBeNull();
  });
});
