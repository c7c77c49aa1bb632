"""The list endpoints of a git ref against the working tree's, end to end over HTTP, in
one interleaved run: both release builds serve at once, each on a database of its own
seeded alike through its own API, and wrk loads them in turns (A B, then B A, ...), so
the machine's drift cancels out in the ratio.

    python3 bench/compare_lists.py <git-ref> [<git-ref-after>] [--rounds 4] [--seconds 8] [--connections 32]

Without a second ref, "after" is the working tree.

The ref is built in a temporary worktree (target/compare, kept between runs so only
what changed is rebuilt). BENCH_DATABASE_URL names the PostgreSQL server (default: the
local one, as root); wrk and pgbench as for bench/run.sh."""

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (the benchmark's own helpers)


def build(ref):
    """The release binary of `ref` (or of the working tree when None)."""
    if ref is None:
        subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "rowguard"], cwd=run.ROOT, check=True)
        return os.path.join(run.ROOT, "target/release/rowguard")
    target = os.path.join(run.ROOT, "target/compare")
    worktree = tempfile.mkdtemp(prefix="rowguard-compare-")
    os.rmdir(worktree)
    subprocess.run(["git", "worktree", "add", "--quiet", "--detach", worktree, ref], cwd=run.ROOT, check=True)
    try:
        subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "rowguard"], cwd=worktree, check=True,
                       env=dict(os.environ, CARGO_TARGET_DIR=target))
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", worktree], cwd=run.ROOT, check=True)
    binary = os.path.join(target, "release/rowguard-" + ref.replace("/", "_"))
    os.replace(os.path.join(target, "release/rowguard"), binary)
    return binary


class Server:
    def __init__(self, binary, database, port, pool_size, extra_env=None):
        self.database = database
        self.base = f"http://127.0.0.1:{port}"
        env = dict(os.environ, DATABASE_URL=run.fresh_database(database), ROWGUARD_BIND=f"127.0.0.1:{port}",
                   ROWGUARD_JWT_SECRET=run.SECRET, RUST_LOG="warn",
                   # As bench/run.py: a plan with every feature and no limits.
                   ROWGUARD_DEFAULT_PLAN="business")
        env.update(extra_env or {})
        if pool_size:
            env["ROWGUARD_POOL_SIZE"] = str(pool_size)
        self.process = subprocess.Popen([binary, "serve"], env=env)
        self.use()
        for _ in range(300):
            try:
                run.call("GET", "/health")
                return
            except (urllib.error.URLError, ConnectionError, RuntimeError):
                time.sleep(0.1)
        raise RuntimeError(f"{binary} did not start")

    def cpu(self):
        """CPU seconds so far of the server's process and of the PostgreSQL backends of
        its database (its pooled connections live for the run)."""
        pids = run.psql(run.ADMIN_URL, f"SELECT pid FROM pg_stat_activity WHERE datname = '{self.database}'")
        return run.cpu_seconds(self.process.pid), sum(run.cpu_seconds(int(pid)) for pid in pids.split())

    def use(self):
        """Points the helpers of run.py (call, wrk) at this server."""
        run.BASE = self.base

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("ref")
    parser.add_argument("after", nargs="?", help="a second ref instead of the working tree")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--pool-size", type=int)
    parser.add_argument("--reads", action="store_true",
                        help="also a product by id and GET /api/v1/me, beside the lists")
    args = parser.parse_args()

    after = args.after or "working tree"
    print(f"building {args.ref} and {after} ...", file=sys.stderr, flush=True)
    binaries = {"before": build(args.ref), "after": build(args.after)}
    servers = {}
    try:
        for port, name in ((18081, "before"), (18082, "after")):
            servers[name] = Server(binaries[name], f"rowguard_compare_{name}", port, args.pool_size)
        endpoints, rps, cpu = measure(servers, args.rounds, args.seconds, args.connections, args.reads)
    finally:
        for server in servers.values():
            server.stop()
    report(endpoints, rps, cpu, args, f"before ({args.ref})", f"after ({after})")


def endpoints_of(seeded, reads):
    """The list endpoints and, with `reads`, a product by id and the caller's /me."""
    endpoints = run.list_endpoints(seeded, 0, 0)
    if reads:
        endpoints += [("GET /api/v1/products/{id}", "GET", f"/api/v1/products/{seeded['product']}", None, None),
                      ("GET /api/v1/me", "GET", "/api/v1/me", None, None)]
    return endpoints


def measure(servers, rounds, seconds, connections, reads=False):
    """Seeds both servers ("before" and "after") alike, then loads each list endpoint
    (and with `reads` the reads of endpoints_of) on each in turns (A B, then B A, ...);
    returns the endpoints, requests/s per round and CPU spent (server, database,
    requests) by (endpoint label, server name)."""
    seeded = {}
    for name, server in servers.items():
        server.use()
        seeded[name] = run.seed(3, stores_per_tenant=25, products_per_tenant=100)[0]
    endpoints = endpoints_of(seeded["after"], reads)
    rps = {(endpoint[0], name): [] for endpoint in endpoints for name in servers}
    # CPU per request, from the processes' own accounting: far steadier than
    # requests/s on a shared machine, since another process's load takes the
    # cores away without adding to these processes' CPU time.
    cpu = {(endpoint[0], name): [0.0, 0.0, 0] for endpoint in endpoints for name in servers}
    # What each server spends with no request (its workers polling the queue, the
    # scheduler, the meter's flush), per second, subtracted from every round: it
    # would otherwise count more per request on the server that answered fewer.
    idle = {}
    for name, server in servers.items():
        server_before, db_before = server.cpu()
        time.sleep(10)
        server_after, db_after = server.cpu()
        idle[name] = ((server_after - server_before) / 10, (db_after - db_before) / 10)
        print(f"idle {name}: server {idle[name][0] * 1e3:.1f} ms/s, database {idle[name][1] * 1e3:.1f} ms/s",
              file=sys.stderr, flush=True)
    calls = {}
    for name, server in servers.items():
        server.use()
        for label, method, path, body, _ in endpoints_of(seeded[name], reads):
            # The store of the inventory list is each server's own.
            store = seeded[name]["stores"][0] if "X-Store-ID" in label else None
            calls[(label, name)] = (method, path, body, store)
            run.wrk(method, path, connections, 2, seeded[name]["token"], body, store)  # warm-up
    for round_ in range(rounds):
        order = ("before", "after") if round_ % 2 == 0 else ("after", "before")
        for label, *_ in endpoints:
            for name in order:
                servers[name].use()
                method, path, body, store = calls[(label, name)]
                server_before, db_before = servers[name].cpu()
                started = time.monotonic()
                result = run.wrk(method, path, connections, seconds, seeded[name]["token"], body, store)
                server_after, db_after = servers[name].cpu()
                elapsed = time.monotonic() - started
                spent = cpu[(label, name)]
                spent[0] += server_after - server_before - idle[name][0] * elapsed
                spent[1] += db_after - db_before - idle[name][1] * elapsed
                spent[2] += result[4]
                if result[3]:
                    raise RuntimeError(f"{name} {label}: {result[3]} errors")
                rps[(label, name)].append(result[0])
                print(f"round {round_ + 1} {name:6} {label:38} {result[0]:8.0f} req/s", file=sys.stderr,
                      flush=True)
    return endpoints, rps, cpu


def report(endpoints, rps, cpu, args, before_title, after_title):
    """The tables of a run of `measure`: median requests/s, each round's ratio (how
    noisy the run was), and CPU per request."""
    print(f"\n{args.rounds} rounds of {args.seconds} s at {args.connections} connections, "
          f"interleaved; median requests/s\n")
    run.table(["endpoint", before_title, after_title, "after / before", "per-round ratios"])
    for label, *_ in endpoints:
        before = statistics.median(rps[(label, "before")])
        after = statistics.median(rps[(label, "after")])
        rounds = " ".join(f"{a / b:.3f}" for a, b in zip(rps[(label, "after")], rps[(label, "before")]))
        run.row([label, f"{before:.0f}", f"{after:.0f}", f"{after / before:.3f}", rounds])

    def per_request(label, name):
        server, database, requests = cpu[(label, name)]
        return server / requests * 1e6, database / requests * 1e6

    print(f"\nCPU per request (µs), summed over the rounds, less each server's idle CPU: the "
          f"server's process and its database's backends\n")
    run.table(["endpoint", "server before", "server after", "database before", "database after",
               "total after / before", "server / database before", "server / database after"])
    for label, *_ in endpoints:
        (server_b, db_b), (server_a, db_a) = per_request(label, "before"), per_request(label, "after")
        run.row([label, f"{server_b:.0f}", f"{server_a:.0f}", f"{db_b:.0f}", f"{db_a:.0f}",
                 f"{(server_a + db_a) / (server_b + db_b):.3f}", f"{server_b / db_b:.2f}", f"{server_a / db_a:.2f}"])


if __name__ == "__main__":
    main()
