#!/usr/bin/env bash
# The main job, one command: set up, build, prepare the shared Oxford-IIIT Pet subset under
# data/pets, and classify a few real photos with the shipped classifier. (The studio server and
# the web app join this script as they land; see the issues.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked -p tinycats-cli
bash scripts/data.sh 128 224
target/release/tinycats data stats data/pets
target/release/tinycats predict data/pets/images/{Bengal_1,Persian_1,Siamese_5,Egyptian_Mau_1}.jpg --top 3
