import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test, expect } from '@playwright/test';
import { E2E_DIR, SHOTS, waitReady } from './helpers';

// Also the source of web/BENCH.md: prints classifier ms/image, generator s/image at 10 steps,
// and the download sizes, and writes them to test-results/bench.json.
const RUNS = Number(process.env.BENCH_RUNS ?? 10);
// Extra URL parameters for A/B runs, e.g. BENCH_QUERY='&qdq=fold'.
const EXTRA = process.env.BENCH_QUERY ?? '';
// Generate-page settings for A/B runs of the 10-step timing (empty: the page's defaults).
const TIME_SHIFT = process.env.BENCH_TIME_SHIFT ?? '';
// How many 10-step images to time (the median is reported; 3 is noisy on a shared 2-core VM).
const IMAGES = Math.max(1, Number(process.env.BENCH_IMAGES ?? 3));
const repo = path.resolve(E2E_DIR, '../..');

test('benchmark page (WASM) + 10-step generation timing', async ({ page }) => {
  await page.goto(`/?ep=wasm${EXTRA}#benchmark`);
  await page.getByTestId('bench-runs').fill(String(RUNS));
  await page.getByTestId('bench-ep-webgpu').uncheck();
  await page.getByTestId('bench-run').click();
  await expect(page.getByTestId('bench-table')).toHaveAttribute('data-done', 'true', { timeout: 170_000 });
  const rows = page.getByTestId('bench-row');
  await expect(rows).toHaveCount(2);
  const read = async (model: string) => {
    const r = rows.and(page.locator(`[data-model=${model}]`));
    const p50 = Number(await r.getAttribute('data-p50'));
    const p95 = Number(await r.getAttribute('data-p95'));
    expect(p50).toBeGreaterThan(0);
    expect(p95).toBeGreaterThanOrEqual(p50);
    return { p50, p95 };
  };
  const clf = await read('classifier');
  const step = await read('generator');
  await page.screenshot({ path: path.join(SHOTS, 'benchmark.png'), fullPage: true });

  // End-to-end: one 10-step image through the Generate page (CFG on, batch-2 per step).
  await page.goto(`/?ep=wasm${EXTRA}#generate`);
  await waitReady(page, 'generator');
  const totals: number[] = [];
  if (TIME_SHIFT) await page.getByTestId('time-shift').fill(TIME_SHIFT);
  const timeShift = Number(await page.getByTestId('time-shift').inputValue());
  const eta = Number(await page.getByTestId('eta').inputValue());
  for (let i = 0; i < IMAGES; i++) {
    await page.getByTestId('steps').fill('10');
    await page.getByTestId('seed').fill(String(100 + i));
    await page.getByTestId('generate').click();
    await expect(page.getByTestId('gen-done')).toHaveAttribute('data-seed', String(100 + i));
    totals.push(Number(await page.getByTestId('gen-total-ms').innerText()));
  }
  totals.sort((a, b) => a - b);
  const cores = await page.evaluate(() => navigator.hardwareConcurrency);
  const threads = await page.getByTestId('ep-generator').innerText();

  const size = (p: string) => statSync(path.join(repo, p)).size;
  const result = {
    date: new Date().toISOString(),
    browser: page.context().browser()?.version(),
    provider: threads,
    hardwareConcurrency: cores,
    runs: RUNS,
    query: EXTRA,
    classifier_ms_per_image: clf,
    generator_ms_per_step: step,
    generator_s_per_image_10_steps_median: totals[Math.floor((IMAGES - 1) / 2)] / 1000,
    generator_images_timed: IMAGES,
    generator_s_per_image_10_steps_all: totals.map((t) => t / 1000),
    generator_time_shift: timeShift,
    generator_eta: eta,
    download_bytes: {
      classifier: size('models/classifier/classifier.int8.onnx'),
      generator: size('models/generator/generator.int8.onnx'),
      ort_wasm: size('web/dist/ort/ort-wasm-simd-threaded.jsep.wasm'),
      ort_mjs: size('web/dist/ort/ort-wasm-simd-threaded.jsep.mjs'),
    },
  };
  console.log(`BENCH ${JSON.stringify(result)}`);
  mkdirSync(SHOTS, { recursive: true });
  writeFileSync(path.join(SHOTS, 'bench.json'), JSON.stringify(result, null, 2));
});
