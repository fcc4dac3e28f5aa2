// Runs table state: query (filter, sort, paging), selection for compare, jobs list helpers.

import type { Job, RunsPage, RunsQuery, SortKey, SortOrder } from './api';
import { MAX_COMPARE, MIN_COMPARE } from './route';

export const PAGE_SIZE = 20;

export interface RunsTableState {
  filter: string;
  sort: SortKey;
  order: SortOrder;
  limit: number;
  offset: number;
  /** Selected run ids, in click order. */
  selected: number[];
}

export const initialRunsState: RunsTableState = { filter: '', sort: 'started', order: 'desc', limit: PAGE_SIZE, offset: 0, selected: [] };

export type RunsAction =
  | { type: 'filter'; value: string }
  | { type: 'sort'; key: SortKey }
  | { type: 'next'; total?: number; shown: number }
  | { type: 'prev' }
  | { type: 'toggle'; id: number }
  | { type: 'clearSelection' };

/** Default direction when a column is first picked: newest first for times, A→Z otherwise. */
export const defaultOrder = (k: SortKey): SortOrder => (k === 'started' || k === 'ended' ? 'desc' : 'asc');

export function runsReducer(s: RunsTableState, a: RunsAction): RunsTableState {
  switch (a.type) {
    case 'filter':
      return a.value === s.filter ? s : { ...s, filter: a.value, offset: 0 };
    case 'sort':
      // Same column: flip; new column: its default direction. Either way back to page 1.
      return s.sort === a.key ? { ...s, order: s.order === 'asc' ? 'desc' : 'asc', offset: 0 } : { ...s, sort: a.key, order: defaultOrder(a.key), offset: 0 };
    case 'next':
      return hasNext(s, a.shown, a.total) ? { ...s, offset: s.offset + s.limit } : s;
    case 'prev':
      return s.offset === 0 ? s : { ...s, offset: Math.max(0, s.offset - s.limit) };
    case 'toggle': {
      if (s.selected.includes(a.id)) return { ...s, selected: s.selected.filter((x) => x !== a.id) };
      if (s.selected.length >= MAX_COMPARE) return s;
      return { ...s, selected: [...s.selected, a.id] };
    }
    case 'clearSelection':
      return { ...s, selected: [] };
  }
}

/** With a total: more rows after this page. Without (older server): a full page suggests more. */
export function hasNext(s: Pick<RunsTableState, 'offset' | 'limit'>, shown: number, total?: number): boolean {
  if (typeof total === 'number') return s.offset + s.limit < total;
  return shown >= s.limit;
}

export function runsQuery(s: RunsTableState): RunsQuery {
  return { filter: s.filter.trim() || undefined, limit: s.limit, offset: s.offset, sort: s.sort, order: s.order };
}

/** "21–40 of 57" (or "21–40" without a total, "0 runs" when empty). */
export function pageText(p: Pick<RunsPage, 'offset' | 'total'> & { shown: number }): string {
  if (p.shown === 0) return p.offset === 0 ? `0 runs${typeof p.total === 'number' && p.total > 0 ? ` (of ${p.total})` : ''}` : `no runs at offset ${p.offset}`;
  const range = `${p.offset + 1}–${p.offset + p.shown}`;
  return typeof p.total === 'number' ? `${range} of ${p.total}` : range;
}

export const canCompare = (selected: number[]) => selected.length >= MIN_COMPARE && selected.length <= MAX_COMPARE;

export function compareHash(selected: number[]): string {
  return `#compare/${[...selected].sort((a, b) => a - b).join(',')}`;
}

/** Arrow shown next to the sorted column header. */
export function sortIndicator(s: Pick<RunsTableState, 'sort' | 'order'>, key: SortKey): string {
  if (s.sort !== key) return '';
  return s.order === 'asc' ? ' ▲' : ' ▼';
}

/** Local time "2025-11-23 06:36:12" from unix seconds; '—' for null. */
export function formatTime(unix: number | null | undefined): string {
  if (unix === null || unix === undefined || !Number.isFinite(unix)) return '—';
  const d = new Date(unix * 1000);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** "1 h 02 min", "3 min 05 s", "12 s" between two unix times (end defaults to now). */
export function formatDuration(start: number, end: number | null, now = Date.now() / 1000): string {
  const s = Math.max(0, Math.round((end ?? now) - start));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/** Newest job first. */
export function sortJobs(jobs: Job[]): Job[] {
  return [...jobs].sort((a, b) => b.created - a.created || b.id - a.id);
}

/** Whether the jobs list should keep polling. */
export const anyActive = (jobs: Job[]) => jobs.some((j) => j.status === 'queued' || j.status === 'running');
