#!/usr/bin/env bash
# What our vendored burn-flex changes against the crates.io release it was copied from.
# Usage: scripts/burn_flex_diff.sh   (needs burn-flex 0.21.0 in cargo's registry cache,
# e.g. after any build with the [patch] line in Cargo.toml commented out, or `cargo fetch` of it)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
orig=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/burn-flex-0.21.0 2>/dev/null | head -1)
if [ -z "$orig" ]; then
  echo "burn-flex-0.21.0 is not in cargo's registry cache; fetch it first" >&2
  exit 2
fi
# The status is diff's: 1 means "differences found", which is the point.
diff -ruN --exclude=Cargo.lock --exclude=BENCHMARKS.md --exclude=COMPARISON.md --exclude=.cargo-ok \
  "$orig" "$here/vendor/burn-flex" || [ $? -eq 1 ]
