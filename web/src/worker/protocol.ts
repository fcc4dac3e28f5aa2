// Typed messages between the page and the inference worker. Messages cross postMessage
// (structured clone), so typed arrays stay typed arrays; parse* functions check the shape on
// arrival because a malformed message should surface as a clear error, not as an `undefined`
// deep inside onnxruntime.

import type { ModelInfo } from '../lib/metadata';

export type ModelKind = 'classifier' | 'generator';
/** What the user asked for ('auto' = WebGPU if it initialises, else WASM). */
export type EpRequest = 'auto' | 'wasm' | 'webgpu';
/** What actually runs. */
export type Ep = 'wasm' | 'webgpu';

export type Request =
  | { type: 'load'; id: number; model: ModelKind; url: string; ep: EpRequest; ortBase: string; threads?: number; useCache?: boolean; foldQdq?: boolean }
  | { type: 'classify'; id: number; rgba: Uint8ClampedArray; width: number; height: number }
  /** guidanceTo: guidance only for t ≤ this (t = 1 is the image); later steps run the
   * conditional pass alone (absent = 1: guidance on every step). timeShift: the time grid's
   * shift, as the CLI's --time-shift (absent = 1: uniform steps). eta: stochastic sampling,
   * as the CLI's --eta (absent = 0: the deterministic Euler step). */
  | { type: 'generate'; id: number; breed: number; steps: number; cfg: number; seed: number; guidanceTo?: number; timeShift?: number; eta?: number }
  | { type: 'bench'; id: number; model: ModelKind; ep: Ep; runs: number };

export interface BenchResult {
  model: ModelKind;
  ep: Ep;
  runs: number;
  timings: number[];
  p50: number;
  p95: number;
  mean: number;
}

export type Response =
  | { type: 'progress'; id: number; model: ModelKind; loaded: number; total: number | null }
  | { type: 'retry'; id: number; model: ModelKind; attempt: number; delayMs: number; reason: string }
  | {
      type: 'loaded';
      id: number;
      model: ModelKind;
      info: ModelInfo;
      ep: Ep;
      threads: number;
      bytes: number;
      fromCache: boolean;
      loadMs: number;
      fallbackReason?: string;
    }
  | { type: 'classified'; id: number; probs: Float32Array; ms: number }
  | { type: 'step'; id: number; step: number; steps: number; stepMs: number; preview: Uint8ClampedArray; size: number }
  | { type: 'generated'; id: number; rgba: Uint8ClampedArray; size: number; stepMs: number[]; totalMs: number; seed: number }
  | ({ type: 'benched'; id: number } & BenchResult)
  | { type: 'error'; id: number; message: string };

export class ProtocolError extends Error {}

type Obj = Record<string, unknown>;

function obj(x: unknown): Obj {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) throw new ProtocolError('message is not an object');
  return x as Obj;
}
function num(o: Obj, k: string, check?: (n: number) => boolean, why = ''): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ProtocolError(`field "${k}" must be a finite number`);
  if (check && !check(v)) throw new ProtocolError(`field "${k}" ${why} (got ${v})`);
  return v;
}
function str(o: Obj, k: string): string {
  const v = o[k];
  if (typeof v !== 'string') throw new ProtocolError(`field "${k}" must be a string`);
  return v;
}
function oneOf<T extends string>(o: Obj, k: string, allowed: readonly T[]): T {
  const v = o[k];
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v))
    throw new ProtocolError(`field "${k}" must be one of ${allowed.join(', ')}`);
  return v as T;
}
const isInt = (n: number) => Number.isInteger(n);

export const MAX_STEPS = 100;
/** Bounds of the time-grid shift (the CLI's --time-shift accepts the same). */
export const MIN_TIME_SHIFT = 0.1;
export const MAX_TIME_SHIFT = 10;

/** Validates a page → worker message (run in the worker). */
export function parseRequest(data: unknown): Request {
  const o = obj(data);
  const id = num(o, 'id', isInt, 'must be an integer');
  switch (o.type) {
    case 'load': {
      const threads = o.threads === undefined ? undefined : num(o, 'threads', (n) => isInt(n) && n >= 1 && n <= 64, 'must be 1..64');
      return {
        type: 'load',
        id,
        model: oneOf(o, 'model', ['classifier', 'generator'] as const),
        url: str(o, 'url'),
        ep: oneOf(o, 'ep', ['auto', 'wasm', 'webgpu'] as const),
        ortBase: str(o, 'ortBase'),
        threads,
        useCache: o.useCache === undefined ? undefined : o.useCache === true,
        foldQdq: o.foldQdq === undefined ? undefined : o.foldQdq === true,
      };
    }
    case 'classify': {
      const width = num(o, 'width', (n) => isInt(n) && n > 0, 'must be a positive integer');
      const height = num(o, 'height', (n) => isInt(n) && n > 0, 'must be a positive integer');
      if (!(o.rgba instanceof Uint8ClampedArray)) throw new ProtocolError('field "rgba" must be a Uint8ClampedArray');
      if (o.rgba.length !== width * height * 4) throw new ProtocolError(`field "rgba" must hold width·height·4 = ${width * height * 4} bytes`);
      return { type: 'classify', id, rgba: o.rgba, width, height };
    }
    case 'generate':
      return {
        type: 'generate',
        id,
        breed: num(o, 'breed', (n) => isInt(n) && n >= 0, 'must be a non-negative integer'),
        steps: num(o, 'steps', (n) => isInt(n) && n >= 1 && n <= MAX_STEPS, `must be an integer in 1..${MAX_STEPS}`),
        cfg: num(o, 'cfg', (n) => n >= 0 && n <= 20, 'must be in 0..20'),
        seed: num(o, 'seed', (n) => isInt(n) && n >= 0 && n <= 0xffffffff, 'must be a uint32'),
        guidanceTo: o.guidanceTo === undefined ? undefined : num(o, 'guidanceTo', (n) => n >= 0 && n <= 1, 'must be in 0..1'),
        timeShift: o.timeShift === undefined ? undefined : num(o, 'timeShift', (n) => n >= MIN_TIME_SHIFT && n <= MAX_TIME_SHIFT, `must be in ${MIN_TIME_SHIFT}..${MAX_TIME_SHIFT}`),
        eta: o.eta === undefined ? undefined : num(o, 'eta', (n) => n >= 0 && n <= 1, 'must be in 0..1'),
      };
    case 'bench':
      return {
        type: 'bench',
        id,
        model: oneOf(o, 'model', ['classifier', 'generator'] as const),
        ep: oneOf(o, 'ep', ['wasm', 'webgpu'] as const),
        runs: num(o, 'runs', (n) => isInt(n) && n >= 1 && n <= 1000, 'must be an integer in 1..1000'),
      };
    default:
      throw new ProtocolError(`unknown request type ${JSON.stringify(o.type)}`);
  }
}

const RESPONSE_TYPES = ['progress', 'retry', 'loaded', 'classified', 'step', 'generated', 'benched', 'error'] as const;

/** Checks the envelope of a worker → page message (the worker is our own code, so the page
 * only verifies the type tag, the id and the payload arrays it is about to draw). */
export function parseResponse(data: unknown): Response {
  const o = obj(data);
  num(o, 'id', isInt, 'must be an integer');
  const type = oneOf(o, 'type', RESPONSE_TYPES);
  if (type === 'step' && !(o.preview instanceof Uint8ClampedArray)) throw new ProtocolError('step.preview must be a Uint8ClampedArray');
  if (type === 'generated' && !(o.rgba instanceof Uint8ClampedArray)) throw new ProtocolError('generated.rgba must be a Uint8ClampedArray');
  if (type === 'classified' && !(o.probs instanceof Float32Array)) throw new ProtocolError('classified.probs must be a Float32Array');
  if (type === 'error') str(o, 'message');
  return o as unknown as Response;
}

/** Buffers to transfer rather than copy (pixel payloads can be large). */
export function transferables(msg: Request | Response): Transferable[] {
  switch (msg.type) {
    case 'classify':
      return [msg.rgba.buffer];
    case 'step':
      return [msg.preview.buffer];
    case 'generated':
      return [msg.rgba.buffer];
    case 'classified':
      return [msg.probs.buffer];
    default:
      return [];
  }
}

/** True for the message that ends a request (everything else is an intermediate event). */
export function isFinal(msg: Response): boolean {
  return msg.type !== 'progress' && msg.type !== 'retry' && msg.type !== 'step';
}

export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  if (typeof e === 'number') return `onnxruntime error code ${e}`; // ORT wasm sometimes throws raw pointers/codes
  return String(e);
}
