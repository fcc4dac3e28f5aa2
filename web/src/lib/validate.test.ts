import { describe, expect, it } from 'vitest';
import { checkPixels, DEFAULT_LIMITS, headerDimensions, sniffKind, validateUpload } from './validate';
import { gifHeader, jpegHeader, pngHeader, webpVp8Header, webpVp8lHeader, webpVp8xHeader } from '../testutil/images';

const file = (name: string, size: number, type = '') => ({ name, size, type });

describe('sniffKind + headerDimensions', () => {
  it.each([
    ['png', pngHeader(640, 480)],
    ['jpeg', jpegHeader(640, 480)],
    ['gif', gifHeader(640, 480)],
    ['webp', webpVp8xHeader(640, 480)],
    ['webp', webpVp8lHeader(640, 480)],
    ['webp', webpVp8Header(640, 480)],
  ] as const)('%s header → 640×480', (kind, bytes) => {
    expect(sniffKind(bytes)).toBe(kind);
    expect(headerDimensions(bytes, kind)).toEqual({ width: 640, height: 480 });
  });
  it('finds SOF2 (progressive) after other segments', () => {
    expect(headerDimensions(jpegHeader(1000, 2000, 0xc2), 'jpeg')).toEqual({ width: 1000, height: 2000 });
  });
  it('does not mistake DHT (0xC4) for a frame header', () => {
    const b = jpegHeader(10, 10, 0xc4);
    expect(headerDimensions(b, 'jpeg')).toBeNull();
  });
  it('rejects text and truncated data', () => {
    expect(sniffKind(new TextEncoder().encode('hello, not an image'))).toBeNull();
    expect(sniffKind(new Uint8Array([0x89, 0x50]))).toBeNull();
    expect(headerDimensions(pngHeader(1, 1).slice(0, 20), 'png')).toBeNull();
  });
});

describe('validateUpload', () => {
  it('accepts a normal photo', () => {
    const b = jpegHeader(500, 375);
    expect(validateUpload(file('cat.jpg', 100_000, 'image/jpeg'), b)).toEqual({ ok: true, kind: 'jpeg', width: 500, height: 375 });
  });
  it('checks size before anything else, with the size in the message', () => {
    const v = validateUpload(file('big.png', 11 * 1024 * 1024, 'image/png'), pngHeader(10, 10));
    expect(v).toMatchObject({ ok: false, code: 'size' });
    expect(!v.ok && v.message).toMatch(/too large: 11\.0 MB.*10\.0 MB/);
    expect(validateUpload(file('exact.png', DEFAULT_LIMITS.maxBytes), pngHeader(10, 10)).ok).toBe(true);
  });
  it('rejects empty files', () => {
    expect(validateUpload(file('e.png', 0), new Uint8Array())).toMatchObject({ ok: false, code: 'empty' });
  });
  it('rejects non-images by content even with an image extension', () => {
    const v = validateUpload(file('notes.txt', 12, 'text/plain'), new TextEncoder().encode('just text...'));
    expect(v).toMatchObject({ ok: false, code: 'type' });
    expect(!v.ok && v.message).toMatch(/not a supported image \(text\/plain\).*JPEG, PNG, WebP or GIF/);
    expect(validateUpload(file('fake.png', 12, 'image/png'), new TextEncoder().encode('just text...'))).toMatchObject({ code: 'type' });
  });
  it('rejects decompression bombs from the header alone', () => {
    const v = validateUpload(file('bomb.png', 33, 'image/png'), pngHeader(100_000, 100_000));
    expect(v).toMatchObject({ ok: false, code: 'dimensions' });
    expect(!v.ok && v.message).toMatch(/100000 × 100000 = 10000\.0 megapixels.*limit is 50 megapixels/);
    // Exactly at the limit is allowed, one row more is not.
    expect(validateUpload(file('ok.png', 33), pngHeader(10_000, 5_000)).ok).toBe(true);
    expect(validateUpload(file('no.png', 33), pngHeader(10_000, 5_001)).ok).toBe(false);
  });
  it('rejects a damaged header and zero dimensions', () => {
    expect(validateUpload(file('x.png', 20), pngHeader(1, 1).slice(0, 20))).toMatchObject({ code: 'corrupt' });
    expect(validateUpload(file('z.gif', 13), gifHeader(0, 10))).toMatchObject({ code: 'corrupt' });
  });
  it('checkPixels is the same rule after decoding', () => {
    expect(checkPixels(8000, 6000)).toBeNull();
    expect(checkPixels(8000, 7000)).toMatchObject({ code: 'dimensions' });
  });
});
