#!/usr/bin/env bash
# PyTorch for the same-run benchmarks (`tinycats bench classifier-step|dit-step --torch
# scripts/torch_python.sh`). PyPI's torch is the CUDA build, so its CUDA libraries come along
# (from PyPI too); on a CPU-only machine they are loaded but unused. Installed into .torch/
# (gitignored, ~4 GB), not into the system Python.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if PYTHONPATH=.torch "$PY" -c "import torch" 2>/dev/null; then echo "setup_torch: ok (already installed)"; exit 0; fi
"$PY" -m pip install --quiet --disable-pip-version-check --target .torch torch==2.5.1 \
  nvidia-cublas-cu12==12.4.5.8 nvidia-cuda-runtime-cu12==12.4.127 nvidia-cudnn-cu12==9.1.0.70 \
  nvidia-cufft-cu12==11.2.1.3 nvidia-curand-cu12==10.3.5.147 nvidia-cusolver-cu12==11.6.1.9 \
  nvidia-cusparse-cu12==12.3.1.170 nvidia-nccl-cu12==2.21.5 nvidia-nvtx-cu12==12.4.127 \
  nvidia-nvjitlink-cu12==12.4.127 nvidia-cuda-nvrtc-cu12==12.4.127 nvidia-cuda-cupti-cu12==12.4.127 \
  sympy==1.13.1 networkx jinja2 filelock fsspec typing-extensions --no-deps
PYTHONPATH=.torch "$PY" -c "import torch; print('setup_torch: torch', torch.__version__)"
