#!/usr/bin/env bash
# Reproduces the shipped classifier from scratch on 2 CPU cores (~25 min): data, features,
# training, evaluation on the held-out test split, and shipping to models/classifier.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked -p tinycats-cli
TC=target/release/tinycats
bash scripts/data.sh 224
RUN=${RUN:-runs/classifier-$(date +%s)}
$TC train classifier --config configs/classifier.toml --run-dir "$RUN"
$TC ship --run "$RUN" --out models/classifier
$TC eval --model models/classifier --data data/pets/prepared/224-cats_other-crop --split test --out "$RUN/eval-test"
