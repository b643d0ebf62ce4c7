//! Reads at future timestamps (docs/transactions.md, "Reads at a
//! timestamp"; docs/paxos.md): a read at `t` pushes only the later writes
//! of what it read above `t` (the leader's timestamp cache), never the
//! group's other writes; a read more than L ahead of `TT.now().latest`
//! waits until it is within L, one more than M ahead is refused; and a
//! close proposed for a future timestamp never holds back the closes that
//! advance every replica's safe time.

mod common;

use common::{EPS, MS, T0, b, begin, commit_req, commit_ts, put};
use meridian_truetime::Timestamp;
use meridian_txn::testkit::LocalCluster;
use meridian_txn::{
    CcMode, DEFAULT_MAX_READ_LEAD_NANOS, DEFAULT_READ_LEAD_NANOS, ReadAt, ReadOp, ReadResult,
    Reply, Request, Response, TxnError,
};

/// Three replicas led by replica 1, whose idle closes are 10 s apart: a
/// read ahead of the log is closed by the read itself or not at all.
fn cluster(configure: impl Fn(&mut meridian_txn::Config)) -> LocalCluster {
    let mut c = LocalCluster::new(3, T0, EPS, |cfg| {
        cfg.close_interval_nanos = 10_000 * MS;
        configure(cfg);
    });
    c.elect(1);
    c
}

fn get_at(at: Timestamp, keys: &[&str]) -> Request {
    Request::ReadOnly {
        at: ReadAt::Exact(at),
        reads: keys.iter().map(|k| ReadOp::Get(b(k))).collect(),
    }
}

fn values(r: &Reply) -> (Timestamp, Vec<Option<String>>) {
    match r {
        Ok(Response::ReadOnly { read_ts, results }) => (
            *read_ts,
            results
                .iter()
                .map(|r| match r {
                    ReadResult::Value(v) => {
                        v.as_ref().map(|v| String::from_utf8(v.to_vec()).unwrap())
                    }
                    ReadResult::Rows(rows) => Some(format!("{} rows", rows.len())),
                })
                .collect(),
        ),
        other => panic!("read-only failed: {other:?}"),
    }
}

/// Commits `writes` at replica 1 and answers its timestamp and how long
/// (true time) the commit took.
fn timed_put(c: &mut LocalCluster, writes: &[(&str, &str)]) -> (Timestamp, u64) {
    let txn = begin(c, CcMode::Locking, None);
    let start = c.now().earliest;
    let ts = commit_ts(&c.call(1, commit_req(txn, writes)));
    (ts, c.now().earliest.nanos_since(start))
}

#[test]
fn a_far_future_read_does_not_push_a_later_write_of_another_key() {
    let mut c = cluster(|_| {});
    put(&mut c, &[("k", "1")]);
    // Half a second ahead: within M, so it waits; the write meanwhile is
    // not pushed after it (it used to raise the whole group's floor).
    let at = c.now().latest.saturating_add(500 * MS);
    let read = c.submit(1, get_at(at, &["k"]));
    let (ts, took) = timed_put(&mut c, &[("other", "x")]);
    assert!(
        ts < at,
        "an unrelated write was pushed to {ts} by a read at {at}"
    );
    assert!(took < 50 * MS, "the unrelated write took {} ms", took / MS);
    c.run_for(600 * MS);
    let (read_ts, v) = values(c.reply(read).expect("served once within L"));
    assert_eq!((read_ts, v), (at, vec![Some("1".into())]));
    // Served through the timestamp cache, the read pushes no other key's
    // write either.
    let (ts, took) = timed_put(&mut c, &[("other", "y")]);
    assert!(took < 50 * MS, "the unrelated write took {} ms", took / MS);
    let _ = ts;
}

#[test]
fn a_read_at_t_pushes_a_later_write_of_the_same_key_above_t_and_no_other() {
    let mut c = cluster(|_| {});
    put(&mut c, &[("k", "1"), ("j", "1")]);
    // Within L ahead of the clock, beyond the log: served at once at the
    // leader, by its timestamp cache, without a Paxos round.
    let at = c
        .now()
        .latest
        .saturating_add(DEFAULT_READ_LEAD_NANOS - 2 * MS);
    assert!(at > c.replica(1).paxos().last_assigned_ts());
    let slots = c.replica(1).paxos().last_slot();
    let r = c.call_now(1, get_at(at, &["k"]));
    assert_eq!(values(&r), (at, vec![Some("1".into())]));
    assert_eq!(c.replica(1).paxos().last_slot(), slots, "no entry proposed");
    // A write of another key is not pushed: it commits below `at`.
    let (other, _) = timed_put(&mut c, &[("j", "2")]);
    assert!(
        other < at,
        "a write of j was pushed to {other} by a read of k at {at}"
    );
    // A write of the key read is: the read stays repeatable everywhere.
    let (same, _) = timed_put(&mut c, &[("k", "2")]);
    assert!(
        same > at,
        "a write of k at {same}, at or below a read of it at {at}"
    );
    c.run_for(100 * MS);
    for node in 1..=3 {
        let r = c.call(node, get_at(at, &["k", "j"]));
        assert_eq!(
            values(&r),
            (at, vec![Some("1".into()), Some("2".into())]),
            "replica {node}"
        );
    }
}

#[test]
fn a_scan_at_t_pushes_a_later_write_into_its_range_above_t() {
    let mut c = cluster(|_| {});
    put(&mut c, &[("a", "1")]);
    let at = c
        .now()
        .latest
        .saturating_add(DEFAULT_READ_LEAD_NANOS - 2 * MS);
    let scan = Request::ReadOnly {
        at: ReadAt::Exact(at),
        reads: vec![ReadOp::Scan {
            start: b("a"),
            end: Some(b("m")),
            limit: 10,
        }],
    };
    let r = c.call_now(1, scan.clone());
    assert_eq!(values(&r), (at, vec![Some("1 rows".into())]));
    let (outside, _) = timed_put(&mut c, &[("x", "1")]);
    assert!(outside < at, "a write outside the range was pushed");
    let (inside, _) = timed_put(&mut c, &[("c", "1")]);
    assert!(
        inside > at,
        "an insert into the scanned range at {inside} ≤ {at}"
    );
    c.run_for(100 * MS);
    assert_eq!(values(&c.call(2, scan)), (at, vec![Some("1 rows".into())]));
}

#[test]
fn a_transaction_without_writes_pushes_only_writes_of_what_it_read() {
    let mut c = cluster(|_| {});
    put(&mut c, &[("k", "1")]);
    let txn = begin(&mut c, CcMode::Locking, None);
    let r = c.call(
        1,
        Request::Read {
            txn,
            keys: vec![b("k")],
            guest: None,
        },
    );
    assert!(r.is_ok(), "{r:?}");
    let s = commit_ts(&c.call(1, commit_req(txn, &[])));
    let (same, _) = timed_put(&mut c, &[("k", "2")]);
    assert!(
        same > s,
        "a write of k at {same}, at or below a read of it at {s}"
    );
}

#[test]
fn a_read_more_than_m_ahead_fails_with_read_timestamp_too_far_ahead() {
    let mut c = cluster(|_| {});
    for node in 1..=3 {
        let at = c
            .now()
            .latest
            .saturating_add(DEFAULT_MAX_READ_LEAD_NANOS + MS);
        let r = c.call_now(node, get_at(at, &["k"]));
        match &r {
            Err(e @ TxnError::ReadTimestampTooFarAhead { read_ts, .. }) => {
                assert_eq!(*read_ts, at);
                assert!(!e.is_retryable());
            }
            other => panic!("replica {node}: {other:?}"),
        }
    }
    // The year 2030, as the CLI's `--at 2030-01-01T00:00:00Z` sends it.
    let r = c.call_now(1, get_at(Timestamp(1_893_456_000_000_000_000), &["k"]));
    assert!(
        matches!(r, Err(TxnError::ReadTimestampTooFarAhead { .. })),
        "{r:?}"
    );
}

#[test]
fn a_read_between_l_and_m_ahead_waits_until_within_l_then_is_served() {
    // Idle closes 20 ms apart, so a follower's safe time follows the clock.
    let mut c = cluster(|cfg| cfg.close_interval_nanos = 20 * MS);
    put(&mut c, &[("k", "1")]);
    let lead = 300 * MS;
    for node in [1, 2] {
        let start = c.now().latest;
        let at = start.saturating_add(lead);
        let id = c.submit(node, get_at(at, &["k"]));
        // Not served while more than L ahead of the clock.
        c.run_for(lead - DEFAULT_READ_LEAD_NANOS - 3 * EPS);
        assert!(c.reply(id).is_none(), "replica {node} served {at} early");
        c.run_for(200 * MS);
        assert_eq!(
            values(c.reply(id).expect("served")),
            (at, vec![Some("1".into())]),
            "replica {node}"
        );
    }
}

#[test]
fn a_close_for_a_future_timestamp_never_blocks_later_closes() {
    // L and M of an hour: the leader admits a read an hour ahead, beyond
    // its lease, and proposes a close for it that must wait for the clock.
    let mut c = LocalCluster::new(3, T0, EPS, |cfg| {
        cfg.close_interval_nanos = 20 * MS;
        cfg.read_lead_nanos = 3_600_000 * MS;
        cfg.max_read_lead_nanos = 3_600_000 * MS;
        cfg.read_wait_nanos = 5_000 * MS;
    });
    c.elect(1);
    c.run_for(100 * MS);
    let at = c.now().latest.saturating_add(1_800_000 * MS);
    let id = c.submit(1, get_at(at, &["k"]));
    c.run_for(50 * MS);
    assert!(c.reply(id).is_none());
    // The idle closes go on: every replica's safe time keeps up with the
    // clock.
    for _ in 0..5 {
        c.run_for(200 * MS);
        let now = c.now().earliest;
        for node in 1..=3 {
            let lag = now.nanos_since(c.replica(node).t_safe());
            assert!(
                lag < 100 * MS,
                "replica {node}'s safe time lags {} ms",
                lag / MS
            );
        }
    }
    // And a bounded-stale read at a follower is served.
    let r = c.call(
        2,
        Request::ReadOnly {
            at: ReadAt::MaxStaleness(100 * MS),
            reads: vec![ReadOp::Get(b("k"))],
        },
    );
    assert!(r.is_ok(), "{r:?}");
}

#[test]
fn a_new_leader_writes_above_every_read_its_predecessor_served_from_its_cache() {
    let mut c = cluster(|_| {});
    put(&mut c, &[("k", "1")]);
    let at = c
        .now()
        .latest
        .saturating_add(DEFAULT_READ_LEAD_NANOS - 2 * MS);
    let r = c.call_now(1, get_at(at, &["k"]));
    assert_eq!(values(&r), (at, vec![Some("1".into())]));
    // Leader 1 is cut off at once: its cache is gone with it. Leader 2's
    // timestamps start above every lease 1 held, and `at` lay inside one.
    c.isolate(1);
    c.elect(2);
    c.heal();
    let txn = begin_at(&mut c, 2);
    let ts = commit_ts(&c.call(2, commit_req(txn, &[("k", "2")])));
    assert!(
        ts > at,
        "the new leader wrote k at {ts}, at or below a read of it at {at}"
    );
    c.run_for(100 * MS);
    for node in 1..=3 {
        let r = c.call(node, get_at(at, &["k"]));
        assert_eq!(values(&r), (at, vec![Some("1".into())]), "replica {node}");
    }
}

/// Begins a locking transaction at replica `node`.
fn begin_at(c: &mut LocalCluster, node: u64) -> meridian_participant::TxnId {
    match c.call(
        node,
        Request::Begin {
            priority: None,
            mode: CcMode::Locking,
            reserve: 0,
        },
    ) {
        Ok(Response::Begun { txn, .. }) => txn,
        other => panic!("begin failed: {other:?}"),
    }
}
