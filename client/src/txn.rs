//! One attempt of a read-write transaction (docs/design.md §5.1, §5.4): the
//! client's half of the protocol the simulator's client runs
//! (`sim::txn_sim`'s `send_txn_read` and `send_commit`).
//!
//! - The home group is the group of the first key touched. `Begin` is
//!   lazy: it goes to the home group's leader at the first read; a
//!   transaction that only writes is committed as a one-shot (a `Commit`
//!   without an id, which the node begins and commits at once).
//! - A first `Begin` at a group also reserves ids for later transactions
//!   there ([`crate::ClientOptions::reserve_ids`]). A transaction whose
//!   first read (or scan) includes its home group takes one instead of
//!   sending `Begin`: that read, sent to the reserving leader as a guest
//!   that has met no term, begins it there (docs/design.md §5.1), in the
//!   same round trip as its reads at other groups.
//! - Reads at the home group go to the leader that began the transaction
//!   (its locks live exactly as long as that leader's term) without a
//!   guest; reads at any other group go to its leader with a `Guest`
//!   naming the priority, the mode and the term the first request there
//!   met.
//! - Writes are buffered here and sent at commit, grouped by group: the
//!   home group's in `writes`, every other group read or written in
//!   `participants` with its term. Reads (gets and scans) see the
//!   buffered writes.
//! - A begun transaction that idles sends heartbeats to its home group's
//!   leader, one request at a time with its own requests.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use meridian_participant::TxnId;
use meridian_participant::mvcc::MAX_SCAN_ROWS;
use meridian_proto::RemoteError;
use meridian_proto::convert::{mode_to_pb, txn_from_pb, txn_to_pb};
use meridian_proto::pb;
use meridian_truetime::{RawInstant, Timestamp};
use meridian_txn::api::{check_key, check_operation_count, check_scan};
use meridian_txn::{CcMode, GroupId, Term, TxnError};

use crate::route::{CallError, GroupInfo, Inner, Resend, Route, Spares};
use crate::{Client, Error, IntoBytes, KeyRange, NodeId, TxnStatus};

/// A committed transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Committed {
    /// Its commit timestamp: every read at or after it sees its writes.
    /// [`Timestamp::ZERO`] for a transaction that read and wrote nothing
    /// (nothing was sent).
    pub commit_ts: Timestamp,
    /// Its id; `None` only for a transaction that read and wrote nothing.
    pub txn: Option<TxnId>,
}

/// One attempt of a read-write transaction, from [`Client::transaction`]
/// or [`Client::begin`].
///
/// Reads go to the cluster; [`Txn::put`] and [`Txn::delete`] are buffered
/// and sent with the commit. A `Txn` dropped without [`Txn::commit`] or
/// [`Txn::abort`] (a closure's future cancelled, a hand-driven transaction
/// forgotten) is aborted in the background when dropped within a tokio
/// runtime, releasing its locks at once; outside one its locks last until
/// the leader's inactivity timeout.
#[derive(Debug)]
pub struct Txn {
    client: Client,
    mode: CcMode,
    /// The wound-wait priority: the first attempt's, kept on retries.
    priority: Option<Timestamp>,
    home: Option<GroupId>,
    /// The leader of the home group that began the transaction.
    home_node: Option<NodeId>,
    id: Option<TxnId>,
    /// The id is a reserved one that no request has begun at the home
    /// group yet: the next request there begins it.
    joining_home: bool,
    /// The term each group's first request met (the home group's too).
    terms: BTreeMap<GroupId, Term>,
    /// Every group a read or scan was sent to, answered or not: an attempt
    /// that ends without committing is aborted at each (a read waiting
    /// for a lock is never taken for inactive, and would keep its place
    /// in the queue).
    asked: BTreeSet<GroupId>,
    /// Buffered writes: a value, or `None` for a delete.
    writes: BTreeMap<Bytes, Option<Bytes>>,
    /// Operations so far that count towards the limit other than writes:
    /// keys read, and per scan one plus its rows.
    reads: usize,
    finished: bool,
    /// Heartbeats while the transaction idles, once begun.
    keepalive: Option<Keepalive>,
    /// The range directory's own transaction: it may read and write system
    /// keys, which a user's transaction may not.
    system: bool,
}

/// The background heartbeat of a begun transaction.
#[derive(Debug)]
struct Keepalive {
    /// Held during each request of the transaction, so that a heartbeat
    /// never overlaps one (a node refuses a second request in flight with
    /// `TxnBusy`); holds when the last request was sent.
    gate: Arc<tokio::sync::Mutex<Instant>>,
    task: tokio::task::AbortHandle,
}

impl Drop for Txn {
    /// Stops the heartbeats; a transaction dropped without
    /// [`Txn::commit`] or [`Txn::abort`] that has begun (its reads may hold
    /// locks) is aborted from a task of its own, when a tokio runtime is
    /// present, at its home group and every group it read at, so that its
    /// locks are released now rather than at the leader's inactivity
    /// timeout.
    fn drop(&mut self) {
        if let Some(k) = self.keepalive.take() {
            k.task.abort();
        }
        if self.finished {
            return;
        }
        self.finished = true;
        let Some(txn) = self.id else {
            // Nothing was sent: no participant holds anything.
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::debug!(%txn, "transaction dropped outside a runtime; left to the inactivity timeout");
            return;
        };
        tracing::debug!(%txn, "transaction dropped without commit or abort; aborting");
        runtime.spawn(self.abort_plan(txn, true).send());
    }
}

/// Sends a `Heartbeat` to the home group's leader whenever the transaction
/// has sent nothing for `every`, until it is gone or the task is stopped.
async fn keep_alive(
    inner: Arc<Inner>,
    group: GroupId,
    node: NodeId,
    txn: TxnId,
    gate: Arc<tokio::sync::Mutex<Instant>>,
    every: Duration,
) {
    loop {
        tokio::time::sleep(every).await;
        // A request in flight keeps it alive already.
        let Ok(mut last) = gate.try_lock() else {
            continue;
        };
        if last.elapsed() < every {
            continue;
        }
        let Some(uri) = inner.view().nodes.get(&node).cloned() else {
            return;
        };
        let req = pb::HeartbeatRequest {
            header: Some(inner.header()),
            group,
            txn: Some(txn_to_pb(txn)),
        };
        match inner.rpc_at(&uri, req).await {
            Ok(_) => *last = Instant::now(),
            // Aborted, or its leader is gone: nothing left to keep alive.
            Err(CallError::Remote(
                RemoteError::Txn(TxnError::Aborted { .. } | TxnError::NotLeader { .. })
                | RemoteError::NoReplica { .. },
            )) => return,
            Err(e) => tracing::debug!(%txn, error = ?e, "heartbeat failed"),
        }
    }
}

/// `[start, end)` clipped to `group`'s range.
pub(crate) fn clip(
    start: &Bytes,
    end: Option<&Bytes>,
    group: &GroupInfo,
) -> (Bytes, Option<Bytes>) {
    let s = if group.start > *start {
        group.start.clone()
    } else {
        start.clone()
    };
    let e = match (end, &group.end) {
        (Some(a), Some(b)) => Some(a.min(b).clone()),
        (Some(a), None) => Some(a.clone()),
        (None, b) => b.clone(),
    };
    (s, e)
}

fn in_range(key: &[u8], start: &[u8], end: Option<&Bytes>) -> bool {
    key >= start && end.is_none_or(|e| key < &e[..])
}

impl Txn {
    pub(crate) fn new(client: Client, mode: CcMode, priority: Option<Timestamp>) -> Txn {
        Txn {
            client,
            mode,
            priority,
            home: None,
            home_node: None,
            id: None,
            joining_home: false,
            terms: BTreeMap::new(),
            asked: BTreeSet::new(),
            writes: BTreeMap::new(),
            reads: 0,
            finished: false,
            keepalive: None,
            system: false,
        }
    }

    /// A transaction of the range directory's code, allowed system keys.
    pub(crate) fn new_system(client: Client, mode: CcMode, priority: Option<Timestamp>) -> Txn {
        let mut txn = Txn::new(client, mode, priority);
        txn.system = true;
        txn
    }

    /// Refuses a system key to a user's transaction.
    fn check_access(&self, key: &[u8]) -> Result<(), Error> {
        if !self.system {
            meridian_txn::api::check_user_key(key)?;
        }
        Ok(())
    }

    /// The transaction's id, once a read has begun it (a write-only
    /// transaction learns its id at commit).
    pub fn id(&self) -> Option<TxnId> {
        self.id
    }

    /// Its wound-wait priority, once begun (a retry's is its first
    /// attempt's).
    pub fn priority(&self) -> Option<Timestamp> {
        self.priority
    }

    /// Its concurrency control.
    pub fn mode(&self) -> CcMode {
        self.mode
    }

    /// Its home group, once a key was touched.
    pub fn home_group(&self) -> Option<GroupId> {
        self.home
    }

    /// Operations so far towards [`crate::MAX_TXN_OPERATIONS`]: keys read,
    /// one per scan plus its rows, and keys written.
    pub fn operations(&self) -> usize {
        self.reads + self.writes.len()
    }

    fn live(&self) -> Result<(), Error> {
        if self.finished {
            return Err(Error::Finished);
        }
        Ok(())
    }

    fn touch(&mut self, key: &[u8]) -> Result<(), Error> {
        if self.home.is_none() {
            self.home = Some(self.client.group_of(key)?);
        }
        Ok(())
    }

    /// Buffers a write of `value` at `key`, sent at commit. Checked against
    /// the limits at once.
    pub fn put(&mut self, key: impl IntoBytes, value: impl IntoBytes) -> Result<(), Error> {
        self.write(key.into_bytes(), Some(value.into_bytes()))
    }

    /// Buffers a delete of `key`, sent at commit.
    pub fn delete(&mut self, key: impl IntoBytes) -> Result<(), Error> {
        self.write(key.into_bytes(), None)
    }

    fn write(&mut self, key: Bytes, value: Option<Bytes>) -> Result<(), Error> {
        self.live()?;
        let w = meridian_participant::Write { key, value };
        meridian_txn::api::check_write(&w)?;
        self.check_access(&w.key)?;
        if !self.writes.contains_key(&w.key) {
            check_operation_count(self.operations() + 1)?;
        }
        self.touch(&w.key)?;
        self.writes.insert(w.key, w.value);
        Ok(())
    }

    /// The value of `key` (`None`: no value), as this transaction sees it:
    /// its own buffered write if it made one, else read at the key's
    /// group's leader (under a shared lock for a locking transaction).
    pub async fn get(&mut self, key: impl IntoBytes) -> Result<Option<Bytes>, Error> {
        let mut v = self.get_many([key]).await?;
        Ok(v.pop().flatten())
    }

    /// The values of `keys`, in order; one request per group.
    pub async fn get_many<K: IntoBytes>(
        &mut self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<Vec<Option<Bytes>>, Error> {
        self.live()?;
        let keys: Vec<Bytes> = keys.into_iter().map(IntoBytes::into_bytes).collect();
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        for k in &keys {
            check_key(k)?;
            self.check_access(k)?;
        }
        check_operation_count(self.operations() + keys.len())?;
        let mut out: Vec<Option<Bytes>> = vec![None; keys.len()];
        // Read-your-writes: a buffered write answers without a request.
        let mut pending: Vec<usize> = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            match self.writes.get(k) {
                Some(v) => out[i] = v.clone(),
                None => pending.push(i),
            }
        }
        self.touch(&keys[0])?;
        self.reads += keys.len();
        let mut replans = 0;
        while !pending.is_empty() {
            let view = self.client.inner.view();
            let mut plan: Vec<(GroupId, Vec<usize>)> = Vec::new();
            for &i in &pending {
                let g = view.group_of(&keys[i])?;
                match plan.iter_mut().find(|(pg, _)| *pg == g) {
                    Some((_, idx)) => idx.push(i),
                    None => plan.push((g, vec![i])),
                }
            }
            let at_home = plan.iter().any(|(g, _)| Some(*g) == self.home);
            self.begin(at_home).await?;
            // The groups are read at once; every answer is taken in (its
            // term noted, so an abort reaches that group) before an error
            // ends the read.
            let asks: Vec<(GroupId, Vec<Bytes>)> = plan
                .iter()
                .map(|(g, idx)| (*g, idx.iter().map(|&i| keys[i].clone()).collect()))
                .collect();
            let answers = self.read_at_groups(asks).await;
            let mut failed = None;
            for ((_, idx), answer) in plan.into_iter().zip(answers) {
                match answer {
                    Ok(values) => {
                        for (i, v) in idx.iter().zip(values) {
                            out[*i] = v;
                        }
                        pending.retain(|i| !idx.contains(i));
                    }
                    Err(e @ Error::Remote(RemoteError::WrongGroup { .. })) => {
                        // The range map was refreshed: plan the rest again.
                        replans += 1;
                        if replans > self.client.inner.opts.max_request_tries {
                            failed.get_or_insert(e);
                        }
                    }
                    Err(e) => {
                        failed.get_or_insert(e);
                    }
                }
            }
            if let Some(e) = failed {
                return Err(e);
            }
        }
        Ok(out)
    }

    /// The route and guest description of a request at `group`.
    fn target(&self, group: GroupId) -> (Route, Option<pb::Guest>) {
        let guest = pb::Guest {
            priority: self.priority.map_or(0, Timestamp::as_nanos),
            term: self.terms.get(&group).copied(),
            mode: mode_to_pb(self.mode),
        };
        if Some(group) == self.home {
            let node = self.home_node.expect("a begun transaction has a home node");
            // A reserved id is begun by its first request, a guest's.
            (Route::Pinned(node), self.joining_home.then_some(guest))
        } else {
            (Route::Leader, Some(guest))
        }
    }

    /// Takes in the answer of a request at `group`: the term it met, or,
    /// for a refused request at home, drops the client's reserved ids of
    /// that group (its leader may have changed, and would refuse them;
    /// the next `Begin` there reserves more).
    fn answered(&mut self, group: GroupId, term: Option<Term>) {
        match term {
            Some(term) => {
                self.terms.entry(group).or_insert(term);
                if Some(group) == self.home {
                    self.joining_home = false;
                }
            }
            None if Some(group) == self.home => self.client.inner.drop_spares(group),
            None => {}
        }
    }

    /// Waits out a heartbeat in flight and keeps the next one back while a
    /// request of the transaction is under way.
    async fn quiet(&self) -> Option<tokio::sync::OwnedMutexGuard<Instant>> {
        match &self.keepalive {
            Some(k) => Some(k.gate.clone().lock_owned().await),
            None => None,
        }
    }

    /// Stops the heartbeats, after one in flight has been answered.
    async fn stop_keepalive(&mut self) {
        let _quiet = self.quiet().await;
        if let Some(k) = self.keepalive.take() {
            k.task.abort();
        }
    }

    /// Reads `keys` at each group, all groups at once: one answer per
    /// group, in order.
    async fn read_at_groups(
        &mut self,
        asks: Vec<(GroupId, Vec<Bytes>)>,
    ) -> Vec<Result<Vec<Option<Bytes>>, Error>> {
        let txn = self.id.expect("begun before reading");
        self.asked.extend(asks.iter().map(|(g, _)| *g));
        let mut quiet = self.quiet().await;
        let calls: Vec<_> = asks
            .iter()
            .map(|(group, keys)| {
                let (route, guest) = self.target(*group);
                let (group, inner) = (*group, &self.client.inner);
                async move {
                    let (r, _) = inner
                        .call_group(group, route, Resend::Safe, |header| pb::ReadRequest {
                            header: Some(header),
                            group,
                            txn: Some(txn_to_pb(txn)),
                            keys: keys.clone(),
                            guest,
                        })
                        .await?;
                    if r.values.len() != keys.len() {
                        return Err(Error::Invalid(format!(
                            "group {group} answered {} values to {} keys",
                            r.values.len(),
                            keys.len()
                        )));
                    }
                    Ok((r.term, r.values.into_iter().map(|v| v.value).collect()))
                }
            })
            .collect();
        let answers = crate::join_all(calls).await;
        if let Some(last) = quiet.as_mut() {
            **last = Instant::now();
        }
        answers
            .into_iter()
            .zip(&asks)
            .map(|(answer, (group, _))| {
                self.answered(*group, answer.as_ref().ok().map(|(term, _)| *term));
                answer.map(|(_, values)| values)
            })
            .collect()
    }

    /// The rows with keys in `range` (`start..end`, `start..`, `..end`,
    /// `..`, `start..=end`: [`KeyRange`]), at most `limit` of them, in key
    /// order, as this transaction sees them: the groups' committed rows
    /// with its own buffered writes laid over them. A locking transaction
    /// holds a shared range lock on each group's part of the range until it
    /// ends (no phantoms); an optimistic one has the rows validated at
    /// commit.
    pub async fn scan(
        &mut self,
        range: impl KeyRange,
        limit: usize,
    ) -> Result<Vec<(Bytes, Bytes)>, Error> {
        let (start, end) = range.into_bounds();
        self.scan_bounds(start, end, limit).await
    }

    /// [`Txn::scan`] with explicit bounds: an optional upper bound (`None`:
    /// to the last key) and an empty `start` meaning from the first key.
    /// (`txn.scan(start.., limit)` is the same without an upper bound.)
    pub async fn scan_bounds(
        &mut self,
        start: impl IntoBytes,
        end: Option<Bytes>,
        limit: usize,
    ) -> Result<Vec<(Bytes, Bytes)>, Error> {
        self.live()?;
        let mut start = start.into_bytes();
        check_scan(&start, end.as_ref(), limit)?;
        if !self.system {
            start = meridian_txn::api::user_scan_start(&start)?;
        }
        check_operation_count(self.operations() + 1)?;
        if limit == 0 || end.as_ref().is_some_and(|e| *e <= start) {
            return Ok(Vec::new());
        }
        let view = self.client.inner.view();
        if let Some(k) = view.gap(&start, end.as_deref()) {
            // A range the map misses: the attempt is retried once the map
            // is refreshed (with the range directory's records).
            return Err(Error::Unavailable {
                detail: format!("no known range holds key {}", crate::show_bytes(&k)),
            });
        }
        let groups = view.groups_overlapping(&start, end.as_deref());
        let Some(first) = groups.first() else {
            return Ok(Vec::new());
        };
        if self.home.is_none() {
            self.home = Some(first.id);
        }
        self.begin(Some(first.id) == self.home).await?;
        let mut rows: Vec<(Bytes, Bytes)> = Vec::new();
        // Groups in key order; stop once the rows seen, with the buffered
        // writes over them, fill the limit.
        for g in groups {
            let (s, e) = clip(&start, end.as_ref(), &g);
            // Each buffered delete in the part may hide one row: ask for
            // that many more so `limit` rows survive.
            let deletes = self
                .writes
                .range(s.clone()..)
                .take_while(|(k, _)| e.as_ref().is_none_or(|e| *k < e))
                .filter(|(_, v)| v.is_none())
                .count();
            let server_limit = (limit + deletes).min(MAX_SCAN_ROWS);
            let got = self.scan_at_group(g.id, s, e, server_limit).await?;
            self.reads += 1 + got.len();
            rows.extend(got);
            if self.overlay(rows.clone(), &start, end.as_ref()).len() >= limit {
                break;
            }
        }
        check_operation_count(self.operations())?;
        let mut merged = self.overlay(rows, &start, end.as_ref());
        merged.truncate(limit);
        Ok(merged)
    }

    /// `rows` with the buffered writes in `[start, end)` laid over them.
    fn overlay(
        &self,
        rows: Vec<(Bytes, Bytes)>,
        start: &Bytes,
        end: Option<&Bytes>,
    ) -> Vec<(Bytes, Bytes)> {
        let mut m: BTreeMap<Bytes, Bytes> = rows.into_iter().collect();
        for (k, v) in self.writes.range(start.clone()..) {
            if !in_range(k, start, end) {
                break;
            }
            match v {
                Some(v) => m.insert(k.clone(), v.clone()),
                None => m.remove(k),
            };
        }
        m.into_iter().collect()
    }

    async fn scan_at_group(
        &mut self,
        group: GroupId,
        start: Bytes,
        end: Option<Bytes>,
        limit: usize,
    ) -> Result<Vec<(Bytes, Bytes)>, Error> {
        let txn = self.id.expect("begun before scanning");
        self.asked.insert(group);
        let (route, guest) = self.target(group);
        let mut quiet = self.quiet().await;
        let answer = self
            .client
            .inner
            .call_group(group, route, Resend::Safe, |header| pb::ScanRequest {
                header: Some(header),
                group,
                txn: Some(txn_to_pb(txn)),
                start: start.clone(),
                end: end.clone(),
                limit: limit as u64,
                guest,
            })
            .await;
        if let Some(last) = quiet.as_mut() {
            **last = Instant::now();
        }
        self.answered(group, answer.as_ref().ok().map(|(r, _)| r.term));
        let (r, _) = answer?;
        Ok(meridian_proto::convert::rows_from_pb(r.rows))
    }

    /// Begins the transaction at its home group's leader, once: with a
    /// reserved id if the client holds one for the home group and the
    /// first request (`at_home`) goes there, which begins it; else with a
    /// `Begin`, which on a first attempt also reserves ids for later
    /// transactions if the client holds none for the group.
    async fn begin(&mut self, at_home: bool) -> Result<(), Error> {
        if self.id.is_some() {
            return Ok(());
        }
        let group = self.home.expect("a key was touched before begin");
        let inner = &self.client.inner;
        if let Some(spare) = at_home.then(|| inner.take_spare(group)).flatten() {
            self.id = Some(spare.txn);
            // A retry keeps its first attempt's priority.
            self.priority.get_or_insert(spare.priority);
            self.home_node = Some(spare.node);
            self.joining_home = true;
            self.keep_alive(group, spare.node, spare.txn);
            return Ok(());
        }
        let priority = self.priority.map(Timestamp::as_nanos);
        // A retry's Begin carries an old priority, which reserved ids must
        // not inherit: only first attempts reserve.
        let reserve = if priority.is_none() {
            inner.ids_to_reserve(group)
        } else {
            0
        };
        let mode = mode_to_pb(self.mode);
        let (r, node) = inner
            .call_group(group, Route::Leader, Resend::Safe, |header| {
                pb::BeginRequest {
                    header: Some(header),
                    group,
                    priority,
                    mode,
                    reserve,
                }
            })
            .await?;
        let txn = txn_from_pb(r.txn).map_err(Error::from)?;
        let reserved = u64::from(r.reserved.min(reserve));
        inner.keep_spares(
            group,
            Spares {
                node,
                origin: txn.origin,
                next: txn.seq + 1,
                end: txn.seq + 1 + reserved,
                priority: Timestamp::from_nanos(r.priority),
                at: RawInstant::now(),
            },
        );
        self.id = Some(txn);
        self.priority = Some(Timestamp::from_nanos(r.priority));
        self.home_node = Some(node);
        self.keep_alive(group, node, txn);
        Ok(())
    }

    /// Starts the heartbeats of the begun transaction `txn`, at `node`.
    fn keep_alive(&mut self, group: GroupId, node: NodeId, txn: TxnId) {
        if let Some(every) = self.client.inner.opts.heartbeat_interval {
            let gate = Arc::new(tokio::sync::Mutex::new(Instant::now()));
            let task = tokio::spawn(keep_alive(
                self.client.inner.clone(),
                group,
                node,
                txn,
                gate.clone(),
                every,
            ));
            self.keepalive = Some(Keepalive {
                gate,
                task: task.abort_handle(),
            });
        }
    }

    /// Keeps the transaction alive at its home group while it idles
    /// (docs/design.md §5.1: the leader aborts a transaction that sends
    /// nothing for longer than its inactivity timeout). Nothing to do
    /// before the first read.
    pub async fn heartbeat(&mut self) -> Result<(), Error> {
        self.live()?;
        let (Some(txn), Some(group), Some(node)) = (self.id, self.home, self.home_node) else {
            return Ok(());
        };
        let mut quiet = self.quiet().await;
        self.client
            .inner
            .call_group(group, Route::Pinned(node), Resend::Safe, |header| {
                pb::HeartbeatRequest {
                    header: Some(header),
                    group,
                    txn: Some(txn_to_pb(txn)),
                }
            })
            .await?;
        if let Some(last) = quiet.as_mut() {
            **last = Instant::now();
        }
        Ok(())
    }

    /// Commits the transaction: its buffered writes, grouped by group, go
    /// to the home group's leader, which commits in one phase or
    /// coordinates two-phase commit over every other group the
    /// transaction read or wrote at (docs/design.md §5.1). The answer comes
    /// after commit wait.
    ///
    /// If the commit's answer is lost (a deadline or a broken connection
    /// after it was sent, or the node's `OutcomeUnknown`), the home group's
    /// leader is asked with `TxnStatus` until it knows; if it never does,
    /// [`Error::OutcomeUnknown`].
    pub async fn commit(mut self) -> Result<Committed, Error> {
        self.live()?;
        self.finished = true;
        self.stop_keepalive().await;
        check_operation_count(self.operations())?;
        let Some(home) = self.home else {
            return Ok(Committed {
                commit_ts: Timestamp::ZERO,
                txn: None,
            });
        };
        // The writes by group; every other group read or written is a
        // participant, with the term its reads there met.
        let view = self.client.inner.view();
        let mut by_group: BTreeMap<GroupId, Vec<pb::Write>> = BTreeMap::new();
        for (key, value) in std::mem::take(&mut self.writes) {
            by_group
                .entry(view.group_of(&key)?)
                .or_default()
                .push(pb::Write { key, value });
        }
        let writes = by_group.remove(&home).unwrap_or_default();
        let mut groups: BTreeSet<GroupId> = by_group.keys().copied().collect();
        groups.extend(self.terms.keys().copied());
        groups.remove(&home);
        let participants: Vec<pb::Participant> = groups
            .into_iter()
            .map(|group| pb::Participant {
                group,
                term: self.terms.get(&group).copied(),
                writes: by_group.remove(&group).unwrap_or_default(),
            })
            .collect();
        let mode = mode_to_pb(self.mode);
        let txn = self.id;
        if let Some(node) = self.home_node {
            // The first try goes to the leader that began it.
            self.client.inner.set_leader(home, Some(node));
        }
        // A commit that may have reached the leader is not sent again: a
        // one-shot commit sent twice could commit twice, and a begun
        // transaction's outcome is learned with `TxnStatus` instead.
        let resend = Resend::Unsafe;
        let answer = self
            .client
            .inner
            .call_group(home, Route::Leader, resend, |header| pb::CommitRequest {
                header: Some(header),
                group: home,
                txn: txn.map(txn_to_pb),
                writes: writes.clone(),
                participants: participants.clone(),
                mode,
            })
            .await;
        let result = match (answer, txn) {
            (Ok((r, _)), _) => Ok(Committed {
                commit_ts: Timestamp::from_nanos(r.commit_ts),
                txn: match txn {
                    Some(t) => Some(t),
                    None => Some(txn_from_pb(r.txn).map_err(Error::from)?),
                },
            }),
            // Definite refusals: nothing committed.
            (
                Err(
                    e @ (Error::Aborted { .. } | Error::Invalid(_) | Error::ClusterMismatch { .. }),
                ),
                _,
            ) => Err(e),
            // The node's own `OutcomeUnknown` names the id even for a
            // one-shot commit.
            (Err(Error::OutcomeUnknown { txn: Some(t) }), None) => self.resolve(home, t).await,
            // A one-shot commit that was never begun anywhere.
            (Err(e), None) => Err(e),
            // Anything else: a try may have reached the leader.
            (Err(e), Some(t)) => {
                tracing::debug!(txn = %t, error = %e, "commit answer lost; asking the home group");
                self.resolve(home, t).await
            }
        };
        if let (Err(e), Some(t)) = (&result, txn) {
            if e.is_definitely_not_committed() {
                self.abort_at_groups(t, false).await;
            }
        }
        result
    }

    /// Learns the outcome of a commit whose answer was lost: asks the home
    /// group's leader; a transaction it still has in progress is aborted
    /// if it can be (the commit never arrived), which settles it too.
    async fn resolve(&self, home: GroupId, txn: TxnId) -> Result<Committed, Error> {
        let inner = &self.client.inner;
        for n in 0..inner.opts.max_request_tries.max(1) {
            match self.client.txn_status_at(home, txn).await {
                Ok(TxnStatus::Committed { commit_ts }) => {
                    return Ok(Committed {
                        commit_ts,
                        txn: Some(txn),
                    });
                }
                Ok(TxnStatus::Aborted) => {
                    return Err(Error::Aborted {
                        reason: format!("transaction {txn} aborted before its commit arrived"),
                    });
                }
                Ok(TxnStatus::InProgress) => {
                    let abort = inner
                        .call_group(home, Route::Leader, Resend::Safe, |header| {
                            pb::AbortRequest {
                                header: Some(header),
                                group: home,
                                txn: Some(txn_to_pb(txn)),
                            }
                        })
                        .await;
                    match abort {
                        Ok(_) | Err(Error::Aborted { .. }) => {
                            return Err(Error::Aborted {
                                reason: format!(
                                    "transaction {txn}'s commit did not arrive; aborted instead"
                                ),
                            });
                        }
                        // Committing: its outcome is on its way.
                        Err(_) => {}
                    }
                }
                Ok(TxnStatus::Unknown) | Err(_) => {}
            }
            tokio::time::sleep(inner.backoff(n)).await;
        }
        Err(Error::OutcomeUnknown { txn: Some(txn) })
    }

    /// Aborts the transaction, best effort: at its home group and at every
    /// group it read at, so their locks are released now rather than at
    /// the inactivity timeout. Errors are ignored (an unreachable group
    /// aborts the transaction on its own).
    pub async fn abort(mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.stop_keepalive().await;
        if let Some(txn) = self.id {
            self.abort_at_groups(txn, true).await;
        }
    }

    /// Sends `Abort` for `txn` to the leader of every group it sent a read
    /// or scan to (and of its home group if `home`), best effort. After a
    /// definite refusal of the commit the home group has ended the
    /// transaction, but the groups it only read at know nothing of that:
    /// without this their read locks stay until the inactivity timeout,
    /// and the next attempt of the same transaction (at the same priority)
    /// would wait for them.
    async fn abort_at_groups(&self, txn: TxnId, home: bool) {
        self.abort_plan(txn, home).send().await;
    }

    /// Where [`Txn::abort_at_groups`] sends its aborts, owned, so that a
    /// dropped transaction can send them from a task of its own.
    fn abort_plan(&self, txn: TxnId, home: bool) -> AbortPlan {
        let inner = self.client.inner.clone();
        let view = inner.view();
        let mut targets: Vec<(GroupId, Option<NodeId>)> = Vec::new();
        if let (true, Some(g)) = (home, self.home) {
            targets.push((g, self.home_node));
        }
        // Every group read at was asked first.
        for g in self.asked.iter().filter(|g| Some(**g) != self.home) {
            targets.push((*g, view.group(*g).and_then(|g| g.leader)));
        }
        let targets = targets
            .into_iter()
            .filter_map(|(group, node)| {
                let uri = node.and_then(|n| view.nodes.get(&n))?.clone();
                Some((group, uri))
            })
            .collect();
        AbortPlan {
            inner,
            txn,
            targets,
        }
    }
}

/// The aborts of one transaction: `Abort` to each group's leader.
struct AbortPlan {
    inner: Arc<Inner>,
    txn: TxnId,
    targets: Vec<(GroupId, String)>,
}

impl AbortPlan {
    /// Sends them one after another, best effort.
    async fn send(self) {
        let txn = self.txn;
        for (group, uri) in &self.targets {
            let req = pb::AbortRequest {
                header: Some(self.inner.header()),
                group: *group,
                txn: Some(txn_to_pb(txn)),
            };
            if let Err(e) = self.inner.rpc_at(uri, req).await {
                tracing::debug!(%txn, group, error = ?e, "best-effort abort failed");
            }
        }
    }
}
