// Page-side wrapper around the worker: numbers requests, routes intermediate events
// (progress, preview steps) to a callback and settles a promise on the final message.

import { ProtocolError, isFinal, parseResponse, transferables, type Request, type Response } from './protocol';

/** The subset of Worker we use (a fake implements it in the unit tests). */
export interface WorkerLike {
  postMessage(msg: unknown, transfer: Transferable[]): void;
  onmessage: ((ev: MessageEvent) => void) | null;
  onerror: ((ev: ErrorEvent) => void) | null;
}

type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;
export type RequestBody = DistributiveOmit<Request, 'id'>;
export type FinalOf<T extends Response['type']> = Extract<Response, { type: T }>;

interface Pending {
  resolve: (r: Response) => void;
  reject: (e: Error) => void;
  onEvent?: (r: Response) => void;
}

export class WorkerError extends Error {}

export class InferenceClient {
  private nextId = 1;
  private pending = new Map<number, Pending>();

  constructor(private worker: WorkerLike) {
    worker.onmessage = (ev) => this.receive(ev.data);
    worker.onerror = (ev) => {
      // A crashed worker fails everything in flight instead of leaving spinners forever.
      const err = new WorkerError(`worker crashed: ${ev.message || 'unknown error'}`);
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
  }

  request(body: RequestBody, onEvent?: (r: Response) => void): Promise<Response> {
    const id = this.nextId++;
    const msg = { ...body, id } as Request;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onEvent });
      this.worker.postMessage(msg, transferables(msg));
    });
  }

  get inFlight(): number {
    return this.pending.size;
  }

  private receive(data: unknown): void {
    let msg: Response;
    try {
      msg = parseResponse(data);
    } catch (e) {
      console.error('bad message from worker', e);
      return;
    }
    const p = this.pending.get(msg.id);
    if (!p) return; // late event for a request nobody waits on
    if (!isFinal(msg)) {
      p.onEvent?.(msg);
      return;
    }
    this.pending.delete(msg.id);
    if (msg.type === 'error') p.reject(new WorkerError(msg.message));
    else p.resolve(msg);
  }
}

export { ProtocolError };
