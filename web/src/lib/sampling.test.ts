import { describe, expect, it } from 'vitest';
import { batchInputs, cfgMix, eulerStep, guidedAt, previewEstimate, timesteps, velocityFromXHat } from './sampling';

const f = (...v: number[]) => new Float32Array(v);

describe('sampling maths', () => {
  it('timesteps are k/steps for k < steps', () => {
    expect(timesteps(4)).toEqual([0, 0.25, 0.5, 0.75]);
    expect(timesteps(1)).toEqual([0]);
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
    const ts = timesteps(10);
    expect(ts.filter((t) => guidedAt(t, 0.6)).length).toBe(7); // t = 0, 0.1, …, 0.6
    expect(ts.filter((t) => guidedAt(t, 1)).length).toBe(10);
    expect(ts.filter((t) => guidedAt(t, 0)).length).toBe(1);
  });
});
