#!/usr/bin/env bash
# The benchmark of the README: release build, local PostgreSQL, wrk and pgbench.
#   bench/run.sh                 everything (about 6 minutes)
#   bench/run.sh --only login    the login storm alone (see --help)
#   bench/run.sh --compare REF   the list endpoints of REF against the working tree,
#                                interleaved (bench/compare_lists.py; --rounds, --seconds)
#   bench/run.sh --compare-login REF  the login storm of REF against the working tree,
#                                interleaved, with /health beside it (bench/compare_login.py)
#   bench/run.sh --instructions  instructions per request under callgrind, against the
#                                committed baseline (bench/instructions.py; --save)
# BENCH_DATABASE_URL names the PostgreSQL server (default: the local one, as root).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get install -y wrk >/dev/null || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
    else
        echo "bench: wrk is needed (Debian: apt-get install wrk)" >&2
        exit 1
    fi
fi
command -v pgbench >/dev/null || { echo "bench: pgbench is needed (PostgreSQL client)" >&2; exit 1; }
case "${1:-}" in
    --compare)
        shift
        exec python3 bench/compare_lists.py "$@"
        ;;
    --compare-login)
        shift
        cargo build --release --quiet --bin rowguard
        exec python3 bench/compare_login.py "$@"
        ;;
    --instructions)
        shift
        command -v valgrind >/dev/null || { echo "bench: valgrind is needed (Debian: apt-get install valgrind)" >&2; exit 1; }
        cargo build --release --quiet --bin rowguard
        exec python3 bench/instructions.py "$@"
        ;;
esac
cargo build --release --quiet --bin rowguard --example hash_time
exec python3 bench/run.py "$@"
