// Metric series of one run: REST history (possibly downsampled on the server) merged with the
// live points that the run's WebSocket channel delivers. Points are kept sorted by step with one
// value per step, so replays (since=0) and reconnects never duplicate a point.

import type { History, Point } from './api';

export type SeriesMap = Record<string, Point[]>;

/** `incoming` merged into `base`: sorted by step, one point per step. On equal steps the
 *  incoming value wins unless `keepBase` (used when history arrives after live points). */
export function mergePoints(base: Point[], incoming: Point[], keepBase = false): Point[] {
  if (incoming.length === 0) return base;
  const clean = incoming.filter((p) => Number.isFinite(p.step) && Number.isFinite(p.value));
  if (clean.length === 0) return base;
  // Fast path: strictly increasing steps after the last point (the live case).
  let sorted = true;
  for (let i = 1; i < clean.length; i++) if (clean[i].step <= clean[i - 1].step) sorted = false;
  if (sorted && (base.length === 0 || clean[0].step > base[base.length - 1].step)) return base.concat(clean);
  const m = new Map<number, number>();
  for (const p of base) m.set(p.step, p.value);
  for (const p of clean) if (!(keepBase && m.has(p.step))) m.set(p.step, p.value);
  return [...m.entries()].sort((a, b) => a[0] - b[0]).map(([step, value]) => ({ step, value }));
}

/** What one stored event body (`{kind, data}`) means for the run page. */
export interface EventEffect {
  /** [key, step, value] */
  metrics: [string, number, number][];
  status?: string;
  predictions?: { epoch: number; count: number };
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** Epoch event fields → metric keys (as the run store names them). */
const EPOCH_KEYS: [string, string][] = [
  ['train_loss', 'train/loss'],
  ['train_acc', 'train/acc'],
  ['val_loss', 'val/loss'],
  ['val_acc', 'val/acc'],
  ['val_macro_f1', 'val/macro_f1'],
  ['lr', 'lr'],
  ['train_images_per_s', 'images_per_s'],
];

export function interpretEvent(body: unknown): EventEffect {
  const out: EventEffect = { metrics: [] };
  if (!body || typeof body !== 'object') return out;
  const b = body as { kind?: unknown; data?: Record<string, unknown>; status?: unknown };
  const d = b.data && typeof b.data === 'object' ? b.data : {};
  switch (b.kind) {
    case 'step': {
      const step = num(d.step);
      if (step === null) break;
      const loss = num(d.loss);
      const lr = num(d.lr);
      if (loss !== null) out.metrics.push(['train/loss', step, loss]);
      if (lr !== null) out.metrics.push(['lr', step, lr]);
      break;
    }
    case 'epoch': {
      const step = num(d.step);
      if (step === null) break;
      for (const [field, key] of EPOCH_KEYS) {
        const v = num(d[field]);
        if (v !== null) out.metrics.push([key, step, v]);
      }
      break;
    }
    case 'predictions':
      out.predictions = { epoch: num(d.epoch) ?? -1, count: num(d.count) ?? 0 };
      break;
    case 'status': {
      const s = typeof d.status === 'string' ? d.status : typeof b.status === 'string' ? b.status : null;
      if (s) out.status = s;
      break;
    }
  }
  return out;
}

export interface LiveRunState {
  series: SeriesMap;
  /** Status from the last status event (null until one arrives). */
  status: string | null;
  /** Bumped on every predictions event: the page refetches when it changes. */
  predictionsVersion: number;
  lastPredictionEpoch: number | null;
  /** Highest step seen in any event. */
  lastStep: number | null;
  /** History responses by key (for the downsampled flag). */
  history: Record<string, History>;
}

export const initialLiveRun: LiveRunState = { series: {}, status: null, predictionsVersion: 0, lastPredictionEpoch: null, lastStep: null, history: {} };

export type LiveRunAction = { type: 'events'; bodies: unknown[] } | { type: 'history'; history: History } | { type: 'reset' };

export function liveRunReducer(s: LiveRunState, a: LiveRunAction): LiveRunState {
  switch (a.type) {
    case 'reset':
      return initialLiveRun;
    case 'history': {
      const h = a.history;
      const merged = mergePoints(s.series[h.key] ?? [], h.points, true);
      return { ...s, series: { ...s.series, [h.key]: merged }, history: { ...s.history, [h.key]: h } };
    }
    case 'events': {
      const add: Record<string, Point[]> = {};
      let { status, predictionsVersion, lastPredictionEpoch, lastStep } = s;
      for (const body of a.bodies) {
        const e = interpretEvent(body);
        for (const [key, step, value] of e.metrics) {
          (add[key] ??= []).push({ step, value });
          lastStep = lastStep === null ? step : Math.max(lastStep, step);
        }
        if (e.status) status = e.status;
        if (e.predictions) {
          predictionsVersion += 1;
          lastPredictionEpoch = e.predictions.epoch;
        }
      }
      const keys = Object.keys(add);
      if (keys.length === 0 && status === s.status && predictionsVersion === s.predictionsVersion) return s;
      const series = keys.length ? { ...s.series } : s.series;
      // Several events in one batch may share a step (a step and an epoch event): later wins.
      for (const k of keys) series[k] = mergePoints(series[k] ?? [], mergePoints([], add[k]));
      return { ...s, series, status, predictionsVersion, lastPredictionEpoch, lastStep };
    }
  }
}

/** Metric keys to offer: the run's stored keys plus any that arrived live, train/loss first. */
export function metricKeys(stored: string[], live: SeriesMap): string[] {
  const all = new Set([...stored, ...Object.keys(live).filter((k) => live[k].length > 0)]);
  const pref = ['train/loss', 'val/loss', 'val/acc', 'train/acc', 'val/macro_f1', 'lr'];
  return [...all].sort((a, b) => {
    const ia = pref.indexOf(a);
    const ib = pref.indexOf(b);
    if (ia !== ib) return (ia === -1 ? 99 : ia) - (ib === -1 ? 99 : ib);
    return a.localeCompare(b);
  });
}

/** The key to show when the user has not picked one (or the pick is gone). */
export function defaultKey(keys: string[], current: string | null): string | null {
  if (current && keys.includes(current)) return current;
  return keys[0] ?? current;
}

/** "downsampled: 1000 of 25000 points" when the server thinned the history, else null. */
export function downsampleText(h: History | undefined): string | null {
  if (!h || !h.downsampled) return null;
  return `downsampled: ${h.points.length} of ${h.total_points} points`;
}

/** At most `max` points for drawing: min and max per bucket of steps (order kept), first and last
 *  always included, so spikes survive the thinning. */
export function thinForDisplay(points: Point[], max = 1200): Point[] {
  if (points.length <= max || max < 4) return points;
  const buckets = Math.floor((max - 2) / 2);
  const inner = points.slice(1, -1);
  const size = inner.length / buckets;
  const out: Point[] = [points[0]];
  for (let b = 0; b < buckets; b++) {
    const lo = Math.floor(b * size);
    const hi = Math.min(inner.length, Math.floor((b + 1) * size));
    if (hi <= lo) continue;
    let mi = lo;
    let ma = lo;
    for (let i = lo; i < hi; i++) {
      if (inner[i].value < inner[mi].value) mi = i;
      if (inner[i].value > inner[ma].value) ma = i;
    }
    if (mi === ma) out.push(inner[mi]);
    else if (mi < ma) out.push(inner[mi], inner[ma]);
    else out.push(inner[ma], inner[mi]);
  }
  out.push(points[points.length - 1]);
  return out;
}
