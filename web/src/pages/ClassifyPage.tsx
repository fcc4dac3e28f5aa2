import { useCallback, useEffect, useRef, useState } from 'react';
import { engine, useModel } from '../engine';
import { centreCropRect } from '../lib/image';
import { displayLabel } from '../lib/metadata';
import { topK, type TopEntry } from '../lib/stats';
import { checkPixels, checkSize, validateUpload } from '../lib/validate';
import type { FinalOf } from '../worker/client';

interface Result {
  name: string;
  width: number;
  height: number;
  top: TopEntry[];
  ms: number;
}

export function ClassifyPage() {
  const model = useModel('classifier');
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const [error, setError] = useState<string | null>(null);
  const [result, setResult] = useState<Result | null>(null);
  const [busy, setBusy] = useState(false);
  const [dragging, setDragging] = useState(false);

  useEffect(() => {
    engine.ensure('classifier').catch(() => {}); // failure is shown by the model line
  }, []);

  const handleFile = useCallback(async (file: File) => {
    setError(null);
    setResult(null);
    // Size first: never read a 2 GB file into memory just to reject it.
    const tooBig = checkSize(file);
    if (tooBig && !tooBig.ok) return setError(tooBig.message);
    setBusy(true);
    try {
      const bytes = new Uint8Array(await file.arrayBuffer());
      const v = validateUpload(file, bytes);
      if (!v.ok) return setError(v.message);
      let bmp: ImageBitmap;
      try {
        // createImageBitmap takes the first frame of an animated GIF.
        bmp = await createImageBitmap(new Blob([bytes], { type: `image/${v.kind}` }));
      } catch {
        return setError(`"${file.name}" could not be decoded as ${v.kind.toUpperCase()} (the file may be damaged).`);
      }
      // Second guard on the decoded size (headers can lie, e.g. EXIF-rotated or odd files).
      const px = checkPixels(bmp.width, bmp.height, undefined, `"${file.name}"`);
      if (px && !px.ok) {
        bmp.close();
        return setError(px.message);
      }
      await engine.ensure('classifier');
      const info = engine.get('classifier').info;
      if (!info || info.kind !== 'classifier') throw new Error('classifier metadata missing');
      const size = info.imageSize;
      const canvas = canvasRef.current!;
      canvas.width = size;
      canvas.height = size;
      const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
      ctx.imageSmoothingEnabled = true;
      ctx.imageSmoothingQuality = 'high'; // closest to the trainer's area-aware bilinear resize
      ctx.fillStyle = '#000';
      ctx.fillRect(0, 0, size, size);
      const r = centreCropRect(bmp.width, bmp.height);
      ctx.drawImage(bmp, r.sx, r.sy, r.sw, r.sh, 0, 0, size, size);
      const { width, height } = bmp;
      bmp.close();
      const img = ctx.getImageData(0, 0, size, size);
      const res = (await engine.client.request({ type: 'classify', rgba: img.data, width: size, height: size })) as FinalOf<'classified'>;
      setResult({ name: file.name, width, height, top: topK(res.probs, info.labels, 5), ms: res.ms });
    } catch (e) {
      setError(`Classification failed: ${(e as Error).message}`);
    } finally {
      setBusy(false);
    }
  }, []);

  // Paste an image from the clipboard anywhere on this page.
  useEffect(() => {
    const onPaste = (ev: ClipboardEvent) => {
      const f = ev.clipboardData?.files?.[0];
      if (f) {
        ev.preventDefault();
        void handleFile(f);
      }
    };
    window.addEventListener('paste', onPaste);
    return () => window.removeEventListener('paste', onPaste);
  }, [handleFile]);

  return (
    <section className="page">
      <h2>Classify a cat photo</h2>
      <div
        className={`dropzone${dragging ? ' over' : ''}`}
        data-testid="dropzone"
        onDragOver={(e) => {
          e.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={(e) => {
          e.preventDefault();
          setDragging(false);
          const f = e.dataTransfer.files?.[0];
          if (f) void handleFile(f);
        }}
      >
        <p>Drop an image here, paste one, or choose a file (JPEG, PNG, WebP or GIF; at most 10 MB and 50 megapixels).</p>
        <input
          type="file"
          accept="image/jpeg,image/png,image/webp,image/gif"
          data-testid="file-input"
          onChange={(e) => {
            const f = e.target.files?.[0];
            if (f) void handleFile(f);
            e.target.value = ''; // allow re-selecting the same file
          }}
        />
      </div>
      {error && (
        <p className="error" role="alert" data-testid="upload-error">
          {error}
        </p>
      )}
      {busy && <p data-testid="busy">Working… {model.status === 'loading' ? '(loading the model)' : ''}</p>}
      <div className="classify-out">
        <figure>
          <canvas ref={canvasRef} width={224} height={224} className="crop" data-testid="crop-preview" />
          <figcaption>centre crop the model sees</figcaption>
        </figure>
        {result && (
          <div className="results" data-testid="results">
            <p className="muted">
              {result.name} · {result.width}×{result.height}
            </p>
            <ol>
              {result.top.map((t) => (
                <li key={t.index} data-testid="result-row" data-label={t.label}>
                  <span className="label">{displayLabel(t.label)}</span>
                  <span className="bar-track">
                    <span className="bar" style={{ width: `${(t.prob * 100).toFixed(1)}%` }} />
                  </span>
                  <span className="pct">{(t.prob * 100).toFixed(1)}%</span>
                </li>
              ))}
            </ol>
            <p>
              latency: <span data-testid="latency">{result.ms.toFixed(1)}</span> ms
            </p>
          </div>
        )}
      </div>
    </section>
  );
}
