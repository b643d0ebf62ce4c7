//! Protocol rules of single-group transactions, one test each, named after
//! the rule and the paper section it checks (Spanner OSDI'12 §4; docs/design.md
//! §4–§6). Driven by `meridian_txn::testkit::LocalCluster`: real replicas,
//! no faults but the isolation a test asks for.

use bytes::Bytes;
use meridian_participant::{Priority, TxnId, Write};
use meridian_truetime::Timestamp;
use meridian_txn::testkit::LocalCluster;
use meridian_txn::{
    AbortReason, CcMode, InvalidRequest, ReadAt, ReadOp, ReadResult, Reply, Request, Response,
    TxnError,
};

const T0: Timestamp = Timestamp(1_767_225_600_000_000_000);
const MS: u64 = 1_000_000;
const EPS: u64 = MS;

/// Three replicas with replica 1 serving as leader.
fn cluster(configure: impl Fn(&mut meridian_txn::Config)) -> LocalCluster {
    let mut c = LocalCluster::new(3, T0, EPS, configure);
    c.elect(1);
    c
}

/// A cluster whose clock uncertainty (50 ms) makes every commit wait far
/// longer than its Paxos round, and a transaction of priority `priority`
/// (if given) that writes `k` and is left in its commit wait. Returns the
/// cluster, the transaction and its commit request.
fn in_commit_wait(priority: Option<u64>) -> (LocalCluster, TxnId, u64) {
    let mut c = LocalCluster::new(3, T0, 50 * MS, |_| {});
    c.elect(1);
    let (txn, _) = begin(&mut c, 1, priority);
    let id = c.submit(1, commit_req(txn, &[("k", "v")]));
    c.run_for(2 * MS);
    assert!(c.reply(id).is_none(), "no answer before TT.after(s)");
    (c, txn, id)
}

/// A cluster led by replica 1 whose clocks are skewed within ε (5 ms):
/// follower 2's clock runs 8 ms ahead of the leader's, so it passes a
/// timestamp, and applies an entry, well before the leader does.
fn skewed_cluster() -> LocalCluster {
    let mut c = LocalCluster::new(3, T0, 5 * MS, |cfg| cfg.close_interval_nanos = MS);
    c.elect(1);
    c.set_offset(1, -4 * (MS as i64));
    c.set_offset(2, 4 * (MS as i64));
    c.run_for(50 * MS);
    c
}

/// Commits `k = v` at the leader of a [`skewed_cluster`] and advances the
/// clock until follower 2 has applied it but the leader has not (it is
/// still in its commit wait). Returns the commit timestamp.
fn commit_shown_first_by_a_follower(c: &mut LocalCluster) -> Timestamp {
    let (txn, _) = begin(c, 1, None);
    let id = c.submit(1, commit_req(txn, &[("k", "v")]));
    for _ in 0..20 {
        c.advance(MS / 2);
        c.tick_all();
        let f = c.replica(2).state().last_commit_ts();
        if f > Timestamp::ZERO && c.replica(1).state().last_commit_ts() < f {
            assert!(
                c.reply(id).is_none(),
                "the leader has not finished its commit wait"
            );
            return f;
        }
    }
    panic!("the follower should apply the commit before the leader does");
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn begin(c: &mut LocalCluster, node: u64, priority: Option<u64>) -> (TxnId, Priority) {
    let priority = priority.map(|p| Priority::new(Timestamp(p)));
    match c.call(
        node,
        Request::Begin {
            priority,
            mode: CcMode::Locking,
            reserve: 0,
        },
    ) {
        Ok(Response::Begun { txn, priority, .. }) => (txn, priority),
        other => panic!("begin failed: {other:?}"),
    }
}

fn read(c: &mut LocalCluster, node: u64, txn: TxnId, keys: &[&str]) -> Reply {
    c.call(
        node,
        Request::Read {
            txn,
            keys: keys.iter().map(|k| b(k)).collect(),
            guest: None,
        },
    )
}

fn values(r: Reply) -> Vec<Option<String>> {
    match r {
        Ok(Response::Read { values, .. }) => values
            .into_iter()
            .map(|v| v.map(|v| String::from_utf8(v.to_vec()).unwrap()))
            .collect(),
        other => panic!("read failed: {other:?}"),
    }
}

fn commit_req(txn: TxnId, writes: &[(&str, &str)]) -> Request {
    Request::Commit {
        txn,
        writes: writes.iter().map(|(k, v)| Write::put(b(k), b(v))).collect(),
        participants: vec![],
    }
}

fn commit_ts(r: &Reply) -> Timestamp {
    match r {
        Ok(Response::Committed { commit_ts }) => *commit_ts,
        other => panic!("commit failed: {other:?}"),
    }
}

/// Commits `writes` in a fresh transaction at replica 1.
fn put(c: &mut LocalCluster, writes: &[(&str, &str)]) -> Timestamp {
    let (txn, _) = begin(c, 1, None);
    commit_ts(&c.call(1, commit_req(txn, writes)))
}

fn read_only(c: &mut LocalCluster, node: u64, at: ReadAt, keys: &[&str]) -> Reply {
    c.call(
        node,
        Request::ReadOnly {
            at,
            reads: keys.iter().map(|k| ReadOp::Get(b(k))).collect(),
        },
    )
}

fn ro_values(r: &Reply) -> (Timestamp, Vec<Option<String>>) {
    match r {
        Ok(Response::ReadOnly { read_ts, results }) => (
            *read_ts,
            results
                .iter()
                .map(|r| match r {
                    ReadResult::Value(v) => {
                        v.as_ref().map(|v| String::from_utf8(v.to_vec()).unwrap())
                    }
                    ReadResult::Rows(_) => panic!("unexpected rows"),
                })
                .collect(),
        ),
        other => panic!("read-only failed: {other:?}"),
    }
}

fn aborted(r: &Reply) -> AbortReason {
    match r {
        Err(TxnError::Aborted { reason, .. }) => *reason,
        other => panic!("expected an abort, got {other:?}"),
    }
}

#[test]
fn spanner_s4_2_1_single_group_transaction_commits_in_one_paxos_round() {
    let mut c = cluster(|_| {});
    let (txn, _) = begin(&mut c, 1, None);
    assert_eq!(values(read(&mut c, 1, txn, &["k"])), vec![None]);
    let before = c.applied(2).len();
    let ts = commit_ts(&c.call(1, commit_req(txn, &[("k", "v")])));
    c.run_for(200 * MS);
    // One log entry for the commit (closed timestamps aside).
    let commits = c.applied(2)[before..].iter().filter(|e| e.ts == ts).count();
    assert_eq!(commits, 1);
    let (read_ts, v) = ro_values(&read_only(&mut c, 1, ReadAt::Strong, &["k"]));
    assert!(read_ts >= ts);
    assert_eq!(v, vec![Some("v".into())]);
}

#[test]
fn spanner_s4_1_2_commit_timestamp_exceeds_now_latest_at_arrival_and_every_earlier_timestamp() {
    let mut c = cluster(|_| {});
    let (txn, _) = begin(&mut c, 1, None);
    let arrival_latest = c.now().latest;
    let s1 = commit_ts(&c.call(1, commit_req(txn, &[("a", "1")])));
    assert!(s1 > arrival_latest, "s > TT.now().latest at arrival");
    let s2 = put(&mut c, &[("b", "2")]);
    assert!(s2 > s1, "timestamps rise");
}

#[test]
fn spanner_s4_1_2_commit_wait_acknowledges_and_exposes_only_after_tt_after_s() {
    let (mut c, _, id) = in_commit_wait(None);
    assert!(
        c.replica(1).unapplied_len() > 0,
        "the chosen commit waits before it applies"
    );
    for node in 1..=3 {
        assert_eq!(
            c.replica(node).state().read_latest(b"k"),
            None,
            "not visible anywhere before TT.after(s)"
        );
    }
    let mut answered_at = None;
    for _ in 0..500 {
        c.run_for(MS);
        if c.reply(id).is_some() {
            answered_at = Some(c.now());
            break;
        }
    }
    let s = commit_ts(c.reply(id).unwrap());
    assert!(
        answered_at.unwrap().after(s),
        "answered only once TT.after(s)"
    );
}

#[test]
fn spanner_s4_2_1_reads_take_shared_locks_and_a_younger_writer_waits() {
    let mut c = cluster(|_| {});
    let (reader, _) = begin(&mut c, 1, Some(10));
    let (writer, _) = begin(&mut c, 1, Some(20));
    values(read(&mut c, 1, reader, &["k"]));
    let w = c.submit(1, commit_req(writer, &[("k", "w")]));
    c.run_for(50 * MS);
    assert!(
        c.reply(w).is_none(),
        "the younger writer waits for the reader"
    );
    let waits = c.replica(1).waits_for();
    assert_eq!(waits.len(), 1);
    assert_eq!((waits[0].waiter, waits[0].blocker), (writer, reader));
    commit_ts(&c.call(1, commit_req(reader, &[])));
    c.run_for(50 * MS);
    commit_ts(
        c.reply(w)
            .expect("the writer proceeds once the reader ends"),
    );
}

#[test]
fn spanner_s4_2_1_older_writer_wounds_a_younger_reader() {
    let mut c = cluster(|_| {});
    let (young, _) = begin(&mut c, 1, Some(20));
    let (old, _) = begin(&mut c, 1, Some(10));
    values(read(&mut c, 1, young, &["k"]));
    let ts = commit_ts(&c.call(1, commit_req(old, &[("k", "old")])));
    assert!(ts > Timestamp::ZERO);
    assert_eq!(
        aborted(&read(&mut c, 1, young, &["j"])),
        AbortReason::Wounded
    );
    assert_eq!(
        aborted(&c.call(1, commit_req(young, &[("k", "young")]))),
        AbortReason::Wounded
    );
    let (_, v) = ro_values(&read_only(&mut c, 1, ReadAt::Strong, &["k"]));
    assert_eq!(v, vec![Some("old".into())]);
}

#[test]
fn spanner_s4_2_1_committing_transaction_is_not_wounded() {
    let (mut c, _young, w) = in_commit_wait(Some(20));
    let (old, _) = begin(&mut c, 1, Some(10));
    // The older reader must wait for the committing (prepared) writer.
    let r = c.submit(
        1,
        Request::Read {
            txn: old,
            keys: vec![b("k")],
            guest: None,
        },
    );
    c.run_for(2 * MS);
    assert!(c.reply(r).is_none());
    c.run_for(300 * MS);
    commit_ts(c.reply(w).expect("young commits"));
    assert_eq!(
        values(c.reply(r).cloned().expect("old reads after")),
        vec![Some("v".into())]
    );
}

#[test]
fn spanner_s4_2_1_priority_is_kept_across_retries() {
    let mut c = cluster(|_| {});
    let at = c.now().latest;
    let (_, first) = begin(&mut c, 1, None);
    assert_eq!(first.0, at, "a first attempt gets TT.now().latest");
    c.run_for(10 * MS);
    let (_, retry) = begin(&mut c, 1, Some(first.0.as_nanos()));
    assert_eq!(retry, first, "a retry keeps its first priority");
}

#[test]
fn design_s5_1_inactive_transaction_is_aborted_and_heartbeats_keep_one_alive() {
    let mut c = cluster(|cfg| cfg.inactivity_timeout_nanos = 200 * MS);
    let (idle, _) = begin(&mut c, 1, None);
    let (live, _) = begin(&mut c, 1, None);
    values(read(&mut c, 1, idle, &["a"]));
    values(read(&mut c, 1, live, &["b"]));
    for _ in 0..6 {
        c.run_for(100 * MS);
        assert_eq!(
            c.call(1, Request::Heartbeat { txn: live }),
            Ok(Response::Alive)
        );
    }
    assert_eq!(
        aborted(&c.call(1, commit_req(idle, &[("a", "x")]))),
        AbortReason::Inactive
    );
    commit_ts(&c.call(1, commit_req(live, &[("b", "y")])));
    // The inactive transaction's lock on `a` is gone.
    put(&mut c, &[("a", "z")]);
}

#[test]
fn design_s5_1_abort_releases_every_lock() {
    let mut c = cluster(|_| {});
    let (t1, _) = begin(&mut c, 1, Some(10));
    values(read(&mut c, 1, t1, &["a", "b"]));
    assert_eq!(c.call(1, Request::Abort { txn: t1 }), Ok(Response::Aborted));
    assert_eq!(c.replica(1).active_txns(), 0);
    put(&mut c, &[("a", "1"), ("b", "2")]);
    assert_eq!(
        aborted(&read(&mut c, 1, t1, &["a"])),
        AbortReason::ClientAbort
    );
}

#[test]
fn design_s4_failover_drops_unprepared_transactions_which_abort_retryably() {
    let mut c = cluster(|_| {});
    let (txn, prio) = begin(&mut c, 1, None);
    values(read(&mut c, 1, txn, &["k"]));
    c.isolate(1);
    c.elect(2);
    let r = c.call(2, commit_req(txn, &[("k", "lost")]));
    assert_eq!(aborted(&r), AbortReason::LeaderChanged);
    assert!(r.unwrap_err().is_retryable());
    // The retry, with the same priority, commits under the new leader.
    let (retry, p) = begin(&mut c, 2, Some(prio.0.as_nanos()));
    assert_eq!(p, prio);
    values(read(&mut c, 2, retry, &["k"]));
    commit_ts(&c.call(2, commit_req(retry, &[("k", "kept")])));
    c.heal();
    c.run_for(500 * MS);
    let (_, v) = ro_values(&read_only(&mut c, 1, ReadAt::Strong, &["k"]));
    assert_eq!(v, vec![Some("kept".into())]);
}

#[test]
fn write_only_commit_of_an_ended_term_is_refused_not_executed() {
    let mut c = cluster(|_| {});
    let (txn, _) = begin(&mut c, 1, None);
    c.isolate(1);
    c.elect(2);
    // A late (or duplicated) commit of a transaction begun under the old
    // leader must never commit under the new one.
    assert_eq!(
        aborted(&c.call(2, commit_req(txn, &[("k", "ghost")]))),
        AbortReason::LeaderChanged
    );
    let (_, v) = ro_values(&read_only(&mut c, 2, ReadAt::Strong, &["k"]));
    assert_eq!(v, vec![None]);
}

#[test]
fn spanner_s4_1_1_new_leader_serves_only_after_the_old_lease_and_catch_up() {
    let mut c = cluster(|_| {});
    c.isolate(1);
    // Make 2 campaign, but stop before it serves.
    let deadline = c.replica(2).paxos().next_deadline();
    c.advance(deadline.nanos_since(c.now().midpoint()));
    c.tick(2);
    assert_eq!(c.replica(2).paxos().role(), meridian_paxos::Role::Leader);
    assert_eq!(
        c.call_now(
            2,
            Request::Begin {
                priority: None,
                mode: CcMode::Locking,
                reserve: 0,
            }
        ),
        Err(TxnError::LeaderNotReady)
    );
    // Nor does it say a transaction it does not know is aborted: an entry
    // of the old term may still commit it.
    let unknown = TxnId::new(1 << 32, 1);
    assert_eq!(
        c.call_now(2, Request::Abort { txn: unknown }),
        Err(TxnError::LeaderNotReady)
    );
    assert!(
        c.replica(1).paxos().has_lease(c.now()),
        "old lease still runs"
    );
}

#[test]
fn requests_to_a_follower_are_redirected_to_the_leader() {
    let mut c = cluster(|_| {});
    assert_eq!(
        c.call(
            2,
            Request::Begin {
                priority: None,
                mode: CcMode::Locking,
                reserve: 0,
            }
        ),
        Err(TxnError::NotLeader { leader: Some(1) })
    );
}

#[test]
fn spanner_s4_1_3_closed_timestamps_advance_safe_time_of_an_idle_group() {
    let mut c = cluster(|cfg| cfg.close_interval_nanos = 20 * MS);
    c.run_for(100 * MS);
    let t1 = c.replica(3).t_safe();
    c.run_for(200 * MS);
    let t2 = c.replica(3).t_safe();
    assert!(t2 > t1, "safe time advances with no writes");
    assert!(
        c.now().latest.nanos_since(t2) < 100 * MS,
        "a follower's safe time lags by about the close interval"
    );
    assert!(
        t2 < c.now().latest,
        "an entry applies only after TT.after(ts)"
    );
}

#[test]
fn spanner_s4_2_2_strong_read_at_a_follower_waits_for_t_safe_and_sees_prior_commits() {
    let mut c = cluster(|_| {});
    let ts = put(&mut c, &[("k", "v")]);
    let id = c.submit(
        3,
        Request::ReadOnly {
            at: ReadAt::Strong,
            reads: vec![ReadOp::Get(b("k"))],
        },
    );
    assert!(
        c.reply(id).is_none(),
        "s_read = TT.now().latest is not yet safe"
    );
    c.run_for(300 * MS);
    let (read_ts, v) = ro_values(c.reply(id).unwrap());
    assert!(read_ts > ts);
    assert_eq!(v, vec![Some("v".into())]);
}

#[test]
fn spanner_s4_2_2_strong_read_at_the_leader_is_served_at_once() {
    let mut c = cluster(|_| {});
    let ts = put(&mut c, &[("k", "v")]);
    let id = c.submit(
        1,
        Request::ReadOnly {
            at: ReadAt::Strong,
            reads: vec![ReadOp::Get(b("k"))],
        },
    );
    let (read_ts, v) = ro_values(c.reply(id).expect("no wait at the leader"));
    assert!(read_ts >= ts);
    assert_eq!(read_ts, c.replica(1).state().t_paxos_safe());
    assert_eq!(v, vec![Some("v".into())]);
}

#[test]
fn spanner_s4_2_3_snapshot_read_sees_exactly_the_commits_at_or_before_its_timestamp() {
    let mut c = cluster(|_| {});
    let s1 = put(&mut c, &[("k", "1")]);
    let s2 = put(&mut c, &[("k", "2")]);
    c.run_for(300 * MS);
    for (at, want) in [
        (s1.prev(), None),
        (s1, Some("1")),
        (s2.prev(), Some("1")),
        (s2, Some("2")),
    ] {
        for node in 1..=3 {
            let (read_ts, v) = ro_values(&read_only(&mut c, node, ReadAt::Exact(at), &["k"]));
            assert_eq!(read_ts, at);
            assert_eq!(v, vec![want.map(String::from)], "node {node} at {at:?}");
        }
    }
}

#[test]
fn spanner_s4_2_3_scans_read_a_consistent_snapshot() {
    let mut c = cluster(|_| {});
    let s1 = put(&mut c, &[("a", "1"), ("b", "1"), ("c", "1")]);
    put(&mut c, &[("b", "2"), ("d", "2")]);
    c.run_for(300 * MS);
    let scan = |c: &mut LocalCluster, at| {
        c.call(
            2,
            Request::ReadOnly {
                at,
                reads: vec![ReadOp::Scan {
                    start: b("b"),
                    end: Some(b("d")),
                    limit: 10,
                }],
            },
        )
    };
    let rows = |r: Reply| match r {
        Ok(Response::ReadOnly { results, .. }) => match &results[0] {
            ReadResult::Rows(rows) => rows
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{}={}",
                        String::from_utf8_lossy(k),
                        String::from_utf8_lossy(v)
                    )
                })
                .collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    };
    assert_eq!(rows(scan(&mut c, ReadAt::Exact(s1))), ["b=1", "c=1"]);
    assert_eq!(rows(scan(&mut c, ReadAt::Strong)), ["b=2", "c=1"]);
}

#[test]
fn spanner_s4_1_3_a_leader_asked_to_read_beyond_its_log_within_l_serves_it_at_once() {
    // Idle closes 10 s apart and reads that wait at most 1 s: only a close
    // made for the read itself can serve it.
    let mut c = cluster(|cfg| {
        cfg.close_interval_nanos = 10_000 * MS;
        cfg.read_wait_nanos = 1_000 * MS;
    });
    let ts = put(&mut c, &[("k", "v")]);
    let at = c.now().latest.saturating_add(2 * MS);
    assert!(at > c.replica(1).state().t_paxos_safe() && at > ts);
    let start = c.now().earliest;
    let (read_ts, v) = ro_values(&read_only(&mut c, 1, ReadAt::Exact(at), &["k"]));
    assert_eq!(read_ts, at);
    assert_eq!(v, vec![Some("v".into())]);
    let waited = c.now().earliest.nanos_since(start);
    assert!(waited < 50 * MS, "the read waited {} ms", waited / MS);
}

#[test]
fn spanner_s4_1_3_a_leader_closes_a_read_timestamp_in_its_timestamp_cache_and_later_writes_of_the_key_go_above_it()
 {
    let mut c = cluster(|cfg| {
        cfg.close_interval_nanos = 10_000 * MS;
        cfg.read_wait_nanos = 1_000 * MS;
    });
    put(&mut c, &[("k", "v")]);
    // Ahead of the clock, within L, inside the leader's lease.
    let at = c.now().latest.saturating_add(5 * MS);
    let slots = c.replica(1).paxos().last_slot();
    let start = c.now().earliest;
    let (read_ts, v) = ro_values(&read_only(&mut c, 1, ReadAt::Exact(at), &["k"]));
    assert_eq!((read_ts, v), (at, vec![Some("v".into())]));
    // Served without a Paxos round, and before the clock reached `at`.
    assert_eq!(c.replica(1).paxos().last_slot(), slots, "no entry proposed");
    assert!(c.now().earliest.nanos_since(start) < 50 * MS);
    // What the read did not see commits above it.
    let later = put(&mut c, &[("k", "w")]);
    assert!(
        later > at,
        "a write after the read committed at {later}, at or below {at}"
    );
    let (_, v) = ro_values(&read_only(&mut c, 2, ReadAt::Exact(at), &["k"]));
    assert_eq!(v, vec![Some("v".into())]);
}

#[test]
fn design_s5_3_snapshot_read_below_the_gc_horizon_is_a_typed_error() {
    let mut c = cluster(|cfg| {
        cfg.gc_retention_nanos = 100 * MS;
        cfg.gc_interval_nanos = 50 * MS;
    });
    let s1 = put(&mut c, &[("k", "1")]);
    put(&mut c, &[("k", "2")]);
    c.run_for(500 * MS);
    let r = read_only(&mut c, 2, ReadAt::Exact(s1), &["k"]);
    assert!(
        matches!(r, Err(TxnError::BelowGcHorizon { read_ts, .. }) if read_ts == s1),
        "{r:?}"
    );
    assert!(!r.unwrap_err().is_retryable());
}

#[test]
fn design_s5_3_snapshot_read_below_the_clusters_birth_is_a_typed_error_naming_the_birth() {
    let birth = T0;
    let mut c = cluster(|cfg| cfg.birth = Some(birth));
    let s = put(&mut c, &[("k", "v")]);
    for node in 1..=3 {
        for at in [Timestamp(1_000_000_000), Timestamp(birth.0 - 1)] {
            let r = read_only(&mut c, node, ReadAt::Exact(at), &["k"]);
            assert!(
                matches!(r, Err(TxnError::ReadBelowClusterBirth { read_ts, birth: b })
                    if read_ts == at && b == birth),
                "replica {node} at {at}: {r:?}"
            );
            assert!(!r.unwrap_err().is_retryable());
        }
    }
    // At the birth: served, nothing stored yet; at the commit: the value.
    let (_, v) = ro_values(&read_only(&mut c, 2, ReadAt::Exact(birth), &["k"]));
    assert_eq!(v, vec![None]);
    let (_, v) = ro_values(&read_only(&mut c, 2, ReadAt::Exact(s), &["k"]));
    assert_eq!(v, vec![Some("v".into())]);
    // A bounded staleness reaching below the birth is served at a recent time.
    let r = read_only(&mut c, 3, ReadAt::MaxStaleness(u64::MAX), &["k"]);
    assert!(r.is_ok(), "{r:?}");
    // Without a birth (an older configuration): no check.
    let mut old = cluster(|_| {});
    let (_, v) = ro_values(&read_only(
        &mut old,
        1,
        ReadAt::Exact(Timestamp(T0.0 - 1)),
        &["k"],
    ));
    assert_eq!(v, vec![None]);
}

#[test]
fn spanner_s4_1_3_read_in_the_future_fails_not_yet_safe_after_the_wait_bound() {
    let mut c = cluster(|cfg| {
        cfg.read_wait_nanos = 100 * MS;
        cfg.close_interval_nanos = 10_000 * MS;
    });
    let future = c.now().latest.saturating_add(500 * MS);
    let r = read_only(&mut c, 2, ReadAt::Exact(future), &["k"]);
    assert!(matches!(r, Err(TxnError::NotYetSafe { read_ts, .. }) if read_ts == future));
    assert!(r.unwrap_err().is_retryable());
}

#[test]
fn bounded_staleness_read_serves_the_newest_safe_timestamp_within_the_bound() {
    let mut c = cluster(|_| {});
    let ts = put(&mut c, &[("k", "v")]);
    c.run_for(300 * MS);
    let before = c.now().latest;
    let r = read_only(&mut c, 3, ReadAt::MaxStaleness(500 * MS), &["k"]);
    let (read_ts, v) = ro_values(&r);
    assert!(read_ts >= before.saturating_sub(500 * MS));
    assert!(read_ts >= ts);
    assert_eq!(read_ts, c.replica(3).t_safe().min(read_ts));
    assert_eq!(v, vec![Some("v".into())]);
}

#[test]
fn a_retried_commit_learns_the_outcome_of_the_first() {
    let mut c = cluster(|_| {});
    let (txn, _) = begin(&mut c, 1, None);
    let first = c.call(1, commit_req(txn, &[("k", "v")]));
    let again = c.call(1, commit_req(txn, &[("k", "v")]));
    assert_eq!(commit_ts(&again), commit_ts(&first));
    // A duplicate arriving while the first is in flight is answered too.
    let (txn2, _) = begin(&mut c, 1, None);
    let a = c.submit(1, commit_req(txn2, &[("k", "w")]));
    let b2 = c.submit(1, commit_req(txn2, &[("k", "w")]));
    c.run_for(100 * MS);
    assert_eq!(c.replies(a).len(), 1);
    assert_eq!(c.replies(a), c.replies(b2));
}

#[test]
fn a_transaction_without_writes_commits_at_a_waited_timestamp() {
    let mut c = cluster(|_| {});
    let ts = put(&mut c, &[("k", "v")]);
    let (txn, _) = begin(&mut c, 1, None);
    values(read(&mut c, 1, txn, &["k"]));
    let r = c.call(1, commit_req(txn, &[]));
    let s = commit_ts(&r);
    assert!(s >= ts);
    assert!(c.now().after(s));
    assert_eq!(
        c.call(1, commit_req(txn, &[])),
        r,
        "a retry learns it committed"
    );
}

#[test]
fn later_write_to_the_same_key_in_one_commit_wins() {
    let mut c = cluster(|_| {});
    let (txn, _) = begin(&mut c, 1, None);
    commit_ts(&c.call(1, commit_req(txn, &[("k", "first"), ("k", "second")])));
    let (_, v) = ro_values(&read_only(&mut c, 1, ReadAt::Strong, &["k"]));
    assert_eq!(v, vec![Some("second".into())]);
}

#[test]
fn design_s6_invalid_requests_get_typed_errors_and_change_nothing() {
    let mut c = cluster(|_| {});
    let (txn, _) = begin(&mut c, 1, None);
    let big = vec![0u8; meridian_txn::api::MAX_VALUE_BYTES + 1];
    let r = c.call(
        1,
        Request::Commit {
            txn,
            writes: vec![Write::put(b("ok"), b("1")), Write::put(b("k"), big)],
            participants: vec![],
        },
    );
    assert!(matches!(
        r,
        Err(TxnError::Invalid(InvalidRequest::ValueTooLarge { .. }))
    ));
    assert_eq!(
        c.call(
            1,
            Request::Read {
                txn,
                keys: vec![Bytes::new()],
                guest: None,
            }
        ),
        Err(TxnError::Invalid(InvalidRequest::EmptyKey))
    );
    let too_many: Vec<Bytes> = (0..1001).map(|i| b(&format!("k{i}"))).collect();
    assert!(matches!(
        c.call(
            1,
            Request::Read {
                txn,
                keys: too_many,
                guest: None,
            }
        ),
        Err(TxnError::Invalid(InvalidRequest::TooManyOperations { .. }))
    ));
    // Nothing was written or locked; the transaction still works.
    commit_ts(&c.call(1, commit_req(txn, &[("ok", "2")])));
    let (_, v) = ro_values(&read_only(&mut c, 1, ReadAt::Strong, &["ok"]));
    assert_eq!(v, vec![Some("2".into())]);
}

#[test]
fn lagging_replica_catches_up_from_a_snapshot_of_the_group_state() {
    let mut c = cluster(|cfg| cfg.compact_every = 10);
    c.isolate(3);
    for i in 0..40 {
        put(&mut c, &[(&format!("k{i}"), &format!("v{i}"))]);
    }
    c.heal();
    c.run_for(500 * MS);
    let (_, v) = ro_values(&read_only(&mut c, 3, ReadAt::Strong, &["k0", "k39"]));
    assert_eq!(v, vec![Some("v0".into()), Some("v39".into())]);
}

#[test]
fn spanner_s4_2_2_leader_strong_read_sees_what_a_follower_already_applied() {
    let mut c = skewed_cluster();
    let s = commit_shown_first_by_a_follower(&mut c);
    let (_, seen) = ro_values(&c.call_now(
        2,
        Request::ReadOnly {
            at: ReadAt::Exact(s),
            reads: vec![ReadOp::Get(b("k"))],
        },
    ));
    assert_eq!(
        seen,
        vec![Some("v".into())],
        "the follower shows the commit"
    );
    // A strong read at the leader must not read below it.
    let (read_ts, v) = ro_values(&read_only(&mut c, 1, ReadAt::Strong, &["k"]));
    assert!(read_ts >= s, "leader read at {read_ts:?} below {s:?}");
    assert_eq!(v, vec![Some("v".into())]);
}

#[test]
fn bounds_on_active_transactions_and_lock_queues_answer_retryable_errors() {
    let mut c = cluster(|cfg| {
        cfg.max_active_txns = 3;
        cfg.lock_limits = meridian_participant::LockLimits {
            max_waiters_per_key: 1,
            max_total_waiters: 16,
        };
    });
    let (holder, _) = begin(&mut c, 1, Some(10));
    let (queued, _) = begin(&mut c, 1, Some(20));
    let (younger, _) = begin(&mut c, 1, Some(30));
    let over = c.call(
        1,
        Request::Begin {
            priority: None,
            mode: CcMode::Locking,
            reserve: 0,
        },
    );
    assert_eq!(over, Err(TxnError::Overloaded));
    assert!(over.unwrap_err().is_retryable());
    // `holder` reads `k`; `queued` queues for it; the queue (one waiter)
    // is then full, and `younger` is refused at once, wounding nobody.
    values(read(&mut c, 1, holder, &["k"]));
    let q = c.submit(1, commit_req(queued, &[("k", "q")]));
    c.run_for(10 * MS);
    assert!(c.reply(q).is_none(), "queued behind the reader");
    let full = c.call(1, commit_req(younger, &[("k", "y")]));
    assert!(
        matches!(full, Err(TxnError::LockQueueFull { .. })),
        "{full:?}"
    );
    assert!(full.unwrap_err().is_retryable());
    // A full queue does not starve an older transaction (Spanner §4.2.1):
    // it takes the place of the younger last waiter, which is wounded.
    assert_eq!(
        c.call(1, Request::Abort { txn: younger }),
        Ok(Response::Aborted)
    );
    let (eldest, _) = begin(&mut c, 1, Some(15));
    let e = c.submit(1, commit_req(eldest, &[("k", "e")]));
    c.run_for(10 * MS);
    assert_eq!(
        aborted(c.reply(q).expect("the displaced waiter is answered")),
        AbortReason::Wounded
    );
    assert!(c.reply(e).is_none(), "waits for the older holder");
    commit_ts(&c.call(1, commit_req(holder, &[])));
    c.run_for(50 * MS);
    commit_ts(c.reply(e).expect("the older writer commits"));
}

#[test]
fn a_second_concurrent_request_of_one_transaction_is_refused() {
    let mut c = cluster(|_| {});
    let (holder, _) = begin(&mut c, 1, Some(10));
    let (txn, _) = begin(&mut c, 1, Some(20));
    values(read(&mut c, 1, holder, &["k"]));
    // `txn` waits for `k`'s exclusive lock...
    let first = c.submit(1, commit_req(txn, &[("k", "v")]));
    c.run_for(5 * MS);
    assert!(c.reply(first).is_none());
    // ...and meanwhile asks to read: refused, the commit still waits.
    assert_eq!(read(&mut c, 1, txn, &["j"]), Err(TxnError::TxnBusy { txn }));
    commit_ts(&c.call(1, commit_req(holder, &[])));
    c.run_for(100 * MS);
    commit_ts(c.reply(first).expect("the commit proceeds"));
}

#[test]
fn a_committing_or_committed_transaction_cannot_be_aborted() {
    let (mut c, txn, id) = in_commit_wait(None);
    assert_eq!(
        c.call_now(1, Request::Abort { txn }),
        Err(TxnError::TooLateToAbort { txn })
    );
    c.run_for(300 * MS);
    commit_ts(c.reply(id).unwrap());
    assert_eq!(
        c.call_now(1, Request::Abort { txn }),
        Err(TxnError::TooLateToAbort { txn })
    );
}

#[test]
fn a_transaction_waiting_for_a_lock_is_not_taken_for_inactive() {
    let mut c = cluster(|cfg| cfg.inactivity_timeout_nanos = 100 * MS);
    let (holder, _) = begin(&mut c, 1, Some(10));
    let (waiter, _) = begin(&mut c, 1, Some(20));
    values(read(&mut c, 1, holder, &["k"]));
    let w = c.submit(1, commit_req(waiter, &[("k", "w")]));
    // The holder heartbeats; the waiter sends nothing but is waiting.
    for _ in 0..5 {
        c.run_for(50 * MS);
        assert_eq!(
            c.call(1, Request::Heartbeat { txn: holder }),
            Ok(Response::Alive)
        );
    }
    assert!(c.reply(w).is_none());
    commit_ts(&c.call(1, commit_req(holder, &[])));
    c.run_for(50 * MS);
    commit_ts(c.reply(w).expect("the waiter was kept and now commits"));
}

#[test]
fn a_transaction_without_writes_is_not_placed_below_what_a_follower_showed() {
    // As for leader strong reads: a read-only read-write transaction
    // committing at the leader while a follower already applied a commit
    // must get a timestamp at or above it, or a snapshot read at its
    // timestamp would miss what readers at the follower already saw.
    let mut c = skewed_cluster();
    let (audit, _) = begin(&mut c, 1, None);
    values(read(&mut c, 1, audit, &["x"]));
    let s3 = commit_shown_first_by_a_follower(&mut c);
    let s = commit_ts(&c.call(1, commit_req(audit, &[])));
    assert!(s >= s3, "committed at {s:?}, below {s3:?}");
}

#[test]
fn design_s5_5_a_commit_whose_record_was_pruned_is_reported_unknown_not_aborted() {
    let mut c = cluster(|cfg| cfg.commit_record_retention_nanos = 100 * MS);
    let (txn, _) = begin(&mut c, 1, None);
    let s = commit_ts(&c.call(1, commit_req(txn, &[("k", "v")])));
    assert_eq!(
        commit_ts(&c.call(1, commit_req(txn, &[("k", "v")]))),
        s,
        "within the retention a retry learns the commit"
    );
    c.run_for(200 * MS);
    put(&mut c, &[("j", "w")]); // applying a later commit prunes the record
    let r = c.call(1, commit_req(txn, &[("k", "v")]));
    assert_eq!(r, Err(TxnError::OutcomeUnknown { txn }));
    assert_eq!(
        c.call(1, Request::Abort { txn }),
        Err(TxnError::OutcomeUnknown { txn })
    );
}

#[test]
fn design_s5_5_an_abort_the_leader_remembers_is_reported_after_records_are_pruned() {
    // Pruning makes the state unsure about this term's transactions, but
    // the leader still knows the ones it aborted itself: those are
    // reported aborted, not unknown.
    let mut c = cluster(|cfg| cfg.commit_record_retention_nanos = 100 * MS);
    let (txn, _) = begin(&mut c, 1, None);
    values(read(&mut c, 1, txn, &["k"]));
    assert_eq!(c.call(1, Request::Abort { txn }), Ok(Response::Aborted));
    put(&mut c, &[("j", "v")]);
    c.run_for(200 * MS);
    put(&mut c, &[("j", "w")]); // prunes the record of this term's first put
    assert!(
        c.replica(1).state().may_have_forgotten(txn),
        "the state alone cannot tell"
    );
    assert_eq!(
        aborted(&c.call(1, commit_req(txn, &[("k", "v")]))),
        AbortReason::ClientAbort
    );
    assert_eq!(c.call(1, Request::Abort { txn }), Ok(Response::Aborted));
}

#[test]
fn spanner_s4_2_1_oldest_transaction_retrying_with_its_first_priority_commits_against_younger_ones()
{
    // Wound-wait is starvation-free only because a retry keeps the
    // priority of the first attempt: it only grows older relative to
    // newcomers. Here it is wounded once by an even older transaction,
    // then meets a younger rival on every retry.
    let mut c = cluster(|_| {});
    let (first, p0) = begin(&mut c, 1, None);
    values(read(&mut c, 1, first, &["k"]));
    let (ancient, _) = begin(&mut c, 1, Some(p0.0.as_nanos() - 1));
    commit_ts(&c.call(1, commit_req(ancient, &[("k", "ancient")])));
    assert_eq!(
        aborted(&c.call(1, commit_req(first, &[("k", "old")]))),
        AbortReason::Wounded
    );
    let mut committed = None;
    for round in 0..5 {
        c.run_for(10 * MS);
        // A younger rival takes a shared lock on k first, then the retry
        // does; both then ask to write k.
        let (young, py) = begin(&mut c, 1, None);
        assert!(p0.is_older(first, py, young), "the rival is younger");
        values(read(&mut c, 1, young, &["k"]));
        let (retry, p) = begin(&mut c, 1, Some(p0.0.as_nanos()));
        assert_eq!(p, p0, "a retry keeps its first priority");
        values(read(&mut c, 1, retry, &["k"]));
        let y = c.submit(1, commit_req(young, &[("k", &format!("young{round}"))]));
        let o = c.submit(1, commit_req(retry, &[("k", "old")]));
        c.run_for(100 * MS);
        let old_reply = c.reply(o).cloned().expect("the retry is answered");
        let young_reply = c.reply(y).cloned().expect("the rival is answered");
        if let Ok(Response::Committed { commit_ts }) = old_reply {
            assert_eq!(
                aborted(&young_reply),
                AbortReason::Wounded,
                "the older retry wounds the younger rival"
            );
            committed = Some(commit_ts);
            break;
        }
        assert_eq!(aborted(&old_reply), AbortReason::Wounded);
    }
    let s = committed.expect("the oldest transaction starved");
    let (_, v) = ro_values(&read_only(&mut c, 1, ReadAt::Exact(s), &["k"]));
    assert_eq!(v, vec![Some("old".into())]);
}

#[test]
fn design_s5_5_a_commit_resolved_by_a_snapshot_without_its_record_is_reported_unknown() {
    // The old leader proposed a commit it could not get chosen; by the time
    // it catches up, from a snapshot, the new term's commit records have
    // been pruned, so the snapshot cannot say whether that commit was
    // chosen. The client must hear "unknown", not "aborted".
    let mut c = cluster(|cfg| {
        cfg.commit_record_retention_nanos = 100 * MS;
        cfg.compact_every = 10;
    });
    let (txn, _) = begin(&mut c, 1, None);
    c.isolate(1);
    let id = c.submit(1, commit_req(txn, &[("k", "lost")]));
    let slot = c.replica(1).paxos().last_slot();
    c.elect(2);
    for i in 0..20 {
        let (t, _) = begin(&mut c, 2, None);
        commit_ts(&c.call(2, commit_req(t, &[(&format!("j{i}"), "v")])));
    }
    c.run_for(200 * MS);
    for i in 0..20 {
        let (t, _) = begin(&mut c, 2, None);
        commit_ts(&c.call(2, commit_req(t, &[(&format!("j{i}"), "w")])));
    }
    assert!(c.replica(2).state().may_have_forgotten(txn));
    // Closed timestamps keep applying until the group snapshots a state
    // in which those records are pruned (a snapshot is due only after as
    // many entries as the state holds versions).
    c.run_for(500 * MS);
    assert!(c.reply(id).is_none(), "the old leader cannot tell yet");
    c.heal();
    c.run_for(500 * MS);
    assert!(
        c.replica(1).paxos().first_slot() > slot,
        "the old leader caught up from a snapshot covering its proposal"
    );
    assert_eq!(c.replies(id), &[Err(TxnError::OutcomeUnknown { txn })]);
    let (_, v) = ro_values(&read_only(&mut c, 1, ReadAt::Strong, &["k"]));
    assert_eq!(v, vec![None]);
}

#[test]
fn design_s5_3_a_replica_removed_from_its_group_refuses_reads_it_cannot_serve_at_once() {
    // A removed replica hears of nothing new, so its safe time stays put:
    // a read above it is refused at once (retry elsewhere), not left to
    // wait out the read bound.
    let mut c = cluster(|_| {});
    c.propose_membership_in(1, 1, meridian_paxos::MembershipChange::RemoveVoter(3))
        .expect("the leader proposes the change");
    c.run_for(100 * MS);
    assert!(
        !c.replica(3).paxos().membership().contains(3),
        "replica 3 learned it was removed"
    );
    c.run_for(200 * MS);
    let later = c.now().latest;
    let read = Request::ReadOnly {
        at: ReadAt::Exact(later),
        reads: vec![ReadOp::Get(b("k"))],
    };
    assert!(
        matches!(
            c.call_now(3, read.clone()),
            Err(TxnError::NotYetSafe { .. })
        ),
        "refused at once"
    );
    // A member serves the same read once safe.
    c.run_for(100 * MS);
    assert!(matches!(c.call(2, read), Ok(Response::ReadOnly { .. })));
}
