#!/usr/bin/env bash
# The one command that runs every test: the Rust workspace (cargo test) and the web app (unit
# tests + Playwright in Debian's headless chromium, scripts/test_web.sh). Tests that need
# ../shared skip with a printed reason when it is absent. Ends with one summary line
# "all tests: N passed, N failed" over everything.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# A one-shot build gains nothing from incremental caches, which cost gigabytes of disk.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
echo "disk before tests: $(df -h . | awk 'NR==2 { print $4 " free of " $2 }')"
log=$(mktemp)
weblog=$(mktemp)
trap 'rm -f "$log" "$weblog"' EXIT
set +e
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
# The studio's Playwright tests drive a real `tinycats serve`: the binary cargo test just built.
target_dir=${CARGO_TARGET_DIR:-target}
case "$target_dir" in /*) ;; *) target_dir="$PWD/$target_dir" ;; esac
export TINYCATS_BIN="${TINYCATS_BIN:-$target_dir/debug/tinycats}"
bash scripts/test_web.sh 2>&1 | tee "$weblog"
web_rc=${PIPESTATUS[0]}
set -e
rust=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "%d %d", p, f }' "$log")
web=$(awk '/^web tests:/ { p = $3; f = $5 } END { if (p == "") { p = 0; f = 1 } printf "%d %d", p, f }' "$weblog")
read -r rp rf <<<"$rust"
read -r wp wf <<<"$web"
echo "disk after tests: $(df -h . | awk 'NR==2 { print $4 " free of " $2 }'), target: $(du -sh "$target_dir" 2>/dev/null | cut -f1)"
echo "rust tests: $rp passed, $rf failed; web tests: $wp passed, $wf failed"
echo "all tests: $((rp + wp)) passed, $((rf + wf)) failed"
[ "$rc" -eq 0 ] && [ "$web_rc" -eq 0 ]
