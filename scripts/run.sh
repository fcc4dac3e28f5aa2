#!/usr/bin/env bash
# The main job, one command: set up, build, and bring the shared Oxford-IIIT Pet subset into a
# verified, prepared training cache under data/. (Training, the studio server and the web app
# are added to this script as they land; see the issues.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked -p tinycats-cli
TC=target/release/tinycats
SRC=${TINYCATS_DATA:-../shared/data/oxford-pets-subset}
$TC data import "$SRC" --dest data/pets
$TC data verify data/pets
$TC data prepare data/pets --size 128
$TC data stats data/pets
