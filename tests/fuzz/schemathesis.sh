#!/usr/bin/env bash
# Fuzzes the served OpenAPI document with schemathesis, as an authenticated user:
# no server errors, responses that match the documented schemas, statuses and content
# types, and 401 when credentials are missing or bad. Bounded in time (FUZZ_SECONDS,
# default 120). Runs the debug binary that `cargo test` built; needs python3.
#   tests/fuzz/schemathesis.sh            (DATABASE_URL: a server to create a database on)
set -euo pipefail
cd "$(dirname "$0")/../.."

SECONDS_BUDGET="${FUZZ_SECONDS:-120}"
PORT="${FUZZ_PORT:-18099}"
VENV=target/fuzz-venv
if [ ! -x "$VENV/bin/schemathesis" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet 'schemathesis>=4.30,<5'
fi
[ -x target/debug/rowguard ] || cargo build --quiet

server_env=(ROWGUARD_BIND="127.0.0.1:$PORT" ROWGUARD_JWT_SECRET="fuzzing-secret-fuzzing-secret-0123456789"
            RUST_LOG=warn
            # Fuzzing sends thousands of failed logins; the throttle is tested elsewhere.
            ROWGUARD_LOGIN_MAX_FAILURES_PER_CLIENT=1000000000 ROWGUARD_LOGIN_MAX_FAILURES_PER_EMAIL=1000000000)
if [ -n "${DATABASE_URL:-}" ]; then
    database="rowguard_fuzz_$$"
    admin="$DATABASE_URL"
    psql "$admin" -qc "CREATE DATABASE $database"
    server_env+=(DATABASE_URL="${admin%/*}/$database")
    cleanup_db() { psql "$admin" -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)" || true; }
else
    # No server given: the embedded default, in a throwaway data directory.
    data_dir="$(mktemp -d -t rowguard-fuzz-XXXXXX)"
    chmod 755 "$data_dir"
    server_env+=(ROWGUARD_DATA_DIR="$data_dir")
    cleanup_db() { rm -rf "$data_dir"; }
fi

env "${server_env[@]}" target/debug/rowguard serve &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; cleanup_db' EXIT
for _ in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
    sleep 0.2
done

token="$(curl -sf -X POST "http://127.0.0.1:$PORT/api/v1/auth/register" -H 'content-type: application/json' \
    -d '{"email":"fuzz@example.com","password":"fuzzing passphrase","full_name":"Fuzz","tenant_name":"Fuzz Inc"}' |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')"

# One worker: schemathesis' workers are threads, and CPython 3.11 (the one these machines
# have) shares the AST constructor's recursion counter between threads (CPython
# gh-106905), so two workers describing strategies at once can die with "AST constructor
# recursion depth mismatch", a fuzzer crash that says nothing about the server.
"$VENV/bin/schemathesis" run "http://127.0.0.1:$PORT/openapi.json" \
    --header "Authorization: Bearer $token" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,ignored_auth \
    --max-time "$SECONDS_BUDGET" --workers 1 --seed 20261126 --no-color
