import { describe, expect, it } from 'vitest';
import type { Job } from './api';
import { anyActive, canCompare, compareHash, formatDuration, hasNext, initialRunsState, pageText, runsQuery, runsReducer, sortIndicator, sortJobs } from './runsState';

describe('runs table state', () => {
  it('sorts: a new column takes its default order, the same column flips; both reset paging', () => {
    let s = { ...initialRunsState, offset: 40 };
    expect(s.sort).toBe('started');
    s = runsReducer(s, { type: 'sort', key: 'name' });
    expect([s.sort, s.order, s.offset]).toEqual(['name', 'asc', 0]);
    s = runsReducer({ ...s, offset: 20 }, { type: 'sort', key: 'name' });
    expect([s.sort, s.order, s.offset]).toEqual(['name', 'desc', 0]);
    s = runsReducer(s, { type: 'sort', key: 'ended' });
    expect([s.sort, s.order]).toEqual(['ended', 'desc']);
    expect(sortIndicator(s, 'ended')).toBe(' ▼');
    expect(sortIndicator(s, 'name')).toBe('');
  });
  it('pages with and without a total', () => {
    let s = { ...initialRunsState, limit: 20 };
    s = runsReducer(s, { type: 'next', total: 45, shown: 20 });
    expect(s.offset).toBe(20);
    s = runsReducer(s, { type: 'next', total: 45, shown: 20 });
    expect(s.offset).toBe(40);
    expect(runsReducer(s, { type: 'next', total: 45, shown: 5 }).offset).toBe(40);
    s = runsReducer(s, { type: 'prev' });
    s = runsReducer(s, { type: 'prev' });
    expect(runsReducer(s, { type: 'prev' }).offset).toBe(0);
    // Without a total: a full page means there may be more.
    expect(hasNext({ offset: 0, limit: 20 }, 20)).toBe(true);
    expect(hasNext({ offset: 0, limit: 20 }, 19)).toBe(false);
    expect(hasNext({ offset: 0, limit: 20 }, 20, 20)).toBe(false);
  });
  it('filtering goes back to the first page and builds the query', () => {
    const s = runsReducer({ ...initialRunsState, offset: 60 }, { type: 'filter', value: '  gen ' });
    expect(s.offset).toBe(0);
    expect(runsQuery(s)).toEqual({ filter: 'gen', limit: 20, offset: 0, sort: 'started', order: 'desc' });
    expect(runsQuery(runsReducer(s, { type: 'filter', value: '   ' })).filter).toBeUndefined();
  });
  it('selects at most five runs for compare', () => {
    let s = initialRunsState;
    for (const id of [5, 3, 9, 1, 7, 8]) s = runsReducer(s, { type: 'toggle', id });
    expect(s.selected).toEqual([5, 3, 9, 1, 7]);
    s = runsReducer(s, { type: 'toggle', id: 9 });
    expect(s.selected).toEqual([5, 3, 1, 7]);
    expect(canCompare(s.selected)).toBe(true);
    expect(canCompare([1])).toBe(false);
    expect(compareHash([5, 3, 1])).toBe('#compare/1,3,5');
    expect(runsReducer(s, { type: 'clearSelection' }).selected).toEqual([]);
  });
  it('describes the page', () => {
    expect(pageText({ offset: 20, total: 57, shown: 20 })).toBe('21–40 of 57');
    expect(pageText({ offset: 0, shown: 3 })).toBe('1–3');
    expect(pageText({ offset: 0, total: 0, shown: 0 })).toBe('0 runs');
    expect(pageText({ offset: 40, total: 12, shown: 0 })).toBe('no runs at offset 40');
  });
  it('formats durations', () => {
    expect(formatDuration(100, 112)).toBe('12 s');
    expect(formatDuration(100, 100 + 185)).toBe('3 min 05 s');
    expect(formatDuration(0, 3720)).toBe('1 h 02 min');
    expect(formatDuration(0, null, 30)).toBe('30 s');
  });
  it('orders jobs newest first and knows when to keep polling', () => {
    const j = (id: number, created: number, status: Job['status']): Job => ({ id, created, status, kind: 'generator', name: `j${id}`, started: null, ended: null, run_id: null, run_dir: '', error: null, pid: null });
    const jobs = [j(1, 10, 'finished'), j(3, 30, 'cancelled'), j(2, 30, 'running')];
    expect(sortJobs(jobs).map((x) => x.id)).toEqual([3, 2, 1]);
    expect(anyActive(jobs)).toBe(true);
    expect(anyActive([jobs[0], jobs[1]])).toBe(false);
  });
});
