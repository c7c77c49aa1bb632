"""Instructions per request of the server's process, counted by valgrind's callgrind:
a cost that does not drift with the machine the way requests/s do, so a change can be
compared with the committed baseline (bench/instructions.json) on any day.

    bench/run.sh --instructions [--requests 200] [--save]

The database is seeded through the API by the release build running natively (one
tenant: 25 stores, 100 products, stock); the same build is then started under
callgrind with instrumentation off, switched on once it serves, and each endpoint is
called `--requests` times in a row on one keep-alive connection after a warm-up that
prepares its statements. Callgrind's counters are zeroed before and dumped after each
endpoint (callgrind_control), and what the idle process spends in the same time (its
job workers polling, the scheduler, the meter's flush: measured in a window with no
request) is taken off. Only the server's own instructions: PostgreSQL's are not counted
here (bench/compare_lists.py and bench/run.py give its CPU time).

`--profile` also prints where list stores' instructions go, by function (inclusive
and self, callgrind_annotate), the profile behind the README's server CPU figures.

`--save` writes the figures as the new baseline. BENCH_DATABASE_URL names the
PostgreSQL server (default: the local one, as root)."""

import argparse
import glob
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (the benchmark's own helpers)

BASELINE = os.path.join(run.ROOT, "bench/instructions.json")
PORT = 18084
IDLE_SECONDS = 10


def endpoints(seeded, product):
    """(label, method, path, body, store): the bench's list endpoints, a read by id, a
    write and GET /me."""
    loads = [(label, method, path, body, store) for label, method, path, body, store in run.list_endpoints(seeded, 0, 0)]
    return loads + [
        ("GET /api/v1/products/{id}", "GET", f"/api/v1/products/{product}", None, None),
        ("POST /api/v1/products", "POST", "/api/v1/products", {"sku": "I-{n}", "name": "New", "price_cents": 1}, None),
        ("GET /api/v1/me", "GET", "/api/v1/me", None, None),
    ]


def control(pid, *arguments):
    """callgrind_control on the server (synchronous: it returns once done)."""
    subprocess.run(["callgrind_control", *arguments, str(pid)], check=True, capture_output=True, text=True)


def dumped_instructions(out_prefix, before):
    """The instructions of the dump written since `before` (the set of files then)."""
    for _ in range(100):
        new = sorted(set(glob.glob(out_prefix + "*")) - before, key=os.path.getmtime)
        if new:
            with open(new[-1]) as file:
                text = file.read()
            match = re.search(r"^(?:summary|totals):\s+(\d+)", text, re.MULTILINE)
            if match:
                return int(match.group(1))
        time.sleep(0.1)
    raise RuntimeError("callgrind wrote no dump")


def newest_dump(out_prefix, before):
    new = sorted(set(glob.glob(out_prefix + "*")) - before, key=os.path.getmtime)
    return new[-1] if new else None


def print_profile(dump, requests, top=30):
    """The functions of `dump` by inclusive and by self instructions, per request."""
    for inclusive in ("yes", "no"):
        out = subprocess.run(["callgrind_annotate", f"--inclusive={inclusive}", "--threshold=100", dump],
                             capture_output=True, text=True, check=True).stdout
        rows = []
        for line in out.splitlines():
            match = re.match(r"\s*([\d,]+)\s+\(\s*([\d.]+)%\)\s+(.*)", line)
            if match and not match.group(3).startswith("PROGRAM TOTALS"):
                rows.append((int(match.group(1).replace(",", "")), float(match.group(2)), match.group(3)))
        kind = "inclusive" if inclusive == "yes" else "self"
        print(f"\n### List stores: the server's instructions by function ({kind}, per request)\n")
        run.table(["k instructions", "share", "function"])
        for value, share, name in rows[:top]:
            name = re.sub(r"\s*\[[^\]]*\]$", "", name.split(":", 1)[-1] if ":" in name[:3] else name)
            run.row([f"{value / requests / 1e3:.1f}", f"{share:.1f}%", name[:140].replace("|", "\\|")])
        if inclusive == "no" and rows:
            print_callers(dump, requests, rows[0][2])


def print_callers(dump, requests, function):
    """Who calls `function` (callgrind_annotate's caller tree), per request: self
    instructions name what is busy, its callers say for whom (memcpy above all)."""
    out = subprocess.run(["callgrind_annotate", "--tree=caller", "--inclusive=yes", "--threshold=100", dump],
                         capture_output=True, text=True, check=True).stdout
    block, callers = [], None
    for line in out.splitlines():
        match = re.match(r"\s*([\d,]+)\s+\(\s*([\d.]+)%\)\s+([<*])\s+(.*)", line)
        if not match:
            block = []
            continue
        value, share, mark, name = int(match.group(1).replace(",", "")), float(match.group(2)), match.group(3), match.group(4)
        if mark == "<":
            block.append((value, share, name))
        elif name == function:
            callers = block
            break
        else:
            block = []
    if not callers:
        return
    short = re.sub(r"\s*\[[^\]]*\]$", "", function.split(":", 1)[-1])
    print(f"\n### List stores: who calls {short[:80]} (per request)\n")
    run.table(["k instructions", "share", "caller"])
    for value, share, name in sorted(callers, reverse=True)[:12]:
        name = re.sub(r"\s*\[[^\]]*\]$", "", re.sub(r"\s*\(\d+x\)$", "", name))
        name = name.split(":", 1)[-1] if name.startswith("???:") else name
        run.row([f"{value / requests / 1e3:.1f}", f"{share:.1f}%", name[:140].replace("|", "\\|")])


def calls(connection, token, method, path, body, store, count):
    """`count` requests in a row on one keep-alive connection; fails on any error."""
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    if store:
        headers["x-store-id"] = store
    for n in range(count):
        data = json.dumps(body).replace("{n}", f"{time.time_ns()}-{n}") if body else None
        connection.request(method, path, body=data, headers=headers)
        response = connection.getresponse()
        response.read()
        if response.status not in (200, 201):
            raise RuntimeError(f"{method} {path}: {response.status}")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200, help="requests counted per endpoint")
    parser.add_argument("--save", action="store_true", help="write the figures as the baseline")
    parser.add_argument("--profile", action="store_true", help="print list stores' instructions by function")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting of the server counted (e.g. ROWGUARD_METRICS_BIND=127.0.0.1:18091)")
    parser.add_argument("--binary", default=os.path.join(run.ROOT, "target/release/rowguard"),
                        help="the server to count (default: the working tree's release build); "
                             "for example a ref's build from --compare, target/compare/release/rowguard-<ref>")
    args = parser.parse_args()
    binary = args.binary

    url = run.fresh_database("rowguard_instructions")
    env = dict(os.environ, DATABASE_URL=url, ROWGUARD_BIND=f"127.0.0.1:{PORT}", ROWGUARD_JWT_SECRET=run.SECRET,
               RUST_LOG="warn", ROWGUARD_DEFAULT_PLAN="business")
    run.BASE = f"http://127.0.0.1:{PORT}"
    native = subprocess.Popen([binary, "serve"], env=env)
    counted_env = dict(env, **dict(setting.split("=", 1) for setting in args.env))
    try:
        wait_until_serving(native)
        seeded = run.seed(1, stores_per_tenant=25, products_per_tenant=100)[0]
        product = run.call("GET", "/api/v1/products?limit=1", token=seeded["token"])["items"][0]["id"]
    finally:
        native.terminate()
        native.wait(timeout=60)
    run.psql(url, "ANALYZE")

    out_dir = tempfile.mkdtemp(prefix="rowguard-callgrind-")
    out_prefix = os.path.join(out_dir, "callgrind.out")
    server = subprocess.Popen(["valgrind", "--tool=callgrind", "--instr-atstart=no", "--dump-instr=no",
                               f"--callgrind-out-file={out_prefix}", binary, "serve"],
                              env=counted_env, stderr=subprocess.DEVNULL)
    figures = {}
    profile_dump = None
    try:
        wait_until_serving(server, seconds=300)
        control(server.pid, "-i", "on")
        # The idle process's own instructions per second, taken off each endpoint's.
        before = set(glob.glob(out_prefix + "*"))
        control(server.pid, "-z")
        started = time.monotonic()
        time.sleep(IDLE_SECONDS)
        control(server.pid, "-d")
        idle_per_second = dumped_instructions(out_prefix, before) / (time.monotonic() - started)
        print(f"idle: {idle_per_second / 1e6:.2f} M instructions/s", file=sys.stderr, flush=True)
        connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=120)
        for label, method, path, body, store in endpoints(seeded, product):
            calls(connection, seeded["token"], method, path, body, store, 20)  # prepares its statements
            before = set(glob.glob(out_prefix + "*"))
            control(server.pid, "-z")
            started = time.monotonic()
            calls(connection, seeded["token"], method, path, body, store, args.requests)
            control(server.pid, "-d")
            elapsed = time.monotonic() - started
            total = dumped_instructions(out_prefix, before)
            if args.profile and profile_dump is None:
                # The first endpoint, list stores: copied before the dumps are removed.
                profile_dump = shutil.copy(newest_dump(out_prefix, before), out_dir + ".profile")
            figures[label] = (total - idle_per_second * elapsed) / args.requests
            print(f"{label}: {figures[label] / 1e3:.0f} k instructions per request "
                  f"({elapsed:.1f} s under callgrind)", file=sys.stderr, flush=True)
        connection.close()
    finally:
        server.terminate()
        server.wait(timeout=120)
        for path in glob.glob(out_prefix + "*"):
            os.unlink(path)
        os.rmdir(out_dir)
        run.psql(run.ADMIN_URL, "DROP DATABASE IF EXISTS rowguard_instructions WITH (FORCE)")

    if profile_dump:
        print_profile(profile_dump, args.requests)
        os.unlink(profile_dump)

    baseline = {}
    if os.path.exists(BASELINE):
        with open(BASELINE) as file:
            baseline = json.load(file)
    settings = f", with {' '.join(args.env)}" if args.env else ""
    print(f"\n## Instructions per request, server process (callgrind, {args.requests} requests each, "
          f"idle taken off{settings})\n")
    commit = baseline.get("commit", "none")
    run.table(["endpoint", "thousand instructions", f"baseline ({commit})", "ratio"])
    for label, value in figures.items():
        base = baseline.get("per_request", {}).get(label)
        run.row([label, f"{value / 1e3:.0f}", f"{base / 1e3:.0f}" if base else "",
                 f"{value / base:.3f}" if base else ""])
    if args.save:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=run.ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=run.ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
        with open(BASELINE, "w") as file:
            json.dump({"commit": head + ("+changes" if dirty else ""), "requests": args.requests,
                       "per_request": {label: round(value) for label, value in figures.items()}},
                      file, indent=2)
            file.write("\n")
        print(f"\nsaved as the baseline: {os.path.relpath(BASELINE, run.ROOT)}")


def wait_until_serving(process, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the server exited")
        try:
            run.call("GET", "/health")
            return
        except (urllib.error.URLError, ConnectionError, RuntimeError):
            time.sleep(0.2)
    raise RuntimeError("the server did not start")


if __name__ == "__main__":
    main()
