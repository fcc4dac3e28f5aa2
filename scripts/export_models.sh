#!/usr/bin/env bash
# Regenerates the shipped ONNX files from the shipped weights (models/*/):
#   models/classifier/classifier.int8.onnx   (the web app's classifier)
#   models/generator/generator.int8.onnx (int8-dynamic: the web app's generator), generator.fp16.onnx
# fp32 exports are one command away (--quantize none) and are not committed, to keep the repo small.
set -euo pipefail
cd "$(dirname "$0")/.."
TC=${TC:-target/release/tinycats}
[ -x "$TC" ] || cargo build --release --locked -p tinycats-cli
$TC export --model models/classifier --out models/classifier/classifier.int8.onnx --quantize int8
$TC export --model models/generator/generator.safetensors --out models/generator/generator.int8.onnx --quantize int8-dynamic
$TC export --model models/generator/generator.safetensors --out models/generator/generator.fp16.onnx --quantize fp16
