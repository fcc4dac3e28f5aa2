import { describe, expect, it } from 'vitest';
import type { StoredEvent } from './api';
import { backoffDelay, LiveChannel, resyncSince, type LiveStatus, type SocketLike, type Timers } from './live';

class FakeSocket implements SocketLike {
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: unknown) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  closed = false;
  constructor(readonly url: string) {}
  open() {
    this.onopen?.({});
  }
  send(m: object) {
    this.onmessage?.({ data: JSON.stringify(m) });
  }
  event(seq: number, body: unknown = { kind: 'step', data: { step: seq, loss: 1 } }) {
    this.send({ type: 'event', channel: 'run/1', seq, body });
  }
  /** The server closing (or the network dropping). */
  drop() {
    this.onerror?.({});
    this.onclose?.({});
  }
  close() {
    this.closed = true;
    queueMicrotask(() => this.onclose?.({}));
  }
}

class FakeTimers implements Timers {
  now = 0;
  private q: { at: number; fn: () => void; id: number }[] = [];
  private next = 1;
  set(fn: () => void, ms: number) {
    const id = this.next++;
    this.q.push({ at: this.now + ms, fn, id });
    return id;
  }
  clear(h: unknown) {
    this.q = this.q.filter((t) => t.id !== h);
  }
  get pending() {
    return this.q.length;
  }
  advance(ms: number) {
    const end = this.now + ms;
    for (;;) {
      this.q.sort((a, b) => a.at - b.at);
      const t = this.q[0];
      if (!t || t.at > end) break;
      this.q.shift();
      this.now = t.at;
      t.fn();
    }
    this.now = end;
  }
}

function setup(opts: { batchMs?: number; since?: number } = {}) {
  const sockets: FakeSocket[] = [];
  const got: StoredEvent[] = [];
  const batches: number[] = [];
  const states: LiveStatus[] = [];
  const timers = new FakeTimers();
  const ch = new LiveChannel({
    url: (since) => `ws://h/api/ws?channel=run%2F1&since=${since}`,
    connect: (url) => {
      const s = new FakeSocket(url);
      sockets.push(s);
      return s;
    },
    onEvents: (ev) => {
      got.push(...ev);
      batches.push(ev.length);
    },
    onStatus: (s) => states.push(s),
    timers,
    ...opts,
  });
  return { ch, sockets, got, batches, states, timers, last: () => sockets[sockets.length - 1] };
}

const flush = () => new Promise((r) => setTimeout(r, 0));

describe('backoff', () => {
  it('doubles from 0.5 s and caps at 8 s', () => {
    expect([0, 1, 2, 3, 4, 5, 9].map((a) => backoffDelay(a))).toEqual([500, 1000, 2000, 4000, 8000, 8000, 8000]);
  });
  it('never resyncs past what we have', () => {
    expect(resyncSince(10, 7)).toBe(7);
    expect(resyncSince(10, 12)).toBe(10);
    expect(resyncSince(0, -3)).toBe(0);
  });
});

describe('LiveChannel', () => {
  it('connects from since, reports state, delivers events and tracks the last seq', () => {
    const t = setup();
    t.ch.start();
    expect(t.ch.status.state).toBe('connecting');
    expect(t.last().url).toContain('since=0');
    t.last().open();
    expect(t.ch.status.state).toBe('open');
    t.last().event(1);
    t.last().event(2);
    t.last().send({ type: 'heartbeat', seq: 2 });
    expect(t.got.map((e) => e.seq)).toEqual([1, 2]);
    expect(t.ch.status.lastSeq).toBe(2);
    expect(t.ch.status.heartbeatSeq).toBe(2);
  });
  it('reconnects with since=<last seq> after a drop, with exponential backoff, and drops replays', () => {
    const t = setup();
    t.ch.start();
    t.last().open();
    t.last().event(1);
    t.last().event(2);
    t.last().drop();
    expect(t.ch.status.state).toBe('reconnecting');
    expect(t.ch.status.retryInMs).toBe(500);
    t.timers.advance(499);
    expect(t.sockets).toHaveLength(1);
    t.timers.advance(1);
    expect(t.sockets).toHaveLength(2);
    expect(t.last().url).toContain('since=2');
    // The connection fails twice more: 1 s, then 2 s.
    t.last().drop();
    expect(t.ch.status.retryInMs).toBe(1000);
    t.timers.advance(1000);
    t.last().drop();
    expect(t.ch.status.retryInMs).toBe(2000);
    t.timers.advance(2000);
    expect(t.sockets).toHaveLength(4);
    t.last().open();
    // The server replays an already-seen event (e.g. since was older): dropped.
    t.last().event(2);
    t.last().event(3);
    expect(t.got.map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(t.ch.status.attempt).toBe(0); // a message resets the backoff
    t.last().drop();
    expect(t.ch.status.retryInMs).toBe(500);
    expect(t.ch.status.connections).toBe(2);
  });
  it('caps the backoff at 8 s', () => {
    const t = setup();
    t.ch.start();
    const delays: number[] = [];
    for (let i = 0; i < 7; i++) {
      t.last().drop();
      delays.push(t.ch.status.retryInMs!);
      t.timers.advance(t.ch.status.retryInMs!);
    }
    expect(delays).toEqual([500, 1000, 2000, 4000, 8000, 8000, 8000]);
  });
  it('on resync reconnects at once from the server position', async () => {
    const t = setup();
    t.ch.start();
    t.last().open();
    for (let s = 1; s <= 5; s++) t.last().event(s);
    t.last().send({ type: 'resync', since: 5 });
    expect(t.sockets[0].closed).toBe(true);
    await flush();
    expect(t.sockets).toHaveLength(2);
    expect(t.last().url).toContain('since=5');
    expect(t.timers.pending).toBe(0);
  });
  it('shows server errors and keeps following', () => {
    const t = setup();
    t.ch.start();
    t.last().open();
    t.last().send({ type: 'error', error: 'no run store' });
    expect(t.ch.status.error).toBe('no run store');
    t.last().drop();
    t.timers.advance(500);
    t.last().open();
    t.last().event(1);
    expect(t.ch.status.error).toBeNull();
  });
  it('stop() closes for good: no reconnect, no more events', async () => {
    const t = setup();
    t.ch.start();
    t.last().open();
    const s = t.last();
    t.ch.stop();
    expect(t.ch.status.state).toBe('closed');
    expect(s.closed).toBe(true);
    s.event(1);
    await flush();
    t.timers.advance(60_000);
    expect(t.sockets).toHaveLength(1);
    expect(t.got).toEqual([]);
  });
  it('stop() while waiting to reconnect cancels the timer', () => {
    const t = setup();
    t.ch.start();
    t.last().drop();
    expect(t.timers.pending).toBe(1);
    t.ch.stop();
    expect(t.timers.pending).toBe(0);
  });
  it('batches events when asked, and flushes on close', () => {
    const t = setup({ batchMs: 100 });
    t.ch.start();
    t.last().open();
    for (let s = 1; s <= 50; s++) t.last().event(s);
    expect(t.got).toHaveLength(0);
    t.timers.advance(100);
    expect(t.batches).toEqual([50]);
    t.last().event(51);
    t.last().drop();
    expect(t.batches).toEqual([50, 1]);
  });
  it('starts from a given since and ignores garbage frames', () => {
    const t = setup({ since: 40 });
    t.ch.start();
    expect(t.last().url).toContain('since=40');
    t.last().open();
    t.last().onmessage!({ data: 'not json' });
    t.last().event(40);
    t.last().event(41);
    expect(t.got.map((e) => e.seq)).toEqual([41]);
  });
});
