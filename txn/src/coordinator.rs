//! The two-phase-commit coordinator's protocol core (docs/design.md §5.1;
//! Spanner §4.2.1), as a sans-IO state machine of its own.
//!
//! The coordinator is the leader of one participant group. For each
//! cross-group transaction it asks every other participant to prepare,
//! collects the votes, and — only if all are yes — has its own group log
//! the commit record at `s`, which is at least every prepare timestamp (and,
//! being that record's Paxos write timestamp, above everything its group
//! assigned and above `TT.now().latest`). Once the record has applied
//! (after commit wait: `TT.after(s)`), the client is answered and every
//! participant is sent the decision; the decision is kept until each has
//! acknowledged it, then forgotten through the log. Any no vote, a vote not
//! in by the prepare deadline, or a wound aborts instead: presumed abort,
//! so an abort is never logged, only sent.
//!
//! This type decides; it does no I/O and holds no locks. Its caller (the
//! group replica) carries out each [`Action`]: sends, proposals, replies.
//! After a leader change the new leader rebuilds it from the group state's
//! kept decisions with [`Coordinator::resume_decided`]; undecided
//! transactions of the old term are simply gone, so their participants,
//! asking, are told "abort".

use std::collections::{BTreeMap, BTreeSet};

use meridian_participant::{Decision, TxnId};
use meridian_truetime::{Timestamp, TtInterval};

use crate::api::AbortReason;

/// Default time from a commit request to its prepare deadline: votes not in
/// by then abort the transaction, and prepare records logged later are
/// void at the participants.
pub const DEFAULT_PREPARE_TIMEOUT_NANOS: u64 = 5_000_000_000;

/// Default interval between resends of unanswered prepares and
/// unacknowledged decisions.
pub const DEFAULT_RESEND_INTERVAL_NANOS: u64 = 200_000_000;

/// Most acknowledged decisions forgotten by one log record.
pub const MAX_FORGET_BATCH: usize = 1_024;

pub use crate::api::{GroupId, Vote};

/// Something the coordinator's group replica must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Ask `group`'s leader to prepare `txn` (its part of the write and
    /// read sets is the caller's to attach), with this deadline.
    SendPrepare {
        /// The participant.
        group: GroupId,
        /// The transaction.
        txn: TxnId,
        /// Prepare records above this Paxos timestamp are void.
        deadline: Timestamp,
    },
    /// Propose the coordinator's commit record, at a Paxos write timestamp
    /// of at least `min_ts` (every prepare timestamp, and above
    /// `TT.now().latest` at the commit request's arrival).
    ProposeCommit {
        /// The transaction.
        txn: TxnId,
        /// The lowest commit timestamp allowed.
        min_ts: Timestamp,
        /// The other participants, named in the record.
        participants: Vec<GroupId>,
    },
    /// Tell `group` the outcome.
    SendDecision {
        /// The participant.
        group: GroupId,
        /// The transaction.
        txn: TxnId,
        /// The outcome.
        decision: Decision,
        /// The transaction's prepare deadline.
        deadline: Timestamp,
    },
    /// Log that these decisions need no longer be kept.
    ProposeForget {
        /// The transactions, every participant of which acknowledged.
        txns: Vec<TxnId>,
    },
    /// Answer the client: committed at `commit_ts` (commit wait is over).
    Committed {
        /// The transaction.
        txn: TxnId,
        /// Its commit timestamp.
        commit_ts: Timestamp,
    },
    /// Answer the client: aborted.
    Aborted {
        /// The transaction.
        txn: TxnId,
        /// Why.
        reason: AbortReason,
    },
}

/// Where one transaction stands.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for votes: the prepare timestamp of each yes so far.
    Preparing { votes: BTreeMap<GroupId, Timestamp> },
    /// Every vote was yes; the commit record is proposed, not yet applied.
    Committing,
    /// The commit record applied at `s`; decisions out, acknowledgements
    /// awaited from `unacked`.
    Committed {
        commit_ts: Timestamp,
        unacked: BTreeSet<GroupId>,
    },
}

#[derive(Clone, Debug)]
struct CoordTxn {
    participants: Vec<GroupId>,
    /// `TT.now().latest` at the commit request's arrival, plus one: the
    /// commit timestamp's floor (Spanner §4.1.2 start rule).
    min_ts: Timestamp,
    deadline: Timestamp,
    /// Local time of the next resend.
    resend_at: Timestamp,
    phase: Phase,
}

/// Aborted transactions whose participants have not all acknowledged the
/// abort: resent until they have (a participant that prepared must hear
/// it; one that did not will find its prepare void after the deadline).
#[derive(Clone, Debug)]
struct AbortNotice {
    unacked: BTreeSet<GroupId>,
    deadline: Timestamp,
    resend_at: Timestamp,
}

/// The coordinator's transactions. See the [module documentation](self).
#[derive(Debug)]
pub struct Coordinator {
    prepare_timeout_nanos: u64,
    resend_interval_nanos: u64,
    txns: BTreeMap<TxnId, CoordTxn>,
    aborts: BTreeMap<TxnId, AbortNotice>,
    /// Committed transactions every participant acknowledged, to forget.
    to_forget: Vec<TxnId>,
}

impl Default for Coordinator {
    fn default() -> Self {
        Coordinator::new(DEFAULT_PREPARE_TIMEOUT_NANOS, DEFAULT_RESEND_INTERVAL_NANOS)
    }
}

impl Coordinator {
    /// A coordinator whose votes are due `prepare_timeout_nanos` after the
    /// commit request and which resends every `resend_interval_nanos`.
    pub fn new(prepare_timeout_nanos: u64, resend_interval_nanos: u64) -> Coordinator {
        assert!(resend_interval_nanos > 0, "resends need an interval");
        Coordinator {
            prepare_timeout_nanos,
            resend_interval_nanos,
            txns: BTreeMap::new(),
            aborts: BTreeMap::new(),
            to_forget: Vec::new(),
        }
    }

    /// Starts two-phase commit of `txn` over `participants` (the groups
    /// other than the coordinator's) at `now`, the commit request's arrival.
    /// The coordinator's own locks must already be held.
    ///
    /// # Panics
    /// If `txn` is already being coordinated, or `participants` is empty
    /// (that is a one-phase commit).
    pub fn begin(
        &mut self,
        now: TtInterval,
        txn: TxnId,
        participants: Vec<GroupId>,
        out: &mut Vec<Action>,
    ) {
        assert!(!participants.is_empty(), "one group commits in one phase");
        assert!(
            !self.txns.contains_key(&txn),
            "txn {txn} is already coordinated"
        );
        let deadline = now.latest.saturating_add(self.prepare_timeout_nanos);
        for &group in &participants {
            out.push(Action::SendPrepare {
                group,
                txn,
                deadline,
            });
        }
        self.txns.insert(
            txn,
            CoordTxn {
                participants,
                min_ts: now.latest.next(),
                deadline,
                resend_at: now.midpoint().saturating_add(self.resend_interval_nanos),
                phase: Phase::Preparing {
                    votes: BTreeMap::new(),
                },
            },
        );
    }

    /// `group` voted on `txn`. Votes for transactions no longer preparing
    /// (duplicates, late ones) are ignored.
    pub fn on_vote(&mut self, txn: TxnId, group: GroupId, vote: Vote, out: &mut Vec<Action>) {
        let Some(t) = self.txns.get_mut(&txn) else {
            return;
        };
        if !t.participants.contains(&group) {
            return;
        }
        let Phase::Preparing { votes } = &mut t.phase else {
            return;
        };
        match vote {
            Vote::No(reason) => self.abort(txn, reason, out),
            Vote::Yes(prepare_ts) => {
                votes.insert(group, prepare_ts);
                if votes.len() == t.participants.len() {
                    // Spanner §4.2.1: s ≥ every prepare timestamp.
                    let max_prepare = votes.values().copied().max().expect("not empty");
                    out.push(Action::ProposeCommit {
                        txn,
                        min_ts: t.min_ts.max(max_prepare),
                        participants: t.participants.clone(),
                    });
                    t.phase = Phase::Committing;
                }
            }
        }
    }

    /// The commit record of `txn` could not be proposed (queue full, leader
    /// lost): abort, as nothing was logged.
    pub fn on_commit_not_proposed(
        &mut self,
        txn: TxnId,
        reason: AbortReason,
        out: &mut Vec<Action>,
    ) {
        if matches!(
            self.txns.get(&txn).map(|t| &t.phase),
            Some(Phase::Committing)
        ) {
            self.abort(txn, reason, out);
        }
    }

    /// The commit record of `txn` applied at `commit_ts`, after commit wait:
    /// answer the client and tell every participant.
    pub fn on_commit_applied(&mut self, txn: TxnId, commit_ts: Timestamp, out: &mut Vec<Action>) {
        let Some(t) = self.txns.get_mut(&txn) else {
            return;
        };
        if !matches!(t.phase, Phase::Committing) {
            return;
        }
        assert!(
            commit_ts >= t.min_ts,
            "txn {txn} committed at {commit_ts:?}, below its floor {:?}",
            t.min_ts
        );
        out.push(Action::Committed { txn, commit_ts });
        for &group in &t.participants {
            out.push(Action::SendDecision {
                group,
                txn,
                decision: Decision::Commit(commit_ts),
                deadline: t.deadline,
            });
        }
        t.phase = Phase::Committed {
            commit_ts,
            unacked: t.participants.iter().copied().collect(),
        };
    }

    /// `group` has logged the outcome of `txn`.
    pub fn on_ack(&mut self, txn: TxnId, group: GroupId, out: &mut Vec<Action>) {
        if let Some(a) = self.aborts.get_mut(&txn) {
            a.unacked.remove(&group);
            if a.unacked.is_empty() {
                self.aborts.remove(&txn);
            }
            return;
        }
        let Some(t) = self.txns.get_mut(&txn) else {
            return;
        };
        let Phase::Committed { unacked, .. } = &mut t.phase else {
            return;
        };
        unacked.remove(&group);
        if unacked.is_empty() {
            self.txns.remove(&txn);
            self.to_forget.push(txn);
            if self.to_forget.len() >= MAX_FORGET_BATCH {
                self.flush_forget(out);
            }
        }
    }

    /// Wound-wait across groups: an older transaction waits for `txn`
    /// somewhere. Aborts it if it is still collecting votes; a decided
    /// transaction finishes on its own. Returns whether it was aborted.
    pub fn wound(&mut self, txn: TxnId, out: &mut Vec<Action>) -> bool {
        if matches!(
            self.txns.get(&txn).map(|t| &t.phase),
            Some(Phase::Preparing { .. })
        ) {
            self.abort(txn, AbortReason::Wounded, out);
            return true;
        }
        false
    }

    /// Timers: resends what is unanswered, aborts transactions whose votes
    /// missed the deadline, and forgets acknowledged decisions.
    pub fn tick(&mut self, now: TtInterval, out: &mut Vec<Action>) {
        let local = now.midpoint();
        let next = local.saturating_add(self.resend_interval_nanos);
        let mut late = Vec::new();
        for (&txn, t) in &mut self.txns {
            if let Phase::Preparing { votes } = &t.phase {
                // Past the deadline on every clock's reading: the votes
                // still missing can no longer be valid anyway.
                if now.after(t.deadline) {
                    late.push(txn);
                    continue;
                }
                if local >= t.resend_at {
                    t.resend_at = next;
                    for &group in t.participants.iter().filter(|g| !votes.contains_key(g)) {
                        out.push(Action::SendPrepare {
                            group,
                            txn,
                            deadline: t.deadline,
                        });
                    }
                }
            } else if let Phase::Committed { commit_ts, unacked } = &t.phase {
                if local >= t.resend_at {
                    t.resend_at = next;
                    for &group in unacked {
                        out.push(Action::SendDecision {
                            group,
                            txn,
                            decision: Decision::Commit(*commit_ts),
                            deadline: t.deadline,
                        });
                    }
                }
            }
        }
        for txn in late {
            self.abort(txn, AbortReason::Inactive, out);
        }
        for (&txn, a) in &mut self.aborts {
            if local >= a.resend_at {
                a.resend_at = next;
                for &group in &a.unacked {
                    out.push(Action::SendDecision {
                        group,
                        txn,
                        decision: Decision::Abort,
                        deadline: a.deadline,
                    });
                }
            }
        }
        self.flush_forget(out);
    }

    /// After a leader change: resumes sending the kept commit decisions of
    /// the group state (each `(txn, commit_ts, participants, deadline)`).
    pub fn resume_decided(
        &mut self,
        now: TtInterval,
        decided: impl IntoIterator<Item = (TxnId, Timestamp, Vec<GroupId>, Timestamp)>,
        out: &mut Vec<Action>,
    ) {
        for (txn, commit_ts, participants, deadline) in decided {
            for &group in &participants {
                out.push(Action::SendDecision {
                    group,
                    txn,
                    decision: Decision::Commit(commit_ts),
                    deadline,
                });
            }
            self.txns.insert(
                txn,
                CoordTxn {
                    min_ts: commit_ts,
                    deadline,
                    resend_at: now.midpoint().saturating_add(self.resend_interval_nanos),
                    phase: Phase::Committed {
                        commit_ts,
                        unacked: participants.iter().copied().collect(),
                    },
                    participants,
                },
            );
        }
    }

    /// What this coordinator knows of `txn`: `Some(Commit(s))` once its
    /// record applied, `None` while undecided or unknown here (the caller
    /// consults the log: no record means abort).
    pub fn decision(&self, txn: TxnId) -> Option<Decision> {
        match self.txns.get(&txn).map(|t| &t.phase) {
            Some(Phase::Committed { commit_ts, .. }) => Some(Decision::Commit(*commit_ts)),
            _ if self.aborts.contains_key(&txn) => Some(Decision::Abort),
            _ => None,
        }
    }

    /// Whether `txn`'s commit record may be in the log: it is proposed or
    /// applied. Such a transaction can no longer be aborted.
    pub fn is_committing(&self, txn: TxnId) -> bool {
        matches!(
            self.txns.get(&txn).map(|t| &t.phase),
            Some(Phase::Committing | Phase::Committed { .. })
        )
    }

    /// Whether `txn` is being coordinated (any phase) or its abort is
    /// still being sent.
    pub fn contains(&self, txn: TxnId) -> bool {
        self.txns.contains_key(&txn) || self.aborts.contains_key(&txn)
    }

    /// Transactions being coordinated (any phase), plus aborts not yet
    /// acknowledged by every participant.
    pub fn len(&self) -> usize {
        self.txns.len() + self.aborts.len()
    }

    /// Whether nothing is being coordinated.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn abort(&mut self, txn: TxnId, reason: AbortReason, out: &mut Vec<Action>) {
        let t = self.txns.remove(&txn).expect("caller checked");
        assert!(
            matches!(t.phase, Phase::Preparing { .. } | Phase::Committing),
            "txn {txn} aborted after its commit applied"
        );
        out.push(Action::Aborted { txn, reason });
        for &group in &t.participants {
            out.push(Action::SendDecision {
                group,
                txn,
                decision: Decision::Abort,
                deadline: t.deadline,
            });
        }
        self.aborts.insert(
            txn,
            AbortNotice {
                unacked: t.participants.into_iter().collect(),
                deadline: t.deadline,
                resend_at: t.resend_at,
            },
        );
    }

    fn flush_forget(&mut self, out: &mut Vec<Action>) {
        if !self.to_forget.is_empty() {
            out.push(Action::ProposeForget {
                txns: std::mem::take(&mut self.to_forget),
            });
        }
    }
}

#[cfg(test)]
mod tests;
