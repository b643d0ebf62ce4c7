//! The two-phase-commit coordinator core's throughput in memory
//! (docs/design.md §5.1): one transaction's whole life in
//! `meridian_txn::coordinator::Coordinator` — begin (prepares out), every
//! participant's yes vote, the commit record applied, every
//! acknowledgement, forgotten in batches — for 2 and 5 participant groups.
//! No Paxos, no network, no locks: the coordinator's own bookkeeping, the
//! part of a cross-group commit the coordinator adds on top of its group's
//! log round.

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use meridian_participant::TxnId;
use meridian_truetime::{Timestamp, TtInterval};
use meridian_txn::coordinator::{Action, Coordinator, Vote};

const T0: u64 = 1_767_225_600_000_000_000;
/// Clock uncertainty of the readings, 1 ms.
const EPS: u64 = 1_000_000;
/// Transactions between timer ticks (which flush the forget batch).
const TICK_EVERY: u64 = 256;

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("coordinator");
    group.throughput(Throughput::Elements(1));
    for participants in [2u64, 5] {
        group.bench_function(format!("commit/{participants}_participants"), |b| {
            let mut coord = Coordinator::default();
            let mut out: Vec<Action> = Vec::with_capacity(64);
            let groups: Vec<u64> = (2..2 + participants).collect();
            let mut n = 0u64;
            b.iter(|| {
                n += 1;
                let now = TtInterval::around(Timestamp::from_nanos(T0 + n * 1_000), EPS);
                let txn = TxnId::new(1, n);
                coord.begin(now, txn, groups.clone(), &mut out);
                for &g in &groups {
                    coord.on_vote(txn, g, Vote::Yes(now.latest), &mut out);
                }
                coord.on_commit_applied(txn, now.latest.next(), &mut out);
                for &g in &groups {
                    coord.on_ack(txn, g, &mut out);
                }
                if n % TICK_EVERY == 0 {
                    coord.tick(now, &mut out);
                }
                black_box(out.len());
                out.clear();
            })
        });
    }
    group.finish();
    c.final_summary();
}
