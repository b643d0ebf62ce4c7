//! The report: YCSB-style text on stdout and the same as JSON
//! (`--json FILE`).
//!
//! JSON layout: `throughput_ops_s` (successful operations per second over
//! the run; committed transactions per second for `transfer`), `settings`,
//! `load`, `operations` (one object per operation kind that ran: `count`,
//! `failed`, `failed_by_reason`, `throughput_ops_s`, and `mean_us`,
//! `p50_us`, `p95_us`, `p99_us`, `p999_us`, `min_us`, `max_us` of the
//! successful ones), `aborts_by_reason` (read-write transactions that
//! failed after the client's retries), `retries` and `retries_by_reason`,
//! `commit_wait` (`mean_us` or `null` with a `note`), `wal_fsync` (the
//! embedded nodes' fdatasyncs: `mean_us`, `count`, `over_1s`; `null` for
//! an external cluster), `transfer_check`
//! and `ro_sum_mismatches` where they apply, and `timeline` (per second:
//! `ops` and `p99_us`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use crate::runner::LoadReport;
use crate::stats::{OpStats, Second};
use crate::store::Audit;
use crate::workload::Op;

/// How the benchmark was run.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The system measured (`meridian`).
    pub target: String,
    /// The workload's name.
    pub workload: String,
    /// `run` (or `load` alone).
    pub phase: String,
    /// Closed-loop clients.
    pub threads: usize,
    /// Records (accounts).
    pub records: u64,
    /// Operations asked for, if bounded by count.
    pub operations: Option<u64>,
    /// Duration asked for, if bounded by time.
    pub duration: Option<Duration>,
    /// `2pl` or `occ`.
    pub cc: String,
    /// The request distribution's name.
    pub distribution: String,
    /// The zipfian constant.
    pub zipf_theta: f64,
    /// Accounts per `ro-sum` transaction.
    pub ro_keys: usize,
    /// Whether the cluster was started in-process.
    pub embedded: bool,
    /// Groups (embedded cluster), or as the cluster reported them.
    pub groups: u64,
    /// Replicas per group.
    pub replicas: u64,
    /// Nodes of the cluster (embedded: `--nodes`; external: the
    /// endpoints given).
    pub nodes: u64,
    /// Clock uncertainty ε of the embedded cluster, ms.
    pub epsilon_ms: Option<f64>,
    /// The endpoints used.
    pub endpoints: Vec<String>,
}

/// Mean commit wait over the run, from the nodes' metrics.
#[derive(Clone, Debug, PartialEq)]
pub enum CommitWait {
    /// Measured: the nodes' `meridian_commit_wait_seconds` histogram
    /// (commit timestamp to acknowledgement) over the run's commits.
    Measured {
        /// Mean, µs.
        mean_us: f64,
        /// Commits it covers.
        commits: u64,
    },
    /// Not measured, and why.
    NotMeasured(String),
}

/// The embedded nodes' write-ahead log fsyncs during the run: slow disks
/// (or a machine shared with other work) show here first.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FsyncStats {
    /// Mean fdatasync latency, µs.
    pub mean_us: f64,
    /// fdatasyncs over every node.
    pub count: u64,
    /// Those that took more than a second.
    pub over_1s: u64,
}

/// `transfer`'s closed-economy check.
#[derive(Clone, Debug, PartialEq)]
pub struct TransferCheck {
    /// The total before the run (an audit at one timestamp).
    pub before: Audit,
    /// The total after every transfer finished.
    pub after: Audit,
    /// The total the load gave (`records × initial balance`), when this
    /// run loaded the accounts itself.
    pub expected: Option<i64>,
}

impl TransferCheck {
    /// Whether money was neither made nor lost.
    pub fn passed(&self) -> bool {
        self.before.total == self.after.total
            && self.before.accounts == self.after.accounts
            && self.expected.is_none_or(|e| e == self.before.total)
    }
}

/// Everything a run reports.
#[derive(Clone, Debug)]
pub struct Report {
    /// How it was run.
    pub settings: Settings,
    /// The load, if this invocation loaded.
    pub load: Option<LoadReport>,
    /// The run's length.
    pub elapsed: Duration,
    /// Per operation kind, indexed as [`Op::ALL`].
    pub ops: Vec<OpStats>,
    /// Per second.
    pub timeline: Vec<Second>,
    /// Attempts beyond the first, over all transactions.
    pub retries: u64,
    /// The same by reason.
    pub retries_by_reason: BTreeMap<String, u64>,
    /// Mean commit wait.
    pub commit_wait: CommitWait,
    /// The embedded nodes' fsyncs (`None`: an external cluster).
    pub wal_fsync: Option<FsyncStats>,
    /// `transfer`'s check.
    pub transfer_check: Option<TransferCheck>,
    /// `ro-sum` transactions that saw a wrong sum.
    pub ro_sum_mismatches: Option<u64>,
    /// Stopped early by Ctrl-C.
    pub interrupted: bool,
}

fn latency_json(h: &Histogram<u64>) -> Value {
    if h.is_empty() {
        return json!({});
    }
    json!({
        "mean_us": round1(h.mean()),
        "p50_us": h.value_at_quantile(0.50),
        "p95_us": h.value_at_quantile(0.95),
        "p99_us": h.value_at_quantile(0.99),
        "p999_us": h.value_at_quantile(0.999),
        "min_us": h.min(),
        "max_us": h.max(),
    })
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

impl Report {
    /// Successful operations (committed transactions, for `transfer`).
    pub fn successes(&self) -> u64 {
        self.ops.iter().map(|o| o.latency.len()).sum()
    }

    /// Successful operations per second over the run.
    pub fn throughput(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.successes() as f64 / secs
        } else {
            0.0
        }
    }

    /// Read-write transactions that failed after their retries, by reason.
    pub fn aborts_by_reason(&self) -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for op in Op::ALL.iter().filter(|o| o.is_transaction()) {
            for (r, n) in &self.ops[op.index()].failed {
                *m.entry(r.clone()).or_default() += n;
            }
        }
        m
    }

    /// Operation kinds that ran, with their stats.
    fn ran(&self) -> impl Iterator<Item = (Op, &OpStats)> {
        Op::ALL
            .iter()
            .map(|op| (*op, &self.ops[op.index()]))
            .filter(|(_, s)| !s.latency.is_empty() || s.failures() > 0)
    }

    /// Whether the run found a correctness problem.
    pub fn failed_check(&self) -> bool {
        self.transfer_check.as_ref().is_some_and(|c| !c.passed())
            || self.ro_sum_mismatches.is_some_and(|n| n > 0)
    }

    /// The report as JSON.
    pub fn json(&self) -> Value {
        let s = &self.settings;
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let mut ops = serde_json::Map::new();
        for (op, st) in self.ran() {
            let mut o = json!({
                "count": st.latency.len(),
                "failed": st.failures(),
                "failed_by_reason": st.failed,
                "throughput_ops_s": round1(st.latency.len() as f64 / secs),
            });
            if let (Value::Object(o), Value::Object(l)) = (&mut o, latency_json(&st.latency)) {
                o.extend(l);
            }
            ops.insert(op.name().to_string(), o);
        }
        let commit_wait = match &self.commit_wait {
            CommitWait::Measured { mean_us, commits } => {
                json!({ "mean_us": round1(*mean_us), "commits": commits, "note": "node metric meridian_commit_wait_seconds: commit timestamp to acknowledgement" })
            }
            CommitWait::NotMeasured(why) => json!({ "mean_us": null, "note": why }),
        };
        let mut v = json!({
            "benchmark": "meridian-ycsb",
            "throughput_ops_s": round1(self.throughput()),
            "settings": {
                "target": s.target,
                "workload": s.workload,
                "phase": s.phase,
                "threads": s.threads,
                "records": s.records,
                "operations": s.operations,
                "duration_s": s.duration.map(|d| d.as_secs_f64()),
                "cc": s.cc,
                "distribution": s.distribution,
                "zipf_theta": s.zipf_theta,
                "ro_keys": s.ro_keys,
                "embedded": s.embedded,
                "groups": s.groups,
                "replicas": s.replicas,
                "nodes": s.nodes,
                "epsilon_ms": s.epsilon_ms,
                "endpoints": s.endpoints,
            },
            "load": self.load.as_ref().map(|l| json!({
                "records": l.records,
                "seconds": (l.elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
                "throughput_records_s": round1(l.records as f64 / l.elapsed.as_secs_f64().max(1e-9)),
            })),
            "run_seconds": (secs * 1000.0).round() / 1000.0,
            "successes": self.successes(),
            "operations": ops,
            "aborts": self.aborts_by_reason().values().sum::<u64>(),
            "aborts_by_reason": self.aborts_by_reason(),
            "retries": self.retries,
            "retries_by_reason": self.retries_by_reason,
            "commit_wait": commit_wait,
            "wal_fsync": self.wal_fsync.map(|f| json!({
                "mean_us": round1(f.mean_us),
                "count": f.count,
                "over_1s": f.over_1s,
            })),
            "interrupted": self.interrupted,
            "timeline": self.timeline.iter().enumerate().map(|(i, sec)| json!({
                "second": i,
                "ops": sec.ops,
                "p99_us": if sec.latency.is_empty() { Value::Null } else { json!(sec.latency.value_at_quantile(0.99)) },
            })).collect::<Vec<_>>(),
        });
        if let Some(c) = &self.transfer_check {
            v["transfer_check"] = json!({
                "passed": c.passed(),
                "expected_total": c.expected,
                "total_before": c.before.total,
                "total_after": c.after.total,
                "accounts_before": c.before.accounts,
                "accounts_after": c.after.accounts,
            });
        }
        if let Some(n) = self.ro_sum_mismatches {
            v["ro_sum_mismatches"] = json!(n);
        }
        v
    }

    /// The report as YCSB-style text lines.
    pub fn text(&self) -> String {
        let s = &self.settings;
        let mut out = String::new();
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let _ = writeln!(
            out,
            "# meridian-ycsb workload={} target={} threads={} records={} cc={} distribution={}{} {} groups={} replicas={} nodes={}{}",
            s.workload,
            s.target,
            s.threads,
            s.records,
            s.cc,
            s.distribution,
            if s.distribution == "uniform" {
                String::new()
            } else {
                format!(" zipf={}", s.zipf_theta)
            },
            if s.embedded { "embedded" } else { "external" },
            s.groups,
            s.replicas,
            s.nodes,
            s.epsilon_ms
                .map(|e| format!(" epsilon_ms={e}"))
                .unwrap_or_default(),
        );
        if let Some(l) = &self.load {
            let _ = writeln!(
                out,
                "[LOAD], Records, {}\n[LOAD], RunTime(ms), {}\n[LOAD], Throughput(records/sec), {:.1}",
                l.records,
                l.elapsed.as_millis(),
                l.records as f64 / l.elapsed.as_secs_f64().max(1e-9)
            );
        }
        let _ = writeln!(out, "[OVERALL], RunTime(ms), {}", self.elapsed.as_millis());
        let _ = writeln!(
            out,
            "[OVERALL], Throughput(ops/sec), {:.1}",
            self.throughput()
        );
        if self.interrupted {
            let _ = writeln!(out, "[OVERALL], Interrupted, true");
        }
        for (op, st) in self.ran() {
            let n = op.name();
            let h = &st.latency;
            let _ = writeln!(out, "[{n}], Operations, {}", h.len());
            let _ = writeln!(
                out,
                "[{n}], Throughput(ops/sec), {:.1}",
                h.len() as f64 / secs
            );
            if !h.is_empty() {
                let _ = writeln!(out, "[{n}], AverageLatency(us), {:.1}", h.mean());
                let _ = writeln!(out, "[{n}], MinLatency(us), {}", h.min());
                let _ = writeln!(out, "[{n}], MaxLatency(us), {}", h.max());
                for (label, q) in [
                    ("50th", 0.50),
                    ("95th", 0.95),
                    ("99th", 0.99),
                    ("99.9th", 0.999),
                ] {
                    let _ = writeln!(
                        out,
                        "[{n}], {label}PercentileLatency(us), {}",
                        h.value_at_quantile(q)
                    );
                }
            }
            let _ = writeln!(out, "[{n}], Failed, {}", st.failures());
            for (r, c) in &st.failed {
                let _ = writeln!(out, "[{n}-FAILED], {r}, {c}");
            }
        }
        let aborts = self.aborts_by_reason();
        let _ = writeln!(out, "[ABORTS], Total, {}", aborts.values().sum::<u64>());
        for (r, c) in &aborts {
            let _ = writeln!(out, "[ABORTS], {r}, {c}");
        }
        let _ = writeln!(out, "[RETRIES], Total, {}", self.retries);
        for (r, c) in &self.retries_by_reason {
            let _ = writeln!(out, "[RETRIES], {r}, {c}");
        }
        match &self.commit_wait {
            CommitWait::Measured { mean_us, commits } => {
                let _ = writeln!(
                    out,
                    "[COMMIT-WAIT], AverageLatency(us), {mean_us:.1}\n[COMMIT-WAIT], Commits, {commits}\n[COMMIT-WAIT], Measures, the nodes' commit timestamp to acknowledgement (commit wait and the replication after the timestamp is chosen)"
                );
            }
            CommitWait::NotMeasured(why) => {
                let _ = writeln!(out, "[COMMIT-WAIT], not measured, {why}");
            }
        }
        if let Some(f) = &self.wal_fsync {
            let _ = writeln!(
                out,
                "[WAL-FSYNC], AverageLatency(us), {:.1}\n[WAL-FSYNC], Count, {}\n[WAL-FSYNC], Over1s, {}",
                f.mean_us, f.count, f.over_1s
            );
        }
        if let Some(c) = &self.transfer_check {
            let _ = writeln!(
                out,
                "[TRANSFER-CHECK], {}, total before {} ({} accounts), after {} ({} accounts){}",
                if c.passed() { "PASSED" } else { "FAILED" },
                c.before.total,
                c.before.accounts,
                c.after.total,
                c.after.accounts,
                c.expected
                    .map(|e| format!(", expected {e}"))
                    .unwrap_or_default()
            );
        }
        if let Some(n) = self.ro_sum_mismatches {
            let _ = writeln!(
                out,
                "[RO-SUM-CHECK], {}, {n} wrong sums",
                if n == 0 { "PASSED" } else { "FAILED" }
            );
        }
        out
    }
}
