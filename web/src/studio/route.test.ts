import { describe, expect, it } from 'vitest';
import { navPage, parseRoute, routeHash } from './route';

describe('hash routes', () => {
  it('keeps the inference pages and defaults to classify', () => {
    expect(parseRoute('')).toEqual({ page: 'classify' });
    expect(parseRoute('#')).toEqual({ page: 'classify' });
    expect(parseRoute('#generate')).toEqual({ page: 'generate' });
    expect(parseRoute('#/benchmark')).toEqual({ page: 'benchmark' });
  });
  it('parses the studio pages', () => {
    expect(parseRoute('#runs')).toEqual({ page: 'runs' });
    expect(parseRoute('#run/12')).toEqual({ page: 'run', id: 12 });
    expect(parseRoute('#new-job')).toEqual({ page: 'new-job' });
    expect(parseRoute('#monitor')).toEqual({ page: 'monitor' });
  });
  it('parses compare lists: deduplicated, at most 5, junk dropped', () => {
    expect(parseRoute('#compare/1,2')).toEqual({ page: 'compare', ids: [1, 2] });
    expect(parseRoute('#compare/3, 1,3,x,0,7,8,9,10')).toEqual({ page: 'compare', ids: [3, 1, 7, 8, 9] });
    expect(parseRoute('#compare/')).toEqual({ page: 'compare', ids: [] });
  });
  it('reports unknown routes', () => {
    expect(parseRoute('#run/abc')).toEqual({ page: 'not-found', hash: 'run/abc' });
    expect(parseRoute('#run/0')).toEqual({ page: 'not-found', hash: 'run/0' });
    expect(parseRoute('#nope')).toEqual({ page: 'not-found', hash: 'nope' });
  });
  it('round-trips and highlights the right nav entry', () => {
    for (const h of ['#runs', '#run/4', '#compare/1,2,3', '#new-job', '#monitor', '#classify']) expect(routeHash(parseRoute(h))).toBe(h);
    expect(navPage(parseRoute('#run/4'))).toBe('runs');
    expect(navPage(parseRoute('#compare/1,2'))).toBe('runs');
    expect(navPage(parseRoute('#monitor'))).toBe('monitor');
  });
});
