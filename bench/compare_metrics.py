"""What metrics cost the list endpoints: the same release build (the working tree's)
served twice at once, once without ROWGUARD_METRICS_BIND ("before": no metrics kept)
and once with it ("after": every request counted and timed, and /metrics scraped every
5 s as a Prometheus server would, the scrapes' cost included), each on a database of
its own seeded alike; wrk loads them in turns (A B, then B A, ...), so the machine's
drift cancels out in the ratio. The machinery is bench/compare_lists.py's.

    python3 bench/compare_metrics.py [--rounds 4] [--seconds 8] [--connections 32]

Target (issue 16): list endpoints at most 3% slower with metrics on. BENCH_DATABASE_URL
names the PostgreSQL server (default: the local one, as root); needs wrk."""

import argparse
import os
import sys
import threading
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare_lists  # noqa: E402  (the interleaved comparison)

METRICS_BIND = "127.0.0.1:18090"
SCRAPE_EVERY_SECS = 5


def scrape_until(stop):
    """Scrapes /metrics every few seconds until `stop` is set."""
    while not stop.wait(SCRAPE_EVERY_SECS):
        with urllib.request.urlopen(f"http://{METRICS_BIND}/metrics") as response:
            response.read()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--pool-size", type=int)
    args = parser.parse_args()

    print("building the working tree ...", file=sys.stderr, flush=True)
    binary = compare_lists.build(None)
    servers = {}
    stop = threading.Event()
    scraper = None
    try:
        servers["before"] = compare_lists.Server(binary, "rowguard_compare_metrics_off", 18081, args.pool_size)
        servers["after"] = compare_lists.Server(binary, "rowguard_compare_metrics_on", 18082, args.pool_size,
                                                extra_env={"ROWGUARD_METRICS_BIND": METRICS_BIND})
        scraper = threading.Thread(target=scrape_until, args=(stop,), daemon=True)
        scraper.start()
        endpoints, rps, cpu = compare_lists.measure(servers, args.rounds, args.seconds, args.connections)
    finally:
        stop.set()
        if scraper:
            scraper.join()
        for server in servers.values():
            server.stop()
    compare_lists.report(endpoints, rps, cpu, args, "metrics off", "metrics on")


if __name__ == "__main__":
    main()
