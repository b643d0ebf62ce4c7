#!/usr/bin/env bash
# 2PL (wound-wait) against OCC (FaRM-style validation) on Meridian's
# embedded cluster: `transfer` and YCSB-F at zipfian θ 0.5, 0.9 and 0.99,
# each under both, then one table of throughput, p99 and abort rate side by
# side: when to pick which.
#
#   scripts/compare-cc.sh [--duration SECONDS] [--threads N] [--records N]
#
# --duration: seconds of each run (default 20); --threads: closed-loop
# clients (default 64); --records: records of YCSB-F (default
# meridian-ycsb's 100,000; transfer always uses its 1,000 accounts).
# Reports and logs stay in the printed work directory.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

duration=20 threads=64 records=""
while [[ $# -gt 0 ]]; do
    case $1 in
        --duration) duration=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --records) records=$2; shift 2 ;;
        -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "compare-cc.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

target_dir=${CARGO_TARGET_DIR:-$root/target}
work=$(mktemp -d "${TMPDIR:-/tmp}/meridian-compare-cc.XXXXXX")
echo "== building meridian-ycsb (release)"
cargo build --release --quiet -p meridian-benches --bin meridian-ycsb
ycsb=$target_dir/release/meridian-ycsb

echo "== work directory: $work"
failed=()
for workload in transfer f; do
    size=()
    if [[ $workload == f && -n $records ]]; then
        size=(--records "$records")
    fi
    for theta in 0.5 0.9 0.99; do
        for cc in 2pl occ; do
            name=cc-$workload-$theta-$cc
            echo "== $workload, zipf $theta, $cc"
            # transfer draws its accounts uniformly by default: ask for zipfian.
            if ! "$ycsb" run --no-progress --workload "$workload" --cc "$cc" \
                --distribution zipfian --zipf "$theta" --threads "$threads" \
                --duration "$duration" "${size[@]}" --json "$work/$name.json" \
                >"$work/$name.txt" 2>"$work/$name.err"; then
                echo "   FAILED: see $work/$name.err" >&2
                tail -5 "$work/$name.err" >&2
                failed+=("$name")
            fi
        done
    done
done

echo
python3 "$root/scripts/ycsb-table.py" cc "$work"
echo
echo "machine: $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1); reports in $work"
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "compare-cc.sh: runs failed: ${failed[*]}" >&2
    exit 1
fi
