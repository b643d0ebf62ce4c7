#!/usr/bin/env python3
"""Tables of meridian-ycsb --json reports, for the comparison scripts.

    ycsb-table.py etcd DIR ETCD_VERSION EPSILON_MS   (compare-etcd.sh)
    ycsb-table.py cc DIR                             (compare-cc.sh)

DIR holds one report per run, named by the scripts: etcd-<row>-<system>.json
and cc-<workload>-<theta>-<cc>.json. A missing report (a failed run) shows
as "failed" in its cell.
"""

import json
import os
import sys

# Rows of the etcd table: (row name, workload, threads, ε of Meridian's run
# or None for the default, etcd row it is compared with).
ETCD_ROWS = [
    ("a", "YCSB-A (zipfian 0.99)", 64, None, "a"),
    ("c", "YCSB-C (zipfian 0.99)", 64, None, "c"),
    ("transfer", "transfer (cross-group)", 64, None, "transfer"),
    ("ro-sum", "ro-sum (10 keys)", 64, None, "ro-sum"),
    ("transfer-1", "transfer, 1 thread", 1, None, "transfer-1"),
    ("a-eps35", "YCSB-A, ε = 3.5 ms", 64, 3.5, "a"),
    ("transfer-eps35", "transfer, ε = 3.5 ms", 64, 3.5, "transfer"),
]

# Targets of the etcd table: row -> least throughput ratio.
TARGETS = {"a": 3.0, "transfer": 3.0, "c": 2.0, "ro-sum": 2.0}

CC_WORKLOADS = [("transfer", "transfer"), ("f", "YCSB-F")]
CC_THETAS = ["0.5", "0.9", "0.99"]


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def worst(report, key):
    """The largest `key` (a latency in µs) over the report's operations, in ms."""
    values = [o[key] for o in report["operations"].values() if key in o]
    return max(values) / 1000.0 if values else float("nan")


def abort_rate(report):
    """Aborted attempts over all attempts."""
    aborted = report["retries"] + report["aborts"]
    attempts = report["successes"] + aborted
    return aborted / attempts if attempts else 0.0


def cells(report):
    if report is None:
        return ["failed", "", ""]
    return [
        f"{report['throughput_ops_s']:,.0f}",
        f"{worst(report, 'p50_us'):.1f}",
        f"{worst(report, 'p99_us'):.1f}",
    ]


def table(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
    print(line(header))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(line(r))


def etcd_table(directory, version, epsilon):
    print(f"Meridian vs etcd {version}: 3 replicas each on this machine, fsync on, one run.")
    print(f"Meridian ε = {epsilon} ms unless the row says otherwise; p50/p99 in ms, of the slowest operation type.")
    print()
    header = ["workload", "threads", "meridian/s", "p50", "p99", "etcd/s", "p50", "p99", "ratio", "p99 ratio", "target"]
    rows = []
    missed = []
    for name, label, threads, eps, etcd_row in ETCD_ROWS:
        m = load(os.path.join(directory, f"etcd-{name}-meridian.json"))
        e = load(os.path.join(directory, f"etcd-{etcd_row}-etcd.json"))
        ratio = p99_ratio = ""
        if m and e and e["throughput_ops_s"] > 0:
            r = m["throughput_ops_s"] / e["throughput_ops_s"]
            ratio = f"{r:.2f}x"
            p99_ratio = f"{worst(m, 'p99_us') / worst(e, 'p99_us'):.2f}"
            want = TARGETS.get(name)
            if want and r < want:
                missed.append(f"{label}: {r:.2f}x (target {want:.0f}x)")
        target = ""
        if name in TARGETS:
            target = f">= {TARGETS[name]:.0f}x"
        elif name == "transfer-1":
            bound = 2 * float(epsilon) + 1
            target = f"p50 <= {bound:g} ms"
            if m and worst(m, "p50_us") > bound:
                missed.append(f"{label}: p50 {worst(m, 'p50_us'):.1f} ms (target {bound:g} ms)")
        elif eps is not None:
            # A closed loop of `threads` clients, each waiting out at least
            # 2ε of commit wait per write, commits at most threads / 2ε.
            target = f"bound {threads / (2 * eps / 1000):,.0f}/s"
        rows.append([label, threads] + cells(m) + cells(e) + [ratio, p99_ratio, target])
    table(header, rows)
    print()
    print("'bound' is the closed-loop ceiling of an all-write workload: threads / (2ε of commit wait).")
    if missed:
        print("Targets missed: " + "; ".join(missed))


def cc_table(directory):
    found = [load(os.path.join(directory, n)) for n in sorted(os.listdir(directory)) if n.startswith("cc-") and n.endswith(".json")]
    threads = next((r["settings"]["threads"] for r in found if r), "?")
    print(f"2PL (wound-wait) against OCC (FaRM-style validation), Meridian embedded cluster, {threads} threads.")
    print("p99 in ms of the slowest operation type; abort rate = aborted attempts / attempts.")
    print()
    header = ["workload", "zipf", "2pl/s", "p99", "aborts", "occ/s", "p99", "aborts", "occ/2pl"]
    rows = []
    for workload, label in CC_WORKLOADS:
        for theta in CC_THETAS:
            row = [label, theta]
            reports = []
            for cc in ("2pl", "occ"):
                r = load(os.path.join(directory, f"cc-{workload}-{theta}-{cc}.json"))
                reports.append(r)
                if r is None:
                    row += ["failed", "", ""]
                else:
                    row += [f"{r['throughput_ops_s']:,.0f}", f"{worst(r, 'p99_us'):.1f}", f"{100 * abort_rate(r):.1f}%"]
            two, occ = reports
            row.append(f"{occ['throughput_ops_s'] / two['throughput_ops_s']:.2f}" if two and occ and two["throughput_ops_s"] > 0 else "")
            rows.append(row)
    table(header, rows)


def main(argv):
    if len(argv) == 5 and argv[1] == "etcd":
        etcd_table(argv[2], argv[3], argv[4])
    elif len(argv) == 3 and argv[1] == "cc":
        cc_table(argv[2])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
