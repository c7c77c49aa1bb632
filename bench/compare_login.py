"""The login storm of a git ref against the working tree's, in one interleaved run: both
release builds serve at once, each on a database of its own with the same 64 accounts,
and the storm of bench/run.py (64 connections, one account each) runs on each in turns
(A B, then B A, ...) with the /health probe beside it, so the machine's drift cancels
out in the ratios.

    python3 bench/compare_login.py <git-ref> [<git-ref-after>] [--rounds 4] [--seconds 10]

Each round and build: /health unloaded, then the storm with /health probed beside it.
Printed: logins/s, /health p99 during the storm over unloaded (the issue's target is
at most 2), and per login the server's CPU beside its hashing threads and
PostgreSQL's CPU (its backends), from the processes' own accounting. Builds as
bench/compare_lists.py does (target/compare)."""

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare_lists  # noqa: E402
import run  # noqa: E402


def storm_round(server, seconds):
    """One round on `server`: /health p99 unloaded, then during a storm; returns
    (logins/s, p99 unloaded, p99 in the storm, server µs per login beside the hash,
    PostgreSQL µs per login, logins)."""
    server.use()
    _, idle_p99 = run.probe_health(seconds)
    hashing_before = run.hashing_cpu_seconds(server.process.pid)
    server_before, db_before = server.cpu()
    storm, (_, storm_p99) = run.storm_beside_health(seconds)
    hashing = run.hashing_cpu_seconds(server.process.pid) - hashing_before
    server_after, db_after = server.cpu()
    rps, _, _, errors, logins = storm
    if errors:
        raise RuntimeError(f"{server.database}: {errors} login errors")
    rest = server_after - server_before - hashing
    return (rps, idle_p99, storm_p99, rest / logins * 1e6, (db_after - db_before) / logins * 1e6, logins)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("ref")
    parser.add_argument("after", nargs="?", help="a second ref instead of the working tree")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()

    after = args.after or "working tree"
    print(f"building {args.ref} and {after} ...", file=sys.stderr, flush=True)
    binaries = {"before": compare_lists.build(args.ref), "after": compare_lists.build(args.after)}
    # As bench/run.py: the storm comes from one address, whose per-client throttle of
    # failures would otherwise count the logins in flight.
    env = {"ROWGUARD_LOGIN_MAX_FAILURES_PER_CLIENT": "1000000"}
    servers, results = {}, {"before": [], "after": []}
    try:
        for port, name in ((18081, "before"), (18082, "after")):
            servers[name] = compare_lists.Server(binaries[name], f"rowguard_compare_{name}", port, None, env)
            run.register_storm_accounts()
            run.psql(run.db_url(servers[name].database), "ANALYZE")
            run.wrk("POST", "/api/v1/auth/login", run.STORM_ACCOUNTS, 3, None, run.STORM_LOGIN)  # warm-up
        for round_ in range(args.rounds):
            order = ("before", "after") if round_ % 2 == 0 else ("after", "before")
            for name in order:
                r = storm_round(servers[name], args.seconds)
                results[name].append(r)
                print(f"round {round_ + 1} {name:6} {r[0]:6.1f} logins/s, /health p99 {r[1]:.2f} -> {r[2]:.2f} ms, "
                      f"server {r[3]:.0f} µs, database {r[4]:.0f} µs per login", file=sys.stderr, flush=True)
    finally:
        for server in servers.values():
            server.stop()

    print(f"\n{args.rounds} rounds of {args.seconds} s, {run.STORM_ACCOUNTS} connections, interleaved; medians\n")
    run.table(["measure", f"before ({args.ref})", f"after ({after})", "after / before", "per-round ratios"])
    measures = [
        ("logins/s", lambda r: r[0]),
        ("GET /health p99 during the storm / unloaded (target <= 2)", lambda r: r[2] / r[1]),
        ("GET /health p99 during the storm, ms", lambda r: r[2]),
        ("per login beside the hash: the server's CPU, µs", lambda r: r[3]),
        ("per login: PostgreSQL's CPU (its backends), µs", lambda r: r[4]),
    ]
    for label, value in measures:
        before = [value(r) for r in results["before"]]
        after_ = [value(r) for r in results["after"]]
        ratios = " ".join(f"{a / b:.3f}" for a, b in zip(after_, before))
        run.row([label, f"{statistics.median(before):.2f}", f"{statistics.median(after_):.2f}",
                 f"{statistics.median(after_) / statistics.median(before):.3f}", ratios])


if __name__ == "__main__":
    main()
