import { describe, expect, it } from 'vitest';
import { batchInputs, cfgMix, eulerStep, guidedAt, previewDue, previewEstimate, stochasticStep, timeGrid, velocityFromXHat } from './sampling';

const f = (...v: number[]) => new Float32Array(v);

describe('sampling maths', () => {
  it('timeGrid: uniform k/steps at shift 1, warped towards the noise end above 1', () => {
    expect(timeGrid(4)).toEqual([0, 0.25, 0.5, 0.75, 1]);
    expect(timeGrid(1)).toEqual([0, 1]);
    // Shift 3 at u = 0.5: 0.5 / (3 − 2·0.5) = 0.25 (the Rust time_grid test's value).
    expect(timeGrid(2, 3)).toEqual([0, 0.25, 1]);
    for (const shift of [0.5, 2, 4]) {
      const g = timeGrid(20, shift);
      expect(g[0]).toBe(0);
      expect(g[20]).toBe(1);
      for (let k = 1; k <= 20; k++) expect(g[k]).toBeGreaterThan(g[k - 1]);
      for (let k = 1; k < 20; k++) expect(shift > 1 ? g[k] < k / 20 : g[k] > k / 20).toBe(true);
    }
  });
  it('cfgMix: cfg 0 = unconditional, 1 = conditional, >1 extrapolates', () => {
    const c = f(1, 2), n = f(0, 4);
    expect(Array.from(cfgMix(c, n, 0))).toEqual([0, 4]);
    expect(Array.from(cfgMix(c, n, 1))).toEqual([1, 2]);
    expect(Array.from(cfgMix(c, n, 3))).toEqual([3, -2]);
    expect(() => cfgMix(f(1), f(1, 2), 1)).toThrow(/length/);
  });
  it('velocityFromXHat clamps the denominator near t = 1', () => {
    expect(Array.from(velocityFromXHat(f(1), f(0), 0.5))).toEqual([2]);
    expect(velocityFromXHat(f(1), f(0), 1)[0]).toBeCloseTo(20, 5);
  });
  it('Euler steps with a constant velocity land exactly on the preview estimate', () => {
    const x = f(-1, 0.5);
    const v = f(2, -1);
    const est = previewEstimate(x, v, 0);
    const steps = 4;
    for (let k = 0; k < steps; k++) eulerStep(x, v, 1 / steps);
    expect(Array.from(x)).toEqual(Array.from(est));
  });
  it('stochasticStep: η = 0 is the Euler step, η = 1 keeps only x̂ and the fresh noise', () => {
    const x0 = f(0.3, -1.2, 0.8), v = f(1.5, 0.4, -2), z = f(0.9, -0.1, 0.5);
    const euler = x0.slice();
    eulerStep(euler, v, 0.25);
    const s0 = x0.slice();
    stochasticStep(s0, v, 0.25, 0.5, 0, z);
    for (let i = 0; i < 3; i++) expect(s0[i]).toBeCloseTo(euler[i], 6);
    const s1 = x0.slice();
    stochasticStep(s1, v, 0.25, 0.5, 1, z);
    const xHat = previewEstimate(x0, v, 0.25);
    for (let i = 0; i < 3; i++) expect(s1[i]).toBeCloseTo(0.5 * xHat[i] + 0.5 * z[i], 6);
    expect(() => stochasticStep(x0.slice(), v, 0, 0.5, 0.5, f(1))).toThrow(/noise length/);
  });
  it('batchInputs duplicates x and pairs breed with the null class', () => {
    const b = batchInputs(f(1, 2), 0.25, 3, 12);
    expect(Array.from(b.xt)).toEqual([1, 2, 1, 2]);
    expect(Array.from(b.t)).toEqual([0.25, 0.25]);
    expect(Array.from(b.breed)).toEqual([3n, 12n]);
  });
  it('batchInputs without guidance is the conditional input alone (a copy)', () => {
    const x = f(1, 2);
    const b = batchInputs(x, 0.75, 3, 12, false);
    expect(Array.from(b.xt)).toEqual([1, 2]);
    expect(b.xt).not.toBe(x);
    expect(Array.from(b.t)).toEqual([0.75]);
    expect(Array.from(b.breed)).toEqual([3n]);
  });
  it('guidedAt: guidance while t ≤ guidanceTo', () => {
    const ts = timeGrid(10).slice(0, 10);
    expect(ts.filter((t) => guidedAt(t, 0.6)).length).toBe(7); // t = 0, 0.1, …, 0.6
    expect(ts.filter((t) => guidedAt(t, 1)).length).toBe(10);
    expect(ts.filter((t) => guidedAt(t, 0)).length).toBe(1);
    // Shift 4 puts 9 of 10 step starts at t ≤ 0.6 (the default's pass count in RESULTS).
    expect(timeGrid(10, 4).slice(0, 10).filter((t) => guidedAt(t, 0.6)).length).toBe(9);
  });
});

describe('previewDue', () => {
  it('decodes the first step and at most `max` per image, evenly spaced', () => {
    const due = (steps: number, max?: number) => Array.from({ length: steps }, (_, k) => k).filter((k) => previewDue(k, steps, max));
    expect(due(10)).toEqual([0, 3, 6, 9]);
    expect(due(20)).toEqual([0, 5, 10, 15]);
    expect(due(3)).toEqual([0, 1, 2]);
    expect(due(1)).toEqual([0]);
    expect(due(10, 1)).toEqual([0]);
    expect(due(10, 0)).toEqual([0]);
    for (const steps of [1, 2, 7, 10, 33, 50]) expect(due(steps).length).toBeLessThanOrEqual(4);
  });
});
