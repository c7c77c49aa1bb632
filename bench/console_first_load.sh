#!/usr/bin/env bash
# The admin console's first load, as README "The admin console" reports it: the bytes
# transferred and the time from navigation start to the `console-interactive` mark of
# /console, each load in a fresh browser context (empty cache), against the debug
# binary with the system of tests/console/harness.mjs. Runs only the measuring step of
# the browser tests, CONSOLE_LOADS times (default 20), and prints the median, min and max.
#   bench/console_first_load.sh            (tests/console/run.sh must have run once: npm ci)
#   CONSOLE_LOADS=50 bench/console_first_load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d tests/console/node_modules ] || { echo "run tests/console/run.sh once first (npm ci)" >&2; exit 2; }
export CONSOLE_LOADS="${CONSOLE_LOADS:-20}" FORCE_COLOR=0 NO_COLOR=1
node --test --test-reporter=spec --test-name-pattern='first page loads' tests/console/e2e.test.mjs 2>&1 |
    grep -E '^console first load|^ℹ (pass|fail) '
