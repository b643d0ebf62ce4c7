//! The report: YCSB-style text on stdout and the same as JSON
//! (`--json FILE`).
//!
//! Text: every line is `[SECTION], Metric, Value` (a [`Row`]), as YCSB
//! prints it, so YCSB's and go-ycsb's users parse it as three-field CSV;
//! explanations live in `meridian-ycsb --help` and the README, never in
//! the report. Sections, in order: `[SETTINGS]`; `[LOAD]` when this
//! invocation loaded; `[OVERALL]`; per operation kind that ran, `[OP]`
//! (`Operations`, `Throughput(ops/sec)`, `AverageLatency(us)`,
//! `MinLatency(us)`, `MaxLatency(us)`, the [`PERCENTILES`] as
//! `50thPercentileLatency(us)` … `99.99PercentileLatency(us)`, then
//! `Return=OK` and `Return=<REASON>` counts) followed, when some failed,
//! by `[OP-FAILED]` with the failures' latencies; `[ABORTS]`, `[RETRIES]`;
//! `[COMMIT-WAIT]` and `[WAL-FSYNC]` (embedded cluster); `[TRANSFER-CHECK]`
//! and `[RO-SUM-CHECK]` where they apply.
//!
//! JSON layout: `throughput_ops_s` (successful operations per second over
//! the run; committed transactions per second for `transfer`), `settings`,
//! `load`, `operations` (one object per operation kind that ran: `count`,
//! `failed`, `failed_by_reason`, `throughput_ops_s`, and `mean_us`,
//! `p50_us`, `p90_us`, `p95_us`, `p99_us`, `p999_us`, `p9999_us`,
//! `min_us`, `max_us` of the successful ones; `failed_latency`, the same
//! of the failed ones), `aborts_by_reason` (read-write transactions that
//! failed after the client's retries), `retries` and `retries_by_reason`,
//! `commit_wait` (`mean_us` or `null` with a `note`), `wal_fsync` (the
//! embedded nodes' fdatasyncs: `mean_us`, `count`, `over_1s`; `null` for
//! an external cluster), `transfer_check`
//! and `ro_sum_mismatches` where they apply, and `timeline` (per second:
//! `ops`, `p99_us`, and `p99_us_by_op`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
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
    /// The nodes' metrics were read, but nothing committed during the run.
    NoCommits,
    /// Not measured: an external cluster's metrics are not read.
    NotRead,
}

/// Why a `--json` or `--plot` file could not be written; checked before
/// the run by [`check_writable`], so a long run is not lost to a typo.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The path names a directory.
    #[error("{0} is a directory")]
    IsDirectory(PathBuf),
    /// The file cannot be opened (or created) for writing.
    #[error("cannot write {path}: {source}")]
    NotWritable {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Checks that the report file `path` can be written, without changing
/// it: an existing file is opened for appending and left as it was; a new
/// one is created and removed again.
pub fn check_writable(path: &Path) -> Result<(), OutputError> {
    if path.is_dir() {
        return Err(OutputError::IsDirectory(path.to_path_buf()));
    }
    let not_writable = |source| OutputError::NotWritable {
        path: path.to_path_buf(),
        source,
    };
    if path.exists() {
        std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(not_writable)?;
        return Ok(());
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(not_writable)?;
    std::fs::remove_file(path).map_err(not_writable)
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
    /// The seconds of the run in which the embedded cluster split a range
    /// (`None`: an external cluster, whose splits are not watched).
    pub split_seconds: Option<Vec<u64>>,
}

/// Seconds either side of a split's second that count as "during the
/// split" (its refusals and the clients' refreshes straddle the second
/// the split was counted in).
pub const SPLIT_WINDOW_SECONDS: u64 = 1;

/// Latencies during splits beside those of the rest of the run.
#[derive(Clone, Debug)]
pub struct SplitLatency {
    /// Splits made during the run.
    pub splits: u64,
    /// Seconds within [`SPLIT_WINDOW_SECONDS`] of a split.
    pub seconds_during: u64,
    /// p99 of the operations in those seconds, µs (`None`: none).
    pub p99_during_us: Option<u64>,
    /// p99 of the operations in every other second, µs.
    pub p99_steady_us: Option<u64>,
}

/// The p99 of the seconds within [`SPLIT_WINDOW_SECONDS`] of a split in
/// `split_seconds` beside that of the other seconds of `timeline`.
pub fn split_latency(timeline: &[Second], split_seconds: &[u64]) -> SplitLatency {
    let during = |i: u64| {
        split_seconds
            .iter()
            .any(|s| i + SPLIT_WINDOW_SECONDS >= *s && i <= s + SPLIT_WINDOW_SECONDS)
    };
    let mut hot: Option<Histogram<u64>> = None;
    let mut calm: Option<Histogram<u64>> = None;
    let mut seconds_during = 0;
    for (i, sec) in timeline.iter().enumerate() {
        let into = if during(i as u64) {
            seconds_during += 1;
            &mut hot
        } else {
            &mut calm
        };
        match into {
            Some(h) => {
                let _ = h.add(&sec.latency);
            }
            None => *into = Some(sec.latency.clone()),
        }
    }
    let p99 = |h: Option<Histogram<u64>>| {
        h.filter(|h| !h.is_empty())
            .map(|h| h.value_at_quantile(0.99))
    };
    SplitLatency {
        splits: split_seconds.len() as u64,
        seconds_during,
        p99_during_us: p99(hot),
        p99_steady_us: p99(calm),
    }
}

/// The `[SPLITS]` section: splits during the run and the p99 during them
/// beside the steady p99.
fn split_rows(s: &SplitLatency) -> Vec<Row> {
    // A latency with no operation behind it is left out, not printed as
    // a non-number.
    let mut rows = vec![
        Row::new("SPLITS", "Count", s.splits),
        Row::new("SPLITS", "SecondsDuringSplits", s.seconds_during),
    ];
    if let Some(v) = s.p99_during_us {
        rows.push(Row::new(
            "SPLITS",
            "99thPercentileLatencyDuringSplits(us)",
            v,
        ));
    }
    if let Some(v) = s.p99_steady_us {
        rows.push(Row::new("SPLITS", "99thPercentileLatencySteady(us)", v));
    }
    rows
}

fn latency_json(h: &Histogram<u64>) -> Value {
    if h.is_empty() {
        return json!({});
    }
    json!({
        "mean_us": round1(h.mean()),
        "p50_us": h.value_at_quantile(0.50),
        "p90_us": h.value_at_quantile(0.90),
        "p95_us": h.value_at_quantile(0.95),
        "p99_us": h.value_at_quantile(0.99),
        "p999_us": h.value_at_quantile(0.999),
        "p9999_us": h.value_at_quantile(0.9999),
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
                "failed_latency": latency_json(&st.failed_latency),
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
            CommitWait::NoCommits => {
                json!({ "mean_us": null, "commits": 0, "note": "no commits during the run" })
            }
            CommitWait::NotRead => json!({
                "mean_us": null,
                "note": "an external cluster's metrics are not read: see meridian_commit_wait_seconds on its metrics endpoints",
            }),
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
                "p99_us_by_op": Op::ALL
                    .iter()
                    .filter_map(|op| sec.p99_of(*op).map(|p| (op.name().to_string(), json!(p))))
                    .collect::<serde_json::Map<_, _>>(),
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
        if let Some(secs) = &self.split_seconds {
            let l = split_latency(&self.timeline, secs);
            v["splits"] = json!({
                "count": l.splits,
                "seconds": secs,
                "seconds_during": l.seconds_during,
                "p99_during_us": l.p99_during_us,
                "p99_steady_us": l.p99_steady_us,
            });
        }
        v
    }

    /// The report as YCSB-style text: one `[SECTION], Metric, Value` line
    /// per [`Row`].
    pub fn text(&self) -> String {
        render(&self.rows())
    }

    /// The report's rows, section after section. A new section is one
    /// more function returning its rows, called here.
    pub fn rows(&self) -> Vec<Row> {
        let mut rows = settings_rows(&self.settings);
        if let Some(l) = &self.load {
            rows.extend(load_rows(l));
        }
        rows.extend(self.overall_rows());
        for (op, st) in self.ran() {
            rows.extend(operation_rows(op, st, self.elapsed));
        }
        rows.extend(self.abort_and_retry_rows());
        rows.extend(commit_wait_rows(&self.commit_wait));
        if let Some(f) = &self.wal_fsync {
            rows.extend(wal_fsync_rows(f));
        }
        if let Some(c) = &self.transfer_check {
            rows.extend(transfer_check_rows(c));
        }
        if let Some(n) = self.ro_sum_mismatches {
            rows.extend(ro_sum_check_rows(n));
        }
        if let Some(s) = &self.split_seconds {
            rows.extend(split_rows(&split_latency(&self.timeline, s)));
        }
        rows
    }

    fn overall_rows(&self) -> Vec<Row> {
        let mut rows = vec![
            Row::new("OVERALL", "RunTime(ms)", self.elapsed.as_millis()),
            Row::new(
                "OVERALL",
                "Throughput(ops/sec)",
                format!("{:.1}", self.throughput()),
            ),
        ];
        if self.interrupted {
            rows.push(Row::new("OVERALL", "Interrupted", true));
        }
        rows
    }

    fn abort_and_retry_rows(&self) -> Vec<Row> {
        let aborts = self.aborts_by_reason();
        let mut rows = vec![Row::new("ABORTS", "Total", aborts.values().sum::<u64>())];
        rows.extend(aborts.iter().map(|(r, c)| Row::new("ABORTS", r, c)));
        rows.push(Row::new("RETRIES", "Total", self.retries));
        rows.extend(
            self.retries_by_reason
                .iter()
                .map(|(r, c)| Row::new("RETRIES", r, c)),
        );
        rows
    }
}

/// One line of the text report, `[SECTION], Metric, Value`: the shape
/// YCSB prints and its users' parsers (and go-ycsb's) read, three
/// comma-separated fields. A field never holds a comma or a line break
/// ([`Row::new`] replaces them), so every line splits into exactly three.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// The section, without its brackets: `OVERALL`, `READ`, `READ-FAILED`.
    pub section: String,
    /// The metric: `Operations`, `99thPercentileLatency(us)`, `Return=OK`.
    pub metric: String,
    /// Its value.
    pub value: String,
}

/// What replaces a comma inside a field.
const COMMA_STAND_IN: char = ';';

fn field(s: &str) -> String {
    s.replace(',', &COMMA_STAND_IN.to_string())
        .replace(['\n', '\r'], " ")
        .trim()
        .to_string()
}

impl Row {
    /// A row; commas and line breaks inside a field are replaced.
    pub fn new(
        section: impl AsRef<str>,
        metric: impl AsRef<str>,
        value: impl std::fmt::Display,
    ) -> Row {
        Row {
            section: field(section.as_ref()),
            metric: field(metric.as_ref()),
            value: field(&value.to_string()),
        }
    }
}

impl std::fmt::Display for Row {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}], {}, {}", self.section, self.metric, self.value)
    }
}

/// Rows as report text, one line each.
pub fn render(rows: &[Row]) -> String {
    let mut out = String::new();
    for r in rows {
        let _ = writeln!(out, "{r}");
    }
    out
}

/// The percentiles of every latency section, with YCSB's labels (its
/// `ordinal`: `90th`, `99th`, but `99.9` and `99.99` without a suffix).
pub const PERCENTILES: [(&str, f64); 6] = [
    ("50th", 0.50),
    ("90th", 0.90),
    ("95th", 0.95),
    ("99th", 0.99),
    ("99.9", 0.999),
    ("99.99", 0.9999),
];

/// `[SETTINGS]`: how the run was made.
pub fn settings_rows(s: &Settings) -> Vec<Row> {
    let sec = "SETTINGS";
    let mut rows = vec![
        Row::new(sec, "Benchmark", "meridian-ycsb"),
        Row::new(sec, "Target", &s.target),
        Row::new(sec, "Workload", &s.workload),
        Row::new(sec, "Phase", &s.phase),
        Row::new(sec, "Threads", s.threads),
        Row::new(sec, "Records", s.records),
    ];
    if s.phase != "load" {
        if let Some(n) = s.operations {
            rows.push(Row::new(sec, "Operations", n));
        }
        if let Some(d) = s.duration {
            rows.push(Row::new(sec, "Duration(s)", d.as_secs_f64()));
        }
    }
    rows.push(Row::new(sec, "CC", &s.cc));
    rows.push(Row::new(sec, "Distribution", &s.distribution));
    if s.distribution != "uniform" {
        rows.push(Row::new(sec, "ZipfTheta", s.zipf_theta));
    }
    if s.workload == "ro-sum" {
        rows.push(Row::new(sec, "KeysPerTransaction", s.ro_keys));
    }
    rows.push(Row::new(
        sec,
        "Cluster",
        if s.embedded { "embedded" } else { "external" },
    ));
    rows.push(Row::new(sec, "Groups", s.groups));
    rows.push(Row::new(sec, "Replicas", s.replicas));
    rows.push(Row::new(sec, "Nodes", s.nodes));
    if let Some(e) = s.epsilon_ms {
        rows.push(Row::new(sec, "Epsilon(ms)", e));
    }
    rows
}

/// `[LOAD]`: the load phase (also the whole report of `load`).
pub fn load_rows(l: &LoadReport) -> Vec<Row> {
    vec![
        Row::new("LOAD", "Records", l.records),
        Row::new("LOAD", "RunTime(ms)", l.elapsed.as_millis()),
        Row::new(
            "LOAD",
            "Throughput(records/sec)",
            format!(
                "{:.1}",
                l.records as f64 / l.elapsed.as_secs_f64().max(1e-9)
            ),
        ),
    ]
}

/// `Operations`, the mean, min, max and [`PERCENTILES`] of `h`, under
/// `section` (YCSB's measurement of one name).
fn latency_rows(section: &str, h: &Histogram<u64>) -> Vec<Row> {
    let mut rows = vec![Row::new(section, "Operations", h.len())];
    if h.is_empty() {
        return rows;
    }
    rows.push(Row::new(
        section,
        "AverageLatency(us)",
        format!("{:.1}", h.mean()),
    ));
    rows.push(Row::new(section, "MinLatency(us)", h.min()));
    rows.push(Row::new(section, "MaxLatency(us)", h.max()));
    for (label, q) in PERCENTILES {
        rows.push(Row::new(
            section,
            format!("{label}PercentileLatency(us)"),
            h.value_at_quantile(q),
        ));
    }
    rows
}

/// The name of a failure reason as a YCSB `Return=` status: upper case,
/// `_` for anything but letters and digits (`not_found` → `NOT_FOUND`,
/// YCSB's own name for it).
pub fn return_code(reason: &str) -> String {
    reason
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// One operation kind as YCSB reports it: `[OP]` with the successes'
/// latencies, its throughput and a `Return=` count per status (`OK` and
/// each failure reason), then `[OP-FAILED]` with the failures' latencies
/// when some failed.
fn operation_rows(op: Op, st: &OpStats, elapsed: Duration) -> Vec<Row> {
    let n = op.name();
    let secs = elapsed.as_secs_f64().max(1e-9);
    let mut rows = latency_rows(n, &st.latency);
    rows.insert(
        1,
        Row::new(
            n,
            "Throughput(ops/sec)",
            format!("{:.1}", st.latency.len() as f64 / secs),
        ),
    );
    rows.push(Row::new(n, "Return=OK", st.latency.len()));
    for (reason, count) in &st.failed {
        rows.push(Row::new(
            n,
            format!("Return={}", return_code(reason)),
            count,
        ));
    }
    if st.failures() > 0 {
        rows.extend(latency_rows(&format!("{n}-FAILED"), &st.failed_latency));
    }
    rows
}

/// `[COMMIT-WAIT]`: the nodes' commit timestamp to acknowledgement;
/// nothing for a cluster whose metrics are not read.
fn commit_wait_rows(c: &CommitWait) -> Vec<Row> {
    match c {
        CommitWait::Measured { mean_us, commits } => vec![
            Row::new("COMMIT-WAIT", "AverageLatency(us)", format!("{mean_us:.1}")),
            Row::new("COMMIT-WAIT", "Commits", commits),
        ],
        CommitWait::NoCommits => vec![Row::new("COMMIT-WAIT", "Commits", 0)],
        CommitWait::NotRead => Vec::new(),
    }
}

/// `[WAL-FSYNC]`: the embedded nodes' fdatasyncs.
fn wal_fsync_rows(f: &FsyncStats) -> Vec<Row> {
    vec![
        Row::new(
            "WAL-FSYNC",
            "AverageLatency(us)",
            format!("{:.1}", f.mean_us),
        ),
        Row::new("WAL-FSYNC", "Count", f.count),
        Row::new("WAL-FSYNC", "Over1s", f.over_1s),
    ]
}

fn verdict(passed: bool) -> &'static str {
    if passed { "PASSED" } else { "FAILED" }
}

/// `[TRANSFER-CHECK]`: the closed economy's totals.
fn transfer_check_rows(c: &TransferCheck) -> Vec<Row> {
    let sec = "TRANSFER-CHECK";
    let mut rows = vec![
        Row::new(sec, "Result", verdict(c.passed())),
        Row::new(sec, "TotalBefore", c.before.total),
        Row::new(sec, "AccountsBefore", c.before.accounts),
        Row::new(sec, "TotalAfter", c.after.total),
        Row::new(sec, "AccountsAfter", c.after.accounts),
    ];
    if let Some(e) = c.expected {
        rows.push(Row::new(sec, "ExpectedTotal", e));
    }
    rows
}

/// `[RO-SUM-CHECK]`: read-only transactions that saw a wrong sum.
fn ro_sum_check_rows(mismatches: u64) -> Vec<Row> {
    vec![
        Row::new("RO-SUM-CHECK", "Result", verdict(mismatches == 0)),
        Row::new("RO-SUM-CHECK", "WrongSums", mismatches),
    ]
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::stats::Recorder;

    /// How a YCSB user's script reads a report: every line split on
    /// commas into exactly `[SECTION]`, metric and value.
    fn parse_ycsb_csv(text: &str) -> BTreeMap<(String, String), String> {
        let mut m = BTreeMap::new();
        for line in text.lines() {
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            assert_eq!(fields.len(), 3, "not a 3-field CSV line: {line:?}");
            let section = fields[0]
                .strip_prefix('[')
                .and_then(|f| f.strip_suffix(']'))
                .unwrap_or_else(|| panic!("no [SECTION] in {line:?}"));
            assert!(!section.is_empty() && !section.contains(' '), "{line:?}");
            assert!(!fields[1].is_empty() && !fields[2].is_empty(), "{line:?}");
            m.insert(
                (section.to_string(), fields[1].to_string()),
                fields[2].to_string(),
            );
        }
        m
    }

    fn settings() -> Settings {
        Settings {
            target: "meridian".into(),
            workload: "transfer".into(),
            phase: "run".into(),
            threads: 4,
            records: 100,
            operations: None,
            duration: Some(Duration::from_secs(3)),
            cc: "2pl".into(),
            distribution: "zipfian".into(),
            zipf_theta: 0.99,
            ro_keys: 10,
            embedded: false,
            groups: 3,
            replicas: 3,
            nodes: 3,
            epsilon_ms: Some(1.0),
            endpoints: vec!["127.0.0.1:1".into(), "127.0.0.1:2".into()],
        }
    }

    /// A report with every section: successes and failures of reads and
    /// transfers, a load, retries, commit wait, fsyncs and both checks.
    fn full_report() -> Report {
        let r = Recorder::new();
        for us in [200, 300, 400] {
            r.record(Op::Read, Duration::from_micros(us), Ok(()), 0);
        }
        r.record(
            Op::Read,
            Duration::from_micros(900),
            Err("not_found".into()),
            0,
        );
        r.record(Op::Transfer, Duration::from_millis(5), Ok(()), 1);
        for _ in 0..2 {
            r.record(
                Op::Transfer,
                Duration::from_millis(20),
                Err("wounded".into()),
                4,
            );
        }
        r.record(
            Op::Transfer,
            Duration::from_millis(30),
            Err("outcome, unknown\nsomewhere".into()),
            0,
        );
        let (ops, timeline, retries) = r.snapshot();
        let audit = Audit {
            total: 100_000,
            accounts: 100,
        };
        Report {
            settings: settings(),
            load: Some(LoadReport {
                records: 100,
                elapsed: Duration::from_millis(250),
            }),
            elapsed: Duration::from_secs(2),
            ops,
            timeline,
            retries,
            retries_by_reason: BTreeMap::from([("wounded".to_string(), retries)]),
            commit_wait: CommitWait::Measured {
                mean_us: 1234.5,
                commits: 7,
            },
            wal_fsync: Some(FsyncStats {
                mean_us: 800.0,
                count: 10,
                over_1s: 0,
            }),
            transfer_check: Some(TransferCheck {
                before: audit,
                after: audit,
                expected: Some(100_000),
            }),
            ro_sum_mismatches: Some(0),
            interrupted: true,
            split_seconds: Some(vec![3]),
        }
    }

    #[test]
    fn every_report_line_parses_as_a_three_field_ycsb_csv_row() {
        let text = full_report().text();
        let m = parse_ycsb_csv(&text);
        for section in [
            "SETTINGS",
            "LOAD",
            "OVERALL",
            "READ",
            "READ-FAILED",
            "TRANSFER",
            "TRANSFER-FAILED",
            "ABORTS",
            "RETRIES",
            "COMMIT-WAIT",
            "WAL-FSYNC",
            "TRANSFER-CHECK",
            "RO-SUM-CHECK",
        ] {
            assert!(
                m.keys().any(|(s, _)| s == section),
                "no [{section}] in\n{text}"
            );
        }
        assert_eq!(m[&("TRANSFER-CHECK".into(), "Result".into())], "PASSED");
        assert_eq!(m[&("OVERALL".into(), "Interrupted".into())], "true");
        // Numbers where a parser expects numbers.
        for ((s, metric), v) in &m {
            if metric.contains("(us)") || metric.starts_with("Return=") || metric == "Operations" {
                assert!(v.parse::<f64>().is_ok(), "[{s}], {metric}, {v}");
            }
        }
    }

    #[test]
    fn split_latency_puts_the_seconds_around_each_split_apart_from_the_rest() {
        let second = |us: u64| {
            let mut s = Second::new();
            for _ in 0..100 {
                s.latency.saturating_record(us);
            }
            s
        };
        // Ten seconds at 1 ms, a split in second 5 whose neighbours are slow.
        let timeline: Vec<Second> = (0..10)
            .map(|i| second(if (4..=6).contains(&i) { 50_000 } else { 1_000 }))
            .collect();
        let l = split_latency(&timeline, &[5]);
        assert_eq!(
            (l.splits, l.seconds_during),
            (1, 2 * SPLIT_WINDOW_SECONDS + 1)
        );
        assert!(l.p99_during_us.is_some_and(|p| p >= 49_000), "{l:?}");
        assert!(l.p99_steady_us.is_some_and(|p| p <= 1_100), "{l:?}");
        // No split: every second is steady, and no during-split line.
        let l = split_latency(&timeline, &[]);
        assert_eq!((l.seconds_during, l.p99_during_us), (0, None));
        assert!(
            split_rows(&l)
                .iter()
                .all(|r| !r.to_string().contains("DuringSplits(us)"))
        );
    }

    #[test]
    fn a_field_never_carries_a_comma_or_a_line_break() {
        let row = Row::new("A,B", "x\ny", "1,2");
        assert_eq!(row.to_string(), "[A;B], x y, 1;2");
        let text = full_report().text();
        assert!(
            text.contains("[TRANSFER], Return=OUTCOME__UNKNOWN_SOMEWHERE, 1"),
            "{text}"
        );
    }

    #[test]
    fn failures_are_reported_as_ycsb_does_with_return_codes_and_a_failed_section() {
        let text = full_report().text();
        let m = parse_ycsb_csv(&text);
        let get = |s: &str, k: &str| m[&(s.to_string(), k.to_string())].clone();
        assert_eq!(get("READ", "Operations"), "3");
        assert_eq!(get("READ", "Return=OK"), "3");
        assert_eq!(get("READ", "Return=NOT_FOUND"), "1");
        assert_eq!(get("READ-FAILED", "Operations"), "1");
        assert_eq!(get("READ-FAILED", "MinLatency(us)"), "900");
        assert_eq!(get("TRANSFER", "Return=OK"), "1");
        assert_eq!(get("TRANSFER", "Return=WOUNDED"), "2");
        assert_eq!(get("TRANSFER-FAILED", "Operations"), "3");
        for (label, _) in PERCENTILES {
            let metric = format!("{label}PercentileLatency(us)");
            let p: u64 = get("TRANSFER-FAILED", &metric).parse().expect("µs");
            assert!((19_000..=31_000).contains(&p), "{metric}: {p}");
        }
        // YCSB's order: the operation's latencies, its Return= lines, then
        // its -FAILED section.
        let lines: Vec<&str> = text.lines().collect();
        let at = |needle: &str| {
            lines
                .iter()
                .position(|l| l.starts_with(needle))
                .unwrap_or_else(|| panic!("{needle} missing:\n{text}"))
        };
        assert!(at("[READ], 99.99PercentileLatency(us)") < at("[READ], Return=OK"));
        assert!(at("[READ], Return=NOT_FOUND") < at("[READ-FAILED], Operations"));
        // No failure, no -FAILED section.
        let only_ok = Recorder::new();
        only_ok.record(Op::Read, Duration::from_micros(100), Ok(()), 0);
        let mut ok = full_report();
        ok.ops = only_ok.snapshot().0;
        let text = ok.text();
        assert!(text.contains("[READ], Return=OK, 1\n"), "{text}");
        assert!(!text.contains("-FAILED]"), "{text}");
    }

    #[test]
    fn percentiles_use_ycsbs_exact_names() {
        let text = full_report().text();
        for metric in [
            "AverageLatency(us)",
            "MinLatency(us)",
            "MaxLatency(us)",
            "50thPercentileLatency(us)",
            "90thPercentileLatency(us)",
            "95thPercentileLatency(us)",
            "99thPercentileLatency(us)",
            "99.9PercentileLatency(us)",
            "99.99PercentileLatency(us)",
        ] {
            assert!(text.contains(&format!("[READ], {metric}, ")), "{metric}");
        }
        assert!(!text.contains("99.9th"), "YCSB writes 99.9, not 99.9th");
        let v = full_report().json();
        let read = &v["operations"]["READ"];
        for k in ["p90_us", "p9999_us"] {
            assert!(read[k].as_u64().is_some(), "{k}: {read}");
        }
        assert_eq!(read["failed_latency"]["min_us"].as_u64(), Some(900));
    }

    #[test]
    fn commit_wait_not_read_from_an_external_cluster_leaves_no_line() {
        let mut r = full_report();
        r.commit_wait = CommitWait::NotRead;
        assert!(!r.text().contains("[COMMIT-WAIT]"));
        assert!(r.json()["commit_wait"]["mean_us"].is_null());
        r.commit_wait = CommitWait::NoCommits;
        assert!(r.text().contains("[COMMIT-WAIT], Commits, 0\n"));
    }

    #[test]
    fn an_unwritable_report_path_is_refused_and_a_writable_one_left_untouched() {
        let dir = tempfile::tempdir().expect("temp dir");
        let missing = dir.path().join("no-such-dir").join("r.json");
        assert!(matches!(
            check_writable(&missing),
            Err(OutputError::NotWritable { .. })
        ));
        assert!(matches!(
            check_writable(dir.path()),
            Err(OutputError::IsDirectory(_))
        ));
        let fresh = dir.path().join("r.json");
        check_writable(&fresh).expect("writable");
        assert!(!fresh.exists(), "the check leaves no file behind");
        std::fs::write(&fresh, "kept").expect("write");
        check_writable(&fresh).expect("writable");
        assert_eq!(std::fs::read_to_string(&fresh).expect("read"), "kept");
    }
}
