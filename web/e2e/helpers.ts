import { createHash } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, type Page } from '@playwright/test';

export const E2E_DIR = path.dirname(fileURLToPath(import.meta.url));
// The shared data set lives beside the repo: <repo>/../shared/data/...
export const PETS_DIR = path.resolve(E2E_DIR, '../../../shared/data/oxford-pets-subset/images');
export const SHOTS = path.resolve(E2E_DIR, '../test-results');

/** Fails the test on uncaught page errors (a broken worker would otherwise only time out). */
export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  return errors;
}

export async function waitReady(page: Page, model: 'classifier' | 'generator'): Promise<void> {
  const line = page.getByTestId(`model-${model}`);
  await expect(line).toHaveAttribute('data-status', /ready|error/, { timeout: 120_000 });
  const status = await line.getAttribute('data-status');
  if (status !== 'ready') throw new Error(`${model} failed to load: ${await line.innerText()}`);
}

/** SHA-256 of the generator canvas's RGBA pixels. */
export async function canvasHash(page: Page): Promise<string> {
  const data = await page.getByTestId('gen-canvas').evaluate((c: HTMLCanvasElement) => {
    const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    return Array.from(d);
  });
  return createHash('sha256').update(Uint8Array.from(data)).digest('hex');
}
