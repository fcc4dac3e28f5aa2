import { describe, expect, it } from 'vitest';
import { InferenceClient, WorkerError, type WorkerLike } from './client';
import type { Response } from './protocol';

class FakeWorker implements WorkerLike {
  sent: { msg: { id: number; type: string }; transfer: Transferable[] }[] = [];
  onmessage: ((ev: MessageEvent) => void) | null = null;
  onerror: ((ev: ErrorEvent) => void) | null = null;
  postMessage(msg: unknown, transfer: Transferable[]) {
    this.sent.push({ msg: msg as { id: number; type: string }, transfer });
  }
  reply(r: Response) {
    this.onmessage?.({ data: structuredClone(r) } as MessageEvent);
  }
}

describe('InferenceClient', () => {
  it('numbers requests, routes events, resolves on the final message', async () => {
    const w = new FakeWorker();
    const c = new InferenceClient(w);
    const events: string[] = [];
    const p1 = c.request({ type: 'generate', breed: 0, steps: 2, cfg: 3, seed: 1 }, (e) => events.push(`${e.type}${e.type === 'step' ? e.step : ''}`));
    const p2 = c.request({ type: 'bench', model: 'classifier', ep: 'wasm', runs: 1 });
    expect(w.sent.map((s) => s.msg.id)).toEqual([1, 2]);
    const px = new Uint8ClampedArray(4);
    w.reply({ type: 'step', id: 1, step: 1, steps: 2, stepMs: 1, preview: px, size: 1 });
    w.reply({ type: 'error', id: 2, message: 'no model' });
    w.reply({ type: 'step', id: 1, step: 2, steps: 2, stepMs: 1, preview: px, size: 1 });
    w.reply({ type: 'generated', id: 1, rgba: px, size: 1, stepMs: [1, 1], totalMs: 2, seed: 1 });
    await expect(p2).rejects.toThrow('no model');
    expect((await p1).type).toBe('generated');
    expect(events).toEqual(['step1', 'step2']);
    expect(c.inFlight).toBe(0);
  });
  it('transfers the classify pixel buffer', () => {
    const w = new FakeWorker();
    const c = new InferenceClient(w);
    const rgba = new Uint8ClampedArray(4);
    void c.request({ type: 'classify', rgba, width: 1, height: 1 });
    expect(w.sent[0].transfer).toEqual([rgba.buffer]);
  });
  it('fails everything in flight when the worker crashes', async () => {
    const w = new FakeWorker();
    const c = new InferenceClient(w);
    const p = c.request({ type: 'bench', model: 'classifier', ep: 'wasm', runs: 1 });
    w.onerror?.({ message: 'oops' } as ErrorEvent);
    await expect(p).rejects.toBeInstanceOf(WorkerError);
    await expect(p).rejects.toThrow(/worker crashed: oops/);
  });
  it('ignores malformed or unknown-id messages', () => {
    const w = new FakeWorker();
    const c = new InferenceClient(w);
    const err = console.error;
    console.error = () => {};
    w.onmessage?.({ data: 'garbage' } as MessageEvent);
    console.error = err;
    w.reply({ type: 'error', id: 99, message: 'late' });
    expect(c.inFlight).toBe(0);
  });
});
