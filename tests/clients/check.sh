#!/usr/bin/env bash
# Generates clients from rowguard's OpenAPI document, as a client's developer would, and
# fails on anything that is not clean:
#   1. openapi-typescript (with redocly.yaml's lint rules) must print no warning;
#   2. openapi-python-client must print no warning;
#   3. statuses.ts must type-check (tsc --noEmit --strict) against the generated
#      TypeScript: statuses and problem codes are string-literal unions, `detail` is a
#      required string.
# Every check runs, then the script exits 1 naming each one that failed.
#
# The tools are pinned here and installed on first use: npm ci into
# tests/clients/node_modules (package-lock.json), pip into target/clients-venv
# (requirements.txt); both are reinstalled only when their pin file changes. Needs node
# and npm (openapi-typescript wants Node >= 18), python3 with venv, and the document from
# target/debug/rowguard, which is built first when missing or older than the sources.
#   tests/clients/check.sh                          (the document `rowguard openapi` prints)
#   OPENAPI_JSON=draft.json tests/clients/check.sh  (any other document, e.g. a draft)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"

HERE=tests/clients
VENV=target/clients-venv
BIN=target/debug/rowguard
export FORCE_COLOR=0 NO_COLOR=1   # plain text, so output can be read line by line

die() { echo "check.sh: $*" >&2; exit 2; }
command -v node >/dev/null && command -v npm >/dev/null || die "node and npm are needed (openapi-typescript)"
command -v python3 >/dev/null || die "python3 is needed (openapi-python-client)"

# --- Tools, reinstalled only when their pins change.
stamp_of() { sha256sum "$1" | cut -d' ' -f1; }
if [ "$(cat "$HERE/node_modules/.rowguard-stamp" 2>/dev/null)" != "$(stamp_of "$HERE/package-lock.json")" ]; then
    echo "installing openapi-typescript and typescript (npm ci)"
    (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)
    stamp_of "$HERE/package-lock.json" >"$HERE/node_modules/.rowguard-stamp"
fi
if [ "$(cat "$VENV/.rowguard-stamp" 2>/dev/null)" != "$(stamp_of "$HERE/requirements.txt")" ]; then
    echo "installing openapi-python-client into $VENV (pip)"
    rm -rf "$VENV"
    python3 -m venv "$VENV" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"
    stamp_of "$HERE/requirements.txt" >"$VENV/.rowguard-stamp"
fi

# --- The document, from the binary `cargo test` built (rebuilt when the sources are newer).
if [ -z "${OPENAPI_JSON:-}" ] && { [ ! -x "$BIN" ] || [ -n "$(find src build.rs Cargo.toml Cargo.lock -newer "$BIN" -print -quit)" ]; }; then
    echo "building $BIN"
    cargo build --quiet --locked
fi
work="$(mktemp -d -t rowguard-clients-XXXXXX)"
trap 'rm -rf "$work"' EXIT
if [ -n "${OPENAPI_JSON:-}" ]; then
    cp "$OPENAPI_JSON" "$work/openapi.json"   # a document given by hand, e.g. a draft
else
    # poem-openapi panics here when two types claim one schema name.
    "$BIN" openapi >"$work/openapi.json" || { echo "FAILED: $BIN openapi printed no document" >&2; exit 1; }
fi

failed=()
report() { # report NAME LOG: print the tool's lines that made a check fail
    local name="$1" log="$2"
    failed+=("$name")
    echo
    echo "FAILED: $name"
    sed 's/^/    /' "$log"
}

# --- 1. openapi-typescript. It prints a " ⚠  message at #/pointer" line per warning
# (lint problems, unresolvable refs, bad discriminators) on stderr, and " ✘  ..." per
# error; with -o it otherwise prints only its banner and the "🚀 in → out" line. So
# anything else on either stream counts as a warning.
mkdir -p "$HERE/generated"
ts_out="$ROOT/$HERE/generated/rowguard.d.ts"
rm -f "$ts_out"
ts_log="$work/openapi-typescript.log"
ts_status=0
(cd "$work" && "$ROOT/$HERE/node_modules/.bin/openapi-typescript" openapi.json \
    --redocly "$ROOT/$HERE/redocly.yaml" -o "$ts_out") >"$ts_log" 2>&1 || ts_status=$?
grep -v -e '^✨ openapi-typescript [0-9.]*$' -e '^🚀 .* → .*' "$ts_log" >"$work/ts-warnings" || true
if [ "$ts_status" -ne 0 ] || [ -s "$work/ts-warnings" ]; then
    [ "$ts_status" -eq 0 ] || echo "(exit status $ts_status)" >>"$work/ts-warnings"
    report "openapi-typescript printed $(grep -c '^ *⚠' "$work/ts-warnings" || true) warning(s), $(grep -c '^ *✘' "$work/ts-warnings" || true) error(s)" "$work/ts-warnings"
else
    echo "ok: openapi-typescript generated $HERE/generated/rowguard.d.ts with no warning"
fi

# --- 2. openapi-python-client. Each problem it meets is a block on stderr under
# "Warning(s) encountered while generating..." (or "Error(s) ..."), headed
# "Unable to parse this part of your OpenAPI document:", "Problem creating a Property:"
# or "Problem creating a Parameter:", then the detail and the offending schema. Its
# post-generation hooks (ruff, from the venv) report there too. Otherwise it prints
# only "Generating <path>" on stdout.
py_log="$work/openapi-python-client.log"
py_status=0
PATH="$ROOT/$VENV/bin:$PATH" "$VENV/bin/openapi-python-client" generate \
    --path "$work/openapi.json" --output-path "$work/python" --meta none \
    --config "$HERE/python-client.yaml" \
    >"$py_log" 2>&1 || py_status=$?
grep -v -e '^Generating ' -e '^$' "$py_log" >"$work/py-warnings" || true
if [ "$py_status" -ne 0 ] || [ -s "$work/py-warnings" ]; then
    [ "$py_status" -eq 0 ] || echo "(exit status $py_status)" >>"$work/py-warnings"
    report "openapi-python-client printed $(grep -c -E '^(WARNING |Unable to |Problem creating )' "$py_log" || true) warning(s)" "$py_log"
else
    echo "ok: openapi-python-client generated a client with no warning"
fi

# --- 3. The generated TypeScript's closed sets (statuses.ts).
tsc_log="$work/tsc.log"
if [ ! -s "$ts_out" ]; then
    echo "openapi-typescript wrote no $HERE/generated/rowguard.d.ts" >"$tsc_log"
    report "type assertions (statuses.ts) not checked" "$tsc_log"
elif ! "$HERE/node_modules/.bin/tsc" --noEmit --strict -p "$HERE/tsconfig.json" >"$work/tsc.raw" 2>&1; then
    # Each error with the line of statuses.ts it is about; long type dumps shortened.
    while IFS= read -r line; do
        printf '%s\n' "$line" | sed -E "s/(on type|to type|Type) '([^']{50})[^']{20,}'/\1 '\2...'/g"
        if [[ "$line" =~ ^([^\(]+)\(([0-9]+),[0-9]+\):\ error ]] && [ -f "${BASH_REMATCH[1]}" ]; then
            echo "        > $(sed -n "${BASH_REMATCH[2]}p" "${BASH_REMATCH[1]}" | sed 's/^ *//')"
        fi
    done <"$work/tsc.raw" >"$tsc_log"
    report "type assertions (statuses.ts): $(grep -c 'error TS' "$tsc_log" || true) error(s)" "$tsc_log"
else
    echo "ok: statuses.ts type-checks (tsc --strict): closed sets are string-literal unions"
fi

if [ "${#failed[@]}" -gt 0 ]; then
    echo
    echo "client generation check failed:"
    printf '  - %s\n' "${failed[@]}"
    exit 1
fi
echo "client generation check passed"
