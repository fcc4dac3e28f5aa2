import { describe, expect, it } from 'vitest';
import { betterDirection, commonKeys, lastMetricsTable } from './compare';

describe('compare', () => {
  it('offers the keys every run has', () => {
    expect(commonKeys([['lr', 'train/loss', 'val/acc'], ['val/acc', 'train/loss'], ['train/loss', 'val/acc', 'x']])).toEqual(['train/loss', 'val/acc']);
    expect(commonKeys([])).toEqual([]);
    expect(commonKeys([['a'], ['b']])).toEqual([]);
  });
  it('knows which direction is better', () => {
    expect(betterDirection('val/loss')).toBe('min');
    expect(betterDirection('val/acc')).toBe('max');
    expect(betterDirection('val/macro_f1')).toBe('max');
    expect(betterDirection('lr')).toBeNull();
  });
  it('lays last values side by side and marks the best', () => {
    const rows = lastMetricsTable([
      { last_metrics: [['val/acc', 10, 0.5], ['train/loss', 10, 1.2], ['lr', 10, 1e-3]] },
      { last_metrics: [['val/acc', 20, 0.7], ['train/loss', 20, 0.9]] },
      { last_metrics: [['train/loss', 5, 2.0]] },
    ]);
    expect(rows.map((r) => r.key)).toEqual(['train/loss', 'val/acc', 'lr']);
    expect(rows[0].best).toBe(1);
    expect(rows[1].cells).toEqual([{ step: 10, value: 0.5 }, { step: 20, value: 0.7 }, null]);
    expect(rows[1].best).toBe(1);
    expect(rows[2].best).toBeNull();
  });
});
