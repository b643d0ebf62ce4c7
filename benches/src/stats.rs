//! What a run measured: per operation kind, a latency histogram of the
//! successes and one of the failures (YCSB's `[READ]` and `[READ-FAILED]`)
//! with the failures counted by reason; a per-second timeline of
//! successful completions and their latencies, overall and per operation
//! kind; and the transactions' retries. One lock, taken once per operation: negligible beside an
//! operation that crosses the network and waits for an fsync.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::workload::Op;

/// Largest latency a histogram holds exactly, in µs (one hour); longer
/// ones are recorded as this.
const MAX_LATENCY_US: u64 = 3_600_000_000;

fn histogram(sigfig: u8) -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, sigfig).expect("valid histogram bounds")
}

/// One operation kind's measurements.
#[derive(Clone, Debug)]
pub struct OpStats {
    /// Latencies of the successful operations, µs.
    pub latency: Histogram<u64>,
    /// Latencies of the failed operations, µs (after the client's
    /// retries: from the first attempt's start to the final error).
    pub failed_latency: Histogram<u64>,
    /// Operations that failed, by reason.
    pub failed: BTreeMap<String, u64>,
}

impl OpStats {
    fn new() -> OpStats {
        OpStats {
            latency: histogram(3),
            failed_latency: histogram(3),
            failed: BTreeMap::new(),
        }
    }

    /// Operations that failed.
    pub fn failures(&self) -> u64 {
        self.failed.values().sum()
    }
}

/// One second of the run.
#[derive(Clone, Debug)]
pub struct Second {
    /// Operations that succeeded in it.
    pub ops: u64,
    /// Their latencies, µs (two significant figures).
    pub latency: Histogram<u64>,
    /// The same per operation kind, indexed as [`Op::ALL`]; `None` for a
    /// kind that did not succeed in this second.
    pub by_op: Vec<Option<Histogram<u64>>>,
}

impl Second {
    /// A second with nothing recorded.
    pub(crate) fn new() -> Second {
        Second {
            ops: 0,
            latency: histogram(2),
            by_op: vec![None; Op::ALL.len()],
        }
    }

    /// The p99 latency of `op`'s successes in this second, µs.
    pub fn p99_of(&self, op: Op) -> Option<u64> {
        self.by_op[op.index()]
            .as_ref()
            .filter(|h| !h.is_empty())
            .map(|h| h.value_at_quantile(0.99))
    }
}

#[derive(Debug)]
struct Inner {
    ops: Vec<OpStats>,
    timeline: Vec<Second>,
    retries: u64,
}

/// Collects a run's measurements from every worker.
#[derive(Debug)]
pub struct Recorder {
    start: Instant,
    done: AtomicU64,
    inner: Mutex<Inner>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl Recorder {
    /// A recorder whose clock starts now.
    pub fn new() -> Recorder {
        Recorder {
            start: Instant::now(),
            done: AtomicU64::new(0),
            inner: Mutex::new(Inner {
                ops: Op::ALL.iter().map(|_| OpStats::new()).collect(),
                timeline: Vec::new(),
                retries: 0,
            }),
        }
    }

    /// When the run started.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// Operations finished so far, successful or not.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Records one operation that finished now after `latency`: `Ok` or
    /// the reason it failed. `retries` counts the attempts it took beyond
    /// the first.
    pub fn record(&self, op: Op, latency: Duration, outcome: Result<(), String>, retries: u64) {
        let us = (latency.as_micros() as u64).clamp(1, MAX_LATENCY_US);
        let second = self.start.elapsed().as_secs() as usize;
        let mut inner = self.inner.lock().expect("recorder lock");
        inner.retries += retries;
        match outcome {
            Ok(()) => {
                inner.ops[op.index()].latency.saturating_record(us);
                while inner.timeline.len() <= second {
                    inner.timeline.push(Second::new());
                }
                let s = &mut inner.timeline[second];
                s.ops += 1;
                s.latency.saturating_record(us);
                s.by_op[op.index()]
                    .get_or_insert_with(|| histogram(2))
                    .saturating_record(us);
            }
            Err(reason) => {
                let o = &mut inner.ops[op.index()];
                o.failed_latency.saturating_record(us);
                *o.failed.entry(reason).or_default() += 1;
            }
        }
        drop(inner);
        self.done.fetch_add(1, Ordering::Relaxed);
    }

    /// The measurements so far: per operation kind (indexed as
    /// [`Op::ALL`]), the timeline, and the retries.
    pub fn snapshot(&self) -> (Vec<OpStats>, Vec<Second>, u64) {
        let inner = self.inner.lock().expect("recorder lock");
        (inner.ops.clone(), inner.timeline.clone(), inner.retries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_successes_failures_and_seconds() {
        let r = Recorder::new();
        r.record(Op::Read, Duration::from_micros(300), Ok(()), 0);
        r.record(Op::Read, Duration::from_micros(500), Ok(()), 0);
        r.record(
            Op::Transfer,
            Duration::from_millis(2),
            Err("wounded".into()),
            3,
        );
        let (ops, timeline, retries) = r.snapshot();
        assert_eq!(r.done(), 3);
        assert_eq!(retries, 3);
        assert_eq!(ops[Op::Read.index()].latency.len(), 2);
        assert_eq!(ops[Op::Transfer.index()].failures(), 1);
        assert_eq!(ops[Op::Transfer.index()].latency.len(), 0);
        assert_eq!(timeline.iter().map(|s| s.ops).sum::<u64>(), 2);
    }

    #[test]
    fn failures_keep_their_latencies_apart_from_the_successes() {
        let r = Recorder::new();
        r.record(Op::Read, Duration::from_micros(300), Ok(()), 0);
        r.record(
            Op::Read,
            Duration::from_millis(40),
            Err("timeout".into()),
            0,
        );
        let (ops, timeline, _) = r.snapshot();
        let read = &ops[Op::Read.index()];
        assert_eq!(read.latency.len(), 1);
        assert_eq!(read.failed_latency.len(), 1);
        assert!(
            read.failed_latency.min() >= 39_000,
            "{}",
            read.failed_latency.min()
        );
        assert!(read.latency.max() < 1_000);
        assert_eq!(timeline[0].ops, 1, "the timeline counts successes");
    }

    #[test]
    fn each_second_holds_a_p99_per_operation_kind() {
        let r = Recorder::new();
        for _ in 0..10 {
            r.record(Op::Read, Duration::from_micros(200), Ok(()), 0);
            r.record(Op::Update, Duration::from_micros(5_000), Ok(()), 0);
        }
        let (_, timeline, _) = r.snapshot();
        let s = &timeline[0];
        let read = s.p99_of(Op::Read).expect("reads in this second");
        let update = s.p99_of(Op::Update).expect("updates in this second");
        assert!((198..=202).contains(&read), "{read}");
        assert!((4_950..=5_050).contains(&update), "{update}");
        assert_eq!(s.p99_of(Op::Scan), None);
    }
}
