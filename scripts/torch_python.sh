#!/usr/bin/env bash
# python3 with the PyTorch installed by scripts/setup_torch.sh (or $TORCH_PATH) on its path.
here="$(cd "$(dirname "$0")/.." && pwd)"
export PYTHONPATH="${TORCH_PATH:-$here/.torch}${PYTHONPATH:+:$PYTHONPATH}"
exec "${PYTHON:-python3}" "$@"
