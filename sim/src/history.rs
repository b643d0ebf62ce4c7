//! Histories of client operations, and the checks run on them at the end of
//! a transaction-layer run.
//!
//! # Strict serializability, checked against timestamps
//!
//! Spanner's claim (§4.1.2, §4.2) is stronger than "some serial order
//! exists": the *commit timestamps* are a serial order that respects real
//! time. The checker verifies exactly that claim, which implies strict
//! serializability of the history:
//!
//! 1. **Ground truth** is the log: every committed transaction with its
//!    timestamp and writes, as the replicas applied it. Replaying it in
//!    timestamp order gives the committed state at any timestamp (the
//!    [`Model`]).
//! 2. **Outcomes.** Every commit a client was told of is in the log at the
//!    timestamp the client was told; no transaction a client was told
//!    aborted is in the log. Outcomes the client could not learn may go
//!    either way.
//! 3. **Reads.** Every locking read (of any transaction, committed or
//!    not) returned a version at least as new as every commit to its key
//!    acknowledged before the read was sent: the leader that serves it has
//!    applied everything acknowledged (this is what a read without a lease
//!    breaks). A committed read-write transaction with writes read, for
//!    each key, the model's value just below its commit timestamp (its
//!    reads and writes happen at one point of the serial order); one
//!    without writes read the model at its timestamp. A lock-free read at
//!    `t` saw exactly the model at `t`, for every key and every scanned
//!    range — never a newer value, never an older one.
//! 4. **Real time.** If operation A completed before operation B was
//!    invoked (true time), B must come after A in timestamp order: a
//!    commit B has `ts(B) > ts(A)`; a read B has `ts(B) ≥ ts(A)`, or else
//!    no commit in the log lies in `(ts(B), ts(A)]` (then B reads exactly
//!    the state at `ts(A)`, and can be placed there). This covers
//!    acknowledged commits and strong reads (snapshot reads at a chosen
//!    timestamp are not ordered by real time).
//! 5. **Bank.** Every read that covered all accounts sums to the bank's
//!    total (an invariant every transfer keeps).
//!
//! If 1–4 hold, listing the committed transactions and strong reads by
//! timestamp (reads after writes at equal timestamps) is a serial order
//! that every read agrees with and that respects real time: the history is
//! strictly serializable. The check is sound but not complete — a history
//! strictly serializable in some other order would still fail — which is
//! the point: in Meridian the timestamp order must be the witness.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use bytes::Bytes;
use meridian_participant::{TxnId, Write};
use meridian_paxos::NodeId;
use meridian_truetime::Timestamp;

use crate::check::{Violation, rules};

/// What a client learned about a transaction attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Told it committed at this timestamp.
    Committed(Timestamp),
    /// Told it aborted.
    Aborted,
    /// Never learned (commit sent, answer lost).
    Unknown,
}

/// One read-write transaction attempt.
#[derive(Clone, Debug)]
pub struct TxnRecord {
    /// The client that ran it.
    pub client: usize,
    /// Its id, once `Begin` answered.
    pub txn: Option<TxnId>,
    /// True time the attempt started.
    pub invoked: Timestamp,
    /// True time the client learned the outcome, if it did.
    pub completed: Option<Timestamp>,
    /// The outcome.
    pub outcome: Outcome,
    /// Keys read and the values seen.
    pub reads: Vec<(Bytes, Option<Bytes>)>,
    /// True time the reads were sent.
    pub reads_invoked: Timestamp,
    /// Scans made inside the transaction (merged over the groups), with
    /// the rows returned.
    pub scans: Vec<ScanRecord>,
    /// Writes the commit carried.
    pub writes: Vec<Write>,
    /// Whether it was optimistic: its reads took no locks, so only a
    /// committed one must have read fresh values (validation aborts the
    /// rest).
    pub optimistic: bool,
    /// The final answer a `TxnStatus` query gave after the commit's
    /// outcome was unknown: `Committed(ts)` or `Aborted` (docs/design.md
    /// §5.5). Checked against the log like an outcome.
    pub status: Option<Outcome>,
}

/// A scan a lock-free read or a read-write transaction made, with the rows
/// it returned.
#[derive(Clone, Debug)]
pub struct ScanRecord {
    /// First key.
    pub start: Bytes,
    /// Bound after the last key.
    pub end: Option<Bytes>,
    /// Row limit.
    pub limit: usize,
    /// Rows returned.
    pub rows: Vec<(Bytes, Bytes)>,
}

/// One answered lock-free read.
#[derive(Clone, Debug)]
pub struct ReadRecord {
    /// The client.
    pub client: usize,
    /// The replica that answered.
    pub node: NodeId,
    /// A strong read (ordered by real time), not a snapshot read.
    pub strong: bool,
    /// True time the read was first sent.
    pub invoked: Timestamp,
    /// True time the answer arrived.
    pub completed: Timestamp,
    /// The timestamp it read at.
    pub read_ts: Timestamp,
    /// Keys read and the values seen.
    pub gets: Vec<(Bytes, Option<Bytes>)>,
    /// Scans made.
    pub scans: Vec<ScanRecord>,
}

/// Everything the clients saw.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// Read-write transaction attempts.
    pub txns: Vec<TxnRecord>,
    /// Answered lock-free reads.
    pub reads: Vec<ReadRecord>,
}

/// The bank every transfer keeps balanced: accounts whose balances sum to
/// `accounts × initial` (an absent account holds `initial`).
#[derive(Clone, Debug)]
pub struct Bank {
    /// Account keys, sorted.
    pub accounts: Vec<Bytes>,
    /// Each account's starting balance.
    pub initial: i64,
}

impl Bank {
    /// A bank of `n` accounts `acct/00`, `acct/01`, ...
    pub fn new(n: usize, initial: i64) -> Bank {
        Bank {
            accounts: (0..n)
                .map(|i| Bytes::from(format!("acct/{i:02}")))
                .collect(),
            initial,
        }
    }

    /// The prefix every account key starts with.
    pub const PREFIX: &'static [u8] = b"acct/";

    /// The balance a stored value encodes (absent: the initial balance).
    pub fn balance(&self, value: Option<&Bytes>) -> i64 {
        match value {
            None => self.initial,
            Some(v) if v.len() == 8 => {
                let mut a = [0u8; 8];
                a.copy_from_slice(v);
                i64::from_le_bytes(a)
            }
            Some(v) => panic!("account value of {} bytes", v.len()),
        }
    }

    /// The stored encoding of a balance.
    pub fn encode(balance: i64) -> Bytes {
        Bytes::copy_from_slice(&balance.to_le_bytes())
    }

    /// The total every consistent snapshot holds.
    pub fn total(&self) -> i64 {
        self.initial * self.accounts.len() as i64
    }
}

/// A duty roster: whoever has no `off` entry is on duty, and someone must
/// always be. Transactions that take someone off read the whole roster
/// and write one key, so two of them that each see two on duty and each
/// take a different one off — write skew — break the rule; serializable
/// histories never do. Going on duty deletes the `off` entry, so the
/// roster's keys are deleted and re-inserted over a run.
#[derive(Clone, Debug)]
pub struct Roster {
    /// Roster keys, sorted.
    pub keys: Vec<Bytes>,
}

impl Roster {
    /// The prefix every roster key starts with.
    pub const PREFIX: &'static [u8] = b"duty/";
    /// The value of an entry that is off duty.
    pub const OFF: &'static [u8] = b"off";

    /// A roster of `n` people `duty/0`, `duty/1`, ..., all on duty.
    pub fn new(n: usize) -> Roster {
        Roster {
            keys: (0..n).map(|i| Bytes::from(format!("duty/{i}"))).collect(),
        }
    }

    /// Whether an entry's stored value means on duty (absent: on).
    pub fn on_duty(value: Option<&Bytes>) -> bool {
        value.is_none_or(|v| v.as_ref() != Roster::OFF)
    }

    /// Checks that someone is on duty in every committed state (after each
    /// commit, in timestamp order) and in every lock-free read that saw
    /// the whole roster.
    pub fn check(&self, history: &History, log: &CommitLog) -> Result<(), Violation> {
        if self.keys.is_empty() {
            return Ok(());
        }
        let mut commits: Vec<&(Timestamp, Vec<Write>)> = log.commits.values().collect();
        commits.sort_unstable_by_key(|(ts, _)| *ts);
        let mut state: HashMap<&Bytes, Option<&Bytes>> = HashMap::new();
        for (ts, writes) in commits {
            for w in writes.iter().filter(|w| w.key.starts_with(Roster::PREFIX)) {
                state.insert(&w.key, w.value.as_ref());
            }
            if !self
                .keys
                .iter()
                .any(|k| Roster::on_duty(state.get(k).copied().flatten()))
            {
                return Err(violation(
                    rules::ROSTER,
                    format!("after the commit at {} nobody is on duty", ts.0),
                ));
            }
        }
        for r in &history.reads {
            let Some(seen) = saw_all(r, Roster::PREFIX, &self.keys) else {
                continue;
            };
            if !seen.iter().any(|v| Roster::on_duty(*v)) {
                return Err(violation(
                    rules::ROSTER,
                    format!(
                        "a read at {} by node {} saw nobody on duty",
                        r.read_ts.0, r.node
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// The committed transactions, as the logs applied them.
#[derive(Clone, Debug, Default)]
pub struct CommitLog {
    /// Transaction → (commit timestamp, writes in every group).
    pub commits: HashMap<TxnId, (Timestamp, Vec<Write>)>,
    /// Transaction and group → the writes that group applied, for
    /// checking later sightings.
    parts: HashMap<(TxnId, u64), Vec<Write>>,
}

impl CommitLog {
    /// Records that `group` applied `txn`'s writes there at `ts`. Replicas
    /// of a group apply the same log, so a second sighting must agree; the
    /// groups of one transaction must agree on its timestamp.
    pub fn record(
        &mut self,
        txn: TxnId,
        group: u64,
        ts: Timestamp,
        writes: Vec<Write>,
        at: u64,
    ) -> Result<(), Violation> {
        if let Some((t, _)) = self.commits.get(&txn) {
            if *t != ts {
                return Err(Violation {
                    rule: if self.parts.contains_key(&(txn, group)) {
                        rules::ONE_VALUE_PER_SLOT
                    } else {
                        rules::ATOMIC_COMMIT
                    },
                    at_nanos: at,
                    detail: format!("txn {txn} applied at {} and at {}", t.0, ts.0),
                });
            }
        }
        match self.parts.get(&(txn, group)) {
            Some(w) if *w != writes => Err(Violation {
                rule: rules::ONE_VALUE_PER_SLOT,
                at_nanos: at,
                detail: format!("txn {txn} applied other writes in group {group}"),
            }),
            Some(_) => Ok(()),
            None => {
                self.parts.insert((txn, group), writes.clone());
                self.commits
                    .entry(txn)
                    .or_insert((ts, Vec::new()))
                    .1
                    .extend(writes);
                Ok(())
            }
        }
    }

    /// Whether `group` applied `txn`.
    pub fn has(&self, txn: TxnId, group: u64) -> bool {
        self.parts.contains_key(&(txn, group))
    }
}

/// The committed state at every timestamp: each key's versions.
#[derive(Clone, Debug, Default)]
pub struct Model {
    versions: BTreeMap<Bytes, Vec<(Timestamp, Option<Bytes>)>>,
}

impl Model {
    /// The model of `log`.
    pub fn new(log: &CommitLog) -> Model {
        let mut m = Model::default();
        for (ts, writes) in log.commits.values() {
            for w in writes {
                m.versions
                    .entry(w.key.clone())
                    .or_default()
                    .push((*ts, w.value.clone()));
            }
        }
        for v in m.versions.values_mut() {
            v.sort_by_key(|(t, _)| *t);
        }
        m
    }

    /// The value of `key` at `at`.
    pub fn get(&self, key: &[u8], at: Timestamp) -> Option<Bytes> {
        let vs = self.versions.get(key)?;
        let i = vs.partition_point(|(t, _)| *t <= at);
        i.checked_sub(1).and_then(|i| vs[i].1.clone())
    }

    /// The rows of `[start, end)` at `at`, at most `limit`.
    pub fn scan(
        &self,
        start: &Bytes,
        end: Option<&Bytes>,
        at: Timestamp,
        limit: usize,
    ) -> Vec<(Bytes, Bytes)> {
        let hi = end.map_or(Bound::Unbounded, Bound::Excluded);
        self.versions
            .range::<Bytes, _>((Bound::Included(start), hi))
            .filter_map(|(k, _)| self.get(k, at).map(|v| (k.clone(), v)))
            .take(limit)
            .collect()
    }

    /// Every key ever written.
    pub fn keys(&self) -> impl Iterator<Item = &Bytes> {
        self.versions.keys()
    }
}

fn violation(rule: &'static str, detail: String) -> Violation {
    Violation {
        rule,
        at_nanos: 0,
        detail,
    }
}

fn show(v: &Option<Bytes>) -> String {
    match v {
        None => "none".into(),
        Some(b) if b.len() == 8 => {
            format!("{}", i64::from_le_bytes(b[..].try_into().expect("8 bytes")))
        }
        Some(b) => String::from_utf8_lossy(b).into_owned(),
    }
}

/// Runs checks 2–5 of the [module documentation](self) on `history`
/// against `log`.
pub fn check(history: &History, log: &CommitLog, bank: &Bank) -> Result<(), Violation> {
    check_with_pending(history, log, bank, &std::collections::HashSet::new())
}

/// [`check`], where the transactions in `pending` were acknowledged so
/// shortly before the end that some of their groups had not yet applied
/// the decision: what the log has of them must be part of what they sent.
pub fn check_with_pending(
    history: &History,
    log: &CommitLog,
    bank: &Bank,
    pending: &std::collections::HashSet<TxnId>,
) -> Result<(), Violation> {
    let model = Model::new(log);
    check_outcomes(history, log, pending)?;
    check_locking_reads_are_fresh(history, log)?;
    check_txn_reads(history, log, &model)?;
    check_lock_free_reads(history, &model, bank)?;
    check_real_time(history, log)
}

/// Writes as the log keeps them: the last write to a key wins.
fn effective(writes: &[Write]) -> BTreeMap<&Bytes, &Option<Bytes>> {
    writes.iter().map(|w| (&w.key, &w.value)).collect()
}

fn check_outcomes(
    history: &History,
    log: &CommitLog,
    pending: &std::collections::HashSet<TxnId>,
) -> Result<(), Violation> {
    for t in &history.txns {
        let Some(txn) = t.txn else { continue };
        if let Some((_, logged)) = log.commits.get(&txn) {
            let (logged, sent) = (effective(logged), effective(&t.writes));
            let consistent = if pending.contains(&txn) {
                logged.iter().all(|(k, v)| sent.get(k) == Some(v))
            } else {
                logged == sent
            };
            if !consistent {
                return Err(violation(
                    rules::ACKED_IN_LOG,
                    format!(
                        "txn {txn} (client {}) committed other writes than it sent",
                        t.client
                    ),
                ));
            }
        }
        // docs/design.md §5.5: a status answer is final. `Committed(ts)`
        // names the logged commit timestamp; `Aborted` is never followed by
        // the transaction committing.
        match (t.status, log.commits.get(&txn)) {
            (Some(Outcome::Committed(ts)), Some((logged, _))) if ts == *logged => {}
            (Some(Outcome::Committed(_)), None) if t.writes.is_empty() => {}
            (Some(Outcome::Committed(ts)), got) => {
                return Err(violation(
                    rules::TXN_STATUS,
                    format!(
                        "client {} was told by a status query that txn {txn} committed at {}, \
                         the log has {:?}",
                        t.client,
                        ts.0,
                        got.map(|(t, _)| t.0)
                    ),
                ));
            }
            (Some(Outcome::Aborted), Some((ts, _))) => {
                return Err(violation(
                    rules::TXN_STATUS,
                    format!(
                        "client {} was told by a status query that txn {txn} aborted, \
                         but it committed at {}",
                        t.client, ts.0
                    ),
                ));
            }
            _ => {}
        }
        match (t.outcome, log.commits.get(&txn)) {
            (Outcome::Committed(ts), Some((logged, _))) if ts == *logged => {}
            // A transaction without writes commits without a log record.
            (Outcome::Committed(_), None) if t.writes.is_empty() => {}
            (Outcome::Committed(ts), got) => {
                return Err(violation(
                    rules::ACKED_IN_LOG,
                    format!(
                        "client {} was told txn {txn} committed at {}, the log has {:?}",
                        t.client,
                        ts.0,
                        got.map(|(t, _)| t.0)
                    ),
                ));
            }
            (Outcome::Aborted, Some((ts, _))) => {
                return Err(violation(
                    rules::ABORTED_NO_EFFECT,
                    format!(
                        "client {} was told txn {txn} aborted, but it committed at {}",
                        t.client, ts.0
                    ),
                ));
            }
            (Outcome::Aborted | Outcome::Unknown, _) => {}
        }
    }
    Ok(())
}

fn check_locking_reads_are_fresh(history: &History, log: &CommitLog) -> Result<(), Violation> {
    // Acknowledged commits per key: (ack time, ts), sorted by ack time,
    // with the running maximum of ts.
    let mut acked: HashMap<&Bytes, Vec<(Timestamp, Timestamp)>> = HashMap::new();
    for t in &history.txns {
        if let (Outcome::Committed(ts), Some(done)) = (t.outcome, t.completed) {
            for w in &t.writes {
                acked.entry(&w.key).or_default().push((done, ts));
            }
        }
    }
    for v in acked.values_mut() {
        v.sort_unstable();
        let mut max = Timestamp::ZERO;
        for e in v.iter_mut() {
            max = max.max(e.1);
            e.1 = max;
        }
    }
    // Every version of every key, sorted by ts.
    let mut versions: HashMap<&Bytes, Vec<(Timestamp, Option<&Bytes>)>> = HashMap::new();
    for (ts, writes) in log.commits.values() {
        for w in writes {
            versions
                .entry(&w.key)
                .or_default()
                .push((*ts, w.value.as_ref()));
        }
    }
    for v in versions.values_mut() {
        v.sort_unstable_by_key(|(t, _)| *t);
    }
    for t in history.txns.iter().filter(|t| !t.optimistic) {
        for (key, seen) in &t.reads {
            let Some(acks) = acked.get(key) else { continue };
            let n = acks.partition_point(|(done, _)| *done < t.reads_invoked);
            if n == 0 {
                continue;
            }
            let floor = acks[n - 1].1;
            let vs = versions.get(key).map_or(&[][..], Vec::as_slice);
            // The version in force at `floor`, and every later one.
            let from = vs.partition_point(|(ts, _)| *ts <= floor).saturating_sub(1);
            let fresh = vs[from..].iter().any(|(_, v)| v.cloned() == *seen);
            if !fresh {
                return Err(violation(
                    rules::FRESH_LOCKING_READ,
                    format!(
                        "client {} read {}={} (txn {:?}) after a commit at {} to it was acknowledged",
                        t.client,
                        String::from_utf8_lossy(key),
                        show(seen),
                        t.txn.map(|x| x.to_string()),
                        floor.0
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn check_txn_reads(history: &History, log: &CommitLog, model: &Model) -> Result<(), Violation> {
    for t in &history.txns {
        let Some(txn) = t.txn else { continue };
        let at = match (log.commits.get(&txn), t.outcome) {
            // Reads and writes at one point: the state just below its own
            // writes.
            (Some((ts, _)), _) => ts.prev(),
            (None, Outcome::Committed(ts)) => ts,
            (None, _) => continue,
        };
        for (key, seen) in &t.reads {
            let want = model.get(key, at);
            if *seen != want {
                return Err(violation(
                    rules::SERIALIZABLE,
                    format!(
                        "txn {txn} (client {}) read {}={} but the state at {} holds {}",
                        t.client,
                        String::from_utf8_lossy(key),
                        show(seen),
                        at.0,
                        show(&want)
                    ),
                ));
            }
        }
        for s in &t.scans {
            // The rows of the range at the same point: a row inserted,
            // changed or deleted between the scan and the commit (a
            // phantom) shows here.
            let want = model.scan(&s.start, s.end.as_ref(), at, s.limit);
            if s.rows != want {
                return Err(violation(
                    rules::SERIALIZABLE,
                    format!(
                        "txn {txn} (client {}) scanned [{}, {}) and got {} but the state at {} \
                         holds {}",
                        t.client,
                        String::from_utf8_lossy(&s.start),
                        s.end
                            .as_ref()
                            .map_or("∞".into(), |e| String::from_utf8_lossy(e).into_owned()),
                        show_rows(&s.rows),
                        at.0,
                        show_rows(&want)
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Rows as `key=value` pairs.
fn show_rows(rows: &[(Bytes, Bytes)]) -> String {
    let shown: Vec<String> = rows
        .iter()
        .map(|(k, v)| format!("{}={}", String::from_utf8_lossy(k), show(&Some(v.clone()))))
        .collect();
    format!("[{}]", shown.join(" "))
}

fn check_lock_free_reads(history: &History, model: &Model, bank: &Bank) -> Result<(), Violation> {
    for r in &history.reads {
        for (key, seen) in &r.gets {
            let want = model.get(key, r.read_ts);
            if *seen != want {
                return Err(violation(
                    rules::SNAPSHOT_READ,
                    format!(
                        "{} read at {} by node {} saw {}={} but the state there holds {}",
                        if r.strong { "strong" } else { "snapshot" },
                        r.read_ts.0,
                        r.node,
                        String::from_utf8_lossy(key),
                        show(seen),
                        show(&want)
                    ),
                ));
            }
        }
        for s in &r.scans {
            let want = model.scan(&s.start, s.end.as_ref(), r.read_ts, s.limit);
            if s.rows != want {
                return Err(violation(
                    rules::SNAPSHOT_READ,
                    format!(
                        "scan at {} by node {} returned {} rows, the state there has {} ({:?} vs {:?})",
                        r.read_ts.0,
                        r.node,
                        s.rows.len(),
                        want.len(),
                        s.rows
                            .iter()
                            .map(|(k, v)| (
                                String::from_utf8_lossy(k).into_owned(),
                                show(&Some(v.clone()))
                            ))
                            .collect::<Vec<_>>(),
                        want.iter()
                            .map(|(k, v)| (
                                String::from_utf8_lossy(k).into_owned(),
                                show(&Some(v.clone()))
                            ))
                            .collect::<Vec<_>>()
                    ),
                ));
            }
        }
        if let Some(total) = bank_total(r, bank) {
            if total != bank.total() {
                return Err(violation(
                    rules::BANK_TOTAL,
                    format!(
                        "read at {} by node {} sums the accounts to {total}, not {}",
                        r.read_ts.0,
                        r.node,
                        bank.total()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The sum of the balances `r` saw, if it saw every account.
fn bank_total(r: &ReadRecord, bank: &Bank) -> Option<i64> {
    let seen = saw_all(r, Bank::PREFIX, &bank.accounts)?;
    Some(seen.into_iter().map(|v| bank.balance(v)).sum())
}

/// What `r` saw of each of `keys` (sorted, all starting with `prefix`),
/// in order, if it saw every one: by a point read, or by a scan that
/// covered them all (a scan that hit its row limit covers nothing for
/// sure).
fn saw_all<'a>(
    r: &'a ReadRecord,
    prefix: &[u8],
    keys: &'a [Bytes],
) -> Option<Vec<Option<&'a Bytes>>> {
    let mut seen: BTreeMap<&Bytes, Option<&Bytes>> = BTreeMap::new();
    for (k, v) in &r.gets {
        seen.insert(k, v.as_ref());
    }
    for s in &r.scans {
        let covers_all = s.start.as_ref() <= prefix
            && s.end
                .as_ref()
                .is_none_or(|e| keys.last().is_some_and(|last| e > last))
            && s.rows.len() < s.limit;
        if covers_all {
            for k in keys {
                seen.insert(k, s.rows.iter().find(|(rk, _)| rk == k).map(|(_, v)| v));
            }
        }
    }
    keys.iter().map(|k| seen.get(k).copied()).collect()
}

fn check_real_time(history: &History, log: &CommitLog) -> Result<(), Violation> {
    // (completed, invoked, ts, writes, what)
    let mut ops: Vec<(Timestamp, Timestamp, Timestamp, bool, String)> = Vec::new();
    for t in &history.txns {
        let name = t.txn.map_or_else(|| "?".into(), |id| id.to_string());
        let what = format!("commit of txn {name} (client {})", t.client);
        match (
            t.outcome,
            t.completed,
            t.txn.and_then(|id| log.commits.get(&id)),
        ) {
            (Outcome::Committed(ts), Some(done), _) => {
                ops.push((done, t.invoked, ts, !t.writes.is_empty(), what));
            }
            // Committed, but the client never learned it: it follows what
            // completed before it started; nothing follows it (it never
            // completed).
            (Outcome::Unknown, _, Some((ts, _))) => {
                ops.push((Timestamp::MAX, t.invoked, *ts, true, what));
            }
            _ => {}
        }
    }
    for r in history.reads.iter().filter(|r| r.strong) {
        ops.push((
            r.completed,
            r.invoked,
            r.read_ts,
            false,
            format!("strong read by client {} at node {}", r.client, r.node),
        ));
    }
    let mut commit_ts: Vec<Timestamp> = log.commits.values().map(|(ts, _)| *ts).collect();
    commit_ts.sort_unstable();
    let mut by_completion: Vec<usize> = (0..ops.len()).collect();
    by_completion.sort_by_key(|&i| ops[i].0);
    // Prefix maximum of timestamps in completion order.
    let mut prefix: Vec<(Timestamp, usize)> = Vec::with_capacity(ops.len());
    for &i in &by_completion {
        let best = match prefix.last() {
            Some(&(t, j)) if t >= ops[i].2 => (t, j),
            _ => (ops[i].2, i),
        };
        prefix.push(best);
    }
    for (k, (_, invoked, ts, writes, what)) in ops.iter().enumerate() {
        // Operations completed strictly before this one was invoked.
        let n = by_completion.partition_point(|&i| ops[i].0 < *invoked);
        if n == 0 {
            continue;
        }
        let (max_ts, j) = prefix[n - 1];
        let broken = if *writes {
            max_ts >= *ts && j != k
        } else {
            // A commit in (ts, max_ts] that this read cannot see.
            max_ts > *ts
                && commit_ts[commit_ts.partition_point(|c| c <= ts)..]
                    .first()
                    .is_some_and(|c| *c <= max_ts)
        };
        if broken {
            return Err(violation(
                rules::REAL_TIME,
                format!(
                    "{what} invoked at {} has timestamp {}, but {} completed at {} with timestamp {}",
                    invoked.0, ts.0, ops[j].4, ops[j].0.0, max_ts.0
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(n: u64) -> Timestamp {
        Timestamp(n)
    }

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    /// `(txn, ts, writes)` of each commit.
    type Commits<'a> = [(u64, u64, &'a [(&'a str, &'a str)])];

    fn log_of(commits: &Commits<'_>) -> CommitLog {
        let mut log = CommitLog::default();
        for (id, at, writes) in commits {
            let w = writes.iter().map(|(k, v)| Write::put(b(k), b(v))).collect();
            log.record(TxnId::local(*id), 1, ts(*at), w, 0).unwrap();
        }
        log
    }

    fn txn(
        id: u64,
        invoked: u64,
        done: Option<u64>,
        outcome: Outcome,
        reads: &[(&str, Option<&str>)],
        writes: &[(&str, &str)],
    ) -> TxnRecord {
        TxnRecord {
            client: 0,
            txn: Some(TxnId::local(id)),
            invoked: ts(invoked),
            completed: done.map(ts),
            outcome,
            reads: reads.iter().map(|(k, v)| (b(k), v.map(b))).collect(),
            reads_invoked: ts(invoked),
            scans: Vec::new(),
            writes: writes.iter().map(|(k, v)| Write::put(b(k), b(v))).collect(),
            optimistic: false,
            status: None,
        }
    }

    /// A transaction committed at `at` whose client learned it just after.
    fn acked(
        id: u64,
        invoked: u64,
        at: u64,
        reads: &[(&str, Option<&str>)],
        writes: &[(&str, &str)],
    ) -> TxnRecord {
        txn(
            id,
            invoked,
            Some(at + 1),
            Outcome::Committed(ts(at)),
            reads,
            writes,
        )
    }

    fn strong_read(invoked: u64, done: u64, at: u64, gets: &[(&str, Option<&str>)]) -> ReadRecord {
        ReadRecord {
            client: 1,
            node: 1,
            strong: true,
            invoked: ts(invoked),
            completed: ts(done),
            read_ts: ts(at),
            gets: gets.iter().map(|(k, v)| (b(k), v.map(b))).collect(),
            scans: vec![],
        }
    }

    fn bank() -> Bank {
        Bank::new(2, 100)
    }

    #[test]
    fn a_correct_history_passes() {
        let log = log_of(&[(1, 10, &[("x", "1")]), (2, 20, &[("x", "2")])]);
        let h = History {
            txns: vec![
                txn(
                    1,
                    5,
                    Some(12),
                    Outcome::Committed(ts(10)),
                    &[("x", None)],
                    &[("x", "1")],
                ),
                txn(
                    2,
                    13,
                    Some(25),
                    Outcome::Committed(ts(20)),
                    &[("x", Some("1"))],
                    &[("x", "2")],
                ),
            ],
            reads: vec![strong_read(26, 27, 21, &[("x", Some("2"))])],
        };
        check(&h, &log, &bank()).unwrap();
    }

    #[test]
    fn a_stale_read_is_caught() {
        let log = log_of(&[(1, 10, &[("x", "1")])]);
        let h = History {
            txns: vec![],
            reads: vec![strong_read(5, 30, 15, &[("x", None)])],
        };
        assert_eq!(
            check(&h, &log, &bank()).unwrap_err().rule,
            rules::SNAPSHOT_READ
        );
    }

    #[test]
    fn a_read_that_misses_an_earlier_acknowledged_commit_is_caught_by_real_time() {
        let log = log_of(&[(1, 10, &[("x", "1")])]);
        let h = History {
            txns: vec![acked(1, 1, 10, &[], &[("x", "1")])],
            // Invoked after the ack but reading below the commit: its value
            // is right for its timestamp, the timestamp is wrong.
            reads: vec![strong_read(12, 13, 9, &[("x", None)])],
        };
        assert_eq!(check(&h, &log, &bank()).unwrap_err().rule, rules::REAL_TIME);
    }

    #[test]
    fn a_stale_locking_read_is_caught_even_in_an_aborted_transaction() {
        let log = log_of(&[(1, 10, &[("x", "1")])]);
        let h = History {
            txns: vec![
                acked(1, 1, 10, &[], &[("x", "1")]),
                txn(2, 12, Some(13), Outcome::Aborted, &[("x", None)], &[]),
            ],
            reads: vec![],
        };
        assert_eq!(
            check(&h, &log, &bank()).unwrap_err().rule,
            rules::FRESH_LOCKING_READ
        );
    }

    #[test]
    fn a_commit_whose_answer_was_lost_still_follows_what_completed_before_it() {
        // Txn 2 started after txn 1's commit was acknowledged, but got a
        // lower timestamp; its client never learned the outcome.
        let log = log_of(&[(1, 20, &[("x", "1")]), (2, 10, &[("y", "2")])]);
        let h = History {
            txns: vec![
                acked(1, 1, 20, &[], &[("x", "1")]),
                txn(2, 22, None, Outcome::Unknown, &[], &[("y", "2")]),
            ],
            reads: vec![],
        };
        assert_eq!(check(&h, &log, &bank()).unwrap_err().rule, rules::REAL_TIME);
    }

    #[test]
    fn a_commit_of_other_writes_than_sent_is_caught() {
        let log = log_of(&[(1, 10, &[("x", "other")])]);
        let h = History {
            txns: vec![acked(1, 1, 10, &[], &[("x", "1")])],
            reads: vec![],
        };
        assert_eq!(
            check(&h, &log, &bank()).unwrap_err().rule,
            rules::ACKED_IN_LOG
        );
    }

    #[test]
    fn a_lost_update_is_caught() {
        // Both read x=none and wrote: the second read a stale value.
        let log = log_of(&[(1, 10, &[("x", "1")]), (2, 20, &[("x", "2")])]);
        let h = History {
            txns: vec![
                acked(1, 1, 10, &[("x", None)], &[("x", "1")]),
                acked(2, 1, 20, &[("x", None)], &[("x", "2")]),
            ],
            reads: vec![],
        };
        assert_eq!(
            check(&h, &log, &bank()).unwrap_err().rule,
            rules::SERIALIZABLE
        );
    }

    #[test]
    fn a_later_read_at_a_lower_timestamp_passes_only_if_no_commit_lies_between() {
        let log = log_of(&[(1, 10, &[("x", "1")]), (2, 30, &[("x", "3")])]);
        let quiet = History {
            txns: vec![],
            // The second read is invoked after the first completed, at a
            // lower timestamp, but nothing committed in (15, 20].
            reads: vec![
                strong_read(1, 2, 20, &[("x", Some("1"))]),
                strong_read(3, 4, 15, &[("x", Some("1"))]),
            ],
        };
        check(&quiet, &log, &bank()).unwrap();
        let missed = History {
            txns: vec![],
            reads: vec![
                strong_read(1, 2, 35, &[("x", Some("3"))]),
                strong_read(3, 4, 15, &[("x", Some("1"))]),
            ],
        };
        assert_eq!(
            check(&missed, &log, &bank()).unwrap_err().rule,
            rules::REAL_TIME
        );
    }

    #[test]
    fn acknowledged_commit_missing_from_the_log_and_aborted_commit_in_it_are_caught() {
        let log = log_of(&[(2, 20, &[("x", "2")])]);
        let lost = History {
            txns: vec![acked(1, 1, 10, &[], &[("x", "1")])],
            reads: vec![],
        };
        assert_eq!(
            check(&lost, &log, &bank()).unwrap_err().rule,
            rules::ACKED_IN_LOG
        );
        let ghost = History {
            txns: vec![txn(2, 1, Some(11), Outcome::Aborted, &[], &[("x", "2")])],
            reads: vec![],
        };
        assert_eq!(
            check(&ghost, &log, &bank()).unwrap_err().rule,
            rules::ABORTED_NO_EFFECT
        );
    }

    #[test]
    fn an_unbalanced_snapshot_is_caught() {
        let mut log = CommitLog::default();
        // A "transfer" that only debits.
        log.record(
            TxnId::local(1),
            1,
            ts(10),
            vec![Write::put(b("acct/00"), Bank::encode(90))],
            0,
        )
        .unwrap();
        let h = History {
            txns: vec![],
            reads: vec![ReadRecord {
                client: 0,
                node: 1,
                strong: false,
                invoked: ts(1),
                completed: ts(2),
                read_ts: ts(10),
                gets: vec![(b("acct/00"), Some(Bank::encode(90))), (b("acct/01"), None)],
                scans: vec![],
            }],
        };
        assert_eq!(
            check(&h, &log, &bank()).unwrap_err().rule,
            rules::BANK_TOTAL
        );
    }

    #[test]
    fn scans_are_checked_row_by_row() {
        let log = log_of(&[(1, 10, &[("a", "1"), ("b", "1")])]);
        let mut r = strong_read(1, 2, 10, &[]);
        r.scans.push(ScanRecord {
            start: b("a"),
            end: None,
            limit: 10,
            rows: vec![(b("a"), b("1"))],
        });
        let h = History {
            txns: vec![],
            reads: vec![r],
        };
        assert_eq!(
            check(&h, &log, &bank()).unwrap_err().rule,
            rules::SNAPSHOT_READ
        );
    }

    #[test]
    fn a_phantom_in_a_read_write_scan_is_caught() {
        // Txn 2 scanned [a, c) and saw only a; txn 1 inserted b at 15,
        // below txn 2's commit at 20: b was a phantom to it.
        let log = log_of(&[(3, 5, &[("a", "1")]), (1, 15, &[("b", "2")])]);
        let mut t = acked(2, 1, 20, &[], &[]);
        t.scans.push(ScanRecord {
            start: b("a"),
            end: Some(b("c")),
            limit: 10,
            rows: vec![(b("a"), b("1"))],
        });
        let h = History {
            txns: vec![t.clone()],
            reads: vec![],
        };
        assert_eq!(
            check(&h, &log, &bank()).unwrap_err().rule,
            rules::SERIALIZABLE
        );
        // Committed below the insert, the same scan is right.
        t.outcome = Outcome::Committed(ts(10));
        let h = History {
            txns: vec![t],
            reads: vec![],
        };
        assert!(check(&h, &log, &bank()).is_ok());
    }

    #[test]
    fn write_skew_on_the_roster_is_caught_in_the_log_and_in_snapshots() {
        let roster = Roster::new(2);
        // Each took one person off after reading both on duty: serially
        // the second would have seen one left and written nothing.
        let skewed = log_of(&[(1, 10, &[("duty/0", "off")]), (2, 11, &[("duty/1", "off")])]);
        assert_eq!(
            roster.check(&History::default(), &skewed).unwrap_err().rule,
            rules::ROSTER
        );
        let fine = log_of(&[(1, 10, &[("duty/0", "off")])]);
        roster.check(&History::default(), &fine).unwrap();
        // A snapshot that saw nobody on duty, by point reads or by a scan.
        let mut h = History::default();
        h.reads.push(strong_read(
            1,
            2,
            12,
            &[("duty/0", Some("off")), ("duty/1", Some("off"))],
        ));
        assert_eq!(roster.check(&h, &fine).unwrap_err().rule, rules::ROSTER);
        let mut scan = strong_read(1, 2, 12, &[]);
        scan.scans.push(ScanRecord {
            start: b("duty/"),
            end: Some(b("duty0")),
            limit: 10,
            rows: vec![(b("duty/0"), b("off")), (b("duty/1"), b("off"))],
        });
        let h = History {
            txns: vec![],
            reads: vec![scan],
        };
        assert_eq!(roster.check(&h, &fine).unwrap_err().rule, rules::ROSTER);
        // A partial view proves nothing.
        let mut h = History::default();
        h.reads
            .push(strong_read(1, 2, 12, &[("duty/0", Some("off"))]));
        roster.check(&h, &fine).unwrap();
    }
}
