// Flow-matching sampler maths, kept free of onnxruntime so it can be unit-tested.
// Convention (matches the Rust trainer): x_0 is noise at t = 0, the image is at t = 1,
// and the network predicts the velocity v = dx/dt.

/** The steps + 1 times of the sampling grid, 0 (noise) to 1 (image), warped by the time shift
 * as the Rust sampler's `--time-shift`: u / (s − (s − 1)·u) with u = k / steps. s > 1 spends
 * more steps near the noise end, where layout and breed are decided; s = 1 is uniform. */
export function timeGrid(steps: number, shift = 1): number[] {
  return Array.from({ length: steps + 1 }, (_, k) => {
    if (k === steps) return 1;
    const u = k / steps;
    return u / (shift - (shift - 1) * u); // exactly u at shift 1
  });
}

/** Classifier-free guidance: v = v_null + cfg·(v_cond − v_null). Applied once, here, not in
 * the graph, so the graph stays a plain conditional model. */
export function cfgMix(vCond: Float32Array, vNull: Float32Array, cfg: number, out = new Float32Array(vCond.length)): Float32Array {
  if (vCond.length !== vNull.length) throw new Error(`cfgMix: length mismatch ${vCond.length} vs ${vNull.length}`);
  for (let i = 0; i < vCond.length; i++) out[i] = vNull[i] + cfg * (vCond[i] - vNull[i]);
  return out;
}

/** Guidance applies at t while t ≤ guidanceTo (the Rust sampler's `--guidance-to`): late steps,
 * which add detail rather than layout, then need only the conditional pass. */
export function guidedAt(t: number, guidanceTo: number): boolean {
  return t <= guidanceTo + 1e-6; // k/steps may round just above the typed bound
}

/** For graphs exported with target = "x": turn the predicted clean image into a velocity.
 * The clamp on (1 − t) avoids dividing by ~0 at the last step. */
export function velocityFromXHat(xHat: Float32Array, xT: Float32Array, t: number, out = new Float32Array(xHat.length)): Float32Array {
  const d = Math.max(1 - t, 0.05);
  for (let i = 0; i < xHat.length; i++) out[i] = (xHat[i] - xT[i]) / d;
  return out;
}

/** Current estimate of the final image: x̂ = x + (1 − t)·v (what the live preview shows). */
export function previewEstimate(x: Float32Array, v: Float32Array, t: number, out = new Float32Array(x.length)): Float32Array {
  const r = 1 - t;
  for (let i = 0; i < x.length; i++) out[i] = x[i] + r * v[i];
  return out;
}

/** Whether step `k` (0-based) of `steps` decodes a fresh preview: the first step and then every
 * ceil(steps / max)-th, so at most `max` per image. A latent model's decoder costs as much as
 * several DiT steps (the shipped one 1.68 GFLOP against 0.36), so the other steps show the last
 * preview again; the final image is always decoded. */
export function previewDue(k: number, steps: number, max = 4): boolean {
  const stride = Math.max(1, Math.ceil(steps / Math.max(1, max)));
  return k % stride === 0;
}

/** One Euler step in place: x ← x + v·dt. */
export function eulerStep(x: Float32Array, v: Float32Array, dt: number): void {
  for (let i = 0; i < x.length; i++) x[i] += v[i] * dt;
}

/** One stochastic step in place, from t to tNext (the Rust sampler's `--eta`): with
 * x = (1 − t)·ε + t·x̂ and v = x̂ − ε, the prediction implies x̂ = x + (1 − t)·v and
 * ε̂ = x − t·v; the step lands on x' = tNext·x̂ + (1 − tNext)·(√(1 − η²)·ε̂ + η·z). η = 0 is
 * exactly an Euler step of the straight path; z is fresh standard-normal noise. */
export function stochasticStep(x: Float32Array, v: Float32Array, t: number, tNext: number, eta: number, z: Float32Array): void {
  if (z.length !== x.length) throw new Error(`stochasticStep: noise length ${z.length} vs ${x.length}`);
  const keep = Math.sqrt(Math.max(0, 1 - eta * eta));
  for (let i = 0; i < x.length; i++) {
    const xHat = x[i] + (1 - t) * v[i];
    const eps = x[i] - t * v[i];
    x[i] = tNext * xHat + (1 - tNext) * (keep * eps + eta * z[i]);
  }
}

/** Builds the batch-2 inputs for one step: [x, x], [t, t], [breed, null]. One session.run
 * per step halves the per-call overhead compared with two batch-1 runs. With guided = false
 * it is the batch-1 conditional input alone. */
export function batchInputs(x: Float32Array, t: number, breed: number, nullClass: number, guided = true) {
  if (!guided) return { xt: x.slice(), t: new Float32Array([t]), breed: new BigInt64Array([BigInt(breed)]) };
  const xt = new Float32Array(x.length * 2);
  xt.set(x, 0);
  xt.set(x, x.length);
  return {
    xt,
    t: new Float32Array([t, t]),
    breed: new BigInt64Array([BigInt(breed), BigInt(nullClass)]),
  };
}
