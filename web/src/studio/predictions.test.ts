import { describe, expect, it } from 'vitest';
import type { Prediction } from './api';
import { className, classNames, labelName, formatProb, groupByEpoch, isCorrect, pickEpochIndex, sampleHistory } from './predictions';

const p = (epoch: number, sample_id: string, label = 0, top: [number, number][] = [], image: string | null = null): Prediction => ({ epoch, step: epoch * 10, sample_id, label, top, image });

describe('predictions gallery', () => {
  it('groups by epoch, epochs ascending, samples sorted', () => {
    const g = groupByEpoch([p(2, 'b'), p(0, 'z'), p(2, 'a'), p(1, 'x')]);
    expect(g.epochs).toEqual([0, 1, 2]);
    expect(g.byEpoch.get(2)!.map((x) => x.sample_id)).toEqual(['a', 'b']);
    expect(groupByEpoch([]).epochs).toEqual([]);
  });
  it('reads class names from the classes param (comma list or JSON)', () => {
    expect(classNames([['model.preset', 'tiny'], ['classes', 'Abyssinian,Bengal, other']])).toEqual(['Abyssinian', 'Bengal', 'other']);
    expect(classNames([['classes', '["a","b"]']])).toEqual(['a', 'b']);
    expect(classNames([['data.classes', 'x,y']])).toEqual(['x', 'y']);
    expect(classNames([['train.steps', '5']])).toBeNull();
    expect(classNames(undefined)).toBeNull();
    expect(className(['a', 'b'], 1)).toBe('b');
    expect(className(['a', 'b'], 7)).toBe('7');
    expect(className(null, 3)).toBe('3');
    expect(labelName(['a', 'b'], p(0, 'sha', 1))).toBe('b');
    expect(labelName(null, p(0, 'Bengal#seed1', 1))).toBe('Bengal');
    expect(labelName(null, p(0, 'deadbeef', 4))).toBe('4');
  });
  it('formats probabilities and correctness', () => {
    expect(formatProb(0.8734)).toBe('87.3%');
    expect(formatProb(NaN)).toBe('—');
    expect(isCorrect(p(0, 's', 2, [[2, 0.9], [1, 0.05]]))).toBe(true);
    expect(isCorrect(p(0, 's', 1, [[2, 0.9]]))).toBe(false);
    expect(isCorrect(p(0, 's', 1, []))).toBeNull();
  });
  it('follows the latest epoch until the user picks one', () => {
    expect(pickEpochIndex([], null, true)).toBe(-1);
    expect(pickEpochIndex([0, 1, 2], null, true)).toBe(2);
    expect(pickEpochIndex([0, 1, 2, 3], 1, false)).toBe(1);
    expect(pickEpochIndex([0, 20, 40], 30, false)).toBe(1);
    expect(pickEpochIndex([20, 40], 5, false)).toBe(0);
  });
  it('extracts one sample across epochs', () => {
    expect(sampleHistory([p(2, 'a'), p(0, 'a'), p(1, 'b')], 'a').map((x) => x.epoch)).toEqual([0, 2]);
  });
});
