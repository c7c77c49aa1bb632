"""The list endpoint's throughput while the server's worker drains a backlog of email
jobs, against the same with no backlog, in one interleaved run (README, "Performance",
"Job queue").

    python3 bench/jobs_under_load.py [--rounds 3] [--seconds 8] [--connections 32] [--backlog 10000]

A release build serves (`rowguard serve`, ROWGUARD_WORKERS=1: one worker of the
default options in the server's process) on a fresh database seeded through the API
as bench/run.py seeds it, its ROWGUARD_SMTP_URL at an SMTP sink served here. Each
round runs wrk on GET /api/v1/products?limit=20 twice, in turns (idle, drain, then
drain, idle, ...): "idle" with nothing queued, "drain" right after `--backlog`
`email.send` jobs are inserted in SQL as the owner, so the worker drains them into the
sink while wrk runs (the backlog left when wrk ends is printed: it must not be 0, or
part of the window was idle). After a drain window what is left of the backlog, and
what was done, is deleted (draining it all would take minutes), so every window starts
from the same table.

Needs the release build (cargo build --release --bin rowguard), wrk and psql, as for
bench/run.sh. BENCH_DATABASE_URL names the PostgreSQL server (default: the local one,
as root)."""

import argparse
import asyncio
import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (the benchmark's own helpers)


class SmtpSink:
    """An SMTP server that accepts every message (220, EHLO, MAIL, RCPT, DATA, `.`,
    QUIT), counting them, in an asyncio loop of its own thread."""

    def __init__(self):
        self.received = 0
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self.serve, args=(ready,), daemon=True).start()
        ready.wait()

    def serve(self, ready):
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self.session, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    async def session(self, reader, writer):
        writer.write(b"220 sink ESMTP\r\n")
        in_data = False
        try:
            while line := await reader.readline():
                if in_data:
                    if line.rstrip(b"\r\n") == b".":
                        in_data = False
                        self.received += 1
                        writer.write(b"250 queued\r\n")
                    continue
                verb = line[:4].upper()
                if verb == b"EHLO":
                    writer.write(b"250-sink\r\n250 8BITMIME\r\n")
                elif verb == b"DATA":
                    in_data = True
                    writer.write(b"354 go ahead\r\n")
                elif verb == b"QUIT":
                    writer.write(b"221 bye\r\n")
                    await writer.drain()
                    break
                else:  # HELO, MAIL, RCPT, RSET, NOOP
                    writer.write(b"250 ok\r\n")
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()


def backlog(url):
    return int(run.psql(url, "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running', 'failed')"))


def succeeded(url):
    return int(run.psql(url, "SELECT count(*) FROM jobs WHERE kind = 'email.send' AND state = 'succeeded'"))


def wait_drained(url, timeout=600):
    deadline = time.monotonic() + timeout
    while backlog(url):
        if time.monotonic() > deadline:
            raise RuntimeError("the backlog did not drain")
        time.sleep(0.2)


def clear_backlog(url):
    """Ends a drain window: the jobs still queued and those done are deleted (as the
    owner), the ones running finish, so every drain window starts from the same table."""
    run.psql(url, "DELETE FROM jobs WHERE kind = 'email.send' AND state IN ('queued', 'succeeded')")
    wait_drained(url)
    run.psql(url, "DELETE FROM jobs WHERE kind = 'email.send' AND state = 'succeeded'")
    run.psql(url, "VACUUM ANALYZE jobs")


def enqueue_backlog(url, count):
    """`count` welcome emails, platform jobs (no tenant), inserted as the owner."""
    run.psql(url, f"""
        INSERT INTO jobs (kind, payload)
        SELECT 'email.send', jsonb_build_object('to', 'x' || g || '@example.com', 'template', 'welcome',
               'data', jsonb_build_object('full_name', 'X', 'tenant_name', 'Y'))
        FROM generate_series(1, {count}) g""")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8, help="duration of each wrk load")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--backlog", type=int, default=10_000, help="email jobs inserted before each drain load")
    args = parser.parse_args()

    sink = SmtpSink()
    url = run.fresh_database("rowguard_bench_load")
    os.environ["ROWGUARD_WORKERS"] = "1"
    os.environ["ROWGUARD_SMTP_URL"] = f"smtp://127.0.0.1:{sink.port}"
    server = run.Server(url)
    results = {"idle": [], "drain": []}
    left, drained_rates = [], []
    try:
        print("seeding 3 tenants through the API ...", file=sys.stderr, flush=True)
        token = run.seed(3, stores_per_tenant=25, products_per_tenant=100)[0]["token"]
        wait_drained(url)
        run.psql(url, "VACUUM ANALYZE")
        path = "/api/v1/products?limit=20"
        run.wrk("GET", path, args.connections, 2, token)  # warm-up
        for round_ in range(args.rounds):
            order = ("idle", "drain") if round_ % 2 == 0 else ("drain", "idle")
            for name in order:
                wait_drained(url)
                if name == "drain":
                    enqueue_backlog(url, args.backlog)
                    before = succeeded(url)
                started = time.monotonic()
                result = run.wrk("GET", path, args.connections, args.seconds, token)
                elapsed = time.monotonic() - started
                if result[3]:
                    raise RuntimeError(f"{name}: {result[3]} wrk errors")
                results[name].append(result)
                line = f"round {round_ + 1} {name:5} {result[0]:8.0f} req/s  p50 {result[1]:.2f} ms"
                if name == "drain":
                    left.append(backlog(url))
                    drained_rates.append((succeeded(url) - before) / elapsed)
                    line += f"  drained {drained_rates[-1]:.0f} jobs/s, {left[-1]} left when wrk ended"
                    clear_backlog(url)
                print(line, file=sys.stderr, flush=True)
        wait_drained(url)
    finally:
        server.stop()
    run.psql(run.ADMIN_URL, "DROP DATABASE IF EXISTS rowguard_bench_load WITH (FORCE)")

    idle = statistics.median(r[0] for r in results["idle"])
    drain = statistics.median(r[0] for r in results["drain"])
    print(f"\n## GET {path} while one worker drains {args.backlog:,} email jobs ({args.rounds} rounds of "
          f"{args.seconds} s at {args.connections} connections, interleaved; medians)\n")
    run.table(["load", "requests/s", "p50 ms", "p99 ms", "ratio to idle", "every round, req/s"])
    for name, key, rps in (("no backlog", "idle", idle), ("while draining", "drain", drain)):
        rounds = results[key]
        run.row([name, f"{rps:.0f}", f"{statistics.median(r[1] for r in rounds):.2f}",
                 f"{statistics.median(r[2] for r in rounds):.2f}", f"{rps / idle:.3f}",
                 ", ".join(f"{r[0]:.0f}" for r in rounds)])
    print(f"\nemail jobs drained per second during the loaded window: "
          f"{', '.join(f'{r:.0f}' for r in drained_rates)}; backlog left when wrk ended: "
          f"{', '.join(str(n) for n in left)}; messages the sink received: {sink.received}")


if __name__ == "__main__":
    main()
