// Chart maths for the hand-written SVG line charts: extents, scaling, path strings, labels.

import type { Point } from './api';

export interface Extent {
  xmin: number;
  xmax: number;
  ymin: number;
  ymax: number;
}

/** Bounds over all series (non-finite values ignored); null when there is nothing to draw.
 *  A flat range is widened so a single point or a constant series still has a height. */
export function extentOf(series: Point[][]): Extent | null {
  let xmin = Infinity;
  let xmax = -Infinity;
  let ymin = Infinity;
  let ymax = -Infinity;
  for (const s of series)
    for (const p of s) {
      if (!Number.isFinite(p.step) || !Number.isFinite(p.value)) continue;
      xmin = Math.min(xmin, p.step);
      xmax = Math.max(xmax, p.step);
      ymin = Math.min(ymin, p.value);
      ymax = Math.max(ymax, p.value);
    }
  if (xmin === Infinity) return null;
  if (xmax === xmin) {
    xmin -= 1;
    xmax += 1;
  }
  if (ymax === ymin) {
    const d = Math.abs(ymin) * 0.05 || 1;
    ymin -= d;
    ymax += d;
  }
  return { xmin, xmax, ymin, ymax };
}

/** The extent with its y range widened to include `domain` (null stays null). */
export function withDomain(e: Extent | null, domain?: [number, number]): Extent | null {
  if (!e || !domain) return e;
  return { ...e, ymin: Math.min(e.ymin, domain[0]), ymax: Math.max(e.ymax, domain[1]) };
}

export interface Box {
  width: number;
  height: number;
  /** Inner padding left/right/top/bottom, in SVG units. */
  pad: { l: number; r: number; t: number; b: number };
}

export function scaleX(x: number, e: Extent, box: Box): number {
  return box.pad.l + ((x - e.xmin) / (e.xmax - e.xmin)) * (box.width - box.pad.l - box.pad.r);
}

export function scaleY(y: number, e: Extent, box: Box): number {
  return box.height - box.pad.b - ((y - e.ymin) / (e.ymax - e.ymin)) * (box.height - box.pad.t - box.pad.b);
}

const r2 = (n: number) => Math.round(n * 100) / 100;

/** Polyline points attribute "x,y x,y …" (non-finite points skipped). */
export function polylinePoints(points: Point[], e: Extent, box: Box): string {
  const out: string[] = [];
  for (const p of points) {
    if (!Number.isFinite(p.step) || !Number.isFinite(p.value)) continue;
    out.push(`${r2(scaleX(p.step, e, box))},${r2(scaleY(p.value, e, box))}`);
  }
  return out.join(' ');
}

/** Compact axis label: 3 significant digits, exponent form for very small/large values. */
export function formatValue(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(2);
  if (Number.isInteger(v)) return String(v);
  return String(Number(v.toPrecision(3)));
}

/** One colour per series (colour-blind-friendly Okabe-Ito order). */
export const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000'];
export const colorFor = (i: number) => PALETTE[i % PALETTE.length];

/** Keeps the last `n` items after appending `v`. */
export function pushRolling<T>(arr: T[], v: T, n: number): T[] {
  const out = arr.length >= n ? arr.slice(arr.length - n + 1) : arr.slice();
  out.push(v);
  return out;
}
