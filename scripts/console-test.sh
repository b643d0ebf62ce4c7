#!/usr/bin/env bash
# The web console in a real browser (docs/operations.md "Console"): starts a
# local 3-node cluster, loads a node's console in headless Chromium after its
# script has run, checks that it shows each group's leader (the one the
# node's JSON names) and every node live, stops a node and checks that the
# console marks it down, and saves a screenshot.
#
#   scripts/console-test.sh                   # screenshot to docs/console.png
#   SCREENSHOT=/tmp/c.png MERIDIAN=target/release/meridian scripts/console-test.sh
#
# Opt-in (not run by `cargo test`): it needs Chromium, which it installs
# with apt-get (Debian's `chromium`) when missing, as root or with sudo.
# Environment: MERIDIAN (the binary; default: a debug build made here),
# CHROMIUM (the browser; default: chromium), SCREENSHOT, BASE_PORT (default:
# a random one; node i on BASE_PORT+i-1, its console on BASE_PORT+100+i-1),
# KEEP=1 to keep the cluster's directory.
set -euo pipefail

cd "$(dirname "$0")/.."
SCREENSHOT=${SCREENSHOT:-docs/console.png}
NODES=3
# (Not GROUPS: bash keeps the user's groups there.)
NGROUPS=3
# How long the page runs (virtual time) before Chromium dumps or shoots it:
# enough for a few of its 2 s polls.
BUDGET_MS=6000
# How long a stopped node takes to be seen down: the liveness timeout (3 s)
# and a hello period (1 s), with a margin.
DOWN_AFTER_S=6

say() { printf 'console-test: %s\n' "$*" >&2; }
fail() {
    say "FAIL: $*"
    exit 1
}

# --- the browser ---
CHROMIUM=${CHROMIUM:-}
if [ -z "$CHROMIUM" ]; then
    CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
fi
if [ -z "$CHROMIUM" ]; then
    say "installing Debian's chromium"
    if [ "$(id -u)" = 0 ]; then
        SUDO=()
    elif sudo -n true 2>/dev/null; then
        SUDO=(sudo -n)
    else
        fail "chromium is missing and neither root nor passwordless sudo is available to install it"
    fi
    "${SUDO[@]}" apt-get update -q
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -q --no-install-recommends chromium
    CHROMIUM=$(command -v chromium) || fail "chromium not found after installing it"
fi
browse() {
    # --no-sandbox: root in a container has no user namespace for it.
    "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
        --hide-scrollbars --virtual-time-budget="$BUDGET_MS" "$@" 2>/dev/null
}

# --- the cluster ---
MERIDIAN=${MERIDIAN:-}
if [ -z "$MERIDIAN" ]; then
    cargo build -q --bin meridian
    MERIDIAN=target/debug/meridian
fi
BASE_PORT=${BASE_PORT:-$((20000 + RANDOM % 20000))}
DIR=$(mktemp -d "${TMPDIR:-/tmp}/meridian-console-XXXXXX")
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [ "${KEEP:-0}" = 1 ]; then
        say "cluster directory kept: $DIR"
    else
        rm -rf "$DIR"
    fi
}
trap cleanup EXIT

"$MERIDIAN" cluster init --nodes "$NODES" --groups "$NGROUPS" --dir "$DIR" --base-port "$BASE_PORT" >/dev/null
for i in $(seq 1 "$NODES"); do
    "$MERIDIAN" node --config "$DIR/node-$i/meridian.toml" >>"$DIR/node-$i/node.log" 2>&1 &
    PIDS+=($!)
done
metrics() { echo "127.0.0.1:$((BASE_PORT + 100 + $1 - 1))"; }
CONSOLE="http://$(metrics 1)/console"
say "cluster in $DIR, console at $CONSOLE"

# Every node ready: every group has a leader and safe time.
deadline=$((SECONDS + 60))
for i in $(seq 1 "$NODES"); do
    until curl -fsS "http://$(metrics "$i")/ready" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || fail "node $i never got ready (log: $DIR/node-$i/node.log)"
        sleep 0.5
    done
done
# Every peer seen live by node 1.
until [ "$(curl -fsS "http://$(metrics 1)/console/api" | jq '[.status.nodes[] | select(.liveness == "LIVENESS_LIVE")] | length')" = $((NODES - 1)) ]; do
    [ "$SECONDS" -lt "$deadline" ] || fail "node 1 never saw every peer live"
    sleep 0.5
done

# Some traffic for the latency charts: two intervals of the history (10 s),
# on keys of every group (ranges split at "?" and "_"), so that node 1
# answers some.
ENDPOINTS=$(seq 1 "$NODES" | while read -r i; do printf '127.0.0.1:%d,' $((BASE_PORT + i - 1)); done)
export MERIDIAN_ENDPOINTS=${ENDPOINTS%,}
say "writing and reading for 21 s"
PREFIXES=(0 K k)
end=$((SECONDS + 21))
n=0
while [ "$SECONDS" -lt "$end" ]; do
    key="${PREFIXES[$((n % 3))]}key-$((n % 50))"
    "$MERIDIAN" put "$key" "value-$n" >/dev/null
    "$MERIDIAN" get "$key" >/dev/null
    n=$((n + 1))
done
say "$n writes and reads"

# Leader of each group as the nodes' JSON names them: the console must show
# the same.
leaders() {
    for i in $(seq 1 "$NODES"); do
        curl -fsS --max-time 2 "http://$(metrics "$i")/console/api" 2>/dev/null |
            jq -r --arg node "$i" '.status.groups[] | select(.local_leader) | "\(.id) \($node)"' ||
            true
    done | sort -n
}
check_leaders() {
    local dom=$1
    local expected
    expected=$(leaders)
    [ "$(echo "$expected" | grep -c .)" = "$NGROUPS" ] || fail "not every group has a leader: $expected"
    while read -r g l; do
        grep -q "data-group=\"$g\" data-leader=\"$l\"" "$dom" ||
            fail "the console does not show node $l leading group $g (dom: $dom)"
        say "group $g: leader $l shown"
    done <<<"$expected"
}
liveness_of() {
    grep -o "data-node=\"$1\" data-liveness=\"[a-z]*\"" "$2" | sed 's/.*data-liveness="\([a-z]*\)"/\1/'
}

DOM="$DIR/console-1.html"
browse --dump-dom "$CONSOLE" >"$DOM"
grep -q 'data-loaded="true"' "$DOM" || fail "the page never rendered the JSON (dom: $DOM)"
check_leaders "$DOM"
[ "$(liveness_of 1 "$DOM")" = self ] || fail "node 1 is not shown as itself"
for i in $(seq 2 "$NODES"); do
    [ "$(liveness_of "$i" "$DOM")" = live ] || fail "node $i is not shown live"
done
grep -q '<polyline' "$DOM" || fail "no latency chart drawn"
say "all nodes live, leaders shown, latency charted"

# Stop the last node: node 1 sees it down within the liveness timeout, and
# the other nodes take over its leaderships.
say "stopping node $NODES"
kill -TERM "${PIDS[$((NODES - 1))]}"
wait "${PIDS[$((NODES - 1))]}" 2>/dev/null || true
sleep "$DOWN_AFTER_S"
DOM="$DIR/console-2.html"
browse --dump-dom "$CONSOLE" >"$DOM"
[ "$(liveness_of "$NODES" "$DOM")" = down ] || fail "node $NODES is not shown down after it stopped (dom: $DOM)"
check_leaders "$DOM"
say "node $NODES shown down, leaders moved and shown"

mkdir -p "$(dirname "$SCREENSHOT")"
browse --window-size=1400,900 --screenshot="$SCREENSHOT" "$CONSOLE"
[ -s "$SCREENSHOT" ] || fail "no screenshot"
say "screenshot: $SCREENSHOT"
say "PASS"
