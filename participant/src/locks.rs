//! The lock table of a participant group's leader (docs/design.md §4; Spanner
//! §2.1, §4.1.2 and §4.2.1).
//!
//! Spanner's read-write transactions use two-phase locking (§4.1.2). "At
//! every replica that is a leader, each spanserver also implements a lock
//! table to implement concurrency control. The lock table contains the state
//! for two-phase locking: it maps ranges of keys to lock states" (§2.1).
//! Reads in read-write transactions take shared locks at the leader
//! (§4.2.1), prepare takes exclusive locks on the writes, and every lock is
//! held until the transaction commits or aborts. The table is leader-only
//! state, not replicated until prepare (prepared transactions' locks are
//! rebuilt from the Paxos log after a failover). This table locks single
//! keys (shared or exclusive) and ranges of keys (shared only, for scans;
//! see [Range locks](#range-locks)).
//!
//! # Deadlock avoidance: wound-wait (Spanner §4.2.1)
//!
//! "Reads within read-write transactions use wound-wait to avoid
//! deadlocks." Every
//! transaction carries a [`Priority`], the timestamp at which it *first*
//! started, kept across retries, with the [`TxnId`] breaking ties. When a
//! request conflicts with a transaction that is in its way:
//!
//! - an **older** requester *wounds* the younger one: the table marks it
//!   wounded and reports it (in [`Acquire::Waiting`]); the caller
//!   aborts it, which ends in [`LockTable::release_all`], and then the
//!   requester's lock is granted.
//! - a **younger** requester waits.
//! - a **prepared** transaction cannot be wounded ([`LockTable::mark_prepared`]):
//!   once it has voted yes in two-phase commit it may no longer abort on its
//!   own, so even an older requester waits for it. Prepared transactions
//!   never wait (they hold all their locks), so no cycle runs through them.
//!
//! "In its way" means a holder whose lock conflicts with the request, *or a
//! waiter queued ahead of the requester* whose request conflicts with it:
//! with FIFO queues a waiter waits for everything ahead of it, and an old
//! transaction stuck behind a young waiter would be an edge from old to young
//! through which a deadlock could close. With every wait edge pointing from a
//! younger transaction to an older, prepared or wounded one, the waits-for
//! graph has no cycle among live transactions: the table is deadlock-free.
//! [`LockTable::assert_invariants`] checks exactly that edge property.
//!
//! **The table reports wounds; it does not act on them.** A wounded
//! transaction keeps its locks and its queue positions until the caller
//! calls [`LockTable::release_all`] for it, because only the participant
//! knows whether it can still abort (it may be between deciding to prepare
//! and logging the prepare record: [`LockTable::mark_prepared`] fails with
//! [`LockError::Wounded`] then, and the prepare must be abandoned). Each
//! transaction is reported wounded once; afterwards its own acquires fail
//! with [`LockError::Wounded`]. The wounding requester stays queued as
//! [`Acquire::Waiting`] until the wounded transaction is gone.
//!
//! # Queues
//!
//! Each key has one FIFO queue of waiters, as in CockroachDB's lock table
//! (`pkg/kv/kvserver/concurrency/lock_table.go`). A new request waits
//! whenever the queue is not empty, even if it is compatible with the
//! current holders, so a stream of readers cannot starve a writer. When
//! locks are released, waiters are granted from the head in order: a run of
//! shared waiters at the head is granted together; an exclusive waiter is
//! granted alone. [`LockTable::release`] and [`LockTable::release_all`]
//! return the new grants so the caller can resume those transactions.
//!
//! A shared → exclusive *upgrade* by the key's only holder is granted at
//! once. With other shared holders it waits like any request, under the same
//! wound-wait rules, but it is queued ahead of every waiter younger than the
//! upgrader (they would wait for its shared lock anyway).
//!
//! Queues are bounded ([`MAX_WAITERS_PER_KEY`] per key, [`MAX_TOTAL_WAITERS`]
//! in the table, adjustable through [`LockLimits`]). Bounds must not undo
//! wound-wait's promise that the oldest transaction is never starved: a
//! request that would exceed a bound takes the place of the last waiter of
//! a full queue (of its own key for the per-key bound, of any other key
//! for the table's) if that waiter is younger, wounding it; only when no
//! younger waiter stands last does it fail at once with
//! [`LockError::QueueFull`] or [`LockError::TooManyWaiters`], changing
//! nothing. Only a queue's last waiter is displaced, so displacing it never
//! lets anyone behind it be granted.
//!
//! # Range locks
//!
//! A scan of `[start, end)` inside a read-write transaction (`end` `None`:
//! no upper bound) takes a *shared range lock* on the interval
//! ([`LockTable::acquire_range`]), so that no other transaction can write
//! a key inside it, present or not yet present, until the scanner ends:
//! without it a second scan could see a phantom. A shared range lock
//! conflicts with an exclusive lock on any key inside the interval, held or
//! requested by another transaction, and with nothing else (shared key
//! locks and other range locks are compatible with it); a transaction's own
//! locks never conflict with each other. Range locks are held until
//! [`LockTable::release_all`] (two-phase locking), follow the same
//! wound-wait rules as key locks, and [`LockTable::mark_prepared`] protects
//! them from wounds like key locks.
//!
//! Fairness across the two kinds is FIFO by arrival: every queued request,
//! on a key or a range, is numbered when it queues. An exclusive key
//! request waits for the range locks held over its key *and* for the
//! range requests over its key that queued before it; a range request
//! waits for exclusive holders inside its interval and for exclusive
//! requests inside it that queued before it. So writers cannot starve
//! scans and scans cannot starve writers, and an exclusive request on a
//! key nobody holds may wait (for a range lock over it): such a key has a
//! queue but no holder. Range requests do not wait for each other, so they
//! are granted in any order once nothing is in their way; their queue is
//! bounded by [`LockLimits::max_waiters_per_key`] like one key's, and they
//! count towards [`LockLimits::max_total_waiters`].
//!
//! A full queue displaces only a waiter that nobody (key or range request)
//! waits behind, so displacing never grants anyone. When a range request
//! waits behind a full key queue's younger last waiter, an older request
//! wounds that waiter instead and queues past the bound; the caller's
//! abort of the wounded waiter brings the queue back within it. So a full
//! queue never refuses an older transaction that a younger waiter could
//! make room for (`assert_invariants` allows a queue past its bound only by
//! wounded waiters). A full queue of range requests still fails such a
//! request retryably.
//!
//! Range locks are expected to be rare. The table keeps them in plain
//! lists (overlap is found by a linear scan) and, only while at least one
//! range lock is held or queued, an ordered index of the locked keys to
//! find the keys inside an interval. Without range locks the key-only path
//! pays one branch per acquire and release.
//!
//! # Cost
//!
//! An uncontended acquire plus release allocates nothing in the steady state
//! (`tests/lock_table_alloc.rs` checks it): the maps hash with FxHash
//! (`rustc-hash`) instead of SipHash, and the first holder of a key and the
//! first key of a transaction are stored inline. It takes ~85 ns on the
//! 2-core development VM against a budget of 150 ns (`benches/locks.rs`,
//! numbers in `BENCHMARKS.md`).

use std::collections::{BTreeSet, VecDeque};
use std::fmt;
use std::ops::Bound;

use bytes::Bytes;

use crate::fxhash::FxHashMap;
use crate::types::{Priority, TxnId};

/// Default bound on the waiters queued on one key. A hot key with more
/// waiters than this is overloaded; failing fast ([`LockError::QueueFull`])
/// lets clients back off instead of piling up.
pub const MAX_WAITERS_PER_KEY: usize = 128;

/// Default bound on the waiters queued in the whole table, so a burst of
/// blocked transactions cannot grow the leader's memory without bound.
pub const MAX_TOTAL_WAITERS: usize = 16_384;

/// A lock mode. Shared locks are compatible with each other; an exclusive
/// lock conflicts with every other lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LockMode {
    /// Taken by reads in read-write transactions (Spanner §4.2.1: "reads
    /// within read-write transactions use wound-wait").
    Shared,
    /// Taken on the write set at prepare.
    Exclusive,
}

impl LockMode {
    /// Whether a lock in mode `self` conflicts with one in `other`.
    pub fn conflicts_with(self, other: LockMode) -> bool {
        self == LockMode::Exclusive || other == LockMode::Exclusive
    }

    /// Whether holding `self` already grants a request for `requested`.
    pub fn covers(self, requested: LockMode) -> bool {
        self == LockMode::Exclusive || requested == LockMode::Shared
    }
}

impl fmt::Display for LockMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LockMode::Shared => "shared",
            LockMode::Exclusive => "exclusive",
        })
    }
}

/// Bounds on the lock table's queues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockLimits {
    /// Most waiters queued on one key (default [`MAX_WAITERS_PER_KEY`]).
    pub max_waiters_per_key: usize,
    /// Most waiters queued in the table (default [`MAX_TOTAL_WAITERS`]).
    pub max_total_waiters: usize,
}

impl Default for LockLimits {
    fn default() -> Self {
        LockLimits {
            max_waiters_per_key: MAX_WAITERS_PER_KEY,
            max_total_waiters: MAX_TOTAL_WAITERS,
        }
    }
}

/// The outcome of [`LockTable::acquire`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Acquire {
    /// The lock is held (now, or already before the call).
    Granted,
    /// The lock is held now, after this request displaced the younger last
    /// waiter of a full queue, the only one that stood in its way.
    GrantedWounding {
        /// The transactions this request wounded (the displaced waiter).
        /// The caller must abort each and call
        /// [`LockTable::release_all`] for it.
        wounded: Vec<TxnId>,
    },
    /// The request is queued. It will be granted by a later
    /// [`LockTable::release`] or [`LockTable::release_all`], which reports
    /// it in its [`Grant`]s.
    Waiting {
        /// Younger, unprepared transactions in the requester's way that this
        /// request wounded (Spanner §4.2.1). The caller must abort each and
        /// call [`LockTable::release_all`] for it. Empty if the requester
        /// only waits for older or prepared transactions.
        wounded: Vec<TxnId>,
    },
}

impl Acquire {
    /// This outcome of a request that displaced `victim` first (`None` if
    /// the displaced waiter was wounded already, and so already reported).
    fn after_displacing(self, victim: Option<TxnId>) -> Acquire {
        let first = victim.into_iter();
        match self {
            Acquire::Granted => match victim {
                Some(v) => Acquire::GrantedWounding { wounded: vec![v] },
                None => Acquire::Granted,
            },
            Acquire::GrantedWounding { wounded } => Acquire::GrantedWounding {
                wounded: first.chain(wounded).collect(),
            },
            Acquire::Waiting { wounded } => Acquire::Waiting {
                wounded: first.chain(wounded).collect(),
            },
        }
    }
}

/// What a lock reported with a key covers: that key alone, or the range
/// of keys starting at it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LockSpan {
    /// The key alone.
    Key,
    /// The shared range lock on `[key, end)` ([`LockTable::acquire_range`]).
    Range {
        /// The first key past the range; `None`: the range has no upper
        /// bound.
        end: Option<Bytes>,
    },
}

/// A lock granted to a waiting transaction, reported by
/// [`LockTable::release`] and [`LockTable::release_all`]: the caller resumes
/// the transaction's pending request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The transaction whose request was granted.
    pub txn: TxnId,
    /// The key it now holds, or the start of the range it now holds.
    pub key: Bytes,
    /// The mode it asked for (for an upgrade, [`LockMode::Exclusive`]; for
    /// a range, [`LockMode::Shared`]).
    pub mode: LockMode,
    /// Whether the grant is of the key or of a range starting at it.
    pub span: LockSpan,
}

/// One edge of the waits-for graph ([`LockTable::waits_for`]): `waiter` is
/// queued on `key` (or on the range `span` starting at `key`) and cannot be
/// granted before `blocker` releases its lock or withdraws its request.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct WaitsFor {
    /// The key the waiter is queued on, or the start of its range request.
    pub key: Bytes,
    /// The waiting transaction.
    pub waiter: TxnId,
    /// A transaction in its way: a holder of a conflicting lock on `key`
    /// (a range lock over it included), or a waiter queued ahead of it
    /// with a conflicting request; for a range request, a holder of an
    /// exclusive lock inside the range or an exclusive request inside it
    /// queued ahead.
    pub blocker: TxnId,
    /// Whether the waiter waits for the key or for a range starting at it.
    pub span: LockSpan,
}

/// Errors from the lock table. None of them changes the table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LockError {
    /// The key's wait queue (or the queue of range requests) is full.
    /// Retryable after a backoff.
    #[error("lock wait queue for key {key:?} is full ({limit} waiters)")]
    QueueFull {
        /// The contended key (for a range request, the range's start).
        key: Bytes,
        /// The per-key bound.
        limit: usize,
    },
    /// The table holds as many waiters as it may. Retryable after a
    /// backoff.
    #[error("lock table is full ({limit} waiters in total)")]
    TooManyWaiters {
        /// The table-wide bound.
        limit: usize,
    },
    /// The transaction has been wounded by an older one (Spanner §4.2.1) and
    /// must abort; it may retry with the same priority.
    #[error("transaction {txn} was wounded by an older transaction and must abort")]
    Wounded {
        /// The wounded transaction.
        txn: TxnId,
    },
    /// A prepared transaction asked for another lock; prepare takes the
    /// last locks a transaction takes.
    #[error("transaction {txn} is prepared and cannot take more locks")]
    AlreadyPrepared {
        /// The prepared transaction.
        txn: TxnId,
    },
    /// The transaction already has a request queued on this key (or on
    /// this very range); it has to wait for that one's grant.
    #[error("transaction {txn} is already waiting for key {key:?}")]
    AlreadyWaiting {
        /// The transaction.
        txn: TxnId,
        /// The key (for a range request, the range's start).
        key: Bytes,
    },
    /// The transaction is known to the table with a different priority.
    /// Wound-wait is deadlock-free only if a transaction's priority is fixed.
    #[error("transaction {txn} has priority {known} in the lock table, not {given}")]
    PriorityMismatch {
        /// The transaction.
        txn: TxnId,
        /// The priority the table knows.
        known: Priority,
        /// The priority passed in.
        given: Priority,
    },
    /// [`LockTable::mark_prepared`] for a transaction that holds no lock.
    #[error("transaction {txn} holds no locks")]
    UnknownTxn {
        /// The transaction.
        txn: TxnId,
    },
    /// [`LockTable::mark_prepared`] for a transaction still waiting for a
    /// lock: prepare must hold every lock first.
    #[error("transaction {txn} cannot prepare while waiting for key {key:?}")]
    PrepareWhileWaiting {
        /// The transaction.
        txn: TxnId,
        /// A key it waits for (or the start of a range it waits for).
        key: Bytes,
    },
}

/// Up to one element inline, the rest on the heap: the first holder of a
/// key and the first key of a transaction cost no allocation. Order is not
/// preserved by removal.
#[derive(Debug, Clone)]
struct InlineVec<T> {
    first: Option<T>,
    rest: Vec<T>,
}

impl<T> InlineVec<T> {
    fn new() -> Self {
        InlineVec {
            first: None,
            rest: Vec::new(),
        }
    }

    fn one(t: T) -> Self {
        InlineVec {
            first: Some(t),
            rest: Vec::new(),
        }
    }

    fn push(&mut self, t: T) {
        if self.first.is_none() {
            debug_assert!(self.rest.is_empty());
            self.first = Some(t);
        } else {
            self.rest.push(t);
        }
    }

    fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    fn iter(&self) -> impl Iterator<Item = &T> {
        self.first.iter().chain(self.rest.iter())
    }

    /// Removes and returns one element matching `pred`.
    fn remove_where(&mut self, mut pred: impl FnMut(&T) -> bool) -> Option<T> {
        if self.first.as_ref().is_some_and(&mut pred) {
            let removed = self.first.take();
            self.first = self.rest.pop();
            return removed;
        }
        let i = self.rest.iter().position(pred)?;
        Some(self.rest.swap_remove(i))
    }
}

impl<T> IntoIterator for InlineVec<T> {
    type Item = T;
    type IntoIter = std::iter::Chain<std::option::IntoIter<T>, std::vec::IntoIter<T>>;

    fn into_iter(self) -> Self::IntoIter {
        self.first.into_iter().chain(self.rest)
    }
}

#[derive(Debug, Clone, Copy)]
struct Holder {
    txn: TxnId,
    prio: Priority,
}

#[derive(Debug, Clone, Copy)]
struct Waiter {
    txn: TxnId,
    prio: Priority,
    mode: LockMode,
    /// A shared holder of the key asking for exclusive.
    upgrade: bool,
    /// When it queued, in the table's order of queued requests (keys and
    /// ranges alike): orders it against range requests.
    seq: u64,
}

/// The lock state of one key. Exists only while the key has a holder or a
/// waiter. A key without holders has waiters only while the head is an
/// exclusive request waiting for a range lock over the key (otherwise the
/// head would be granted).
#[derive(Debug)]
struct KeyLock {
    /// The mode every holder holds in (meaningless without holders).
    mode: LockMode,
    holders: InlineVec<Holder>,
    queue: VecDeque<Waiter>,
}

impl KeyLock {
    fn holds(&self, txn: TxnId) -> bool {
        self.holders.iter().any(|h| h.txn == txn)
    }

    /// Whether nobody holds or waits for the key any more, after granting
    /// what could be. Waiters without holders are left only while range
    /// locks exist (`ranges`): the head waits for one of them.
    fn is_unused(&self, ranges: bool, key: &[u8]) -> bool {
        if !self.holders.is_empty() {
            return false;
        }
        assert!(
            self.queue.is_empty() || ranges,
            "key {key:?} has waiters but no holders after granting"
        );
        self.queue.is_empty()
    }

    /// Whether the head of the queue can be granted now, as far as this
    /// key's holders are concerned (range locks aside).
    fn head_compatible(&self) -> bool {
        let Some(w) = self.queue.front() else {
            return false;
        };
        if w.upgrade {
            self.holders.len() == 1 && self.holds(w.txn)
        } else {
            self.holders.is_empty() || (self.mode == LockMode::Shared && w.mode == LockMode::Shared)
        }
    }

    /// Whether the head of the queue can be granted now: compatible with
    /// the key's holders and, if it asks for exclusive, with the range
    /// locks over `key` and the range requests over it queued before it.
    fn head_grantable(&self, key: &[u8], ranges: Option<&Ranges>) -> bool {
        if !self.head_compatible() {
            return false;
        }
        match (ranges, self.queue.front()) {
            (Some(r), Some(w)) if w.mode == LockMode::Exclusive => {
                r.blocking_key(key, w.txn, w.seq).next().is_none()
            }
            _ => true,
        }
    }

    /// The transactions a request for `mode` by `txn`, queued at `pos`,
    /// waits for: conflicting holders and conflicting waiters ahead of it.
    fn blockers(
        &self,
        txn: TxnId,
        mode: LockMode,
        pos: usize,
    ) -> impl Iterator<Item = (TxnId, Priority)> + '_ {
        let holder_conflict = self.mode.conflicts_with(mode);
        let holders = self
            .holders
            .iter()
            .filter(move |h| holder_conflict && h.txn != txn)
            .map(|h| (h.txn, h.prio));
        let ahead = self
            .queue
            .iter()
            .take(pos)
            .filter(move |w| w.txn != txn && w.mode.conflicts_with(mode))
            .map(|w| (w.txn, w.prio));
        holders.chain(ahead)
    }
}

/// The transactions in the way of a request for `mode` on `key` by `txn`,
/// queued at `pos` in `lock`'s queue as number `seq`: conflicting holders
/// and waiters ahead of it on the key and, for an exclusive request, the
/// range locks over the key and range requests over it queued before it.
fn key_blockers<'a>(
    ranges: Option<&'a Ranges>,
    key: &'a [u8],
    lock: &'a KeyLock,
    txn: TxnId,
    mode: LockMode,
    seq: u64,
    pos: usize,
) -> impl Iterator<Item = (TxnId, Priority)> + 'a {
    let over = ranges
        .filter(|_| mode == LockMode::Exclusive)
        .into_iter()
        .flat_map(move |r| r.blocking_key(key, txn, seq));
    lock.blockers(txn, mode, pos).chain(over)
}

/// Whether `key` lies in `[start, end)` (`end` `None`: unbounded).
fn in_range(key: &[u8], start: &[u8], end: Option<&[u8]>) -> bool {
    key >= start && end.is_none_or(|e| key < e)
}

/// A shared range lock, held or requested, on `[start, end)`.
#[derive(Debug, Clone)]
struct RangeLock {
    txn: TxnId,
    prio: Priority,
    start: Bytes,
    /// `None`: unbounded. Always above `start` when bounded.
    end: Option<Bytes>,
    /// For a request, when it queued (see [`Waiter::seq`]); for a held
    /// lock, meaningless.
    seq: u64,
}

impl RangeLock {
    fn contains(&self, key: &[u8]) -> bool {
        in_range(key, &self.start, self.end.as_deref())
    }

    /// Whether this range includes all of `[start, end)`.
    fn covers(&self, start: &[u8], end: Option<&[u8]>) -> bool {
        self.start[..] <= *start
            && match (self.end.as_deref(), end) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(mine), Some(theirs)) => theirs <= mine,
            }
    }

    fn is(&self, start: &[u8], end: Option<&[u8]>) -> bool {
        self.start[..] == *start && self.end.as_deref() == end
    }
}

/// The range locks of the table, held and requested. Exists only while at
/// least one range lock is held or queued.
#[derive(Debug)]
struct Ranges {
    held: Vec<RangeLock>,
    /// Queued range requests, in the order they queued (increasing `seq`).
    queue: Vec<RangeLock>,
    /// Every key of [`LockTable::keys`], ordered, to find the keys inside
    /// an interval.
    index: BTreeSet<Bytes>,
}

impl Ranges {
    fn new(keys: &FxHashMap<Bytes, KeyLock>) -> Self {
        Ranges {
            held: Vec::new(),
            queue: Vec::new(),
            index: keys.keys().cloned().collect(),
        }
    }

    fn is_unused(&self) -> bool {
        self.held.is_empty() && self.queue.is_empty()
    }

    /// The range locks and requests in the way of an exclusive request on
    /// `key` by `txn` queued as number `seq` (`u64::MAX` for a new request):
    /// the range locks over `key` held by others, and others' range requests
    /// over `key` queued before it.
    fn blocking_key<'a>(
        &'a self,
        key: &'a [u8],
        txn: TxnId,
        seq: u64,
    ) -> impl Iterator<Item = (TxnId, Priority)> + 'a {
        let held = self
            .held
            .iter()
            .filter(move |r| r.txn != txn && r.contains(key));
        let ahead = self
            .queue
            .iter()
            .filter(move |r| r.txn != txn && r.seq < seq && r.contains(key));
        held.chain(ahead).map(|r| (r.txn, r.prio))
    }

    /// The locked (held or requested) keys in `[start, end)`, in order.
    fn keys_in<'a>(
        &'a self,
        start: &'a [u8],
        end: Option<&'a [u8]>,
    ) -> impl Iterator<Item = &'a Bytes> + 'a {
        let end = end.map_or(Bound::Unbounded, Bound::Excluded);
        self.index.range::<[u8], _>((Bound::Included(start), end))
    }

    /// The transactions in the way of a range request on `[start, end)` by
    /// `txn` queued as number `seq` (`u64::MAX` for a new request; 0 to
    /// find the conflicting holders only): others' exclusive locks inside
    /// the range, and others' exclusive requests inside it queued before it.
    fn blocking_range<'a>(
        &'a self,
        keys: &'a FxHashMap<Bytes, KeyLock>,
        start: &'a [u8],
        end: Option<&'a [u8]>,
        txn: TxnId,
        seq: u64,
    ) -> impl Iterator<Item = (TxnId, Priority)> + 'a {
        self.keys_in(start, end).flat_map(move |k| {
            let lock = &keys[&k[..]];
            let exclusive = lock.mode == LockMode::Exclusive;
            let holders = lock
                .holders
                .iter()
                .filter(move |h| exclusive && h.txn != txn)
                .map(|h| (h.txn, h.prio));
            let ahead = lock
                .queue
                .iter()
                .filter(move |w| w.mode == LockMode::Exclusive && w.txn != txn && w.seq < seq)
                .map(|w| (w.txn, w.prio));
            holders.chain(ahead)
        })
    }

    /// Whether a key waiter `w` on `key` is the last request anyone waits
    /// behind: no range request over `key` queued after it waits for it.
    fn nobody_behind_key_waiter(&self, key: &[u8], w: &Waiter) -> bool {
        w.mode == LockMode::Shared
            || !self
                .queue
                .iter()
                .any(|r| r.txn != w.txn && r.seq > w.seq && r.contains(key))
    }

    /// Whether no exclusive key request inside range request `r`'s interval,
    /// queued after it, waits for it.
    fn nobody_behind_range_waiter(&self, keys: &FxHashMap<Bytes, KeyLock>, r: &RangeLock) -> bool {
        !self.keys_in(&r.start, r.end.as_deref()).any(|k| {
            keys[&k[..]]
                .queue
                .iter()
                .any(|w| w.mode == LockMode::Exclusive && w.txn != r.txn && w.seq > r.seq)
        })
    }
}

/// Where [`LockTable::displace_waiter`] may take a waiter from.
#[derive(Clone, Copy, Debug)]
enum Among<'a> {
    /// The last waiter of this key's queue (its per-key bound).
    KeyQueue(&'a [u8]),
    /// Any range request (the bound on queued range requests).
    RangeQueue,
    /// The last waiter of any key's queue but this key's, or any range
    /// request (the table's bound).
    AllBut(Option<&'a [u8]>),
}

/// A waiter chosen for displacement.
enum Victim {
    Key(Bytes),
    /// An index into [`Ranges::queue`].
    Range(usize),
}

/// What the table knows about one transaction.
#[derive(Debug)]
struct TxnLocks {
    prio: Priority,
    held: InlineVec<Bytes>,
    waiting: Vec<Bytes>,
    /// How many range locks it holds or has queued (one field, not two:
    /// it fits in the padding, so the key-only path moves no more bytes).
    ranges: u32,
    prepared: bool,
    wounded: bool,
}

impl TxnLocks {
    fn new(prio: Priority) -> Self {
        TxnLocks {
            prio,
            held: InlineVec::new(),
            waiting: Vec::new(),
            ranges: 0,
            prepared: false,
            wounded: false,
        }
    }

    /// Whether it holds and awaits nothing, keys and ranges alike.
    fn is_idle(&self) -> bool {
        self.held.is_empty() && self.waiting.is_empty() && self.ranges == 0
    }
}

/// Grants the requests at the head of `lock`'s queue (on `key`) that can
/// go now, in queue order, recording them in `grants`.
fn grant_head(
    lock: &mut KeyLock,
    key: &Bytes,
    ranges: Option<&Ranges>,
    txns: &mut FxHashMap<TxnId, TxnLocks>,
    waiters: &mut usize,
    grants: &mut Vec<Grant>,
) {
    while lock.head_grantable(key, ranges) {
        let w = lock.queue.pop_front().expect("head_grantable saw a head");
        *waiters -= 1;
        let t = txns
            .get_mut(&w.txn)
            .expect("every waiter has a transaction record");
        let i = t
            .waiting
            .iter()
            .position(|k| k == key)
            .expect("a waiter records the key it waits on");
        t.waiting.swap_remove(i);
        if w.upgrade {
            lock.mode = LockMode::Exclusive;
        } else {
            // The two exclusivity invariants; breaking either would let
            // two transactions write one key.
            assert!(
                lock.holders.is_empty()
                    || (lock.mode == LockMode::Shared && w.mode == LockMode::Shared),
                "granting {:?} on {key:?} to txn {} would conflict with holders",
                w.mode,
                w.txn
            );
            if lock.holders.is_empty() {
                lock.mode = w.mode;
            }
            lock.holders.push(Holder {
                txn: w.txn,
                prio: w.prio,
            });
            t.held.push(key.clone());
        }
        grants.push(Grant {
            txn: w.txn,
            key: key.clone(),
            mode: w.mode,
            span: LockSpan::Key,
        });
    }
}

/// Wounds every younger, unprepared transaction among `blockers` of
/// `txn`'s request (Spanner §4.2.1), adding those not wounded before to
/// `wounded`.
fn wound_younger(
    txns: &mut FxHashMap<TxnId, TxnLocks>,
    txn: TxnId,
    prio: Priority,
    blockers: impl Iterator<Item = (TxnId, Priority)>,
    wounded: &mut Vec<TxnId>,
) {
    for (blocker, blocker_prio) in blockers {
        if !prio.is_older(txn, blocker_prio, blocker) {
            continue;
        }
        let b = txns
            .get_mut(&blocker)
            .expect("every holder and waiter has a transaction record");
        if !b.prepared && !b.wounded {
            b.wounded = true;
            wounded.push(blocker);
        }
    }
}

/// The leader's lock table: shared/exclusive locks per key, wound-wait
/// deadlock avoidance, bounded FIFO wait queues (Spanner §4.2.1). See the
/// [module documentation](self) for the rules.
///
/// A pure data structure: it never aborts, resumes or times out a
/// transaction itself; it reports wounds and grants and the caller acts.
#[derive(Debug)]
pub struct LockTable {
    limits: LockLimits,
    /// A deliberate bug to exhibit (simulator only).
    #[cfg(feature = "planted-bugs")]
    planted_bug: Option<crate::PlantedBug>,
    keys: FxHashMap<Bytes, KeyLock>,
    txns: FxHashMap<TxnId, TxnLocks>,
    /// Range locks; `None` while no range lock is held or queued.
    ranges: Option<Box<Ranges>>,
    /// Waiters queued over all keys and ranges.
    waiters: usize,
    /// The number the next queued request gets ([`Waiter::seq`]).
    next_seq: u64,
}

impl Default for LockTable {
    fn default() -> Self {
        LockTable::new(LockLimits::default())
    }
}

impl LockTable {
    /// An empty table with the given queue bounds.
    pub fn new(limits: LockLimits) -> Self {
        LockTable {
            limits,
            #[cfg(feature = "planted-bugs")]
            planted_bug: None,
            keys: FxHashMap::default(),
            txns: FxHashMap::default(),
            ranges: None,
            waiters: 0,
            next_seq: 0,
        }
    }

    /// The table's queue bounds.
    pub fn limits(&self) -> LockLimits {
        self.limits
    }

    /// Makes the table exhibit a deliberate bug (simulator only).
    #[cfg(feature = "planted-bugs")]
    pub fn plant_bug(&mut self, bug: Option<crate::PlantedBug>) {
        self.planted_bug = bug;
    }

    /// Whether wound-wait wounds (always, unless the `no-wound` bug is
    /// planted: then older requesters wait for younger holders too).
    #[inline(always)]
    fn wounds(&self) -> bool {
        #[cfg(feature = "planted-bugs")]
        if self.planted_bug == Some(crate::PlantedBug::NoWound) {
            return false;
        }
        true
    }

    /// Requests a `mode` lock on `key` for `txn`, whose wound-wait priority
    /// is `prio` (Spanner §4.2.1).
    ///
    /// - [`Acquire::Granted`]: no conflict (or already held in a mode that
    ///   covers `mode`, or an upgrade by the key's only holder).
    /// - [`Acquire::Waiting`]: queued behind conflicting transactions;
    ///   `wounded` lists the younger, unprepared ones this request wounded.
    ///   The grant arrives through [`release`](Self::release) or
    ///   [`release_all`](Self::release_all).
    ///
    /// An exclusive request also conflicts with the range locks other
    /// transactions hold over `key` and with their range requests over it
    /// queued before it ([`acquire_range`](Self::acquire_range)).
    ///
    /// Errors leave the table unchanged: a full queue
    /// ([`LockError::QueueFull`], [`LockError::TooManyWaiters`]); a wounded or
    /// prepared requester; a second request while one is queued on the key;
    /// a priority different from the one the table knows for `txn`.
    pub fn acquire(
        &mut self,
        txn: TxnId,
        prio: Priority,
        key: &Bytes,
        mode: LockMode,
    ) -> Result<Acquire, LockError> {
        let outcome = self.request(txn, prio, key, mode, true)?;
        Ok(outcome.expect("a request that may wait always has an outcome"))
    }

    /// Takes a `mode` lock on `key` only if that needs no waiting; never
    /// queues and never wounds. For FaRM-style OCC prepare (docs/design.md
    /// §5.4), which try-locks the write set without waiting and aborts
    /// retryably on a conflict. Returns whether the lock is held.
    ///
    /// Errors as [`acquire`](Self::acquire), except that a conflict is
    /// `Ok(false)`, not an error.
    pub fn try_acquire(
        &mut self,
        txn: TxnId,
        prio: Priority,
        key: &Bytes,
        mode: LockMode,
    ) -> Result<bool, LockError> {
        Ok(self.request(txn, prio, key, mode, false)?.is_some())
    }

    /// Requests a shared range lock on `[start, end)` (`end` `None`: no
    /// upper bound) for `txn`, whose wound-wait priority is `prio`: what a
    /// scan inside a read-write transaction takes so that no other
    /// transaction writes inside the range until `txn` ends (no phantoms).
    /// Held until [`release_all`](Self::release_all).
    ///
    /// The request conflicts with exclusive locks other transactions hold
    /// on keys inside the range and with their exclusive requests inside
    /// it queued before it; it is compatible with shared key locks and
    /// other range locks. Outcomes as [`acquire`](Self::acquire), under the
    /// same wound-wait rules (Spanner §4.2.1): an older requester wounds
    /// the younger, unprepared transactions in its way, a younger one
    /// waits, prepared transactions are never wounded. A grant that
    /// arrives later is reported with [`LockSpan::Range`]. An empty range
    /// (`end` at or below `start`) locks nothing and is granted at once;
    /// so is a range inside one `txn` already holds.
    ///
    /// Errors as [`acquire`](Self::acquire); [`LockError::QueueFull`] and
    /// [`LockError::AlreadyWaiting`] (the same range already queued) name
    /// `start`. Queued range requests are bounded by
    /// [`LockLimits::max_waiters_per_key`] together, and count towards
    /// [`LockLimits::max_total_waiters`].
    #[must_use = "a range request may wait or wound; the caller must act on the outcome"]
    pub fn acquire_range(
        &mut self,
        txn: TxnId,
        prio: Priority,
        start: &Bytes,
        end: Option<&Bytes>,
    ) -> Result<Acquire, LockError> {
        let outcome = self.request_range(txn, prio, start, end, true)?;
        Ok(outcome.expect("a request that may wait always has an outcome"))
    }

    /// Takes a shared range lock on `[start, end)` only if that needs no
    /// waiting; never queues and never wounds (for OCC, like
    /// [`try_acquire`](Self::try_acquire)). Returns whether the range is
    /// held.
    ///
    /// Errors as [`acquire_range`](Self::acquire_range), except that a
    /// conflict is `Ok(false)`, not an error.
    #[must_use = "Ok(false) means the range is not locked"]
    pub fn try_acquire_range(
        &mut self,
        txn: TxnId,
        prio: Priority,
        start: &Bytes,
        end: Option<&Bytes>,
    ) -> Result<bool, LockError> {
        Ok(self.request_range(txn, prio, start, end, false)?.is_some())
    }

    /// [`acquire`](Self::acquire); with `may_wait == false` returns
    /// `Ok(None)`, changing nothing, where it would queue.
    fn request(
        &mut self,
        txn: TxnId,
        prio: Priority,
        key: &Bytes,
        mode: LockMode,
        may_wait: bool,
    ) -> Result<Option<Acquire>, LockError> {
        match self.request_once(txn, prio, key, mode, may_wait, false) {
            Err(LockError::TooManyWaiters { limit }) if self.wounds() => {
                // Make room by displacing a younger waiter elsewhere.
                let Some(victim) = self.displace_waiter(txn, prio, Among::AllBut(Some(key))) else {
                    return Err(LockError::TooManyWaiters { limit });
                };
                let again = self.request_once(txn, prio, key, mode, may_wait, false)?;
                Ok(again.map(|a| a.after_displacing(victim)))
            }
            other => other,
        }
    }

    /// [`acquire_range`](Self::acquire_range); with `may_wait == false`
    /// returns `Ok(None)`, changing nothing, where it would queue.
    fn request_range(
        &mut self,
        txn: TxnId,
        prio: Priority,
        start: &Bytes,
        end: Option<&Bytes>,
        may_wait: bool,
    ) -> Result<Option<Acquire>, LockError> {
        match self.request_range_once(txn, prio, start, end, may_wait) {
            Err(LockError::TooManyWaiters { limit }) if self.wounds() => {
                let Some(victim) = self.displace_waiter(txn, prio, Among::AllBut(None)) else {
                    return Err(LockError::TooManyWaiters { limit });
                };
                let again = self.request_range_once(txn, prio, start, end, may_wait)?;
                Ok(again.map(|a| a.after_displacing(victim)))
            }
            other => other,
        }
    }

    /// Wounds a waiter and removes it from its queue, to make room for
    /// `txn`: the last waiter of a key's queue or a range request, from
    /// where `among` says; the youngest of those that qualify. Only a
    /// waiter younger than `txn` (and not prepared) qualifies, and only one
    /// that no other request waits behind, so that removing it grants
    /// nobody. Returns `None` if none qualifies, else `Some` of the victim
    /// if this newly wounded it (`Some(None)` if it was wounded already,
    /// and so already reported).
    fn displace_waiter(
        &mut self,
        txn: TxnId,
        prio: Priority,
        among: Among<'_>,
    ) -> Option<Option<TxnId>> {
        let younger = |p: Priority, t: TxnId| prio.is_older(txn, p, t);
        let ranges = self.ranges.as_deref();
        let keys = &self.keys;
        let last_of = |k: &Bytes, lock: &KeyLock| {
            let w = lock.queue.back()?;
            let alone = ranges.is_none_or(|r| r.nobody_behind_key_waiter(k, w));
            (younger(w.prio, w.txn) && alone).then(|| ((w.prio, w.txn), Victim::Key(k.clone())))
        };
        let range_waiters = || {
            ranges.into_iter().flat_map(move |r| {
                r.queue.iter().enumerate().filter_map(move |(i, w)| {
                    (younger(w.prio, w.txn) && r.nobody_behind_range_waiter(keys, w))
                        .then_some(((w.prio, w.txn), Victim::Range(i)))
                })
            })
        };
        let youngest =
            |a: &((Priority, TxnId), Victim), b: &((Priority, TxnId), Victim)| a.0.cmp(&b.0);
        let chosen = match among {
            Among::KeyQueue(k) => {
                let (k, lock) = keys.get_key_value(k)?;
                last_of(k, lock)
            }
            Among::RangeQueue => range_waiters().max_by(youngest),
            Among::AllBut(except) => keys
                .iter()
                .filter(|(k, _)| except.is_none_or(|e| k[..] != *e))
                .filter_map(|(k, lock)| last_of(k, lock))
                .chain(range_waiters())
                .max_by(youngest),
        };
        let (_, victim) = chosen?;
        let victim_txn = match victim {
            Victim::Key(key) => {
                let lock = self.keys.get_mut(&key[..]).expect("chosen above");
                let w = lock.queue.pop_back().expect("chosen above");
                if lock.holders.is_empty() && lock.queue.is_empty() {
                    self.remove_key(&key);
                }
                let t = self
                    .txns
                    .get_mut(&w.txn)
                    .expect("every waiter has a transaction record");
                if let Some(i) = t.waiting.iter().position(|k| *k == key) {
                    t.waiting.swap_remove(i);
                }
                self.debug_check_key(&key);
                w.txn
            }
            Victim::Range(i) => {
                let ranges = self.ranges.as_deref_mut().expect("chosen above");
                let w = ranges.queue.remove(i);
                let t = self
                    .txns
                    .get_mut(&w.txn)
                    .expect("every waiter has a transaction record");
                t.ranges -= 1;
                self.drop_ranges_if_unused();
                w.txn
            }
        };
        self.waiters -= 1;
        let t = self
            .txns
            .get_mut(&victim_txn)
            .expect("every waiter has a transaction record");
        assert!(!t.prepared, "a prepared transaction never waits");
        let newly = !std::mem::replace(&mut t.wounded, true);
        Some(newly.then_some(victim_txn))
    }

    /// One try of [`request`](Self::request): fails with
    /// [`LockError::TooManyWaiters`] without displacing anyone.
    fn request_once(
        &mut self,
        txn: TxnId,
        prio: Priority,
        key: &Bytes,
        mode: LockMode,
        may_wait: bool,
        past_bound: bool,
    ) -> Result<Option<Acquire>, LockError> {
        self.check_requester(txn, prio)?;
        let wounds = self.wounds();
        // Whether range locks stand in the way: only of an exclusive
        // request, only while any range lock exists (one branch otherwise).
        let range_blocked = |ranges: Option<&Ranges>| {
            mode == LockMode::Exclusive
                && ranges.is_some_and(|r| r.blocking_key(key, txn, u64::MAX).next().is_some())
        };
        let Some(lock) = self.keys.get_mut(&key[..]) else {
            if range_blocked(self.ranges.as_deref()) {
                return self.wait_on_free_key(txn, prio, key, may_wait);
            }
            // Uncontended: the key is free.
            self.keys.insert(
                key.clone(),
                KeyLock {
                    mode,
                    holders: InlineVec::one(Holder { txn, prio }),
                    queue: VecDeque::new(),
                },
            );
            if let Some(r) = self.ranges.as_deref_mut() {
                r.index.insert(key.clone());
            }
            self.txns
                .entry(txn)
                .or_insert_with(|| TxnLocks::new(prio))
                .held
                .push(key.clone());
            return Ok(Some(Acquire::Granted));
        };
        let holding = lock.holds(txn);
        if holding && lock.mode.covers(mode) {
            return Ok(Some(Acquire::Granted));
        }
        if lock.queue.iter().any(|w| w.txn == txn) {
            return Err(LockError::AlreadyWaiting {
                txn,
                key: key.clone(),
            });
        }
        let upgrade = holding;
        let pos = if upgrade {
            // Ahead of every waiter younger than the upgrader: they wait for
            // its shared lock anyway, and an older waiter behind it would be
            // an old→young wait edge.
            lock.queue
                .iter()
                .rposition(|w| w.prio.is_older(w.txn, prio, txn))
                .map_or(0, |i| i + 1)
        } else {
            lock.queue.len()
        };
        if upgrade && pos == 0 && lock.holders.len() == 1 && !range_blocked(self.ranges.as_deref())
        {
            lock.mode = LockMode::Exclusive;
            self.debug_check_key(key);
            return Ok(Some(Acquire::Granted));
        }
        // Compatible with the holders means shared (a key in the table has
        // holders when its queue is empty), which no range lock blocks.
        if !upgrade && lock.queue.is_empty() && !lock.mode.conflicts_with(mode) {
            lock.holders.push(Holder { txn, prio });
            self.txns
                .entry(txn)
                .or_insert_with(|| TxnLocks::new(prio))
                .held
                .push(key.clone());
            self.debug_check_key(key);
            return Ok(Some(Acquire::Granted));
        }

        // Must wait. Check the bounds before touching anything.
        if !may_wait {
            return Ok(None);
        }
        if lock.queue.len() >= self.limits.max_waiters_per_key && !past_bound {
            // A full queue: take the place of its last waiter if younger,
            // then ask again (the queue now has room; with the last waiter
            // gone the request may even be granted at once).
            let last = lock.queue.back().map(|w| (w.txn, w.prio));
            let displaced = if wounds {
                self.displace_waiter(txn, prio, Among::KeyQueue(key))
            } else {
                None
            };
            let Some(victim) = displaced else {
                // A younger last waiter that a range request waits behind
                // cannot leave the queue here (the wake-up it would owe is
                // not this call's to report). Wound it and wait past the
                // bound instead: the caller aborts it, and its release
                // brings the queue back within the bound. So a full queue
                // never refuses an older transaction a younger one could
                // make room for (no starvation).
                if let (true, Some((last_txn, last_prio))) = (wounds, last) {
                    let t = self
                        .txns
                        .get_mut(&last_txn)
                        .expect("every waiter has a transaction record");
                    if prio.is_older(txn, last_prio, last_txn) && !t.prepared {
                        let fresh = !t.wounded;
                        t.wounded = true;
                        return match self.request_once(txn, prio, key, mode, may_wait, true) {
                            Ok(again) => Ok(again.map(|a| {
                                if fresh {
                                    a.after_displacing(Some(last_txn))
                                } else {
                                    a
                                }
                            })),
                            Err(e) => {
                                // Refused after all (the table is full):
                                // the table is unchanged, so the wound is
                                // undone, never left unreported.
                                if fresh {
                                    if let Some(t) = self.txns.get_mut(&last_txn) {
                                        t.wounded = false;
                                    }
                                }
                                Err(e)
                            }
                        };
                    }
                }
                return Err(LockError::QueueFull {
                    key: key.clone(),
                    limit: self.limits.max_waiters_per_key,
                });
            };
            let again = self.request_once(txn, prio, key, mode, may_wait, false)?;
            return Ok(again.map(|a| a.after_displacing(victim)));
        }
        if self.waiters >= self.limits.max_total_waiters {
            return Err(LockError::TooManyWaiters {
                limit: self.limits.max_total_waiters,
            });
        }
        // Wound-wait (Spanner §4.2.1): wound every younger, unprepared
        // transaction in the way; wait for the rest.
        let mut wounded = Vec::new();
        if wounds {
            let blockers =
                key_blockers(self.ranges.as_deref(), key, lock, txn, mode, u64::MAX, pos);
            wound_younger(&mut self.txns, txn, prio, blockers, &mut wounded);
        }
        lock.queue.insert(
            pos,
            Waiter {
                txn,
                prio,
                mode,
                upgrade,
                seq: self.next_seq,
            },
        );
        self.next_seq += 1;
        self.waiters += 1;
        self.txns
            .entry(txn)
            .or_insert_with(|| TxnLocks::new(prio))
            .waiting
            .push(key.clone());
        self.debug_check_key(key);
        Ok(Some(Acquire::Waiting { wounded }))
    }

    /// [`request_once`](Self::request_once) for an exclusive request on a
    /// key nobody holds or waits for, inside a range lock (held or queued)
    /// of another transaction: the key gets a queue without holders.
    fn wait_on_free_key(
        &mut self,
        txn: TxnId,
        prio: Priority,
        key: &Bytes,
        may_wait: bool,
    ) -> Result<Option<Acquire>, LockError> {
        if !may_wait {
            return Ok(None);
        }
        if self.limits.max_waiters_per_key == 0 {
            return Err(LockError::QueueFull {
                key: key.clone(),
                limit: 0,
            });
        }
        if self.waiters >= self.limits.max_total_waiters {
            return Err(LockError::TooManyWaiters {
                limit: self.limits.max_total_waiters,
            });
        }
        let wounds = self.wounds();
        let ranges = self
            .ranges
            .as_deref_mut()
            .expect("a key is range-blocked only while ranges exist");
        let mut wounded = Vec::new();
        if wounds {
            let blockers = ranges.blocking_key(key, txn, u64::MAX);
            wound_younger(&mut self.txns, txn, prio, blockers, &mut wounded);
        }
        ranges.index.insert(key.clone());
        self.keys.insert(
            key.clone(),
            KeyLock {
                mode: LockMode::Exclusive,
                holders: InlineVec::new(),
                queue: VecDeque::from([Waiter {
                    txn,
                    prio,
                    mode: LockMode::Exclusive,
                    upgrade: false,
                    seq: self.next_seq,
                }]),
            },
        );
        self.next_seq += 1;
        self.waiters += 1;
        self.txns
            .entry(txn)
            .or_insert_with(|| TxnLocks::new(prio))
            .waiting
            .push(key.clone());
        self.debug_check_key(key);
        Ok(Some(Acquire::Waiting { wounded }))
    }

    /// One try of [`request_range`](Self::request_range): fails with
    /// [`LockError::TooManyWaiters`] without displacing anyone.
    fn request_range_once(
        &mut self,
        txn: TxnId,
        prio: Priority,
        start: &Bytes,
        end: Option<&Bytes>,
        may_wait: bool,
    ) -> Result<Option<Acquire>, LockError> {
        self.check_requester(txn, prio)?;
        let end_key = end.map(|e| &e[..]);
        if end_key.is_some_and(|e| e <= &start[..]) {
            // Empty: nothing to lock.
            return Ok(Some(Acquire::Granted));
        }
        if let Some(r) = self.ranges.as_deref() {
            if r.held
                .iter()
                .any(|h| h.txn == txn && h.covers(start, end_key))
            {
                return Ok(Some(Acquire::Granted));
            }
            if r.queue.iter().any(|w| w.txn == txn && w.is(start, end_key)) {
                return Err(LockError::AlreadyWaiting {
                    txn,
                    key: start.clone(),
                });
            }
        }
        let wounds = self.wounds();
        let keys = &self.keys;
        let ranges = self
            .ranges
            .get_or_insert_with(|| Box::new(Ranges::new(keys)));
        let blocked = ranges
            .blocking_range(&self.keys, start, end_key, txn, u64::MAX)
            .next()
            .is_some();
        let lock = RangeLock {
            txn,
            prio,
            start: start.clone(),
            end: end.cloned(),
            seq: self.next_seq,
        };
        if !blocked {
            ranges.held.push(lock);
            self.txns
                .entry(txn)
                .or_insert_with(|| TxnLocks::new(prio))
                .ranges += 1;
            return Ok(Some(Acquire::Granted));
        }

        // Must wait. Check the bounds before touching anything.
        let refused = if !may_wait {
            Some(Ok(None))
        } else if ranges.queue.len() >= self.limits.max_waiters_per_key {
            None
        } else if self.waiters >= self.limits.max_total_waiters {
            Some(Err(LockError::TooManyWaiters {
                limit: self.limits.max_total_waiters,
            }))
        } else {
            let mut wounded = Vec::new();
            if wounds {
                let blockers = ranges.blocking_range(&self.keys, start, end_key, txn, u64::MAX);
                wound_younger(&mut self.txns, txn, prio, blockers, &mut wounded);
            }
            ranges.queue.push(lock);
            self.next_seq += 1;
            self.waiters += 1;
            self.txns
                .entry(txn)
                .or_insert_with(|| TxnLocks::new(prio))
                .ranges += 1;
            return Ok(Some(Acquire::Waiting { wounded }));
        };
        if let Some(refused) = refused {
            self.drop_ranges_if_unused();
            return refused;
        }
        // The queue of range requests is full: take the place of a younger
        // range request, then ask again.
        let displaced = if wounds {
            self.displace_waiter(txn, prio, Among::RangeQueue)
        } else {
            None
        };
        let Some(victim) = displaced else {
            self.drop_ranges_if_unused();
            return Err(LockError::QueueFull {
                key: start.clone(),
                limit: self.limits.max_waiters_per_key,
            });
        };
        let again = self.request_range_once(txn, prio, start, end, may_wait)?;
        Ok(again.map(|a| a.after_displacing(victim)))
    }

    /// Marks `txn` prepared (Spanner §4.2.1, two-phase commit): from now on
    /// it cannot be wounded, and older requesters wait for it, for its key
    /// and range locks alike.
    ///
    /// Fails with [`LockError::Wounded`] if it was wounded before this call:
    /// the wound won the race, and the participant must abort instead of
    /// logging the prepare. Also fails if `txn` holds no locks or still
    /// waits for one (a key or a range). Idempotent.
    pub fn mark_prepared(&mut self, txn: TxnId) -> Result<(), LockError> {
        let t = self
            .txns
            .get_mut(&txn)
            .ok_or(LockError::UnknownTxn { txn })?;
        if t.wounded {
            return Err(LockError::Wounded { txn });
        }
        if let Some(key) = t.waiting.first() {
            return Err(LockError::PrepareWhileWaiting {
                txn,
                key: key.clone(),
            });
        }
        if t.ranges > 0 {
            let queued = self
                .ranges
                .as_deref()
                .and_then(|r| r.queue.iter().find(|r| r.txn == txn));
            if let Some(r) = queued {
                return Err(LockError::PrepareWhileWaiting {
                    txn,
                    key: r.start.clone(),
                });
            }
        }
        t.prepared = true;
        Ok(())
    }

    /// Releases `txn`'s lock on `key` and withdraws its queued request on
    /// `key`, if any. Returns the locks this grants to waiters, in queue
    /// order. Range locks are released only by
    /// [`release_all`](Self::release_all).
    pub fn release(&mut self, txn: TxnId, key: &[u8]) -> Vec<Grant> {
        let mut grants = Vec::new();
        let Some(t) = self.txns.get_mut(&txn) else {
            return grants;
        };
        let held = t.held.remove_where(|k| k[..] == *key);
        let waited = t
            .waiting
            .iter()
            .position(|k| k[..] == *key)
            .map(|i| t.waiting.swap_remove(i));
        if t.is_idle() && !t.prepared && !t.wounded {
            self.txns.remove(&txn);
        }
        if let Some(key) = held.or(waited) {
            self.release_key(txn, key, &mut grants);
        }
        grants
    }

    /// Releases every lock of `txn`, keys and ranges, and withdraws all its
    /// queued requests, and forgets it (its prepared and wounded marks
    /// included). Called when the transaction commits or aborts, including
    /// after a wound. Returns the locks this grants to waiters (on keys
    /// and ranges), ordered by key (a range by its start), then queue
    /// order.
    pub fn release_all(&mut self, txn: TxnId) -> Vec<Grant> {
        let mut grants = Vec::new();
        let Some(t) = self.txns.remove(&txn) else {
            return grants;
        };
        if t.ranges > 0 {
            self.release_all_with_ranges(txn, t, &mut grants);
        } else {
            for key in t.held.into_iter().chain(t.waiting) {
                self.release_key(txn, key, &mut grants);
            }
        }
        if grants.len() > 1 {
            grants.sort_by(|a, b| a.key.cmp(&b.key));
        }
        grants
    }

    /// [`release_all`](Self::release_all) of a transaction with range
    /// locks or requests, kept out of the key-only path.
    #[cold]
    #[inline(never)]
    fn release_all_with_ranges(&mut self, txn: TxnId, t: TxnLocks, grants: &mut Vec<Grant>) {
        // Ranges first, so that releasing the keys does not see them.
        let ranges = self.remove_ranges_of(txn);
        for key in t.held.into_iter().chain(t.waiting) {
            self.release_key(txn, key, grants);
        }
        // Key requests inside the released ranges may now be free to go.
        for r in &ranges {
            self.grant_keys_in(&r.start, r.end.as_deref(), grants);
        }
        self.drop_ranges_if_unused();
    }

    /// The waits-for graph (docs/design.md §4: who waits for whom): one edge
    /// per waiter (on a key or a range) and each transaction in its way,
    /// sorted by key, waiter, blocker.
    pub fn waits_for(&self) -> Vec<WaitsFor> {
        let mut edges = Vec::new();
        let ranges = self.ranges.as_deref();
        for (key, lock) in &self.keys {
            for (i, w) in lock.queue.iter().enumerate() {
                for (blocker, _) in key_blockers(ranges, key, lock, w.txn, w.mode, w.seq, i) {
                    edges.push(WaitsFor {
                        key: key.clone(),
                        waiter: w.txn,
                        blocker,
                        span: LockSpan::Key,
                    });
                }
            }
        }
        if let Some(r) = ranges {
            for w in &r.queue {
                let blockers =
                    r.blocking_range(&self.keys, &w.start, w.end.as_deref(), w.txn, w.seq);
                for (blocker, _) in blockers {
                    edges.push(WaitsFor {
                        key: w.start.clone(),
                        waiter: w.txn,
                        blocker,
                        span: LockSpan::Range { end: w.end.clone() },
                    });
                }
            }
        }
        edges.sort();
        edges.dedup();
        edges
    }

    /// The locks `txn` holds, sorted by key.
    pub fn locks_held_by(&self, txn: TxnId) -> Vec<(Bytes, LockMode)> {
        let Some(t) = self.txns.get(&txn) else {
            return Vec::new();
        };
        let mut held: Vec<(Bytes, LockMode)> = t
            .held
            .iter()
            .map(|k| (k.clone(), self.keys[&k[..]].mode))
            .collect();
        held.sort();
        held
    }

    /// The shared range locks `txn` holds, as `(start, end)` (`end` `None`:
    /// unbounded), sorted.
    #[must_use]
    pub fn ranges_held_by(&self, txn: TxnId) -> Vec<(Bytes, Option<Bytes>)> {
        let Some(r) = self.ranges.as_deref() else {
            return Vec::new();
        };
        let mut held: Vec<(Bytes, Option<Bytes>)> = r
            .held
            .iter()
            .filter(|h| h.txn == txn)
            .map(|h| (h.start.clone(), h.end.clone()))
            .collect();
        held.sort();
        held
    }

    /// The holders of `key` and their mode, sorted by transaction id.
    /// Range locks over `key` are not listed.
    pub fn holders(&self, key: &[u8]) -> Vec<(TxnId, LockMode)> {
        let Some(lock) = self.keys.get(key) else {
            return Vec::new();
        };
        let mut holders: Vec<_> = lock.holders.iter().map(|h| (h.txn, lock.mode)).collect();
        holders.sort();
        holders
    }

    /// The transactions holding a (shared) range lock over `key`, sorted
    /// and without repeats. An exclusive request on `key` waits for them
    /// as it does for the key's holders.
    pub fn range_holders(&self, key: &[u8]) -> Vec<TxnId> {
        let Some(r) = self.ranges.as_deref() else {
            return Vec::new();
        };
        let mut holders: Vec<TxnId> = r
            .held
            .iter()
            .filter(|r| r.contains(key))
            .map(|r| r.txn)
            .collect();
        holders.sort();
        holders.dedup();
        holders
    }

    /// The transactions holding a key inside `[start, end)` (no upper
    /// bound if `end` is `None`) exclusively, sorted and without repeats: a
    /// range request over them waits for them.
    pub fn exclusive_holders_in(&self, start: &[u8], end: Option<&[u8]>) -> Vec<TxnId> {
        let Some(r) = self.ranges.as_deref() else {
            return Vec::new();
        };
        let mut holders: Vec<TxnId> = r
            .keys_in(start, end)
            .filter_map(|k| self.keys.get(&k[..]))
            .filter(|lock| lock.mode == LockMode::Exclusive)
            .flat_map(|lock| lock.holders.iter().map(|h| h.txn))
            .collect();
        holders.sort();
        holders.dedup();
        holders
    }

    /// Another transaction than `txn` holding `key` exclusively, if one
    /// does. For OCC validation (docs/design.md §5.4): such a holder is
    /// about to write the key. Allocates nothing.
    pub fn exclusive_holder_other_than(&self, key: &[u8], txn: TxnId) -> Option<TxnId> {
        let lock = self.keys.get(key)?;
        if lock.mode != LockMode::Exclusive {
            return None;
        }
        lock.holders.iter().map(|h| h.txn).find(|t| *t != txn)
    }

    /// The waiters queued on `key` and the mode each asked for, in queue
    /// order.
    pub fn waiters(&self, key: &[u8]) -> Vec<(TxnId, LockMode)> {
        self.keys
            .get(key)
            .map(|lock| lock.queue.iter().map(|w| (w.txn, w.mode)).collect())
            .unwrap_or_default()
    }

    /// Whether `txn` has been wounded and not yet released.
    pub fn is_wounded(&self, txn: TxnId) -> bool {
        self.txns.get(&txn).is_some_and(|t| t.wounded)
    }

    /// Whether `txn` is marked prepared.
    pub fn is_prepared(&self, txn: TxnId) -> bool {
        self.txns.get(&txn).is_some_and(|t| t.prepared)
    }

    /// Every transaction the table knows (holding, waiting, or marked
    /// prepared or wounded), in no particular order.
    pub fn txns(&self) -> impl Iterator<Item = TxnId> + '_ {
        self.txns.keys().copied()
    }

    /// The number of waiters queued in the table, range requests included.
    pub fn waiter_count(&self) -> usize {
        self.waiters
    }

    /// The number of keys with at least one holder.
    pub fn locked_key_count(&self) -> usize {
        if self.ranges.is_none() {
            // Without range locks every key in the table has a holder.
            self.keys.len()
        } else {
            self.keys.values().filter(|l| !l.holders.is_empty()).count()
        }
    }

    /// Checks every invariant of the table and panics with a description of
    /// the first one broken. Linear in the table's size: for tests and the
    /// simulator's per-step checks. The invariants:
    ///
    /// - a key has holders, either one exclusive or any number of shared,
    ///   or none only while its head waits for a range lock; no transaction
    ///   holds or waits twice on one key;
    /// - a key's queue head is never grantable, nor is a queued range
    ///   request (no lost wake-up);
    /// - no transaction holds an exclusive lock on a key inside a range
    ///   lock held by another;
    /// - wound-wait (Spanner §4.2.1): every unwounded waiter's blockers
    ///   (range waits included) are older than it, prepared, or wounded —
    ///   so the waits-for graph of live transactions is acyclic;
    /// - prepared transactions wait for nothing and are never wounded;
    /// - per-transaction and per-key (per-range) records agree; bounds hold.
    pub fn assert_invariants(&self) {
        let mut waiters = 0;
        for (key, lock) in &self.keys {
            self.check_key(key, lock);
            waiters += lock.queue.len();
        }
        let mut ranges_of: FxHashMap<TxnId, (u32, u32)> = FxHashMap::default();
        if let Some(r) = self.ranges.as_deref() {
            self.check_ranges(r);
            waiters += r.queue.len();
            for h in &r.held {
                ranges_of.entry(h.txn).or_default().0 += 1;
            }
            for w in &r.queue {
                ranges_of.entry(w.txn).or_default().1 += 1;
            }
        }
        assert_eq!(waiters, self.waiters, "waiter count out of sync");
        assert!(
            self.waiters <= self.limits.max_total_waiters,
            "{} waiters exceed the table bound {}",
            self.waiters,
            self.limits.max_total_waiters
        );
        for (txn, t) in &self.txns {
            for key in t.held.iter() {
                let lock = self.keys.get(&key[..]).unwrap_or_else(|| {
                    panic!("txn {txn} records holding {key:?}, which is unlocked")
                });
                assert!(
                    lock.holds(*txn),
                    "txn {txn} records holding {key:?} but does not"
                );
            }
            for key in &t.waiting {
                let queued = self
                    .keys
                    .get(&key[..])
                    .is_some_and(|l| l.queue.iter().any(|w| w.txn == *txn));
                assert!(
                    queued,
                    "txn {txn} records waiting on {key:?} but is not queued"
                );
            }
            let (held, waiting) = ranges_of.remove(txn).unwrap_or_default();
            assert_eq!(
                held + waiting,
                t.ranges,
                "txn {txn}: range locks held and queued out of sync"
            );
            if t.prepared {
                assert!(!t.wounded, "prepared txn {txn} is wounded");
                assert!(t.waiting.is_empty(), "prepared txn {txn} is waiting");
                assert_eq!(waiting, 0, "prepared txn {txn} waits for a range");
            }
        }
        assert!(
            ranges_of.is_empty(),
            "range locks of unknown transactions: {ranges_of:?}"
        );
    }

    fn check_requester(&self, txn: TxnId, prio: Priority) -> Result<(), LockError> {
        let Some(t) = self.txns.get(&txn) else {
            return Ok(());
        };
        if t.prio != prio {
            return Err(LockError::PriorityMismatch {
                txn,
                known: t.prio,
                given: prio,
            });
        }
        if t.wounded {
            return Err(LockError::Wounded { txn });
        }
        if t.prepared {
            return Err(LockError::AlreadyPrepared { txn });
        }
        Ok(())
    }

    /// Drops `txn`'s hold and queued request on `key` (whichever exist),
    /// grants what that frees (on the key, and range requests over it),
    /// and forgets the key if nobody holds or waits for it.
    fn release_key(&mut self, txn: TxnId, key: Bytes, grants: &mut Vec<Grant>) {
        // An upgrader appears in both its held and waiting lists; the second
        // visit may find the key already gone.
        let Some(lock) = self.keys.get_mut(&key[..]) else {
            return;
        };
        lock.holders.remove_where(|h| h.txn == txn);
        if let Some(i) = lock.queue.iter().position(|w| w.txn == txn) {
            lock.queue.remove(i);
            self.waiters -= 1;
        }
        let ranges = self.ranges.as_deref();
        if !lock.queue.is_empty() {
            grant_head(
                lock,
                &key,
                ranges,
                &mut self.txns,
                &mut self.waiters,
                grants,
            );
        }
        let unused = lock.is_unused(ranges.is_some(), &key);
        if unused {
            self.remove_key(&key);
        } else {
            self.debug_check_key(&key);
        }
        if self.ranges.is_some() {
            self.grant_ranges(&key, grants);
        }
    }

    /// Grants the requests at the head of `key`'s queue that can go now,
    /// and forgets the key if nobody holds or waits for it.
    fn grant_key(&mut self, key: &Bytes, grants: &mut Vec<Grant>) {
        let Some(lock) = self.keys.get_mut(&key[..]) else {
            return;
        };
        let ranges = self.ranges.as_deref();
        grant_head(lock, key, ranges, &mut self.txns, &mut self.waiters, grants);
        if lock.is_unused(ranges.is_some(), key) {
            self.remove_key(key);
        } else {
            self.debug_check_key(key);
        }
    }

    /// Grants the queued range requests over `key` that nothing is in the
    /// way of any more.
    fn grant_ranges(&mut self, key: &[u8], grants: &mut Vec<Grant>) {
        let Some(ranges) = self.ranges.as_deref_mut() else {
            return;
        };
        let mut i = 0;
        while i < ranges.queue.len() {
            let w = &ranges.queue[i];
            let free = w.contains(key)
                && ranges
                    .blocking_range(&self.keys, &w.start, w.end.as_deref(), w.txn, w.seq)
                    .next()
                    .is_none();
            if !free {
                i += 1;
                continue;
            }
            // Range requests do not wait for each other: granting one
            // changes nothing for the others.
            let w = ranges.queue.remove(i);
            self.waiters -= 1;
            // Its count of range locks held or queued stays as it is.
            debug_assert!(self.txns.contains_key(&w.txn), "waiter without record");
            grants.push(Grant {
                txn: w.txn,
                key: w.start.clone(),
                mode: LockMode::Shared,
                span: LockSpan::Range { end: w.end.clone() },
            });
            ranges.held.push(w);
        }
    }

    /// Grants what can go now on every key in `[start, end)` with waiters:
    /// after range locks or requests over the interval are gone.
    fn grant_keys_in(&mut self, start: &[u8], end: Option<&[u8]>, grants: &mut Vec<Grant>) {
        let Some(ranges) = self.ranges.as_deref() else {
            return;
        };
        let waited: Vec<Bytes> = ranges
            .keys_in(start, end)
            .filter(|k| !self.keys[&k[..]].queue.is_empty())
            .cloned()
            .collect();
        for key in &waited {
            self.grant_key(key, grants);
        }
    }

    /// Removes `txn`'s range locks and range requests, granting nothing;
    /// returns them.
    fn remove_ranges_of(&mut self, txn: TxnId) -> Vec<RangeLock> {
        let Some(ranges) = self.ranges.as_deref_mut() else {
            return Vec::new();
        };
        let mut removed = Vec::new();
        let keep = |r: &RangeLock, removed: &mut Vec<RangeLock>| {
            if r.txn == txn {
                removed.push(r.clone());
                false
            } else {
                true
            }
        };
        ranges.held.retain(|r| keep(r, &mut removed));
        let held = removed.len();
        ranges.queue.retain(|r| keep(r, &mut removed));
        self.waiters -= removed.len() - held;
        removed
    }

    /// Forgets `key`, which nobody holds or waits for.
    #[inline]
    fn remove_key(&mut self, key: &[u8]) {
        self.keys.remove(key);
        if let Some(r) = self.ranges.as_deref_mut() {
            r.index.remove(key);
        }
    }

    /// Drops the range state once no range lock is held or queued: the
    /// key-only path then pays nothing for it.
    fn drop_ranges_if_unused(&mut self) {
        if self.ranges.as_deref().is_some_and(Ranges::is_unused) {
            debug_assert!(
                self.keys.values().all(|l| !l.holders.is_empty()),
                "a key without holders outlives the range locks"
            );
            self.ranges = None;
        }
    }

    #[inline]
    fn debug_check_key(&self, key: &[u8]) {
        if cfg!(debug_assertions) {
            if let Some((key, lock)) = self.keys.get_key_value(key) {
                self.check_key(key, lock);
            }
        }
    }

    fn check_key(&self, key: &Bytes, lock: &KeyLock) {
        let ranges = self.ranges.as_deref();
        let holders: Vec<&Holder> = lock.holders.iter().collect();
        assert!(
            !holders.is_empty() || (ranges.is_some() && !lock.queue.is_empty()),
            "key {key:?} has a lock entry but no holder"
        );
        if let Some(r) = ranges {
            assert!(r.index.contains(key), "key {key:?} missing from the index");
        }
        if lock.mode == LockMode::Exclusive {
            assert!(
                holders.len() <= 1,
                "key {key:?} is held exclusive by several transactions: {holders:?}"
            );
        }
        for (i, h) in holders.iter().enumerate() {
            assert!(
                holders[..i].iter().all(|o| o.txn != h.txn),
                "txn {} holds {key:?} twice",
                h.txn
            );
            let t = self
                .txns
                .get(&h.txn)
                .unwrap_or_else(|| panic!("holder {} of {key:?} has no transaction record", h.txn));
            assert_eq!(t.prio, h.prio, "holder {} priority out of sync", h.txn);
            assert!(
                t.held.iter().any(|k| k == key),
                "txn {} holds {key:?} but does not record it",
                h.txn
            );
            if lock.mode == LockMode::Exclusive {
                let over = ranges.map_or(0, |r| {
                    r.held
                        .iter()
                        .filter(|g| g.txn != h.txn && g.contains(key))
                        .count()
                });
                assert_eq!(
                    over, 0,
                    "txn {} holds {key:?} exclusive inside another's range lock",
                    h.txn
                );
            }
        }
        // Past the bound only by wounded waiters on their way out (an
        // older request that could not displace a younger last waiter).
        let wounded_waiting = lock
            .queue
            .iter()
            .filter(|w| self.txns.get(&w.txn).is_some_and(|t| t.wounded))
            .count();
        assert!(
            lock.queue.len() <= self.limits.max_waiters_per_key + wounded_waiting,
            "queue on {key:?} exceeds its bound"
        );
        assert!(
            !lock.head_grantable(key, ranges),
            "the head waiter on {key:?} is grantable but waits (lost wake-up)"
        );
        for (i, w) in lock.queue.iter().enumerate() {
            assert!(
                lock.queue.iter().take(i).all(|o| o.txn != w.txn),
                "txn {} waits on {key:?} twice",
                w.txn
            );
            assert!(w.seq < self.next_seq, "waiter {} numbered ahead", w.txn);
            let t = self
                .txns
                .get(&w.txn)
                .unwrap_or_else(|| panic!("waiter {} on {key:?} has no transaction record", w.txn));
            assert_eq!(t.prio, w.prio, "waiter {} priority out of sync", w.txn);
            assert!(!t.prepared, "prepared txn {} waits on {key:?}", w.txn);
            assert!(
                t.waiting.iter().any(|k| k == key),
                "txn {} waits on {key:?} but does not record it",
                w.txn
            );
            assert_eq!(
                w.upgrade,
                lock.holds(w.txn),
                "waiter {} on {key:?}: upgrade flag disagrees with holding",
                w.txn
            );
            if w.upgrade {
                assert_eq!(w.mode, LockMode::Exclusive);
                assert_eq!(lock.mode, LockMode::Shared);
            }
            // With `no-wound` planted the table breaks this on purpose; the
            // simulator must catch it from the outside (a waits-for cycle).
            if t.wounded || !self.wounds() {
                continue;
            }
            for (blocker, blocker_prio) in key_blockers(ranges, key, lock, w.txn, w.mode, w.seq, i)
            {
                let b = &self.txns[&blocker];
                assert!(
                    blocker_prio.is_older(blocker, w.prio, w.txn) || b.prepared || b.wounded,
                    "wound-wait violated on {key:?}: txn {} waits for younger txn {blocker}, \
                     which is neither prepared nor wounded",
                    w.txn
                );
            }
        }
    }

    /// The range part of [`assert_invariants`](Self::assert_invariants).
    fn check_ranges(&self, r: &Ranges) {
        assert!(!r.is_unused(), "range state kept without range locks");
        assert_eq!(
            r.index.len(),
            self.keys.len(),
            "the key index and the key map disagree"
        );
        assert!(
            r.queue.len() <= self.limits.max_waiters_per_key,
            "{} queued range requests exceed the bound {}",
            r.queue.len(),
            self.limits.max_waiters_per_key
        );
        for (held, g) in r
            .held
            .iter()
            .map(|g| (true, g))
            .chain(r.queue.iter().map(|g| (false, g)))
        {
            let what = if held { "holds" } else { "waits for" };
            let (start, end) = (&g.start, g.end.as_deref());
            assert!(
                end.is_none_or(|e| e > &start[..]),
                "txn {} {what} an empty range {start:?}..{end:?}",
                g.txn
            );
            let t = self.txns.get(&g.txn).unwrap_or_else(|| {
                panic!("txn {} {what} a range but has no transaction record", g.txn)
            });
            assert_eq!(
                t.prio, g.prio,
                "range {what}er {} priority out of sync",
                g.txn
            );
            if held {
                // Phantom protection: nobody else writes inside a held range.
                let writers: Vec<_> = r.blocking_range(&self.keys, start, end, g.txn, 0).collect();
                assert!(
                    writers.is_empty(),
                    "txn {} holds range {start:?}..{end:?} while {writers:?} hold \
                     exclusive locks inside it",
                    g.txn
                );
            }
        }
        for (i, w) in r.queue.iter().enumerate() {
            let (start, end) = (&w.start, w.end.as_deref());
            assert!(
                w.seq < self.next_seq,
                "range waiter {} numbered ahead",
                w.txn
            );
            assert!(
                r.queue[..i].iter().all(|o| o.seq < w.seq),
                "range requests out of order"
            );
            assert!(
                r.queue[..i]
                    .iter()
                    .all(|o| o.txn != w.txn || !o.is(start, end)),
                "txn {} waits for range {start:?}..{end:?} twice",
                w.txn
            );
            let t = &self.txns[&w.txn];
            assert!(!t.prepared, "prepared txn {} waits for a range", w.txn);
            let mut blockers = r
                .blocking_range(&self.keys, start, end, w.txn, w.seq)
                .peekable();
            assert!(
                blockers.peek().is_some(),
                "range request of txn {} on {start:?}..{end:?} is grantable but waits \
                 (lost wake-up)",
                w.txn
            );
            if t.wounded || !self.wounds() {
                continue;
            }
            for (blocker, blocker_prio) in blockers {
                let b = &self.txns[&blocker];
                assert!(
                    blocker_prio.is_older(blocker, w.prio, w.txn) || b.prepared || b.wounded,
                    "wound-wait violated on range {start:?}..{end:?}: txn {} waits for \
                     younger txn {blocker}, which is neither prepared nor wounded",
                    w.txn
                );
            }
        }
    }
}

#[cfg(test)]
mod range_tests;
#[cfg(test)]
mod tests;
