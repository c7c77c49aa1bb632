"""An API key's request against a token's, on the database's side, in one interleaved
pgbench run (A B A B ...) of the same database: the list-stores transaction as the
server pipelines it (BEGIN, the context, [the key's principal,] the opening statement;
then the list and COMMIT), once as a token's request sends it (tenant and user in the
context, $10 NULL) and once as a key's does (the context empty, then
`SELECT set_config(...) FROM app.api_key_principal(id, hash)` as
src/platform/db/request_tx.rs prepares it, and the opening statement reading tenant
and user from the context, $10 the key). The machine's speed cancels out in the
ratio. (The server's side of a key is a SHA-256 of its secret and one more statement
to pipeline: bench/compare_key_lists.py measures both sides over HTTP.)

    python3 bench/compare_key_opening.py [--rounds 6] [--seconds 10] [--clients 4]

Seeds a database through the release server (target/release/rowguard; bench/run.sh
builds it). BENCH_DATABASE_URL names the PostgreSQL server (default: the local one)."""

import argparse
import datetime
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (the benchmark's own helpers)
from compare_opening import LIST_STORES, as_pgbench  # noqa: E402


def opening(key):
    """The opening statement with pgbench variables, as a token's (key False) or a
    key's request sends it."""
    with open(os.path.join(run.ROOT, "src/platform/db/begin_request.sql")) as file:
        lines = [line.split("--", 1)[0].strip() for line in file]
    sql = " ".join(line for line in lines if line)
    # $10 first: "$1" is its prefix.
    sql = sql.replace("$10::uuid", ":key::uuid" if key else "NULL::uuid").replace("$10", ":key::uuid" if key else "NULL::uuid")
    tenant, user = ("NULL", "NULL") if key else (":tenant", ":user")
    return (sql.replace("$1", tenant).replace("$2", user).replace("$3", "NULL").replace("$4", ":permission")
            .replace("$5", "false").replace("$6", "NULL" if key else ":session").replace("$7::uuid", "NULL::uuid")
            .replace("$8", "NULL::text").replace("$9::boolean", "false"))


def principal():
    """request_tx.rs's API_KEY_PRINCIPAL, with pgbench variables for its parameters."""
    with open(os.path.join(run.ROOT, "src/platform/db/request_tx.rs")) as file:
        source = file.read()
    match = re.search(r'const API_KEY_PRINCIPAL: &str = "(.*?)";', source, re.DOTALL)
    sql = re.sub(r"\\\s*\n\s*", "", match.group(1))
    return sql.replace("$1", ":key::uuid").replace("$2", "decode(:hash, 'hex')") + ";\n"


def context(key):
    tenant, user, session = ("''", "''", "''") if key else (":tenant", ":user", ":session")
    return (f"SELECT pg_catalog.set_config('app.tenant_id', {tenant}, true), "
            f"pg_catalog.set_config('app.user_id', {user}, true), pg_catalog.set_config('app.store_id', '', true), "
            f"pg_catalog.set_config('app.session_id', {session}, true), pg_catalog.set_config('role', 'rowguard_api', true);\n")


def transaction(key):
    middle = principal() if key else ""
    return (f"\\startpipeline\nBEGIN;\n{context(key)}{middle}{as_pgbench(opening(key))};\n\\endpipeline\n"
            f"\\startpipeline\n{LIST_STORES}COMMIT;\n\\endpipeline\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()

    url = run.fresh_database("rowguard_compare_key_opening")
    server = run.Server(url)
    try:
        tenant = run.seed(3, stores_per_tenant=25, products_per_tenant=20)[0]
        expires = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)).isoformat()
        run.call("POST", "/api/v1/api-keys", {"name": "bench", "permissions": ["stores.view"],
                                              "expires_at": expires}, tenant["token"])
    finally:
        server.stop()
    run.psql(url, "ANALYZE")
    key_id, key_hash = run.psql(url, "SELECT id, encode(secret_hash, 'hex') FROM api_keys LIMIT 1").split("|")
    variables = {"tenant": tenant["tenant"], "user": tenant["user"], "permission": "stores.view",
                 "session": tenant["session"], "key": key_id, "hash": key_hash}
    scripts = {"token": transaction(False), "key": transaction(True)}
    # Both answer the list: a key that was not live would set no context and list nothing.
    # (One simple query: one implicit transaction, so the local settings hold to its end.)
    check = run.psql(url, context(True) + principal().replace(":key", f"'{key_id}'").replace(":hash", f"'{key_hash}'")
                     + "SELECT current_setting('app.tenant_id');")
    if tenant["tenant"] not in check:
        raise RuntimeError(f"the key's principal set no tenant: {check!r}")
    run.interleaved_pgbench(url, scripts, args.rounds, args.seconds, args.clients, variables)
    run.psql(run.ADMIN_URL, "DROP DATABASE IF EXISTS rowguard_compare_key_opening WITH (FORCE)")


if __name__ == "__main__":
    main()
