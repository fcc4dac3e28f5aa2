import { describe, expect, it } from 'vitest';
import { isFinal, parseRequest, parseResponse, ProtocolError, transferables, type Request, type Response } from './protocol';

// structuredClone is what postMessage does to our messages.
const wire = <T>(m: T): T => structuredClone(m);

describe('requests', () => {
  const good: Request[] = [
    { type: 'load', id: 1, model: 'classifier', url: 'http://x/m.onnx', ep: 'wasm', ortBase: 'http://x/ort/', threads: 2, useCache: true, foldQdq: false },
    { type: 'classify', id: 2, rgba: new Uint8ClampedArray(2 * 2 * 4), width: 2, height: 2 },
    { type: 'generate', id: 3, breed: 1, steps: 4, cfg: 3, seed: 4294967295 },
    { type: 'generate', id: 5, breed: 1, steps: 4, cfg: 8, seed: 7, guidanceTo: 0.6 },
    { type: 'generate', id: 6, breed: 1, steps: 4, cfg: 8, seed: 7, guidanceTo: 0.6, timeShift: 4, eta: 0.6 },
    { type: 'bench', id: 4, model: 'generator', ep: 'webgpu', runs: 10 },
  ];
  it.each(good.map((m) => [m.type, m]))('%s survives the structured clone and parses', (_, m) => {
    const back = parseRequest(wire(m));
    expect(back).toEqual(m);
    if (back.type === 'classify') expect(back.rgba).toBeInstanceOf(Uint8ClampedArray);
  });
  it.each([
    ['not an object', 42, /not an object/],
    ['unknown type', { type: 'explode', id: 1 }, /unknown request type/],
    ['missing id', { type: 'bench', model: 'classifier', ep: 'wasm', runs: 1 }, /"id"/],
    ['bad model', { type: 'load', id: 1, model: 'dog', url: 'u', ep: 'wasm', ortBase: 'o' }, /"model" must be one of/],
    ['bad ep', { type: 'load', id: 1, model: 'classifier', url: 'u', ep: 'cuda', ortBase: 'o' }, /"ep"/],
    ['steps 0', { type: 'generate', id: 1, breed: 0, steps: 0, cfg: 1, seed: 1 }, /"steps" must be an integer in 1..100/],
    ['steps 101', { type: 'generate', id: 1, breed: 0, steps: 101, cfg: 1, seed: 1 }, /"steps"/],
    ['fractional seed', { type: 'generate', id: 1, breed: 0, steps: 4, cfg: 1, seed: 1.5 }, /"seed"/],
    ['NaN cfg', { type: 'generate', id: 1, breed: 0, steps: 4, cfg: NaN, seed: 1 }, /"cfg"/],
    ['guidanceTo 1.5', { type: 'generate', id: 1, breed: 0, steps: 4, cfg: 1, seed: 1, guidanceTo: 1.5 }, /"guidanceTo" must be in 0..1/],
    ['eta 2', { type: 'generate', id: 1, breed: 0, steps: 4, cfg: 1, seed: 1, eta: 2 }, /"eta" must be in 0..1/],
    ['timeShift 0', { type: 'generate', id: 1, breed: 0, steps: 4, cfg: 1, seed: 1, timeShift: 0 }, /"timeShift" must be in 0.1..10/],
    ['rgba size', { type: 'classify', id: 1, rgba: new Uint8ClampedArray(3), width: 1, height: 1 }, /width·height·4/],
    ['rgba type', { type: 'classify', id: 1, rgba: [0, 0, 0, 0], width: 1, height: 1 }, /Uint8ClampedArray/],
  ])('rejects %s', (_, msg, re) => {
    expect(() => parseRequest(msg)).toThrow(ProtocolError);
    expect(() => parseRequest(msg)).toThrow(re);
  });
});

describe('responses', () => {
  it('round-trip with typed payloads and final/intermediate split', () => {
    const msgs: Response[] = [
      { type: 'progress', id: 1, model: 'generator', loaded: 10, total: null },
      { type: 'step', id: 2, step: 1, steps: 4, stepMs: 12, preview: new Uint8ClampedArray(16), size: 2 },
      { type: 'generated', id: 2, rgba: new Uint8ClampedArray(16), size: 2, stepMs: [1, 2], totalMs: 3, seed: 9 },
      { type: 'classified', id: 3, probs: new Float32Array([0.2, 0.8]), ms: 5 },
      { type: 'error', id: 4, message: 'boom' },
    ];
    for (const m of msgs) expect(parseResponse(wire(m))).toEqual(m);
    expect(msgs.map(isFinal)).toEqual([false, false, true, true, true]);
  });
  it('rejects malformed responses', () => {
    expect(() => parseResponse({ type: 'step', id: 1, preview: [1, 2] })).toThrow(/preview/);
    expect(() => parseResponse({ type: 'nope', id: 1 })).toThrow(/"type"/);
    expect(() => parseResponse({ type: 'error', id: 1 })).toThrow(/"message"/);
  });
  it('transfers pixel buffers instead of copying them', () => {
    const preview = new Uint8ClampedArray(4);
    expect(transferables({ type: 'step', id: 1, step: 1, steps: 1, stepMs: 1, preview, size: 1 })).toEqual([preview.buffer]);
    expect(transferables({ type: 'error', id: 1, message: '' })).toEqual([]);
  });
});
