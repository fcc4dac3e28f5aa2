// Predictions gallery logic: grouping by epoch, class names from the run params, labels.

import type { Prediction } from './api';

export interface PredictionGroups {
  /** Epochs ascending. */
  epochs: number[];
  byEpoch: Map<number, Prediction[]>;
}

export function groupByEpoch(preds: Prediction[]): PredictionGroups {
  const byEpoch = new Map<number, Prediction[]>();
  for (const p of preds) {
    const l = byEpoch.get(p.epoch);
    if (l) l.push(p);
    else byEpoch.set(p.epoch, [p]);
  }
  for (const l of byEpoch.values()) l.sort((a, b) => a.sample_id.localeCompare(b.sample_id));
  return { epochs: [...byEpoch.keys()].sort((a, b) => a - b), byEpoch };
}

/** The run's class names from its `classes` param ("a,b,c" or a JSON array), else null. */
export function classNames(params: [string, string][] | undefined): string[] | null {
  const raw = params?.find(([k]) => k === 'classes' || k.endsWith('.classes'))?.[1];
  if (!raw) return null;
  const t = raw.trim();
  if (t.startsWith('[')) {
    try {
      const a = JSON.parse(t) as unknown;
      if (Array.isArray(a)) return a.map(String);
    } catch {
      /* fall through to the comma list */
    }
  }
  const parts = t.split(',').map((s) => s.trim()).filter(Boolean);
  return parts.length ? parts : null;
}

/** A class index as its name when known, else the index itself. */
export function className(names: string[] | null, idx: number): string {
  const n = names?.[idx];
  return n !== undefined ? n : String(idx);
}

/** The true label's name: from the class names, else the breed of a generator sample id
 *  ("Bengal#seed1"), else the index. */
export function labelName(names: string[] | null, p: Pick<Prediction, 'label' | 'sample_id'>): string {
  if (names?.[p.label] !== undefined) return names[p.label];
  const m = /^(.+)#seed\d+$/.exec(p.sample_id);
  return m ? m[1] : String(p.label);
}

export const formatProb = (p: number) => (Number.isFinite(p) ? `${(p * 100).toFixed(1)}%` : '—');

/** Whether the top-1 class is the true label (null when there is no top list, e.g. generators). */
export function isCorrect(p: Prediction): boolean | null {
  if (!p.top.length) return null;
  return p.top[0][0] === p.label;
}

/** Index into `epochs` to show: keep the chosen epoch if still present, else the latest. */
export function pickEpochIndex(epochs: number[], chosen: number | null, follow: boolean): number {
  if (epochs.length === 0) return -1;
  if (!follow && chosen !== null) {
    const i = epochs.indexOf(chosen);
    if (i >= 0) return i;
    // The nearest earlier epoch, else the first.
    let best = 0;
    for (let j = 0; j < epochs.length; j++) if (epochs[j] <= chosen) best = j;
    return best;
  }
  return epochs.length - 1;
}

/** A sample's history across epochs, oldest first. */
export function sampleHistory(preds: Prediction[], sample: string): Prediction[] {
  return preds.filter((p) => p.sample_id === sample).sort((a, b) => a.epoch - b.epoch);
}
