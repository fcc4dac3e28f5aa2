import { describe, expect, it } from 'vitest';
import { mean, percentile, topK } from './stats';

describe('stats', () => {
  it('percentile interpolates like numpy', () => {
    const v = [10, 1, 4, 3, 2, 5, 6, 7, 8, 9];
    expect(percentile(v, 50)).toBe(5.5);
    expect(percentile(v, 95)).toBeCloseTo(9.55, 10);
    expect(percentile(v, 0)).toBe(1);
    expect(percentile(v, 100)).toBe(10);
    expect(percentile([3], 95)).toBe(3);
    expect(percentile([], 50)).toBeNaN();
    expect(v).toEqual([10, 1, 4, 3, 2, 5, 6, 7, 8, 9]); // input not mutated
  });
  it('mean', () => {
    expect(mean([1, 2, 3])).toBe(2);
  });
  it('topK sorts by probability, ties by index', () => {
    const t = topK(new Float32Array([0.1, 0.5, 0.1, 0.3]), ['a', 'b', 'c', 'd'], 3);
    expect(t.map((e) => e.label)).toEqual(['b', 'd', 'a']);
  });
});
