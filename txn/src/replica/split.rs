//! Online range splits at a group replica (docs/design.md §9): the
//! [`Request::Split`](crate::Request::Split) path at the leader, the
//! child's seed built where the split applies, the refusals of keys outside
//! the range, and the forwarding of decisions for transactions that moved
//! to the child.

use bytes::Bytes;
use meridian_participant::{Command, Decision, GroupState, RangeDescriptor, TxnId};
use meridian_paxos::{Entry, Inheritance, ProposalId, Replica, Slot, Snapshot};
use meridian_truetime::{Timestamp, TtInterval};
use rand::RngCore;

use super::{GroupReplica, Output, bug};
use crate::api::{AbortReason, GroupId, GroupMessage, ReadOp, RequestId, Response, TxnError};
use crate::config::Config;
use crate::leader::{CommitKind, Op, reply_all};

/// What a replica of a new group created by a split starts from
/// (docs/design.md §9): emitted as [`Output::SplitChild`] by every replica
/// of the parent group when it applies the split, and handed to
/// [`GroupReplica::from_split`] on the same node.
///
/// The state part (the snapshot) is the same at every replica of the
/// parent; the inheritance (promise, lease grant, leadership) and the
/// timestamp floor are this node's parent replica's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildSeed {
    /// The new group's id.
    pub group: GroupId,
    /// The group it split from.
    pub parent: GroupId,
    /// The range the new group serves.
    pub descriptor: RangeDescriptor,
    /// The child's initial state, as a Paxos snapshot at the split entry's
    /// slot, ballot and timestamp, with the parent's membership: its
    /// [`GroupState`] encoding holds the right half's versions (every one
    /// above the GC horizon, the newest at or below it per key, and the
    /// horizon), prepared transactions, commit records and decisions.
    pub snapshot: Snapshot,
    /// This node's parent replica's ballot, promise and lease grant, and,
    /// at the parent leader that proposed the split, its leadership.
    pub inheritance: Inheritance,
    /// At the parent leader: the highest timestamp at which it served a
    /// lock-free read (its timestamp cache), which every write of the child
    /// must exceed (rule `split-child-safe-time-from-zero`). Zero elsewhere.
    pub ts_floor: Timestamp,
}

impl ChildSeed {
    /// The first [`Slot`] of the child's own log.
    pub fn first_slot(&self) -> Slot {
        self.snapshot.last_slot + 1
    }

    /// Whether this is a blank seed: the node learned of the split from a
    /// snapshot of the parent, not by applying it, and has none of the
    /// child's state. The replica [`GroupReplica::from_split`] makes of it
    /// starts empty and outside the voters (it never campaigns), and
    /// catches up by snapshot from the child's leader, which brings the
    /// membership.
    pub fn is_blank(&self) -> bool {
        self.snapshot.last_slot == 0
    }
}

/// A split this leader proposed, until its slot applies (or the term ends).
#[derive(Debug)]
pub(super) struct SplitFlight {
    /// The proposal, until it is placed.
    pub(super) proposal: Option<ProposalId>,
    /// Its slot once placed.
    pub(super) slot: Option<Slot>,
    /// Requests waiting for the answer.
    pub(super) targets: Vec<RequestId>,
    /// What the group keeps.
    pub(super) left: RangeDescriptor,
    /// What the child gets.
    pub(super) right: RangeDescriptor,
}

impl GroupReplica {
    /// A replica of the new group `seed.group`, on the node whose parent
    /// replica emitted `seed` ([`Output::SplitChild`]). `cfg` is the
    /// child's configuration (its `group` is `seed.group`, its Paxos `id`
    /// the node's); the membership comes from the seed. Call
    /// [`start`](Self::start) next: its first [`Output::Persist`] holds the
    /// child's initial state, which the driver must make durable before
    /// the child answers anything.
    pub fn from_split(cfg: Config, seed: ChildSeed, rng: Box<dyn RngCore + Send>) -> GroupReplica {
        assert_eq!(cfg.group, seed.group, "a child's config names the child");
        let seed_blank = seed.is_blank();
        let mut cfg = cfg;
        cfg.descriptor = seed.descriptor.clone();
        cfg.validate();
        let parent = seed.parent;
        let paxos = if seed_blank {
            // Not a voter until the child's snapshot arrives (its
            // membership comes with it): a blank replica never campaigns,
            // so blank replicas cannot elect one another over an empty log.
            // It never voted in the child, so it claims no lease grant;
            // every candidate is a replica that holds the child's state and
            // reports its own. Its first persist records the empty start.
            let snapshot = Snapshot {
                membership: meridian_paxos::Membership::default(),
                ..Snapshot::default()
            };
            let nothing = Inheritance {
                promised: meridian_paxos::Ballot::ZERO,
                lease_granted_until: Timestamp::ZERO,
                leader: None,
                lead: None,
            };
            Replica::from_inheritance(cfg.paxos.clone(), snapshot, nothing, rng)
        } else {
            Replica::from_inheritance(cfg.paxos.clone(), seed.snapshot, seed.inheritance, rng)
        };
        let mut r = GroupReplica::with_paxos(cfg, paxos);
        r.inherited_floor = seed.ts_floor;
        r.from_split = !seed_blank;
        r.parent = Some(parent);
        r
    }

    /// Refuses `key` unless this replica serves it: inside the applied
    /// descriptor, and, at a leader with a split in flight, inside the half
    /// it keeps (docs/design.md §9, rule `stale-descriptor-served`).
    pub(super) fn check_serves(&self, key: &[u8]) -> Result<(), TxnError> {
        if !self.state.descriptor().contains(key) {
            return Err(TxnError::OutsideRange {
                descriptor: self.state.descriptor().clone(),
            });
        }
        if let Some(f) = self.split_flight.as_ref().filter(|f| f.right.contains(key)) {
            return Err(TxnError::OutsideRange {
                descriptor: f.left.clone(),
            });
        }
        Ok(())
    }

    /// [`check_serves`](Self::check_serves) for the span `[start, end)`.
    pub(super) fn check_serves_span(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
    ) -> Result<(), TxnError> {
        if !self.state.descriptor().contains_span(start, end) {
            return Err(TxnError::OutsideRange {
                descriptor: self.state.descriptor().clone(),
            });
        }
        if let Some(f) = &self.split_flight {
            let empty = end.is_some_and(|e| e <= start);
            let reaches = end.is_none_or(|e| e > &f.right.start[..]);
            if !empty && reaches {
                return Err(TxnError::OutsideRange {
                    descriptor: f.left.clone(),
                });
            }
        }
        Ok(())
    }

    /// The check for the reads of a lock-free request.
    pub(super) fn check_serves_reads(&self, reads: &[ReadOp]) -> Result<(), TxnError> {
        if self.bug(bug::STALE_DESCRIPTOR_SERVED) {
            // The bug: lock-free reads are served whatever the range.
            return Ok(());
        }
        for r in reads {
            match r {
                ReadOp::Get(key) => self.check_serves(key)?,
                ReadOp::Scan { start, end, .. } => self.check_serves_span(start, end.as_deref())?,
            }
        }
        Ok(())
    }

    /// `Request::Split` at the leader: validate, then propose the split
    /// record; answered when its slot applies.
    pub(super) fn start_split(
        &mut self,
        now: TtInterval,
        id: RequestId,
        key: Bytes,
        child: GroupId,
        out: &mut Vec<Output>,
    ) -> Result<(), TxnError> {
        crate::api::check_key(&key)?;
        if child == self.cfg.group || child == 0 || child > crate::MAX_GROUP_ID {
            return Err(crate::api::InvalidRequest::BadParticipant { group: child }.into());
        }
        self.serving(now, true)?;
        if let Some(f) = &mut self.split_flight {
            if f.right.group == child && f.right.start == key {
                // The same request again: answer both.
                f.targets.push(id);
                return Ok(());
            }
            return Err(TxnError::RangeChangeInProgress);
        }
        let descriptor = self.state.descriptor().clone();
        if let Some(right) = self
            .state
            .children()
            .iter()
            .find(|d| d.group == child && d.start == key)
        {
            // This split applied already (its answer was lost): the same
            // answer, with the range kept as it is now.
            let reply = Ok(Response::Split {
                left: descriptor,
                right: right.clone(),
            });
            out.push(Output::Reply { id, reply });
            return Ok(());
        }
        let Some((left, right)) = descriptor.split_at(&key, child) else {
            return Err(TxnError::BadSplitKey { key, descriptor });
        };
        let cmd = Command::Split {
            key,
            child,
            generation: left.generation,
        };
        // A commit record already proposed and not yet placed in the log
        // may be placed behind the split (one waiting for a timestamp ahead
        // of the clock lets later proposals go first): if its transaction
        // holds a lock in the right half, which only this leader's locks
        // protect, it would apply after the split, when the child may
        // already have written what it read. The split waits for it
        // (retryable; docs/design.md §9).
        if self
            .commits
            .iter()
            .any(|(txn, c)| c.placed.is_none() && self.holds_lock_in(*txn, &right))
        {
            return Err(TxnError::LeaderNotReady);
        }
        let mut pout = Vec::new();
        let proposal = self
            .paxos
            .propose(now, cmd.encode(), &mut pout)
            .map_err(|_| TxnError::LeaderNotReady)?;
        self.split_flight = Some(SplitFlight {
            proposal: Some(proposal),
            slot: None,
            targets: vec![id],
            left,
            right,
        });
        self.absorb(pout, out);
        Ok(())
    }

    /// Whether a prepare record chosen at `slot` naming `writes`, `reads`
    /// and `ranges` applies after a split that gives away one of its keys —
    /// one already applied here, or this leader's split in flight placed
    /// below `slot`: then the record is void when it applies, and its vote
    /// must be no (docs/design.md §9).
    pub(super) fn prepare_behind_split(
        &self,
        slot: Slot,
        writes: &[meridian_participant::Write],
        reads: &[Bytes],
        ranges: &[(Bytes, Option<Bytes>)],
    ) -> bool {
        // A split already applied here sits at a slot below `slot` (this
        // record is chosen, not yet applied): the record applies under the
        // applied descriptor, so a key outside it makes the record void.
        // The split may have been this leader's (applied, so no longer in
        // flight) or an earlier leader's.
        let d = self.state.descriptor();
        if !writes.iter().all(|w| d.contains(&w.key))
            || !reads.iter().all(|k| d.contains(k))
            || !ranges.iter().all(|(s, e)| d.contains_span(s, e.as_deref()))
        {
            return true;
        }
        let Some(f) = &self.split_flight else {
            return false;
        };
        if f.slot.is_none_or(|s| s > slot) {
            return false;
        }
        writes.iter().any(|w| f.right.contains(&w.key))
            || reads.iter().any(|k| f.right.contains(k))
            || ranges.iter().any(|(s, e)| {
                e.as_ref().is_none_or(|e| e > &f.right.start) && e.as_ref().is_none_or(|e| e > s)
            })
    }

    /// The split record proposed as `id` was placed at `slot`, or dropped.
    pub(super) fn split_placed(
        &mut self,
        id: ProposalId,
        slot: Option<Slot>,
        out: &mut Vec<Output>,
    ) -> bool {
        let Some(f) = self
            .split_flight
            .as_mut()
            .filter(|f| f.proposal == Some(id))
        else {
            return false;
        };
        f.proposal = None;
        match slot {
            Some(s) => f.slot = Some(s),
            None => {
                let f = self.split_flight.take().expect("checked above");
                reply_all(&f.targets, &Err(TxnError::LeaderNotReady), out);
            }
        }
        true
    }

    /// The term ends: an unanswered split request is told to retry (the
    /// record may still apply; the range then shows it).
    pub(super) fn split_term_ended(&mut self, out: &mut Vec<Output>) {
        if let Some(f) = self.split_flight.take() {
            let reply = Err(TxnError::NotLeader {
                leader: self.paxos.leader(),
            });
            reply_all(&f.targets, &reply, out);
        }
    }

    /// The entry at `slot` applied: a split in flight there is answered.
    pub(super) fn split_slot_applied(&mut self, slot: Slot, out: &mut Vec<Output>) {
        if self.split_flight.as_ref().and_then(|f| f.slot) != Some(slot) {
            return;
        }
        let f = self.split_flight.take().expect("checked above");
        let d = self.state.descriptor();
        let reply = if d.generation == f.left.generation && d.end == f.left.end {
            Ok(Response::Split {
                left: f.left,
                right: f.right,
            })
        } else {
            Err(TxnError::RangeChangeInProgress)
        };
        reply_all(&f.targets, &reply, out);
    }

    /// After a snapshot replaced the state: a child split off in the
    /// entries the snapshot covers was never created here from its seed.
    /// Emit a blank seed for each child the old state did not have
    /// (docs/design.md §9); a driver that has the child ignores it.
    pub(super) fn children_from_snapshot(&self, before: &[RangeDescriptor], out: &mut Vec<Output>) {
        for d in self.state.children() {
            if before.iter().any(|b| b.group == d.group) {
                continue;
            }
            out.push(Output::SplitChild(Box::new(ChildSeed {
                group: d.group,
                parent: self.cfg.group,
                descriptor: d.clone(),
                snapshot: Snapshot {
                    membership: self.paxos.membership().clone(),
                    ..Snapshot::default()
                },
                inheritance: Inheritance {
                    promised: meridian_paxos::Ballot::ZERO,
                    lease_granted_until: Timestamp::ZERO,
                    leader: None,
                    lead: None,
                },
                ts_floor: Timestamp::ZERO,
            })));
        }
    }

    /// The split in entry `e` applied here (docs/design.md §9): emit the
    /// child's seed; at the leader, wound the unprepared transactions that
    /// touch the right half and let go of the moved prepared ones.
    pub(super) fn on_split_applied(
        &mut self,
        now: TtInterval,
        e: &Entry,
        right: &RangeDescriptor,
        out: &mut Vec<Output>,
    ) {
        #[allow(unused_mut)]
        let mut child_state: GroupState = self
            .state
            .take_split_off()
            .expect("an applied split leaves the child's state");
        #[cfg(feature = "planted-bugs")]
        if self.bug(bug::SPLIT_DROPS_PREPARED) {
            // The bug: the right half's prepared transactions are left
            // behind (and lost).
            child_state.drop_prepared();
        }
        let floor_bug = self.bug(bug::SPLIT_CHILD_SAFE_TIME_FROM_ZERO);
        let mut inheritance = self.paxos.inheritance(e.ballot, e.ts);
        let mut ts_floor = Timestamp::ZERO;
        if inheritance.lead.is_some() {
            ts_floor = self.ts_cache.max_recorded().max(self.inherited_floor);
        }
        if floor_bug {
            // The bug: the child's timestamps start from zero, not from the
            // split's nor from what the parent leader assigned and served.
            ts_floor = Timestamp::ZERO;
            if let Some(lead) = inheritance.lead.as_mut() {
                lead.last_ts = Timestamp::ZERO;
                lead.ts_floor = Timestamp::ZERO;
            }
        }
        let snapshot = Snapshot {
            last_slot: e.slot,
            last_ballot: e.ballot,
            last_ts: if floor_bug { Timestamp::ZERO } else { e.ts },
            membership: self.paxos.membership().clone(),
            data: child_state.encode(),
        };
        out.push(Output::SplitChild(Box::new(ChildSeed {
            group: right.group,
            parent: self.cfg.group,
            descriptor: right.clone(),
            snapshot,
            inheritance,
            ts_floor,
        })));
        self.wound_right_half(now, right, out);
    }

    /// At the leader, after a split: every unprepared transaction that
    /// holds or waits for a lock in the right half, read it optimistically,
    /// or holds a range lock reaching into it is wounded (retryable); a
    /// prepared one that moved whole to the child ends here (its locks are
    /// the child leader's now).
    fn wound_right_half(
        &mut self,
        now: TtInterval,
        right: &RangeDescriptor,
        out: &mut Vec<Output>,
    ) {
        let Some(l) = self.leader.as_mut() else {
            return;
        };
        let reaches = |start: &[u8], end: Option<&[u8]>| {
            let empty = end.is_some_and(|e| e <= start);
            !empty && end.is_none_or(|e| e > &right.start[..])
        };
        let mut victims = Vec::new();
        let mut moved = Vec::new();
        let mut coordinated = Vec::new();
        for (txn, t) in &l.txns {
            let locks = l.locks.locks_held_by(*txn);
            let ranges = l.locks.ranges_held_by(*txn);
            let holds = locks.iter().any(|(k, _)| right.contains(k))
                || ranges.iter().any(|(s, e)| reaches(s, e.as_deref()));
            if matches!(t.op, Op::Committing) {
                if self.state.prepared_txn(*txn).is_none() && self.state.moved_txn(*txn).is_some() {
                    moved.push(*txn);
                } else if holds && self.coord.contains(*txn) {
                    // This group coordinates it and it is still collecting
                    // votes (a commit record proposed before the split
                    // applied before it; one proposed after it was refused
                    // while the split was in flight): its locks on the right
                    // half are this leader's alone, not the child's, so it
                    // aborts rather than commit with reads the child may
                    // already have overwritten.
                    coordinated.push(*txn);
                }
                continue;
            }
            let touches = holds
                || t.reads.iter().any(|r| right.contains(&r.key))
                || t.scans.iter().any(|s| reaches(&s.start, s.end.as_deref()))
                || match &t.op {
                    Op::Reading { keys, .. } => keys.iter().any(|k| right.contains(k)),
                    Op::Scanning { start, end, .. } => reaches(start, end.as_deref()),
                    Op::Locking { writes, kind, .. } => {
                        writes.iter().any(|w| right.contains(&w.key))
                            || matches!(kind, CommitKind::Participant { .. })
                                && self.state.moved_txn(*txn).is_some()
                    }
                    Op::Idle | Op::Committing => false,
                };
            if touches {
                victims.push(*txn);
            }
        }
        for txn in victims {
            l.abort(txn, AbortReason::Wounded, &mut self.resume, out);
        }
        for txn in moved {
            l.finish(txn, &mut self.resume);
        }
        let mut actions = Vec::new();
        for txn in coordinated {
            self.coord.wound(txn, &mut actions);
        }
        self.run_actions(now, actions, out);
    }

    /// Whether `txn` holds a lock (a key or a range) in the right half of
    /// this leader's split in flight: then its commit record is not
    /// proposed (docs/design.md §9), since it would apply after the split
    /// with reads the child does not protect.
    pub(super) fn holds_right_of_split(&self, txn: TxnId) -> bool {
        self.split_flight
            .as_ref()
            .is_some_and(|f| self.holds_lock_in(txn, &f.right))
    }

    /// Whether `txn` holds a lock (a key or a range) at this leader
    /// reaching into `right`.
    fn holds_lock_in(&self, txn: TxnId, right: &RangeDescriptor) -> bool {
        let Some(l) = &self.leader else {
            return false;
        };
        l.locks
            .locks_held_by(txn)
            .iter()
            .any(|(k, _)| right.contains(k))
            || l.locks.ranges_held_by(txn).iter().any(|(s, e)| {
                let empty = e.as_ref().is_some_and(|e| e <= s);
                !empty && e.as_ref().is_none_or(|e| e > &right.start)
            })
    }

    /// A decision reached this group for `txn`, whose keys (some or all)
    /// moved to `child` at a split: forward it, and acknowledge it to the
    /// coordinator only once the child has acknowledged it (it applied it
    /// durably) and, for a transaction with keys left here too, this
    /// group's own decision record has applied. Returns whether the
    /// decision was taken care of (nothing left for the local path).
    pub(super) fn forward_decision(
        &mut self,
        txn: TxnId,
        coordinator: GroupId,
        decision: Decision,
        deadline: Timestamp,
        out: &mut Vec<Output>,
    ) -> bool {
        if self.bug(bug::SPLIT_ACK_BEFORE_CHILD_DECIDES) {
            // The bug: the moved transaction is taken for one unknown here,
            // and acknowledged at once.
            return false;
        }
        let Some(m) = self.state.moved_txn(txn) else {
            return false;
        };
        let local_done =
            self.state.decided(txn).is_some() || self.state.prepared_txn(txn).is_none();
        if local_done && self.child_acks.contains(&txn) {
            out.push(Output::ToGroup {
                group: coordinator,
                msg: GroupMessage::Ack {
                    txn,
                    from: self.cfg.group,
                },
            });
            return true;
        }
        out.push(Output::ToGroup {
            group: m.child,
            msg: GroupMessage::Decide {
                txn,
                coordinator: self.cfg.group,
                decision,
                deadline,
            },
        });
        // Keys left here: the local path logs the decision (and its ack
        // waits, as above, for the child's).
        local_done
    }

    /// An acknowledgement from a child this group forwarded a decision to.
    /// Returns whether it was one.
    pub(super) fn child_ack(&mut self, txn: TxnId, from: GroupId) -> bool {
        if self.state.moved_txn(txn).is_some_and(|m| m.child == from) {
            self.child_acks.insert(txn);
            return true;
        }
        false
    }
}
