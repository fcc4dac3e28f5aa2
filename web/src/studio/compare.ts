// Compare page logic: the metric keys every run has, and the last values side by side.

import type { RunDetail } from './api';
import { metricKeys } from './series';

/** Keys present in every list, in the run page's order (train/loss first). */
export function commonKeys(lists: string[][]): string[] {
  if (lists.length === 0) return [];
  const [first, ...rest] = lists;
  const common = first.filter((k) => rest.every((l) => l.includes(k)));
  return metricKeys([...new Set(common)], {});
}

/** Lower is better for losses, higher for accuracies and F1; null: no notion of best. */
export function betterDirection(key: string): 'min' | 'max' | null {
  if (/loss/.test(key)) return 'min';
  if (/(acc|f1|auc|agreement)/.test(key)) return 'max';
  if (/fid/i.test(key)) return 'min';
  return null;
}

export interface LastRow {
  key: string;
  cells: ({ step: number; value: number } | null)[];
  /** Column of the best value (null when undecidable or fewer than two values). */
  best: number | null;
}

/** One row per metric key of any run (sorted like the picker), one cell per run. */
export function lastMetricsTable(details: Pick<RunDetail, 'last_metrics'>[]): LastRow[] {
  const keys = metricKeys([...new Set(details.flatMap((d) => d.last_metrics.map(([k]) => k)))], {});
  return keys.map((key) => {
    const cells = details.map((d) => {
      const m = d.last_metrics.find(([k]) => k === key);
      return m ? { step: m[1], value: m[2] } : null;
    });
    const dir = betterDirection(key);
    let best: number | null = null;
    if (dir && cells.filter((c) => c && Number.isFinite(c.value)).length >= 2) {
      cells.forEach((c, i) => {
        if (!c || !Number.isFinite(c.value)) return;
        const b = best === null ? null : cells[best]!.value;
        if (b === null || (dir === 'min' ? c.value < b : c.value > b)) best = i;
      });
    }
    return { key, cells, best };
  });
}
