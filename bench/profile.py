"""Where the machine's CPU goes while a list endpoint is under load: the whole system
sampled by `perf record -a` (the software clock when the machine has no hardware
counters, as these virtual machines do not) while wrk loads GET /api/v1/stores, then
the samples by process and by shared object (the kernel's, PostgreSQL's, the server's).
This is the profile behind the README's "which part of the request is the limit".

    python3 bench/profile.py [--seconds 10] [--connections 32] [--endpoint /api/v1/stores?limit=20]

Release build, as bench/run.sh builds it; needs perf and wrk. BENCH_DATABASE_URL names
the PostgreSQL server (default: the local one, as root)."""

import argparse
import os
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (the benchmark's own helpers)


def report(data, sort, *extra):
    out = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "--sort", sort,
                          "--percent-limit", "1.5", *extra], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if line.strip() and not line.startswith("#")]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--endpoint", default="/api/v1/stores?limit=20")
    args = parser.parse_args()

    url = run.fresh_database("rowguard_bench_profile")
    server = run.Server(url)
    data = tempfile.mktemp(prefix="rowguard-perf-", suffix=".data")
    try:
        seeded = run.seed(1, stores_per_tenant=25, products_per_tenant=100)[0]
        run.psql(url, "ANALYZE")
        run.wrk("GET", args.endpoint, args.connections, 3, seeded["token"])  # warm-up
        result = {}
        load = threading.Thread(target=lambda: result.update(
            r=run.wrk("GET", args.endpoint, args.connections, args.seconds, seeded["token"])))
        load.start()
        subprocess.run(["perf", "record", "-a", "-F", "499", "-o", data, "--", "sleep", str(args.seconds - 1)],
                       check=True, capture_output=True)
        load.join()
    finally:
        server.stop()
        run.psql(run.ADMIN_URL, "DROP DATABASE IF EXISTS rowguard_bench_profile WITH (FORCE)")
    rps = result["r"][0]
    print(f"\n## CPU samples of the whole machine, GET {args.endpoint} at {args.connections} connections "
          f"({rps:.0f} req/s)\n")
    print("By process (postgres: the backends; rowguard: the server; wrk: the load):\n")
    print("```")
    print("\n".join(report(data, "comm")))
    print("```\n")
    print("By process and shared object ([kernel.kallsyms]: the kernel on that process's behalf):\n")
    print("```")
    print("\n".join(report(data, "comm,dso")))
    print("```\n")
    print("By symbol, the whole machine ([k]: the kernel):\n")
    print("```")
    print("\n".join(report(data, "sym")[:25]))
    print("```\n")
    print("PostgreSQL's backends by symbol:\n")
    print("```")
    print("\n".join(report(data, "sym", "--comms", "postgres", "--percent-limit", "0.7")[:30]))
    print("```")
    os.unlink(data)


if __name__ == "__main__":
    main()
