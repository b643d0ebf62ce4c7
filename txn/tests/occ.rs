//! Protocol rules of the optimistic (FaRM-style) concurrency control path,
//! chosen per transaction with `Begin { mode: CcMode::Optimistic }`, one
//! test each, named after the rule and the paper section it checks
//! (Dragojević et al., "No compromises", SOSP 2015, §4; docs/design.md §5.4).
//! Driven by `meridian_txn::testkit::LocalCluster`: real replicas, no
//! faults but the lost messages and leader changes a test asks for.

mod common;

use common::*;
use meridian_participant::{TxnId, Write};
use meridian_truetime::Timestamp;
use meridian_txn::testkit::LocalCluster;
use meridian_txn::{
    AbortReason, CcMode, GroupMessage, Guest, Participant, ReadAt, ReadOp, ReadResult, Reply,
    Request, Response, TxnError, Vote,
};

/// Two-phase resends and outcome queries, shortened so tests run quickly.
const RESEND: u64 = 20 * MS;

/// Three replicas of one group, replica 1 serving as leader.
fn cluster() -> LocalCluster {
    let mut c = LocalCluster::new(3, T0, EPS, |_| {});
    c.elect(1);
    c
}

/// One group whose clock uncertainty (50 ms) makes every commit wait far
/// longer than its Paxos round: a committing transaction stays committing,
/// holding its locks, while a test looks.
fn slow_commit_cluster() -> LocalCluster {
    let mut c = LocalCluster::new(3, T0, 50 * MS, |_| {});
    c.elect(1);
    c
}

/// `groups` groups of three replicas, each with a serving leader.
fn groups(groups: u64) -> LocalCluster {
    let mut c = LocalCluster::with_groups(groups, 3, T0, EPS, |cfg| {
        cfg.resend_interval_nanos = RESEND;
    });
    c.await_leaders();
    c
}

fn read_req(txn: TxnId, keys: &[&str], guest: Option<Guest>) -> Request {
    Request::Read {
        txn,
        keys: keys.iter().map(|k| b(k)).collect(),
        guest,
    }
}

/// Reads `keys` at group 1's leader.
fn read(c: &mut LocalCluster, txn: TxnId, keys: &[&str]) -> Reply {
    let l = leader(c, 1);
    c.call(l, read_req(txn, keys, None))
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

/// The value of `key` at `group`, read at `ts` at replica `node`.
fn read_at(
    c: &mut LocalCluster,
    group: u64,
    node: u64,
    key: &str,
    ts: Timestamp,
) -> Option<String> {
    let req = Request::ReadOnly {
        at: ReadAt::Exact(ts),
        reads: vec![ReadOp::Get(b(key))],
    };
    match c.call_in(group, node, req) {
        Ok(Response::ReadOnly { results, .. }) => match &results[0] {
            ReadResult::Value(v) => v.as_ref().map(|v| String::from_utf8(v.to_vec()).unwrap()),
            other => panic!("a get returned {other:?}"),
        },
        other => panic!("snapshot read failed: {other:?}"),
    }
}

/// The newest value of `key` at group 1, by a strong read at the leader.
fn latest(c: &mut LocalCluster, key: &str) -> Option<String> {
    let req = Request::ReadOnly {
        at: ReadAt::Strong,
        reads: vec![ReadOp::Get(b(key))],
    };
    match c.call(1, req) {
        Ok(Response::ReadOnly { results, .. }) => match &results[0] {
            ReadResult::Value(v) => v.as_ref().map(|v| String::from_utf8(v.to_vec()).unwrap()),
            other => panic!("a get returned {other:?}"),
        },
        other => panic!("strong read failed: {other:?}"),
    }
}

fn wait_for(c: &mut LocalCluster, id: u64, max_ms: u64) -> Option<Reply> {
    for _ in 0..max_ms {
        if let Some(r) = c.take_reply(id) {
            return Some(r);
        }
        c.run_for(MS);
    }
    None
}

#[test]
fn farm_s4_optimistic_reads_take_no_locks_and_are_served_only_by_the_serving_leader() {
    let mut c = cluster();
    put(&mut c, &[("x", "1")]);
    let reader = begin(&mut c, CcMode::Optimistic, Some(10));
    // Answered at once, with the newest applied value and the term.
    let r = c.call_now(1, read_req(reader, &["x", "none"], None));
    let Ok(Response::Read { values: v, term }) = r else {
        panic!("{r:?}");
    };
    assert_eq!(v, vec![Some(b("1")), None]);
    assert_eq!(term, reader.origin);
    assert!(
        c.replica(1).waits_for().is_empty(),
        "an optimistic read takes no lock"
    );
    // A younger locking writer of x is neither blocked nor wounded by it.
    let writer = begin(&mut c, CcMode::Locking, Some(20));
    commit_ts(&c.call(1, commit_req(writer, &[("x", "2")])));
    // The same serving rules as a locking read: a follower redirects.
    let r = c.call(2, read_req(reader, &["x"], None));
    assert!(matches!(r, Err(TxnError::NotLeader { .. })), "{r:?}");
}

#[test]
fn farm_s4_validation_aborts_a_transaction_whose_read_changed() {
    let mut c = cluster();
    put(&mut c, &[("x", "1")]);
    let t = begin(&mut c, CcMode::Optimistic, None);
    assert_eq!(values(read(&mut c, t, &["x"])), vec![Some("1".into())]);
    put(&mut c, &[("x", "2")]);
    let r = c.call(1, commit_req(t, &[("y", "from t")]));
    assert_eq!(aborted(&r), AbortReason::Conflict);
    assert!(r.as_ref().unwrap_err().is_retryable());
    assert_eq!(latest(&mut c, "y"), None, "nothing of t is visible");
    // A deletion changes the version too (tombstones count).
    let t = begin(&mut c, CcMode::Optimistic, None);
    values(read(&mut c, t, &["x"]));
    let d = begin(&mut c, CcMode::Locking, None);
    let del = Request::Commit {
        txn: d,
        writes: vec![Write::delete(b("x"))],
        participants: vec![],
    };
    commit_ts(&c.call(1, del));
    assert_eq!(
        aborted(&c.call(1, commit_req(t, &[("y", "again")]))),
        AbortReason::Conflict
    );
    // With nothing changed, the same transaction shape commits.
    let t = begin(&mut c, CcMode::Optimistic, None);
    values(read(&mut c, t, &["x"]));
    let s = commit_ts(&c.call(1, commit_req(t, &[("y", "3")])));
    assert!(c.now().after(s), "commit wait as for any commit");
    assert_eq!(latest(&mut c, "y"), Some("3".into()));
}

#[test]
fn farm_s4_validation_aborts_a_transaction_whose_read_is_locked_for_writing() {
    let mut c = slow_commit_cluster();
    let t = begin(&mut c, CcMode::Optimistic, None);
    values(read(&mut c, t, &["x"]));
    // A locking writer of x is committing: its record is chosen but waits
    // out its commit wait, holding x exclusively.
    let w = begin(&mut c, CcMode::Locking, None);
    let wid = c.submit(1, commit_req(w, &[("x", "w")]));
    assert!(c.reply(wid).is_none(), "the writer is in its commit wait");
    assert_eq!(c.replica(1).state().read_latest(b"x"), None);
    // x's newest applied version is still the one t saw, but it is about
    // to change: t cannot validate.
    let r = c.call_now(1, commit_req(t, &[("y", "t")]));
    assert_eq!(aborted(&r), AbortReason::Conflict);
    let r = wait_for(&mut c, wid, 1_000).expect("the writer commits");
    commit_ts(&r);
    assert_eq!(latest(&mut c, "y"), None);
}

#[test]
fn farm_s4_commit_try_locks_writes_without_waiting() {
    let mut c = cluster();
    // A younger locking reader holds x shared.
    let reader = begin(&mut c, CcMode::Locking, Some(20));
    values(read(&mut c, reader, &["x"]));
    // An older optimistic writer of x neither waits for it (as a locking
    // writer would not either) nor wounds it (as a locking one would):
    // the try-lock fails and it aborts at once, retryably.
    let writer = begin(&mut c, CcMode::Optimistic, Some(10));
    let r = c.call_now(1, commit_req(writer, &[("x", "occ")]));
    assert_eq!(aborted(&r), AbortReason::Conflict);
    assert!(c.replica(1).waits_for().is_empty());
    // The reader was not wounded: it goes on and commits.
    values(read(&mut c, reader, &["z"]));
    commit_ts(&c.call(1, commit_req(reader, &[("x", "2pl")])));
    assert_eq!(latest(&mut c, "x"), Some("2pl".into()));
    // Its retry, with the same priority, commits.
    let (retry, _) = begin_in(&mut c, 1, CcMode::Optimistic, Some(10));
    commit_ts(&c.call(1, commit_req(retry, &[("x", "occ")])));
    assert_eq!(latest(&mut c, "x"), Some("occ".into()));
}

#[test]
fn farm_s4_commit_holds_validated_reads_shared_until_the_outcome() {
    let mut c = slow_commit_cluster();
    let t = begin(&mut c, CcMode::Optimistic, Some(20));
    values(read(&mut c, t, &["x"]));
    let tid = c.submit(1, commit_req(t, &[("y", "t")]));
    assert!(c.reply(tid).is_none(), "t is in its commit wait");
    // An older locking writer of x must wait for t's outcome: t is
    // prepared (not woundable) and holds x shared.
    let w = begin(&mut c, CcMode::Locking, Some(10));
    let wid = c.submit(1, commit_req(w, &[("x", "w")]));
    let waits = c.replica(1).waits_for();
    assert_eq!(waits.len(), 1, "{waits:?}");
    assert_eq!((waits[0].waiter, waits[0].blocker), (w, t));
    assert_eq!(waits[0].key, b("x"));
    // An optimistic writer of x meets the same shared lock and aborts.
    let o = begin(&mut c, CcMode::Optimistic, Some(5));
    assert_eq!(
        aborted(&c.call_now(1, commit_req(o, &[("x", "o")]))),
        AbortReason::Conflict
    );
    c.run_for(2 * MS);
    assert!(c.reply(wid).is_none());
    let s_t = commit_ts(&wait_for(&mut c, tid, 1_000).expect("t commits"));
    let s_w = commit_ts(&wait_for(&mut c, wid, 1_000).expect("w commits after t"));
    assert!(
        s_w > s_t,
        "w serializes after t, which read x before w wrote it"
    );
}

#[test]
fn farm_s4_a_read_only_optimistic_transaction_validates_its_reads_at_commit() {
    let mut c = cluster();
    put(&mut c, &[("x", "1"), ("y", "1")]);
    let t = begin(&mut c, CcMode::Optimistic, None);
    values(read(&mut c, t, &["x", "y"]));
    put(&mut c, &[("y", "2")]);
    assert_eq!(
        aborted(&c.call(1, commit_req(t, &[]))),
        AbortReason::Conflict
    );
    // Unchanged reads commit at a waited timestamp at least the versions
    // read.
    let t = begin(&mut c, CcMode::Optimistic, None);
    values(read(&mut c, t, &["x", "y"]));
    let last = c.replica(1).state().last_commit_ts();
    let s = commit_ts(&c.call(1, commit_req(t, &[])));
    assert!(s >= last && c.now().after(s));
}

#[test]
fn farm_s4_write_skew_at_most_one_of_two_crossing_transactions_commits() {
    // Two on-call doctors, x and y; each transaction checks that both are
    // on call and takes one off. Serializable: at most one commits.
    for concurrent in [false, true] {
        let mut c = slow_commit_cluster();
        put(&mut c, &[("x", "on"), ("y", "on")]);
        c.run_for(200 * MS);
        let t1 = begin(&mut c, CcMode::Optimistic, None);
        let t2 = begin(&mut c, CcMode::Optimistic, None);
        for t in [t1, t2] {
            assert_eq!(
                values(read(&mut c, t, &["x", "y"])),
                vec![Some("on".into()), Some("on".into())]
            );
        }
        let id1 = c.submit(1, commit_req(t1, &[("x", "off")]));
        let mut r1 = None;
        if !concurrent {
            // t1 has committed before t2 asks to.
            r1 = wait_for(&mut c, id1, 1_000);
        }
        // Otherwise t1 is in its commit wait, holding x exclusive and y
        // shared, when t2 asks.
        let id2 = c.submit(1, commit_req(t2, &[("y", "off")]));
        let r2 = wait_for(&mut c, id2, 1_000).expect("t2 is answered");
        let r1 = r1
            .or_else(|| wait_for(&mut c, id1, 1_000))
            .expect("t1 is answered");
        let committed = [&r1, &r2].iter().filter(|r| r.is_ok()).count();
        assert_eq!(committed, 1, "concurrent={concurrent}: {r1:?} {r2:?}");
        assert_eq!(aborted(&r2), AbortReason::Conflict);
        let on = [latest(&mut c, "x"), latest(&mut c, "y")]
            .iter()
            .filter(|v| v.as_deref() == Some("on"))
            .count();
        assert_eq!(on, 1, "concurrent={concurrent}: someone stays on call");
    }
}

#[test]
fn farm_s4_locking_and_optimistic_transactions_on_the_same_keys_lose_no_update() {
    // Increments of one counter, interleaved in every order of a locking
    // and an optimistic transaction: each commit adds exactly one.
    let mut c = cluster();
    put(&mut c, &[("n", "0")]);
    let mut committed = 0;
    let parse = |v: &Option<String>| v.as_deref().unwrap_or("0").parse::<u64>().unwrap();
    for round in 0..8u64 {
        let occ_first = round % 2 == 0;
        let p_occ = if round % 4 < 2 {
            10 + round
        } else {
            100 + round
        };
        let p_2pl = 50 + round;
        let o = begin(&mut c, CcMode::Optimistic, Some(p_occ));
        let l = begin(&mut c, CcMode::Locking, Some(p_2pl));
        let vo = parse(&values(read(&mut c, o, &["n"]))[0]);
        let vl = parse(&values(read(&mut c, l, &["n"]))[0]);
        let inc = |v: u64| (v + 1).to_string();
        let (ro, rl) = if occ_first {
            // The locking reader's shared lock stops the optimistic write.
            let ro = c.call(1, commit_req(o, &[("n", &inc(vo))]));
            let rl = c.call(1, commit_req(l, &[("n", &inc(vl))]));
            (ro, rl)
        } else {
            // The locking writer commits first; the optimistic read is
            // stale.
            let rl = c.call(1, commit_req(l, &[("n", &inc(vl))]));
            let ro = c.call(1, commit_req(o, &[("n", &inc(vo))]));
            (ro, rl)
        };
        for r in [&ro, &rl] {
            match r {
                Ok(Response::Committed { .. }) => committed += 1,
                Err(e) => assert!(e.is_retryable(), "{e:?}"),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(aborted(&ro), AbortReason::Conflict, "round {round}");
        // The optimistic transaction retries alone and commits.
        let o = begin(&mut c, CcMode::Optimistic, Some(p_occ));
        let v = parse(&values(read(&mut c, o, &["n"]))[0]);
        commit_ts(&c.call(1, commit_req(o, &[("n", &inc(v))])));
        committed += 1;
    }
    assert_eq!(parse(&latest(&mut c, "n")), committed);
    assert_eq!(committed, 16);
}

/// Begins an optimistic transaction at group 1, reads `a` there and `b` at
/// group 2 (as a guest). Returns it and group 2's term.
fn cross_group_reader(c: &mut LocalCluster) -> (TxnId, u64) {
    let (txn, priority) = begin_in(c, 1, CcMode::Optimistic, None);
    let l1 = leader(c, 1);
    values(c.call_in(1, l1, read_req(txn, &["a"], None)));
    let guest = Guest {
        priority,
        term: None,
        mode: CcMode::Optimistic,
    };
    let l2 = leader(c, 2);
    let r = c.call_in(2, l2, read_req(txn, &["b"], Some(guest)));
    let Ok(Response::Read { term, .. }) = r else {
        panic!("{r:?}");
    };
    (txn, term)
}

fn cross_commit(txn: TxnId, term2: u64) -> Request {
    Request::Commit {
        txn,
        writes: puts(&[("a", "1")]),
        participants: vec![
            Participant {
                group: 2,
                term: Some(term2),
                writes: puts(&[("b", "2")]),
            },
            Participant {
                group: 3,
                term: None,
                writes: puts(&[("c", "3")]),
            },
        ],
    }
}

/// Commits `key = value` at `group` in a fresh locking transaction.
fn put_in(c: &mut LocalCluster, group: u64, key: &str, value: &str) {
    let (t, _) = begin_in(c, group, CcMode::Locking, None);
    let l = leader(c, group);
    commit_ts(&c.call_in(group, l, commit_req(t, &[(key, value)])));
}

#[test]
fn farm_s4_a_cross_group_optimistic_transaction_validates_at_every_participant() {
    let mut c = groups(3);
    // Unchanged reads: it commits at one timestamp everywhere.
    let (txn, term2) = cross_group_reader(&mut c);
    let r = c.call_in(1, leader(&c, 1), cross_commit(txn, term2));
    let s = commit_ts(&r);
    c.run_for(100 * MS);
    for (g, k, v) in [(1, "a", "1"), (2, "b", "2"), (3, "c", "3")] {
        assert_eq!(read_at(&mut c, g, 1, k, s), Some(v.into()), "group {g}");
        assert_eq!(read_at(&mut c, g, 1, k, s.prev()), None, "group {g}");
    }
    // Its read at group 2 changed: group 2 votes no, nothing commits.
    let (txn, term2) = cross_group_reader(&mut c);
    put_in(&mut c, 2, "b", "changed");
    let r = c.call_in(1, leader(&c, 1), cross_commit(txn, term2));
    assert_eq!(aborted(&r), AbortReason::Conflict);
    // Its read at the coordinator's own group changed: the coordinator
    // aborts before asking anyone.
    let (txn, term2) = cross_group_reader(&mut c);
    put_in(&mut c, 1, "a", "changed");
    let r = c.call_in(1, leader(&c, 1), cross_commit(txn, term2));
    assert_eq!(aborted(&r), AbortReason::Conflict);
    c.run_for(20 * RESEND);
    let now = c.now().earliest;
    assert_eq!(read_at(&mut c, 1, 1, "a", now), Some("changed".into()));
    assert_eq!(read_at(&mut c, 2, 1, "b", now), Some("changed".into()));
    assert_eq!(read_at(&mut c, 3, 1, "c", now), Some("3".into()));
    for g in 1..=3 {
        assert!(!c.replica_in(g, leader(&c, g)).state().has_prepared());
    }
}

#[test]
fn farm_s4_a_participant_votes_no_when_a_write_is_locked_not_waiting() {
    let mut c = groups(2);
    // A locking reader holds w shared at group 2.
    let (reader, _) = begin_in(&mut c, 2, CcMode::Locking, Some(20));
    let l2 = leader(&c, 2);
    values(c.call_in(2, l2, read_req(reader, &["w"], None)));
    let votes = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let seen = votes.clone();
    c.drop_group_messages(move |_, m| {
        if let GroupMessage::Vote { vote, .. } = m {
            seen.borrow_mut().push(*vote);
        }
        false
    });
    // An older optimistic transaction that only writes w at group 2: group
    // 2 first hears of it in the prepare, which carries its mode.
    let (txn, _) = begin_in(&mut c, 1, CcMode::Optimistic, Some(10));
    let req = Request::Commit {
        txn,
        writes: vec![],
        participants: vec![Participant {
            group: 2,
            term: None,
            writes: puts(&[("w", "occ")]),
        }],
    };
    let r = c.call_in(1, leader(&c, 1), req);
    assert_eq!(aborted(&r), AbortReason::Conflict);
    assert_eq!(votes.borrow().as_slice(), [Vote::No(AbortReason::Conflict)]);
    assert!(c.replica_in(2, l2).waits_for().is_empty());
    // The locking reader was not wounded.
    commit_ts(&c.call_in(2, l2, commit_req(reader, &[("w", "2pl")])));
}

#[test]
fn farm_s4_a_participant_keeps_validated_reads_in_its_prepare_record_across_failover() {
    let mut c = groups(2);
    let (txn, priority) = begin_in(&mut c, 1, CcMode::Optimistic, None);
    let guest = Guest {
        priority,
        term: None,
        mode: CcMode::Optimistic,
    };
    let l2 = leader(&c, 2);
    let r = c.call_in(2, l2, read_req(txn, &["r"], Some(guest)));
    let Ok(Response::Read { term, .. }) = r else {
        panic!("{r:?}");
    };
    // Decisions are lost for now: txn stays prepared at group 2.
    c.drop_group_messages(|_, m| matches!(m, GroupMessage::Decide { .. }));
    let req = Request::Commit {
        txn,
        writes: puts(&[("home", "1")]),
        participants: vec![Participant {
            group: 2,
            term: Some(term),
            writes: puts(&[("w", "1")]),
        }],
    };
    let s = commit_ts(&c.call_in(1, leader(&c, 1), req));
    let p = c
        .replica_in(2, l2)
        .state()
        .prepared_txn(txn)
        .expect("prepared at group 2")
        .clone();
    assert_eq!(p.reads, vec![b("r")], "the validated read is logged");
    // A younger writer of r waits for the outcome, also after group 2
    // fails over (its new leader rebuilds the shared lock from the log).
    let new2 = l2 % 3 + 1;
    c.isolate_in(2, l2);
    c.elect_in(2, new2);
    c.heal();
    let (w, _) = begin_in(&mut c, 2, CcMode::Locking, None);
    let wid = c.submit_in(2, new2, commit_req(w, &[("r", "late")]));
    c.run_for(5 * RESEND);
    assert!(c.reply(wid).is_none(), "r stays locked until the outcome");
    c.deliver_all_group_messages();
    let s_w = commit_ts(&wait_for(&mut c, wid, 1_000).expect("w commits after"));
    assert!(s_w > s);
    assert_eq!(read_at(&mut c, 2, 1, "w", s), Some("1".into()));
}
