// New-job form logic: read and edit single keys of a TOML config (line-based; enough for the
// flat `[section]\nkey = value` files in configs/), and turn the Predictions panel into
// `--set`-style overrides that the server applies on top of the config text.

import type { RunKind } from './api';

/** Splits `a.b.c` into the section `a.b` and the name `c`. */
function splitKey(key: string): [string, string] {
  const i = key.lastIndexOf('.');
  return i < 0 ? ['', key] : [key.slice(0, i), key.slice(i + 1)];
}

/** The value part of `key = value # comment`, comment and surrounding space removed. */
function stripComment(v: string): string {
  let quote: string | null = null;
  for (let i = 0; i < v.length; i++) {
    const c = v[i];
    if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '#') return v.slice(0, i).trim();
  }
  return v.trim();
}

interface Line {
  index: number;
  section: string;
  name: string | null;
  /** Raw value text (comment stripped) for key lines. */
  value: string;
  /** Offset of the value's first character in the line (key lines). */
  valueStart: number;
}

function scan(text: string): { lines: string[]; parsed: Line[] } {
  const lines = text.split('\n');
  const parsed: Line[] = [];
  let section = '';
  lines.forEach((raw, index) => {
    const line = raw.replace(/\r$/, '');
    const t = line.trim();
    const hdr = /^\[\s*([A-Za-z0-9_.\-\s"]+?)\s*\]\s*(#.*)?$/.exec(t);
    if (hdr && !t.startsWith('[[')) {
      section = hdr[1].replace(/\s*\.\s*/g, '.').replace(/"/g, '');
      parsed.push({ index, section, name: null, value: '', valueStart: 0 });
      return;
    }
    const kv = /^(\s*)([A-Za-z0-9_-]+)(\s*=\s*)(.*)$/.exec(line);
    if (kv) {
      parsed.push({ index, section, name: kv[2], value: stripComment(kv[4]), valueStart: kv[1].length + kv[2].length + kv[3].length });
      return;
    }
    parsed.push({ index, section, name: null, value: '', valueStart: 0 });
  });
  return { lines, parsed };
}

/** The raw TOML value of `section.name` (e.g. `20`, `"epoch"`, `[1, 2]`), or null when absent. */
export function getTomlValue(text: string, key: string): string | null {
  const [section, name] = splitKey(key);
  const { parsed } = scan(text);
  for (const l of parsed) if (l.name === name && l.section === section) return l.value;
  return null;
}

export type TomlScalar = string | number | boolean | TomlScalar[];

/** A single-line TOML value as JS (strings, numbers, booleans, flat arrays); null if not one. */
export function parseTomlValue(raw: string | null): TomlScalar | null {
  if (raw === null) return null;
  const t = raw.trim();
  if (t === 'true') return true;
  if (t === 'false') return false;
  if (/^"(?:[^"\\]|\\.)*"$/.test(t)) {
    try {
      return JSON.parse(t) as string;
    } catch {
      return t.slice(1, -1);
    }
  }
  if (/^'[^']*'$/.test(t)) return t.slice(1, -1);
  const n = t.replace(/_/g, '');
  if (/^[+-]?(\d+(\.\d*)?([eE][+-]?\d+)?|\.\d+)$/.test(n)) return Number(n);
  if (t.startsWith('[') && t.endsWith(']')) {
    const inner = t.slice(1, -1).trim();
    if (inner === '') return [];
    const items: TomlScalar[] = [];
    for (const part of splitTopLevel(inner)) {
      if (part.trim() === '') continue;
      const v = parseTomlValue(part);
      if (v === null) return null;
      items.push(v);
    }
    return items;
  }
  return null;
}

function splitTopLevel(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quote: string | null = null;
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quote) {
      if (c === '\\' && quote === '"') {
        cur += c + (s[i + 1] ?? '');
        i++;
        continue;
      }
      if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '[') depth++;
    else if (c === ']') depth--;
    else if (c === ',' && depth === 0) {
      out.push(cur);
      cur = '';
      continue;
    }
    cur += c;
  }
  out.push(cur);
  return out;
}

/** `text` with `section.name = raw`: replaces the existing value (keeping a trailing comment),
 *  else adds the key at the end of its section, else appends the section. */
export function setTomlValue(text: string, key: string, raw: string): string {
  const [section, name] = splitKey(key);
  const { lines, parsed } = scan(text);
  const hit = parsed.find((l) => l.name === name && l.section === section);
  if (hit) {
    const line = lines[hit.index];
    const rest = line.slice(hit.valueStart);
    const valueText = stripComment(rest);
    const after = rest.slice(rest.indexOf(valueText) + valueText.length);
    lines[hit.index] = line.slice(0, hit.valueStart) + raw + after;
    return lines.join('\n');
  }
  if (section === '') {
    // Root keys go before the first table.
    const first = parsed.find((l) => l.name === null && isHeader(lines[l.index]));
    lines.splice(first ? first.index : lines.length, 0, `${name} = ${raw}`);
    return lines.join('\n');
  }
  const header = parsed.find((l) => l.name === null && l.section === section && isHeader(lines[l.index]));
  if (header) {
    // After the last key of the section, or right after its header.
    let at = header.index;
    for (const l of parsed) {
      if (l.index <= header.index) continue;
      if (l.section !== section) break;
      if (l.name !== null) at = l.index;
    }
    lines.splice(at + 1, 0, `${name} = ${raw}`);
    return lines.join('\n');
  }
  const sep = text === '' || text.endsWith('\n\n') ? '' : text.endsWith('\n') ? '\n' : '\n\n';
  return `${text}${sep}[${section}]\n${name} = ${raw}\n`;
}

function isHeader(line: string): boolean {
  const t = line.trim();
  return t.startsWith('[') && !t.startsWith('[[');
}

/** The new-job Predictions panel, as typed (strings for the number boxes). */
export interface PredPanel {
  enabled: boolean;
  /** Classifier: how many fixed validation samples (blank: keep the config's, e.g. an id list);
   *  generator: images per breed (seeds). */
  samples: string;
  /** Classifier: "epoch" or a step count; generator: a step count. */
  every: string;
  seed: string;
}

export const PANEL_DEFAULTS: Record<RunKind, PredPanel> = {
  classifier: { enabled: true, samples: '24', every: 'epoch', seed: '0' },
  generator: { enabled: true, samples: '1', every: '500', seed: '1' },
};

const str = (v: TomlScalar | null): string | null => (v === null || Array.isArray(v) ? null : String(v));

/** Panel values as written in the config text (defaults where a key is missing). */
export function panelFromConfig(kind: RunKind, text: string): PredPanel {
  const d = PANEL_DEFAULTS[kind];
  const get = (k: string) => parseTomlValue(getTomlValue(text, `predictions.${k}`));
  const enabled = get('enabled');
  const every = str(get('every')) ?? d.every;
  if (kind === 'generator') {
    const seeds = get('seeds');
    const list = Array.isArray(seeds) ? seeds.filter((s): s is number => typeof s === 'number') : null;
    return {
      enabled: typeof enabled === 'boolean' ? enabled : d.enabled,
      every,
      samples: list && list.length ? String(list.length) : d.samples,
      seed: list && list.length ? String(list[0]) : d.seed,
    };
  }
  const samples = get('samples');
  // An explicit id list stays in the config text: the panel leaves it blank and sends no count.
  const samplesText = Array.isArray(samples) ? '' : (str(samples) ?? d.samples);
  return { enabled: typeof enabled === 'boolean' ? enabled : d.enabled, every, samples: samplesText, seed: str(get('seed')) ?? d.seed };
}

export interface PanelOverrides {
  set: string[];
  /** Field → message for values that cannot be sent. */
  errors: Partial<Record<keyof PredPanel, string>>;
}

const intIn = (s: string, lo: number, hi: number): number | null => {
  const t = s.trim();
  if (!/^\d+$/.test(t)) return null;
  const n = Number(t);
  return n >= lo && n <= hi ? n : null;
};

/** The panel as `key=value` overrides (TOML values), or field errors. Disabled predictions send
 *  only `predictions.enabled=false`. Generator: `samples` seeds starting at `seed`. */
export function panelOverrides(kind: RunKind, p: PredPanel): PanelOverrides {
  if (!p.enabled) return { set: ['predictions.enabled=false'], errors: {} };
  const errors: PanelOverrides['errors'] = {};
  const keepIds = kind === 'classifier' && p.samples.trim() === '';
  const samples = keepIds ? 0 : intIn(p.samples, 1, kind === 'generator' ? 16 : 1000);
  if (samples === null) errors.samples = kind === 'generator' ? 'samples: a whole number 1–16 (images per breed)' : 'samples: a whole number 1–1000';
  const seed = intIn(p.seed, 0, 2 ** 32 - 1);
  if (seed === null) errors.seed = 'seed: a whole number ≥ 0';
  const everyText = p.every.trim().toLowerCase();
  let every: string | null = null;
  if (kind === 'classifier' && everyText === 'epoch') every = '"epoch"';
  else {
    const n = intIn(everyText, 1, 1e9);
    if (n !== null) every = String(n);
  }
  if (every === null) errors.every = kind === 'classifier' ? 'every: "epoch" or a number of steps' : 'every: a number of steps';
  if (samples === null || seed === null || every === null) return { set: [], errors };
  if (kind === 'generator') {
    const seeds = Array.from({ length: samples }, (_, i) => seed + i);
    return { set: ['predictions.enabled=true', `predictions.every=${every}`, `predictions.seeds=[${seeds.join(', ')}]`], errors };
  }
  const set = ['predictions.enabled=true'];
  if (!keepIds) set.push(`predictions.samples=${samples}`);
  set.push(`predictions.every=${every}`, `predictions.seed=${seed}`);
  return { set, errors };
}

/** The config text with the panel's overrides written into it (so it stands on its own). */
export function applyOverrides(text: string, set: string[]): string {
  let out = text;
  for (const kv of set) {
    const i = kv.indexOf('=');
    if (i < 0) continue;
    out = setTomlValue(out, kv.slice(0, i).trim(), kv.slice(i + 1).trim());
  }
  return out;
}

/** The job name to send (trimmed), or undefined to let the server pick one. */
export function cleanJobName(name: string): string | undefined {
  const t = name.trim();
  return t === '' ? undefined : t;
}
