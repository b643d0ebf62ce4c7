//! The client library against the in-process fake cluster: routing,
//! retries, read-your-writes, limits, and unknown outcomes.

use std::time::Duration;

use bytes::Bytes;
use meridian_client::testing::{FakeCluster, FaultAction, Logged, Rpc};
use meridian_client::{
    AbortReason, Client, ClientOptions, Error, ReadOp, ReadResult, RemoteError, Timestamp,
    TxnOptions, TxnStatus,
};
use meridian_proto::pb;
use meridian_txn::{CcMode, TxnError};

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn fast() -> ClientOptions {
    ClientOptions::default()
        .with_request_timeout(Duration::from_secs(2))
        .with_backoff(Duration::from_millis(1), Duration::from_millis(20))
}

async fn connect(c: &FakeCluster) -> Client {
    Client::connect_with(c.endpoints(), fast())
        .await
        .expect("connect to the fake cluster")
}

fn requests(c: &FakeCluster, rpc: Rpc) -> Vec<(u64, Logged)> {
    c.calls()
        .into_iter()
        .filter(|call| call.req.rpc() == rpc)
        .map(|call| (call.node, call.req))
        .collect()
}

#[tokio::test]
async fn connect_learns_the_cluster_and_routes_writes_to_each_groups_leader() {
    let c = FakeCluster::start(3, &["m"]).await;
    let client = connect(&c).await;
    assert_eq!(client.cluster_id(), 0xC1);
    assert_eq!(client.epoch(), 1);
    let groups = client.groups();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[1].start, b("m"));
    assert_eq!(client.group_of("apple").unwrap(), 1);
    assert_eq!(client.group_of("zebra").unwrap(), 2);

    client.put("apple", "1").await.unwrap();
    client.put("zebra", "2").await.unwrap();
    let commits = requests(&c, Rpc::Commit);
    assert_eq!(commits.len(), 2);
    // Group 1 is led by node 1, group 2 by node 2; write-only
    // transactions are one-shot commits (no id, no Begin).
    assert_eq!(commits[0].0, 1);
    assert_eq!(commits[1].0, 2);
    for (_, req) in &commits {
        let Logged::Commit(r) = req else {
            unreachable!()
        };
        assert!(r.txn.is_none());
        assert_eq!(r.header.unwrap().cluster_id, 0xC1);
        assert_eq!(r.header.unwrap().epoch, 1);
    }
    assert_eq!(c.count(Rpc::Begin), 0);
    assert_eq!(client.get("apple").await.unwrap(), Some(b("1")));
    assert_eq!(client.get("zebra").await.unwrap(), Some(b("2")));
    assert_eq!(client.get("nothing").await.unwrap(), None);
}

#[tokio::test]
async fn a_not_leader_hint_is_followed() {
    let c = FakeCluster::start(3, &[]).await;
    // Status names node 3 as the leader; node 1 leads.
    c.state().groups[0].hint = Some(3);
    let client = connect(&c).await;
    client.put("k", "v").await.unwrap();
    let nodes: Vec<u64> = requests(&c, Rpc::Commit).iter().map(|(n, _)| *n).collect();
    assert_eq!(nodes, vec![3, 1]);
    assert_eq!(c.value("k").as_deref(), Some("v"));
    // The hint is remembered.
    c.clear_calls();
    client.put("k", "w").await.unwrap();
    let nodes: Vec<u64> = requests(&c, Rpc::Commit).iter().map(|(n, _)| *n).collect();
    assert_eq!(nodes, vec![1]);
}

#[tokio::test]
async fn an_unreachable_replica_is_skipped() {
    let c = FakeCluster::start(3, &[]).await;
    let dead = c.add_dead_node().await;
    c.state().groups[0].hint = Some(dead);
    let client = connect(&c).await;
    // The one-shot commit's connection to the dead node was refused:
    // certainly not sent, so it is safe to send elsewhere.
    let committed = client.put("k", "v").await.unwrap();
    assert!(committed.txn.is_some());
    assert_eq!(c.value("k").as_deref(), Some("v"));
    let (v, _) = client
        .transaction(async |txn| txn.get("k").await)
        .await
        .unwrap();
    assert_eq!(v, Some(b("v")));
}

#[tokio::test]
async fn a_stale_epoch_refreshes_the_range_map() {
    let c = FakeCluster::start(2, &["m"]).await;
    let client = connect(&c).await;
    {
        // The cluster splits differently at epoch 2.
        let mut s = c.state();
        s.epoch = 2;
        s.groups[0].end = Some(b("g"));
        s.groups[1].start = b("g");
    }
    client.put("h", "1").await.unwrap();
    assert_eq!(client.epoch(), 2);
    assert_eq!(client.group_of("h").unwrap(), 2);
    let commits = requests(&c, Rpc::Commit);
    let Logged::Commit(last) = &commits.last().unwrap().1 else {
        unreachable!()
    };
    assert_eq!(last.group, 2);
    assert_eq!(c.value("h").as_deref(), Some("1"));
}

#[tokio::test]
async fn a_wrong_group_refreshes_the_range_map_and_routes_again() {
    let c = FakeCluster::start(2, &["m"]).await;
    let client = connect(&c).await;
    {
        let mut s = c.state();
        s.groups[0].end = Some(b("g"));
        s.groups[1].start = b("g");
    }
    let (v, _) = client
        .transaction(async |txn| {
            txn.put("h", "x")?;
            txn.get("h").await
        })
        .await
        .unwrap();
    assert_eq!(v, Some(b("x")));
    assert_eq!(client.get("h").await.unwrap(), Some(b("x")));
    assert_eq!(client.group_of("h").unwrap(), 2);
}

#[tokio::test]
async fn a_retryable_abort_runs_a_new_attempt_with_the_same_priority() {
    let c = FakeCluster::start(1, &[]).await;
    // Every attempt sends `Begin` (no reserved ids).
    let client = Client::connect_with(c.endpoints(), fast().with_reserve_ids(0))
        .await
        .unwrap();
    c.insert("n", "1");
    let aborted = RemoteError::Txn(TxnError::Aborted {
        txn: meridian_client::TxnId::new(0, 0),
        reason: AbortReason::Wounded,
    });
    c.fault(Rpc::Commit, None, FaultAction::Error(aborted), 1);
    let mut runs = 0;
    let (old, committed) = client
        .transaction(async |txn| {
            runs += 1;
            let n = txn.get("n").await?;
            txn.put("n", "2")?;
            Ok(n)
        })
        .await
        .unwrap();
    assert_eq!(runs, 2);
    assert_eq!(old, Some(b("1")));
    assert!(committed.commit_ts > meridian_client::Timestamp::ZERO);
    let begins: Vec<pb::BeginRequest> = requests(&c, Rpc::Begin)
        .into_iter()
        .map(|(_, r)| match r {
            Logged::Begin(r) => r,
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(begins.len(), 2);
    assert_eq!(begins[0].priority, None);
    let first = c.state().txns.values().map(|(_, p)| *p).min().unwrap();
    assert_eq!(
        begins[1].priority,
        Some(first),
        "a retry keeps its priority"
    );
    assert_eq!(c.value("n").as_deref(), Some("2"));
}

/// Runs a transaction that reads `key` and writes `value` there, with
/// retries: how many attempts it took, and its commit.
async fn read_then_write(
    client: &Client,
    key: &'static str,
    value: &'static str,
) -> (u32, meridian_client::Committed) {
    let mut runs = 0;
    let ((), committed) = client
        .transaction(async |txn| {
            runs += 1;
            txn.get(key).await?;
            txn.put(key, value)
        })
        .await
        .unwrap();
    (runs, committed)
}

/// The reads of `c`'s log, with the node each went to.
fn reads(c: &FakeCluster) -> Vec<(u64, pb::ReadRequest)> {
    requests(c, Rpc::Read)
        .into_iter()
        .map(|(n, r)| match r {
            Logged::Read(r) => (n, r),
            _ => unreachable!(),
        })
        .collect()
}

#[tokio::test]
async fn a_reserved_id_begins_a_later_transaction_with_its_first_read() {
    let c = FakeCluster::start(1, &[]).await;
    let client = connect(&c).await;
    c.insert("n", "1");
    let mut first = client.begin();
    first.get("n").await.unwrap();
    let begins = requests(&c, Rpc::Begin);
    let Logged::Begin(b0) = &begins[0].1 else {
        unreachable!()
    };
    assert_eq!(b0.reserve, meridian_client::DEFAULT_RESERVE_IDS);
    first.commit().await.unwrap();
    c.clear_calls();
    // The next transaction sends no Begin: its first read, a guest's that
    // has met no term, goes to the reserving leader and begins it.
    let mut next = client.begin();
    assert_eq!(next.get("n").await.unwrap(), Some(b("1")));
    assert_eq!(c.count(Rpc::Begin), 0);
    let id = next.id().expect("an id before any Begin");
    let r = reads(&c);
    let guest = r[0].1.guest.expect("the first read at home is a guest's");
    assert_eq!(guest.term, None);
    assert_eq!(guest.priority, next.priority().unwrap().as_nanos());
    // Its later reads at home are its own.
    next.get("m").await.unwrap();
    assert_eq!(reads(&c)[1].1.guest, None);
    next.put("n", "2").unwrap();
    let done = next.commit().await.unwrap();
    assert_eq!(done.txn, Some(id));
    assert_eq!(c.value("n").as_deref(), Some("2"));
}

#[tokio::test]
async fn a_refused_reserved_id_drops_the_others_and_the_retry_begins() {
    let c = FakeCluster::start(1, &[]).await;
    let client = connect(&c).await;
    c.insert("n", "1");
    let mut first = client.begin();
    first.get("n").await.unwrap();
    first.abort().await;
    c.clear_calls();
    let moved = RemoteError::Txn(TxnError::Aborted {
        txn: meridian_client::TxnId::new(0, 0),
        reason: AbortReason::LeaderChanged,
    });
    c.fault(Rpc::Read, None, FaultAction::Error(moved), 1);
    let (runs, _) = read_then_write(&client, "n", "2").await;
    assert_eq!(runs, 2);
    // The first attempt used a reserved id and was refused; the retry
    // begins with `Begin`, keeping the first attempt's priority, and
    // reserves nothing (a retry's priority is old).
    let begins = requests(&c, Rpc::Begin);
    assert_eq!(begins.len(), 1);
    let Logged::Begin(b1) = &begins[0].1 else {
        unreachable!()
    };
    let r = reads(&c);
    assert_eq!(b1.priority, Some(r[0].1.guest.unwrap().priority));
    assert_eq!(b1.reserve, 0);
    assert_eq!(c.value("n").as_deref(), Some("2"));
}

#[tokio::test]
async fn an_abandoned_attempt_is_aborted_where_its_reads_went_unanswered() {
    // A read waiting for a lock is never taken for inactive: a group that
    // was asked but never answered must be told too, or the waiter keeps
    // its place in the lock queue.
    let c = FakeCluster::start(2, &["m"]).await;
    let client = connect(&c).await;
    let wounded = RemoteError::Txn(TxnError::Aborted {
        txn: meridian_client::TxnId::new(0, 0),
        reason: AbortReason::Wounded,
    });
    c.fault(Rpc::Read, None, FaultAction::Error(wounded), 2);
    let mut txn = client.begin();
    assert!(txn.get_many(["a", "z"]).await.is_err());
    txn.abort().await;
    let mut aborted: Vec<u64> = requests(&c, Rpc::Abort)
        .into_iter()
        .map(|(_, r)| match r {
            Logged::Abort(r) => r.group,
            _ => unreachable!(),
        })
        .collect();
    aborted.sort_unstable();
    assert_eq!(aborted, vec![1, 2], "home and the unanswered guest group");
}

#[tokio::test]
async fn a_non_retryable_error_is_returned_after_one_attempt() {
    let c = FakeCluster::start(1, &[]).await;
    let client = connect(&c).await;
    let mut runs = 0;
    let e = client
        .transaction(async |_txn| {
            runs += 1;
            Err::<(), _>(Error::Invalid("the caller's own".into()))
        })
        .await
        .unwrap_err();
    assert_eq!(runs, 1);
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn reads_see_the_transactions_own_writes() {
    let c = FakeCluster::start(2, &["m"]).await;
    for k in ["a", "b", "c", "d", "n", "o", "p"] {
        c.insert(k, "old");
    }
    let client = connect(&c).await;
    let ((a, b_, rows, limited), _) = client
        .transaction(async |txn| {
            txn.put("a", "new")?;
            txn.delete("b")?;
            txn.put("bb", "added")?;
            txn.put("o", "new")?;
            let a = txn.get("a").await?;
            let b_ = txn.get("b").await?;
            let rows = txn.scan("a".."zz", 100).await?;
            let limited = txn.scan("a".."zz", 3).await?;
            Ok((a, b_, rows, limited))
        })
        .await
        .unwrap();
    assert_eq!(a, Some(b("new")));
    assert_eq!(b_, None);
    let keys: Vec<&[u8]> = rows.iter().map(|(k, _)| &k[..]).collect();
    assert_eq!(keys, vec![&b"a"[..], b"bb", b"c", b"d", b"n", b"o", b"p"]);
    assert_eq!(rows[0].1, b("new"));
    assert_eq!(rows[5].1, b("new"));
    let keys: Vec<&[u8]> = limited.iter().map(|(k, _)| &k[..]).collect();
    assert_eq!(keys, vec![&b"a"[..], b"bb", b"c"]);
    // Buffered keys were answered without a Read.
    assert_eq!(c.count(Rpc::Read), 0);
    // The first scan went to both groups, each within its range; the
    // limited one was filled by group 1 (asked for one row more, for the
    // buffered delete of "b").
    let scans: Vec<pb::ScanRequest> = requests(&c, Rpc::Scan)
        .into_iter()
        .map(|(_, r)| match r {
            Logged::Scan(r) => r,
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(scans.len(), 3);
    assert_eq!((scans[0].group, scans[0].end.clone()), (1, Some(b("m"))));
    assert_eq!((scans[1].group, scans[1].start.clone()), (2, b("m")));
    assert_eq!((scans[2].group, scans[2].limit), (1, 4));
    // The buffered writes were committed.
    assert_eq!(c.value("b"), None);
    assert_eq!(c.value("bb").as_deref(), Some("added"));
}

#[tokio::test]
async fn a_cross_group_commit_names_every_other_group_with_its_term() {
    let c = FakeCluster::start(2, &["m"]).await;
    let client = connect(&c).await;
    client
        .transaction(async |txn| {
            txn.get("a").await?;
            txn.get("x").await?;
            txn.get("y").await?;
            txn.put("b", "1")?;
            txn.put("z", "2")?;
            Ok(())
        })
        .await
        .unwrap();
    let reads: Vec<pb::ReadRequest> = requests(&c, Rpc::Read)
        .into_iter()
        .map(|(_, r)| match r {
            Logged::Read(r) => r,
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(reads.len(), 3);
    // At home: no guest. Elsewhere: the priority, and the term once met.
    assert!(reads[0].guest.is_none());
    let g1 = reads[1].guest.unwrap();
    assert!(g1.priority > 0);
    assert_eq!(g1.term, None);
    assert_eq!(reads[2].guest.unwrap().term, Some(1));
    let commits = requests(&c, Rpc::Commit);
    let Logged::Commit(commit) = &commits[0].1 else {
        unreachable!()
    };
    assert_eq!(commit.group, 1);
    assert!(commit.txn.is_some());
    assert_eq!(commit.writes.len(), 1);
    assert_eq!(commit.writes[0].key, b("b"));
    assert_eq!(commit.participants.len(), 1);
    let p = &commit.participants[0];
    assert_eq!((p.group, p.term, p.writes.len()), (2, Some(1), 1));
}

/// A commit refused for good (the home group aborted the transaction,
/// say wounded while idle) leaves the read locks it took at other groups:
/// the client aborts it there at once, so the next attempt, at the same
/// priority, does not wait for its own dead predecessor until the
/// inactivity timeout.
#[tokio::test]
async fn a_refused_commit_releases_the_reads_at_the_other_groups() {
    let c = FakeCluster::start(2, &["m"]).await;
    let client = connect(&c).await;
    let mut txn = client.begin();
    txn.get("a").await.unwrap();
    txn.get("x").await.unwrap();
    txn.put("b", "1").unwrap();
    let id = txn.id().unwrap();
    c.fault(
        Rpc::Commit,
        None,
        FaultAction::Error(RemoteError::Txn(TxnError::Aborted {
            txn: id,
            reason: AbortReason::Wounded,
        })),
        1,
    );
    let e = txn.commit().await.unwrap_err();
    assert!(e.is_definitely_not_committed(), "{e:?}");
    let aborts: Vec<u64> = requests(&c, Rpc::Abort)
        .into_iter()
        .map(|(_, r)| match r {
            Logged::Abort(a) => a.group,
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(
        aborts,
        vec![2],
        "the guest group is told, the home group knows"
    );
}

#[tokio::test]
async fn a_group_only_read_is_a_participant_without_writes() {
    let c = FakeCluster::start(2, &["m"]).await;
    let client = connect(&c).await;
    client
        .transaction_with(TxnOptions::optimistic(), async |txn| {
            txn.put("a", "1")?;
            txn.get("z").await?;
            Ok(())
        })
        .await
        .unwrap();
    let begins = requests(&c, Rpc::Begin);
    let Logged::Begin(begin) = &begins[0].1 else {
        unreachable!()
    };
    // The first key touched (a write) chose the home group.
    assert_eq!(begin.group, 1);
    assert_eq!(begin.mode, pb::CcMode::Optimistic as i32);
    let commits = requests(&c, Rpc::Commit);
    let Logged::Commit(commit) = &commits[0].1 else {
        unreachable!()
    };
    assert_eq!(commit.participants.len(), 1);
    assert_eq!(commit.participants[0].group, 2);
    assert_eq!(commit.participants[0].term, Some(1));
    assert!(commit.participants[0].writes.is_empty());
}

#[tokio::test]
async fn limits_are_checked_before_anything_is_sent() {
    let c = FakeCluster::start(1, &[]).await;
    let client = connect(&c).await;
    c.clear_calls();
    fn invalid<T>(r: Result<T, Error>) -> bool {
        matches!(r, Err(Error::Invalid(_)))
    }

    assert!(invalid(client.put("", "v").await));
    assert!(invalid(client.get("").await));
    let long = "k".repeat(4097);
    assert!(invalid(client.get(long.clone()).await));
    assert!(invalid(client.put(long, "v").await));
    let big = vec![b'v'; 257 * 1024];
    assert!(invalid(client.put("k", big).await));
    let e = client
        .transaction(async |txn| {
            for i in 0..1001 {
                txn.put(format!("k{i}"), "v")?;
            }
            Ok(())
        })
        .await
        .unwrap_err();
    assert!(e.to_string().contains("1001 operations"), "{e}");
    let e = client
        .transaction(async |txn| {
            let keys: Vec<String> = (0..1001).map(|i| format!("k{i}")).collect();
            txn.get_many(keys).await
        })
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Invalid(_)), "{e}");
    assert!(invalid(
        client
            .read_only(
                (0..1001)
                    .map(|i| ReadOp::Get(Bytes::from(format!("k{i}"))))
                    .collect()
            )
            .await
    ));
    assert_eq!(c.data_calls(), 0, "nothing was sent: {:?}", c.calls());
}

#[tokio::test]
async fn a_transactions_reads_of_several_groups_are_sent_at_once() {
    let c = FakeCluster::start(3, &["m"]).await;
    c.insert("apple", "1");
    c.insert("zebra", "2");
    let client = connect(&c).await;
    // Each group's read answers after 300 ms: asked one after the other
    // they would take 600 ms.
    let delay = Duration::from_millis(300);
    c.fault(Rpc::Read, None, FaultAction::Delay(delay), 2);
    let started = std::time::Instant::now();
    let (values, _) = client
        .transaction(async |txn| txn.get_many(["apple", "zebra"]).await)
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(values, vec![Some(b("1")), Some(b("2"))]);
    assert_eq!(c.count(Rpc::Read), 2);
    assert!(took < 2 * delay, "the reads took {took:?}");
}

#[tokio::test]
async fn a_lost_commit_answer_is_resolved_with_txn_status() {
    let c = FakeCluster::start(1, &[]).await;
    let client = connect(&c).await;
    c.fault(Rpc::Commit, None, FaultAction::Lose, 1);
    let (runs, committed) = read_then_write(&client, "k", "v").await;
    assert_eq!(runs, 1);
    assert_eq!(c.count(Rpc::Commit), 1, "a commit is never sent twice");
    assert!(c.count(Rpc::TxnStatus) >= 1);
    let txn = committed.txn.unwrap();
    assert_eq!(
        client.txn_status(txn).await.unwrap(),
        TxnStatus::Committed {
            commit_ts: committed.commit_ts
        }
    );
}

#[tokio::test]
async fn a_dropped_commit_is_aborted_and_then_retried() {
    let c = FakeCluster::start(1, &[]).await;
    let client = connect(&c).await;
    c.fault(Rpc::Commit, None, FaultAction::Drop, 1);
    let (runs, _) = read_then_write(&client, "k", "v").await;
    // The first attempt's commit never arrived: still in progress, the
    // client aborted it, which made the attempt safe to retry.
    assert_eq!(runs, 2);
    assert_eq!(c.count(Rpc::Commit), 2);
    assert!(c.count(Rpc::Abort) >= 1);
    assert_eq!(c.value("k").as_deref(), Some("v"));
}

#[tokio::test]
async fn a_one_shot_commit_whose_answer_is_lost_is_outcome_unknown() {
    let c = FakeCluster::start(1, &[]).await;
    let client = connect(&c).await;
    c.fault(Rpc::Commit, None, FaultAction::Lose, 1);
    let e = client.put("k", "v").await.unwrap_err();
    assert_eq!(e, Error::OutcomeUnknown { txn: None });
    assert!(!e.is_retryable());
    assert_eq!(c.count(Rpc::Commit), 1);
    // It did commit, as the fake knows.
    assert_eq!(c.value("k").as_deref(), Some("v"));
}

#[tokio::test]
async fn an_outcome_that_cannot_be_learned_is_reported_unknown() {
    let c = FakeCluster::start(1, &[]).await;
    let client = Client::connect_with(
        c.endpoints(),
        fast().with_retries(3, 3, Duration::from_secs(5)),
    )
    .await
    .unwrap();
    c.fault(Rpc::Commit, None, FaultAction::Lose, 1);
    c.fault(Rpc::TxnStatus, None, FaultAction::Drop, 1000);
    let e = client
        .transaction(async |txn| {
            txn.get("k").await?;
            txn.put("k", "v")?;
            Ok(())
        })
        .await
        .unwrap_err();
    let Error::OutcomeUnknown { txn: Some(_) } = e else {
        panic!("expected an unknown outcome with the id, got {e:?}")
    };
    assert_eq!(c.count(Rpc::Commit), 1);
    assert_eq!(c.count(Rpc::Begin), 1, "never retried as a new attempt");
}

#[tokio::test]
async fn a_busy_leader_is_retried_after_a_backoff() {
    let c = FakeCluster::start(1, &[]).await;
    let client = connect(&c).await;
    c.fault(
        Rpc::Commit,
        None,
        FaultAction::Error(RemoteError::Txn(TxnError::Overloaded)),
        2,
    );
    c.fault(
        Rpc::Begin,
        None,
        FaultAction::Error(RemoteError::Txn(TxnError::LeaderNotReady)),
        1,
    );
    client
        .transaction(async |txn| {
            txn.get("k").await?;
            txn.put("k", "v")?;
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(c.count(Rpc::Begin), 2);
    assert_eq!(c.count(Rpc::Commit), 3);
    assert_eq!(c.value("k").as_deref(), Some("v"));
}

#[tokio::test]
async fn a_strong_read_in_one_group_is_strong_and_across_groups_at_now_latest() {
    use pb::read_only_request::At;
    let c = FakeCluster::start(3, &["m"]).await;
    c.insert("a", "1");
    c.insert("z", "2");
    // Every read across groups asks the clock: a reading reused within
    // `clock_reuse` would be aged by however fast this machine runs, and the
    // timestamps below are checked exactly.
    let client = Client::connect_with(c.endpoints(), fast().with_clock_reuse(Duration::ZERO))
        .await
        .expect("connect to the fake cluster");
    let r = client.read_only(vec![ReadOp::Get(b("a"))]).await.unwrap();
    assert_eq!(r.results, vec![ReadResult::Value(Some(b("1")))]);
    assert_eq!(c.count(Rpc::Now), 0);
    let Logged::ReadOnly(one) = &requests(&c, Rpc::ReadOnly)[0].1 else {
        unreachable!()
    };
    assert_eq!(one.at, Some(At::Strong(pb::Empty {})));

    c.clear_calls();
    let r = client
        .read_only(vec![
            ReadOp::Get(b("a")),
            ReadOp::Get(b("z")),
            ReadOp::Scan {
                start: b("a"),
                end: None,
                limit: 10,
            },
        ])
        .await
        .unwrap();
    assert_eq!(c.count(Rpc::Now), 1);
    let ro = requests(&c, Rpc::ReadOnly);
    assert_eq!(ro.len(), 2);
    for (_, req) in &ro {
        let Logged::ReadOnly(req) = req else {
            unreachable!()
        };
        assert_eq!(req.at, Some(At::Exact(r.read_ts.as_nanos())));
    }
    assert_eq!(r.results[1], ReadResult::Value(Some(b("2"))));
    assert_eq!(
        r.results[2],
        ReadResult::Rows(vec![(b("a"), b("1")), (b("z"), b("2"))])
    );

    c.clear_calls();
    let stale = client
        .read_stale(
            Duration::from_nanos(500),
            vec![ReadOp::Get(b("a")), ReadOp::Get(b("z"))],
        )
        .await
        .unwrap();
    let latest = c.state().clock + 10;
    assert_eq!(stale.read_ts.as_nanos(), latest - 500);

    let snap = client
        .snapshot_read(
            meridian_client::Timestamp::from_nanos(77),
            vec![ReadOp::Get(b("a"))],
        )
        .await
        .unwrap();
    assert_eq!(snap.read_ts.as_nanos(), 77);
}

#[tokio::test]
async fn a_read_not_yet_safe_moves_to_another_replica() {
    let c = FakeCluster::start(3, &[]).await;
    c.insert("a", "1");
    let client = connect(&c).await;
    let not_safe = RemoteError::Txn(TxnError::NotYetSafe {
        read_ts: meridian_client::Timestamp::from_nanos(5),
        t_safe: meridian_client::Timestamp::from_nanos(4),
    });
    for node in 1..=3 {
        c.fault(
            Rpc::ReadOnly,
            Some(node),
            FaultAction::Error(not_safe.clone()),
            1,
        );
    }
    // Every replica refuses once; the client moves on and comes back.
    assert_eq!(client.get("a").await.unwrap(), Some(b("1")));
    let nodes: Vec<u64> = requests(&c, Rpc::ReadOnly)
        .iter()
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(nodes.len(), 4);
    assert_ne!(nodes[0], nodes[1]);
}

#[tokio::test]
async fn another_clusters_node_is_refused_without_retry() {
    let c = FakeCluster::start(1, &[]).await;
    let client = connect(&c).await;
    c.state().cluster_id = 0xBAD;
    let e = client.put("k", "v").await.unwrap_err();
    assert!(matches!(e, Error::ClusterMismatch { .. }), "{e:?}");
    assert!(!e.is_retryable());
    assert_eq!(c.count(Rpc::Commit), 1);
}

#[tokio::test]
async fn endpoints_that_cannot_be_parsed_or_reached_are_told_apart() {
    let e = Client::connect(["not an endpoint"]).await.unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
    let e = Client::connect(["ftp://x:1"]).await.unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
    let e = Client::connect(Vec::<String>::new()).await.unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap().to_string();
    drop(free);
    let e = Client::connect_with([addr], fast()).await.unwrap_err();
    assert!(matches!(e, Error::Unavailable { .. }), "{e:?}");
}

#[tokio::test]
async fn a_client_is_shared_by_many_tasks() {
    let c = FakeCluster::start(2, &["m"]).await;
    let client = connect(&c).await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            client
                .put(format!("{}{i}", if i % 2 == 0 { "a" } else { "z" }), "v")
                .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(c.state().data.len(), 8);
}

#[tokio::test]
async fn a_hand_driven_transaction_commits_or_aborts() {
    let c = FakeCluster::start(1, &[]).await;
    let client = connect(&c).await;
    let mut txn = client.begin_with(TxnOptions {
        mode: CcMode::Locking,
    });
    assert_eq!(txn.get("k").await.unwrap(), None);
    txn.put("k", "v").unwrap();
    let id = txn.id().unwrap();
    txn.heartbeat().await.unwrap();
    let committed = txn.commit().await.unwrap();
    assert_eq!(committed.txn, Some(id));

    let mut txn = client.begin();
    txn.get("k").await.unwrap();
    txn.put("k", "w").unwrap();
    let id = txn.id().unwrap();
    txn.abort().await;
    assert_eq!(client.txn_status(id).await.unwrap(), TxnStatus::Aborted);
    assert_eq!(c.value("k").as_deref(), Some("v"));
    // The Display form of an id parses back.
    assert_eq!(meridian_client::parse_txn_id(&id.to_string()).unwrap(), id);
}

#[tokio::test]
async fn every_call_carries_a_deadline() {
    let c = FakeCluster::start(2, &["m"]).await;
    let client = connect(&c).await;
    client
        .transaction(async |txn| {
            txn.get("a").await?;
            txn.get("z").await?;
            txn.scan("a".."zz", 5).await?;
            txn.put("b", "1")
        })
        .await
        .unwrap();
    client.put("c", "1").await.unwrap();
    client
        .read_only(vec![ReadOp::Get(b("a")), ReadOp::Get(b("z"))])
        .await
        .unwrap();
    let calls = c.calls();
    assert!(calls.len() > 8);
    for call in calls {
        assert!(call.deadline, "{:?} without a deadline", call.req.rpc());
    }
}

#[tokio::test]
async fn a_replica_past_the_deadline_is_left_for_another() {
    let c = FakeCluster::start(3, &[]).await;
    c.insert("a", "1");
    let client = Client::connect_with(
        c.endpoints(),
        fast().with_request_timeout(Duration::from_millis(200)),
    )
    .await
    .unwrap();
    for node in 1..=3 {
        c.fault(
            Rpc::ReadOnly,
            Some(node),
            FaultAction::Delay(Duration::from_secs(5)),
            1,
        );
    }
    let started = std::time::Instant::now();
    let r = client
        .read_stale(Duration::from_secs(10), vec![ReadOp::Get(b("a"))])
        .await
        .unwrap();
    assert_eq!(r.results, vec![ReadResult::Value(Some(b("1")))]);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(c.count(Rpc::ReadOnly), 4);
}

/// Spanner §4.2.2: a strong read of one group is served at once by its
/// leader (at its log's last timestamp); a follower would have to wait for
/// its safe time to reach `TT.now().latest`. So strong reads go to the
/// leader, and reads at a timestamp anywhere.
#[tokio::test]
async fn a_strong_read_of_one_group_goes_to_its_leader() {
    let c = FakeCluster::start(3, &[]).await;
    c.insert("a", "1");
    let client = connect(&c).await;
    let leader = client.groups()[0]
        .leader
        .expect("the fake names its leader");
    c.clear_calls();
    for _ in 0..6 {
        assert_eq!(client.get("a").await.unwrap(), Some(b("1")));
    }
    let nodes: Vec<u64> = requests(&c, Rpc::ReadOnly)
        .iter()
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(nodes, vec![leader; 6]);
}

/// A strong read across groups is at `TT.now().latest` of one node, asked
/// of every group's leader (which closes that timestamp at once; a
/// follower would wait for the leader's next idle close).
#[tokio::test]
async fn a_strong_read_across_groups_goes_to_every_groups_leader() {
    let c = FakeCluster::start(3, &["m"]).await;
    c.insert("apple", "1");
    c.insert("zebra", "2");
    let client = connect(&c).await;
    let leaders: Vec<u64> = client
        .groups()
        .iter()
        .map(|g| g.leader.expect("the fake names its leaders"))
        .collect();
    c.clear_calls();
    for _ in 0..4 {
        let r = client
            .read_only(vec![ReadOp::Get(b("apple")), ReadOp::Get(b("zebra"))])
            .await
            .unwrap();
        assert_eq!(
            r.results,
            vec![
                ReadResult::Value(Some(b("1"))),
                ReadResult::Value(Some(b("2")))
            ]
        );
    }
    let mut nodes: Vec<u64> = requests(&c, Rpc::ReadOnly)
        .iter()
        .map(|(n, _)| *n)
        .collect();
    nodes.sort();
    let mut want: Vec<u64> = leaders.iter().flat_map(|l| [*l; 4]).collect();
    want.sort();
    assert_eq!(nodes, want);
}

#[tokio::test]
async fn reads_across_groups_take_their_timestamp_from_a_recent_clock_reading_aged_by_its_age() {
    let c = FakeCluster::start(3, &["m"]).await;
    c.insert("apple", "1");
    c.insert("zebra", "2");
    let reads = || vec![ReadOp::Get(b("apple")), ReadOp::Get(b("zebra"))];
    for (reuse, asked) in [(Duration::from_secs(3600), 1), (Duration::ZERO, 4)] {
        let client = Client::connect_with(c.endpoints(), fast().with_clock_reuse(reuse))
            .await
            .expect("connects");
        c.clear_calls();
        let mut last = Timestamp::ZERO;
        for _ in 0..4 {
            let r = client.read_only(reads()).await.unwrap();
            // Each read is above the one before: a reused reading is aged.
            assert!(r.read_ts > last, "{} after {last}", r.read_ts);
            last = r.read_ts;
        }
        assert_eq!(c.count(Rpc::Now), asked, "clock reuse {reuse:?}");
    }
}

/// docs/design.md §2, ageing a clock reading: the node reads its clock
/// somewhere between the request's departure and the answer's arrival, so
/// a reused reading must be aged from the departure. Here the answer takes
/// `DELAY` to come; a reading aged from its arrival would put the next read
/// up to `DELAY` below the present.
#[tokio::test]
async fn a_reused_clock_reading_is_aged_from_when_its_request_left() {
    const DELAY: Duration = Duration::from_millis(300);
    let c = FakeCluster::start(3, &["m"]).await;
    c.insert("apple", "1");
    c.insert("zebra", "2");
    let reads = || vec![ReadOp::Get(b("apple")), ReadOp::Get(b("zebra"))];
    let client = Client::connect_with(
        c.endpoints(),
        fast().with_clock_reuse(Duration::from_secs(3600)),
    )
    .await
    .expect("connects");
    c.fault(Rpc::Now, None, FaultAction::Delay(DELAY), 1);
    let first = client.read_only(reads()).await.unwrap();
    assert_eq!(c.count(Rpc::Now), 1);
    let second = client.read_only(reads()).await.unwrap();
    assert_eq!(c.count(Rpc::Now), 1, "the reading was reused");
    let aged = second.read_ts.as_nanos() - first.read_ts.as_nanos();
    assert!(
        aged >= DELAY.as_nanos() as u64,
        "aged by {aged} ns, less than the {DELAY:?} the answer took"
    );
}

#[test]
fn a_drift_bound_that_lets_a_clock_stand_still_is_refused() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let connected = rt.block_on(Client::connect_with(
        ["127.0.0.1:1"],
        fast().with_clock_drift_ppm(1_000_000),
    ));
    assert!(
        matches!(connected, Err(meridian_client::Error::Config(_))),
        "refused before connecting"
    );
}

/// A locking read can wait for a lock longer than one call's deadline.
/// The leader still answers a probe at once, so the read is asked again of
/// the same leader (which joins it to the one in progress): the node is
/// not taken for dead and the transaction does not start over.
#[tokio::test]
async fn a_slow_read_at_a_live_leader_is_asked_again_of_the_same_leader() {
    let c = FakeCluster::start(3, &[]).await;
    c.insert("a", "1");
    let client = Client::connect_with(
        c.endpoints(),
        fast().with_request_timeout(Duration::from_millis(300)),
    )
    .await
    .unwrap();
    let mut txn = client.begin();
    c.clear_calls();
    c.fault(
        Rpc::Read,
        None,
        FaultAction::Delay(Duration::from_secs(5)),
        1,
    );
    assert_eq!(txn.get("a").await.unwrap(), Some(b("1")));
    let reads = requests(&c, Rpc::Read);
    assert_eq!(reads.len(), 2, "{reads:?}");
    assert_eq!(reads[0].0, reads[1].0, "asked again of the same leader");
    assert!(c.count(Rpc::Now) >= 1, "the leader was probed");
    assert_eq!(requests(&c, Rpc::Begin).len(), 1, "one attempt only");
    txn.put("a", "2").unwrap();
    txn.commit().await.unwrap();
    assert_eq!(c.value("a").as_deref(), Some("2"));
}

#[tokio::test]
async fn a_home_leader_change_mid_transaction_runs_a_new_attempt() {
    let c = FakeCluster::start(2, &[]).await;
    let client = connect(&c).await;
    let moved = RemoteError::Txn(TxnError::NotLeader { leader: Some(2) });
    c.fault(Rpc::Read, None, FaultAction::Error(moved), 1);
    let (runs, _) = read_then_write(&client, "a", "1").await;
    // The transaction lived at the leader that began it: its read is not
    // sent elsewhere within the attempt.
    assert_eq!(runs, 2);
    let reads: Vec<u64> = requests(&c, Rpc::Read).iter().map(|(n, _)| *n).collect();
    assert_eq!(reads, vec![1, 1]);
    assert_eq!(c.count(Rpc::Begin), 2);
    assert!(c.count(Rpc::Abort) >= 1, "the first attempt is aborted");
}

#[tokio::test]
async fn a_read_at_a_moved_range_is_routed_again_within_the_attempt() {
    let c = FakeCluster::start(2, &["m"]).await;
    let client = connect(&c).await;
    {
        let mut s = c.state();
        s.groups[0].end = Some(b("g"));
        s.groups[1].start = b("g");
    }
    c.insert("h", "x");
    let mut runs = 0;
    let (v, _) = client
        .transaction(async |txn| {
            runs += 1;
            txn.put("a", "1")?;
            txn.get("h").await
        })
        .await
        .unwrap();
    assert_eq!(v, Some(b("x")));
    assert_eq!(runs, 1);
    let reads = requests(&c, Rpc::Read);
    let Logged::Read(last) = &reads.last().unwrap().1 else {
        unreachable!()
    };
    assert_eq!(last.group, 2);
    assert!(last.guest.is_some());
    let Logged::Commit(commit) = &requests(&c, Rpc::Commit)[0].1 else {
        unreachable!()
    };
    assert_eq!(commit.participants[0].group, 2);
}

#[test]
fn a_client_is_clone_send_and_sync() {
    fn shared<T: Clone + Send + Sync + 'static>() {}
    shared::<Client>();
}

#[tokio::test]
async fn tls_files_that_cannot_be_read_are_a_configuration_error() {
    use meridian_client::TlsOptions;
    let opts = fast().with_tls(TlsOptions::mutual(
        "/nonexistent/ca.pem",
        "/nonexistent/client.pem",
        "/nonexistent/client.key",
    ));
    let e = Client::connect_with(["127.0.0.1:1"], opts)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Config(m) if m.contains("/nonexistent/ca.pem")),
        "{e:?}"
    );
}

#[tokio::test]
async fn an_idle_transaction_is_kept_alive_until_it_ends() {
    let c = FakeCluster::start(2, &[]).await;
    let mut opts = fast();
    opts.heartbeat_interval = Some(Duration::from_millis(30));
    let client = Client::connect_with(c.endpoints(), opts).await.unwrap();
    client
        .transaction(async |txn| {
            txn.get("k").await?;
            tokio::time::sleep(Duration::from_millis(250)).await;
            txn.get("j").await?;
            txn.put("k", "v")
        })
        .await
        .unwrap();
    let beats = requests(&c, Rpc::Heartbeat);
    assert!(beats.len() >= 2, "{} heartbeats", beats.len());
    assert!(
        beats.iter().all(|(node, _)| *node == 1),
        "at the home leader"
    );
    assert_eq!(c.count(Rpc::Commit), 1);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        requests(&c, Rpc::Heartbeat).len(),
        beats.len(),
        "stopped at commit"
    );
}

/// docs/design.md §6: a client sends every call to a node on one `Calls`
/// stream, and calls that queue together travel as one batch.
#[tokio::test]
async fn concurrent_calls_share_one_stream_per_node_and_travel_in_batches() {
    let c = FakeCluster::start(1, &[]).await;
    c.insert("k", "v");
    let client = connect(&c).await;
    const CALLS: usize = 64;
    let tasks: Vec<_> = (0..CALLS)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.get("k").await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), Some(b("v")));
    }
    let s = c.state();
    assert_eq!(s.streams, 1, "one stream to the one node");
    assert_eq!(s.batches.iter().sum::<usize>(), CALLS);
    assert!(
        s.batches.len() < CALLS / 2,
        "calls queued together were sent one by one: {:?}",
        s.batches
    );
}

/// A stream that breaks fails its calls in flight as possibly delivered
/// (a one-shot write's outcome is then unknown) and the next call opens a
/// new stream.
#[tokio::test]
async fn a_broken_stream_fails_its_calls_and_the_next_call_opens_another() {
    let c = FakeCluster::start(1, &[]).await;
    let client = connect(&c).await;
    client.put("a", "1").await.unwrap();
    assert_eq!(c.state().streams, 1);
    c.fault(Rpc::Commit, None, FaultAction::BreakStream, 1);
    assert!(matches!(
        client.put("b", "1").await,
        Err(Error::OutcomeUnknown { .. })
    ));
    client.put("c", "1").await.unwrap();
    assert_eq!(c.state().streams, 2, "a new stream after the break");
}
