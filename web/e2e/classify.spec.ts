import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test, expect } from '@playwright/test';
import { PETS_DIR, SHOTS, waitReady, watchErrors } from './helpers';

// Abyssinian_1.jpg: the shipped classifier puts Abyssinian at top-1 (~95%), so we assert top-1.
const CAT = path.join(PETS_DIR, 'Abyssinian_1.jpg');

test.describe('classify (forced WASM)', () => {
  // Like the Rust tests: the photo lives in ../shared; skip with a reason when it is absent.
  test.skip(!existsSync(CAT), `${CAT} not found (../shared data set absent)`);
  test('file input → crop preview, top-5 bars, latency', async ({ page }) => {
    const errors = watchErrors(page);
    await page.goto('/?ep=wasm#classify');
    await waitReady(page, 'classifier');
    await page.getByTestId('file-input').setInputFiles(CAT);
    const rows = page.getByTestId('result-row');
    await expect(rows).toHaveCount(5);
    await expect(rows.first()).toHaveAttribute('data-label', 'Abyssinian');
    const ms = Number(await page.getByTestId('latency').innerText());
    expect(ms).toBeGreaterThan(0);
    // The crop preview must hold the photo, not a blank canvas.
    const nonBlack = await page.getByTestId('crop-preview').evaluate((c: HTMLCanvasElement) => {
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i] + d[i + 1] + d[i + 2] > 30) n++;
      return n / (d.length / 4);
    });
    expect(nonBlack).toBeGreaterThan(0.5);
    await expect(page.getByTestId('ep-classifier')).toContainText('wasm');
    await page.screenshot({ path: path.join(SHOTS, 'classify-abyssinian.png'), fullPage: true });
    expect(errors).toEqual([]);
  });

  test('drag-drop and paste use the same pipeline', async ({ page }) => {
    await page.goto('/?ep=wasm#classify');
    await waitReady(page, 'classifier');
    const b64 = readFileSync(CAT).toString('base64');
    for (const how of ['drop', 'paste'] as const) {
      await page.evaluate(
        ([b64, how]) => {
          const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
          const dt = new DataTransfer();
          dt.items.add(new File([bytes], `${how}.jpg`, { type: 'image/jpeg' }));
          if (how === 'drop') document.querySelector('[data-testid=dropzone]')!.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
          else window.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
        },
        [b64, how] as const,
      );
      await expect(page.getByTestId('results')).toContainText(`${how}.jpg`);
      await expect(page.getByTestId('result-row').first()).toHaveAttribute('data-label', 'Abyssinian');
    }
  });
});
