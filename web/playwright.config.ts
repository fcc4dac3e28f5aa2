import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from '@playwright/test';

// Debian's chromium, never a Playwright-downloaded browser (no downloads on these machines).
const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const PORT = 4173;
// The studio pages need a real `tinycats serve` (e2e/studio.spec.ts). A missing binary fails the
// run (the server script exits 1); only an explicit STUDIO_E2E=0 leaves the studio tests out.
const STUDIO_PORT = Number(process.env.STUDIO_PORT ?? 4180);
const here = path.dirname(fileURLToPath(import.meta.url));
const tinycatsBin = process.env.TINYCATS_BIN ?? path.resolve(here, '../target/release/tinycats');
const studio = process.env.STUDIO_E2E !== '0';

export default defineConfig({
  testDir: 'e2e',
  outputDir: 'test-results/artifacts',
  // 2-core machines: one worker, and generous timeouts for WASM inference.
  workers: 1,
  fullyParallel: false,
  timeout: 180_000,
  expect: { timeout: 60_000 },
  retries: 0,
  reporter: [['list'], ['json', { outputFile: 'test-results/e2e-results.json' }]],
  use: {
    baseURL: `http://127.0.0.1:${PORT}/`,
    screenshot: 'only-on-failure',
    trace: 'off',
    launchOptions: {
      executablePath,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    },
  },
  webServer: [
    {
      // Serves the production build (run `npm run build` first) plus /models/ from the repo.
      command: `npx vite preview --port ${PORT} --strictPort --host 127.0.0.1`,
      url: `http://127.0.0.1:${PORT}/`,
      reuseExistingServer: false,
      timeout: 60_000,
      stdout: 'ignore',
      stderr: 'pipe',
    },
    ...(studio
      ? [
          {
            // tinycats serve over a temp store, runs folder and 16 px fixture cache (see the script).
            command: `bash ../scripts/studio_e2e_server.sh ${STUDIO_PORT}`,
            url: `http://127.0.0.1:${STUDIO_PORT}/api/health`,
            env: { TINYCATS_BIN: tinycatsBin },
            reuseExistingServer: false,
            timeout: 120_000,
            stdout: 'ignore' as const,
            stderr: 'pipe' as const,
            // SIGTERM lets the script stop the server and remove its temp folder.
            gracefulShutdown: { signal: 'SIGTERM' as const, timeout: 10_000 },
          },
        ]
      : []),
  ],
});
