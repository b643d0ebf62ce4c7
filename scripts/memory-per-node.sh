#!/usr/bin/env bash
# Resident memory per node after a YCSB load, on a cluster of `meridian node`
# processes (docs/performance.md, "More nodes than replicas").
#
#   scripts/memory-per-node.sh NODES [RECORDS] [REPLICAS] [GROUPS] [BASE_PORT]
#
# Defaults: 1000000 records, 3 replicas, 6 groups, base port 17901. Needs the
# release binaries (cargo build --release -p meridian-cli -p meridian-benches).
# Writes the cluster into a new temporary directory, starts one process per
# node, waits for every node's /ready, loads the records with
# `meridian-ycsb load`, and prints each node's VmHWM (peak) and VmRSS from
# /proc/PID/status right after the load and 60 s later, then `meridian status`
# (bytes per range and per node). Stops the nodes and removes the directory.
# SPLIT_BYTES=SIZE passes --split-bytes to `cluster init` (default: the
# node's, 64MiB: the load splits ranges as they grow). KEEP=1 keeps the
# directory (configurations and node logs) on exit.
set -euo pipefail

usage() {
    sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

[[ $# -ge 1 ]] || usage
nodes=$1
records=${2:-1000000}
replicas=${3:-3}
groups=${4:-6}
port=${5:-17901}
# Seconds a cluster has to become ready.
ready_timeout=120
# Seconds after the load before the settled reading.
settle=60

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${CARGO_TARGET_DIR:-$root/target}/release
dir=$(mktemp -d -t meridian-memory-XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [[ -n ${KEEP:-} ]]; then echo "# kept $dir" >&2; else rm -rf "$dir"; fi
}
trap cleanup EXIT

"$bin/meridian" cluster init --nodes "$nodes" --groups "$groups" --replicas "$replicas" \
    --dir "$dir/c" --base-port "$port" ${SPLIT_BYTES:+--split-bytes "$SPLIT_BYTES"} >/dev/null
for i in $(seq 1 "$nodes"); do
    "$bin/meridian" node --config "$dir/c/node-$i/meridian.toml" >"$dir/c/node-$i/node.log" 2>&1 &
    pids+=($!)
done
endpoints=$(for i in $(seq 1 "$nodes"); do printf '127.0.0.1:%d,' $((port + i - 1)); done)
endpoints=${endpoints%,}
for i in $(seq 1 "$nodes"); do
    for _ in $(seq 1 "$ready_timeout"); do
        code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$((port + 100 + i - 1))/ready" || true)
        [[ $code == 200 ]] && break
        sleep 1
    done
done

memory() {
    local i=1
    for p in "${pids[@]}"; do
        echo "node $i: $(grep -E 'VmHWM|VmRSS' "/proc/$p/status" | tr -s ' \t\n' ' ')"
        i=$((i + 1))
    done
}

echo "# $(date -u +%FT%TZ) $nodes nodes, $replicas replicas, $groups groups, $records records; load average $(cut -d' ' -f1-3 /proc/loadavg)"
start=$(date +%s)
"$bin/meridian-ycsb" load --workload a --records "$records" --endpoints "$endpoints" --no-progress
echo "# load took $(($(date +%s) - start)) s"
echo "# after the load"
memory
sleep "$settle"
echo "# $settle s later"
memory
"$bin/meridian" status --endpoints "$endpoints" | sed -n '/^ranges:/,/^replicas at/p'
