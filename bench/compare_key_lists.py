"""A list endpoint called with an API key against the same with the owner's JWT, end to
end over HTTP on one release build, in one interleaved run (JWT, key, then key, JWT,
...), so the machine's drift cancels out in the ratio. The target (docs/api.md's
issue 15): a key at most 10% slower, with the same round trips (the round trips are
counted by tests/api/platform/round_trips.rs).

    python3 bench/compare_key_lists.py [--rounds 4] [--seconds 8] [--connections 32]

BENCH_DATABASE_URL names the PostgreSQL server (default: the local one, as root); wrk
as for bench/run.sh."""

import argparse
import datetime
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (the benchmark's own helpers)
from compare_lists import Server, build  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--pool-size", type=int)
    args = parser.parse_args()

    binary = build(None)
    server = Server(binary, "rowguard_compare_keys", 18083, args.pool_size)
    try:
        main_tenant = run.seed(3, stores_per_tenant=25, products_per_tenant=100)[0]
        expires = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)).isoformat()
        key = run.call("POST", "/api/v1/api-keys", {
            "name": "bench", "permissions": ["products.view", "stores.view"], "expires_at": expires},
            main_tenant["token"])["key"]
        credentials = {"jwt": main_tenant["token"], "key": key}
        endpoints = [
            ("GET /api/v1/products?limit=20", "/api/v1/products?limit=20"),
            ("GET /api/v1/stores?limit=20", "/api/v1/stores?limit=20"),
        ]
        rps = {(label, name): [] for label, _ in endpoints for name in credentials}
        # CPU per request of the server and its database's backends (steadier than
        # requests/s on a shared machine), less what they spend idle.
        cpu = {(label, name): [0.0, 0.0, 0] for label, _ in endpoints for name in credentials}
        idle = server.cpu()
        time.sleep(10)
        idle = tuple((after - before) / 10 for after, before in zip(server.cpu(), idle))
        for _, path in endpoints:
            for token in credentials.values():
                run.wrk("GET", path, args.connections, 2, token)  # warm-up
        for round_ in range(args.rounds):
            order = ("jwt", "key") if round_ % 2 == 0 else ("key", "jwt")
            for label, path in endpoints:
                for name in order:
                    cpu_before, started = server.cpu(), time.monotonic()
                    result = run.wrk("GET", path, args.connections, args.seconds, credentials[name])
                    cpu_after, elapsed = server.cpu(), time.monotonic() - started
                    spent = cpu[(label, name)]
                    spent[0] += cpu_after[0] - cpu_before[0] - idle[0] * elapsed
                    spent[1] += cpu_after[1] - cpu_before[1] - idle[1] * elapsed
                    spent[2] += result[4]
                    if result[3]:
                        raise RuntimeError(f"{name} {label}: {result[3]} errors")
                    rps[(label, name)].append(result[0])
                    print(f"round {round_ + 1} {name:4} {label:32} {result[0]:8.0f} req/s", file=sys.stderr,
                          flush=True)
    finally:
        server.stop()

    print(f"\n{args.rounds} rounds of {args.seconds} s at {args.connections} connections, "
          f"interleaved; median requests/s\n")
    run.table(["endpoint", "JWT", "API key", "key / JWT"])
    for label, _ in endpoints:
        jwt = statistics.median(rps[(label, "jwt")])
        key = statistics.median(rps[(label, "key")])
        run.row([label, f"{jwt:.0f}", f"{key:.0f}", f"{key / jwt:.3f}"])
    print("\nCPU per request (µs), summed over the rounds, less idle: the server's process and its "
          "database's backends\n")
    run.table(["endpoint", "server JWT", "server key", "database JWT", "database key", "total key / JWT"])
    for label, _ in endpoints:
        (s_jwt, d_jwt, n_jwt), (s_key, d_key, n_key) = cpu[(label, "jwt")], cpu[(label, "key")]
        per = lambda value, n: value / n * 1e6  # noqa: E731
        run.row([label, f"{per(s_jwt, n_jwt):.0f}", f"{per(s_key, n_key):.0f}", f"{per(d_jwt, n_jwt):.0f}",
                 f"{per(d_key, n_key):.0f}",
                 f"{(per(s_key, n_key) + per(d_key, n_key)) / (per(s_jwt, n_jwt) + per(d_jwt, n_jwt)):.3f}"])


if __name__ == "__main__":
    main()
