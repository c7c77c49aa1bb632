"""The tenant export (GET /api/v1/tenants/current/export) of a 100,000-row tenant: rows
per second as the client receives them, and the server's RSS sampled every 20 ms
against its RSS before (the export streams from a cursor, so memory must not grow with
the tenant: issue 15 asks for "no more than a few MiB").

    python3 bench/export.py [--products 100000] [--rounds 3]

The tenant is registered through the API; its products are then inserted in SQL (as
bench/run.py's bulk tenants are: creating 100,000 through the API would measure the
API, not the export). Release build, as bench/run.sh builds it. BENCH_DATABASE_URL
names the PostgreSQL server (default: the local one, as root)."""

import argparse
import http.client
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (the benchmark's own helpers)


def export_once(token):
    """Reads the whole export on one connection: (lines, bytes, seconds)."""
    host, port = run.BIND.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=300)
    started = time.monotonic()
    connection.request("GET", "/api/v1/tenants/current/export", headers={"authorization": f"Bearer {token}"})
    response = connection.getresponse()
    if response.status != 200:
        raise RuntimeError(f"export: {response.status} {response.read()[:300]!r}")
    lines = size = 0
    types = {}
    pending = b""
    while chunk := response.read1(65536):
        size += len(chunk)
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            lines += 1
            kind = json.loads(line)["type"]
            types[kind] = types.get(kind, 0) + 1
    elapsed = time.monotonic() - started
    connection.close()
    if pending:
        raise RuntimeError("the export ended mid-line")
    return lines, size, elapsed, types


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    url = run.fresh_database("rowguard_bench_export")
    server = run.Server(url)
    try:
        owner = run.call("POST", "/api/v1/auth/register", {
            "email": "export@bench.example", "password": run.PASSWORD, "full_name": "Export",
            "tenant_name": "Export"})
        token, tenant = owner["access_token"], owner["tenant"]["id"]
        run.psql(url, f"""
            INSERT INTO products (tenant_id, sku, name, price_cents)
            SELECT '{tenant}', 'P-' || p, 'Product ' || p, 100 + p FROM generate_series(1, {args.products}) AS p;
            ANALYZE;""")
        export_once(token)  # warm-up: the statements are prepared, the pages cached
        time.sleep(1)
        idle = server.rss_kib()
        results = []
        for _ in range(args.rounds):
            with run.RssSampler(server) as rss:
                lines, size, elapsed, types = export_once(token)
            if types.get("products") != args.products:
                raise RuntimeError(f"the export held {types.get('products')} products, not {args.products}")
            results.append((lines / elapsed, size / elapsed, rss.peak, elapsed))
    finally:
        server.stop()
        run.psql(run.ADMIN_URL, "DROP DATABASE IF EXISTS rowguard_bench_export WITH (FORCE)")

    print(f"\n## Export of a tenant with {args.products:,} products ({lines:,} lines, {size / 2**20:.1f} MiB), "
          f"{args.rounds} rounds\n")
    run.table(["measure", "median", "all rounds"])
    run.row(["rows/s", f"{statistics.median(r[0] for r in results):,.0f}",
             " ".join(f"{r[0]:,.0f}" for r in results)])
    run.row(["MiB/s", f"{statistics.median(r[1] for r in results) / 2**20:.1f}",
             " ".join(f"{r[1] / 2**20:.1f}" for r in results)])
    run.row(["seconds", f"{statistics.median(r[3] for r in results):.2f}", " ".join(f"{r[3]:.2f}" for r in results)])
    run.row(["server RSS before, MiB", f"{idle / 1024:.1f}", ""])
    run.row(["server peak RSS during, MiB", f"{statistics.median(r[2] for r in results) / 1024:.1f}",
             " ".join(f"{r[2] / 1024:.1f}" for r in results)])
    run.row(["growth, MiB", f"{(max(r[2] for r in results) - idle) / 1024:.1f} (worst round)", ""])


if __name__ == "__main__":
    main()
