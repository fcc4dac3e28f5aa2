// Pixel-layout conversions between canvas RGBA (HWC, uint8) and model tensors (CHW, float).

/** Source rectangle for "shorter side → size, then centre crop size×size": the centred square
 * of side min(w, h). Fractional offsets on purpose — the Rust preprocessing crops at
 * ((w − side)/2, (h − side)/2) without rounding, and drawImage accepts fractions too. */
export function centreCropRect(w: number, h: number): { sx: number; sy: number; sw: number; sh: number } {
  if (!(w > 0 && h > 0)) throw new Error(`cannot crop an empty image (${w}×${h})`);
  const side = Math.min(w, h);
  return { sx: (w - side) / 2, sy: (h - side) / 2, sw: side, sh: side };
}

/** Canvas RGBA bytes → float32 CHW RGB in [0, 1] (the classifier's input; its normalisation
 * lives inside the graph). Alpha is dropped, like the Rust loader does. */
export function rgbaToChw(rgba: Uint8ClampedArray | Uint8Array, width: number, height: number): Float32Array {
  const n = width * height;
  if (rgba.length !== n * 4) throw new Error(`rgbaToChw: expected ${n * 4} bytes, got ${rgba.length}`);
  const out = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) {
    out[i] = rgba[4 * i] / 255;
    out[n + i] = rgba[4 * i + 1] / 255;
    out[2 * n + i] = rgba[4 * i + 2] / 255;
  }
  return out;
}

/** Generator tensor (CHW, values in [−1, 1]) → opaque RGBA bytes:
 * round(clamp((x + 1)/2, 0, 1)·255). */
export function chwToRgba(chw: Float32Array, width: number, height: number): Uint8ClampedArray {
  const n = width * height;
  if (chw.length !== 3 * n) throw new Error(`chwToRgba: expected ${3 * n} values, got ${chw.length}`);
  const out = new Uint8ClampedArray(4 * n);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) {
      const v = (chw[c * n + i] + 1) / 2;
      // NaN → 0 explicitly; Math.min/max would propagate it.
      const cl = v > 0 ? (v < 1 ? v : 1) : 0;
      out[4 * i + c] = Math.round(cl * 255);
    }
    out[4 * i + 3] = 255;
  }
  return out;
}
