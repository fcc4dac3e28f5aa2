# Parity check: the browser's sampler (mulberry32 + Box-Muller noise, batch-2 CFG, Euler) vs
# the same maths in numpy + onnxruntime for Python. Usage, after the Playwright generate test
# has written its artifact:
#   python3 web/scripts/parity_check.py web/test-results/siamese-seed12345-4steps-cfg3.png [MODEL.onnx]
# MODEL defaults to the shipped models/generator/generator.int8.onnx (a latent one brings its decoder). Pixel parity (max |diff| ≤ 1)
# needs float activations: an `int8-dynamic` export quantizes activations at run time, and the
# WASM and x86 integer kernels round differently (single-call outputs differ by ~0.007 on
# average, as much as either differs from fp32), so that export cannot be checked to 1/255.
# For the shipped int8-dynamic generator, export a weight-only one, point the web build at it
# and pass it here:
#   tinycats export --model models/generator/generator.safetensors --out models/generator/parity.int8.onnx --quantize int8
#   (cd web && VITE_GENERATOR_URL=models/generator/parity.int8.onnx npm run build && STUDIO_E2E=0 npx playwright test e2e/generate.spec.ts)
#   python3 web/scripts/parity_check.py web/test-results/siamese-seed12345-4steps-cfg3.png models/generator/parity.int8.onnx
# Needs numpy, onnxruntime and Pillow (not part of test_web.sh, which must not need Python).
import math, sys, numpy as np, onnxruntime as ort
from PIL import Image
def mulberry32(seed):
    a = seed & 0xffffffff
    def imul(x, y): return (x * y) & 0xffffffff
    def r():
        nonlocal a
        a = (a + 0x6d2b79f5) & 0xffffffff
        t = a
        t = imul(t ^ (t >> 15), t | 1)
        t ^= (t + imul(t ^ (t >> 7), t | 61)) & 0xffffffff
        return ((t ^ (t >> 14)) & 0xffffffff) / 4294967296
    return r
def noise(seed, n):
    r = mulberry32(seed); out = np.zeros(n, np.float32)
    for i in range(0, n, 2):
        u1 = max(r(), 5e-324); u2 = r()
        rr = math.sqrt(-2 * math.log(u1)); th = 2 * math.pi * u2
        out[i] = rr * math.cos(th)
        if i + 1 < n: out[i + 1] = rr * math.sin(th)
    return out
import json, os
seed, steps, cfg = 12345, 4, 3.0  # what e2e/generate.spec.ts uses (guidance-to 1: every step)
model = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), '../../models/generator/generator.int8.onnx')
s = ort.InferenceSession(model)
meta = s.get_modelmeta().custom_metadata_map
if meta.get('quantization') == 'int8-dynamic':
    sys.exit(f'{model}: an int8-dynamic export rounds activations differently in WASM and on x86, so pixel parity is undefined; check with a weight-only export (see the comment at the top of this script)')
breed, null = json.loads(meta['labels']).index('Siamese'), int(meta['null_class'])
target = meta.get('target', 'velocity')  # as src/lib/metadata.ts defaults it
# A latent generator samples a latent_channels × latent_size² latent and paints it through the
# decoder graph named in its metadata (beside the generator), as src/worker/worker.ts does.
size = int(meta.get('image_size', 64))
c, l = int(meta.get('latent_channels', 3)), int(meta.get('latent_size', size))
x = noise(seed, c * l * l).reshape(1, c, l, l)
for k in range(steps):
    t = k / steps
    v = s.run(None, {'x_t': np.concatenate([x, x]), 't': np.array([t, t], np.float32), 'breed': np.array([breed, null], np.int64)})[0]
    if target == 'x':  # the graph predicts the clean image: velocity as in src/lib/sampling.ts
        v = ((v - np.concatenate([x, x])) / np.float32(max(1 - t, 0.05))).astype(np.float32)
    vm = (v[1] + np.float32(cfg) * (v[0] - v[1])).astype(np.float32)
    x = (x + vm * np.float32(1 / steps)).astype(np.float32)
if 'decoder' in meta:
    dec = ort.InferenceSession(os.path.join(os.path.dirname(model), meta['decoder']))
    x = dec.run(None, {'latent': x[:1]})[0]
ref = np.round(np.clip((x[0] + 1) / 2, 0, 1) * 255).astype(np.int32).transpose(1, 2, 0)
web = np.asarray(Image.open(sys.argv[1]).convert('RGB')).astype(np.int32)
d = np.abs(ref - web)
print('max |diff|', d.max(), 'mean', d.mean(), 'fraction of values differing', (d > 0).mean())
sys.exit(0 if d.max() <= 1 else 1)
