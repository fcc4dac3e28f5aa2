#!/usr/bin/env bash
# The one command that runs every test. Tests that need ../shared skip with a printed reason
# when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo test --workspace --locked 2>&1
