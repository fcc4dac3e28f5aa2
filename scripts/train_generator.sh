#!/usr/bin/env bash
# Reproduces the shipped generator on 2 CPU cores: 64 px data, a latent DiT
# (configs/generator-latent.toml, 18,000 steps at ~0.3 s/step alone, ~1.5 h) on the committed
# autoencoder's latents (models/autoencoder; TRAIN_AE=1 first retrains one in two stages,
# configs/autoencoder.toml then configs/autoencoder-decoder.toml, ~1 h, and the DiT then learns
# its latents), evaluation (FID-like + breed agreement with the shipped classifier),
# shipping to models/generator (with the autoencoder beside it) and ONNX export.
# Training resumes: re-run with RUN=<run dir> RESUME=1 to continue.
# The pixel-space recipe the previous shipped model used: CONFIG=configs/generator.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked -p tinycats-cli
TC=target/release/tinycats
bash scripts/data.sh 64 224
RUN=${RUN:-runs/generator-$(date +%s)}
CONFIG=${CONFIG:-configs/generator-latent.toml}
if [ "${RESUME:-0}" = 1 ]; then
  $TC train generator --run-dir "$RUN" --resume
else
  set_ae=()
  if [ "${TRAIN_AE:-0}" = 1 ]; then
    # Stage 1 (encoder + decoder), then stage 2: a wider decoder on the frozen encoder (same latents).
    $TC train autoencoder --config configs/autoencoder.toml --run-dir "$RUN-ae"
    $TC train autoencoder --config configs/autoencoder-decoder.toml --run-dir "$RUN-ae-decoder" \
      --set "train.init=\"$RUN-ae/autoencoder.safetensors\""
    set_ae=(--set "data.autoencoder=\"$RUN-ae-decoder/autoencoder.safetensors\"")
  fi
  $TC train generator --config "$CONFIG" --run-dir "$RUN" "${set_ae[@]}"
fi
$TC eval-gen --model "$RUN/ema.safetensors" --n 1008 --out "$RUN/eval"
$TC ship --run "$RUN" --out models/generator
bash scripts/export_models.sh
