// Upload validation. Checks run cheapest-first (size, then magic bytes, then header
// dimensions) so a hostile file is rejected before the browser spends memory decoding it.

export type ImageKind = 'jpeg' | 'png' | 'webp' | 'gif';

export interface Limits {
  maxBytes: number;
  maxPixels: number;
}

export const DEFAULT_LIMITS: Limits = { maxBytes: 10 * 1024 * 1024, maxPixels: 50_000_000 };

export type Validation =
  | { ok: true; kind: ImageKind; width: number; height: number }
  | { ok: false; code: 'empty' | 'size' | 'type' | 'corrupt' | 'dimensions'; message: string };

export interface FileLike {
  name: string;
  size: number;
  type: string;
}

const MB = 1024 * 1024;

/** Identifies the format from its leading bytes; the browser-reported MIME type and the file
 * extension are both easy to get wrong, the signature is not. */
export function sniffKind(b: Uint8Array): ImageKind | null {
  if (b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47 && b[4] === 0x0d && b[5] === 0x0a && b[6] === 0x1a && b[7] === 0x0a) return 'png';
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 6 && ascii(b, 0, 4) === 'GIF8' && (b[4] === 0x37 || b[4] === 0x39) && b[5] === 0x61) return 'gif';
  if (b.length >= 12 && ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 4) === 'WEBP') return 'webp';
  return null;
}

function ascii(b: Uint8Array, off: number, n: number): string {
  let s = '';
  for (let i = 0; i < n && off + i < b.length; i++) s += String.fromCharCode(b[off + i]);
  return s;
}

const be16 = (b: Uint8Array, o: number) => (b[o] << 8) | b[o + 1];
const le16 = (b: Uint8Array, o: number) => b[o] | (b[o + 1] << 8);
const be32 = (b: Uint8Array, o: number) => ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
const le24 = (b: Uint8Array, o: number) => b[o] | (b[o + 1] << 8) | (b[o + 2] << 16);

/** Pixel dimensions declared in the header, without decoding. null = header unreadable. */
export function headerDimensions(b: Uint8Array, kind: ImageKind): { width: number; height: number } | null {
  switch (kind) {
    case 'png':
      // IHDR is always the first chunk: width and height are big-endian u32 at 16 and 20.
      if (b.length < 24 || ascii(b, 12, 4) !== 'IHDR') return null;
      return { width: be32(b, 16), height: be32(b, 20) };
    case 'gif':
      // Logical screen size (little-endian u16); frames cannot be larger than it.
      if (b.length < 10) return null;
      return { width: le16(b, 6), height: le16(b, 8) };
    case 'webp': {
      const chunk = ascii(b, 12, 4);
      if (chunk === 'VP8 ') return b.length < 30 ? null : { width: le16(b, 26) & 0x3fff, height: le16(b, 28) & 0x3fff };
      if (chunk === 'VP8L') {
        if (b.length < 25 || b[20] !== 0x2f) return null;
        const b1 = b[22], b2 = b[23], b3 = b[24];
        return { width: 1 + (((b1 & 0x3f) << 8) | b[21]), height: 1 + (((b3 & 0x0f) << 10) | (b2 << 2) | ((b1 & 0xc0) >> 6)) };
      }
      if (chunk === 'VP8X') return b.length < 30 ? null : { width: 1 + le24(b, 24), height: 1 + le24(b, 27) };
      return null;
    }
    case 'jpeg': {
      // Walk the marker segments up to the first SOFn frame header.
      let o = 2;
      while (o + 4 <= b.length) {
        if (b[o] !== 0xff) return null;
        const m = b[o + 1];
        if (m === 0xff) { o++; continue; } // fill byte
        if (m === 0xd8 || m === 0x01 || (m >= 0xd0 && m <= 0xd7)) { o += 2; continue; } // no length
        if (m === 0xd9 || m === 0xda) return null; // end / scan before any frame header
        const len = be16(b, o + 2);
        if (len < 2) return null;
        const isSof = m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;
        if (isSof) {
          if (o + 9 > b.length) return null;
          return { width: be16(b, o + 7), height: be16(b, o + 5) };
        }
        o += 2 + len;
      }
      return null;
    }
  }
}

export function formatMB(bytes: number): string {
  return `${(bytes / MB).toFixed(1)} MB`;
}

/** Cheap check that needs only the File's size (run before reading any bytes). */
export function checkSize(file: FileLike, limits: Limits = DEFAULT_LIMITS): Validation | null {
  if (file.size === 0) return { ok: false, code: 'empty', message: `"${file.name}" is empty (0 bytes).` };
  if (file.size > limits.maxBytes)
    return { ok: false, code: 'size', message: `"${file.name}" is too large: ${formatMB(file.size)} (the limit is ${formatMB(limits.maxBytes)}).` };
  return null;
}

/** Pixel-count rule, shared by the header check and the post-decode check. */
export function checkPixels(width: number, height: number, limits: Limits = DEFAULT_LIMITS, name = 'The image'): Validation | null {
  const px = width * height;
  if (!(width > 0 && height > 0))
    return { ok: false, code: 'corrupt', message: `${name} declares an empty size (${width} × ${height} pixels).` };
  if (px > limits.maxPixels)
    return {
      ok: false,
      code: 'dimensions',
      message: `${name} has too many pixels: ${width} × ${height} = ${(px / 1e6).toFixed(1)} megapixels (the limit is ${(limits.maxPixels / 1e6).toFixed(0)} megapixels).`,
    };
  return null;
}

/** Full validation from the file's metadata and (at least its leading) bytes. */
export function validateUpload(file: FileLike, bytes: Uint8Array, limits: Limits = DEFAULT_LIMITS): Validation {
  const size = checkSize(file, limits);
  if (size) return size;
  const kind = sniffKind(bytes);
  if (!kind) {
    const what = file.type ? `${file.type}` : 'unknown type';
    return { ok: false, code: 'type', message: `"${file.name}" is not a supported image (${what}). Use JPEG, PNG, WebP or GIF.` };
  }
  const dims = headerDimensions(bytes, kind);
  if (!dims) return { ok: false, code: 'corrupt', message: `"${file.name}" looks like ${kind.toUpperCase()} but its header is damaged (cannot read the image size).` };
  const px = checkPixels(dims.width, dims.height, limits, `"${file.name}"`);
  if (px) return px;
  return { ok: true, kind, ...dims };
}
