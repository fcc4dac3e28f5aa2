import { describe, expect, it } from 'vitest';
import type { History } from './api';
import { defaultKey, downsampleText, initialLiveRun, interpretEvent, liveRunReducer, mergePoints, metricKeys, thinForDisplay } from './series';

const pts = (...steps: [number, number][]) => steps.map(([step, value]) => ({ step, value }));

describe('mergePoints', () => {
  it('appends in order (fast path) and keeps the base array when nothing arrives', () => {
    const a = pts([1, 1], [2, 2]);
    expect(mergePoints(a, pts([3, 3], [4, 4]))).toEqual(pts([1, 1], [2, 2], [3, 3], [4, 4]));
    expect(mergePoints(a, [])).toBe(a);
  });
  it('dedupes by step (replayed events), incoming wins unless keepBase', () => {
    const a = pts([1, 1], [2, 2], [3, 3]);
    expect(mergePoints(a, pts([2, 20], [3, 30], [4, 40]))).toEqual(pts([1, 1], [2, 20], [3, 30], [4, 40]));
    expect(mergePoints(a, pts([0, 0], [2, 20]), true)).toEqual(pts([0, 0], [1, 1], [2, 2], [3, 3]));
  });
  it('sorts out-of-order input and drops non-finite values', () => {
    expect(mergePoints([], pts([5, 5], [1, 1], [3, NaN], [2, Infinity]))).toEqual(pts([1, 1], [5, 5]));
  });
});

describe('events → series', () => {
  it('maps step, epoch, predictions and status events', () => {
    expect(interpretEvent({ kind: 'step', data: { epoch: 0, step: 5, loss: 1.5, lr: 1e-4 } }).metrics).toEqual([
      ['train/loss', 5, 1.5],
      ['lr', 5, 1e-4],
    ]);
    const e = interpretEvent({ kind: 'epoch', data: { epoch: 1, step: 40, train_loss: 0.9, train_acc: 0.6, val_loss: 1.1, val_acc: 0.55, val_macro_f1: 0.5, lr: 1e-3, seconds: 3, train_images_per_s: 120 } });
    expect(Object.fromEntries(e.metrics.map(([k, , v]) => [k, v]))).toEqual({ 'train/loss': 0.9, 'train/acc': 0.6, 'val/loss': 1.1, 'val/acc': 0.55, 'val/macro_f1': 0.5, lr: 1e-3, images_per_s: 120 });
    expect(e.metrics.every(([, s]) => s === 40)).toBe(true);
    expect(interpretEvent({ kind: 'predictions', data: { epoch: 3, count: 16 } }).predictions).toEqual({ epoch: 3, count: 16 });
    expect(interpretEvent({ kind: 'status', data: { status: 'finished' } }).status).toBe('finished');
    expect(interpretEvent({ kind: 'checkpoint', path: '/x', best: false })).toEqual({ metrics: [] });
    expect(interpretEvent(null)).toEqual({ metrics: [] });
    expect(interpretEvent({ kind: 'step', data: { loss: 1 } }).metrics).toEqual([]);
  });
  it('accumulates live points and ignores replayed ones', () => {
    const step = (s: number, loss: number) => ({ kind: 'step', data: { epoch: 0, step: s, loss, lr: 0.1 } });
    let s = liveRunReducer(initialLiveRun, { type: 'events', bodies: [step(5, 2), step(10, 1.5)] });
    expect(s.series['train/loss']).toEqual(pts([5, 2], [10, 1.5]));
    // A reconnect with since=0 replays everything: still one point per step.
    s = liveRunReducer(s, { type: 'events', bodies: [step(5, 2), step(10, 1.5), step(15, 1.2)] });
    expect(s.series['train/loss'].map((p) => p.step)).toEqual([5, 10, 15]);
    expect(s.lastStep).toBe(15);
    // An epoch event at the same step as a step event overrides it (as the store does).
    s = liveRunReducer(s, { type: 'events', bodies: [step(20, 1.1), { kind: 'epoch', data: { step: 20, train_loss: 1.0, val_loss: 1.3 } }] });
    expect(s.series['train/loss'].at(-1)).toEqual({ step: 20, value: 1.0 });
    expect(s.series['val/loss']).toEqual(pts([20, 1.3]));
    const before = s;
    expect(liveRunReducer(s, { type: 'events', bodies: [{ kind: 'checkpoint' }] })).toBe(before);
    s = liveRunReducer(s, { type: 'events', bodies: [{ kind: 'predictions', data: { epoch: 20, count: 12 } }, { kind: 'status', data: { status: 'finished' } }] });
    expect([s.predictionsVersion, s.lastPredictionEpoch, s.status]).toEqual([1, 20, 'finished']);
  });
  it('merges history under live points and keeps its downsampled flag', () => {
    let s = liveRunReducer(initialLiveRun, { type: 'events', bodies: [{ kind: 'step', data: { step: 30, loss: 3 } }] });
    const h: History = { key: 'train/loss', total_points: 5000, downsampled: true, buckets: 500, points: pts([10, 1], [20, 2], [30, 99]) };
    s = liveRunReducer(s, { type: 'history', history: h });
    expect(s.series['train/loss']).toEqual(pts([10, 1], [20, 2], [30, 3]));
    expect(downsampleText(s.history['train/loss'])).toBe('downsampled: 3 of 5000 points');
    expect(downsampleText({ ...h, downsampled: false })).toBeNull();
    expect(downsampleText(undefined)).toBeNull();
    expect(liveRunReducer(s, { type: 'reset' })).toBe(initialLiveRun);
  });
});

describe('metric keys', () => {
  it('orders the picker and falls back when the pick is gone', () => {
    const keys = metricKeys(['val/acc', 'lr', 'images_per_s'], { 'train/loss': pts([1, 1]), 'empty/key': [] });
    expect(keys).toEqual(['train/loss', 'val/acc', 'lr', 'images_per_s']);
    expect(defaultKey(keys, null)).toBe('train/loss');
    expect(defaultKey(keys, 'lr')).toBe('lr');
    expect(defaultKey(keys, 'gone')).toBe('train/loss');
    expect(defaultKey([], null)).toBeNull();
  });
});

describe('thinForDisplay', () => {
  it('returns short series untouched', () => {
    const p = pts([1, 1], [2, 2]);
    expect(thinForDisplay(p, 10)).toBe(p);
  });
  it('keeps the ends and every bucket extreme (spikes survive)', () => {
    const p = Array.from({ length: 10_000 }, (_, i) => ({ step: i, value: i === 5000 ? 100 : Math.sin(i / 50) }));
    const t = thinForDisplay(p, 500);
    expect(t.length).toBeLessThanOrEqual(500);
    expect(t[0]).toBe(p[0]);
    expect(t.at(-1)).toBe(p.at(-1));
    expect(t.some((x) => x.value === 100)).toBe(true);
    for (let i = 1; i < t.length; i++) expect(t[i].step).toBeGreaterThan(t[i - 1].step);
  });
});
