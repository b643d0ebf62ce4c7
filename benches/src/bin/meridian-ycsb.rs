//! `meridian-ycsb`: YCSB workloads A–F, YCSB+T's closed economy
//! (`transfer`) and multi-group strong read-only transactions (`ro-sum`)
//! against an embedded Meridian cluster (the default: real nodes in this
//! process, each with its own write-ahead log and gRPC server on
//! loopback) or an existing one (`--endpoints`).
//!
//! ```text
//! meridian-ycsb run --workload a                  # embedded cluster: load, run, report
//! meridian-ycsb load --workload a --endpoints H:P # load an existing cluster
//! meridian-ycsb run --workload a --endpoints H:P  # run against it
//! ```
//!
//! The report on stdout is YCSB's: one `[SECTION], Metric, Value` line
//! each (`meridian_benches::report`); `--help` explains its sections.
//!
//! Exit codes: 0 done; 1 the run failed (a correctness check failed, or
//! no operation succeeded); 2 bad arguments (among them a `--json` or
//! `--plot` file that cannot be written, and `run --endpoints` against a
//! cluster that does not hold the `--records` asked for), refused before
//! anything runs; 4 the cluster could not be reached or started.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::error::ErrorKind;
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use meridian_benches::generator::{DEFAULT_THETA, Distribution};
use meridian_benches::keys::record_key;
use meridian_benches::report::{
    self, CommitWait, FsyncStats, Report, Settings, TransferCheck, check_writable,
};
use meridian_benches::runner::{self, Config, LoadReport};
use meridian_benches::store::{MeridianStore, Store};
use meridian_benches::workload::{INITIAL_BALANCE, Workload};
use meridian_benches::{plot, retries};
use meridian_client::{CcMode, Client, ClientOptions, MAX_TXN_OPERATIONS};
use meridian_node::local::{LocalCluster, LocalOptions};

/// The process allocator: mimalloc, whose thread-local free lists suit the
/// many small short-lived buffers of the request path better than glibc's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Default run length when `--operations` is not given: with the default
/// 100,000 records loaded first, a default run takes about a minute.
const DEFAULT_DURATION_S: f64 = 45.0;

/// The nodes' commit-wait histogram (commit timestamp to acknowledgement).
const COMMIT_WAIT_METRIC: &str = "meridian_commit_wait_seconds";

/// The nodes' write-ahead log fdatasync histogram.
const FSYNC_METRIC: &str = "meridian_wal_fsync_seconds";

/// How long connecting to `--endpoints` may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the embedded cluster may take to elect its leaders.
const LEADER_WAIT: Duration = Duration::from_secs(60);

/// The report's explanation, for `--help` (the report itself holds only
/// `[SECTION], Metric, Value` lines).
const REPORT_HELP: &str = "\
Report (stdout): YCSB's format, one `[SECTION], Metric, Value` line each, \
every line three comma-separated fields. Latencies are in microseconds (us).
  [SETTINGS]        how the run was made (workload, threads, records, cc, cluster...)
  [LOAD]            the load: Records, RunTime(ms), Throughput(records/sec)
  [OVERALL]         RunTime(ms), Throughput(ops/sec) of successful operations \
(committed transactions for transfer); Interrupted if stopped by Ctrl-C
  [READ], [UPDATE], [INSERT], [SCAN], [READ-MODIFY-WRITE], [TRANSFER], [RO-SUM]
                    per operation kind: Operations and latencies of the successes \
(AverageLatency, MinLatency, MaxLatency, 50th, 90th, 95th, 99th, 99.9 and 99.99 \
PercentileLatency(us)), then Return=OK and Return=<REASON> counts (NOT_FOUND, \
WOUNDED, OCC_CONFLICT, TIMEOUT, ...), as YCSB's Return= lines
  [<OP>-FAILED]     the failed operations' count and latencies (after the client's retries)
  [ABORTS]          read-write transactions failed after their retries, by reason
  [RETRIES]         attempts beyond the first, by reason
  [COMMIT-WAIT]     embedded cluster: the nodes' mean time from commit timestamp to \
acknowledgement (commit wait and the replication after the timestamp is chosen)
  [WAL-FSYNC]       embedded cluster: the nodes' write-ahead log fdatasyncs
  [TRANSFER-CHECK]  transfer: Result PASSED or FAILED and the totals before and after
  [RO-SUM-CHECK]    ro-sum: Result and the read-only transactions that saw a wrong sum
Progress bars and messages go to stderr.

Before anything runs, a --json or --plot file that cannot be written is refused (exit 2), \
and so is `run --endpoints` against a cluster that does not hold the records asked for: \
the last record (user<N-1> for --records N) must exist, and transfer needs every account \
(exit 2; load them with `meridian-ycsb load` and the same --workload and --records).

Exit codes: 0 done; 1 the run failed (a correctness check failed, or no operation succeeded); \
2 bad arguments, refused before anything runs; 4 the cluster could not be reached or started.";

#[derive(Parser, Debug)]
#[command(
    name = "meridian-ycsb",
    version,
    about = "YCSB and transactional benchmarks for Meridian",
    long_about = "YCSB workloads A-F, YCSB+T's closed economy (transfer) and multi-group \
                  strong read-only transactions (ro-sum) against an embedded Meridian cluster \
                  (the default) or an existing one (--endpoints).\n\n\
                  Keys: record n is stored under <P>user<n>, where the prefix character P is a \
                  hash of n over printable ASCII ('!' to '~'), so records spread over every \
                  group of the default key ranges.",
    after_long_help = REPORT_HELP
)]
struct Cli {
    #[command(subcommand)]
    phase: Phase,
}

#[derive(Subcommand, Debug)]
enum Phase {
    /// Load the records into an existing cluster (needs --endpoints).
    #[command(after_long_help = REPORT_HELP)]
    Load(Opts),
    /// Run the workload: on the embedded cluster, load first; with
    /// --endpoints, against records loaded before by `load`.
    #[command(after_long_help = REPORT_HELP)]
    Run(Opts),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Cc {
    /// Two-phase locking under wound-wait.
    #[value(name = "2pl")]
    TwoPl,
    /// FaRM-style optimistic concurrency control.
    Occ,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum DistArg {
    /// YCSB's scrambled zipfian (θ from --zipf).
    Zipfian,
    /// Uniform over the records.
    Uniform,
    /// Zipfian over recency: the newest records the most popular.
    Latest,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Target {
    /// Meridian.
    Meridian,
    /// etcd, at --endpoints (needs the `etcd` cargo feature).
    Etcd,
}

#[derive(Args, Debug, Clone)]
struct Opts {
    /// The workload.
    #[arg(long, value_enum, default_value = "a")]
    workload: Workload,
    /// Concurrent closed-loop clients (and load threads).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    threads: u64,
    /// Records to load and choose from [default: 100000; 1000 accounts for transfer].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    records: Option<u64>,
    /// Stop after this many operations.
    #[arg(long, conflicts_with = "duration", value_parser = clap::value_parser!(u64).range(1..))]
    operations: Option<u64>,
    /// Run for this many seconds [default: 45].
    #[arg(long, value_parser = positive_seconds)]
    duration: Option<f64>,
    /// Concurrency control of read-write transactions.
    #[arg(long, value_enum, default_value = "2pl")]
    cc: Cc,
    /// Zipfian constant θ, 0 < θ < 1.
    #[arg(long = "zipf", value_name = "THETA", default_value_t = DEFAULT_THETA, value_parser = zipf_theta)]
    zipf: f64,
    /// Request distribution [default: the workload's: zipfian; latest for d; uniform for transfer and ro-sum].
    #[arg(long, value_enum)]
    distribution: Option<DistArg>,
    /// Accounts per ro-sum read-only transaction.
    #[arg(long = "keys", value_name = "K", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=MAX_TXN_OPERATIONS as u64))]
    keys: u64,
    /// Groups of the embedded cluster.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=64))]
    groups: u64,
    /// Replicas per group of the embedded cluster, each on its own node.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=9))]
    replicas: u64,
    /// Nodes of the embedded cluster; each group's replicas are spread
    /// over them (docs/operations.md, "Placement") [default: --replicas].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=9))]
    nodes: Option<u64>,
    /// Split a range of the embedded cluster automatically once its newest
    /// versions exceed this size (bytes, or with a KiB, MiB or GiB
    /// suffix; 0: never by size). The report's `[SPLITS]` section gives the
    /// p99 during splits beside the steady p99 [default: the node's,
    /// 64MiB].
    #[arg(long, value_name = "SIZE", value_parser = meridian_node::config::parse_size)]
    split_bytes: Option<u64>,
    /// Clock uncertainty ε of the embedded cluster, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 1.0, value_parser = epsilon_ms)]
    epsilon: f64,
    /// Use an existing cluster: comma-separated host:port of its nodes.
    #[arg(long, value_delimiter = ',')]
    endpoints: Vec<String>,
    /// Write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Draw throughput and p99 per second to this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    /// The system to measure.
    #[arg(long, value_enum, default_value = "meridian")]
    target: Target,
    /// Seed of the random choices [default: from the clock].
    #[arg(long)]
    seed: Option<u64>,
    /// No progress bars.
    #[arg(long)]
    no_progress: bool,
}

impl Opts {
    /// Nodes of the embedded cluster: `--nodes`, or `--replicas`.
    fn nodes(&self) -> u64 {
        self.nodes.unwrap_or(self.replicas)
    }
}

fn positive_seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("not a number of seconds: {s}"))?;
    if v.is_finite() && v > 0.0 && v <= 86_400.0 {
        Ok(v)
    } else {
        Err(format!(
            "{s}: the duration must be more than 0 and at most 86400 seconds"
        ))
    }
}

fn zipf_theta(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("not a number: {s}"))?;
    if v.is_finite() && v > 0.0 && v < 1.0 {
        Ok(v)
    } else {
        Err(format!(
            "{s}: the zipfian constant must be strictly between 0 and 1"
        ))
    }
}

fn epsilon_ms(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("not a number: {s}"))?;
    if v.is_finite() && (0.0..=1000.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{s}: ε must be between 0 and 1000 ms"))
    }
}

/// Exits with code 2 and `msg` on stderr, as clap does for its own
/// errors.
fn usage_error(msg: impl std::fmt::Display) -> ! {
    Cli::command().error(ErrorKind::ValueValidation, msg).exit()
}

/// The cluster under test.
enum Cluster {
    Embedded(LocalCluster),
    External,
}

/// Totals of one latency histogram over every node of the embedded
/// cluster, from their Prometheus text.
#[derive(Clone, Copy, Debug, Default)]
struct Totals {
    /// Sum of the values, seconds.
    sum: f64,
    /// Values recorded.
    count: u64,
    /// Values recorded at or below one second.
    within_1s: u64,
}

impl std::ops::Sub for Totals {
    type Output = Totals;
    fn sub(self, o: Totals) -> Totals {
        Totals {
            sum: self.sum - o.sum,
            count: self.count.saturating_sub(o.count),
            within_1s: self.within_1s.saturating_sub(o.within_1s),
        }
    }
}

/// The nodes' counter of automatic splits.
const SPLITS_METRIC: &str = "meridian_auto_splits_total";

/// How often the embedded cluster's split counter is read during a run.
const SPLIT_POLL: Duration = Duration::from_millis(200);

impl Cluster {
    /// The sum of counter `name` (every label) over every node; `None`
    /// for an external cluster.
    fn counter(&self, name: &str) -> Option<u64> {
        let Cluster::Embedded(c) = self else {
            return None;
        };
        let prefix = format!("{name}{{");
        let plain = format!("{name} ");
        let mut total = 0;
        for id in 1..=c.endpoints().len() as u64 {
            let Some(n) = c.node(id) else { continue };
            for line in n.metrics().render().lines() {
                if line.starts_with(&prefix) || line.starts_with(&plain) {
                    total += line
                        .rsplit(' ')
                        .next()
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .unwrap_or(0);
                }
            }
        }
        Some(total)
    }

    /// Notes in `seconds` (whole seconds since `started`) each split the
    /// nodes counted since `last`, and moves `last` on.
    fn note_splits(&self, started: std::time::Instant, last: &mut u64, seconds: &mut Vec<u64>) {
        let now = self.counter(SPLITS_METRIC).unwrap_or(*last);
        seconds.extend((*last..now).map(|_| started.elapsed().as_secs()));
        *last = now;
    }

    /// The totals of histogram `name` (`meridian_..._seconds`) over every
    /// node; `None` for an external cluster.
    fn totals(&self, name: &str) -> Option<Totals> {
        let Cluster::Embedded(c) = self else {
            return None;
        };
        let mut t = Totals::default();
        let (sum, count, within) = (
            format!("{name}_sum "),
            format!("{name}_count "),
            format!("{name}_bucket{{le=\"1\"}} "),
        );
        for id in 1..=c.endpoints().len() as u64 {
            let Some(n) = c.node(id) else { continue };
            for line in n.metrics().render().lines() {
                if let Some(v) = line.strip_prefix(&sum) {
                    t.sum += v.trim().parse::<f64>().unwrap_or(0.0);
                } else if let Some(v) = line.strip_prefix(&count) {
                    t.count += v.trim().parse::<u64>().unwrap_or(0);
                } else if let Some(v) = line.strip_prefix(&within) {
                    t.within_1s += v.trim().parse::<u64>().unwrap_or(0);
                }
            }
        }
        Some(t)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (phase, opts) = match cli.phase {
        Phase::Load(o) => ("load", o),
        Phase::Run(o) => ("run", o),
    };
    if opts.target == Target::Etcd {
        if !cfg!(feature = "etcd") {
            usage_error(
                "--target etcd is not available: meridian-ycsb was built without the etcd \
                 feature (cargo build --release -p meridian-benches --features etcd)",
            );
        }
        if opts.endpoints.is_empty() {
            usage_error("--target etcd needs --endpoints (an etcd cluster's client URLs)");
        }
    }
    if phase == "load" && opts.endpoints.is_empty() {
        usage_error(
            "`load` needs --endpoints (an existing cluster); `run` without --endpoints loads \
             an embedded cluster itself",
        );
    }
    if opts.replicas > opts.nodes() {
        usage_error(format!(
            "--replicas {} exceeds --nodes {}: each replica of a group needs its own node",
            opts.replicas,
            opts.nodes()
        ));
    }
    let records = opts.records.unwrap_or(opts.workload.default_records());
    if opts.workload == Workload::Transfer && records < 2 {
        usage_error("transfer needs at least 2 accounts (--records)");
    }
    if opts.workload == Workload::RoSum && opts.keys > records {
        usage_error(format!(
            "ro-sum reads --keys {} distinct accounts of only {records} (--records)",
            opts.keys
        ));
    }
    // A report file that cannot be written is refused before the run, not
    // after it.
    for (flag, path) in [("--json", &opts.json), ("--plot", &opts.plot)] {
        if let Some(path) = path {
            if let Err(e) = check_writable(path) {
                usage_error(format!("{flag}: {e}"));
            }
        }
    }
    let distribution = match opts.distribution {
        None => opts.workload.default_distribution(opts.zipf),
        Some(DistArg::Zipfian) => Distribution::Zipfian(opts.zipf),
        Some(DistArg::Uniform) => Distribution::Uniform,
        Some(DistArg::Latest) => Distribution::Latest(opts.zipf),
    };
    let seed = opts.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let duration = Duration::from_secs_f64(opts.duration.unwrap_or(DEFAULT_DURATION_S));
    let cfg = Config {
        workload: opts.workload,
        threads: opts.threads as usize,
        records,
        operations: opts.operations,
        duration,
        mode: match opts.cc {
            Cc::TwoPl => CcMode::Locking,
            Cc::Occ => CcMode::Optimistic,
        },
        distribution,
        ro_keys: opts.keys as usize,
        seed,
        progress: !opts.no_progress,
    };
    retries::install();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("meridian-ycsb: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    rt.block_on(bench(phase, opts, cfg))
}

async fn bench(phase: &'static str, opts: Opts, cfg: Config) -> ExitCode {
    // The cluster: an existing one, or an embedded one started here.
    let (cluster, endpoints) = if opts.endpoints.is_empty() {
        eprintln!(
            "meridian-ycsb: starting an embedded cluster: {} nodes, {} groups of {} replicas, ε {} ms",
            opts.nodes(),
            opts.groups,
            opts.replicas,
            opts.epsilon
        );
        let c = match LocalCluster::start(LocalOptions {
            nodes: opts.nodes(),
            groups: opts.groups,
            replicas: Some(opts.replicas),
            epsilon_ms: opts.epsilon,
            splits: meridian_node::config::SplitsConfig {
                bytes: opts
                    .split_bytes
                    .unwrap_or(meridian_node::config::SplitsConfig::default().bytes),
                ..meridian_node::config::SplitsConfig::default()
            },
            ..LocalOptions::default()
        })
        .await
        {
            Ok(c) => c,
            Err(e) => {
                eprintln!("meridian-ycsb: the embedded cluster did not start: {e}");
                return ExitCode::from(4);
            }
        };
        if let Err(e) = c.wait_for_leaders(LEADER_WAIT).await {
            eprintln!("meridian-ycsb: the embedded cluster elected no leaders: {e}");
            c.shutdown().await;
            return ExitCode::from(4);
        }
        let e = c.endpoints();
        (Cluster::Embedded(c), e)
    } else {
        (Cluster::External, opts.endpoints.clone())
    };
    #[cfg(feature = "etcd")]
    if opts.target == Target::Etcd {
        let store = match meridian_benches::etcd::EtcdStore::connect(&endpoints).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!(
                    "meridian-ycsb: cannot reach etcd at {}: {e}",
                    endpoints.join(",")
                );
                return finish(cluster, ExitCode::from(4)).await;
            }
        };
        let settings = settings(
            &opts,
            &cfg,
            phase,
            false,
            (1, endpoints.len() as u64, endpoints.len() as u64),
            endpoints,
        );
        return measure(phase, &opts, &cfg, cluster, &store, settings).await;
    }
    let options = ClientOptions::default().with_default_mode(cfg.mode);
    let client = match tokio::time::timeout(
        CONNECT_TIMEOUT,
        Client::connect_with(&endpoints, options),
    )
    .await
    {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            eprintln!(
                "meridian-ycsb: cannot reach the cluster at {}: {e}",
                endpoints.join(",")
            );
            return finish(cluster, ExitCode::from(4)).await;
        }
        Err(_) => {
            eprintln!(
                "meridian-ycsb: cannot reach the cluster at {}: no answer within {:?}",
                endpoints.join(","),
                CONNECT_TIMEOUT
            );
            return finish(cluster, ExitCode::from(4)).await;
        }
    };
    let groups = client.groups();
    let embedded = matches!(cluster, Cluster::Embedded(_));
    let nodes = if embedded {
        opts.nodes()
    } else {
        endpoints.len() as u64
    };
    let settings = settings(
        &opts,
        &cfg,
        phase,
        embedded,
        (
            groups.len() as u64,
            groups.first().map_or(0, |g| g.replicas.len() as u64),
            nodes,
        ),
        endpoints,
    );
    let store = MeridianStore::new(client, cfg.mode);
    measure(phase, &opts, &cfg, cluster, &store, settings).await
}

/// The report's description of the run.
fn settings(
    opts: &Opts,
    cfg: &Config,
    phase: &str,
    embedded: bool,
    (groups, replicas, nodes): (u64, u64, u64),
    endpoints: Vec<String>,
) -> Settings {
    Settings {
        target: match opts.target {
            Target::Meridian => "meridian".into(),
            Target::Etcd => "etcd".into(),
        },
        workload: cfg.workload.name().into(),
        phase: phase.into(),
        threads: cfg.threads,
        records: cfg.records,
        operations: cfg.operations,
        duration: cfg.operations.is_none().then_some(cfg.duration),
        cc: match (opts.target, cfg.mode) {
            (Target::Etcd, _) => "etcd-txn".into(),
            (_, CcMode::Locking) => "2pl".into(),
            (_, CcMode::Optimistic) => "occ".into(),
        },
        distribution: cfg.distribution.name().into(),
        zipf_theta: opts.zipf,
        ro_keys: cfg.ro_keys,
        embedded,
        groups,
        replicas,
        nodes,
        epsilon_ms: embedded.then_some(opts.epsilon),
        endpoints,
    }
}

/// Loads (for `load`, and `run` on the embedded cluster), runs, checks
/// and reports.
async fn measure<S: Store>(
    phase: &'static str,
    opts: &Opts,
    cfg: &Config,
    cluster: Cluster,
    store: &S,
    settings: Settings,
) -> ExitCode {
    let cfg = cfg.clone();
    let embedded = settings.embedded;
    // Load: `load` always, `run` on the embedded cluster.
    let mut load: Option<LoadReport> = None;
    if phase == "load" || embedded {
        eprintln!(
            "meridian-ycsb: loading {} {} with {} threads",
            cfg.records,
            if cfg.workload.uses_accounts() {
                "accounts"
            } else {
                "records"
            },
            cfg.threads
        );
        match runner::load(store, &cfg).await {
            Ok(l) => load = Some(l),
            Err(e) => {
                eprintln!("meridian-ycsb: the load failed: {e}");
                return finish(cluster, ExitCode::from(1)).await;
            }
        }
    }
    if phase == "load" {
        let l = load.expect("loaded");
        let rate = l.records as f64 / l.elapsed.as_secs_f64().max(1e-9);
        let mut rows = report::settings_rows(&settings);
        rows.extend(report::load_rows(&l));
        print!("{}", report::render(&rows));
        if let Some(path) = &opts.json {
            let v = serde_json::json!({
                "benchmark": "meridian-ycsb",
                "throughput_ops_s": (rate * 10.0).round() / 10.0,
                "settings": { "workload": settings.workload, "phase": "load", "records": l.records,
                              "threads": settings.threads, "endpoints": settings.endpoints },
                "load": { "records": l.records, "seconds": l.elapsed.as_secs_f64() },
            });
            if let Err(e) = write_json(path, &v) {
                eprintln!("meridian-ycsb: {e}");
                return finish(cluster, ExitCode::from(1)).await;
            }
        }
        return finish(cluster, ExitCode::SUCCESS).await;
    }

    // Run.
    let before = if cfg.workload == Workload::Transfer {
        match store.audit(cfg.records).await {
            Ok(a) => Some(a),
            Err(e) => {
                eprintln!("meridian-ycsb: could not read the accounts' total before the run: {e}");
                return finish(cluster, ExitCode::from(1)).await;
            }
        }
    } else {
        None
    };
    if !embedded {
        if let Err(refusal) = check_loaded(store, &cfg, before.as_ref()).await {
            eprintln!("meridian-ycsb: {refusal}");
            return finish(cluster, ExitCode::from(2)).await;
        }
    }
    retries::reset();
    let wait_before = cluster.totals(COMMIT_WAIT_METRIC);
    let fsync_before = cluster.totals(FSYNC_METRIC);
    eprintln!(
        "meridian-ycsb: running workload {} with {} threads {}",
        cfg.workload.name(),
        cfg.threads,
        match cfg.operations {
            Some(n) => format!("for {n} operations"),
            None => format!("for {:?}", cfg.duration),
        }
    );
    // The seconds of the run in which the embedded cluster split ranges.
    let (run, split_seconds) = match cluster.counter(SPLITS_METRIC) {
        None => (runner::run(store, &cfg).await, None),
        Some(mut last) => {
            let started = std::time::Instant::now();
            let mut seconds = Vec::new();
            let running = runner::run(store, &cfg);
            tokio::pin!(running);
            let mut poll = tokio::time::interval(SPLIT_POLL);
            let run = loop {
                tokio::select! {
                    r = &mut running => break r,
                    _ = poll.tick() => cluster.note_splits(started, &mut last, &mut seconds),
                }
            };
            cluster.note_splits(started, &mut last, &mut seconds);
            (run, Some(seconds))
        }
    };
    let wait_after = cluster.totals(COMMIT_WAIT_METRIC);
    let fsync_after = cluster.totals(FSYNC_METRIC);
    let wal_fsync = match (fsync_before, fsync_after) {
        (Some(b), Some(a)) if a.count > b.count => {
            let d = a - b;
            Some(FsyncStats {
                mean_us: d.sum / d.count as f64 * 1e6,
                count: d.count,
                over_1s: d.count.saturating_sub(d.within_1s),
            })
        }
        _ => None,
    };
    let commit_wait = match (wait_before, wait_after) {
        (Some(b), Some(a)) if a.count > b.count => {
            let d = a - b;
            CommitWait::Measured {
                mean_us: d.sum / d.count as f64 * 1e6,
                commits: d.count,
            }
        }
        (Some(_), Some(_)) => CommitWait::NoCommits,
        _ => CommitWait::NotRead,
    };
    let transfer_check = match before {
        Some(before) => match store.audit(cfg.records).await {
            Ok(after) => Some(TransferCheck {
                before,
                after,
                expected: embedded.then_some(cfg.records as i64 * INITIAL_BALANCE),
            }),
            Err(e) => {
                eprintln!(
                    "meridian-ycsb: TRANSFER CHECK FAILED: could not read the accounts' total after the run: {e}"
                );
                return finish(cluster, ExitCode::from(1)).await;
            }
        },
        None => None,
    };
    let (ops, timeline, retry_total) = run.recorder.snapshot();
    let report = Report {
        settings,
        load,
        elapsed: run.elapsed,
        ops,
        timeline,
        retries: retry_total,
        retries_by_reason: retries::by_reason(retries::reasons(), retry_total),
        commit_wait,
        wal_fsync,
        transfer_check,
        ro_sum_mismatches: (cfg.workload == Workload::RoSum).then_some(run.sum_mismatches),
        interrupted: run.interrupted,
        split_seconds,
    };
    print!("{}", report.text());
    let mut code = ExitCode::SUCCESS;
    if let Some(path) = &opts.json {
        if let Err(e) = write_json(path, &report.json()) {
            eprintln!("meridian-ycsb: {e}");
            code = ExitCode::from(1);
        }
    }
    if let Some(path) = &opts.plot {
        let title = format!(
            "meridian-ycsb workload {} ({} threads, {})",
            cfg.workload.name(),
            cfg.threads,
            report.settings.cc
        );
        if let Err(e) = plot::draw(path, &report.timeline, run.elapsed.as_secs_f64(), &title) {
            eprintln!("meridian-ycsb: {e}");
            code = ExitCode::from(1);
        }
    }
    if let Some(c) = &report.transfer_check {
        if !c.passed() {
            eprintln!(
                "meridian-ycsb: TRANSFER CHECK FAILED: the accounts held {} ({} accounts) before the run and {} ({} accounts) after{}",
                c.before.total,
                c.before.accounts,
                c.after.total,
                c.after.accounts,
                c.expected
                    .map(|e| format!("; the load gave {e}"))
                    .unwrap_or_default()
            );
            code = ExitCode::from(1);
        }
    }
    if report.ro_sum_mismatches.is_some_and(|n| n > 0) {
        eprintln!(
            "meridian-ycsb: RO-SUM CHECK FAILED: {} read-only transactions saw a wrong total",
            run.sum_mismatches
        );
        code = ExitCode::from(1);
    }
    if report.successes() == 0 {
        eprintln!("meridian-ycsb: no operation succeeded");
        code = ExitCode::from(1);
    }
    finish(cluster, code).await
}

/// Checks that an existing cluster holds what `run` is asked to run over:
/// for `transfer`, every account (`before` is their audit); otherwise the
/// last record, `user<N-1>` of `--records N` (the load writes records in
/// no particular order, but a cluster loaded with fewer records lacks
/// it). Errors other than "not found" are warned about, not refused: the
/// run will show them.
async fn check_loaded<S: Store>(
    store: &S,
    cfg: &Config,
    before: Option<&meridian_benches::store::Audit>,
) -> Result<(), String> {
    let load_hint = format!(
        "load it first with `meridian-ycsb load --workload {} --records {} --endpoints ...`, \
         or pass the --records it was loaded with",
        cfg.workload.name(),
        cfg.records
    );
    if let Some(audit) = before {
        if audit.accounts == 0 {
            return Err(format!(
                "the cluster holds no accounts (transfer needs {} of them): {load_hint}",
                cfg.records
            ));
        }
        if audit.accounts < cfg.records {
            return Err(format!(
                "the cluster holds {} of the {} accounts asked for (--records): {load_hint}",
                audit.accounts, cfg.records
            ));
        }
        return Ok(());
    }
    let last = record_key(cfg.records - 1);
    match store.read(bytes::Bytes::from(last.clone())).await {
        (Ok(()), _) => Ok(()),
        (Err(reason), _) if reason == "not_found" => Err(format!(
            "the cluster does not hold record {} (key {last:?}), the last of --records {}: \
             it was loaded with fewer records or not at all; {load_hint}",
            cfg.records - 1,
            cfg.records
        )),
        (Err(reason), _) => {
            eprintln!(
                "meridian-ycsb: warning: could not check that the cluster holds --records {} \
                 (reading key {last:?} failed: {reason}); running anyway",
                cfg.records
            );
            Ok(())
        }
    }
}

fn write_json(path: &std::path::Path, v: &serde_json::Value) -> Result<(), String> {
    let text = serde_json::to_string_pretty(v).map_err(|e| format!("JSON: {e}"))?;
    std::fs::write(path, text + "\n").map_err(|e| format!("writing {}: {e}", path.display()))
}

/// Stops the embedded cluster (its temporary directory goes with it).
async fn finish(cluster: Cluster, code: ExitCode) -> ExitCode {
    if let Cluster::Embedded(c) = cluster {
        c.shutdown().await;
    }
    code
}
