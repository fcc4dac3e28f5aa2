#!/usr/bin/env python3
"""Quality of exported ONNX models as ONNX Runtime (the engine of ONNX Runtime Web) runs them.

  onnx_eval.py classifier MODEL.onnx CACHE_DIR [--split test]
      top-1 accuracy on a prepared split (tinycats data prepare, same size as the model).
  onnx_eval.py generator GEN.onnx CLASSIFIER.onnx [--per-breed 20 --steps 20 --cfg 3 --seed 1 --guidance-to 1 --time-shift 1 --eta 0 --rescale 0]
      breed agreement: share of generated images the classifier puts in the requested breed.
Prints one JSON line.
"""
import argparse, json, math, os, time
import numpy as np
import onnxruntime as ort
from PIL import Image

def session(p):
    o = ort.SessionOptions()
    o.intra_op_num_threads = os.cpu_count() or 1
    return ort.InferenceSession(p, o, providers=["CPUExecutionProvider"])

def meta(s):
    return s.get_modelmeta().custom_metadata_map

def classify(sess, imgs):  # imgs: N,S,S,3 uint8
    out = []
    for i in range(0, len(imgs), 32):
        x = imgs[i:i + 32].astype(np.float32).transpose(0, 3, 1, 2) / 255.0
        out.append(sess.run(None, {"image": x})[0])
    return np.concatenate(out)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=["classifier", "generator"])
    ap.add_argument("model")
    ap.add_argument("other")
    ap.add_argument("--split", default="test")
    ap.add_argument("--per-breed", type=int, default=20)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--cfg", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--guidance-to", type=float, default=1.0, help="guidance only while t <= this (as the CLI)")
    ap.add_argument("--time-shift", type=float, default=1.0, help="time-grid shift (as the CLI's --time-shift)")
    ap.add_argument("--rescale", type=float, default=0.0, help="guidance rescale φ (Lin et al. 2024) on x̂: blend the guided x̂ with itself scaled to the conditional x̂'s std")
    ap.add_argument("--eta", type=float, default=0.0, help="stochastic sampling (as the CLI's --eta; its noise comes from this script's own generator)")
    a = ap.parse_args()
    if a.kind == "classifier":
        s = session(a.model)
        idx = json.load(open(os.path.join(a.other, "index.json")))
        n, size = len(idx["entries"]), idx["size"]
        px = np.fromfile(os.path.join(a.other, "images.u8"), dtype=np.uint8).reshape(n, size, size, 3)
        sel = [i for i, e in enumerate(idx["entries"]) if e["split"] == a.split]
        labels = np.array([idx["entries"][i]["label"] for i in sel])
        t0 = time.time()
        p = classify(s, px[sel])
        dt = time.time() - t0
        acc = float((p.argmax(1) == labels).mean())
        print(json.dumps({"model": a.model, "split": a.split, "n": len(sel), "top1": acc, "ms_per_image": 1000 * dt / len(sel), "bytes": os.path.getsize(a.model)}))
    else:
        g, c = session(a.model), session(a.other)
        gm, cm = meta(g), meta(c)
        breeds, null, side = json.loads(gm["labels"]), int(gm["null_class"]), int(gm["image_size"])
        # A latent generator samples the autoencoder's latent and paints through its decoder graph.
        ch, lside = int(gm.get("latent_channels", 3)), int(gm.get("latent_size", side))
        dec = session(os.path.join(os.path.dirname(a.model), gm["decoder"])) if "decoder" in gm else None
        clf_labels, csize = json.loads(cm["labels"]), int(cm["image_size"])
        rng = np.random.default_rng(a.seed)
        hits, per = 0, {}
        t0 = time.time()
        for b, name in enumerate(breeds):
            n = a.per_breed
            x = rng.standard_normal((n, ch, lside, lside)).astype(np.float32)
            y = np.array([b] * n + [null] * n, dtype=np.int64)
            u = np.arange(a.steps + 1) / a.steps
            grid = u / (a.time_shift - (a.time_shift - 1) * u)  # the CLI's time grid; 1 = uniform
            for k in range(a.steps):
                tk, dt = float(grid[k]), float(grid[k + 1] - grid[k])
                guided = tk <= a.guidance_to + 1e-6
                m = 2 * n if guided else n  # late unguided steps run the conditional half alone
                t = np.full(m, tk, dtype=np.float32)
                xx = np.concatenate([x, x]) if guided else x
                o = g.run(None, {"x_t": xx, "t": t, "breed": y[:m]})[0]  # velocity or x_hat
                if gm.get("target") == "x":
                    o = (o - xx) / np.maximum(1 - t, 0.05)[:, None, None, None]
                v = o[n:] + a.cfg * (o[:n] - o[n:]) if guided else o
                if guided and a.rescale > 0:
                    # x̂ = x + (1 − t)·v; rescale the guided x̂'s per-image std to the conditional's.
                    w = (1 - tk)
                    xc, xg = x + w * o[:n], x + w * v
                    sc = xc.reshape(n, -1).std(1)[:, None, None, None]
                    sg = xg.reshape(n, -1).std(1)[:, None, None, None]
                    xr = a.rescale * xg * (sc / np.maximum(sg, 1e-8)) + (1 - a.rescale) * xg
                    v = ((xr - x) / w).astype(np.float32)
                if a.eta > 0 and k + 1 < a.steps:
                    # x̂ = x + (1 − t)·v, ε̂ = x − t·v; land on t' with a share η of fresh noise.
                    t1 = float(grid[k + 1])
                    x_hat, eps = x + (1 - tk) * v, x - tk * v
                    z = rng.standard_normal(x.shape).astype(np.float32)
                    # math.sqrt, not np.sqrt: NumPy 2 promotes float32 arrays times a np.float64 scalar.
                    x = t1 * x_hat + (1 - t1) * (math.sqrt(1 - a.eta**2) * eps + a.eta * z)
                else:
                    x = x + v * dt
            if dec is not None:
                x = dec.run(None, {"latent": x.astype(np.float32)})[0]
            img = ((np.clip(x, -1, 1) + 1) * 127.5).round().astype(np.uint8).transpose(0, 2, 3, 1)
            big = np.stack([np.asarray(Image.fromarray(im).resize((csize, csize), Image.BILINEAR)) for im in img])
            pred = classify(c, big).argmax(1)
            ok = int((pred == clf_labels.index(name)).sum()) if name in clf_labels else 0
            hits += ok
            per[name] = ok / n
        print(json.dumps({"model": a.model, "agreement": hits / (len(breeds) * a.per_breed), "per_breed": per, "steps": a.steps, "cfg": a.cfg, "guidance_to": a.guidance_to, "time_shift": a.time_shift, "eta": a.eta, "rescale": a.rescale, "seconds": time.time() - t0, "bytes": os.path.getsize(a.model)}))

main()
