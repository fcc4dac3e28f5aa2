#!/usr/bin/env bash
# The studio server for web/e2e/studio.spec.ts (Playwright starts it as a webServer):
#   bash scripts/studio_e2e_server.sh [PORT]        (default 4180)
# A temp folder gets a synthetic 12-cat data set prepared at 16 px (what the generator's `tiny`
# preset trains on), an empty run store and a runs folder; then `tinycats serve` serves the
# built web app (web/dist) and the API on 127.0.0.1:PORT until it is stopped. The prepared
# cache path is written to web/test-results/studio-cache-path.txt (and exported as
# TINYCATS_E2E_CACHE) for the spec's job configs. Everything is removed on exit.
# The binary: $TINYCATS_BIN, else target/release/tinycats.
set -euo pipefail
PORT="${1:-4180}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${TINYCATS_BIN:-$ROOT/target/release/tinycats}"
if [ ! -x "$BIN" ]; then
  echo "studio_e2e_server: no tinycats binary at $BIN (cargo build --release, or set TINYCATS_BIN)" >&2
  exit 1
fi
if [ ! -f "$ROOT/web/dist/index.html" ]; then
  echo "studio_e2e_server: no web/dist (run npm run build in web/)" >&2
  exit 1
fi
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"

TMP="$(mktemp -d -t tinycats-studio-e2e.XXXXXX)"
CACHE_NOTE="$ROOT/web/test-results/studio-cache-path.txt"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$TMP"
  rm -f "$CACHE_NOTE"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# 12 cat breeds (+2 dogs → "other") × 3 clean images each, prepared at 16 px.
"$BIN" data fixture "$TMP/pets" --breeds all-cats --per-class 3 --size 32 --no-quirks >&2
"$BIN" data prepare "$TMP/pets" --size 16 --out "$TMP/cache16" --json >&2
export TINYCATS_E2E_CACHE="$TMP/cache16"
mkdir -p "$ROOT/web/test-results"
printf '%s\n' "$TINYCATS_E2E_CACHE" >"$CACHE_NOTE"

ARGS=(serve --bind "127.0.0.1:$PORT" --store "$TMP/store.db" --web "$ROOT/web/dist" --models "$ROOT/models")
# Job runs go to the temp folder (the flag arrives with the job runner).
if "$BIN" serve --help 2>/dev/null | grep -q -- '--runs'; then
  mkdir -p "$TMP/runs"
  ARGS+=(--runs "$TMP/runs")
fi
# Relative defaults of the server or its jobs land in the temp folder too.
cd "$TMP"
echo "studio_e2e_server: $BIN ${ARGS[*]} (cache $TINYCATS_E2E_CACHE)" >&2
"$BIN" "${ARGS[@]}" &
SERVER_PID=$!
wait "$SERVER_PID"
