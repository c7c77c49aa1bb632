"""The plan's gate in the opening statement, on against off, in one interleaved pgbench
run (A B A B ...) of the same build: the list transaction as the server sends it (two
pipelines: BEGIN, the context and the opening statement; then the list and COMMIT),
once as an ungated list sends it ($8 no feature, $9 not gated) and once as the gated
inventory list does ($8 'inventory', $9 gated: the probes of the subscription and of
plan_features run). The machine's speed cancels out in the ratio; what is left is the
database's side of the gate. (The server's side is a comparison of two plan codes in
Rust; the usage meter's increment is measured by `cargo run --release --example
metering`.)

    python3 bench/compare_gate.py [--rounds 6] [--seconds 10] [--clients 4]

Seeds a database through the release server (target/release/rowguard; bench/run.sh
builds it), on the business plan (every feature). BENCH_DATABASE_URL names the PostgreSQL server
(default: the local one, as root)."""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (the benchmark's own helpers)
from compare_opening import CONTEXT, LIST_STORES  # noqa: E402


def opening(feature):
    """The opening statement with pgbench variables; `feature` None: an ungated operation."""
    with open(os.path.join(run.ROOT, "src/platform/db/begin_request.sql")) as file:
        lines = [line.split("--", 1)[0].strip() for line in file]
    sql = " ".join(line for line in lines if line)
    sql = (sql.replace("$10::uuid", "NULL::uuid").replace("$10", "NULL::uuid").replace("$1", ":tenant").replace("$2", ":user").replace("$3", "NULL")
           .replace("$4", ":permission").replace("$5", "false").replace("$6", ":session")
           .replace("$7::uuid", "NULL::uuid"))
    if feature is None:
        return sql.replace("$8", "NULL::text").replace("$9::boolean", "false")
    return sql.replace("$8", f"'{feature}'::text").replace("$9::boolean", "true")


def transaction(feature):
    return (f"\\startpipeline\nBEGIN;\n{CONTEXT}{opening(feature)};\n\\endpipeline\n"
            f"\\startpipeline\n{LIST_STORES}COMMIT;\n\\endpipeline\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--keep", action="store_true", help="keep the database (to EXPLAIN the statements)")
    args = parser.parse_args()

    url = run.fresh_database("rowguard_compare_gate")
    server = run.Server(url)
    try:
        tenant = run.seed(3, stores_per_tenant=25, products_per_tenant=20)[0]
    finally:
        server.stop()
    run.psql(url, "ANALYZE")
    variables = {"tenant": tenant["tenant"], "user": tenant["user"], "permission": "stores.view",
                 "session": tenant["session"]}
    scripts = {"ungated": transaction(None), "gated": transaction("inventory")}
    run.interleaved_pgbench(url, scripts, args.rounds, args.seconds, args.clients, variables)
    if args.keep:
        print(f"kept {url}; variables {variables}")
    else:
        run.psql(run.ADMIN_URL, "DROP DATABASE IF EXISTS rowguard_compare_gate WITH (FORCE)")


if __name__ == "__main__":
    main()
