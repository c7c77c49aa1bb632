#!/usr/bin/env bash
# The admin console's CI step:
#   1. Debian's chromium, installed with apt when /usr/bin/chromium is missing (never a
#      browser downloaded by Playwright: playwright-core drives the system's);
#   2. the pinned npm packages (npm ci from package-lock.json, reinstalled only when it
#      changes);
#   3. the console's JavaScript type-checked (tsc --checkJs) against openapi-typescript
#      output generated from `rowguard openapi`, so a renamed path or field fails here;
#   4. the browser tests (e2e.test.mjs, node's test runner) against target/debug/rowguard
#      with a fresh database on the PostgreSQL server of DATABASE_URL (default
#      postgres://root@127.0.0.1:5432/postgres), a local SMTP sink and the fake Daraja.
# The binaries are built first when missing or older than the sources. Any failure
# exits non-zero; the test runner's summary ends the output.
set -euo pipefail
cd "$(dirname "$0")/../.."

HERE=tests/console
BIN=target/debug/rowguard
FAKE=target/debug/examples/fake_daraja
export FORCE_COLOR=0 NO_COLOR=1

die() { echo "console/run.sh: $*" >&2; exit 2; }
command -v node >/dev/null && command -v npm >/dev/null || die "node and npm are needed"
command -v psql >/dev/null || die "psql is needed (a database per run is created with it)"

if [ ! -x /usr/bin/chromium ]; then
    echo "installing chromium (apt)"
    [ "$(id -u)" -eq 0 ] || die "/usr/bin/chromium is missing and installing it needs root"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
/usr/bin/chromium --version 2>/dev/null | head -1

stamp_of() { sha256sum "$1" | cut -d' ' -f1; }
if [ "$(cat "$HERE/node_modules/.rowguard-stamp" 2>/dev/null)" != "$(stamp_of "$HERE/package-lock.json")" ]; then
    echo "installing the console's test tools (npm ci)"
    (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)
    stamp_of "$HERE/package-lock.json" >"$HERE/node_modules/.rowguard-stamp"
fi

if [ ! -x "$BIN" ] || [ ! -x "$FAKE" ] || [ -n "$(find src console examples tests/api/helpers/fake_daraja.rs build.rs Cargo.toml Cargo.lock -newer "$BIN" -print -quit)" ]; then
    echo "building $BIN and $FAKE"
    cargo build --quiet --locked --bin rowguard --example fake_daraja
fi

# --- Types: the console's JSDoc against the document the binary serves.
mkdir -p "$HERE/generated"
"$BIN" openapi >"$HERE/generated/openapi.json"
"$HERE/node_modules/.bin/openapi-typescript" "$HERE/generated/openapi.json" -o "$HERE/generated/rowguard.d.ts" >/dev/null
if ! "$HERE/node_modules/.bin/tsc" -p "$HERE/tsconfig.json"; then
    echo "FAILED: the console's JavaScript does not type-check against the OpenAPI document" >&2
    exit 1
fi
echo "ok: the console type-checks against the OpenAPI document (tsc --checkJs)"

# --- The browser tests. Screenshots go to docs/console/.
node --test --test-reporter=spec "$HERE/e2e.test.mjs"
