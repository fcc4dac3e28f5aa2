// Hash routes: the inference pages (#classify, #generate, #benchmark) and the studio pages
// (#runs, #run/<id>, #compare/<id>,<id>,…, #new-job, #monitor). Hash routing works on any static
// host and leaves ?ep=… / ?token=… in the query untouched.

export type Route =
  | { page: 'classify' }
  | { page: 'generate' }
  | { page: 'benchmark' }
  | { page: 'runs' }
  | { page: 'run'; id: number }
  | { page: 'compare'; ids: number[] }
  | { page: 'new-job' }
  | { page: 'monitor' }
  | { page: 'not-found'; hash: string };

export const MAX_COMPARE = 5;
export const MIN_COMPARE = 2;

const SIMPLE = ['classify', 'generate', 'benchmark', 'runs', 'new-job', 'monitor'] as const;

const posInt = (s: string): number | null => (/^\d+$/.test(s) && Number(s) > 0 && Number.isSafeInteger(Number(s)) ? Number(s) : null);

export function parseRoute(hash: string): Route {
  const h = hash.replace(/^#\/?/, '').trim();
  if (h === '') return { page: 'classify' };
  if ((SIMPLE as readonly string[]).includes(h)) return { page: h as (typeof SIMPLE)[number] } as Route;
  const run = /^run\/(\d+)$/.exec(h);
  if (run) {
    const id = posInt(run[1]);
    if (id !== null) return { page: 'run', id };
  }
  const cmp = /^compare\/(.*)$/.exec(h);
  if (cmp) {
    const ids: number[] = [];
    for (const part of cmp[1].split(',')) {
      const id = posInt(part.trim());
      if (id !== null && !ids.includes(id)) ids.push(id);
    }
    return { page: 'compare', ids: ids.slice(0, MAX_COMPARE) };
  }
  return { page: 'not-found', hash: h };
}

export function routeHash(r: Route): string {
  switch (r.page) {
    case 'run':
      return `#run/${r.id}`;
    case 'compare':
      return `#compare/${r.ids.join(',')}`;
    case 'not-found':
      return `#${r.hash}`;
    default:
      return `#${r.page}`;
  }
}

/** Which nav entry is highlighted for a route. */
export function navPage(r: Route): string {
  if (r.page === 'run' || r.page === 'compare') return 'runs';
  return r.page;
}
