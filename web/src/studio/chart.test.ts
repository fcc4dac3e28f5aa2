import { describe, expect, it } from 'vitest';
import { colorFor, extentOf, formatValue, PALETTE, polylinePoints, pushRolling, scaleX, scaleY, withDomain, type Box } from './chart';

const box: Box = { width: 110, height: 60, pad: { l: 10, r: 0, t: 0, b: 10 } };

describe('chart maths', () => {
  it('finds the extent over all series, ignoring non-finite values', () => {
    expect(extentOf([[{ step: 0, value: 1 }, { step: 10, value: NaN }], [{ step: 5, value: -1 }, { step: 20, value: 3 }]])).toEqual({ xmin: 0, xmax: 20, ymin: -1, ymax: 3 });
    expect(extentOf([[], []])).toBeNull();
  });
  it('widens flat ranges so one point has a place', () => {
    expect(extentOf([[{ step: 5, value: 2 }]])).toEqual({ xmin: 4, xmax: 6, ymin: 1.9, ymax: 2.1 });
    expect(extentOf([[{ step: 5, value: 0 }]])).toEqual({ xmin: 4, xmax: 6, ymin: -1, ymax: 1 });
  });
  it('scales into the padded box with y up', () => {
    const e = { xmin: 0, xmax: 100, ymin: 0, ymax: 50 };
    expect(scaleX(0, e, box)).toBe(10);
    expect(scaleX(100, e, box)).toBe(110);
    expect(scaleY(0, e, box)).toBe(50);
    expect(scaleY(50, e, box)).toBe(0);
    expect(polylinePoints([{ step: 0, value: 0 }, { step: 50, value: 25 }, { step: 60, value: NaN }], e, box)).toBe('10,50 60,25');
  });
  it('formats axis labels compactly', () => {
    expect(formatValue(0)).toBe('0');
    expect(formatValue(1234)).toBe('1234');
    expect(formatValue(0.123456)).toBe('0.123');
    expect(formatValue(2.5e-5)).toBe('2.50e-5');
    expect(formatValue(3e7)).toBe('3.00e+7');
  });
  it('cycles colours and keeps a rolling window', () => {
    expect(colorFor(0)).toBe(PALETTE[0]);
    expect(colorFor(PALETTE.length)).toBe(PALETTE[0]);
    let w: number[] = [];
    for (let i = 0; i < 70; i++) w = pushRolling(w, i, 60);
    expect(w).toHaveLength(60);
    expect(w[0]).toBe(10);
    expect(w.at(-1)).toBe(69);
  });
});

describe('fixed y domain', () => {
  it('widens to the domain and keeps data outside it', () => {
    expect(withDomain({ xmin: 0, xmax: 1, ymin: 20, ymax: 30 }, [0, 100])).toEqual({ xmin: 0, xmax: 1, ymin: 0, ymax: 100 });
    expect(withDomain({ xmin: 0, xmax: 1, ymin: -5, ymax: 130 }, [0, 100])).toEqual({ xmin: 0, xmax: 1, ymin: -5, ymax: 130 });
    expect(withDomain(null, [0, 100])).toBeNull();
    const e = { xmin: 0, xmax: 1, ymin: 2, ymax: 3 };
    expect(withDomain(e)).toBe(e);
  });
});
