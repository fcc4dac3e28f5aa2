// UI state as pure reducers so the rules (progress text, clamping, seeds) are unit-testable.

import type { ModelInfo } from './metadata';
import type { Ep, Response } from '../worker/protocol';
import { MAX_STEPS, MAX_TIME_SHIFT, MIN_TIME_SHIFT } from '../worker/protocol';

export interface ModelState {
  status: 'idle' | 'loading' | 'ready' | 'error';
  loaded: number;
  total: number | null;
  retry?: string;
  ep?: Ep;
  threads?: number;
  info?: ModelInfo;
  bytes?: number;
  fromCache?: boolean;
  loadMs?: number;
  fallbackReason?: string;
  error?: string;
}

export const initialModelState: ModelState = { status: 'idle', loaded: 0, total: null };

export type ModelEvent = Response | { type: 'start' } | { type: 'failed'; message: string };

export function modelReducer(s: ModelState, ev: ModelEvent): ModelState {
  switch (ev.type) {
    case 'start':
      return { ...initialModelState, status: 'loading' };
    case 'progress':
      return { ...s, status: 'loading', loaded: ev.loaded, total: ev.total, retry: undefined };
    case 'retry':
      return { ...s, retry: `attempt ${ev.attempt} failed (${ev.reason}); retrying in ${(ev.delayMs / 1000).toFixed(1)} s` };
    case 'loaded':
      return {
        status: 'ready',
        loaded: ev.bytes,
        total: ev.bytes,
        ep: ev.ep,
        threads: ev.threads,
        info: ev.info,
        bytes: ev.bytes,
        fromCache: ev.fromCache,
        loadMs: ev.loadMs,
        fallbackReason: ev.fallbackReason,
      };
    case 'failed':
    case 'error':
      return { ...s, status: 'error', error: ev.message };
    default:
      return s;
  }
}

const mb = (n: number) => (n / (1024 * 1024)).toFixed(1);

export function progressText(s: ModelState): string {
  switch (s.status) {
    case 'idle':
      return 'not loaded';
    case 'loading':
      if (s.total) return `downloading ${mb(s.loaded)} / ${mb(s.total)} MB (${Math.min(100, Math.round((100 * s.loaded) / s.total))}%)`;
      return s.loaded ? `downloading ${mb(s.loaded)} MB` : 'starting…';
    case 'ready':
      return `ready (${mb(s.bytes ?? 0)} MB${s.fromCache ? ', from cache' : ''}, ${Math.round(s.loadMs ?? 0)} ms)`;
    case 'error':
      return `failed: ${s.error}`;
  }
}

/** "wasm (SIMD, 2 threads)" / "webgpu". */
export function epText(s: ModelState): string {
  if (!s.ep) return '—';
  if (s.ep === 'webgpu') return 'webgpu';
  return `wasm (SIMD, ${s.threads ?? 1} thread${(s.threads ?? 1) === 1 ? '' : 's'})`;
}

export interface GenerateForm {
  breed: number;
  steps: number;
  cfg: number;
  seed: number;
  /** Guidance only while t ≤ this (0..1; the CLI's --guidance-to). */
  guidanceTo: number;
  /** Time-grid shift (MIN_TIME_SHIFT..MAX_TIME_SHIFT; the CLI's --time-shift). */
  timeShift: number;
  /** Stochastic sampling η (0..1; the CLI's --eta; 0 = deterministic). */
  eta: number;
}

export type GenerateAction =
  | { type: 'breed'; value: number }
  | { type: 'steps'; value: string }
  | { type: 'cfg'; value: string }
  | { type: 'guidanceTo'; value: string }
  | { type: 'timeShift'; value: string }
  | { type: 'eta'; value: string }
  | { type: 'seed'; value: string }
  | { type: 'newSeed'; seed: number };

export function clampSteps(n: number): number {
  if (!Number.isFinite(n)) return 1;
  return Math.min(MAX_STEPS, Math.max(1, Math.round(n)));
}

export function clampCfg(n: number): number {
  if (!Number.isFinite(n)) return 0;
  return Math.min(20, Math.max(0, n));
}

export function clampShift(n: number): number {
  if (!Number.isFinite(n)) return 1;
  return Math.min(MAX_TIME_SHIFT, Math.max(MIN_TIME_SHIFT, n));
}

/** Into 0..1; garbage becomes `fallback` (1 for "guide until t": every step; 0 for η:
 * deterministic). */
export function clampUnit(n: number, fallback = 1): number {
  if (!Number.isFinite(n)) return fallback;
  return Math.min(1, Math.max(0, n));
}

/** Seeds are uint32; anything else typed into the box is folded into that range. */
export function parseSeed(raw: string): number | null {
  const t = raw.trim();
  if (!/^\d+$/.test(t)) return null;
  return Number(BigInt(t) % 4294967296n);
}

export function generateReducer(s: GenerateForm, a: GenerateAction): GenerateForm {
  switch (a.type) {
    case 'breed':
      return { ...s, breed: a.value };
    case 'steps':
      return a.value.trim() === '' ? s : { ...s, steps: clampSteps(Number(a.value)) };
    case 'cfg':
      return a.value.trim() === '' ? s : { ...s, cfg: clampCfg(Number(a.value)) };
    case 'guidanceTo':
      return a.value.trim() === '' ? s : { ...s, guidanceTo: clampUnit(Number(a.value)) };
    case 'timeShift':
      return a.value.trim() === '' ? s : { ...s, timeShift: clampShift(Number(a.value)) };
    case 'eta':
      return a.value.trim() === '' ? s : { ...s, eta: clampUnit(Number(a.value), 0) };
    case 'seed': {
      const seed = parseSeed(a.value);
      return seed === null ? s : { ...s, seed };
    }
    case 'newSeed':
      return { ...s, seed: a.seed >>> 0 };
  }
}

export type EpParam = 'auto' | 'wasm' | 'webgpu';

export interface UrlOptions {
  ep: EpParam;
  threads?: number;
  noCache: boolean;
  /** Fold the int8 weights to float at load (the default; ?qdq=keep keeps ORT's DQ nodes; see worker.createSession). */
  foldQdq: boolean;
}

/** ?ep=wasm forces the WASM provider (tests use it); ?threads=N; ?nocache=1 skips the Cache API. */
export function parseUrlOptions(search: string): UrlOptions {
  const q = new URLSearchParams(search);
  const epRaw = (q.get('ep') ?? 'auto').toLowerCase();
  const ep: EpParam = epRaw === 'wasm' || epRaw === 'webgpu' ? epRaw : 'auto';
  const th = Number(q.get('threads'));
  const threads = Number.isInteger(th) && th >= 1 && th <= 64 ? th : undefined;
  const nc = q.get('nocache');
  return { ep, threads, noCache: nc !== null && nc !== '0' && nc !== 'false', foldQdq: q.get('qdq') !== 'keep' };
}
