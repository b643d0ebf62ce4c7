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
//! keys, not ranges.
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
//! # Cost
//!
//! An uncontended acquire plus release allocates nothing in the steady state
//! (`tests/lock_table_alloc.rs` checks it): the maps hash with FxHash
//! (`rustc-hash`) instead of SipHash, and the first holder of a key and the
//! first key of a transaction are stored inline. It takes ~85 ns on the
//! 2-core development VM against a budget of 150 ns (`benches/locks.rs`,
//! numbers in `BENCHMARKS.md`).

use std::collections::VecDeque;
use std::fmt;

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

/// A lock granted to a waiting transaction, reported by
/// [`LockTable::release`] and [`LockTable::release_all`]: the caller resumes
/// the transaction's pending request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The transaction whose request was granted.
    pub txn: TxnId,
    /// The key it now holds.
    pub key: Bytes,
    /// The mode it asked for (for an upgrade, [`LockMode::Exclusive`]).
    pub mode: LockMode,
}

/// One edge of the waits-for graph ([`LockTable::waits_for`]): `waiter` is
/// queued on `key` and cannot be granted before `blocker` releases it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct WaitsFor {
    /// The key the waiter is queued on.
    pub key: Bytes,
    /// The waiting transaction.
    pub waiter: TxnId,
    /// A transaction in its way: a holder of a conflicting lock on `key`, or
    /// a waiter queued ahead of it with a conflicting request.
    pub blocker: TxnId,
}

/// Errors from the lock table. None of them changes the table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LockError {
    /// The key's wait queue is full. Retryable after a backoff.
    #[error("lock wait queue for key {key:?} is full ({limit} waiters)")]
    QueueFull {
        /// The contended key.
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
    /// The transaction already has a request queued on this key; it has to
    /// wait for that one's grant.
    #[error("transaction {txn} is already waiting for key {key:?}")]
    AlreadyWaiting {
        /// The transaction.
        txn: TxnId,
        /// The key.
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
        /// A key it waits for.
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
}

/// The lock state of one key. Exists only while the key has a holder; a
/// key without holders has no waiters either (the head would be granted).
#[derive(Debug)]
struct KeyLock {
    /// The mode every holder holds in.
    mode: LockMode,
    holders: InlineVec<Holder>,
    queue: VecDeque<Waiter>,
}

impl KeyLock {
    fn holds(&self, txn: TxnId) -> bool {
        self.holders.iter().any(|h| h.txn == txn)
    }

    /// Whether the head of the queue can be granted now.
    fn head_grantable(&self) -> bool {
        let Some(w) = self.queue.front() else {
            return false;
        };
        if w.upgrade {
            self.holders.len() == 1 && self.holds(w.txn)
        } else {
            self.holders.is_empty() || (self.mode == LockMode::Shared && w.mode == LockMode::Shared)
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

/// What the table knows about one transaction.
#[derive(Debug)]
struct TxnLocks {
    prio: Priority,
    held: InlineVec<Bytes>,
    waiting: Vec<Bytes>,
    prepared: bool,
    wounded: bool,
}

impl TxnLocks {
    fn new(prio: Priority) -> Self {
        TxnLocks {
            prio,
            held: InlineVec::new(),
            waiting: Vec::new(),
            prepared: false,
            wounded: false,
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
    /// Waiters queued over all keys.
    waiters: usize,
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
            waiters: 0,
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
        match self.request_once(txn, prio, key, mode, may_wait) {
            Err(LockError::TooManyWaiters { limit }) if self.wounds() => {
                // Make room by displacing a younger waiter elsewhere.
                let Some(victim) = self.displace_last_waiter(txn, prio, None, key) else {
                    return Err(LockError::TooManyWaiters { limit });
                };
                let again = self.request_once(txn, prio, key, mode, may_wait)?;
                Ok(again.map(|a| a.after_displacing(victim)))
            }
            other => other,
        }
    }

    /// Wounds the last waiter of a queue and removes it from that queue, to
    /// make room for `txn`: the last waiter of `key`'s queue if `only` is
    /// `Some(key)`, else the youngest last waiter of any queue but
    /// `except`'s. Only a waiter younger than `txn` (and not prepared) is
    /// displaced. Returns `None` if none qualifies, else `Some` of the
    /// victim if this newly wounded it (`Some(None)` if it was wounded
    /// already, and so already reported).
    fn displace_last_waiter(
        &mut self,
        txn: TxnId,
        prio: Priority,
        only: Option<&[u8]>,
        except: &[u8],
    ) -> Option<Option<TxnId>> {
        let younger = |w: &Waiter| prio.is_older(txn, w.prio, w.txn);
        let key = match only {
            Some(k) => {
                let last = self.keys.get(k)?.queue.back()?;
                if !younger(last) {
                    return None;
                }
                Bytes::copy_from_slice(k)
            }
            None => self
                .keys
                .iter()
                .filter(|(k, _)| k[..] != *except)
                .filter_map(|(k, l)| l.queue.back().map(|w| (k, w)))
                .filter(|(_, w)| younger(w))
                .max_by(|(_, a), (_, b)| (a.prio, a.txn).cmp(&(b.prio, b.txn)))
                .map(|(k, _)| k.clone())?,
        };
        let lock = self.keys.get_mut(&key[..]).expect("chosen above");
        let w = lock.queue.pop_back().expect("chosen above");
        self.waiters -= 1;
        let t = self
            .txns
            .get_mut(&w.txn)
            .expect("every waiter has a transaction record");
        assert!(!t.prepared, "a prepared transaction never waits");
        if let Some(i) = t.waiting.iter().position(|k| *k == key) {
            t.waiting.swap_remove(i);
        }
        let newly = !std::mem::replace(&mut t.wounded, true);
        self.debug_check_key(&key);
        Some(newly.then_some(w.txn))
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
    ) -> Result<Option<Acquire>, LockError> {
        self.check_requester(txn, prio)?;
        let wounds = self.wounds();
        let Some(lock) = self.keys.get_mut(&key[..]) else {
            // Uncontended: the key is free.
            self.keys.insert(
                key.clone(),
                KeyLock {
                    mode,
                    holders: InlineVec::one(Holder { txn, prio }),
                    queue: VecDeque::new(),
                },
            );
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
        if upgrade && pos == 0 && lock.holders.len() == 1 {
            lock.mode = LockMode::Exclusive;
            self.debug_check_key(key);
            return Ok(Some(Acquire::Granted));
        }
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
        if lock.queue.len() >= self.limits.max_waiters_per_key {
            // A full queue: take the place of its last waiter if younger,
            // then ask again (the queue now has room; with the last waiter
            // gone the request may even be granted at once).
            let displaced = if wounds {
                self.displace_last_waiter(txn, prio, Some(key), key)
            } else {
                None
            };
            let Some(victim) = displaced else {
                return Err(LockError::QueueFull {
                    key: key.clone(),
                    limit: self.limits.max_waiters_per_key,
                });
            };
            let again = self.request_once(txn, prio, key, mode, may_wait)?;
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
        for (blocker, blocker_prio) in lock.blockers(txn, mode, pos) {
            if !wounds || !prio.is_older(txn, blocker_prio, blocker) {
                continue;
            }
            let b = self
                .txns
                .get_mut(&blocker)
                .expect("every holder and waiter has a transaction record");
            if !b.prepared && !b.wounded {
                b.wounded = true;
                wounded.push(blocker);
            }
        }
        lock.queue.insert(
            pos,
            Waiter {
                txn,
                prio,
                mode,
                upgrade,
            },
        );
        self.waiters += 1;
        self.txns
            .entry(txn)
            .or_insert_with(|| TxnLocks::new(prio))
            .waiting
            .push(key.clone());
        self.debug_check_key(key);
        Ok(Some(Acquire::Waiting { wounded }))
    }

    /// Marks `txn` prepared (Spanner §4.2.1, two-phase commit): from now on
    /// it cannot be wounded, and older requesters wait for it.
    ///
    /// Fails with [`LockError::Wounded`] if it was wounded before this call:
    /// the wound won the race, and the participant must abort instead of
    /// logging the prepare. Also fails if `txn` holds no locks or still
    /// waits for one. Idempotent.
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
        t.prepared = true;
        Ok(())
    }

    /// Releases `txn`'s lock on `key` and withdraws its queued request on
    /// `key`, if any. Returns the locks this grants to waiters, in queue
    /// order.
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
        if t.held.is_empty() && t.waiting.is_empty() && !t.prepared && !t.wounded {
            self.txns.remove(&txn);
        }
        if let Some(key) = held.or(waited) {
            self.release_key(txn, key, &mut grants);
        }
        grants
    }

    /// Releases every lock of `txn` and withdraws all its queued requests,
    /// and forgets it (its prepared and wounded marks included). Called when
    /// the transaction commits or aborts, including after a wound. Returns
    /// the locks this grants to waiters, ordered by key, then queue order.
    pub fn release_all(&mut self, txn: TxnId) -> Vec<Grant> {
        let mut grants = Vec::new();
        let Some(t) = self.txns.remove(&txn) else {
            return grants;
        };
        for key in t.held.into_iter().chain(t.waiting) {
            self.release_key(txn, key, &mut grants);
        }
        if grants.len() > 1 {
            grants.sort_by(|a, b| a.key.cmp(&b.key));
        }
        grants
    }

    /// The waits-for graph (docs/design.md §4: who waits for whom): one edge
    /// per waiter and each transaction in its way, sorted
    /// by key, waiter, blocker.
    pub fn waits_for(&self) -> Vec<WaitsFor> {
        let mut edges = Vec::new();
        for (key, lock) in &self.keys {
            for (i, w) in lock.queue.iter().enumerate() {
                for (blocker, _) in lock.blockers(w.txn, w.mode, i) {
                    edges.push(WaitsFor {
                        key: key.clone(),
                        waiter: w.txn,
                        blocker,
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

    /// The holders of `key` and their mode, sorted by transaction id.
    pub fn holders(&self, key: &[u8]) -> Vec<(TxnId, LockMode)> {
        let Some(lock) = self.keys.get(key) else {
            return Vec::new();
        };
        let mut holders: Vec<_> = lock.holders.iter().map(|h| (h.txn, lock.mode)).collect();
        holders.sort();
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

    /// The number of waiters queued in the table.
    pub fn waiter_count(&self) -> usize {
        self.waiters
    }

    /// The number of keys with at least one holder.
    pub fn locked_key_count(&self) -> usize {
        self.keys.len()
    }

    /// Checks every invariant of the table and panics with a description of
    /// the first one broken. Linear in the table's size: for tests and the
    /// simulator's per-step checks. The invariants:
    ///
    /// - a key has holders, either one exclusive or any number of shared;
    ///   no transaction holds or waits twice on one key;
    /// - a key's queue head is never grantable (no lost wake-up);
    /// - wound-wait (Spanner §4.2.1): every unwounded waiter's blockers are
    ///   older than it, prepared, or wounded — so the waits-for graph of
    ///   live transactions is acyclic;
    /// - prepared transactions wait for nothing and are never wounded;
    /// - per-transaction and per-key records agree; bounds hold.
    pub fn assert_invariants(&self) {
        let mut waiters = 0;
        for (key, lock) in &self.keys {
            self.check_key(key, lock);
            waiters += lock.queue.len();
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
            if t.prepared {
                assert!(!t.wounded, "prepared txn {txn} is wounded");
                assert!(t.waiting.is_empty(), "prepared txn {txn} is waiting");
            }
        }
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
    /// grants what that frees, and forgets the key if nobody holds it.
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
        while lock.head_grantable() {
            let w = lock.queue.pop_front().expect("head_grantable saw a head");
            self.waiters -= 1;
            let t = self
                .txns
                .get_mut(&w.txn)
                .expect("every waiter has a transaction record");
            let i = t
                .waiting
                .iter()
                .position(|k| *k == key)
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
            });
        }
        if lock.holders.is_empty() {
            assert!(
                lock.queue.is_empty(),
                "key {key:?} has waiters but no holders after granting"
            );
            self.keys.remove(&key[..]);
        } else {
            self.debug_check_key(&key);
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
        let holders: Vec<&Holder> = lock.holders.iter().collect();
        assert!(
            !holders.is_empty(),
            "key {key:?} has a lock entry but no holder"
        );
        if lock.mode == LockMode::Exclusive {
            assert_eq!(
                holders.len(),
                1,
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
        }
        assert!(
            lock.queue.len() <= self.limits.max_waiters_per_key,
            "queue on {key:?} exceeds its bound"
        );
        assert!(
            !lock.head_grantable(),
            "the head waiter on {key:?} is grantable but waits (lost wake-up)"
        );
        for (i, w) in lock.queue.iter().enumerate() {
            assert!(
                lock.queue.iter().take(i).all(|o| o.txn != w.txn),
                "txn {} waits on {key:?} twice",
                w.txn
            );
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
            for (blocker, blocker_prio) in lock.blockers(w.txn, w.mode, i) {
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
}

#[cfg(test)]
mod tests;
