import path from 'node:path';
import { test, expect } from '@playwright/test';
import { SHOTS, waitReady } from './helpers';

// A 1×1, two-frame GIF: frame 1 is red (palette index 0), frame 2 blue (index 1). Built by hand
// (LZW code size 2: clear, index, end) so the test needs no image library.
function twoFrameGif(): Buffer {
  const frame = (lzw: number[]) => [
    0x21, 0xf9, 0x04, 0x00, 0x0a, 0x00, 0x00, 0x00, // graphic control: 0.1 s delay
    0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0x00, // image descriptor 1×1
    0x02, 0x02, ...lzw, 0x00,
  ];
  return Buffer.from([
    ...Buffer.from('GIF89a'), 1, 0, 1, 0, 0x80, 0, 0, // 1×1, 2-colour global palette
    0xff, 0x00, 0x00, 0x00, 0x00, 0xff,
    ...frame([0x44, 0x01]), // index 0 → red
    ...frame([0x4c, 0x01]), // index 1 → blue
    0x3b,
  ]);
}

test('GIF: the first frame is classified', async ({ page }) => {
  await page.goto('/?ep=wasm#classify');
  await waitReady(page, 'classifier');
  await page.getByTestId('file-input').setInputFiles({ name: 'anim.gif', mimeType: 'image/gif', buffer: twoFrameGif() });
  await expect(page.getByTestId('result-row')).toHaveCount(5);
  const px = await page.getByTestId('crop-preview').evaluate((c: HTMLCanvasElement) => Array.from(c.getContext('2d')!.getImageData(112, 112, 1, 1).data));
  expect(px.slice(0, 3)).toEqual([255, 0, 0]);
});

test('WebP made by the browser is accepted', async ({ page }) => {
  await page.goto('/?ep=wasm#classify');
  await waitReady(page, 'classifier');
  await page.evaluate(async () => {
    const c = document.createElement('canvas');
    c.width = 300;
    c.height = 200;
    const ctx = c.getContext('2d')!;
    ctx.fillStyle = '#3a6';
    ctx.fillRect(0, 0, 300, 200);
    const blob = await new Promise<Blob>((r) => c.toBlob((b) => r(b!), 'image/webp', 0.9));
    const dt = new DataTransfer();
    dt.items.add(new File([blob], 'green.webp', { type: 'image/webp' }));
    document.querySelector('[data-testid=dropzone]')!.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
  });
  await expect(page.getByTestId('results')).toContainText('green.webp · 300×200');
  await expect(page.getByTestId('upload-error')).toHaveCount(0);
  await page.screenshot({ path: path.join(SHOTS, 'classify-webp.png'), fullPage: true });
});
