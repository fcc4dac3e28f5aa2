// Minimal image headers for validation tests (also used by the Playwright rejection tests):
// only the bytes that the header parsers read are meaningful.

/** A PNG signature + IHDR chunk declaring width × height (no pixel data). */
export function pngHeader(width: number, height: number): Uint8Array {
  const b = new Uint8Array(33);
  b.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 0);
  const dv = new DataView(b.buffer);
  dv.setUint32(8, 13);
  b.set([0x49, 0x48, 0x44, 0x52], 12); // IHDR
  dv.setUint32(16, width);
  dv.setUint32(20, height);
  b.set([8, 6, 0, 0, 0], 24); // 8-bit RGBA
  return b;
}

/** SOI, an APP0 segment, then SOF0 declaring width × height. */
export function jpegHeader(width: number, height: number, sof = 0xc0): Uint8Array {
  const app0 = [0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 1, 1, 0, 0, 1, 0, 1, 0, 0];
  const sofSeg = [0xff, sof, 0x00, 0x11, 8, height >> 8, height & 0xff, width >> 8, width & 0xff, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1];
  return new Uint8Array([0xff, 0xd8, ...app0, 0xff, 0xff /* fill byte */, ...sofSeg.slice(1)]);
}

export function gifHeader(width: number, height: number): Uint8Array {
  return new Uint8Array([0x47, 0x49, 0x46, 0x38, 0x39, 0x61, width & 0xff, width >> 8, height & 0xff, height >> 8, 0, 0, 0]);
}

function riff(chunk: string, payload: number[]): Uint8Array {
  const b = new Uint8Array(20 + payload.length);
  const enc = (s: string, o: number) => [...s].forEach((c, i) => (b[o + i] = c.charCodeAt(0)));
  enc('RIFF', 0);
  new DataView(b.buffer).setUint32(4, 12 + payload.length, true);
  enc('WEBP', 8);
  enc(chunk, 12);
  new DataView(b.buffer).setUint32(16, payload.length, true);
  b.set(payload, 20);
  return b;
}

export function webpVp8xHeader(width: number, height: number): Uint8Array {
  const w = width - 1, h = height - 1;
  return riff('VP8X', [0, 0, 0, 0, w & 0xff, (w >> 8) & 0xff, (w >> 16) & 0xff, h & 0xff, (h >> 8) & 0xff, (h >> 16) & 0xff]);
}

export function webpVp8lHeader(width: number, height: number): Uint8Array {
  const w = width - 1, h = height - 1;
  const bits = w | (h << 14); // 14 bits each, then alpha + version bits stay 0
  return riff('VP8L', [0x2f, bits & 0xff, (bits >>> 8) & 0xff, (bits >>> 16) & 0xff, (bits >>> 24) & 0xff]);
}

export function webpVp8Header(width: number, height: number): Uint8Array {
  // frame tag (3) + start code 9d 01 2a + 14-bit width/height (little-endian)
  return riff('VP8 ', [0, 0, 0, 0x9d, 0x01, 0x2a, width & 0xff, (width >> 8) & 0x3f, height & 0xff, (height >> 8) & 0x3f]);
}
