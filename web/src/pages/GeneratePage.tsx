import { useEffect, useReducer, useRef, useState } from 'react';
import { engine, useModel } from '../engine';
import { displayLabel } from '../lib/metadata';
import { randomSeed } from '../lib/prng';
import { generateReducer } from '../lib/state';
import type { FinalOf } from '../worker/client';
import { MAX_TIME_SHIFT, MIN_TIME_SHIFT, type Response } from '../worker/protocol';

export function GeneratePage() {
  const model = useModel('generator');
  const labels = model.info?.kind === 'generator' ? model.info.labels : [];
  // Defaults match the CLI's `tinycats generate` (20 Euler steps, CFG 5 guiding until t = 0.6,
  // time shift 4, η 0.6).
  const [form, dispatch] = useReducer(generateReducer, { breed: 0, steps: 20, cfg: 5, seed: 0, guidanceTo: 0.6, timeShift: 4, eta: 0.6 }, (s) => ({ ...s, seed: randomSeed() }));
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const [running, setRunning] = useState(false);
  const [progress, setProgress] = useState<{ step: number; steps: number; stepMs: number } | null>(null);
  const [done, setDone] = useState<{ totalMs: number; stepMs: number[]; seed: number; steps: number; breed: number } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [pngUrl, setPngUrl] = useState<string | null>(null);

  useEffect(() => {
    engine.ensure('generator').catch(() => {});
  }, []);
  useEffect(() => () => void (pngUrl && URL.revokeObjectURL(pngUrl)), [pngUrl]);

  const draw = (rgba: Uint8ClampedArray, size: number) => {
    const c = canvasRef.current!;
    c.width = size;
    c.height = size;
    c.getContext('2d')!.putImageData(new ImageData(new Uint8ClampedArray(rgba), size, size), 0, 0);
  };

  async function generate() {
    setError(null);
    setDone(null);
    setPngUrl(null);
    setRunning(true);
    try {
      await engine.ensure('generator');
      const req = { ...form };
      const res = (await engine.client.request({ type: 'generate', ...req }, (ev: Response) => {
        if (ev.type === 'step') {
          draw(ev.preview, ev.size);
          setProgress({ step: ev.step, steps: ev.steps, stepMs: ev.stepMs });
        }
      })) as FinalOf<'generated'>;
      draw(res.rgba, res.size);
      const blob = await new Promise<Blob | null>((r) => canvasRef.current!.toBlob(r, 'image/png'));
      if (blob) setPngUrl(URL.createObjectURL(blob));
      setDone({ totalMs: res.totalMs, stepMs: res.stepMs, seed: res.seed, steps: req.steps, breed: req.breed });
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setRunning(false);
    }
  }

  return (
    <section className="page">
      <h2>Generate a cat</h2>
      <form
        className="gen-form"
        onSubmit={(e) => {
          e.preventDefault();
          void generate();
        }}
      >
        <label>
          breed
          <select data-testid="breed" value={form.breed} onChange={(e) => dispatch({ type: 'breed', value: Number(e.target.value) })} disabled={!labels.length}>
            {labels.map((l, i) => (
              <option key={l} value={i}>
                {displayLabel(l)}
              </option>
            ))}
          </select>
        </label>
        <label>
          steps (1–100)
          <input data-testid="steps" type="number" min={1} max={100} value={form.steps} onChange={(e) => dispatch({ type: 'steps', value: e.target.value })} />
        </label>
        <label>
          CFG scale
          <input data-testid="cfg" type="number" min={0} max={20} step={0.5} value={form.cfg} onChange={(e) => dispatch({ type: 'cfg', value: e.target.value })} />
        </label>
        <label title="Guidance only while t ≤ this (t = 1 is the image); later steps skip the unconditional pass">
          guide until t
          <input data-testid="guidance-to" type="number" min={0} max={1} step={0.1} value={form.guidanceTo} onChange={(e) => dispatch({ type: 'guidanceTo', value: e.target.value })} />
        </label>
        <label title="Above 1, more of the steps go to the noisy start, where the layout and breed are decided; 1 = uniform steps">
          time shift
          <input data-testid="time-shift" type="number" min={MIN_TIME_SHIFT} max={MAX_TIME_SHIFT} step="any" value={form.timeShift} onChange={(e) => dispatch({ type: 'timeShift', value: e.target.value })} />
        </label>
        <label title="Share of fresh noise mixed in at every step (0 = deterministic); the same seed still gives the same image">
          η
          <input data-testid="eta" type="number" min={0} max={1} step="any" value={form.eta} onChange={(e) => dispatch({ type: 'eta', value: e.target.value })} />
        </label>
        <label>
          seed
          <input data-testid="seed" type="number" min={0} max={4294967295} value={form.seed} onChange={(e) => dispatch({ type: 'seed', value: e.target.value })} />
        </label>
        <button type="button" data-testid="new-seed" onClick={() => dispatch({ type: 'newSeed', seed: randomSeed() })}>
          new seed
        </button>
        <button type="submit" data-testid="generate" disabled={running || model.status !== 'ready'}>
          {running ? 'generating…' : 'generate'}
        </button>
      </form>
      {error && (
        <p className="error" role="alert" data-testid="gen-error">
          {error}
        </p>
      )}
      <div className="gen-out">
        <canvas ref={canvasRef} width={64} height={64} className="gen-canvas" data-testid="gen-canvas" />
        <div>
          {progress && (
            <p data-testid="gen-progress">
              step {progress.step}/{progress.steps} · {progress.stepMs.toFixed(0)} ms
            </p>
          )}
          {done && (
            <div data-testid="gen-done" data-seed={done.seed}>
              <p>
                {labels[done.breed] ? displayLabel(labels[done.breed]) : ''} · seed {done.seed} · {done.steps} steps · total{' '}
                <span data-testid="gen-total-ms">{done.totalMs.toFixed(0)}</span> ms
              </p>
              <p className="muted">per step (ms): {done.stepMs.map((m) => m.toFixed(0)).join(', ')}</p>
              {pngUrl && (
                <a data-testid="download" href={pngUrl} download={`tinycats-${labels[done.breed] ?? done.breed}-seed${done.seed}-${done.steps}steps.png`}>
                  download PNG
                </a>
              )}
            </div>
          )}
        </div>
      </div>
    </section>
  );
}
