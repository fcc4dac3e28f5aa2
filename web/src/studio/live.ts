// A followed WebSocket channel (/api/ws?channel=…&since=…) with the bookkeeping that makes it
// lossless: every event carries its per-channel seq; we remember the last one delivered, drop
// anything at or below it (replays after a reconnect), and reconnect with since=<last seq>
// after a close (exponential backoff 0.5 s → 8 s) or at once after a {type: resync}.
// The socket and the timers are injected, so all of this runs in unit tests without a browser.

import { parseWsMessage, type StoredEvent } from './api';

export type WsState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface SocketLike {
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: unknown) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  close(): void;
}

export interface Timers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

export const realTimers: Timers = {
  set: (fn, ms) => setTimeout(fn, ms),
  clear: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

export interface LiveStatus {
  state: WsState;
  /** Last event seq delivered (0 before any). */
  lastSeq: number;
  /** Seq of the last heartbeat (the server's position). */
  heartbeatSeq: number | null;
  /** Failed connection attempts since the last message. */
  attempt: number;
  /** Delay before the pending reconnect, ms (null when none is pending). */
  retryInMs: number | null;
  /** Last {type: error} message from the server, cleared by the next event. */
  error: string | null;
  /** Connections opened so far. */
  connections: number;
}

export interface LiveOptions {
  /** WebSocket URL for a connection starting after `since`. */
  url: (since: number) => string;
  connect: (url: string) => SocketLike;
  onEvents: (events: StoredEvent[]) => void;
  onStatus?: (s: LiveStatus) => void;
  timers?: Timers;
  since?: number;
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** Deliver events in batches at most this often (0: one call per message). */
  batchMs?: number;
}

/** Backoff before reconnect attempt `attempt` (0-based): initial·2^attempt, capped. */
export function backoffDelay(attempt: number, initialMs = 500, maxMs = 8000): number {
  return Math.min(maxMs, initialMs * 2 ** Math.max(0, attempt));
}

/** Where to reconnect from after a resync: never past what we already have. */
export function resyncSince(lastSeq: number, serverSince: number): number {
  return Math.max(0, Math.min(lastSeq, serverSince));
}

export class LiveChannel {
  private socket: SocketLike | null = null;
  private timer: unknown = null;
  private batchTimer: unknown = null;
  private buffer: StoredEvent[] = [];
  private stopped = false;
  private resyncFrom: number | null = null;
  private readonly timers: Timers;
  private st: LiveStatus;

  constructor(private readonly o: LiveOptions) {
    this.timers = o.timers ?? realTimers;
    this.st = { state: 'connecting', lastSeq: o.since ?? 0, heartbeatSeq: null, attempt: 0, retryInMs: null, error: null, connections: 0 };
  }

  get status(): LiveStatus {
    return this.st;
  }

  start(): this {
    this.open(this.st.lastSeq);
    return this;
  }

  /** Closes for good (no reconnect). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.buffer = []; // the consumer is going away: nothing more is delivered
    if (this.timer !== null) this.timers.clear(this.timer);
    if (this.batchTimer !== null) this.timers.clear(this.batchTimer);
    this.timer = this.batchTimer = null;
    const s = this.socket;
    this.socket = null;
    if (s) {
      s.onclose = s.onmessage = s.onerror = s.onopen = null;
      try {
        s.close();
      } catch {
        /* already closed */
      }
    }
    this.update({ state: 'closed', retryInMs: null });
  }

  private update(p: Partial<LiveStatus>) {
    this.st = { ...this.st, ...p };
    this.o.onStatus?.(this.st);
  }

  private open(since: number) {
    if (this.stopped) return;
    this.timer = null;
    this.update({ state: this.st.connections === 0 && this.st.attempt === 0 ? 'connecting' : 'reconnecting', retryInMs: null });
    let s: SocketLike;
    try {
      s = this.o.connect(this.o.url(since));
    } catch (e) {
      this.update({ error: (e as Error).message });
      this.scheduleReconnect();
      return;
    }
    this.socket = s;
    s.onopen = () => {
      if (this.socket !== s) return;
      this.update({ state: 'open', connections: this.st.connections + 1 });
    };
    s.onmessage = (ev) => {
      if (this.socket !== s) return;
      this.onText(typeof ev.data === 'string' ? ev.data : String(ev.data));
    };
    s.onerror = () => {
      /* a close follows */
    };
    s.onclose = () => {
      if (this.socket !== s) return;
      this.socket = null;
      this.flush();
      if (this.stopped) return;
      if (this.resyncFrom !== null) {
        const from = this.resyncFrom;
        this.resyncFrom = null;
        this.open(from);
      } else {
        this.scheduleReconnect();
      }
    };
  }

  private scheduleReconnect() {
    if (this.stopped) return;
    const delay = backoffDelay(this.st.attempt, this.o.initialDelayMs ?? 500, this.o.maxDelayMs ?? 8000);
    this.update({ state: 'reconnecting', attempt: this.st.attempt + 1, retryInMs: delay });
    this.timer = this.timers.set(() => this.open(this.st.lastSeq), delay);
  }

  private onText(text: string) {
    const m = parseWsMessage(text);
    if (!m) return;
    // Any message proves the connection works: the next failure starts the backoff afresh.
    const base: Partial<LiveStatus> = this.st.attempt ? { attempt: 0 } : {};
    switch (m.type) {
      case 'event':
        if (m.seq <= this.st.lastSeq) {
          if (base.attempt === 0) this.update(base);
          return;
        }
        this.update({ ...base, lastSeq: m.seq, error: null });
        this.deliver({ seq: m.seq, body: m.body });
        return;
      case 'heartbeat':
        this.update({ ...base, heartbeatSeq: m.seq });
        return;
      case 'resync':
        this.resyncFrom = resyncSince(this.st.lastSeq, m.since);
        this.update(base);
        this.socket?.close();
        return;
      case 'error':
        this.update({ ...base, error: m.error });
        return;
    }
  }

  private deliver(e: StoredEvent) {
    const ms = this.o.batchMs ?? 0;
    if (ms <= 0) {
      this.o.onEvents([e]);
      return;
    }
    this.buffer.push(e);
    if (this.batchTimer === null) {
      this.batchTimer = this.timers.set(() => {
        this.batchTimer = null;
        this.flush();
      }, ms);
    }
  }

  private flush() {
    if (this.buffer.length === 0) return;
    const b = this.buffer;
    this.buffer = [];
    this.o.onEvents(b);
  }
}
