#!/usr/bin/env bash
# The main job, one command: set up, build, prepare the shared Oxford-IIIT Pet subset under
# data/pets, classify a few real photos and paint a grid of cats with the shipped models, then
# serve the studio (`tinycats serve`: the web app with in-browser classify / generate / benchmark
# on the shipped ONNX models, plus the run store's REST + WebSocket API) at http://127.0.0.1:8080
# until interrupted.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked -p tinycats-cli
bash scripts/data.sh 64 224
TC=target/release/tinycats
$TC data stats data/pets
$TC predict data/pets/images/{Bengal_1,Persian_1,Siamese_5,Egyptian_Mau_1}.jpg --top 3
$TC generate --breed Siamese --n 16 --seed 1 --out generated/siamese.png
bash scripts/setup_web.sh
(cd web && npm run build --silent)
exec $TC serve --bind 127.0.0.1:8080
