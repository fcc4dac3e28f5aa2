// Deterministic randomness for the generator: the same seed must give the same starting
// noise (and therefore identical pixels) in every browser, so we avoid Math.random.

/** mulberry32: tiny 32-bit PRNG, uniform in [0, 1). Pure integer arithmetic, so it is
 * bit-identical across JS engines. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Box-Muller: two uniforms → two independent standard normals. u1 is shifted away from 0
 * so log(0) can never happen. */
export function boxMuller(u1: number, u2: number): [number, number] {
  const u = Math.max(u1, Number.MIN_VALUE);
  const r = Math.sqrt(-2 * Math.log(u));
  const th = 2 * Math.PI * u2;
  return [r * Math.cos(th), r * Math.sin(th)];
}

/** `n` standard-normal samples from `seed` (Float32, the dtype the model takes). */
export function gaussianNoise(seed: number, n: number): Float32Array {
  const rand = mulberry32(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const [a, b] = boxMuller(rand(), rand());
    out[i] = a;
    if (i + 1 < n) out[i + 1] = b;
  }
  return out;
}

/** Fresh noise for sampling step `step` of the image with `seed` (stochastic sampling): its
 * own stream per step, reproducible from the seed alone. The step is mixed into the seed with
 * a large odd multiplier so neighbouring (seed, step) pairs do not share streams. */
export function stepNoise(seed: number, step: number, n: number): Float32Array {
  return gaussianNoise((seed ^ Math.imul(step + 1, 0x9e3779b1)) >>> 0, n);
}

/** A fresh random seed for the "new seed" button (uint32 so it round-trips through the URL
 * and the number input unchanged). */
export function randomSeed(): number {
  const buf = new Uint32Array(1);
  globalThis.crypto.getRandomValues(buf);
  return buf[0];
}
