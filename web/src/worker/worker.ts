/// <reference lib="webworker" />
// Inference worker: owns the onnxruntime-web sessions so model loading and inference never
// block the page. Requests are handled one at a time (a queue), which also keeps benchmarks
// honest: nothing else competes for the WASM threads while one runs.

import * as ort from 'onnxruntime-web';
import { loadModelBytes } from '../lib/fetchModel';
import { classifierInfo, generatorInfo, readOnnxMetadata, type ClassifierInfo, type GeneratorInfo } from '../lib/metadata';
import { rgbaToChw, chwToRgba } from '../lib/image';
import { gaussianNoise, stepNoise } from '../lib/prng';
import { batchInputs, cfgMix, eulerStep, guidedAt, previewDue, previewEstimate, stochasticStep, timeGrid, velocityFromXHat } from '../lib/sampling';
import { mean, percentile } from '../lib/stats';
import { errorMessage, parseRequest, transferables, type Ep, type EpRequest, type ModelKind, type Request, type Response } from './protocol';

declare const self: DedicatedWorkerGlobalScope;

interface Loaded {
  bytes: Uint8Array;
  info: ClassifierInfo | GeneratorInfo;
  ep: Ep; // provider of the main session
  sessions: Map<Ep, ort.InferenceSession>;
  /** Latent generators: the decoder that turns a sampled latent into pixels (main provider). */
  decoder?: ort.InferenceSession;
}

const models = new Map<ModelKind, Loaded>();
let ortConfigured = false;
let foldQdq = false;

function post(msg: Response): void {
  self.postMessage(msg, transferables(msg));
}

function configureOrt(ortBase: string, threads?: number): void {
  if (ortConfigured) return; // onnxruntime reads env.wasm once, at its first session
  // Local wasm files only: a CDN fetch would break offline use and cross-origin isolation.
  ort.env.wasm.wasmPaths = ortBase;
  // Threads need SharedArrayBuffer, i.e. a cross-origin-isolated page (COOP + COEP headers).
  ort.env.wasm.numThreads = self.crossOriginIsolated ? (threads ?? Math.min(4, navigator.hardwareConcurrency || 1)) : 1;
  ort.env.wasm.proxy = false; // we already are the worker
  ortConfigured = true;
}

async function webgpuAvailable(): Promise<string | null> {
  const gpu = (navigator as unknown as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
  if (!gpu) return 'navigator.gpu is missing';
  try {
    const adapter = await gpu.requestAdapter();
    return adapter ? null : 'no WebGPU adapter';
  } catch (e) {
    return `requestAdapter failed: ${errorMessage(e)}`;
  }
}

async function createSession(bytes: Uint8Array, ep: Ep): Promise<ort.InferenceSession> {
  // The exported graphs store int8 weights. The classifier's (and the generator's class table)
  // sit behind DequantizeLinear with float activations; the generator's Linear layers run as
  // MatMulInteger on activations quantized at run time (`--quantize int8-dynamic`), which
  // this option does not touch. ORT keeps DQ nodes out of constant folding by default; we set
  // disable_quant_qdq so they are folded into float weights once at load (same numbers, ~4×
  // the weight memory): on an idle 2-core machine the classifier runs ~2× and a generator step
  // ~1.2× faster that way (BENCH.md). ?qdq=keep keeps ORT's default.
  const extra = foldQdq ? { session: { disable_quant_qdq: '1' } } : undefined;
  // Copy: the caller keeps `bytes` to build sessions for other providers later.
  return ort.InferenceSession.create(bytes.slice(), { executionProviders: [ep], graphOptimizationLevel: 'all', extra });
}

/** WebGPU when available and the session really initialises, else WASM. */
async function createPreferred(bytes: Uint8Array, want: EpRequest): Promise<{ session: ort.InferenceSession; ep: Ep; fallbackReason?: string }> {
  let fallbackReason: string | undefined;
  if (want !== 'wasm') {
    const missing = await webgpuAvailable();
    if (missing === null) {
      try {
        return { session: await createSession(bytes, 'webgpu'), ep: 'webgpu' };
      } catch (e) {
        fallbackReason = `WebGPU session failed: ${errorMessage(e)}`;
      }
    } else {
      fallbackReason = missing;
    }
    if (want === 'webgpu') throw new Error(`WebGPU was requested but is unavailable (${fallbackReason})`);
  } else {
    fallbackReason = 'WASM forced by ?ep=wasm';
  }
  return { session: await createSession(bytes, 'wasm'), ep: 'wasm', fallbackReason };
}

async function sessionFor(model: ModelKind, ep: Ep): Promise<ort.InferenceSession> {
  const m = models.get(model);
  if (!m) throw new Error(`the ${model} is not loaded yet`);
  let s = m.sessions.get(ep);
  if (!s) {
    if (ep === 'webgpu') {
      const missing = await webgpuAvailable();
      if (missing) throw new Error(`WebGPU unavailable: ${missing}`);
    }
    s = await createSession(m.bytes, ep);
    m.sessions.set(ep, s);
  }
  return s;
}

async function handleLoad(req: Extract<Request, { type: 'load' }>): Promise<void> {
  configureOrt(req.ortBase, req.threads);
  if (req.foldQdq !== undefined) foldQdq = req.foldQdq;
  const t0 = performance.now();
  const parseInfo = (bytes: Uint8Array) => {
    const props = readOnnxMetadata(bytes);
    return req.model === 'classifier' ? classifierInfo(props) : generatorInfo(props);
  };
  const { bytes, fromCache } = await loadModelBytes(req.url, {
    versionOf: (b) => parseInfo(b).modelVersion,
    onProgress: (loaded, total) => post({ type: 'progress', id: req.id, model: req.model, loaded, total }),
    onRetry: (r) => post({ type: 'retry', id: req.id, model: req.model, ...r }),
    useCache: req.useCache,
  });
  const info = parseInfo(bytes);
  const old = models.get(req.model);
  for (const s of old?.sessions.values() ?? []) await s.release();
  await old?.decoder?.release();
  const { session, ep, fallbackReason } = await createPreferred(bytes, req.ep);
  let decoder: ort.InferenceSession | undefined;
  if (info.kind === 'generator' && info.decoder) {
    // A latent generator's decoder lies beside it (metadata holds a bare file name).
    const url = new URL(info.decoder, new URL(req.url, self.location.href)).href;
    const dec = await loadModelBytes(url, { versionOf: () => info.modelVersion, onRetry: (r) => post({ type: 'retry', id: req.id, model: req.model, ...r }), useCache: req.useCache });
    decoder = await createSession(dec.bytes, ep);
  }
  // One warm-up run, so the first user-visible latency is not the one-off kernel setup.
  const s = info.imageSize;
  if (info.kind === 'classifier') await runClassifier(session, new Float32Array(3 * s * s), s);
  else await toPixels(decoder, info, await guidedVelocity(session, info, new Float32Array(sampleLength(info)), 0, 0, 1), 0);
  models.set(req.model, { bytes, info, ep, sessions: new Map([[ep, session]]), decoder });
  post({
    type: 'loaded',
    id: req.id,
    model: req.model,
    info,
    ep,
    threads: ep === 'wasm' ? (ort.env.wasm.numThreads ?? 1) : 0,
    bytes: bytes.length,
    fromCache,
    loadMs: performance.now() - t0,
    fallbackReason,
  });
}

async function runClassifier(session: ort.InferenceSession, chw: Float32Array, size: number): Promise<Float32Array> {
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', chw, [1, 3, size, size]) };
  const out = await session.run(feeds);
  const name = session.outputNames.includes('probs') ? 'probs' : session.outputNames[0];
  return new Float32Array(out[name].data as Float32Array);
}

async function handleClassify(req: Extract<Request, { type: 'classify' }>): Promise<void> {
  const m = models.get('classifier');
  if (!m || m.info.kind !== 'classifier') throw new Error('the classifier is not loaded yet');
  const size = m.info.imageSize;
  if (req.width !== size || req.height !== size) throw new Error(`classifier expects a ${size}×${size} crop, got ${req.width}×${req.height}`);
  const session = await sessionFor('classifier', m.ep);
  const chw = rgbaToChw(req.rgba, size, size);
  const t0 = performance.now();
  const probs = await runClassifier(session, chw, size);
  post({ type: 'classified', id: req.id, probs, ms: performance.now() - t0 });
}

/** Values per sample: pixels (3×S×S) or the latent (C×L×L) a latent generator samples. */
function sampleLength(info: GeneratorInfo): number {
  return info.channels * info.sampleSize * info.sampleSize;
}

/** A sample (or x̂ preview) of `breed` as CHW pixels in [-1, 1]: itself for a pixel generator,
 * through the decoder for a latent one (a breed-conditioned decoder has a `breed` input). */
async function toPixels(decoder: ort.InferenceSession | undefined, info: GeneratorInfo, x: Float32Array, breed: number): Promise<Float32Array> {
  if (!decoder) return x;
  const l = info.sampleSize;
  const feeds: Record<string, ort.Tensor> = { latent: new ort.Tensor('float32', x, [1, info.channels, l, l]) };
  if (decoder.inputNames.includes('breed')) feeds.breed = new ort.Tensor('int64', BigInt64Array.of(BigInt(breed)), [1]);
  const out = await decoder.run(feeds);
  const name = decoder.outputNames.includes('image') ? 'image' : decoder.outputNames[0];
  return new Float32Array(out[name].data as Float32Array);
}

/** One batched (conditional + unconditional) network call → guided velocity; with
 * guided = false one conditional call (batch 1) and no guidance. */
async function guidedVelocity(session: ort.InferenceSession, info: GeneratorInfo, x: Float32Array, t: number, breed: number, cfg: number, guided = true): Promise<Float32Array> {
  const s = info.sampleSize;
  const n = x.length;
  const b = guided ? 2 : 1;
  const inp = batchInputs(x, t, breed, info.nullClass, guided);
  const out = await session.run({
    x_t: new ort.Tensor('float32', inp.xt, [b, info.channels, s, s]),
    t: new ort.Tensor('float32', inp.t, [b]),
    breed: new ort.Tensor('int64', inp.breed, [b]),
  });
  const want = info.target === 'x' ? 'x_hat' : 'velocity';
  const name = session.outputNames.includes(want) ? want : session.outputNames[0];
  const both = out[name].data as Float32Array;
  let vCond = both.subarray(0, n);
  if (!guided) return info.target === 'x' ? velocityFromXHat(vCond, x, t) : new Float32Array(vCond);
  let vNull = both.subarray(n, 2 * n);
  if (info.target === 'x') {
    vCond = velocityFromXHat(vCond, x, t);
    vNull = velocityFromXHat(vNull, x, t);
  }
  return cfgMix(vCond, vNull, cfg);
}

async function handleGenerate(req: Extract<Request, { type: 'generate' }>): Promise<void> {
  const m = models.get('generator');
  if (!m || m.info.kind !== 'generator') throw new Error('the generator is not loaded yet');
  const info = m.info;
  if (req.breed >= info.labels.length) throw new Error(`breed index ${req.breed} is out of range (the model has ${info.labels.length} breeds)`);
  const session = await sessionFor('generator', m.ep);
  const s = info.imageSize;
  const x = gaussianNoise(req.seed, sampleLength(info));
  const stepMs: number[] = [];
  const t0 = performance.now();
  const ts = timeGrid(req.steps, req.timeShift ?? 1);
  const eta = req.eta ?? 0;
  let last: Uint8ClampedArray = new Uint8ClampedArray(s * s * 4);
  for (let k = 0; k < req.steps; k++) {
    const ts0 = performance.now();
    const v = await guidedVelocity(session, info, x, ts[k], req.breed, req.cfg, guidedAt(ts[k], req.guidanceTo ?? 1));
    // Pixel models' previews are free; a latent model decodes only some steps (previewDue).
    if (!m.decoder || previewDue(k, req.steps)) last = chwToRgba(await toPixels(m.decoder, info, previewEstimate(x, v, ts[k]), req.breed), s, s);
    const preview = last.slice(); // posting transfers the buffer; keep `last` for the next step
    // The last step lands on x̂ either way (t' = 1), so it draws no noise.
    if (eta > 0 && k + 1 < req.steps) stochasticStep(x, v, ts[k], ts[k + 1], eta, stepNoise(req.seed, k, x.length));
    else eulerStep(x, v, ts[k + 1] - ts[k]);
    stepMs.push(performance.now() - ts0);
    post({ type: 'step', id: req.id, step: k + 1, steps: req.steps, stepMs: stepMs[k], preview, size: s });
  }
  post({ type: 'generated', id: req.id, rgba: chwToRgba(await toPixels(m.decoder, info, x, req.breed), s, s), size: s, stepMs, totalMs: performance.now() - t0, seed: req.seed });
}

const BENCH_WARMUP_RUNS = 5;
const BENCH_WARMUP_MS = 4000;

async function handleBench(req: Extract<Request, { type: 'bench' }>): Promise<void> {
  const m = models.get(req.model);
  if (!m) throw new Error(`the ${req.model} is not loaded yet`);
  const session = await sessionFor(req.model, req.ep);
  const timings: number[] = [];
  const s = m.info.imageSize;
  // Fixed inputs: latency does not depend on the pixel values.
  const run =
    m.info.kind === 'classifier'
      ? () => runClassifier(session, new Float32Array(3 * s * s).fill(0.5), s)
      : ((info: GeneratorInfo) => () => guidedVelocity(session, info, gaussianNoise(1, sampleLength(info)), 0.5, 0, 2))(m.info);
  // Warm-up: the first run includes allocation, and Chromium first runs WASM from its baseline
  // compiler and swaps in optimised code for hot functions later, compiled in the background on
  // the same 2 cores. Kernels the classifier bench already warmed (float GEMM) are fast at once;
  // the generator's integer GEMM measured ~2× slow over 20 runs after a one-run warm-up.
  const warmStart = performance.now();
  for (let i = 0; i < BENCH_WARMUP_RUNS || performance.now() - warmStart < BENCH_WARMUP_MS; i++) await run();
  for (let i = 0; i < req.runs; i++) {
    const t0 = performance.now();
    await run();
    timings.push(performance.now() - t0);
  }
  post({ type: 'benched', id: req.id, model: req.model, ep: req.ep, runs: req.runs, timings, p50: percentile(timings, 50), p95: percentile(timings, 95), mean: mean(timings) });
}

let queue: Promise<void> = Promise.resolve();

self.onmessage = (ev: MessageEvent) => {
  queue = queue.then(async () => {
    let id = -1;
    try {
      const req = parseRequest(ev.data);
      id = req.id;
      if (req.type === 'load') await handleLoad(req);
      else if (req.type === 'classify') await handleClassify(req);
      else if (req.type === 'generate') await handleGenerate(req);
      else await handleBench(req);
    } catch (e) {
      if (id === -1 && typeof (ev.data as { id?: unknown })?.id === 'number') id = (ev.data as { id: number }).id;
      post({ type: 'error', id, message: errorMessage(e) });
    }
  });
};
