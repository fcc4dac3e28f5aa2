import { describe, expect, it } from 'vitest';
import { clampSteps, epText, generateReducer, initialModelState, modelReducer, parseSeed, parseUrlOptions, progressText, type GenerateForm } from './state';

describe('model loading state', () => {
  it('goes idle → loading → ready with readable progress', () => {
    let s = modelReducer(initialModelState, { type: 'start' });
    expect(progressText(s)).toBe('starting…');
    s = modelReducer(s, { type: 'progress', id: 1, model: 'classifier', loaded: 1024 * 1024, total: 4 * 1024 * 1024 });
    expect(progressText(s)).toBe('downloading 1.0 / 4.0 MB (25%)');
    s = modelReducer(s, { type: 'retry', id: 1, model: 'classifier', attempt: 1, delayMs: 500, reason: 'HTTP 503' });
    expect(s.retry).toMatch(/attempt 1 failed \(HTTP 503\); retrying in 0.5 s/);
    s = modelReducer(s, {
      type: 'loaded', id: 1, model: 'classifier', ep: 'wasm', threads: 2, bytes: 3 * 1024 * 1024, fromCache: true, loadMs: 120,
      info: { kind: 'classifier', labels: ['a'], imageSize: 224, modelVersion: 'v', runId: '' },
    });
    expect(s.status).toBe('ready');
    expect(s.retry).toBeUndefined();
    expect(progressText(s)).toBe('ready (3.0 MB, from cache, 120 ms)');
    expect(epText(s)).toBe('wasm (SIMD, 2 threads)');
  });
  it('records errors', () => {
    const s = modelReducer(initialModelState, { type: 'failed', message: 'HTTP 404' });
    expect(progressText(s)).toBe('failed: HTTP 404');
    expect(epText(s)).toBe('—');
  });
});

describe('generate form', () => {
  const base: GenerateForm = { breed: 0, steps: 30, cfg: 3, seed: 1, guidanceTo: 1, timeShift: 1, eta: 0 };
  it('clamps steps to 1..100 and cfg to 0..20, ignores blanks', () => {
    expect(generateReducer(base, { type: 'steps', value: '500' }).steps).toBe(100);
    expect(generateReducer(base, { type: 'steps', value: '0' }).steps).toBe(1);
    expect(generateReducer(base, { type: 'steps', value: '' }).steps).toBe(30);
    expect(generateReducer(base, { type: 'cfg', value: '-1' }).cfg).toBe(0);
    expect(generateReducer(base, { type: 'cfg', value: '2.5' }).cfg).toBe(2.5);
    expect(clampSteps(NaN)).toBe(1);
  });
  it('clamps the guidance interval end to 0..1, ignores blanks', () => {
    expect(generateReducer(base, { type: 'guidanceTo', value: '0.6' }).guidanceTo).toBe(0.6);
    expect(generateReducer(base, { type: 'guidanceTo', value: '2' }).guidanceTo).toBe(1);
    expect(generateReducer(base, { type: 'guidanceTo', value: '-0.5' }).guidanceTo).toBe(0);
    expect(generateReducer({ ...base, guidanceTo: 0.6 }, { type: 'guidanceTo', value: ' ' }).guidanceTo).toBe(0.6);
    expect(generateReducer(base, { type: 'timeShift', value: '4' }).timeShift).toBe(4);
    expect(generateReducer(base, { type: 'timeShift', value: '50' }).timeShift).toBe(10);
    expect(generateReducer(base, { type: 'timeShift', value: '0' }).timeShift).toBe(0.1);
    expect(generateReducer(base, { type: 'timeShift', value: 'x' }).timeShift).toBe(1);
    expect(generateReducer(base, { type: 'eta', value: '0.6' }).eta).toBe(0.6);
    expect(generateReducer(base, { type: 'eta', value: '3' }).eta).toBe(1);
    expect(generateReducer(base, { type: 'eta', value: '-1' }).eta).toBe(0);
    expect(generateReducer(base, { type: 'eta', value: 'x' }).eta).toBe(0);
    expect(generateReducer(base, { type: 'eta', value: ' ' })).toBe(base);
  });
  it('seeds are uint32; junk is ignored; new seed replaces', () => {
    expect(parseSeed(' 42 ')).toBe(42);
    expect(parseSeed('4294967296')).toBe(0);
    expect(parseSeed('-1')).toBeNull();
    expect(parseSeed('1e3')).toBeNull();
    expect(generateReducer(base, { type: 'seed', value: 'abc' }).seed).toBe(1);
    expect(generateReducer(base, { type: 'newSeed', seed: -1 }).seed).toBe(4294967295);
  });
});

describe('URL options', () => {
  it('parses ?ep, ?threads, ?nocache', () => {
    expect(parseUrlOptions('')).toEqual({ ep: 'auto', threads: undefined, noCache: false, foldQdq: true });
    expect(parseUrlOptions('?ep=WASM&threads=2&nocache=1&qdq=keep')).toEqual({ ep: 'wasm', threads: 2, noCache: true, foldQdq: false });
    expect(parseUrlOptions('?ep=cuda&threads=0&qdq=fold')).toEqual({ ep: 'auto', threads: undefined, noCache: false, foldQdq: true });
  });
});
