#!/usr/bin/env bash
# Idempotent setup for the web app's tests: Debian's chromium (never a browser downloaded by
# npm/Playwright) and web/node_modules from the lockfile. Re-running is cheap: npm ci only runs
# when package-lock.json changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
  echo "setup_web: installing chromium from Debian"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
stamp=web/node_modules/.tinycats-lock.sha256
want=$(sha256sum web/package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup_web: npm ci"
  (cd web && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" >"$stamp"
fi
