"""The opening statement of a git ref against the working tree's, in one interleaved
pgbench run (A B A B ...), on the list-stores transaction as the server sends it (two
pipelines: BEGIN, the context and the opening statement; then the list and COMMIT):
the database's side of a change to src/platform/db/begin_request.sql, with the
machine's speed cancelling out in the ratio. Since the opening statement runs as the
runtime role (V8), the context and the role are set before it; pgbench cannot send
SET LOCAL with parameters, so a prepared set_config stands in for the server's
SET LOCAL commands (it costs a little more).

    python3 bench/compare_opening.py <git-ref> [--rounds 4] [--seconds 10] [--clients 4]

Seeds a database through a debug server (target/debug/rowguard; cargo build first).
BENCH_DATABASE_URL names the PostgreSQL server (default: the local one, as root)."""

import argparse
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (the benchmark's own helpers)

LIST_STORES = """
SELECT s.id, s.name, s.code, s.address, s.status, s.created_at FROM stores s
 WHERE (s.created_at, s.id) > ('1970-01-01T00:00:00Z', '00000000-0000-0000-0000-000000000000')
   AND (EXISTS (SELECT 1 FROM user_roles ur WHERE ur.user_id = app.current_user_id() AND ur.store_id IS NULL)
        OR EXISTS (SELECT 1 FROM user_roles ur WHERE ur.user_id = app.current_user_id() AND ur.store_id = s.id)
        OR EXISTS (SELECT 1 FROM store_users su WHERE su.user_id = app.current_user_id() AND su.store_id = s.id))
 ORDER BY s.created_at, s.id LIMIT 21;
"""


def as_pgbench(sql):
    """The statement with pgbench variables, as `run.opening_statement` makes it."""
    lines = [line.split("--", 1)[0].strip() for line in sql.splitlines()]
    sql = " ".join(line for line in lines if line)
    return (sql.replace("$10::uuid", "NULL::uuid").replace("$10", "NULL::uuid").replace("$1", ":tenant").replace("$2", ":user").replace("$3", "NULL")
            .replace("$4", ":permission").replace("$5", "false").replace("$6", ":session")
            .replace("$7::uuid", "NULL::uuid").replace("$8", "NULL::text").replace("$9::boolean", "false"))


CONTEXT = ("SELECT pg_catalog.set_config('app.tenant_id', :tenant, true), "
           "pg_catalog.set_config('app.user_id', :user, true), pg_catalog.set_config('app.store_id', '', true), "
           "pg_catalog.set_config('app.session_id', :session, true), pg_catalog.set_config('role', 'rowguard_api', true);\n")


def opening_transaction(sql):
    """The transaction of a list, pipelined as the server pipelines it. An opening
    statement that switches the role itself (before V8) needs no context before it."""
    context = "" if "set_config('role'" in sql else CONTEXT
    return (f"\\startpipeline\nBEGIN;\n{context}{as_pgbench(sql)};\n\\endpipeline\n"
            f"\\startpipeline\n{LIST_STORES}COMMIT;\n\\endpipeline\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("ref")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    path = "src/platform/db/begin_request.sql"
    before = subprocess.run(["git", "show", f"{args.ref}:{path}"], cwd=run.ROOT, check=True,
                            capture_output=True, text=True).stdout
    with open(os.path.join(run.ROOT, path)) as file:
        after = file.read()

    url = run.fresh_database("rowguard_compare_opening")
    env = dict(os.environ, DATABASE_URL=url, ROWGUARD_BIND=run.BIND, ROWGUARD_JWT_SECRET=run.SECRET,
               RUST_LOG="warn", ROWGUARD_DEFAULT_PLAN="business")
    server = subprocess.Popen([os.path.join(run.ROOT, "target/debug/rowguard"), "serve"], env=env)
    try:
        for _ in range(300):
            try:
                run.call("GET", "/health")
                break
            except Exception:
                time.sleep(0.2)
        tenant = run.seed(3, stores_per_tenant=25, products_per_tenant=20)[0]
    finally:
        server.terminate()
        server.wait()
    run.psql(url, "ANALYZE")
    variables = {"tenant": tenant["tenant"], "user": tenant["user"], "permission": "stores.view",
                 "session": tenant["session"]}
    scripts = {name: opening_transaction(sql) for name, sql in (("before", before), ("after", after))}
    tps = {"before": [], "after": []}
    for round_ in range(args.rounds):
        for name in ("before", "after"):
            result, _ = run.pgbench(url, scripts[name], args.clients, args.seconds, variables=variables)
            tps[name].append(result)
            print(f"round {round_ + 1} {name:6} {result:8.0f} tps", flush=True)
    medians = {name: statistics.median(values) for name, values in tps.items()}
    print(f"\nmedian tps: before {medians['before']:.0f} ({args.ref}), after {medians['after']:.0f} "
          f"(working tree); after / before = {medians['after'] / medians['before']:.3f}")
    run.psql(run.ADMIN_URL, "DROP DATABASE IF EXISTS rowguard_compare_opening WITH (FORCE)")


if __name__ == "__main__":
    main()
