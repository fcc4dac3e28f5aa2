#!/usr/bin/env python3
"""How much breed agreement survives blur: the classifier on real test photos at the generator's
size, after shrinking them by a factor and enlarging them back (a stand-in for a generator that
gets colours and layout right but not detail).

  blur_ceiling.py CLASSIFIER.onnx CACHE_DIR [--split test] [--factors 1 2 4 8] [--exclude other]

CACHE_DIR is a prepared cache at the generator's size (data/pets/prepared/64-cats_other-crop).
Prints one JSON line: agreement per factor (factor 1 = the ceiling `eval-gen` reports).
"""
import argparse, json, os
import numpy as np
import onnxruntime as ort
from PIL import Image


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("classifier")
    ap.add_argument("cache")
    ap.add_argument("--split", default="test")
    ap.add_argument("--factors", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--exclude", nargs="*", default=["other"])
    a = ap.parse_args()
    o = ort.SessionOptions()
    o.intra_op_num_threads = os.cpu_count() or 1
    s = ort.InferenceSession(a.classifier, o, providers=["CPUExecutionProvider"])
    m = s.get_modelmeta().custom_metadata_map
    clf_labels, csize = json.loads(m["labels"]), int(m["image_size"])
    idx = json.load(open(os.path.join(a.cache, "index.json")))
    n, size, classes = len(idx["entries"]), idx["size"], idx["classes"]
    px = np.fromfile(os.path.join(a.cache, "images.u8"), dtype=np.uint8).reshape(n, size, size, 3)
    sel = [i for i, e in enumerate(idx["entries"]) if e["split"] == a.split and classes[e["label"]] not in a.exclude]
    if not sel:
        raise SystemExit(f"{a.cache}: no {a.split} images left after --exclude {a.exclude}")
    # A breed the classifier does not know counts as a miss (-1 never matches an argmax).
    want = np.array([clf_labels.index(c) if c in clf_labels else -1 for c in (classes[idx["entries"][i]["label"]] for i in sel)])
    out = {"classifier": a.classifier, "cache": a.cache, "split": a.split, "n": len(sel), "size": size, "agreement": {}}
    for f in a.factors:
        if size % f:
            raise SystemExit(f"--factors: {f} does not divide the image size {size}")
        imgs = []
        for i in sel:
            im = Image.fromarray(px[i])
            if f > 1:
                im = im.resize((size // f, size // f), Image.BOX).resize((size, size), Image.BILINEAR)
            imgs.append(np.asarray(im.resize((csize, csize), Image.BILINEAR)))
        x = np.stack(imgs).astype(np.float32).transpose(0, 3, 1, 2) / 255.0
        p = np.concatenate([s.run(None, {"image": x[k:k + 32]})[0] for k in range(0, len(x), 32)])
        out["agreement"][str(f)] = float((p.argmax(1) == want).mean())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
