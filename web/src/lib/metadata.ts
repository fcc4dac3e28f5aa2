// Reads the ONNX model's custom metadata (metadata_props) straight from the protobuf bytes:
// onnxruntime-web does not expose metadata_props, and labels / null class / version must come
// from the model itself so newer weights with the same interface need no app change.

/** Top-level ModelProto field numbers we care about. */
const MODEL_METADATA_PROPS = 14;

class Reader {
  pos = 0;
  constructor(readonly b: Uint8Array) {}
  varint(): number {
    // Plain arithmetic instead of bit ops: lengths can exceed 2^31 in principle.
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.b.length) throw new Error('ONNX protobuf: truncated varint');
      const byte = this.b[this.pos++];
      result += (byte & 0x7f) * mul;
      if ((byte & 0x80) === 0) return result;
      mul *= 128;
    }
    throw new Error('ONNX protobuf: varint too long');
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) {
      const n = this.varint(); // read first: `pos += varint()` would add to the stale pos
      this.pos += n;
    }
    else if (wire === 5) this.pos += 4;
    else throw new Error(`ONNX protobuf: unsupported wire type ${wire}`);
    if (this.pos > this.b.length) throw new Error('ONNX protobuf: truncated field');
  }
  bytes(): Uint8Array {
    const n = this.varint();
    if (this.pos + n > this.b.length) throw new Error('ONNX protobuf: truncated bytes');
    const out = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
}

const utf8 = new TextDecoder();

/** All metadata_props of a serialized ModelProto as a key → value map. Skips the (large)
 * graph field by its length prefix, so this costs almost nothing even for big models. */
export function readOnnxMetadata(model: Uint8Array): Record<string, string> {
  const r = new Reader(model);
  const out: Record<string, string> = {};
  while (r.pos < model.length) {
    const tag = r.varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (field === MODEL_METADATA_PROPS && wire === 2) {
      const entry = new Reader(r.bytes());
      let key = '';
      let value = '';
      while (entry.pos < entry.b.length) {
        const t = entry.varint();
        if (t === (1 << 3 | 2)) key = utf8.decode(entry.bytes());
        else if (t === (2 << 3 | 2)) value = utf8.decode(entry.bytes());
        else entry.skip(t & 7);
      }
      out[key] = value;
    } else {
      r.skip(wire);
    }
  }
  return out;
}

export interface ClassifierInfo {
  kind: 'classifier';
  labels: string[];
  imageSize: number;
  modelVersion: string;
  runId: string;
}

export interface GeneratorInfo {
  kind: 'generator';
  labels: string[];
  nullClass: number;
  /** Side of the painted image. */
  imageSize: number;
  /** Shape of what the network samples: [channels, sampleSize, sampleSize]. Pixels (3, imageSize)
   * for a pixel generator; an autoencoder's latent for a latent one. */
  channels: number;
  sampleSize: number;
  /** Latent generators: the decoder graph's file name, beside the generator's file. */
  decoder?: string;
  target: 'velocity' | 'x';
  modelVersion: string;
}

export type ModelInfo = ClassifierInfo | GeneratorInfo;

function parseLabels(props: Record<string, string>): string[] {
  if (!props.labels) throw new Error('model metadata has no "labels"');
  let labels: unknown;
  try {
    labels = JSON.parse(props.labels);
  } catch {
    throw new Error('model metadata "labels" is not JSON');
  }
  if (!Array.isArray(labels) || labels.length === 0 || !labels.every((l) => typeof l === 'string'))
    throw new Error('model metadata "labels" must be a non-empty JSON array of strings');
  return labels as string[];
}

function parseIntProp(props: Record<string, string>, key: string, fallback?: number): number {
  const raw = props[key];
  if (raw === undefined) {
    if (fallback !== undefined) return fallback;
    throw new Error(`model metadata has no "${key}"`);
  }
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`model metadata "${key}" is not a non-negative integer: ${raw}`);
  return n;
}

export function classifierInfo(props: Record<string, string>): ClassifierInfo {
  return {
    kind: 'classifier',
    labels: parseLabels(props),
    imageSize: parseIntProp(props, 'image_size', 224),
    modelVersion: props.model_version ?? 'unknown',
    runId: props.training_run_id ?? '',
  };
}

export function generatorInfo(props: Record<string, string>): GeneratorInfo {
  const labels = parseLabels(props);
  const target = props.target ?? 'velocity';
  if (target !== 'velocity' && target !== 'x') throw new Error(`model metadata "target" must be "velocity" or "x", not "${target}"`);
  const imageSize = parseIntProp(props, 'image_size', 64);
  const decoder = props.decoder;
  // A bare file name: the decoder is fetched from the generator's own folder, nowhere else.
  if (decoder !== undefined && !/^[A-Za-z0-9._-]+\.onnx$/.test(decoder)) throw new Error(`model metadata "decoder" must be a plain .onnx file name, not "${decoder}"`);
  const channels = parseIntProp(props, 'latent_channels', 3);
  const sampleSize = parseIntProp(props, 'latent_size', imageSize);
  if (channels === 0 || sampleSize === 0) throw new Error('model metadata "latent_channels" and "latent_size" must be positive');
  if (decoder === undefined && (channels !== 3 || sampleSize !== imageSize)) throw new Error('model metadata describes a latent shape but names no "decoder"');
  return {
    kind: 'generator',
    labels,
    // Convention of the exporter: the null (unconditional) class follows the real ones.
    nullClass: parseIntProp(props, 'null_class', labels.length),
    imageSize,
    channels,
    sampleSize,
    ...(decoder !== undefined ? { decoder } : {}),
    target,
    modelVersion: props.model_version ?? 'unknown',
  };
}

/** Human label: "other" is the classifier's reject class, so say what it means. */
export function displayLabel(label: string): string {
  if (label === 'other') return 'not a cat';
  return label.replace(/_/g, ' ');
}
