/// <reference types="vitest/config" />
import { createReadStream, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { defineConfig, type Plugin } from 'vite';
import react from '@vitejs/plugin-react';

const here = path.dirname(fileURLToPath(import.meta.url));
// The repo's models/ folder, served at /models/ in dev and preview (never copied into web/).
const MODELS_DIR = path.resolve(here, process.env.TINYCATS_MODELS_DIR ?? '../models');
const ORT_DIST = path.resolve(here, 'node_modules/onnxruntime-web/dist');
// The default onnxruntime-web bundle (WebGPU + WASM) loads exactly these two files when
// env.wasm.wasmPaths is a URL prefix; we serve them ourselves so nothing comes from a CDN.
const ORT_FILES = ['ort-wasm-simd-threaded.jsep.mjs', 'ort-wasm-simd-threaded.jsep.wasm'];

// SharedArrayBuffer (WASM threads) needs a cross-origin-isolated page.
const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

const TYPES: Record<string, string> = { '.onnx': 'application/octet-stream', '.wasm': 'application/wasm', '.mjs': 'text/javascript', '.json': 'application/json' };

/** Maps /models/* and /ort/* to files on disk; null when the URL is not ours or escapes the folder. */
function resolveLocal(urlPath: string): string | null {
  let p: string;
  try {
    p = decodeURIComponent(urlPath.split('?')[0]);
  } catch {
    return null;
  }
  if (p.startsWith('/models/')) {
    const f = path.resolve(MODELS_DIR, '.' + p.slice('/models'.length));
    return f.startsWith(MODELS_DIR + path.sep) ? f : null;
  }
  if (p.startsWith('/ort/')) {
    const name = p.slice('/ort/'.length);
    return ORT_FILES.includes(name) ? path.join(ORT_DIST, name) : null;
  }
  return null;
}

function serveLocal(req: IncomingMessage, res: ServerResponse, next: () => void): void {
  const file = req.url ? resolveLocal(req.url) : null;
  if (!file || (req.method !== 'GET' && req.method !== 'HEAD')) return next();
  let st;
  try {
    st = statSync(file);
  } catch {
    res.statusCode = 404;
    res.end('not found');
    return;
  }
  if (!st.isFile()) return next();
  // An ETag lets the app's Cache API layer notice new weights with a cheap HEAD request.
  const etag = `W/"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
  res.setHeader('Content-Type', TYPES[path.extname(file)] ?? 'application/octet-stream');
  res.setHeader('Content-Length', String(st.size));
  res.setHeader('ETag', etag);
  res.setHeader('Last-Modified', st.mtime.toUTCString());
  res.setHeader('Cache-Control', 'no-cache');
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
  for (const [k, v] of Object.entries(ISOLATION_HEADERS)) res.setHeader(k, v);
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  createReadStream(file).pipe(res);
}

function localAssets(): Plugin {
  return {
    name: 'tinycats-local-assets',
    // Registered directly (not returned) so they run before Vite's own middlewares.
    configureServer(server) {
      server.middlewares.use(serveLocal);
    },
    configurePreviewServer(server) {
      server.middlewares.use(serveLocal);
    },
    // The static build ships the onnxruntime wasm files under dist/ort/; models are placed
    // next to the site by whoever deploys it.
    generateBundle() {
      for (const f of ORT_FILES) this.emitFile({ type: 'asset', fileName: `ort/${f}`, source: readFileSync(path.join(ORT_DIST, f)) });
    },
  };
}

export default defineConfig({
  base: './', // relative asset URLs: the site works from any sub-path
  plugins: [react(), localAssets()],
  server: { headers: ISOLATION_HEADERS },
  preview: { headers: ISOLATION_HEADERS, port: 4173, strictPort: true },
  resolve: {
    // The non-bundled ESM build loads its wasm loader and binary from env.wasm.wasmPaths
    // (our /ort/ copy). The default "bundle" build would also make Vite emit a second
    // 28 MB copy of the wasm via its new URL(..., import.meta.url) reference.
    alias: [{ find: /^onnxruntime-web$/, replacement: path.join(ORT_DIST, 'ort.min.mjs') }],
  },
  worker: { format: 'es' },
  // onnxruntime-web resolves its wasm relative to itself; pre-bundling would move it.
  optimizeDeps: { exclude: ['onnxruntime-web'] },
  build: { target: 'es2022', chunkSizeWarningLimit: 1024 },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
});
