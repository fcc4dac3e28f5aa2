#!/usr/bin/env python3
"""Scales a generator's class-embedding table (y_embed.weight) and writes one .safetensors file.

Why: in our CPU runs the timestep MLP's output grew to a norm of 20-58 while the class rows, moved
only by Adam's bounded per-row steps, stayed near 0.4, so the conditioning c = t_emb + y_emb
carried ~1% class signal and every breed looked the same. Scaling the rows (x40 → norm ~16) makes
the class signal comparable; continued training then learns to use it (docs/RESULTS.md).

    python3 scripts/scale_class_embedding.py runs/gen-small-64-cont/ema.safetensors /tmp/gen-yscaled.safetensors 40
    tinycats train generator --config configs/generator.toml --init-from /tmp/gen-yscaled.safetensors ...

Input: a sharded (index .json + parts) or single-file safetensors written by tinycats; metadata kept.
"""
import glob
import json
import struct
import sys

import numpy as np


def parts(path):
    if path.endswith(".safetensors"):
        stem = path[: -len(".safetensors")]
        shards = sorted(glob.glob(stem + "-0*-of-0*.safetensors"))
        return shards or [path]
    return [path]


def main(src, dst, factor):
    meta, tensors = None, {}
    for f in parts(src):
        b = open(f, "rb").read()
        n = struct.unpack("<Q", b[:8])[0]
        h = json.loads(b[8 : 8 + n])
        meta = meta or h.get("__metadata__")
        for k, v in h.items():
            if k == "__metadata__":
                continue
            if v["dtype"] != "F32":
                sys.exit(f"{f}: tensor {k} is {v['dtype']}, expected F32")
            s, e = v["data_offsets"]
            tensors[k] = (v["shape"], np.frombuffer(b[8 + n + s : 8 + n + e], dtype="<f4").copy())
    if "y_embed.weight" not in tensors:
        sys.exit(f"{src}: no y_embed.weight (not a tinycats generator?)")
    shape, y = tensors["y_embed.weight"]
    tensors["y_embed.weight"] = (shape, y * factor)
    header, blobs, off = {}, [], 0
    for k in sorted(tensors):
        shape, a = tensors[k]
        by = a.astype("<f4").tobytes()
        header[k] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(by)]}
        blobs.append(by)
        off += len(by)
    if meta:
        header["__metadata__"] = meta
    hb = json.dumps(header).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    with open(dst, "wb") as out:
        out.write(struct.pack("<Q", len(hb)) + hb + b"".join(blobs))
    rows = np.linalg.norm(y.reshape(shape), axis=1)
    print(f"{dst}: y_embed rows x{factor} (norms {rows.min():.2f}-{rows.max():.2f} → {factor * rows.min():.2f}-{factor * rows.max():.2f})")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))
