"""The rowguard benchmark: seeds a database through the real HTTP API, drives a
release build with wrk at fixed concurrency, runs pgbench on the same SQL as the
list-stores request for the ceiling, measures the cost of row-level security and the
growth from 10 to 10,000 tenants, and samples the server's RSS. Prints one table per
part. Run it through bench/run.sh, which builds and checks the tools."""

import argparse
import base64
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADMIN_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://root@127.0.0.1:5432/postgres")
BIND = "127.0.0.1:18080"
BASE = f"http://{BIND}"
PASSWORD = "benchmark passphrase 1"
SECRET = "benchmark-secret-benchmark-secret-0123456789"


def db_url(name):
    base, _, rest = ADMIN_URL.partition("://")
    authority = rest.split("/", 1)[0]
    return f"{base}://{authority}/{name}"


def psql(url, sql):
    out = subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def fresh_database(name):
    psql(ADMIN_URL, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    psql(ADMIN_URL, f"CREATE DATABASE {name}")
    return db_url(name)


def call(method, path, body=None, token=None, store=None, expect=(200, 201, 202, 204)):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(BASE + path, data=data, method=method)
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", f"Bearer {token}")
    if store:
        request.add_header("x-store-id", store)
    try:
        with urllib.request.urlopen(request) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    if status not in expect:
        raise RuntimeError(f"{method} {path}: {status} {raw[:300]!r}")
    return json.loads(raw) if raw else None


class Server:
    """A release build of rowguard on its own database."""

    def __init__(self, url, pool_size=None, bind=None, extra_env=None):
        """Serves on `bind` (default BIND), which BASE must already name."""
        env = dict(os.environ, DATABASE_URL=url, ROWGUARD_BIND=bind or BIND, ROWGUARD_JWT_SECRET=SECRET,
                   RUST_LOG="warn",
                   # The storm would otherwise trip the per-client throttle of failures;
                   # successful logins are never throttled, but keep the bench honest.
                   ROWGUARD_LOGIN_MAX_FAILURES_PER_CLIENT="1000000",
                   # Every feature and no limits: the seed makes 25 stores a tenant, and
                   # the inventory list is gated by its feature (README, "Plans").
                   ROWGUARD_DEFAULT_PLAN="business")
        if pool_size:
            env["ROWGUARD_POOL_SIZE"] = str(pool_size)
        env.update(extra_env or {})
        self.process = subprocess.Popen([os.path.join(ROOT, "target/release/rowguard"), "serve"], env=env)
        for _ in range(200):
            try:
                call("GET", "/health")
                return
            except (urllib.error.URLError, ConnectionError, RuntimeError):
                time.sleep(0.1)
        raise RuntimeError("the server did not start")

    def rss_kib(self):
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)


def cpu_seconds(pid):
    """User and system CPU time of a process so far (its own accounting, /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as file:
            fields = file.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def hashing_cpu_seconds(pid):
    """CPU time so far of the server's password-hashing threads (`password-hash-N`)."""
    total = 0.0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as file:
                if not file.read().startswith("password-hash"):
                    continue
            total += cpu_seconds(f"{pid}/task/{tid}")
        except FileNotFoundError:
            pass
    return total


def cpu_split(server_pid, database):
    """CPU seconds so far of the server's process and of the PostgreSQL backends of its
    database (its pooled connections live for the run)."""
    pids = psql(ADMIN_URL, f"SELECT pid FROM pg_stat_activity WHERE datname = '{database}'")
    return cpu_seconds(server_pid), sum(cpu_seconds(int(pid)) for pid in pids.split())


class WireCounter:
    """A TCP proxy between a server and PostgreSQL that counts, over every connection
    through it, the round trips (each time the conversation turns from PostgreSQL
    answering to the server sending again: pipelined messages are one) and the bytes
    each way, as tests/api/platform/round_trips.rs does."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.turns = self.sent = self.received = 0
        threading.Thread(target=self.accept, daemon=True).start()

    def counts(self):
        with self.lock:
            return self.turns, self.sent, self.received

    def accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            last = ["server"]
            threading.Thread(target=self.pump, args=(client, server, "client", last), daemon=True).start()
            threading.Thread(target=self.pump, args=(server, client, "server", last), daemon=True).start()

    def pump(self, source, destination, side, last):
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            if not data:
                for sock in (source, destination):
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                return
            with self.lock:
                if side == "client":
                    self.sent += len(data)
                    if last[0] != "client":
                        self.turns += 1
                    last[0] = "client"
                else:
                    self.received += len(data)
                    last[0] = "server"
            destination.sendall(data)

    def close(self):
        self.listener.close()


def wire_per_request(url, loads, token, requests=50):
    """Round trips and bytes each way between the server and PostgreSQL per request of
    each load: the release build served again on the same database through a
    WireCounter, with one pooled connection, no job worker and no meter flush in the
    window, and each load called `requests` times in a row after a warm-up that
    prepares its statements. {label: (round trips, bytes to PostgreSQL, bytes back)}."""
    global BASE
    authority = url.split("://", 1)[1].split("/", 1)[0]
    host_port = authority.rsplit("@", 1)[-1]
    host, _, port = host_port.partition(":")
    counter = WireCounter((host, int(port or 5432)))
    proxied = url.replace(host_port, f"127.0.0.1:{counter.port}", 1)
    saved_base, bind = BASE, "127.0.0.1:18089"
    BASE = f"http://{bind}"
    figures = {}
    server = None
    try:
        # One pooled connection; no job worker and no meter flush in the window.
        server = Server(proxied, pool_size=1, bind=bind,
                        extra_env={"ROWGUARD_WORKERS": "0", "ROWGUARD_USAGE_FLUSH_SECS": "60"})
        for label, method, path, body, store in loads:
            def once(n):
                sent = json.loads(json.dumps(body).replace("{n}", f"wire-{time.time_ns()}-{n}")) if body else None
                call(method, path, sent, token, store)
            for n in range(5):
                once(n)
            before = counter.counts()
            for n in range(requests):
                once(n)
            after = counter.counts()
            figures[label] = tuple((a - b) / requests for a, b in zip(after, before))
    finally:
        BASE = saved_base
        if server:
            server.stop()
        counter.close()
    return figures


class RssSampler:
    """Peak RSS of the server while a load runs (sampled every 20 ms)."""

    def __init__(self, server):
        self.server, self.peak, self.running = server, 0, True
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while self.running:
            self.peak = max(self.peak, self.server.rss_kib())
            time.sleep(0.02)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *_):
        self.running = False
        self.thread.join()


WRK_SCRIPT = """
local method, path, body, token, store = %s
local counter = 0
local salt = ""
setup = function(thread)
  thread:set("salt", tostring(math.random(1, 1000000000)))
end
init = function(args)
  salt = wrk.thread:get("salt") or tostring(os.time())
end
request = function()
  local headers = {["Authorization"] = token and ("Bearer " .. token) or nil,
                   ["Content-Type"] = "application/json", ["X-Store-ID"] = store}
  local b = body
  counter = counter + 1
  if b and b:find("{n}", 1, true) then
    b = b:gsub("{n}", salt .. "-" .. counter)
  end
  if b and b:find("{k}", 1, true) then
    b = b:gsub("{k}", tostring((counter + tonumber(salt)) %% 64))
  end
  return wrk.format(method, path, headers, b)
end
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout + summary.errors.status
  io.write(string.format("RESULT %%f %%f %%f %%d %%d\\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, errors, summary.requests))
end
"""


STORM_ACCOUNTS = 64
STORM_LOGIN = {"email": "storm{k}@bench.example", "password": PASSWORD}


def register_storm_accounts():
    """The login storm's accounts, on the server BASE names: the throttle counts a
    login in flight as an attempt until it succeeds, so one account cannot have more
    than 10 logins in flight; the storm logs in as 64 (wrk's {k}: one per connection)."""
    for k in range(STORM_ACCOUNTS):
        call("POST", "/api/v1/auth/register", {
            "email": f"storm{k}@bench.example", "password": PASSWORD,
            "full_name": f"Storm {k}", "tenant_name": f"Storm {k}"})


def storm_beside_health(seconds):
    """The login storm (wrk, one connection per account) for `seconds`, with /health
    probed beside it from half a second in; returns wrk's result and /health's
    (p50, p99) during the storm."""
    result = {}

    def storm():
        result["r"] = wrk("POST", "/api/v1/auth/login", STORM_ACCOUNTS, seconds, None, STORM_LOGIN)

    thread = threading.Thread(target=storm)
    thread.start()
    time.sleep(0.5)
    health = probe_health(max(1, seconds - 1))
    thread.join()
    return result["r"], health


def probe_health(seconds, interval=0.01):
    """GET /health at a fixed, modest rate (100/s) on one keep-alive connection, as a
    load balancer's probe would: latency p50 and p99 in ms. (A closed-loop generator
    such as wrk would itself take the CPU it is meant to observe.)"""
    import http.client
    host, port = BASE.split("://", 1)[1].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    latencies = []
    deadline = time.monotonic() + seconds
    next_at = time.monotonic()
    while time.monotonic() < deadline:
        started = time.perf_counter()
        connection.request("GET", "/health")
        response = connection.getresponse()
        response.read()
        latencies.append((time.perf_counter() - started) * 1000)
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))
    connection.close()
    latencies.sort()
    return latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99) - 1]


def lua_literal(value):
    return "nil" if value is None else json.dumps(value)


def wrk(method, path, connections, seconds, token=None, body=None, store=None):
    """Runs wrk; returns (requests/s, p50 ms, p99 ms, errors, requests)."""
    script = WRK_SCRIPT % ", ".join(lua_literal(v) for v in (method, path, json.dumps(body) if body else None, token, store))
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as file:
        file.write(script)
    threads = min(2, connections)
    out = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s",
                          "--timeout", "10s", "-s", file.name, BASE + path],
                         capture_output=True, text=True, check=True).stdout
    os.unlink(file.name)
    match = re.search(r"RESULT (\S+) (\S+) (\S+) (\d+) (\d+)", out)
    rps, p50, p99, errors, requests = match.groups()
    return float(rps), float(p50), float(p99), int(errors), int(requests)


def row(cells):
    print("| " + " | ".join(str(c) for c in cells) + " |")


def table(header):
    row(header)
    row(["---"] * len(header))


def token_session(token):
    """The session (sid) an access token was issued in: its payload, unverified."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sid"]


def seed(tenants, stores_per_tenant, products_per_tenant):
    """Tenants with stores, products, stock and members, through the HTTP API."""
    seeded = []
    for t in range(tenants):
        owner = call("POST", "/api/v1/auth/register", {
            "email": f"owner{t}@bench.example", "password": PASSWORD,
            "full_name": f"Owner {t}", "tenant_name": f"Tenant {t}"})
        token = owner["access_token"]
        stores = [call("POST", "/api/v1/stores", {"name": f"Store {s}", "code": f"S{s}"}, token)["id"]
                  for s in range(stores_per_tenant)]
        products = [call("POST", "/api/v1/products", {"sku": f"P-{p}", "name": f"Product {p}", "price_cents": 100 + p},
                         token)["id"] for p in range(products_per_tenant)]
        for product in products[:50]:
            call("POST", "/api/v1/inventory/adjustments", {"product_id": product, "delta": 100, "reason": "opening"},
                 token, store=stores[0])
        staff = next(r["id"] for r in call("GET", "/api/v1/roles", token=token)["items"] if r["name"] == "Staff")
        for m in range(3):
            call("POST", "/api/v1/invitations", {"email": f"member{m}.t{t}@bench.example", "role_id": staff}, token)
        seeded.append({"token": token, "user": owner["user"]["id"], "tenant": owner["tenant"]["id"],
                       "session": token_session(token), "email": f"owner{t}@bench.example", "stores": stores,
                       "product": products[0] if products else None})
    return seeded


def bulk_tenants(url, count, stores_per_tenant, products_per_tenant, offset):
    """More tenants, straight in SQL (registering 10,000 through the API would spend
    its time hashing passwords): same tables, same shape as the API makes."""
    psql(url, f"""
        INSERT INTO tenants (id, name)
        SELECT ('10000000-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid, 'Bulk ' || n
        FROM generate_series({offset}, {offset + count - 1}) AS n;
        INSERT INTO stores (tenant_id, name, code)
        SELECT t.id, 'Store ' || s, 'S' || s FROM tenants t, generate_series(1, {stores_per_tenant}) AS s
        WHERE t.name LIKE 'Bulk %' AND t.id >= ('10000000-0000-4000-8000-' || lpad('{offset}', 12, '0'))::uuid;
        INSERT INTO products (tenant_id, sku, name, price_cents)
        SELECT t.id, 'P-' || p, 'Product ' || p, 100 + p FROM tenants t, generate_series(1, {products_per_tenant}) AS p
        WHERE t.name LIKE 'Bulk %' AND t.id >= ('10000000-0000-4000-8000-' || lpad('{offset}', 12, '0'))::uuid;
        ANALYZE;
    """)


def list_endpoints(main, seconds, connections):
    return [
        ("GET /api/v1/stores?limit=20", "GET", "/api/v1/stores?limit=20", None, None),
        ("GET /api/v1/products?limit=20", "GET", "/api/v1/products?limit=20", None, None),
        ("GET /api/v1/inventory (X-Store-ID)", "GET", "/api/v1/inventory?limit=20", None, main["stores"][0]),
    ]


def opening_statement():
    """The server's opening statement (src/platform/db/begin_request.sql) as one pgbench line,
    with pgbench variables for its parameters: -M prepared sends them as parameters
    of a prepared statement, as the server does. pgbench cannot pass a NULL, so the
    store parameter is the literal NULL (the server sends NULL for a list of stores), so
    is the API key (a token's request), and the list of permissions is not asked for, as the server does not for lists, nor a
    feature (an ungated list: see bench/compare_lists.py for the gated inventory list)."""
    with open(os.path.join(ROOT, "src/platform/db/begin_request.sql")) as file:
        lines = [line.split("--", 1)[0].strip() for line in file]
    sql = " ".join(line for line in lines if line)
    # $10 first: "$1" is its prefix. A token's request presents no API key.
    return (sql.replace("$10::uuid", "NULL::uuid").replace("$10", "NULL::uuid").replace("$1", ":tenant").replace("$2", ":user").replace("$3", "NULL")
            .replace("$4", ":permission").replace("$5", "false").replace("$6", ":session")
            .replace("$7::uuid", "NULL::uuid").replace("$8", "NULL::text").replace("$9::boolean", "false"))


def interleaved_pgbench(url, scripts, rounds, seconds, clients, variables):
    """pgbench on two scripts (a dict: before, after) in turns, A B then B A, so the
    machine's drift cancels out in the ratio; prints each round and the medians with
    the ratio after / before, and returns the tps of each round by name."""
    before, after = scripts
    tps = {name: [] for name in scripts}
    for round_ in range(rounds):
        order = (before, after) if round_ % 2 == 0 else (after, before)
        for name in order:
            result, _ = pgbench(url, scripts[name], clients, seconds, variables=variables)
            tps[name].append(result)
            print(f"round {round_ + 1} {name:8} {result:8.0f} tps", flush=True)
    medians = {name: statistics.median(values) for name, values in tps.items()}
    ratios = " ".join(f"{a / b:.3f}" for a, b in zip(tps[after], tps[before]))
    print(f"\nmedian tps: {before} {medians[before]:.0f}, {after} {medians[after]:.0f}; "
          f"{after} / {before} = {medians[after] / medians[before]:.3f} (per round: {ratios})")
    return tps


def pgbench(url, script, connections, seconds, statement=None, variables=None):
    """tps and average latency (ms) of the whole transaction, or with `statement` (a
    substring of one line of the script) that statement's own average latency."""
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as file:
        file.write(script)
    defines = [f"-D{name}={value}" for name, value in (variables or {}).items()]
    out = subprocess.run(["pgbench", "-n", "-r", "-M", "prepared", "-c", str(connections), "-j", "2",
                          "-T", str(seconds), *defines, "-f", file.name, url],
                         capture_output=True, text=True, check=True).stdout
    os.unlink(file.name)
    tps = float(re.search(r"tps = ([\d.]+) \(without initial connection time\)", out).group(1))
    latency = float(re.search(r"latency average = ([\d.]+) ms", out).group(1))
    if statement:
        line = next(l for l in out.splitlines() if statement in l and re.match(r"\s+[\d.]+\s+\d+", l))
        latency = float(line.split()[0])
    return tps, latency


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10, help="duration of each load")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--pool-size", type=int, help="the server's ROWGUARD_POOL_SIZE (default: its own default)")
    parser.add_argument("--only", choices=["endpoints", "login", "rls", "growth"], action="append")
    args = parser.parse_args()
    parts = set(args.only or ["endpoints", "login", "rls", "growth"])
    c, s = args.connections, args.seconds

    url = fresh_database("rowguard_bench")
    server = Server(url, pool_size=args.pool_size)
    try:
        print(f"seeding 10 tenants through the API ...", file=sys.stderr)
        tenants = seed(10, stores_per_tenant=25, products_per_tenant=100)
        main_tenant = tenants[0]
        token = main_tenant["token"]
        register_storm_accounts()
        psql(url, "ANALYZE")
        # Warm up: every pooled connection prepares its statements once.
        for name, method, path, body, store in list_endpoints(main_tenant, s, c):
            wrk(method, path, c, 2, token, body, store)
        wrk("GET", "/api/v1/me", c, 2, token)
        time.sleep(1)
        idle = server.rss_kib()
        print(f"\nserver RSS idle after seeding: {idle / 1024:.1f} MiB\n")

        if "endpoints" in parts:
            print(f"## Endpoints ({c} connections, {s} s each, 10 tenants)\n")
            loads = list_endpoints(main_tenant, s, c) + [
                ("GET /api/v1/products/{id}", "GET", f"/api/v1/products/{main_tenant['product']}", None, None),
                ("POST /api/v1/products", "POST", "/api/v1/products",
                 {"sku": "N-{n}", "name": "New product", "price_cents": 100}, None),
                ("GET /api/v1/me", "GET", "/api/v1/me", None, None),
            ]
            # What the server and its database spend with no request (job workers
            # polling, the scheduler, the meter's flush), per second: taken off each
            # load's CPU time below.
            idle_server, idle_db = cpu_split(server.process.pid, "rowguard_bench")
            time.sleep(5)
            idle_server = (cpu_split(server.process.pid, "rowguard_bench")[0] - idle_server) / 5
            idle_db = (cpu_split(server.process.pid, "rowguard_bench")[1] - idle_db) / 5
            table(["endpoint", "concurrency", "requests/s", "p50 ms", "p99 ms",
                   "p99 / Little's mean (target <= 1.5)", "errors", "peak RSS MiB"])
            results, spent = {}, {}
            for name, method, path, body, store in loads:
                cpu_before = cpu_split(server.process.pid, "rowguard_bench")
                started = time.monotonic()
                with RssSampler(server) as rss:
                    rps, p50, p99, errors, requests = wrk(method, path, c, s, token, body, store)
                elapsed = time.monotonic() - started
                cpu_after = cpu_split(server.process.pid, "rowguard_bench")
                spent[name] = ((cpu_after[0] - cpu_before[0] - idle_server * elapsed) / requests * 1e6,
                               (cpu_after[1] - cpu_before[1] - idle_db * elapsed) / requests * 1e6)
                results[name] = (rps, p50, p99)
                # Little's law: with c requests always in flight, the mean latency is
                # c / throughput; a p99 far above it means some requests wait long.
                little_ms = c / rps * 1000
                row([name, c, f"{rps:.0f}", f"{p50:.2f}", f"{p99:.2f}", f"{p99 / little_ms:.2f}", errors,
                     f"{rss.peak / 1024:.1f}"])
            with RssSampler(server) as rss:
                rps, p50, p99, errors, _ = wrk("POST", "/api/v1/auth/login", c, s, None, STORM_LOGIN)
            row(["POST /api/v1/auth/login", c, f"{rps:.0f}", f"{p50:.2f}", f"{p99:.2f}",
                 "(hashing-bound: see the storm)", errors, f"{rss.peak / 1024:.1f}"])

            # The ceiling: the list-stores transaction in pgbench, its statements sent as
            # the server sends them: BEGIN, the context and the opening statement written
            # together (one round trip), then the list query and COMMIT together (the
            # second), each statement prepared. The plain variant waits for each answer.
            opening = f"""BEGIN;
SELECT pg_catalog.set_config('app.tenant_id', :tenant, true), pg_catalog.set_config('app.user_id', :user, true),
       pg_catalog.set_config('app.store_id', '', true), pg_catalog.set_config('app.session_id', :session, true),
       pg_catalog.set_config('role', 'rowguard_api', true);
{opening_statement()};"""
            listing = """SELECT s.id, s.name, s.code, s.address, s.status, s.created_at FROM stores s
 WHERE (s.created_at, s.id) > ('1970-01-01T00:00:00Z', '00000000-0000-0000-0000-000000000000')
   AND (EXISTS (SELECT 1 FROM user_roles ur WHERE ur.user_id = app.current_user_id() AND ur.store_id IS NULL)
        OR EXISTS (SELECT 1 FROM user_roles ur WHERE ur.user_id = app.current_user_id() AND ur.store_id = s.id)
        OR EXISTS (SELECT 1 FROM store_users su WHERE su.user_id = app.current_user_id() AND su.store_id = s.id))
 ORDER BY s.created_at, s.id LIMIT 21;
COMMIT;"""
            ceiling = f"\n{opening}\n{listing}\n"
            pipelined = f"\n\\startpipeline\n{opening}\n\\endpipeline\n\\startpipeline\n{listing}\n\\endpipeline\n"
            variables = {"tenant": main_tenant["tenant"], "user": main_tenant["user"], "permission": "stores.view",
                         "session": main_tenant["session"]}
            tps, latency = pgbench(url, ceiling, c, s, variables=variables)
            # The server funnels the 32 HTTP connections into its pool: pgbench with as
            # many clients as the pool has connections is the tighter ceiling.
            pool = args.pool_size or max(4, 2 * (os.cpu_count() or 2))
            pool_tps, pool_latency = pgbench(url, ceiling, pool, s, variables=variables)
            piped_tps, piped_latency = pgbench(url, pipelined, c, s, variables=variables)
            piped_pool_tps, piped_pool_latency = pgbench(url, pipelined, pool, s, variables=variables)
            best = max(piped_tps, piped_pool_tps)
            api = results["GET /api/v1/stores?limit=20"][0]
            print(f"\n## Ceiling\n")
            table(["what", "concurrency", "per second", "avg latency ms", "ratio API / pgbench"])
            row(["pgbench -M prepared, the list-stores transaction, a round trip per statement", c, f"{tps:.0f} tps", f"{latency:.2f}", f"{api / tps:.2f}"])
            row(["the same, as many clients as the server's pool", pool, f"{pool_tps:.0f} tps", f"{pool_latency:.2f}", f"{api / pool_tps:.2f}"])
            row(["pipelined as the server sends it (2 round trips)", c, f"{piped_tps:.0f} tps", f"{piped_latency:.2f}", f"{api / piped_tps:.2f}"])
            row(["the same, as many clients as the server's pool", pool, f"{piped_pool_tps:.0f} tps", f"{piped_pool_latency:.2f}", f"{api / piped_pool_tps:.2f}"])
            row(["GET /api/v1/stores?limit=20", c, f"{api:.0f} req/s", "", ""])
            print(f"\nthe ceiling (the best pipelined figure): {best:.0f} tps; the API reaches {api / best:.2f} of it (target 0.8)")

            print("\n## Where the time goes, per request\n")
            print("CPU from the processes' own accounting over each load above, less what they spend idle; the")
            print("round trips and bytes between the server and PostgreSQL counted by a proxy on the wire, 50")
            print("requests in a row per endpoint on one pooled connection (the same build, served again).\n")
            wire = wire_per_request(url, loads, token)
            table(["endpoint", "server CPU µs", "PostgreSQL CPU µs", "server / PostgreSQL (lists: target <= 0.5)",
                   "round trips", "bytes to PostgreSQL", "bytes from PostgreSQL"])
            for name, *_ in loads:
                server_us, db_us = spent[name]
                trips, sent, received = wire[name]
                row([name, f"{server_us:.0f}", f"{db_us:.0f}", f"{server_us / db_us:.2f}", f"{trips:.2f}",
                     f"{sent:.0f}", f"{received:.0f}"])

        if "login" in parts:
            print(f"\n## Login storm (64 connections, 64 accounts, {s} s) and /health beside it\n")
            health_p50_idle, health_p99_idle = probe_health(s)
            hashing_before = hashing_cpu_seconds(server.process.pid)
            split_before = cpu_split(server.process.pid, "rowguard_bench")
            with RssSampler(server) as rss:
                storm, (health_p50_storm, health_p99_storm) = storm_beside_health(s)
            hashing_spent = hashing_cpu_seconds(server.process.pid) - hashing_before
            split_after = cpu_split(server.process.pid, "rowguard_bench")
            rps, p50, p99, errors, logins = storm
            # One verification's time in the storm itself: the hashing threads' own CPU
            # time over the logins they verified.
            storm_hash_ms = hashing_spent / logins * 1000
            # What the hardware allows: one verification's time, alone on the machine.
            hash_ms = float(subprocess.run([os.path.join(ROOT, "target/release/examples/hash_time")],
                                           capture_output=True, text=True, check=True).stdout)
            # Logins hash on ROWGUARD_HASH_CONCURRENCY threads at once, by default one
            # per CPU but one (PasswordHasher::new: unauthenticated hashing has threads
            # of its own beside them, which a login storm does not use).
            threads = int(os.environ.get("ROWGUARD_HASH_CONCURRENCY") or max(1, (os.cpu_count() or 2) - 1))
            table(["measure", "value"])
            row(["one argon2id verification alone (median of 20), ms", f"{hash_ms:.1f}"])
            row(["one verification in the storm (the hashing threads' CPU time / logins), ms", f"{storm_hash_ms:.1f}"])
            row([f"hashing bound with {threads} login hashing thread(s), from the storm's verification, logins/s",
                 f"{threads * 1000 / storm_hash_ms:.1f}"])
            row(["logins/s (argon2id m=19 MiB t=2 p=1)", f"{rps:.1f}"])
            row(["logins/s / the hashing bound (target within 10%)", f"{rps / (threads * 1000 / storm_hash_ms):.2f}"])
            row(["hashing threads busy, cores (their CPU time / the storm's length)", f"{hashing_spent / s:.2f}"])
            # What else each login costs, beside the hash: the work that shares the other
            # core with /health (the HTTP, the login's transactions).
            server_rest = (split_after[0] - split_before[0]) - hashing_spent
            database_spent = split_after[1] - split_before[1]
            row(["per login beside the hash: the server's other threads' CPU, µs", f"{server_rest / logins * 1e6:.0f}"])
            row(["per login: PostgreSQL's CPU (its backends), µs", f"{database_spent / logins * 1e6:.0f}"])
            row(["the storm's work beside the hashing, cores (server and PostgreSQL)",
                 f"{(server_rest + database_spent) / s:.2f}"])
            row(["login p50 / p99 ms", f"{p50:.0f} / {p99:.0f}"])
            row(["login errors", errors])
            row(["GET /health p50 / p99 unloaded (100/s probe), ms", f"{health_p50_idle:.2f} / {health_p99_idle:.2f}"])
            row(["GET /health p50 / p99 during the storm, ms", f"{health_p50_storm:.2f} / {health_p99_storm:.2f}"])
            row(["GET /health p99 during the storm / unloaded (target <= 2)", f"{health_p99_storm / health_p99_idle:.2f}"])
            row(["peak RSS during the storm, MiB", f"{rss.peak / 1024:.1f}"])

        if "growth" in parts:
            print(f"\n## Growth: list p50 with 10 and with 10,000 tenants ({c} connections)\n")
            before = {name: wrk(m, p, c, s, token, b, st)[1] for name, m, p, b, st in list_endpoints(main_tenant, s, c)}
            print("adding 9,990 tenants in SQL ...", file=sys.stderr)
            bulk_tenants(url, 9990, stores_per_tenant=10, products_per_tenant=100, offset=1)
            after = {name: wrk(m, p, c, s, token, b, st)[1] for name, m, p, b, st in list_endpoints(main_tenant, s, c)}
            table(["endpoint", "p50 ms, 10 tenants", "p50 ms, 10,000 tenants", "ratio"])
            for name in before:
                row([name, f"{before[name]:.2f}", f"{after[name]:.2f}", f"{after[name] / before[name]:.2f}"])
    finally:
        server.stop()

    if "rls" in parts:
        print("\n## Cost of row-level security: 1,000,000 products over 1,000 tenants\n")
        rls_url = fresh_database("rowguard_bench_rls")
        subprocess.run([os.path.join(ROOT, "target/release/rowguard"), "migrate"], check=True,
                       env=dict(os.environ, DATABASE_URL=rls_url, RUST_LOG="warn"), stdout=subprocess.DEVNULL)
        bulk_tenants(rls_url, 1000, stores_per_tenant=1, products_per_tenant=1000, offset=1)
        tenant = "('10000000-0000-4000-8000-' || lpad(:t::text, 12, '0'))"
        with_rls = f"""\\set t random(1, 1000)
BEGIN;
SELECT set_config('app.tenant_id', {tenant}, true);
SELECT set_config('role', 'rowguard_api', true);
SELECT id, sku, name, price_cents, created_at, updated_at FROM products ORDER BY created_at, id LIMIT 21;
COMMIT;
"""
        # The same transaction without row-level security (the superuser bypasses it),
        # filtering explicitly instead.
        explicit = f"""\\set t random(1, 1000)
BEGIN;
SELECT set_config('app.tenant_id', {tenant}, true);
SELECT set_config('role', current_user, true);
SELECT id, sku, name, price_cents, created_at, updated_at FROM products WHERE tenant_id = {tenant}::uuid ORDER BY created_at, id LIMIT 21;
COMMIT;
"""
        # Measured inside the server, so the network does not dilute the difference:
        # the same list query 20,000 times per round, as the runtime role under RLS and
        # as the owner with an explicit WHERE; median of 7 rounds.
        loop = """
DO $$
DECLARE started timestamptz; rls float8; plain float8; t uuid;
BEGIN
  FOR round IN 1..7 LOOP
    started := clock_timestamp();
    SET LOCAL ROLE rowguard_api;
    FOR i IN 1..20000 LOOP
      PERFORM set_config('app.tenant_id', '10000000-0000-4000-8000-' || lpad((1 + i % 1000)::text, 12, '0'), true);
      PERFORM id, sku, name, price_cents, created_at, updated_at FROM products ORDER BY created_at, id LIMIT 21;
    END LOOP;
    rls := extract(epoch FROM clock_timestamp() - started);
    RESET ROLE;
    started := clock_timestamp();
    FOR i IN 1..20000 LOOP
      PERFORM set_config('app.tenant_id', '10000000-0000-4000-8000-' || lpad((1 + i % 1000)::text, 12, '0'), true);
      t := ('10000000-0000-4000-8000-' || lpad((1 + i % 1000)::text, 12, '0'))::uuid;
      PERFORM id, sku, name, price_cents, created_at, updated_at FROM products WHERE tenant_id = t
        ORDER BY created_at, id LIMIT 21;
    END LOOP;
    plain := extract(epoch FROM clock_timestamp() - started);
    RAISE NOTICE 'ROUND % %', rls / 20000 * 1e6, plain / 20000 * 1e6;
  END LOOP;
END $$;
"""
        out = subprocess.run(["psql", rls_url, "-c", loop], capture_output=True, text=True, check=True).stderr
        rounds = sorted((float(a), float(b)) for a, b in re.findall(r"ROUND (\S+) (\S+)", out))
        ratios = sorted(a / b for a, b in rounds)
        rls_us = sorted(a for a, _ in rounds)[3]
        plain_us = sorted(b for _, b in rounds)[3]
        rls_tps, _ = pgbench(rls_url, with_rls, 8, s)
        plain_tps, _ = pgbench(rls_url, explicit, 8, s)
        table(["list query", "in-server µs per query (median of 7)", "ratio (median)", "pgbench tps, 8 clients"])
        row(["RLS policy, no WHERE", f"{rls_us:.1f}", f"{ratios[3]:.2f}", f"{rls_tps:.0f}"])
        row(["explicit WHERE tenant_id, RLS bypassed", f"{plain_us:.1f}", "1.00", f"{plain_tps:.0f}"])
        psql(ADMIN_URL, "DROP DATABASE IF EXISTS rowguard_bench_rls WITH (FORCE)")
    psql(ADMIN_URL, "DROP DATABASE IF EXISTS rowguard_bench WITH (FORCE)")


if __name__ == "__main__":
    main()
