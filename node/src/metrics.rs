//! Prometheus text metrics (docs/operations.md "Metrics"): counters and
//! fixed-bucket histograms on atomics, gauges of every group replica read
//! from the loop's published views, the build and the process (memory,
//! open files, CPU, from `/proc/self`), rendered on `GET /metrics` by a
//! small HTTP endpoint that also answers `/health` and `/ready` and serves
//! the web console ([`crate::console`]). Recording
//! a request's figures is a few relaxed atomic adds: no lock, no allocation
//! on the request path (the per-group counters take an uncontended lock
//! once per loop output that changes them).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use meridian_txn::{AbortReason, GroupId, Reply, Response, TxnError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// The count.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A count kept per group; its total is the node's.
#[derive(Debug, Default)]
pub struct GroupCounter(parking_lot::Mutex<BTreeMap<GroupId, u64>>);

impl GroupCounter {
    /// Adds one for `group`.
    pub fn inc(&self, group: GroupId) {
        self.add(group, 1);
    }
    /// Adds `n` for `group`.
    pub fn add(&self, group: GroupId, n: u64) {
        *self.0.lock().entry(group).or_default() += n;
    }
    /// The node's count: every group's.
    pub fn get(&self) -> u64 {
        self.0.lock().values().sum()
    }
    /// `group`'s count.
    pub fn get_group(&self, group: GroupId) -> u64 {
        self.0.lock().get(&group).copied().unwrap_or(0)
    }

    /// Renders one series per group, `NAME{group="G"} N`.
    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (g, n) in self.0.lock().iter() {
            let _ = writeln!(out, "{name}{{group=\"{g}\"}} {n}");
        }
    }
}

/// Upper bounds of histogram buckets, in microseconds (50 µs to 10 s).
const LATENCY_BUCKETS_US: [u64; 16] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 10_000_000,
];

/// Upper bounds of batch-size buckets.
const SIZE_BUCKETS: [u64; 12] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 8192];

/// A histogram with fixed buckets.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [u64],
    counts: Vec<AtomicU64>,
    sum: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [u64]) -> Histogram {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// Records one value (in the histogram's unit).
    pub fn observe(&self, v: u64) {
        let i = self.bounds.partition_point(|&b| b < v);
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(v, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The histogram's figures now: each bucket's count (not cumulative),
    /// the sum and the count. Read bucket by bucket without a lock, so a
    /// value recorded meanwhile may show in one figure and not another.
    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            bounds: self.bounds,
            counts: self
                .counts
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect(),
            sum: self.sum.load(Ordering::Relaxed),
            count: self.count.load(Ordering::Relaxed),
        }
    }

    /// Records a duration in microseconds.
    pub fn observe_duration(&self, d: Duration) {
        self.observe(d.as_micros().min(u128::from(u64::MAX)) as u64);
    }

    fn render(&self, out: &mut String, name: &str, help: &str, per_unit: f64) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, b) in self.bounds.iter().enumerate() {
            cumulative += self.counts[i].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{}\"}} {cumulative}",
                *b as f64 / per_unit
            );
        }
        cumulative += self.counts[self.bounds.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let sum = self.sum.load(Ordering::Relaxed) as f64 / per_unit;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {}", self.count.load(Ordering::Relaxed));
    }
}

/// A histogram's figures at one moment ([`Histogram::snapshot`]), or the
/// difference of two ([`HistogramSnapshot::since`]): what was recorded in
/// between.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistogramSnapshot {
    /// Upper bounds of the buckets, in the histogram's unit.
    pub bounds: &'static [u64],
    /// Values per bucket: one more than `bounds`, the last above them all.
    pub counts: Vec<u64>,
    /// Sum of the values.
    pub sum: u64,
    /// Number of values.
    pub count: u64,
}

impl HistogramSnapshot {
    /// What was recorded between `earlier` (a snapshot of the same
    /// histogram) and this one.
    pub fn since(&self, earlier: &HistogramSnapshot) -> HistogramSnapshot {
        debug_assert_eq!(self.bounds, earlier.bounds, "snapshots of one histogram");
        HistogramSnapshot {
            bounds: self.bounds,
            counts: self
                .counts
                .iter()
                .zip(&earlier.counts)
                .map(|(a, b)| a.saturating_sub(*b))
                .collect(),
            sum: self.sum.saturating_sub(earlier.sum),
            count: self.count.saturating_sub(earlier.count),
        }
    }

    /// The `q`-quantile (0 ≤ q ≤ 1) of the values, interpolated linearly
    /// within its bucket as Prometheus' `histogram_quantile` does; the
    /// highest bound for a quantile above them all; `None` without values.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total: u64 = self.counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total as f64;
        let mut below = 0u64;
        for (i, &n) in self.counts.iter().enumerate() {
            if n > 0 && (below + n) as f64 >= rank {
                let Some(&upper) = self.bounds.get(i) else {
                    return self.bounds.last().map(|&b| b as f64);
                };
                let lower = if i == 0 { 0 } else { self.bounds[i - 1] };
                let within = (rank - below as f64) / n as f64;
                return Some(lower as f64 + (upper - lower) as f64 * within);
            }
            below += n;
        }
        self.bounds.last().map(|&b| b as f64)
    }
}

/// Abort reasons in the order of the counters.
const ABORT_REASONS: [(AbortReason, &str); 7] = [
    (AbortReason::Wounded, "wounded"),
    (AbortReason::LeaderChanged, "leader_changed"),
    (AbortReason::Inactive, "inactive"),
    (AbortReason::ClientAbort, "client_abort"),
    (AbortReason::Overloaded, "overloaded"),
    (AbortReason::Unknown, "unknown"),
    (AbortReason::Conflict, "conflict"),
];

/// Every metric of one node.
#[derive(Debug)]
pub struct Metrics {
    /// Client-observed commit latency at the node (request in to answer
    /// out), µs.
    pub commit_latency: Histogram,
    /// Commit wait: time from the commit timestamp's arrival at the node
    /// to `TT.after(s)`, estimated at the answer as `now - s`, µs.
    pub commit_wait: Histogram,
    /// Reads at the node, request to answer: transactional reads and
    /// scans (locking or optimistic) and lock-free reads, µs.
    pub read_latency: Histogram,
    /// Lock waits: every read request of a locking transaction, from its
    /// arrival to its answer (the wait for its locks included), µs.
    pub lock_wait: Histogram,
    /// WAL fsync latency, µs.
    pub fsync_latency: Histogram,
    /// Persist requests per fsync.
    pub fsync_batch: Histogram,
    /// Commits answered.
    pub commits: Counter,
    /// Aborts answered, by reason.
    pub aborts: [Counter; 7],
    /// Other errors answered.
    pub errors: Counter,
    /// Leaderships won by this node's replicas.
    pub elections: GroupCounter,
    /// Log entries applied.
    pub applied: GroupCounter,
    /// Snapshots restored (a replica behind its leader's compacted log).
    pub snapshots_restored: GroupCounter,
    /// Peer messages dropped because a peer's queue was full.
    pub peer_drops: Counter,
    /// Peer message batches sent.
    pub peer_batches: Counter,
    /// `t_safe` lag of this node's replicas (now − t_safe), µs, sampled
    /// whenever the driver publishes its views (at least every 100 ms).
    pub t_safe_lag: Histogram,
    /// Paxos round trips of this node's leaders: an `Accept` out to its
    /// `Accepted` back, the acceptor's fsync included, µs.
    pub paxos_round_trip: Histogram,
    /// Automatic splits this node made, by reason ([`SPLIT_REASONS`]).
    pub auto_splits: [Counter; 2],
    /// The console's latency of the last minutes, interval by interval.
    pub history: crate::console::LatencyHistory,
}

/// The reasons of automatic splits, in [`Metrics::auto_splits`]' order.
pub const SPLIT_REASONS: [&str; 2] = ["size", "load"];

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            commit_latency: Histogram::new(&LATENCY_BUCKETS_US),
            commit_wait: Histogram::new(&LATENCY_BUCKETS_US),
            read_latency: Histogram::new(&LATENCY_BUCKETS_US),
            lock_wait: Histogram::new(&LATENCY_BUCKETS_US),
            fsync_latency: Histogram::new(&LATENCY_BUCKETS_US),
            fsync_batch: Histogram::new(&SIZE_BUCKETS),
            commits: Counter::default(),
            aborts: Default::default(),
            errors: Counter::default(),
            elections: GroupCounter::default(),
            applied: GroupCounter::default(),
            snapshots_restored: GroupCounter::default(),
            peer_drops: Counter::default(),
            peer_batches: Counter::default(),
            t_safe_lag: Histogram::new(&LATENCY_BUCKETS_US),
            paxos_round_trip: Histogram::new(&LATENCY_BUCKETS_US),
            auto_splits: Default::default(),
            history: Default::default(),
        }
    }
}

impl Metrics {
    /// Counts an automatic split made for `reason` (one of
    /// [`SPLIT_REASONS`]; another is not counted).
    pub fn count_split(&self, reason: &str) {
        if let Some(i) = SPLIT_REASONS.iter().position(|r| *r == reason) {
            self.auto_splits[i].inc();
        }
    }

    /// Records one fsync of `batch` persist requests.
    pub fn observe_fsync(&self, took: Duration, batch: usize) {
        self.fsync_latency.observe_duration(took);
        self.fsync_batch.observe(batch as u64);
    }

    /// Records an answer's outcome.
    pub fn observe_reply(&self, reply: &Reply) {
        match reply {
            Ok(Response::Committed { .. }) => self.commits.inc(),
            Ok(_) => {}
            Err(TxnError::Aborted { reason, .. }) => {
                if let Some(i) = ABORT_REASONS.iter().position(|(r, _)| r == reason) {
                    self.aborts[i].inc();
                }
            }
            Err(_) => self.errors.inc(),
        }
    }

    /// The metrics in Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let us = 1e6;
        self.commit_latency.render(
            &mut out,
            "meridian_commit_latency_seconds",
            "Commit latency at the node, request to answer.",
            us,
        );
        self.commit_wait.render(
            &mut out,
            "meridian_commit_wait_seconds",
            "Time from a commit timestamp to its acknowledgement (commit wait and replication).",
            us,
        );
        self.read_latency.render(
            &mut out,
            "meridian_read_latency_seconds",
            "Reads at the node, request to answer: transactional reads and scans, lock-free reads.",
            us,
        );
        self.lock_wait.render(
            &mut out,
            "meridian_lock_wait_seconds",
            "Locking reads of transactions, request to answer: every read, waits for locks included.",
            us,
        );
        self.fsync_latency.render(
            &mut out,
            "meridian_wal_fsync_seconds",
            "Write-ahead log fdatasync latency.",
            us,
        );
        self.fsync_batch.render(
            &mut out,
            "meridian_wal_batch_requests",
            "Persist requests made durable by one fdatasync.",
            1.0,
        );
        self.t_safe_lag.render(
            &mut out,
            "meridian_t_safe_lag_seconds",
            "How far each replica's safe time trails its clock, sampled.",
            us,
        );
        self.paxos_round_trip.render(
            &mut out,
            "meridian_paxos_round_trip_seconds",
            "Paxos round trips from a leader: Accept out, Accepted back (acceptor fsync included).",
            us,
        );
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        };
        counter(
            &mut out,
            "meridian_commits_total",
            "Commits acknowledged.",
            self.commits.get(),
        );
        let _ = writeln!(
            out,
            "# HELP meridian_aborts_total Aborts answered, by reason.\n# TYPE meridian_aborts_total counter"
        );
        for (i, (_, name)) in ABORT_REASONS.iter().enumerate() {
            let _ = writeln!(
                out,
                "meridian_aborts_total{{reason=\"{name}\"}} {}",
                self.aborts[i].get()
            );
        }
        counter(
            &mut out,
            "meridian_errors_total",
            "Other errors answered.",
            self.errors.get(),
        );
        self.elections.render(
            &mut out,
            "meridian_elections_total",
            "Leaderships won by this node's replicas, by group.",
        );
        self.applied.render(
            &mut out,
            "meridian_applied_entries_total",
            "Log entries applied, by group.",
        );
        self.snapshots_restored.render(
            &mut out,
            "meridian_snapshots_restored_total",
            "Snapshots restored by this node's replicas (catching up behind a compacted log), by group.",
        );
        counter(
            &mut out,
            "meridian_peer_drops_total",
            "Peer messages dropped at a full queue.",
            self.peer_drops.get(),
        );
        counter(
            &mut out,
            "meridian_peer_batches_total",
            "Peer message batches sent (Paxos round trips are about two per commit batch).",
            self.peer_batches.get(),
        );
        let _ = writeln!(
            out,
            "# HELP meridian_auto_splits_total Automatic range splits this node made, by reason.\n# TYPE meridian_auto_splits_total counter"
        );
        for (i, reason) in SPLIT_REASONS.iter().enumerate() {
            let _ = writeln!(
                out,
                "meridian_auto_splits_total{{reason=\"{reason}\"}} {}",
                self.auto_splits[i].get()
            );
        }
        out
    }
}

/// The roles a replica's `meridian_group_role` gauge tells apart.
pub const ROLES: [&str; 4] = ["leader", "candidate", "follower", "learner"];

/// The role of a replica as metrics and status name it: its Paxos role,
/// or `learner` when it is not a voter of its group (a replica waiting to
/// be added).
pub fn role_name(view: &crate::runtime::GroupView, me: meridian_paxos::NodeId) -> &'static str {
    use meridian_paxos::Role;
    if !view.voters.contains(&me) {
        return "learner";
    }
    match view.role {
        Some(Role::Leader) => "leader",
        Some(Role::Candidate) => "candidate",
        Some(Role::Follower) | None => "follower",
    }
}

/// Every metric of the node behind `shared`: the build, the process, the
/// counters and histograms of [`Metrics`], and one gauge per group replica
/// for its role, progress and safe-time lag.
pub fn render_node(shared: &crate::service::Shared) -> String {
    let mut out = String::new();
    let me = shared.cfg.node_id;
    let _ = writeln!(
        out,
        "# HELP meridian_build_info The running build: its version; always 1.\n# TYPE meridian_build_info gauge\nmeridian_build_info{{version=\"{}\",node=\"{me}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    render_process(&mut out);
    out.push_str(&shared.metrics.render());
    let ready = crate::health::readiness(shared).ready;
    gauge_header(
        &mut out,
        "meridian_ready",
        "1 when GET /ready answers 200: clock in bound, not draining, every replica's safe time in bound.",
    );
    let _ = writeln!(out, "meridian_ready {}", u8::from(ready));
    let now = shared.clock.now();
    let views: Vec<crate::runtime::GroupView> = shared.views.read().values().cloned().collect();
    type Figure = (
        &'static str,
        &'static str,
        fn(
            &crate::runtime::GroupView,
            meridian_paxos::NodeId,
            meridian_truetime::TtInterval,
        ) -> f64,
    );
    let figures: [Figure; 6] = [
        (
            "meridian_group_leader",
            "1 when this node's replica of the group leads it and serves.",
            |v, _, _| f64::from(u8::from(v.leading)),
        ),
        (
            "meridian_group_chosen_slot",
            "Highest log slot this replica knows chosen.",
            |v, _, _| v.chosen as f64,
        ),
        (
            "meridian_group_applied_slot",
            "Highest log slot this replica has applied.",
            |v, _, _| v.applied as f64,
        ),
        (
            "meridian_group_active_txns",
            "Transactions active at this replica (at a leader).",
            |v, _, _| v.active_txns as f64,
        ),
        (
            "meridian_group_voters",
            "Voters of the group, as this replica knows them.",
            |v, _, _| v.voters.len() as f64,
        ),
        (
            "meridian_group_safe_time_lag_seconds",
            "How far this replica's safe time trails its clock now (+Inf before it has one).",
            |v, _, now| {
                crate::health::safe_time_lag(now, v.t_safe)
                    .map_or(f64::INFINITY, |d| d.as_secs_f64())
            },
        ),
    ];
    for (name, help, f) in figures {
        gauge_header(&mut out, name, help);
        for v in &views {
            let x = f(v, me, now);
            if x.is_infinite() {
                let _ = writeln!(out, "{name}{{group=\"{}\"}} +Inf", v.group);
            } else {
                let _ = writeln!(out, "{name}{{group=\"{}\"}} {x}", v.group);
            }
        }
    }
    gauge_header(
        &mut out,
        "meridian_group_role",
        "1 for the role this node's replica of the group has, 0 for the others.",
    );
    for v in &views {
        let role = role_name(v, me);
        for r in ROLES {
            let _ = writeln!(
                out,
                "meridian_group_role{{group=\"{}\",role=\"{r}\"}} {}",
                v.group,
                u8::from(r == role)
            );
        }
    }
    out
}

fn gauge_header(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
}

/// The process's figures, under the names every Prometheus client library
/// uses: resident and virtual memory (`/proc/self/statm`), CPU time,
/// threads and start time (`/proc/self/stat`), open and most file
/// descriptors (`/proc/self/fd`, `/proc/self/limits`). Figures the system
/// does not give are left out.
pub fn render_process(out: &mut String) {
    // SAFETY: sysconf only reads a configuration value.
    let (page, ticks) = unsafe {
        (
            libc::sysconf(libc::_SC_PAGESIZE),
            libc::sysconf(libc::_SC_CLK_TCK),
        )
    };
    let mut put = |name: &str, kind: &str, help: &str, v: f64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
        );
    };
    if let Ok(statm) = std::fs::read_to_string("/proc/self/statm") {
        let f: Vec<u64> = statm
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        if f.len() >= 2 && page > 0 {
            let page = page as f64;
            put(
                "process_virtual_memory_bytes",
                "gauge",
                "Virtual memory size in bytes.",
                f[0] as f64 * page,
            );
            put(
                "process_resident_memory_bytes",
                "gauge",
                "Resident memory size in bytes.",
                f[1] as f64 * page,
            );
        }
    }
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the command name, which is in parentheses and may
        // hold spaces: state is field 3 of proc(5), at index 0 here.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<&str> = rest.split_whitespace().collect();
        let num = |i: usize| f.get(i).and_then(|w| w.parse::<u64>().ok());
        if let (Some(utime), Some(stime)) = (num(11), num(12)) {
            if ticks > 0 {
                put(
                    "process_cpu_seconds_total",
                    "counter",
                    "User and system CPU time spent, in seconds.",
                    (utime + stime) as f64 / ticks as f64,
                );
            }
        }
        if let Some(threads) = num(17) {
            put(
                "process_threads",
                "gauge",
                "Threads of the process.",
                threads as f64,
            );
        }
        let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("btime "))
                .and_then(|b| b.trim().parse::<u64>().ok())
        });
        if let (Some(start), Some(boot)) = (num(19), boot) {
            if ticks > 0 {
                put(
                    "process_start_time_seconds",
                    "gauge",
                    "Start time of the process since the Unix epoch, in seconds.",
                    boot as f64 + start as f64 / ticks as f64,
                );
            }
        }
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        put(
            "process_open_fds",
            "gauge",
            "Open file descriptors.",
            fds.count() as f64,
        );
    }
    if let Ok(limits) = std::fs::read_to_string("/proc/self/limits") {
        let max = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .and_then(|l| l.split_whitespace().nth(3))
            .and_then(|w| w.parse::<u64>().ok());
        if let Some(max) = max {
            put(
                "process_max_fds",
                "gauge",
                "Most open file descriptors allowed.",
                max as f64,
            );
        }
    }
}

/// Largest HTTP request head the metrics endpoint reads.
const MAX_REQUEST_HEAD: usize = 8192;

/// Longest the endpoint waits for a request's head.
const REQUEST_HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// Content type of the Prometheus text format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4";

/// The answer to the request whose head is `head`: `GET /metrics`,
/// `/health`, `/ready` (or `/health?ready=1`), the console's page (`/` or
/// `/console`) and its JSON (`/console/api`); 404 for any other path, 405
/// for any other method.
pub async fn route(head: &str, shared: &crate::service::Shared) -> crate::health::Answer {
    let line = head.lines().next().unwrap_or_default();
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if method != "GET" {
        return (
            "405 Method Not Allowed",
            "text/plain",
            "only GET is served\n".to_string(),
        );
    }
    match path {
        "/metrics" => ("200 OK", PROMETHEUS_TEXT, render_node(shared)),
        "/health"
            if query
                .split('&')
                .any(|q| q == "ready=1" || q == "ready=true") =>
        {
            crate::health::ready_answer(shared)
        }
        "/health" => crate::health::health_answer(shared),
        "/ready" => crate::health::ready_answer(shared),
        "/" | crate::console::PAGE_PATH => crate::console::page_answer(),
        crate::console::API_PATH => crate::console::api_answer(shared).await,
        _ => (
            "404 Not Found",
            "text/plain",
            format!(
                "no such path {path:?}: try /metrics, /health, /ready, /console or /console/api\n"
            ),
        ),
    }
}

/// Serves the metrics endpoint's paths ([`route`]) on `listener` until the
/// task is dropped, and samples the console's latency history every
/// [`crate::console::HISTORY_INTERVAL`].
///
/// Every answer allows any origin (`Access-Control-Allow-Origin: *`): they
/// are all read-only and unauthenticated anyway, and a node's console page
/// reads its peers' console JSON from the browser.
pub async fn serve(listener: tokio::net::TcpListener, shared: Arc<crate::service::Shared>) {
    let mut history_tick = tokio::time::interval(crate::console::HISTORY_INTERVAL);
    history_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = history_tick.tick() => {
                shared.metrics.history.sample(&shared.metrics, crate::console::unix_ms());
                continue;
            }
        };
        let Ok((mut sock, _)) = accepted else {
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; MAX_REQUEST_HEAD];
            let mut n = 0;
            let read_head = async {
                while n < buf.len() {
                    match sock.read(&mut buf[n..]).await {
                        Ok(0) | Err(_) => return false,
                        Ok(k) => n += k,
                    }
                    if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
                true
            };
            if !matches!(
                tokio::time::timeout(REQUEST_HEAD_TIMEOUT, read_head).await,
                Ok(true)
            ) {
                return;
            }
            let head = String::from_utf8_lossy(&buf[..n]).into_owned();
            let (status, content_type, body) = route(&head, &shared).await;
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nAccess-Control-Allow-Origin: *\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_render_cumulative_buckets() {
        let m = Metrics::default();
        m.commit_latency.observe(40);
        m.commit_latency.observe(700);
        m.observe_reply(&Err(TxnError::Aborted {
            txn: meridian_participant::TxnId::local(1),
            reason: AbortReason::Conflict,
        }));
        let text = m.render();
        assert!(text.contains("meridian_commit_latency_seconds_bucket{le=\"0.00005\"} 1"));
        assert!(text.contains("meridian_commit_latency_seconds_bucket{le=\"+Inf\"} 2"));
        assert!(text.contains("meridian_aborts_total{reason=\"conflict\"} 1"));
    }
}
