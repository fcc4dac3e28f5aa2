#!/usr/bin/env python3
"""Checks an exported ONNX model with the `onnx` checker and runs it in onnxruntime (the engine
behind ONNX Runtime Web) on inputs written by the Rust tests, comparing with the burn output.

usage: onnx_parity.py MODEL.onnx CASE.json
CASE.json: {"inputs": [{"name", "dtype": "float32"|"int64", "shape", "file"}],
            "expected": {"file", "shape"}, "tol": 1e-4}
Prints one JSON line; exits 1 when the checker fails or max |diff| > tol.
"""
import json, os, sys
import numpy as np
import onnx
import onnxruntime as ort

model_path, case_path = sys.argv[1], sys.argv[2]
case = json.load(open(case_path))
base = os.path.dirname(case_path)
onnx.checker.check_model(onnx.load(model_path), full_check=True)
feeds = {}
for i in case["inputs"]:
    feeds[i["name"]] = np.fromfile(os.path.join(base, i["file"]), dtype=i["dtype"]).reshape(i["shape"])
sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
out = sess.run(None, feeds)[0]
exp = np.fromfile(os.path.join(base, case["expected"]["file"]), dtype="float32").reshape(case["expected"]["shape"])
diff = float(np.max(np.abs(out - exp)))
print(json.dumps({"checker": "ok", "onnxruntime": ort.__version__, "max_abs_diff": diff, "shape": list(out.shape)}))
sys.exit(0 if diff <= case["tol"] else 1)
