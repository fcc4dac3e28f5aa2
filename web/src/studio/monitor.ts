// Monitor page state: the latest system snapshot plus a rolling CPU history.

import type { Snapshot } from './api';
import { pushRolling } from './chart';

export const CPU_WINDOW = 60;

export interface MonitorState {
  snapshot: Snapshot | null;
  /** CPU percent of the last CPU_WINDOW snapshots, oldest first. */
  cpu: { time: number; percent: number }[];
}

export const initialMonitor: MonitorState = { snapshot: null, cpu: [] };

/** A snapshot body (from /api/system or a `system` channel event), or null if it is not one. */
export function asSnapshot(body: unknown): Snapshot | null {
  if (!body || typeof body !== 'object') return null;
  const b = body as Partial<Snapshot>;
  if (!b.cpu || typeof b.cpu.percent !== 'number' || !b.memory || !b.disk) return null;
  return { time: typeof b.time === 'number' ? b.time : Date.now() / 1000, gpus: [], gpu_note: null, jobs: [], ...b } as Snapshot;
}

export function monitorReducer(s: MonitorState, snap: Snapshot): MonitorState {
  // Snapshots can arrive twice (first paint via REST, then the channel); keep time order.
  const last = s.cpu[s.cpu.length - 1];
  if (last && snap.time <= last.time) return s.snapshot && snap.time < s.snapshot.time ? s : { ...s, snapshot: snap };
  return { snapshot: snap, cpu: pushRolling(s.cpu, { time: snap.time, percent: snap.cpu.percent }, CPU_WINDOW) };
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '—';
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${UNITS[u]}`;
}

export const formatPercent = (p: number) => (Number.isFinite(p) ? `${p.toFixed(1)} %` : '—');

/** "3.2 GiB / 15.6 GiB (20.5 %)" */
export function usedOfTotal(used: number, total: number): string {
  const pct = total > 0 ? ` (${((100 * used) / total).toFixed(1)} %)` : '';
  return `${formatBytes(used)} / ${formatBytes(total)}${pct}`;
}

/** "40.1 GiB free of 64.0 GiB" */
export function freeOfTotal(free: number, total: number): string {
  return `${formatBytes(free)} free of ${formatBytes(total)}`;
}

export function gpuText(s: Snapshot): string[] {
  if (!s.gpus || s.gpus.length === 0) return [`no GPU (${s.gpu_note || 'none reported'})`];
  return s.gpus.map((g, i) => `GPU ${i}: ${g.name} · ${formatPercent(g.util_percent)} · ${usedOfTotal(g.mem_used_bytes, g.mem_total_bytes)}`);
}
