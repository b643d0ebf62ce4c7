//! The load and run phases against a [`Store`]: Meridian
//! ([`crate::store::MeridianStore`]) or, with the `etcd` feature, etcd.
//!
//! Load: the records are split over the threads (record `n` to thread
//! `n mod threads`); each thread writes them in one-shard batches (one
//! transaction of up to [`LOAD_BATCH`] records whose keys all live in one
//! shard: for Meridian one Paxos round, no two-phase commit).
//!
//! Run: each thread is a closed loop issuing one operation at a time,
//! drawn from the workload's mix, until `--operations` have been issued
//! or `--duration` has passed (or Ctrl-C). What each operation is in the
//! system under test is the [`Store`]'s business: for Meridian, reads and
//! scans are strong read-only transactions, updates and inserts blind
//! writes committed as one-shot transactions, read-modify-writes and
//! transfers read-write transactions under `--cc`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use indicatif::{ProgressBar, ProgressState, ProgressStyle};
use meridian_client::CcMode;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::generator::{Distribution, InsertCounter, KeyChooser};
use crate::keys::{record_key, scan_end};
use crate::stats::Recorder;
use crate::store::{Outcome, Store};
use crate::workload::{INITIAL_BALANCE, MAX_TRANSFER, Op, RECORD_BYTES, Workload, new_record};

/// Records per load transaction.
pub const LOAD_BATCH: usize = 50;

/// Longest scan of workload E (YCSB's `maxscanlength`); each scan's
/// length is uniform in `1..=MAX_SCAN`.
pub const MAX_SCAN: usize = 100;

/// What to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// The workload.
    pub workload: Workload,
    /// Concurrent closed-loop clients.
    pub threads: usize,
    /// Records (accounts) loaded.
    pub records: u64,
    /// Stop after this many operations (else after `duration`).
    pub operations: Option<u64>,
    /// How long to run when `operations` is not given.
    pub duration: Duration,
    /// Concurrency control of the read-write transactions.
    pub mode: CcMode,
    /// How operations choose records.
    pub distribution: Distribution,
    /// Accounts per `ro-sum` transaction.
    pub ro_keys: usize,
    /// Seed of the threads' random generators (thread `i` uses `seed + i`).
    pub seed: u64,
    /// Whether to draw progress bars (on stderr, when it is a terminal).
    pub progress: bool,
}

/// What the load did.
#[derive(Clone, Debug)]
pub struct LoadReport {
    /// Records written.
    pub records: u64,
    /// How long it took.
    pub elapsed: Duration,
}

/// What the run did.
#[derive(Debug)]
pub struct RunReport {
    /// Every measurement.
    pub recorder: Arc<Recorder>,
    /// From the first operation's start to the last one's end.
    pub elapsed: Duration,
    /// Whether it stopped early on Ctrl-C.
    pub interrupted: bool,
    /// `ro-sum` transactions whose sum was wrong (none are expected: no
    /// one writes the accounts).
    pub sum_mismatches: u64,
}

fn progress_bar(show: bool, len: u64, template: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(template)
            .expect("valid progress template")
            .progress_chars("=> "),
    );
    pb
}

/// The load bar while it runs: whole records per second.
const LOAD_TEMPLATE: &str = "load {wide_bar} {pos}/{len} records, {rate}, eta {eta}";

/// The load bar once done: full, with the final count and the mean rate.
const LOAD_DONE_TEMPLATE: &str = "load {wide_bar} {pos}/{len} records, {msg}";

/// A rate as the load bar shows it: whole records per second.
pub fn records_per_sec(rate: f64) -> String {
    format!("{:.0} records/s", rate.max(0.0))
}

/// The load bar's final message: the load's mean rate and its length.
pub fn load_summary(records: u64, elapsed: Duration) -> String {
    format!(
        "{} in {:.1} s",
        records_per_sec(records as f64 / elapsed.as_secs_f64().max(1e-9)),
        elapsed.as_secs_f64()
    )
}

/// The load's progress bar over `records` (hidden unless `show` and
/// stderr is a terminal).
fn load_bar(show: bool, records: u64) -> ProgressBar {
    let pb = progress_bar(show, records, LOAD_TEMPLATE);
    pb.set_style(
        pb.style()
            .with_key("rate", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = w.write_str(&records_per_sec(s.per_sec()));
            }),
    );
    pb
}

/// Ends the load bar at its end: every record counted, the mean rate.
fn finish_load_bar(pb: &ProgressBar, records: u64, elapsed: Duration) {
    debug_assert_eq!(pb.position(), records, "every loaded record counted");
    pb.set_style(
        ProgressStyle::with_template(LOAD_DONE_TEMPLATE)
            .expect("valid progress template")
            .progress_chars("=> "),
    );
    pb.set_position(records);
    pb.finish_with_message(load_summary(records, elapsed));
    if !pb.is_hidden() {
        // The full bar stays on its own line above what follows.
        eprintln!();
    }
}

/// The value record `n` is loaded with.
fn initial_value(workload: Workload, rng: &mut impl Rng) -> Bytes {
    if workload.uses_accounts() {
        Bytes::from(INITIAL_BALANCE.to_string())
    } else {
        Bytes::from(new_record(rng))
    }
}

/// Loads records `0..cfg.records` with `cfg.threads` threads.
pub async fn load<S: Store>(store: &S, cfg: &Config) -> Result<LoadReport, String> {
    let start = Instant::now();
    let pb = load_bar(cfg.progress, cfg.records);
    let threads = cfg.threads.min(cfg.records as usize).max(1);
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..threads {
        let store = store.clone();
        let pb = pb.clone();
        let cfg = cfg.clone();
        tasks.spawn(async move {
            let mut rng = SmallRng::seed_from_u64(cfg.seed.wrapping_add(t as u64));
            let mut batches: std::collections::BTreeMap<u64, Vec<(Bytes, Bytes)>> =
                Default::default();
            let mut n = t as u64;
            while n < cfg.records {
                let key = record_key(n);
                let group = store.shard_of(&key)?;
                let batch = batches.entry(group).or_default();
                batch.push((Bytes::from(key), initial_value(cfg.workload, &mut rng)));
                if batch.len() >= LOAD_BATCH {
                    let b = std::mem::take(batch);
                    let len = b.len() as u64;
                    store
                        .load_batch(b)
                        .await
                        .map_err(|e| format!("loading records: {e}"))?;
                    pb.inc(len);
                }
                n += threads as u64;
            }
            for (_, b) in batches {
                if !b.is_empty() {
                    let len = b.len() as u64;
                    store
                        .load_batch(b)
                        .await
                        .map_err(|e| format!("loading records: {e}"))?;
                    pb.inc(len);
                }
            }
            Ok::<(), String>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                pb.abandon();
                return Err(e);
            }
            Err(e) => {
                pb.abandon();
                return Err(format!("a load thread failed: {e}"));
            }
        }
    }
    let elapsed = start.elapsed();
    finish_load_bar(&pb, cfg.records, elapsed);
    Ok(LoadReport {
        records: cfg.records,
        elapsed,
    })
}

/// One worker's state.
struct Worker<S: Store> {
    store: S,
    cfg: Config,
    rng: SmallRng,
    chooser: KeyChooser,
    inserts: Arc<InsertCounter>,
    sum_mismatches: Arc<AtomicU64>,
}

impl<S: Store> Worker<S> {
    /// A record known to exist, by the request distribution.
    fn existing(&mut self) -> u64 {
        let count = self.inserts.limit();
        self.chooser.next(&mut self.rng, count)
    }

    async fn exec(&mut self, op: Op) -> Outcome {
        match op {
            Op::Read => {
                let key = record_key(self.existing());
                self.store.read(Bytes::from(key)).await
            }
            Op::Update => {
                let key = record_key(self.existing());
                let value = new_record(&mut self.rng);
                self.blind_write(key, value).await
            }
            Op::Insert => {
                let n = self.inserts.claim();
                let value = new_record(&mut self.rng);
                let out = self.blind_write(record_key(n), value).await;
                self.inserts.acknowledge(n);
                out
            }
            Op::Scan => {
                let key = record_key(self.existing());
                let limit = self.rng.random_range(1..=MAX_SCAN);
                let end = Bytes::from(scan_end(key.as_bytes()));
                self.store.scan(Bytes::from(key), end, limit).await
            }
            Op::ReadModifyWrite => {
                let key = Bytes::from(record_key(self.existing()));
                let field = self.rng.random_range(0..crate::workload::FIELDS);
                let fresh = new_record(&mut self.rng);
                self.store.read_modify_write(key, field, fresh).await
            }
            Op::Transfer => self.transfer().await,
            Op::RoSum => self.ro_sum().await,
        }
    }

    /// Writes one record in a transaction of its own (a one-shot commit).
    async fn blind_write(&mut self, key: String, value: Vec<u8>) -> Outcome {
        debug_assert_eq!(value.len(), RECORD_BYTES);
        self.store.write(Bytes::from(key), Bytes::from(value)).await
    }

    /// `count` distinct accounts by the request distribution.
    fn distinct_accounts(&mut self, count: usize) -> Vec<u64> {
        let mut picked: Vec<u64> = Vec::with_capacity(count);
        let mut tries = 0;
        while picked.len() < count {
            let n = self.existing();
            tries += 1;
            // A skewed distribution may keep drawing the same few
            // accounts: after many tries, take any account not yet picked.
            let n = if tries > 100 * count {
                (0..self.cfg.records)
                    .find(|m| !picked.contains(m))
                    .unwrap_or(n)
            } else {
                n
            };
            if !picked.contains(&n) {
                picked.push(n);
            }
        }
        picked
    }

    /// Moves a random amount between two distinct accounts.
    async fn transfer(&mut self) -> Outcome {
        let accounts = self.distinct_accounts(2);
        let from = Bytes::from(record_key(accounts[0]));
        let to = Bytes::from(record_key(accounts[1]));
        let amount = self.rng.random_range(1..=MAX_TRANSFER);
        self.store.transfer(from, to, amount).await
    }

    /// Sums `ro_keys` accounts in one strong read-only transaction.
    async fn ro_sum(&mut self) -> Outcome {
        let accounts = self.distinct_accounts(self.cfg.ro_keys);
        let keys = accounts
            .iter()
            .map(|n| Bytes::from(record_key(*n)))
            .collect();
        match self.store.read_sum(keys).await {
            // Nobody writes the accounts in this workload.
            Ok(sum) if sum == Some(INITIAL_BALANCE * accounts.len() as i64) => (Ok(()), 0),
            Ok(_) => {
                self.sum_mismatches.fetch_add(1, Ordering::Relaxed);
                (Err("sum_mismatch".into()), 0)
            }
            Err(reason) => (Err(reason), 0),
        }
    }
}

/// Runs the workload against records `0..cfg.records` (already loaded).
pub async fn run<S: Store>(store: &S, cfg: &Config) -> RunReport {
    let recorder = Arc::new(Recorder::new());
    let stop = Arc::new(AtomicBool::new(false));
    let interrupted = Arc::new(AtomicBool::new(false));
    let issued = Arc::new(AtomicU64::new(0));
    let inserts = Arc::new(InsertCounter::new(cfg.records));
    let sum_mismatches = Arc::new(AtomicU64::new(0));

    let (len, template) = match cfg.operations {
        Some(n) => (
            n,
            "run {wide_bar} {pos}/{len} ops [{elapsed_precise}] {msg}",
        ),
        None => (
            cfg.duration.as_secs().max(1),
            "run {wide_bar} {pos}/{len} s {msg}",
        ),
    };
    let pb = progress_bar(cfg.progress, len, template);

    let mut tasks = Vec::new();
    for i in 0..cfg.threads {
        let mut w = Worker {
            store: store.clone(),
            cfg: cfg.clone(),
            rng: SmallRng::seed_from_u64(cfg.seed.wrapping_add(1_000_003 * (i as u64 + 1))),
            chooser: KeyChooser::new(cfg.distribution, cfg.records),
            inserts: inserts.clone(),
            sum_mismatches: sum_mismatches.clone(),
        };
        let (stop, issued, recorder) = (stop.clone(), issued.clone(), recorder.clone());
        let limit = cfg.operations;
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Some(n) = limit {
                    if issued.fetch_add(1, Ordering::Relaxed) >= n {
                        break;
                    }
                }
                let op = w.cfg.workload.choose(&mut w.rng);
                let t = Instant::now();
                let (outcome, retries) = w.exec(op).await;
                recorder.record(op, t.elapsed(), outcome, retries);
            }
        }));
    }

    // The clock, the progress bar and Ctrl-C.
    let ticker = {
        let (stop, interrupted, recorder, pb) = (
            stop.clone(),
            interrupted.clone(),
            recorder.clone(),
            pb.clone(),
        );
        let (operations, duration) = (cfg.operations, cfg.duration);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            let mut window: std::collections::VecDeque<(Instant, u64)> = Default::default();
            let ctrl_c = tokio::signal::ctrl_c();
            tokio::pin!(ctrl_c);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = &mut ctrl_c => {
                        interrupted.store(true, Ordering::Relaxed);
                        stop.store(true, Ordering::Relaxed);
                        return;
                    }
                }
                let now = Instant::now();
                let done = recorder.done();
                window.push_back((now, done));
                while window.len() > 1 && now - window[0].0 > Duration::from_secs(2) {
                    window.pop_front();
                }
                let (t0, d0) = window[0];
                let secs = (now - t0).as_secs_f64();
                let rate = if secs > 0.0 {
                    (done - d0) as f64 / secs
                } else {
                    0.0
                };
                let elapsed = recorder.start().elapsed();
                match operations {
                    Some(_) => pb.set_position(done),
                    None => pb.set_position(elapsed.as_secs().min(duration.as_secs())),
                }
                pb.set_message(format!("{done} ops, {rate:.0} ops/s"));
                if operations.is_none() && elapsed >= duration {
                    stop.store(true, Ordering::Relaxed);
                    return;
                }
            }
        })
    };

    for t in tasks {
        if let Err(e) = t.await {
            eprintln!("meridian-ycsb: a worker failed: {e}");
        }
    }
    let elapsed = recorder.start().elapsed();
    stop.store(true, Ordering::Relaxed);
    ticker.abort();
    pb.finish_and_clear();
    RunReport {
        recorder,
        elapsed,
        interrupted: interrupted.load(Ordering::Relaxed),
        sum_mismatches: sum_mismatches.load(Ordering::Relaxed),
    }
}

#[cfg(test)]
mod tests {
    use indicatif::ProgressDrawTarget;

    use super::*;

    #[test]
    fn load_rate_is_whole_records_per_second() {
        assert_eq!(records_per_sec(12_345.678), "12346 records/s");
        assert_eq!(records_per_sec(0.4), "0 records/s");
        assert_eq!(
            load_summary(1_000, Duration::from_millis(2_500)),
            "400 records/s in 2.5 s"
        );
    }

    #[test]
    fn load_bar_ends_full_with_the_final_count() {
        let pb = load_bar(true, 120);
        pb.set_draw_target(ProgressDrawTarget::hidden());
        for batch in [LOAD_BATCH as u64, LOAD_BATCH as u64, 20] {
            pb.inc(batch);
        }
        finish_load_bar(&pb, 120, Duration::from_secs(1));
        assert!(pb.is_finished());
        assert_eq!(pb.position(), 120);
        assert_eq!(pb.length(), Some(120));
        assert_eq!(pb.message(), "120 records/s in 1.0 s");
    }
}
