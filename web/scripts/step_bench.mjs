// One generator network call (batch 2, as a guided step) in onnxruntime-web's WASM backend under
// Node, for A/B timing of exported files without a browser page in the way. Files are timed in
// interleaved rounds; prints the median and minimum ms per call of each.
//   node web/scripts/step_bench.mjs A.onnx B.onnx ...      (from the repo root, after npm ci in web/)
// Same session options as the web worker: graphOptimizationLevel 'all', int8 DQ weights folded.
import * as ort from '../node_modules/onnxruntime-web/dist/ort.node.min.mjs';
import { readFileSync } from 'node:fs';

ort.env.wasm.numThreads = Number(process.env.THREADS ?? 2);
const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node web/scripts/step_bench.mjs MODEL.onnx [MODEL.onnx ...]');
  process.exit(2);
}
const opts = { executionProviders: ['wasm'], graphOptimizationLevel: 'all', extra: { session: { disable_quant_qdq: '1' } } };
const sessions = [];
for (const f of files) sessions.push(await ort.InferenceSession.create(readFileSync(f), opts));
const s = 64, b = 2;
const xt = new Float32Array(b * 3 * s * s).map(() => Math.random() * 2 - 1);
const feeds = () => ({
  x_t: new ort.Tensor('float32', xt, [b, 3, s, s]),
  t: new ort.Tensor('float32', new Float32Array([0.3, 0.3]), [b]),
  breed: new ort.Tensor('int64', new BigInt64Array([1n, 12n]), [b]),
});
for (const ses of sessions) for (let i = 0; i < 2; i++) await ses.run(feeds()); // warm-up
const ms = files.map(() => []);
for (let round = 0; round < 8; round++) {
  for (const [i, ses] of sessions.entries()) {
    const t0 = performance.now();
    for (let r = 0; r < 5; r++) await ses.run(feeds());
    ms[i].push((performance.now() - t0) / 5);
  }
}
for (const [i, f] of files.entries()) {
  const a = ms[i].sort((x, y) => x - y);
  console.log(`${f}: median ${a[a.length >> 1].toFixed(1)} ms, min ${a[0].toFixed(1)} ms per batch-2 call (${ort.env.wasm.numThreads} threads)`);
}
