#!/usr/bin/env bash
# What our vendored crates (vendor/*) change against the crates.io releases they were copied from.
# Usage: scripts/vendor_diff.sh [CRATE...]   (default: every folder in vendor/ with a Cargo.toml)
# Needs each release in cargo's registry cache, e.g. after any build with its [patch] line in
# Cargo.toml commented out, or a `cargo fetch` of it.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
crates=("$@")
if [ ${#crates[@]} -eq 0 ]; then
  for d in "$here"/vendor/*/; do [ -f "$d/Cargo.toml" ] && crates+=("$(basename "$d")"); done
fi
for c in "${crates[@]}"; do
  v=$(grep -m1 '^version' "$here/vendor/$c/Cargo.toml" | cut -d'"' -f2)
  orig=""
  for d in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"$c-$v"; do [ -d "$d" ] && orig="$d"; done
  if [ -z "$orig" ]; then
    echo "$c-$v is not in cargo's registry cache; fetch it first" >&2
    exit 2
  fi
  # The status is diff's: 1 means "differences found", which is the point.
  diff -ruN --exclude=Cargo.lock --exclude=BENCHMARKS.md --exclude=COMPARISON.md --exclude=.cargo-ok \
    --exclude=.cargo_vcs_info.json "$orig" "$here/vendor/$c" || [ $? -eq 1 ]
done
