import { describe, expect, it } from 'vitest';
import { centreCropRect, chwToRgba, rgbaToChw } from './image';

describe('centreCropRect', () => {
  it('takes the centred square of the shorter side', () => {
    expect(centreCropRect(400, 300)).toEqual({ sx: 50, sy: 0, sw: 300, sh: 300 });
    expect(centreCropRect(300, 500)).toEqual({ sx: 0, sy: 100, sw: 300, sh: 300 });
    expect(centreCropRect(224, 224)).toEqual({ sx: 0, sy: 0, sw: 224, sh: 224 });
  });
  it('keeps fractional offsets like the Rust preprocessing', () => {
    expect(centreCropRect(101, 100)).toEqual({ sx: 0.5, sy: 0, sw: 100, sh: 100 });
  });
  it('rejects empty images', () => {
    expect(() => centreCropRect(0, 10)).toThrow(/empty/);
  });
});

describe('pixel layout', () => {
  it('rgbaToChw drops alpha and scales to [0, 1] planar', () => {
    const rgba = new Uint8ClampedArray([255, 0, 51, 9, 0, 255, 102, 9]); // 2×1
    const chw = rgbaToChw(rgba, 2, 1);
    expect(Array.from(chw).map((v) => +v.toFixed(3))).toEqual([1, 0, 0, 1, 0.2, 0.4]);
    expect(() => rgbaToChw(rgba, 3, 1)).toThrow();
  });
  it('chwToRgba maps [-1, 1] → [0, 255] with clamping, rounding and opaque alpha', () => {
    // 2 pixels: R plane, G plane, B plane
    const chw = new Float32Array([-1, 1, 0, 2, -3, NaN]);
    const rgba = chwToRgba(chw, 2, 1);
    expect(Array.from(rgba)).toEqual([0, 128, 0, 255, 255, 255, 0, 255]);
    expect(() => chwToRgba(chw, 3, 1)).toThrow();
  });
  it('round-trips 8-bit values through [0,1] and back to [-1,1] exactly', () => {
    const rgba = new Uint8ClampedArray(4 * 256);
    for (let i = 0; i < 256; i++) rgba.set([i, 255 - i, (i * 7) % 256, 255], 4 * i);
    const chw = rgbaToChw(rgba, 256, 1).map((v) => v * 2 - 1);
    expect(Array.from(chwToRgba(chw, 256, 1))).toEqual(Array.from(rgba));
  });
});
