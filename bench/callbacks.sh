#!/usr/bin/env bash
# The payment callback benchmark (README, "Payments: M-Pesa"): 2,000 pending payments,
# their success callbacks posted 200 at a time, then the same again as duplicates;
# prints callbacks per second and the p99 answer of each, and fails unless the rows
# after show every payment paid once and every callback stored.
#   bench/callbacks.sh            (debug build, as the test suite; add --release for a release build)
# DATABASE_URL names the PostgreSQL server the test harness uses.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DATABASE_URL:=postgres://root@127.0.0.1:5432/postgres}"
export DATABASE_URL
exec cargo test "$@" --test api payments_bench -- --ignored --nocapture
