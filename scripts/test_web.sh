#!/usr/bin/env bash
# Web app tests: unit tests (vitest), production build, then Playwright against `vite preview`
# in Debian's headless chromium. Ends with "web tests: N passed, N failed" over both suites and
# exits non-zero if anything failed (including a failed build or a suite that did not report).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_web.sh
cd web
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
mkdir -p test-results
rm -f test-results/unit-results.json test-results/e2e-results.json

set +e
npx vitest run --reporter=default --reporter=json --outputFile.json=test-results/unit-results.json
unit_rc=$?
npm run build --silent
build_rc=$?
e2e_rc=1
if [ "$build_rc" -eq 0 ]; then
  npx playwright test
  e2e_rc=$?
else
  echo "test_web: build failed, Playwright not run"
fi
set -e

# Counts from the JSON reports; a missing report counts as one failure so it cannot pass silently.
node - "$unit_rc" "$build_rc" "$e2e_rc" <<'JS'
const fs = require('node:fs');
const [unitRc, buildRc, e2eRc] = process.argv.slice(2).map(Number);
let passed = 0, failed = 0, skipped = 0;
try {
  const u = JSON.parse(fs.readFileSync('test-results/unit-results.json', 'utf8'));
  passed += u.numPassedTests; failed += u.numFailedTests; skipped += u.numPendingTests + u.numTodoTests;
} catch { failed += 1; console.log('test_web: no unit test report'); }
if (buildRc !== 0) failed += 1;
try {
  const e = JSON.parse(fs.readFileSync('test-results/e2e-results.json', 'utf8')).stats;
  passed += e.expected; failed += e.unexpected + e.flaky; skipped += e.skipped;
} catch { failed += 1; console.log('test_web: no Playwright report'); }
if (failed === 0 && (unitRc !== 0 || e2eRc !== 0)) failed += 1; // a runner failed without a failing test
if (skipped) console.log(`test_web: ${skipped} skipped`);
console.log(`web tests: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
JS
