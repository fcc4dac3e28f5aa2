/** Percentile with linear interpolation between closest ranks (numpy's default), p in [0, 100]. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const pos = ((s.length - 1) * Math.min(Math.max(p, 0), 100)) / 100;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

export function mean(values: readonly number[]): number {
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : NaN;
}

export interface TopEntry {
  index: number;
  label: string;
  prob: number;
}

/** Top-k classes by probability (stable for ties: lower index first). */
export function topK(probs: ArrayLike<number>, labels: readonly string[], k: number): TopEntry[] {
  const idx = Array.from({ length: probs.length }, (_, i) => i);
  idx.sort((a, b) => probs[b] - probs[a] || a - b);
  return idx.slice(0, k).map((i) => ({ index: i, label: labels[i] ?? `class ${i}`, prob: probs[i] }));
}
