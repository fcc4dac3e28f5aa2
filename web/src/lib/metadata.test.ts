import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { classifierInfo, displayLabel, generatorInfo, readOnnxMetadata } from './metadata';

// Tiny protobuf writer, just enough to build a ModelProto with a big graph and metadata.
function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 128) {
    out.push((n % 128) | 128);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}
const enc = new TextEncoder();
function lenField(field: number, payload: Uint8Array | number[]): number[] {
  return [...varint((field << 3) | 2), ...varint(payload.length), ...payload];
}
function entry(key: string, value: string): number[] {
  return lenField(14, [...lenField(1, enc.encode(key)), ...lenField(2, enc.encode(value))]);
}

describe('readOnnxMetadata', () => {
  it('reads metadata_props and skips other fields of every wire type', () => {
    const bytes = new Uint8Array([
      ...varint((1 << 3) | 0), ...varint(8), // ir_version = 8
      ...lenField(2, enc.encode('tinycats')), // producer_name
      ...lenField(7, new Uint8Array(300_000)), // a "graph" bigger than one varint byte of length
      ...entry('labels', '["a","b"]'),
      0x29, 1, 2, 3, 4, 5, 6, 7, 8, // field 5, wire 1 (fixed64)
      0x35, 1, 2, 3, 4, // field 6, wire 5 (fixed32)
      ...entry('model_version', '0.1.0-ünï'),
    ]);
    expect(readOnnxMetadata(bytes)).toEqual({ labels: '["a","b"]', model_version: '0.1.0-ünï' });
  });
  it('fails loudly on truncated input', () => {
    const bytes = new Uint8Array(lenField(7, new Uint8Array(100))).slice(0, 50);
    expect(() => readOnnxMetadata(bytes)).toThrow(/truncated/);
  });
});

describe('model info', () => {
  it('classifier: labels, size, version', () => {
    const info = classifierInfo({ labels: '["Bengal","other"]', image_size: '224', model_version: 'v1', training_run_id: 'r' });
    expect(info).toEqual({ kind: 'classifier', labels: ['Bengal', 'other'], imageSize: 224, modelVersion: 'v1', runId: 'r' });
  });
  it('generator: null class defaults to len(labels); target validated', () => {
    expect(generatorInfo({ labels: '["a","b","c"]' })).toMatchObject({ nullClass: 3, imageSize: 64, target: 'velocity' });
    expect(generatorInfo({ labels: '["a"]', null_class: '7', target: 'x' })).toMatchObject({ nullClass: 7, target: 'x' });
    expect(() => generatorInfo({ labels: '["a"]', target: 'eps' })).toThrow(/target/);
  });
  it('generator: pixel models sample 3×S×S; latent models name their decoder and latent shape', () => {
    expect(generatorInfo({ labels: '["a"]', image_size: '64' })).toMatchObject({ channels: 3, sampleSize: 64, imageSize: 64 });
    expect(generatorInfo({ labels: '["a"]' }).decoder).toBeUndefined();
    const latent = generatorInfo({ labels: '["a"]', image_size: '64', latent_channels: '4', latent_size: '16', decoder: 'generator.int8.decoder.onnx' });
    expect(latent).toMatchObject({ channels: 4, sampleSize: 16, imageSize: 64, decoder: 'generator.int8.decoder.onnx' });
    // The decoder is fetched beside the generator: no paths, no other hosts.
    for (const bad of ['../x.onnx', 'https://evil/x.onnx', 'dir/x.onnx', 'x.bin'])
      expect(() => generatorInfo({ labels: '["a"]', latent_channels: '4', latent_size: '16', decoder: bad })).toThrow(/decoder/);
    expect(() => generatorInfo({ labels: '["a"]', latent_channels: '4', latent_size: '16' })).toThrow(/no "decoder"/);
    expect(() => generatorInfo({ labels: '["a"]', latent_channels: '0', latent_size: '16', decoder: 'd.onnx' })).toThrow(/positive/);
  });
  it('bad labels give a clear error', () => {
    expect(() => classifierInfo({})).toThrow(/no "labels"/);
    expect(() => classifierInfo({ labels: 'nope' })).toThrow(/not JSON/);
    expect(() => classifierInfo({ labels: '[1,2]' })).toThrow(/array of strings/);
    expect(() => classifierInfo({ labels: '["a"]', image_size: '-3' })).toThrow(/image_size/);
  });
  it('displayLabel says "not a cat" for other', () => {
    expect(displayLabel('other')).toBe('not a cat');
    expect(displayLabel('British_Shorthair')).toBe('British Shorthair');
  });
});

// The shipped models (may be replaced by newer weights with the same interface).
const repo = path.resolve(__dirname, '../../..');
const clf = path.join(repo, 'models/classifier/classifier.int8.onnx');
const gen = path.join(repo, 'models/generator/generator.int8.onnx');

describe.skipIf(!existsSync(clf) || !existsSync(gen))('shipped ONNX models', () => {
  it('classifier metadata has 13 labels ending in "other"', () => {
    const info = classifierInfo(readOnnxMetadata(readFileSync(clf)));
    expect(info.labels).toHaveLength(13);
    expect(info.labels[12]).toBe('other');
    expect(info.imageSize).toBe(224);
    expect(info.modelVersion).not.toBe('unknown');
  });
  it('generator metadata: 12 breeds, null class 12, 64 px', () => {
    const info = generatorInfo(readOnnxMetadata(readFileSync(gen)));
    expect(info.labels).toHaveLength(12);
    expect(info.nullClass).toBe(12);
    expect(info.imageSize).toBe(64);
  });
  it('a latent generator names a decoder that lies beside it and takes its latent', () => {
    const info = generatorInfo(readOnnxMetadata(readFileSync(gen)));
    if (info.decoder === undefined) {
      expect(info.channels).toBe(3); // a pixel generator samples the image itself
      return;
    }
    const dec = path.join(path.dirname(gen), info.decoder);
    expect(existsSync(dec)).toBe(true);
    const meta = readOnnxMetadata(readFileSync(dec));
    expect(meta.kind).toBe('latent_decoder');
    // The decoder maps exactly the generator's latent to its image size.
    expect([meta.latent_channels, meta.latent_size, meta.image_size].map(Number)).toEqual([info.channels, info.sampleSize, info.imageSize]);
  });
});
