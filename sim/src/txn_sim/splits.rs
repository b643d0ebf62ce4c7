//! Online range splits in the cluster layer (docs/design.md §9,
//! docs/simulator.md): the simulator plays the operator and the split
//! policy. Manual splits at random keys, and automatic ones when a range
//! holds more written keys than a small threshold, are asked of the
//! parent group's leader (`Request::Split`, a child id the simulator
//! allocates and never reuses) while faults are on, so they meet two-phase
//! commits, scans, lock-free reads, crashes, pauses and partitions. The
//! schedule opens the split's windows: keys of transactions prepared at the
//! leader are favoured as split keys (decisions then reach the parent for
//! moved transactions; prepares are in flight across the split), the
//! parent's leader is crashed or paused right after it applies a split on
//! some seeds, and clients keep their range caches until a refusal
//! (`OutsideRange`) makes them refresh.

use bytes::Bytes;
use meridian_paxos::Role;
use meridian_truetime::Timestamp;
use meridian_txn::{GroupId, Input, ReadAt, ReadOp, Request};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::{Event, HAND_OVER_QUIET, MS, Sim};
use crate::trace::{Party, TraceKind};

/// The highest group id a seed allocates: at most this many groups ever
/// (each split costs three replicas' heartbeats and closed timestamps).
const MAX_GROUP_ID: GroupId = 12;
/// Per fault tick: probability of a manual split, drawn per seed.
const MANUAL_SPLITS: [f64; 3] = [0.03, 0.06, 0.12];
/// A range splits automatically once it holds more written keys than
/// this, drawn per seed (`None`: no automatic splits).
const AUTO_SPLIT_KEYS: [Option<usize>; 4] = [None, Some(2), Some(3), Some(4)];
/// Per seed: probability that a parent's leader is crashed or paused
/// right after it applies a split.
const FAIL_AFTER_SPLIT: [f64; 3] = [0.2, 0.5, 0.8];
/// When the pause comes after the split applied at the leader: once
/// heartbeats have told the followers.
const PAUSE_AFTER_SPLIT_DELAY: (u64, u64) = (20 * MS, 80 * MS);
/// Shares of those failures that crash the node, and that pause it (the
/// rest cut the new child replica off from its group, so another child
/// replica campaigns while it holds the inherited lease).
const CRASH_AFTER_SPLIT: f64 = 0.3;
const PAUSE_AFTER_SPLIT: f64 = 0.15;
/// Share of those failures that pause the leader the moment a follower
/// has made its child replica (which holds the inherited lease grant
/// only, the child's leader having renewed nothing with it yet): the
/// follower campaigns for the child while the paused leader still holds
/// the inherited lease, the window of `split-child-lease-overlap`. The
/// rest cut the new child replica off from its group.
const PAUSE_WHEN_FOLLOWERS_KNOW: f64 = 0.45;
/// How long that cut lasts.
const CHILD_CUT_FOR: u64 = 1_000 * MS;
/// Commit-record retention of seeds that fail child leaders as moved
/// decisions arrive.
const SHORT_RETENTION: u64 = 400 * MS;
/// How soon after applying a split the parent's leader crashes.
const FAIL_AFTER_SPLIT_WITHIN: u64 = 3 * MS;
/// No new split is asked for within this of the last request.
const SPLIT_COOLDOWN: u64 = 200 * MS;
/// Reads ahead of the clock remembered as split keys, at most, and for how
/// long (ns): a split at such a key right after the read opens the window
/// of rule `split-child-safe-time-from-zero` (the child's writes must land
/// above reads the parent served ahead of its clock).
const RECENT_READS: usize = 16;
const RECENT_READ_FOR: u64 = 40 * MS;
/// Share of fault ticks with such a read on which it becomes the split.
const SPLIT_AFTER_READ: f64 = 0.7;
/// Per seed with splits (drawn from the seed, out of every
/// [`SPLIT_READ_LEAD_OF`]): the replicas' L (`[reads] lead_ms`), lifted so
/// lock-free reads far ahead of the clock are served at once, and how
/// many seeds of [`SPLIT_READ_LEAD_OF`] lift it. A split at a key just read
/// that far ahead leaves the child a long window in which its clock is
/// still below the read (rule `split-child-safe-time-from-zero`: the
/// child's writes of the key must land above it anyway).
const SPLIT_READ_LEAD: u64 = 200 * MS;
const SPLIT_READ_LEAD_SEEDS: u64 = 7;
const SPLIT_READ_LEAD_OF: u64 = 8;
/// On those seeds, while faults are on: the share of a client's tasks that
/// read one key at a timestamp ahead of its clock, and the least lead of such a
/// read (a share of L, per thousand: far enough ahead that the split and
/// the child's write come before the clock reaches it).
const AIMED_READ_SHARE: f64 = 0.5;
const AIMED_READ_MIN_LEAD_PER_MILLE: u64 = 400;
/// After a split at a key just read ahead of the clock applies at the
/// parent's leader: for how long, and for how many transactions, clients
/// write that key (at the child, once the parent refuses it).
const CHASE_FOR: u64 = 200 * MS;
const CHASE_WRITES: u32 = 8;
/// On those seeds, this many more child ids, for splits at keys read
/// ahead alone (splits of other kinds stop at [`MAX_GROUP_ID`]).
const EXTRA_IDS_ON_READ_LEAD_SEEDS: GroupId = 4;
/// On those seeds, a read ahead stays a split key for this share of L
/// (per thousand): the split and the child's writes must come before the
/// clock reaches the read.
const READ_LEAD_RECENT_PER_MILLE: u64 = 300;
/// Per seed: probability that a child's leader is cut off from its group
/// and crashed as a commit decision for a moved, undecided transaction
/// reaches it (its decision record is then not chosen).
const FAIL_AT_MOVED_DECISION: [f64; 3] = [0.0, 0.6, 1.0];
/// How soon after that delivery the child's leader crashes.
const FAIL_AT_MOVED_DECISION_WITHIN: u64 = 2 * MS;
/// Share of manual splits whose key is one a transaction prepared at the
/// leader writes, when there is one.
const PREPARED_KEY_SHARE: f64 = 0.8;

/// One seed's split schedule and policy state.
#[derive(Debug)]
pub(super) struct Splits {
    rng: SmallRng,
    /// Splits happen on this seed.
    on: bool,
    manual: f64,
    auto_keys: Option<usize>,
    fail_after: f64,
    fail_at_moved: f64,
    /// The next child id to hand out.
    next_group: GroupId,
    /// Every key the workloads use, and those a commit has carried.
    universe: Vec<Bytes>,
    written: std::collections::BTreeSet<Bytes>,
    /// When the last split was asked for (ns since the start).
    last: Option<u64>,
    /// Keys read ahead of the clock: group, key, when (ns since the start).
    recent_reads: std::collections::VecDeque<(GroupId, Bytes, u64)>,
    /// The replicas' L on this seed, if lifted ([`SPLIT_READ_LEAD`]).
    read_lead: Option<u64>,
    /// A split asked for at a key just read ahead: its child and key.
    aimed: Option<(GroupId, Bytes)>,
    /// A key clients write now: until when (ns since the start), how many
    /// more transactions.
    chase: Option<(Bytes, u64, u32)>,
    /// A split's child group whose leader (node index, incarnation) is
    /// paused once a follower makes its child replica.
    pause_when_known: Option<(GroupId, usize, u64)>,
}

impl Splits {
    /// The schedule of `seed`: splits only on a placed cluster seed
    /// (`on`), whose first `groups` ids are taken; `universe` the keys the
    /// workloads use. Drawn from a stream of its own.
    pub(super) fn draw(seed: u64, on: bool, groups: GroupId, universe: Vec<Bytes>) -> Splits {
        let mut rng = SmallRng::seed_from_u64(seed ^ 0x5b11_7c0d_u64.rotate_left(19));
        let manual = MANUAL_SPLITS[rng.random_range(0..MANUAL_SPLITS.len())];
        let auto_keys = AUTO_SPLIT_KEYS[rng.random_range(0..AUTO_SPLIT_KEYS.len())];
        let fail_after = FAIL_AFTER_SPLIT[rng.random_range(0..FAIL_AFTER_SPLIT.len())];
        let fail_at_moved =
            FAIL_AT_MOVED_DECISION[rng.random_range(0..FAIL_AT_MOVED_DECISION.len())];
        // From the seed itself, so the schedule's own draws stay as they were.
        let h = seed.wrapping_mul(0xd6e8_feb8_6659_fd93).rotate_left(23);
        let read_lead =
            (on && h % SPLIT_READ_LEAD_OF < SPLIT_READ_LEAD_SEEDS).then_some(SPLIT_READ_LEAD);
        Splits {
            rng,
            on,
            manual,
            auto_keys,
            fail_after,
            fail_at_moved,
            next_group: groups + 1,
            universe,
            written: Default::default(),
            last: None,
            recent_reads: Default::default(),
            read_lead,
            aimed: None,
            chase: None,
            pause_when_known: None,
        }
    }

    /// Lifts the replicas' L on a seed that aims reads ahead of the clock
    /// at splits (never lowers it, nor M below it).
    pub(super) fn configure(&self, c: &mut meridian_txn::Config) {
        if let Some(l) = self.read_lead {
            c.read_lead_nanos = c.read_lead_nanos.max(l);
            c.max_read_lead_nanos = c.max_read_lead_nanos.max(c.read_lead_nanos);
        }
    }

    /// The key clients should write now, if a split at a key just read
    /// ahead of the clock applied moments ago.
    pub(super) fn chase(&mut self, at: u64) -> Option<Bytes> {
        let (key, until, left) = self.chase.as_mut()?;
        if at > *until || *left == 0 {
            self.chase = None;
            return None;
        }
        *left -= 1;
        Some(key.clone())
    }

    /// The commit-record retention of a seed that fails child leaders as
    /// moved decisions reach them: short, so a coordinator that was told
    /// too early that every group applied forgets the transaction before
    /// the child's successor asks (as in window
    /// `participant-crashes-before-durable`).
    pub(super) fn commit_record_retention(&self, drawn: u64) -> u64 {
        if self.on && self.fail_at_moved > 0.0 {
            drawn.min(SHORT_RETENTION)
        } else {
            drawn
        }
    }

    /// Whether splits happen on this seed.
    pub(super) fn on(&self) -> bool {
        self.on
    }

    /// For the trace's header.
    pub(super) fn describe(&self) -> String {
        if !self.on {
            return "none".into();
        }
        format!(
            "manual {}% per fault tick; automatic {}; parent leader failed after a split {}%",
            self.manual * 100.0,
            self.auto_keys
                .map_or("off".into(), |k| format!("above {k} written keys")),
            self.fail_after * 100.0
        ) + &self.read_lead.map_or(String::new(), |l| {
            format!(
                "; L lifted to {} ms, reads aimed ahead of the clock",
                l / MS
            )
        })
    }

    /// A lock-free read of `keys` ahead of the clock reached a replica of
    /// `group` at `at` (ns since the start).
    pub(super) fn note_read_ahead(&mut self, group: GroupId, keys: &[Bytes], at: u64) {
        if !self.on {
            return;
        }
        for k in keys {
            if self.recent_reads.len() == RECENT_READS {
                self.recent_reads.pop_front();
            }
            self.recent_reads.push_back((group, k.clone(), at));
        }
    }

    /// A commit carried these keys (the automatic policy's size).
    pub(super) fn note_written<'a>(&mut self, keys: impl IntoIterator<Item = &'a Bytes>) {
        if self.on {
            for k in keys {
                if !self.written.contains(k) {
                    self.written.insert(k.clone());
                }
            }
        }
    }
}

impl Sim {
    /// On a seed whose L is lifted, sometimes a lock-free read of one key
    /// at a timestamp ahead of `now_latest` within L (a split at that key
    /// may follow at once). `None`: read as usual.
    pub(super) fn aimed_read(&mut self, now_latest: Timestamp) -> Option<(ReadAt, Vec<ReadOp>)> {
        let l = self.splits.read_lead?;
        if !self.faults_on || !self.splits.rng.random_bool(AIMED_READ_SHARE) {
            return None;
        }
        let lead = self
            .splits
            .rng
            .random_range(l * AIMED_READ_MIN_LEAD_PER_MILLE / 1_000..=l);
        let u = &self.splits.universe;
        let key = u[self.splits.rng.random_range(0..u.len())].clone();
        Some((
            ReadAt::Exact(now_latest.saturating_add(lead)),
            vec![ReadOp::Get(key)],
        ))
    }

    /// A transaction that writes `key` (any key the workloads use), for
    /// client `c`.
    pub(super) fn write_of(&mut self, c: usize, key: &Bytes) -> Option<super::TxnKind> {
        use super::TxnKind;
        if let Some(a) = self.bank.accounts.iter().position(|k| k == key) {
            // To the next account, most often in the same range (one
            // group: no two-phase commit lifts the timestamp).
            let n = self.bank.accounts.len();
            let other = if a + 1 < n { a + 1 } else { (a + n - 1) % n };
            return Some(TxnKind::Transfer {
                from: a,
                to: other,
                amount: self.splits.rng.random_range(1..=20),
            });
        }
        if let Some(who) = self.roster.keys.iter().position(|k| k == key) {
            return Some(if self.splits.rng.random_bool(0.5) {
                TxnKind::GoOff { who }
            } else {
                TxnKind::GoOn { who }
            });
        }
        if let Some(i) = (0..crate::lists::LISTS).find(|&i| crate::lists::key(i) == *key) {
            return Some(TxnKind::Append {
                read: vec![i],
                append: vec![i],
            });
        }
        if key.starts_with(b"reg/") {
            let cl = &mut self.clients[c];
            cl.writes += 1;
            let value = Bytes::from(format!("c{c}.{}", cl.writes));
            return Some(TxnKind::Blind {
                writes: vec![meridian_participant::Write::put(key.clone(), value)],
            });
        }
        None
    }

    /// A group message `msg` reaches child leader `i` (`may`: a failure
    /// now leaves a quorum; `undecided`: a decision for a transaction
    /// prepared there with writes and not yet decided): whether to cut it
    /// off from its group and crash it, as a moved transaction's commit
    /// decision arrives (the window of rule `split-ack-before-child-decides`).
    pub(super) fn split_decide_aim(
        &mut self,
        i: usize,
        msg: &meridian_txn::GroupMessage,
        may: bool,
        undecided: bool,
    ) -> Option<super::Aim> {
        let child = self.nodes[i].parent.is_some();
        let commit = matches!(
            msg,
            meridian_txn::GroupMessage::Decide {
                decision: meridian_participant::Decision::Commit(_),
                ..
            }
        );
        if !child || !commit || !may || !undecided || self.splits.fail_at_moved == 0.0 {
            return None;
        }
        let meridian_txn::GroupMessage::Decide { txn, .. } = msg else {
            return None;
        };
        let fail = self.splits.rng.random_bool(self.splits.fail_at_moved);
        if fail {
            // The copies of the decision already on their way are lost
            // with the child's leader: its successor learns the outcome
            // from the coordinator or the parent alone.
            let (group, at) = (self.nodes[i].group, self.queue.at());
            self.windows.lose_decisions(*txn, group, at);
        }
        fail.then(|| {
            super::Aim::IsolateAndCrash(
                self.splits
                    .rng
                    .random_range(0..=FAIL_AT_MOVED_DECISION_WITHIN),
            )
        })
    }

    /// The leader of `group` as the hints have it, if it is up, leads, is
    /// not paused and may speak.
    fn live_leader(&self, group: GroupId) -> Option<usize> {
        let l = self.leader_hint[(group - 1) as usize].and_then(|l| self.index(l))?;
        let n = &self.nodes[l];
        let leads = n
            .replica
            .as_ref()
            .is_some_and(|r| r.paxos().role() == Role::Leader);
        (leads && n.paused_until.is_none()).then_some(l)
    }

    /// One fault tick of the split policy: maybe asks one group's leader
    /// to split, automatically (a range over the size threshold, at its
    /// median written key) or at random.
    pub(super) fn maybe_split(&mut self) {
        let at = self.queue.at();
        if !self.splits.on
            || !self.faults_on
            || self.now().saturating_add(HAND_OVER_QUIET) >= self.heal_at
            || self.splits.next_group
                > MAX_GROUP_ID
                    + self
                        .splits
                        .read_lead
                        .map_or(0, |_| EXTRA_IDS_ON_READ_LEAD_SEEDS)
            || self.splits.last.is_some_and(|l| at < l + SPLIT_COOLDOWN)
        {
            return;
        }
        let groups: Vec<GroupId> = self.ranges.groups().collect();
        let mut pick: Option<(usize, Bytes, &'static str)> = None;
        let fresh: Vec<(GroupId, Bytes)> = self
            .splits
            .recent_reads
            .iter()
            .filter(|(_, _, t)| {
                let recent = self
                    .splits
                    .read_lead
                    .map_or(RECENT_READ_FOR, |l| l * READ_LEAD_RECENT_PER_MILLE / 1_000);
                at < t + recent
            })
            .map(|(g, k, _)| (*g, k.clone()))
            .collect();
        if !fresh.is_empty() && self.splits.rng.random_bool(SPLIT_AFTER_READ) {
            let (g, key) = fresh[self.splits.rng.random_range(0..fresh.len())].clone();
            if let Some(l) = self.live_leader(g) {
                let ok = self.nodes[l]
                    .replica
                    .as_ref()
                    .is_some_and(|r| r.state().descriptor().can_split_at(&key));
                if ok {
                    self.splits.aimed = Some((self.splits.next_group, key.clone()));
                    pick = Some((l, key, "at a key just read ahead of the clock"));
                }
            }
        }
        // The extra ids of a seed aiming reads ahead of the clock wait
        // for them.
        let others = self.splits.next_group <= MAX_GROUP_ID;
        if let (None, Some(limit), true) = (&pick, self.splits.auto_keys, others) {
            for &g in &groups {
                let Some(l) = self.live_leader(g) else {
                    continue;
                };
                let Some(r) = self.nodes[l].replica.as_ref() else {
                    continue;
                };
                let d = r.state().descriptor();
                let keys: Vec<&Bytes> = self
                    .splits
                    .written
                    .iter()
                    .filter(|k| d.contains(k))
                    .collect();
                if keys.len() > limit {
                    let key = keys[keys.len() / 2].clone();
                    if d.can_split_at(&key) {
                        pick = Some((l, key, "by size"));
                        break;
                    }
                }
            }
        }
        if pick.is_none() && others && self.splits.rng.random_bool(self.splits.manual) {
            // Most often a group whose leader holds prepared writes.
            let busy: Vec<GroupId> = groups
                .iter()
                .copied()
                .filter(|&g| {
                    self.live_leader(g)
                        .and_then(|l| self.nodes[l].replica.as_ref())
                        .is_some_and(|r| r.state().prepared().any(|(_, p)| !p.writes.is_empty()))
                })
                .collect();
            let g = if !busy.is_empty() && self.splits.rng.random_bool(PREPARED_KEY_SHARE) {
                busy[self.splits.rng.random_range(0..busy.len())]
            } else {
                groups[self.splits.rng.random_range(0..groups.len())]
            };
            if let Some((l, r)) = self
                .live_leader(g)
                .and_then(|l| self.nodes[l].replica.as_ref().map(|r| (l, r)))
            {
                let d = r.state().descriptor();
                let prepared: Vec<Bytes> = r
                    .state()
                    .prepared()
                    .flat_map(|(_, p)| p.writes.iter().map(|w| w.key.clone()))
                    .filter(|k| d.can_split_at(k))
                    .collect();
                let candidates: Vec<Bytes> =
                    if !prepared.is_empty() && self.splits.rng.random_bool(PREPARED_KEY_SHARE) {
                        prepared
                    } else {
                        self.splits
                            .universe
                            .iter()
                            .filter(|k| d.can_split_at(k))
                            .cloned()
                            .collect()
                    };
                if !candidates.is_empty() {
                    let key = candidates[self.splits.rng.random_range(0..candidates.len())].clone();
                    pick = Some((l, key, "manual"));
                }
            }
        }
        let Some((l, key, why)) = pick else {
            return;
        };
        let child = self.splits.next_group;
        self.splits.next_group += 1;
        self.splits.last = Some(at);
        self.ensure_group(child);
        let id = self.next_request;
        self.next_request += 1;
        let now = self.now();
        self.outstanding.insert(id, (l, now, 1));
        let (node, group) = (self.nodes[l].id, self.nodes[l].group);
        self.trace(TraceKind::Fault, &[Party::Node(node)], || {
            format!(
                "split ({why}): n{node}/g{group} is asked to split at {} into g{child}",
                String::from_utf8_lossy(&key)
            )
        });
        if let Err(v) = self.step(
            l,
            Input::Request {
                id,
                request: Request::Split { key, child },
            },
        ) {
            self.deferred.get_or_insert(v);
        }
    }

    /// Parent replica `i` just applied a split: if it leads, the seed may
    /// crash its node within a few milliseconds or pause it (the window
    /// between the split's application and the child's first durable
    /// state, and a child whose inherited lease must be waited out).
    pub(super) fn after_split_applied(&mut self, i: usize, child: usize) {
        let leads = self.nodes[i]
            .replica
            .as_ref()
            .is_some_and(|r| r.paxos().role() == Role::Leader);
        let group = self.nodes[child].group;
        if leads && self.splits.aimed.as_ref().is_some_and(|(g, _)| *g == group) {
            if let Some((_, key)) = self.splits.aimed.take() {
                let until = self.queue.at() + CHASE_FOR;
                self.trace(TraceKind::Fault, &[], || {
                    format!(
                        "clients write {} (just read ahead of the clock, now g{group}'s)",
                        String::from_utf8_lossy(&key)
                    )
                });
                self.splits.chase = Some((key, until, CHASE_WRITES));
                // No failure here: the child's leader inherits the
                // parent's, and its writes are the point.
                return;
            }
        }
        if !leads {
            // A follower made its child replica: the window the leader's
            // draw may have asked for opens now.
            if let Some((g, leader, generation)) = self.splits.pause_when_known {
                if g == group {
                    self.splits.pause_when_known = None;
                    if self.nodes[leader].host.generation == generation && self.faults_on {
                        let length = self.splits.rng.random_range(300 * MS..1_500 * MS);
                        self.pause_node(
                            leader,
                            length,
                            "as a follower makes its child replica (inherited lease)",
                        );
                    }
                }
            }
            return;
        }
        if self.splits.fail_after == 0.0
            || !self.may_fail(i)
            || !self.splits.rng.random_bool(self.splits.fail_after)
        {
            return;
        }
        let generation = self.nodes[i].host.generation;
        let draw = self.splits.rng.random_range(0.0..1.0);
        if (CRASH_AFTER_SPLIT + PAUSE_AFTER_SPLIT
            ..CRASH_AFTER_SPLIT + PAUSE_AFTER_SPLIT + PAUSE_WHEN_FOLLOWERS_KNOW)
            .contains(&draw)
        {
            self.splits.pause_when_known = Some((group, i, generation));
        } else if draw >= CRASH_AFTER_SPLIT + PAUSE_AFTER_SPLIT {
            let (id, group) = (self.nodes[child].id, self.nodes[child].group);
            for peer in self.group_nodes(self.nodes[i].group) {
                if peer != id {
                    self.net.timed_cuts.insert((group, id, peer));
                    self.net.timed_cuts.insert((group, peer, id));
                }
            }
            self.queue
                .schedule(CHILD_CUT_FOR, Event::Mend { group, node: id });
            self.trace(TraceKind::Fault, &[Party::Node(id)], || {
                format!("n{id}/g{group} cut off from its group just after the split")
            });
        } else if draw < CRASH_AFTER_SPLIT {
            let d = self.splits.rng.random_range(0..=FAIL_AFTER_SPLIT_WITHIN);
            self.queue.schedule(
                d,
                Event::Crash {
                    node: i,
                    generation,
                    why: "just after applying a split",
                },
            );
        } else {
            // Once the followers have learnt the split (the commit index
            // travels with the next heartbeats), so their child replicas
            // exist and hold the inherited lease grant.
            let d = self
                .splits
                .rng
                .random_range(PAUSE_AFTER_SPLIT_DELAY.0..=PAUSE_AFTER_SPLIT_DELAY.1);
            let length = self.splits.rng.random_range(300 * MS..1_500 * MS);
            self.queue.schedule(
                d,
                Event::Pause {
                    node: i,
                    generation,
                    length,
                },
            );
        }
    }

    /// Pauses replica `i`'s node for `length` (every replica it hosts),
    /// unless it is down, paused or its clock runs away (pauses and clock
    /// excursions do not overlap).
    pub(super) fn pause_node(&mut self, i: usize, length: u64, why: &str) {
        let hosted = self.cohosted(i);
        if hosted.iter().any(|&j| {
            let n = &self.nodes[j];
            n.replica.is_none()
                || n.excursion.is_some()
                || n.clock_flagged
                || n.paused_until.is_some()
        }) {
            return;
        }
        let until = self.now().saturating_add(length);
        for j in hosted {
            self.nodes[j].paused_until = Some(until);
        }
        let id = self.nodes[i].id;
        self.trace(TraceKind::Fault, &[Party::Node(id)], || {
            format!("pause n{id} for {} ms {why}", length / MS)
        });
    }
}
