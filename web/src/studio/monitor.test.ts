import { describe, expect, it } from 'vitest';
import type { Snapshot } from './api';
import { asSnapshot, CPU_WINDOW, formatBytes, freeOfTotal, gpuText, initialMonitor, monitorReducer, usedOfTotal } from './monitor';

const snap = (time: number, percent = 10, extra: Partial<Snapshot> = {}): Snapshot => ({
  time,
  cpu: { cores: 2, percent },
  memory: { total_bytes: 8 * 2 ** 30, used_bytes: 2 * 2 ** 30 },
  disk: { path: '/', total_bytes: 100 * 2 ** 30, free_bytes: 40 * 2 ** 30 },
  gpus: [],
  gpu_note: 'NVML not found',
  jobs: [],
  ...extra,
});

describe('monitor', () => {
  it('keeps the latest snapshot and a 60-snapshot CPU window in time order', () => {
    let s = initialMonitor;
    for (let i = 0; i < 70; i++) s = monitorReducer(s, snap(1000 + 2 * i, i));
    expect(s.cpu).toHaveLength(CPU_WINDOW);
    expect(s.cpu[0].percent).toBe(10);
    expect(s.snapshot!.cpu.percent).toBe(69);
    // A duplicate (REST first paint after the channel) or older snapshot adds no point.
    const again = monitorReducer(s, snap(1000 + 2 * 69, 69));
    expect(again.cpu).toHaveLength(CPU_WINDOW);
    expect(monitorReducer(s, snap(5, 1)).snapshot!.time).toBe(1138);
  });
  it('accepts snapshot bodies and rejects others', () => {
    expect(asSnapshot(snap(1))).toMatchObject({ cpu: { percent: 10 } });
    expect(asSnapshot({ cpu: { percent: 3 }, memory: {}, disk: {} })!.gpus).toEqual([]);
    expect(asSnapshot({ kind: 'step' })).toBeNull();
    expect(asSnapshot(null)).toBeNull();
  });
  it('formats sizes and GPUs', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(3 * 2 ** 30)).toBe('3.0 GiB');
    expect(formatBytes(-1)).toBe('—');
    expect(usedOfTotal(2 * 2 ** 30, 8 * 2 ** 30)).toBe('2.0 GiB / 8.0 GiB (25.0 %)');
    expect(freeOfTotal(40 * 2 ** 30, 100 * 2 ** 30)).toBe('40.0 GiB free of 100.0 GiB');
    expect(gpuText(snap(1))).toEqual(['no GPU (NVML not found)']);
    expect(gpuText(snap(1, 1, { gpus: [{ name: 'H100', util_percent: 50, mem_used_bytes: 2 ** 30, mem_total_bytes: 2 ** 32 }] }))).toEqual(['GPU 0: H100 · 50.0 % · 1.0 GiB / 4.0 GiB (25.0 %)']);
  });
});
