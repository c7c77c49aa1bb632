#!/usr/bin/env bash
# A newcomer's first `cargo run`: clones this checkout's HEAD into a directory only its
# owner may enter (`mktemp -d`, mode 700; as root, the embedded cluster's user cannot),
# runs the README's serve command there without DATABASE_URL, and passes when
# GET /health/db answers 200 and SIGTERM then stops the server cleanly, postmaster and
# all. Builds into this checkout's target/, so only rowguard itself is compiled, and
# leaves this checkout's own build as it was.
#   tests/clone/serve.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
checkout="$PWD"

# The embedded default needs the server binaries; a machine with only a running server
# (which .ci/run accepts) has nothing to test here. The places rowguard looks in.
if ! command -v initdb >/dev/null && ! { command -v pg_config >/dev/null &&
    [ -x "$(pg_config --bindir)/initdb" ]; } && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    echo "clone serve: skipped: no PostgreSQL server binaries (initdb) to start the embedded cluster with"
    exit 0
fi
head="$(git rev-parse HEAD)"
limit="${CLONE_SERVE_SECONDS:-60}"

free_port() {
    local port
    while :; do
        port=$((20000 + RANDOM % 40000))
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
    done
}
port="$(free_port)"

# Cargo hashes a path package's units by its path relative to the workspace, so the
# clone's rowguard would be the checkout's own units, rebuilt from the clone: the
# checkout's build would then look fresh with the clone's code, and its build-script
# output would name the clone's policies/, deleted below. A profile setting of the
# clone's alone gives its units their own hashes (dependencies are shared all the
# same); without incremental state, as nothing would reuse it.
cargo_flags=(--locked --quiet --config 'profile.dev.package.rowguard.incremental=false')
# The clone's binary is linked to target/debug/ as the checkout's is: keep copies of
# the checkout's and put them back.
uplifted=(rowguard rowguard.d librowguard.rlib librowguard.d)
saved="$checkout/target/debug/.before-clone-serve"
restore_uplifted() {
    for file in "${uplifted[@]}"; do
        if [ -e "$saved/$file" ]; then
            mv -f "$saved/$file" "$checkout/target/debug/$file"
        else
            rm -f "$checkout/target/debug/$file"
        fi
    done
    rm -rf "$saved"
}

dir=
server=
cluster=
# Where the log says the cluster's data is ("creating ..." and "started ..." lines).
logged_pgdata() {
    sed -n 's/.*the embedded PostgreSQL cluster.* data=\([^ ]*\/pgdata\).*/\1/p' "$dir/log" 2>/dev/null | tail -1
}
cleanup() {
    if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then
        kill -KILL "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    restore_uplifted
    if [ -n "$dir" ]; then
        [ -n "$cluster" ] || cluster="$(dirname "$(logged_pgdata)")"
        rm -rf "$dir"
    fi
    # A relocated cluster lives outside the clone; remove this run's only.
    case "$cluster" in /var/lib/rowguard/?*) rm -rf "$cluster" ;; esac
}
rm -rf "$saved" && mkdir -p "$saved"
trap cleanup EXIT
for file in "${uplifted[@]}"; do
    [ ! -e "$checkout/target/debug/$file" ] || cp -p "$checkout/target/debug/$file" "$saved/$file"
done
dir="$(mktemp -d)"
fail() {
    echo "clone serve: $*" >&2
    echo "--- server log ---" >&2
    cat "$dir/log" >&2 2>/dev/null || true
    exit 1
}

git clone --quiet "$checkout" "$dir/rowguard"
git -C "$dir/rowguard" checkout --quiet --detach "$head"
echo "clone serve: $head in $dir (mode $(stat -c %a "$dir")), as $(id -un)"
cd "$dir/rowguard"
export CARGO_TARGET_DIR="$checkout/target"
unset DATABASE_URL ROWGUARD_DATA_DIR
# Built first, so that the time limit below is the serving's alone.
cargo build "${cargo_flags[@]}"

started=$SECONDS
NO_COLOR=1 RUST_LOG=info ROWGUARD_BIND="127.0.0.1:$port" cargo run "${cargo_flags[@]}" >"$dir/log" 2>&1 &
server=$!
status=
while [ $((SECONDS - started)) -lt "$limit" ]; do
    kill -0 "$server" 2>/dev/null || fail "the server exited before serving"
    status="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health/db" || true)"
    [ "$status" = 200 ] && break
    sleep 0.2
done
[ "$status" = 200 ] || fail "GET /health/db did not answer 200 within ${limit}s (last: ${status:-none})"
echo "clone serve: GET /health/db answered 200 after $((SECONDS - started))s"

pgdata="$(logged_pgdata)"
[ -n "$pgdata" ] || fail "the log does not say where the cluster is"
cluster="$(dirname "$pgdata")"
postmaster="$(head -1 "$pgdata/postmaster.pid" 2>/dev/null)" || fail "no postmaster.pid in $pgdata"
echo "clone serve: the cluster is in $cluster, postmaster $postmaster"
if [ "$(id -u)" = 0 ]; then
    case "$cluster" in
        "$dir"/*) fail "as root, the cluster stayed in the private directory" ;;
    esac
    grep -qF "keeping it in $cluster instead" "$dir/log" || fail "the log does not say why the cluster is in $cluster"
fi

kill -TERM "$server"
code=0
wait "$server" || code=$?
server=
[ "$code" = 0 ] || fail "the server exited with $code after SIGTERM"
grep -qE " stopped$" "$dir/log" || fail "the server did not log that it stopped"
for _ in $(seq 1 50); do
    kill -0 "$postmaster" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$postmaster" 2>/dev/null; then fail "postmaster $postmaster still runs"; fi
[ ! -e "$pgdata/postmaster.pid" ] || fail "$pgdata/postmaster.pid is left behind"
echo "clone serve: stopped cleanly in $((SECONDS - started))s, no postmaster left"
