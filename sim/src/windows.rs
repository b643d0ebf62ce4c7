//! The fault windows of two-phase commit, opened on purpose (swarm
//! testing: bias, not luck). A random fault mix rarely lines a crash up
//! with the few milliseconds where a two-phase-commit mistake shows; each
//! cluster seed draws which of these windows it opens, and while faults
//! are on the driver aims faults at the moments each one names
//! (docs/verification.md lists the planted bugs each one is aimed at).
//!
//! The draws come from their own stream of the seed, as clock excursions
//! and hand-overs do, so the seed's other draws stay as they were; what
//! the windows change on purpose is listed in `Windows::calm` and
//! `Windows::commit_record_retention`.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use meridian_participant::{Decision, TxnId};
use meridian_paxos::NodeId;
use meridian_txn::{GroupId, GroupMessage, Vote};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::world::{Faults, MS, STRAGGLE_DELAY};

/// A fault window of two-phase commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Window {
    /// Decisions and acknowledgements between groups are dropped,
    /// duplicated or delayed past a coordinator failover.
    DecisionsLost,
    /// The coordinator's leader crashes right after the first participant
    /// acknowledged a commit (or right after deciding), and the decisions
    /// it had sent to the other participants are lost with it.
    CoordinatorFailsAfterAck,
    /// A late copy of a `Prepare` arrives after the transaction's
    /// `Decide`.
    PrepareAfterDecide,
    /// A participant's leader crashes or hands over right after voting
    /// yes, and the decision reaches its group late: other transactions
    /// wait on the prepared keys across the failover.
    ParticipantFailsWhilePrepared,
    /// A participant's leader crashes right after a decision reaches it,
    /// before its decision record is chosen and durable.
    ParticipantCrashesBeforeDurable,
    /// Every replica's clock sits at an edge of its ε (half ahead, half
    /// behind), so replicas differ by up to 2ε and start-rule and
    /// commit-wait mistakes show to the external-consistency checks.
    ClocksAtEpsilonEdge,
}

/// How many windows there are.
pub const WINDOW_COUNT: usize = 6;

impl Window {
    /// Every window, in the order summaries list them.
    pub const ALL: [Window; WINDOW_COUNT] = [
        Window::DecisionsLost,
        Window::CoordinatorFailsAfterAck,
        Window::PrepareAfterDecide,
        Window::ParticipantFailsWhilePrepared,
        Window::ParticipantCrashesBeforeDurable,
        Window::ClocksAtEpsilonEdge,
    ];

    /// The name summaries print.
    pub fn name(self) -> &'static str {
        match self {
            Window::DecisionsLost => "decisions-lost",
            Window::CoordinatorFailsAfterAck => "coordinator-fails-after-ack",
            Window::PrepareAfterDecide => "prepare-after-decide",
            Window::ParticipantFailsWhilePrepared => "participant-fails-while-prepared",
            Window::ParticipantCrashesBeforeDurable => "participant-crashes-before-durable",
            Window::ClocksAtEpsilonEdge => "clocks-at-epsilon-edge",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Per cluster seed: probability that each window is open (in the order
/// of [`Window::ALL`]). The windows of the bugs that need a failover at
/// one exact moment open most often.
const WINDOW_PROBABILITIES: [f64; WINDOW_COUNT] = [0.5, 0.9, 0.5, 0.9, 0.8, 0.4];
/// Window [`Window::DecisionsLost`]: per copy of a `Decide` or `Ack`,
/// probabilities that it is dropped, duplicated, or delayed by
/// [`STRAGGLE_DELAY`] (past a coordinator's failover).
const DECISION_DROP: f64 = 0.3;
const DECISION_DUPLICATE: f64 = 0.2;
const DECISION_STRAGGLE: f64 = 0.2;
/// Window [`Window::CoordinatorFailsAfterAck`]: per commit decided, the
/// probability that its coordinator's leader is failed.
const COORDINATOR_FAILS: f64 = 0.6;
/// The probability that one participant gets the decision through (and
/// acknowledges it, so the crash follows the first acknowledgement).
const KEEP_ONE: f64 = 0.3;
/// How soon after the first acknowledgement the coordinator's leader
/// crashes (before the others could arrive).
const COORDINATOR_CRASH_WITHIN: u64 = MS;
/// Window [`Window::PrepareAfterDecide`]: per copy of a `Prepare`, the
/// probability of a second copy [`STRAGGLE_DELAY`] late.
const LATE_PREPARE: f64 = 0.3;
/// Window [`Window::ParticipantFailsWhilePrepared`]: per yes vote, the
/// probability that its leader fails right after, and how soon.
const PARTICIPANT_FAILS: f64 = 0.8;
const PARTICIPANT_FAILS_WITHIN: u64 = 3 * MS;
/// The probability that a leader is failed when another transaction
/// first waits on a prepared transaction's keys there.
const FAIL_WHILE_WAITED_ON: f64 = 1.0;
/// While a prepared transaction's decision is held back, the probability
/// that a client's next transaction goes for one of its keys.
const CHASE: f64 = 0.8;
/// How late the decision then reaches the failed participant's group.
/// (longer than an election and the wait for the old lease: the new
/// leader serves before the decision arrives).
const PREPARED_DECISION_DELAY: (u64, u64) = (500 * MS, 2_000 * MS);
/// Window [`Window::ParticipantCrashesBeforeDurable`]: per decision
/// delivered to a participant's leader, the probability that it is cut
/// off from its group as the decision arrives (its record is not chosen)
/// and crashes, and how soon.
const PARTICIPANT_CRASHES: f64 = 0.8;
const PARTICIPANT_CRASH_WITHIN: u64 = 2 * MS;
/// The commit-record retention of a seed with that window open (the
/// shortest the seeds draw otherwise).
const SHORT_RETENTION: u64 = 400 * MS;
/// The probability that a seed failing replicas at two-phase-commit
/// moments calms its background faults, and the partition and pause
/// probabilities (per fault tick) it keeps then.
const CALM_PROBABILITY: f64 = 0.8;
const CALM_PARTITION: f64 = 0.04;
const CALM_PAUSE: f64 = 0.02;
/// ... and the message loss and delay spread it keeps (a lost request
/// costs a client its request timeout).
const CALM_DROP: f64 = 0.01;
const CALM_DELAY_SPREAD: u64 = 5 * MS;
/// Window [`Window::ClocksAtEpsilonEdge`]: a clock's error is at least
/// this share of its ε (per thousand).
pub(crate) const EDGE_PER_MILLE: u64 = 900;
/// For how long after a coordinator's first decision its copies to the
/// participants it cut off stay lost.
const CUT_FOR: u64 = 1_500 * MS;
/// A bound on the decisions held back at once (window
/// [`Window::ParticipantFailsWhilePrepared`]).
const MAX_SLOW: usize = 10_000;

/// A coordinator leader marked to fail for one transaction.
#[derive(Debug)]
struct CoordinatorFailure {
    leader: NodeId,
    /// The one group whose decision gets through, if any.
    kept: Option<GroupId>,
    /// When the coordinator first sent the decision (ns since the start).
    since: u64,
    /// Its copies to the groups cut off are still lost.
    cutting: bool,
    /// Its crash is scheduled.
    crashed: bool,
}

/// What the driver does after a message is sent or delivered.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Aim {
    /// Crash the node after this delay.
    Crash(u64),
    /// Ask the node to hand over after this delay.
    HandOver(u64),
    /// Cut the node off from its group's other replicas now, before it
    /// handles the message (what it proposes is not chosen), and crash it
    /// after this delay.
    IsolateAndCrash(u64),
}

/// The windows one cluster seed opened, and the state of the faults they
/// aim.
#[derive(Debug)]
pub(crate) struct Windows {
    rng: SmallRng,
    open: [bool; WINDOW_COUNT],
    /// Per window: the faults it aimed (messages lost or delayed, late
    /// copies, failures).
    fired: [u64; WINDOW_COUNT],
    coordinator: BTreeMap<TxnId, CoordinatorFailure>,
    /// Decisions held back until then (ns since the start) on their way
    /// to a group whose leader failed while prepared.
    slow: BTreeMap<(TxnId, GroupId), u64>,
    /// The keys each transaction prepares at each group (window
    /// [`Window::ParticipantFailsWhilePrepared`]), and the keys of those
    /// whose decision is held back, until when.
    prepares: BTreeMap<(TxnId, GroupId), Vec<Bytes>>,
    hot: Vec<(u64, Vec<Bytes>)>,
    /// Transactions whose decision is held back somewhere.
    held: BTreeSet<TxnId>,
    /// Decisions sent to a group up to a time (ns since the start) that
    /// are lost: the group's leader failed as one of them arrived.
    stale_decisions: BTreeMap<(TxnId, GroupId), u64>,
    /// Prepared transactions whose group's leader was failed while others
    /// waited on their keys (once each).
    waited_on: BTreeSet<TxnId>,
    /// Per node (index), whether its clock leads (at the ε edge).
    ahead: Vec<bool>,
    /// The background faults were calmed.
    calm: bool,
}

impl Windows {
    /// The windows of `seed`: none unless `cluster` (two-phase commit runs
    /// only across groups); `nodes` clocks (one per node, which every
    /// replica it hosts reads).
    pub(crate) fn draw(seed: u64, cluster: bool, nodes: usize) -> Windows {
        let mut rng = SmallRng::seed_from_u64(seed ^ 0x2_9c3a_71d5_u64.rotate_left(33));
        let mut open = [false; WINDOW_COUNT];
        if cluster {
            for (o, p) in open.iter_mut().zip(WINDOW_PROBABILITIES) {
                *o = rng.random_bool(p);
            }
        }
        let ahead = (0..nodes).map(|_| rng.random_bool(0.5)).collect();
        Windows {
            rng,
            open,
            fired: [0; WINDOW_COUNT],
            coordinator: BTreeMap::new(),
            slow: BTreeMap::new(),
            waited_on: BTreeSet::new(),
            prepares: BTreeMap::new(),
            hot: Vec::new(),
            held: BTreeSet::new(),
            stale_decisions: BTreeMap::new(),
            ahead,
            calm: false,
        }
    }

    /// Whether window `w` is open in this run.
    pub(crate) fn is_open(&self, w: Window) -> bool {
        self.open[w.index()]
    }

    /// A seed that opens a window failing replicas at two-phase-commit
    /// moments draws calmer background faults (most of the time): no
    /// random crashes or power losses, fewer partitions, pauses and lost
    /// messages, shorter delays.
    /// Under the full random mix the groups are down so often that few
    /// transactions reach their second phase before the heal, and the
    /// windows would have nothing to aim at. Returns the pause
    /// probability to use.
    pub(crate) fn calm(&mut self, faults: &mut Faults, pause: f64) -> f64 {
        let aims_failures = [
            Window::CoordinatorFailsAfterAck,
            Window::ParticipantFailsWhilePrepared,
            Window::ParticipantCrashesBeforeDurable,
        ]
        .into_iter()
        .any(|w| self.is_open(w));
        if !aims_failures || !self.rng.random_bool(CALM_PROBABILITY) {
            return pause;
        }
        self.calm = true;
        faults.crash = 0.0;
        faults.power_loss = 0.0;
        faults.partition = faults.partition.min(CALM_PARTITION);
        faults.drop = faults.drop.min(CALM_DROP);
        faults.delay_max = faults.delay_max.min(faults.delay_min + CALM_DELAY_SPREAD);
        pause.min(CALM_PAUSE)
    }

    /// Window [`Window::ParticipantCrashesBeforeDurable`] wants commit
    /// records kept briefly: a participant's successor that asks after
    /// the coordinator forgot must meet a pruned record, not a lucky one.
    pub(crate) fn commit_record_retention(&self, drawn: u64) -> u64 {
        if self.is_open(Window::ParticipantCrashesBeforeDurable) {
            drawn.min(SHORT_RETENTION)
        } else {
            drawn
        }
    }

    /// One per open window, for the run's counters.
    pub(crate) fn counts(&self) -> [u64; WINDOW_COUNT] {
        self.open.map(u64::from)
    }

    /// Per window, the faults it aimed.
    pub(crate) fn fired(&self) -> [u64; WINDOW_COUNT] {
        self.fired
    }

    fn fire(&mut self, w: Window) {
        self.fired[w.index()] += 1;
    }

    /// The open windows' names, comma-separated (`-` for none), and
    /// whether the background faults were calmed.
    pub(crate) fn describe(&self) -> String {
        let calm = if self.calm {
            "; calm background (no random crashes or power losses; fewer partitions, pauses, \
             lost messages)"
        } else {
            ""
        };
        format!("{}{calm}", self.names())
    }

    /// The open windows' names, comma-separated (`-` for none).
    pub(crate) fn names(&self) -> String {
        let v: Vec<&str> = Window::ALL
            .into_iter()
            .filter(|w| self.is_open(*w))
            .map(Window::name)
            .collect();
        if v.is_empty() {
            "-".into()
        } else {
            v.join(",")
        }
    }

    /// Window [`Window::ClocksAtEpsilonEdge`]: whether node `i`'s clock
    /// leads true time (else it lags), if the window is open.
    pub(crate) fn edge(&self, i: usize) -> Option<bool> {
        self.is_open(Window::ClocksAtEpsilonEdge)
            .then(|| self.ahead.get(i).copied().unwrap_or(false))
    }

    /// A copy of `msg` from replica `from` to group `to` is sent with
    /// `delays` (one per copy the network delivers), at `at` ns since the
    /// start: the delays of the copies that arrive, with the open windows'
    /// faults added. Only while faults are on.
    pub(crate) fn copies(
        &mut self,
        from: NodeId,
        to: GroupId,
        msg: &GroupMessage,
        at: u64,
        mut delays: Vec<u64>,
    ) -> Vec<u64> {
        match msg {
            GroupMessage::Decide { txn, .. } => {
                if let Some(f) = self.coordinator.get(txn) {
                    if f.leader == from
                        && f.cutting
                        && f.kept != Some(to)
                        && at.saturating_sub(f.since) < CUT_FOR
                    {
                        self.fire(Window::CoordinatorFailsAfterAck);
                        return Vec::new();
                    }
                }
                if let Some(&until) = self.slow.get(&(*txn, to)) {
                    // Every copy, resends and answers to queries
                    // included, arrives once the hold ends.
                    let hold = until.saturating_sub(at);
                    delays.iter_mut().for_each(|x| *x = (*x).max(hold));
                }
                self.lose(&mut delays);
            }
            GroupMessage::Ack { .. } => self.lose(&mut delays),
            GroupMessage::Prepare { .. }
                if self.is_open(Window::PrepareAfterDecide)
                    && !delays.is_empty()
                    && self.rng.random_bool(LATE_PREPARE) =>
            {
                self.fire(Window::PrepareAfterDecide);
                delays.push(self.rng.random_range(STRAGGLE_DELAY.0..=STRAGGLE_DELAY.1));
            }
            _ => {}
        }
        delays
    }

    /// Window [`Window::DecisionsLost`] on the copies of one message.
    fn lose(&mut self, delays: &mut Vec<u64>) {
        if !self.is_open(Window::DecisionsLost) {
            return;
        }
        let mut out = Vec::with_capacity(delays.len());
        let mut fired = 0;
        for &d in delays.iter() {
            if self.rng.random_bool(DECISION_DROP) {
                fired += 1;
                continue;
            }
            let d = if self.rng.random_bool(DECISION_STRAGGLE) {
                fired += 1;
                d + self.rng.random_range(STRAGGLE_DELAY.0..=STRAGGLE_DELAY.1)
            } else {
                d
            };
            out.push(d);
            if self.rng.random_bool(DECISION_DUPLICATE) {
                fired += 1;
                out.push(d + self.rng.random_range(0..=STRAGGLE_DELAY.0));
            }
        }
        self.fired[Window::DecisionsLost.index()] += fired;
        *delays = out;
    }

    /// Leader `from` sends `msg` to group `to`, at `at` ns
    /// since the start: whether to fail it, and when. `may_fail`: faults
    /// are on, the heal is not near, and every replica of its group is
    /// up (a failure then leaves a quorum).
    pub(crate) fn on_send(
        &mut self,
        from: NodeId,
        to: GroupId,
        msg: &GroupMessage,
        at: u64,
        may_fail: bool,
    ) -> Option<Aim> {
        match msg {
            GroupMessage::Decide {
                txn,
                decision: Decision::Commit(_),
                ..
            } if self.is_open(Window::CoordinatorFailsAfterAck) => {
                // One failover per transaction: a coordinator failed too
                // would keep a participant's failover from mattering.
                if self.coordinator.contains_key(txn) || self.held.contains(txn) {
                    return None;
                }
                if !may_fail || !self.rng.random_bool(COORDINATOR_FAILS) {
                    return None;
                }
                // One participant (now and then) gets the decision and
                // acknowledges it; the others' copies are lost with the
                // coordinator's leader.
                let kept = self.rng.random_bool(KEEP_ONE).then_some(to);
                self.coordinator.insert(
                    *txn,
                    CoordinatorFailure {
                        leader: from,
                        kept,
                        since: at,
                        cutting: true,
                        crashed: false,
                    },
                );
                if kept.is_none() {
                    let f = self.coordinator.get_mut(txn).expect("just inserted");
                    f.crashed = true;
                    self.fire(Window::CoordinatorFailsAfterAck);
                    return Some(Aim::Crash(
                        self.rng.random_range(0..=COORDINATOR_CRASH_WITHIN),
                    ));
                }
                None
            }
            GroupMessage::Vote {
                txn,
                from: group,
                vote: Vote::Yes(_),
            } if may_fail && self.is_open(Window::ParticipantFailsWhilePrepared) => {
                if !self.rng.random_bool(PARTICIPANT_FAILS) {
                    return None;
                }
                self.fire(Window::ParticipantFailsWhilePrepared);
                let d = self.rng.random_range(0..=PARTICIPANT_FAILS_WITHIN);
                self.hold(*txn, *group, at);
                Some(if self.rng.random_bool(0.5) {
                    Aim::Crash(d)
                } else {
                    Aim::HandOver(d)
                })
            }
            _ => None,
        }
    }

    /// Window [`Window::ParticipantFailsWhilePrepared`]: at a leader of
    /// `group`, another transaction waits for `txn`, prepared there.
    /// Whether to fail the leader now (once per transaction), holding the
    /// decision back so its successor serves while `txn` is still
    /// prepared (`may_fail` as for [`Windows::on_send`]).
    pub(crate) fn on_wait_for_prepared(
        &mut self,
        txn: TxnId,
        group: GroupId,
        at: u64,
        may_fail: bool,
    ) -> Option<Aim> {
        if !may_fail
            || !self.is_open(Window::ParticipantFailsWhilePrepared)
            || self.waited_on.len() >= MAX_SLOW
            || !self.waited_on.insert(txn)
            || !self.rng.random_bool(FAIL_WHILE_WAITED_ON)
        {
            return None;
        }
        self.fire(Window::ParticipantFailsWhilePrepared);
        self.hold(txn, group, at);
        let d = self.rng.random_range(0..=PARTICIPANT_FAILS_WITHIN);
        Some(if self.rng.random_bool(0.5) {
            Aim::Crash(d)
        } else {
            Aim::HandOver(d)
        })
    }

    /// `txn` is prepared at `group` on `keys` (what it writes and read
    /// there), for [`Windows::chase`] should its leader fail.
    pub(crate) fn note_prepared(&mut self, txn: TxnId, group: GroupId, keys: Vec<Bytes>) {
        if self.is_open(Window::ParticipantFailsWhilePrepared) && self.prepares.len() < MAX_SLOW {
            self.prepares.insert((txn, group), keys);
        }
    }

    /// Whether `msg`, sent at `sent` to a replica of `group`, is lost
    /// (window [`Window::ParticipantCrashesBeforeDurable`]).
    pub(crate) fn void(&mut self, msg: &GroupMessage, group: GroupId, sent: u64) -> bool {
        let GroupMessage::Decide { txn, .. } = msg else {
            return false;
        };
        let lost = self
            .stale_decisions
            .get(&(*txn, group))
            .is_some_and(|&until| sent <= until);
        if lost {
            self.fire(Window::ParticipantCrashesBeforeDurable);
        }
        lost
    }

    /// Copies of `txn`'s decision sent to `group` up to `at` are lost (its
    /// leader fails as the decision reaches it).
    pub(crate) fn lose_decisions(&mut self, txn: TxnId, group: GroupId, at: u64) {
        if self.stale_decisions.len() < MAX_SLOW {
            self.stale_decisions.insert((txn, group), at);
        }
    }

    /// Holds `txn`'s decision back from `group` for a while from `at`.
    fn hold(&mut self, txn: TxnId, group: GroupId, at: u64) {
        if self.slow.len() < MAX_SLOW {
            let d = self
                .rng
                .random_range(PREPARED_DECISION_DELAY.0..=PREPARED_DECISION_DELAY.1);
            let until = *self.slow.entry((txn, group)).or_insert(at + d);
            self.held.insert(txn);
            if let Some(keys) = self.prepares.remove(&(txn, group)) {
                self.hot.push((until, keys));
            }
        }
    }

    /// Window [`Window::ParticipantFailsWhilePrepared`]: a client picks
    /// its next transaction at `at` (ns since the start). Now and then, a
    /// key a transaction holds prepared across a failover (its decision
    /// held back), for the client to read and write: other transactions
    /// then wait on the prepared keys at the new leader, as the window
    /// asks. `None` for the client's own choice.
    pub(crate) fn chase(&mut self, at: u64) -> Option<Bytes> {
        self.hot.retain(|(until, _)| *until > at);
        if self.hot.is_empty() || !self.rng.random_bool(CHASE) {
            return None;
        }
        let (_, keys) = &self.hot[self.rng.random_range(0..self.hot.len())];
        if keys.is_empty() {
            return None;
        }
        Some(keys[self.rng.random_range(0..keys.len())].clone())
    }

    /// `msg` is delivered to leader `to`: whether to fail it, and when
    /// (`may_fail` as for [`Windows::on_send`]). `undecided`: for a
    /// `Decide`, its transaction is prepared at `to` with writes and not
    /// yet decided there (a resend to a group that has decided changes
    /// nothing, and an outcome lost where it only read breaks no
    /// atomicity the checkers see).
    pub(crate) fn on_deliver(
        &mut self,
        to: NodeId,
        group: GroupId,
        msg: &GroupMessage,
        may_fail: bool,
        undecided: bool,
        at: u64,
    ) -> Option<Aim> {
        match msg {
            GroupMessage::Ack { txn, .. } => {
                let f = self.coordinator.get_mut(txn)?;
                if f.leader != to || f.crashed {
                    return None;
                }
                f.crashed = true;
                // Not failing now (the heal is near): the copies cut off
                // were lost only on the way to a failover, so let them
                // through.
                if !may_fail {
                    f.cutting = false;
                    return None;
                }
                self.fired[Window::CoordinatorFailsAfterAck.index()] += 1;
                Some(Aim::Crash(
                    self.rng.random_range(0..=COORDINATOR_CRASH_WITHIN),
                ))
            }
            // Not where the coordinator is failed too: its failover
            // would keep it from forgetting the transaction.
            GroupMessage::Decide {
                txn,
                decision: Decision::Commit(_),
                ..
            } if may_fail
                && undecided
                && !self.coordinator.contains_key(txn)
                && self.is_open(Window::ParticipantCrashesBeforeDurable)
                && self.rng.random_bool(PARTICIPANT_CRASHES) =>
            {
                self.fire(Window::ParticipantCrashesBeforeDurable);
                // The copies of the decision already on their way are
                // lost with the leader: its successor learns the outcome
                // from the coordinator alone.
                if self.stale_decisions.len() < MAX_SLOW {
                    self.stale_decisions.insert((*txn, group), at);
                }
                Some(Aim::IsolateAndCrash(
                    self.rng.random_range(0..=PARTICIPANT_CRASH_WITHIN),
                ))
            }
            _ => None,
        }
    }
}
