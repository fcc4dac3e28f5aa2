import path from 'node:path';
import { test, expect } from '@playwright/test';
import { SHOTS } from './helpers';

// Each bad upload must be refused with a message that names the problem. Files are made here.
function pngHeader(width: number, height: number, totalBytes = 33): Buffer {
  const b = Buffer.alloc(totalBytes);
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(b, 0);
  b.writeUInt32BE(13, 8);
  b.write('IHDR', 12, 'ascii');
  b.writeUInt32BE(width, 16);
  b.writeUInt32BE(height, 20);
  Buffer.from([8, 6, 0, 0, 0]).copy(b, 24);
  return b;
}

const cases = [
  { name: 'wrong type (.txt)', file: { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('definitely not a cat\n') }, re: /not a supported image \(text\/plain\).*JPEG, PNG, WebP or GIF/ },
  { name: 'over 10 MB', file: { name: 'huge.png', mimeType: 'image/png', buffer: pngHeader(100, 100, 10 * 1024 * 1024 + 1) }, re: /too large: 10\.0 MB \(the limit is 10\.0 MB\)/ },
  { name: 'too many pixels', file: { name: 'bomb.png', mimeType: 'image/png', buffer: pngHeader(100_000, 100_000) }, re: /too many pixels: 100000 × 100000 = 10000\.0 megapixels/ },
  { name: 'damaged image', file: { name: 'broken.png', mimeType: 'image/png', buffer: pngHeader(64, 64, 200) }, re: /could not be decoded as PNG/ },
];

for (const c of cases) {
  test(`rejects upload: ${c.name}`, async ({ page }) => {
    await page.goto('/?ep=wasm#classify');
    await page.getByTestId('file-input').setInputFiles(c.file);
    await expect(page.getByTestId('upload-error')).toHaveText(c.re);
    await expect(page.getByTestId('results')).toHaveCount(0);
    await page.screenshot({ path: path.join(SHOTS, `reject-${c.file.name.replace(/\./g, "-")}.png`), fullPage: true });
  });
}
