#!/usr/bin/env bash
# Shared data steps: import the Oxford-IIIT Pet subset into data/pets, verify it, and prepare a
# cache at each size given (default 128). Re-running is cheap: identical files and caches are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
TC=${TC:-target/release/tinycats}
SRC=${TINYCATS_DATA:-../shared/data/oxford-pets-subset}
$TC data import "$SRC" --dest data/pets
$TC data verify data/pets
for size in "${@:-128}"; do
  $TC data prepare data/pets --size "$size"
done
