import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { applyOverrides, cleanJobName, getTomlValue, PANEL_DEFAULTS, panelFromConfig, panelOverrides, parseTomlValue, setTomlValue } from './configEdit';

const here = path.dirname(fileURLToPath(import.meta.url));
const shipped = (name: string) => readFileSync(path.resolve(here, '../../../configs', name), 'utf8');

describe('TOML key reading', () => {
  const text = '# top\nname = "x"\n[data]\ncache = "a # not a comment" # real comment\nexclude = ["other"]\n\n[train]\nsteps = 1_000\nlr = 4e-4\nflag = true\n[predictions]\nevery = "epoch"\n';
  it('finds values by dotted key, without comments', () => {
    expect(getTomlValue(text, 'name')).toBe('"x"');
    expect(getTomlValue(text, 'data.cache')).toBe('"a # not a comment"');
    expect(getTomlValue(text, 'data.exclude')).toBe('["other"]');
    expect(getTomlValue(text, 'train.steps')).toBe('1_000');
    expect(getTomlValue(text, 'train.missing')).toBeNull();
    expect(getTomlValue(text, 'steps')).toBeNull();
  });
  it('parses single-line values', () => {
    expect(parseTomlValue('1_000')).toBe(1000);
    expect(parseTomlValue('4e-4')).toBe(4e-4);
    expect(parseTomlValue('-0.8')).toBe(-0.8);
    expect(parseTomlValue('true')).toBe(true);
    expect(parseTomlValue('"epoch"')).toBe('epoch');
    expect(parseTomlValue("'lit'")).toBe('lit');
    expect(parseTomlValue('[1, 2, 3]')).toEqual([1, 2, 3]);
    expect(parseTomlValue('["a,b", "c"]')).toEqual(['a,b', 'c']);
    expect(parseTomlValue('[]')).toEqual([]);
    expect(parseTomlValue('bare')).toBeNull();
    expect(parseTomlValue(null)).toBeNull();
  });
  it('reads the shipped configs', () => {
    const g = shipped('generator.toml');
    expect(parseTomlValue(getTomlValue(g, 'train.steps'))).toBeGreaterThan(0);
    expect(parseTomlValue(getTomlValue(g, 'predictions.seeds'))).toEqual([1]);
    expect(parseTomlValue(getTomlValue(g, 'model.preset'))).toBe('small');
    const c = shipped('classifier.toml');
    expect(parseTomlValue(getTomlValue(c, 'train.epochs'))).toBeGreaterThan(0);
  });
});

describe('TOML key editing', () => {
  it('replaces a value and keeps its comment', () => {
    const t = '[train]\nsteps = 2600   # total\nbatch_size = 32\n';
    expect(setTomlValue(t, 'train.steps', '60')).toBe('[train]\nsteps = 60   # total\nbatch_size = 32\n');
  });
  it('adds a key at the end of its section', () => {
    const t = '[train]\nsteps = 1\n\n[predictions]\nenabled = true\n# note\n\n[other]\nx = 1\n';
    expect(setTomlValue(t, 'predictions.every', '20')).toBe('[train]\nsteps = 1\n\n[predictions]\nenabled = true\nevery = 20\n# note\n\n[other]\nx = 1\n');
    expect(setTomlValue('[predictions]\n', 'predictions.every', '20')).toBe('[predictions]\nevery = 20\n');
  });
  it('adds a missing section at the end, and root keys before the first table', () => {
    expect(setTomlValue('[train]\nsteps = 1\n', 'predictions.every', '20')).toBe('[train]\nsteps = 1\n\n[predictions]\nevery = 20\n');
    expect(setTomlValue('[train]\nsteps = 1', 'predictions.every', '20')).toBe('[train]\nsteps = 1\n\n[predictions]\nevery = 20\n');
    expect(setTomlValue('', 'a.b', '1')).toBe('[a]\nb = 1\n');
    expect(setTomlValue('[t]\nx = 1\n', 'name', '"n"')).toBe('name = "n"\n[t]\nx = 1\n');
  });
  it('round-trips the shipped generator config', () => {
    const g = shipped('generator.toml');
    const edited = setTomlValue(setTomlValue(g, 'train.steps', '60'), 'predictions.every', '20');
    expect(getTomlValue(edited, 'train.steps')).toBe('60');
    expect(getTomlValue(edited, 'predictions.every')).toBe('20');
    expect(edited.split('\n').length).toBe(g.split('\n').length);
    expect(getTomlValue(edited, 'train.batch_size')).toBe(getTomlValue(g, 'train.batch_size'));
  });
});

describe('Predictions panel', () => {
  it('reads the panel from a generator config (seeds → samples + first seed)', () => {
    expect(panelFromConfig('generator', '[predictions]\nenabled = false\nevery = 20\nseeds = [3, 4]\n')).toEqual({ enabled: false, every: '20', samples: '2', seed: '3' });
    expect(panelFromConfig('generator', '')).toEqual(PANEL_DEFAULTS.generator);
    expect(panelFromConfig('generator', shipped('generator.toml'))).toEqual({ enabled: true, every: '1000', samples: '1', seed: '1' });
  });
  it('reads the panel from a classifier config', () => {
    expect(panelFromConfig('classifier', '[predictions]\nsamples = 8\nevery = "epoch"\nseed = 5\n')).toEqual({ enabled: true, every: 'epoch', samples: '8', seed: '5' });
    expect(panelFromConfig('classifier', '[predictions]\nevery = 100\n').every).toBe('100');
    expect(panelFromConfig('classifier', shipped('classifier.toml')).every).toBe('epoch');
    expect(panelFromConfig('classifier', '')).toEqual(PANEL_DEFAULTS.classifier);
    // An explicit id list is kept: the panel shows no count and sends none.
    const ids = panelFromConfig('classifier', '[predictions]\nsamples = ["ab12", "cd34"]\n');
    expect(ids.samples).toBe('');
    expect(panelOverrides('classifier', ids).set).toEqual(['predictions.enabled=true', 'predictions.every="epoch"', 'predictions.seed=0']);
  });
  it('turns the panel into overrides', () => {
    expect(panelOverrides('generator', { enabled: true, samples: '3', every: '20', seed: '7' })).toEqual({
      set: ['predictions.enabled=true', 'predictions.every=20', 'predictions.seeds=[7, 8, 9]'],
      errors: {},
    });
    expect(panelOverrides('classifier', { enabled: true, samples: '16', every: 'Epoch', seed: '0' }).set).toEqual([
      'predictions.enabled=true',
      'predictions.samples=16',
      'predictions.every="epoch"',
      'predictions.seed=0',
    ]);
    expect(panelOverrides('classifier', { enabled: true, samples: '16', every: '250', seed: '0' }).set).toContain('predictions.every=250');
    expect(panelOverrides('generator', { enabled: false, samples: 'x', every: '', seed: '' })).toEqual({ set: ['predictions.enabled=false'], errors: {} });
  });
  it('names bad panel fields instead of sending them', () => {
    const r = panelOverrides('generator', { enabled: true, samples: '0', every: 'epoch', seed: '-1' });
    expect(r.set).toEqual([]);
    expect(Object.keys(r.errors).sort()).toEqual(['every', 'samples', 'seed']);
    expect(panelOverrides('classifier', { enabled: true, samples: '4', every: '2.5', seed: '1' }).errors.every).toMatch(/epoch/);
  });
  it('writes overrides into the config text', () => {
    const g = shipped('generator.toml');
    const out = applyOverrides(g, ['predictions.every=20', 'predictions.seeds=[7, 8]']);
    expect(panelFromConfig('generator', out)).toEqual({ enabled: true, every: '20', samples: '2', seed: '7' });
  });
  it('sends a trimmed name or none', () => {
    expect(cleanJobName('  my-run ')).toBe('my-run');
    expect(cleanJobName('   ')).toBeUndefined();
  });
});
