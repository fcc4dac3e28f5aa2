import path from 'node:path';
import { test, expect } from '@playwright/test';
import { SHOTS, waitReady } from './helpers';

test('?ep=wasm forces the WASM provider and the page says so', async ({ page }) => {
  await page.goto('/?ep=wasm#generate');
  await waitReady(page, 'generator');
  await expect(page.getByTestId('ep-request')).toHaveText('wasm');
  await expect(page.getByTestId('ep-generator')).toHaveText(/^wasm/);
  await expect(page.getByTestId('model-generator')).toContainText('WASM forced by ?ep=wasm');
  // COOP/COEP are served, so WASM may use threads.
  await expect(page.getByTestId('isolated')).toHaveText('true');
  await page.screenshot({ path: path.join(SHOTS, 'provider-wasm.png'), fullPage: true });
  // A reload finds the model in the Cache API (the server's ETag is unchanged).
  await expect(page.getByTestId('model-generator')).not.toContainText('from cache');
  await page.reload();
  await waitReady(page, 'generator');
  await expect(page.getByTestId('model-generator')).toContainText('from cache');
});

test('auto mode falls back to WASM when WebGPU cannot start (chromium runs with --disable-gpu)', async ({ page }) => {
  await page.goto('/#classify');
  await waitReady(page, 'classifier');
  await expect(page.getByTestId('ep-request')).toHaveText('auto');
  const ep = await page.getByTestId('ep-classifier').innerText();
  // With a GPU this would legitimately be "webgpu"; on the CI machines there is none.
  const hasAdapter = await page.evaluate(async () => !!(await (navigator as unknown as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu?.requestAdapter()));
  expect(ep).toMatch(hasAdapter ? /^(webgpu|wasm)/ : /^wasm/);
  if (!hasAdapter) await expect(page.getByTestId('model-classifier')).toContainText('WASM because:');
});
