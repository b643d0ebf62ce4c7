//! The driver loop (docs/design.md §6): one OS thread owns every group
//! replica the node hosts and the node's write-ahead log.
//!
//! Per turn the loop drains its inbox (client requests, peer messages)
//! without blocking, steps each input into its group's replica, and then
//! carries out the outputs of the whole turn at once: peer messages go to
//! one outbound stream per peer and replies complete the callers' oneshot
//! channels first; then every group's persist requests are written and
//! made durable with one `fdatasync` (group commit across groups), and
//! `Persisted` is stepped into each group at once, whose outputs are
//! carried out the same way. Events that arrive during the sync wait for
//! the next turn and share its sync. The log has no thread of its own: a
//! hand-off to one and back cost two thread wake-ups per sync, and a log
//! thread that syncs as soon as a batch arrives makes many small syncs
//! (docs/design.md §6). Timers are the replicas' own (`next_deadline`): the
//! loop sleeps on its inbox until the earliest.
//!
//! Nothing here awaits, and no lock is held across a step: the gRPC
//! handlers talk to the loop only through channels.
//!
//! Replicas come and go at run time ([`Event::AddReplica`],
//! [`Event::DropReplica`]): a new replica's initial state is written to
//! the log and synced, within the event's handling, before the replica
//! exists, so nothing reaches it before it would survive a crash; and a
//! group the log recovers that the configuration does not name was
//! created at run time, and is recreated (docs/design.md §6, "Replicas
//! created and dropped at run time").

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use meridian_participant::{RangeDescriptor, WaitsFor};
use meridian_paxos::{MembershipChange, Message, NodeId, PersistRequest, Recovered, Role};
use meridian_proto::pb;
use meridian_truetime::{Timestamp, TrueTime, TtInterval};
use meridian_txn::{ChildSeed, GroupId, GroupMessage, GroupReplica, Input, Output, Reply, Request};
use parking_lot::RwLock;
use tokio::sync::oneshot;

use crate::autosplit::SplitWatch;
use crate::codec;
use crate::metrics::Metrics;

/// Most inbox events one turn takes before it flushes its outputs, so a
/// flood of requests cannot starve timers or delay persistence unboundedly.
pub const MAX_EVENTS_PER_TURN: usize = 4096;

/// Longest the loop sleeps when no replica has a timer due.
const MAX_SLEEP: Duration = Duration::from_millis(50);

/// Timer slack of the loop's thread, ns: how late the kernel may wake it
/// from a timed sleep. Linux's default of 50 µs would add up to that much
/// to every commit wait that ends on the loop's timer.
const TIMER_SLACK_NANOS: libc::c_ulong = 1_000;

/// The last stretch before a timer falls due that the loop polls its
/// inbox instead of sleeping: on a VM the kernel wakes a sleeping thread
/// 30–100 µs late whatever its timer slack, and each commit wait ends on
/// this timer.
const TIMER_POLL: Duration = Duration::from_micros(100);

/// Interval at which the replicas' views (progress, safe time) are
/// republished for status even when no role changed.
const VIEW_REFRESH: Duration = Duration::from_millis(100);

/// The node's durable log as the runtime sees it: buffered writes per
/// group, then one sync for all of them.
pub trait Log: Send + 'static {
    /// Buffers `req` of `group` (not yet durable).
    fn write(&mut self, group: GroupId, req: &PersistRequest) -> Result<(), String>;
    /// Buffers the drop of this node's replica of `group`: once durable,
    /// recovery ignores the group's records and the id is never written
    /// again.
    fn drop_group(&mut self, group: GroupId) -> Result<(), String>;
    /// Whether `group` was dropped (its id must not be used again).
    fn is_dropped(&self, group: GroupId) -> bool;
    /// Makes every buffered write durable with one sync. An error is fatal:
    /// the process must end (no retry after a failed fsync).
    fn sync(&mut self) -> Result<(), String>;
}

/// A log that keeps nothing but the ids it dropped (for tests of the
/// runtime alone).
#[derive(Debug, Default)]
pub struct NullLog {
    dropped: BTreeSet<GroupId>,
}

impl Log for NullLog {
    fn write(&mut self, _group: GroupId, _req: &PersistRequest) -> Result<(), String> {
        Ok(())
    }
    fn drop_group(&mut self, group: GroupId) -> Result<(), String> {
        self.dropped.insert(group);
        Ok(())
    }
    fn is_dropped(&self, group: GroupId) -> bool {
        self.dropped.contains(&group)
    }
    fn sync(&mut self) -> Result<(), String> {
        Ok(())
    }
}

/// What a replica created at run time starts from ([`Event::AddReplica`]).
#[derive(Clone, Debug)]
pub struct ReplicaSeed {
    /// The group; never an id this node dropped.
    pub group: GroupId,
    /// The nodes holding the group's replicas: its voters unless `state`
    /// has a snapshot (whose membership then rules).
    pub voters: Vec<NodeId>,
    /// Its initial state. The loop writes it to the log and syncs it
    /// before the replica exists. It must hold a snapshot: the snapshot's
    /// membership and state are what recovery recreates the replica from.
    pub state: Recovered,
    /// The key range it serves (its snapshot's state must carry the
    /// same descriptor, which recovery reads back).
    pub descriptor: RangeDescriptor,
}

impl ReplicaSeed {
    /// A new, empty group serving `descriptor`: a snapshot at slot 0 of an
    /// empty state with that descriptor, whose membership is `voters`.
    pub fn empty(voters: Vec<NodeId>, descriptor: RangeDescriptor) -> ReplicaSeed {
        let group = descriptor.group;
        let snapshot = meridian_paxos::Snapshot {
            last_slot: 0,
            last_ballot: meridian_paxos::Ballot::default(),
            last_ts: Timestamp::ZERO,
            membership: meridian_paxos::Membership::new(1, voters.clone()),
            data: meridian_participant::GroupState::new(
                meridian_participant::state::DEFAULT_COMMIT_RECORD_RETENTION_NANOS,
            )
            .with_descriptor(descriptor.clone())
            .encode(),
        };
        ReplicaSeed {
            group,
            voters,
            state: Recovered {
                snapshot: Some(snapshot),
                ..Recovered::default()
            },
            descriptor,
        }
    }
}

/// Why a replica could not be added or dropped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplicaError {
    /// The node already hosts a replica of the group.
    #[error("this node already hosts a replica of group {group}")]
    AlreadyHosted {
        /// The group.
        group: GroupId,
    },
    /// The node hosts no replica of the group.
    #[error("this node hosts no replica of group {group}")]
    NotHosted {
        /// The group.
        group: GroupId,
    },
    /// The id was dropped here: group ids are never reused.
    #[error("group id {group} was dropped on this node and is never reused")]
    Dropped {
        /// The group.
        group: GroupId,
    },
    /// An id of 0 or above [`meridian_txn::MAX_GROUP_ID`], or a seed that
    /// records nothing.
    #[error("invalid replica seed: {0}")]
    Invalid(String),
    /// The log failed (the node stops).
    #[error("write-ahead log failed: {0}")]
    Log(String),
}

/// Called with a reason when the node cannot go on (a failed fsync, a
/// corrupted record on apply): by default it logs and ends the process.
pub type FatalHandler = Arc<dyn Fn(&str) + Send + Sync>;

/// The default fatal handler: log, then exit with status 70 (EX_SOFTWARE).
pub fn exit_on_fatal() -> FatalHandler {
    Arc::new(|reason: &str| {
        tracing::error!(%reason, "fatal: the node stops");
        eprintln!("meridian: fatal: {reason}");
        std::process::exit(70);
    })
}

/// What a group replica looks like from outside the loop.
#[derive(Clone, Debug, Default)]
pub struct GroupView {
    /// The group.
    pub group: GroupId,
    /// The leader the replica follows, if known.
    pub leader: Option<NodeId>,
    /// Whether this replica leads.
    pub leading: bool,
    /// The replica's Paxos role (`None` only in a default view).
    pub role: Option<meridian_paxos::Role>,
    /// Chosen slot.
    pub chosen: u64,
    /// Applied slot.
    pub applied: u64,
    /// Safe time.
    pub t_safe: Timestamp,
    /// Active transactions (at a leader).
    pub active_txns: usize,
    /// The current voters.
    pub voters: Vec<NodeId>,
    /// The key range the replica serves, as it last applied it (`None`
    /// only in a default view).
    pub descriptor: Option<RangeDescriptor>,
    /// Bytes of the newest live version of each key of the replica's
    /// range ([`meridian_participant::GroupState::range_bytes`]).
    pub bytes: u64,
    /// At a leader with automatic splits on: whether its split policy
    /// asks to split the range now, and where
    /// ([`crate::autosplit::SplitWatch`]).
    pub split: Option<meridian_txn::split_policy::SplitDecision>,
}

/// Shared, read-mostly view of the node's replicas (updated by the loop
/// after each turn that changed a role; read by the services).
pub type Views = Arc<RwLock<BTreeMap<GroupId, GroupView>>>;

/// An input to the loop.
pub enum Event {
    /// A client request for `group`'s local replica.
    Request {
        /// The group.
        group: GroupId,
        /// The request.
        request: Request,
        /// Where the answer goes.
        reply: oneshot::Sender<Reply>,
    },
    /// A Paxos message from a peer.
    Peer {
        /// The group.
        group: GroupId,
        /// The message.
        msg: Message,
    },
    /// A two-phase-commit message for `group`'s leader.
    FromGroup {
        /// The group.
        group: GroupId,
        /// The message.
        msg: GroupMessage,
    },
    /// Who waits for whom, in every group this node leads.
    WaitsFor(oneshot::Sender<Vec<(GroupId, WaitsFor)>>),
    /// A one-at-a-time membership change at this node's replica of `group`.
    Membership {
        /// The group.
        group: GroupId,
        /// The change.
        change: MembershipChange,
        /// The outcome (the new voters once proposed).
        reply: oneshot::Sender<Result<(), meridian_proto::RemoteError>>,
    },
    /// A node added at run time (`AddNode`): its outbound queue.
    AddPeer {
        /// The node.
        node: NodeId,
        /// The queue its outbound stream drains.
        queue: tokio::sync::mpsc::Sender<pb::PeerMessage>,
    },
    /// The clock check's verdict on this node's clock.
    ClockHealth {
        /// Within bound against the peers.
        ok: bool,
        /// What the check measured.
        reason: String,
    },
    /// The node drains: every replica that leads hands its leadership to
    /// another voter (docs/design.md §3, hand-over).
    HandOver,
    /// Create a replica of a new group on this node from `seed`; its
    /// initial state is durable before the replica is given anything.
    AddReplica {
        /// What it starts from.
        seed: Box<ReplicaSeed>,
        /// The outcome, once durable.
        reply: oneshot::Sender<Result<(), ReplicaError>>,
    },
    /// Drop this node's replica of `group`: its pending callers are
    /// answered "unavailable", and its id is recorded dropped in the log
    /// (durable before the reply).
    DropReplica {
        /// The group.
        group: GroupId,
        /// The outcome, once durable.
        reply: oneshot::Sender<Result<(), ReplicaError>>,
    },
    /// Stop the loop.
    Shutdown,
}

/// Where the loop sends messages for other nodes: one bounded queue per
/// peer, drained by that peer's outbound stream. Nodes added at run time
/// join it through [`Event::AddPeer`].
pub type PeerQueues = HashMap<NodeId, tokio::sync::mpsc::Sender<pb::PeerMessage>>;

/// What the loop needs to start.
pub struct LoopSetup {
    /// This node.
    pub node: NodeId,
    /// The replicas, each with what the log recovered for it.
    pub replicas: Vec<(meridian_txn::Config, Recovered)>,
    /// Which nodes hold replicas of each group (for group messages), as
    /// configured; the voters a local replica knows are added to them.
    pub group_nodes: BTreeMap<GroupId, Vec<NodeId>>,
    /// The clock.
    pub clock: Arc<dyn TrueTime>,
    /// The log, moved to its own thread.
    pub log: Box<dyn Log>,
    /// Outbound peer queues.
    pub peers: PeerQueues,
    /// Called when the node cannot go on.
    pub fatal: FatalHandler,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The configuration of a replica created at run time: the node's
    /// settings, its group id, voters and descriptor replaced.
    pub template: meridian_txn::Config,
    /// Replicas that are not their group's preferred leader
    /// ([`crate::config::preferred_leader`]) and how long after the loop
    /// starts they stay without timer ticks, so none of them campaigns
    /// before the preferred replica has had its election timeout
    /// ([`crate::server::PREFERRED_LEADER_HEAD_START_TIMEOUTS`]). Only
    /// timing changes: a held replica still answers every message, and a
    /// leader is never held.
    pub campaign_holds: BTreeMap<GroupId, Duration>,
    /// The thresholds of automatic splits; `None`: the loop never asks
    /// for one.
    pub splits: Option<meridian_txn::split_policy::SplitPolicyConfig>,
}

/// A running loop: its inbox, its views and its thread.
pub struct LoopHandle {
    /// The inbox.
    pub inbox: Sender<Event>,
    /// The replicas' views.
    pub views: Views,
    /// Whether the node's clock is currently healthy.
    pub clock_ok: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl LoopHandle {
    /// Stops the loop and waits for it.
    pub fn shutdown(self) {
        let _ = self.inbox.send(Event::Shutdown);
        let _ = self.thread.join();
    }
}

/// Starts the loop's thread.
pub fn start(setup: LoopSetup) -> std::io::Result<LoopHandle> {
    let (inbox, rx) = crossbeam_channel::unbounded::<Event>();
    let views: Views = Arc::default();
    let clock_ok = Arc::new(AtomicBool::new(true));
    let mut replicas = BTreeMap::new();
    let now = setup.clock.now();
    let holds = setup
        .campaign_holds
        .iter()
        .map(|(g, d)| (*g, local(now).saturating_add(d.as_nanos() as u64)))
        .collect();
    for (cfg, recovered) in setup.replicas {
        let group = cfg.group;
        let rng = <rand::rngs::SmallRng as rand::SeedableRng>::seed_from_u64(
            now.latest.as_nanos() ^ (setup.node << 32) ^ group,
        );
        replicas.insert(group, GroupReplica::new(cfg, recovered, Box::new(rng)));
    }
    let mut driver = Driver {
        node: setup.node,
        replicas,
        group_nodes: setup.group_nodes,
        clock: setup.clock,
        log: setup.log,
        failed: false,
        peers: setup.peers,
        fatal: setup.fatal,
        metrics: setup.metrics,
        template: setup.template,
        views: views.clone(),
        clock_ok: clock_ok.clone(),
        pending: HashMap::new(),
        next_request: 1,
        internal: VecDeque::new(),
        out: Vec::new(),
        seeds: Vec::new(),
        persist: Vec::new(),
        outbound: HashMap::new(),
        views_dirty: true,
        last_publish: Instant::now(),
        encode_buf: BytesMut::new(),
        holds,
        splits: setup
            .splits
            .map(|cfg| SplitWatch::new(cfg, now.latest.as_nanos() ^ setup.node)),
    };
    let loop_thread = std::thread::Builder::new()
        .name(format!("loop-{}", setup.node))
        .spawn(move || driver.run(rx))?;
    Ok(LoopHandle {
        inbox,
        views,
        clock_ok,
        thread: loop_thread,
    })
}

struct Driver {
    node: NodeId,
    replicas: BTreeMap<GroupId, GroupReplica>,
    group_nodes: BTreeMap<GroupId, Vec<NodeId>>,
    clock: Arc<dyn TrueTime>,
    /// The node's log, written and synced by the loop itself at the end
    /// of each turn.
    log: Box<dyn Log>,
    /// The log failed: the fatal handler was called and the loop ends.
    failed: bool,
    peers: PeerQueues,
    fatal: FatalHandler,
    metrics: Arc<Metrics>,
    template: meridian_txn::Config,
    /// Split seeds emitted during the current step, created once it ends.
    seeds: Vec<ChildSeed>,
    views: Views,
    clock_ok: Arc<AtomicBool>,
    /// Callers waiting for a reply, by request id, with their group.
    pending: HashMap<u64, (GroupId, oneshot::Sender<Reply>)>,
    next_request: u64,
    /// Group messages between two replicas of this node, delivered within
    /// the turn.
    internal: VecDeque<(GroupId, GroupMessage)>,
    out: Vec<Output>,
    persist: Vec<(GroupId, PersistRequest)>,
    outbound: HashMap<NodeId, Vec<pb::PeerMessage>>,
    views_dirty: bool,
    last_publish: Instant,
    encode_buf: BytesMut,
    /// Groups whose replica gets no `Tick` before this local time (see
    /// [`LoopSetup::campaign_holds`]); removed once passed.
    holds: BTreeMap<GroupId, Timestamp>,
    /// Each led range's split policy, if automatic splits are on.
    splits: Option<SplitWatch>,
}

/// The next inbox event, or `None` once `wait` has passed: sleeps until
/// [`TIMER_POLL`] before then and polls (yielding the CPU to any other
/// runnable thread) for the rest, so a timer ends on time. `Err` once
/// every sender is gone.
fn next_event(rx: &Receiver<Event>, wait: Duration) -> Result<Option<Event>, ()> {
    let due = Instant::now() + wait;
    if wait > TIMER_POLL {
        match rx.recv_timeout(wait - TIMER_POLL) {
            Ok(ev) => return Ok(Some(ev)),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Err(()),
        }
    }
    loop {
        match rx.try_recv() {
            Ok(ev) => return Ok(Some(ev)),
            Err(TryRecvError::Empty) if Instant::now() < due => std::thread::yield_now(),
            Err(TryRecvError::Empty) => return Ok(None),
            Err(TryRecvError::Disconnected) => return Err(()),
        }
    }
}

/// The midpoint of a TrueTime interval: the local clock's reading, which
/// replica deadlines are expressed in.
fn local(now: TtInterval) -> Timestamp {
    Timestamp::from_nanos(now.earliest.as_nanos() / 2 + now.latest.as_nanos() / 2)
}

impl Driver {
    fn run(&mut self, rx: Receiver<Event>) {
        set_timer_slack();
        let now = self.clock.now();
        let groups: Vec<GroupId> = self.replicas.keys().copied().collect();
        for g in groups {
            let mut out = std::mem::take(&mut self.out);
            if let Some(r) = self.replicas.get_mut(&g) {
                r.start(now, &mut out);
            }
            self.absorb(g, &mut out);
            self.out = out;
        }
        // Replaying a parent's log re-emits the seeds of its splits.
        self.create_children(now);
        self.flush();
        loop {
            let Ok(first) = next_event(&rx, self.sleep_time()) else {
                return;
            };
            let mut taken = 0;
            let mut next = first;
            while let Some(ev) = next {
                if matches!(ev, Event::Shutdown) {
                    self.flush();
                    return;
                }
                self.handle(ev);
                taken += 1;
                if taken >= MAX_EVENTS_PER_TURN {
                    break;
                }
                next = match rx.try_recv() {
                    Ok(ev) => Some(ev),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => return,
                };
            }
            self.tick_due();
            self.check_splits();
            self.flush();
            if self.failed {
                return;
            }
        }
    }

    /// When `group`'s replica next needs a tick: its own deadline, or the
    /// end of its campaign hold if later and it does not lead.
    fn deadline(&self, group: GroupId, r: &GroupReplica) -> Timestamp {
        match self.holds.get(&group) {
            Some(h) if r.paxos().role() != Role::Leader => r.next_deadline().max(*h),
            _ => r.next_deadline(),
        }
    }

    fn sleep_time(&self) -> Duration {
        let now = local(self.clock.now());
        let due = self
            .replicas
            .iter()
            .map(|(g, r)| self.deadline(*g, r))
            .min()
            .unwrap_or(Timestamp::MAX);
        if due <= now {
            Duration::ZERO
        } else {
            Duration::from_nanos(due.nanos_since(now)).min(MAX_SLEEP)
        }
    }

    fn tick_due(&mut self) {
        let now = self.clock.now();
        let t = local(now);
        if !self.holds.is_empty() {
            self.holds.retain(|_, h| *h > t);
        }
        let due: Vec<GroupId> = self
            .replicas
            .iter()
            .filter(|(g, r)| self.deadline(**g, r) <= t)
            .map(|(g, _)| *g)
            .collect();
        for g in due {
            self.step(g, now, Input::Tick);
        }
    }

    /// Asks the led ranges' split policies, once per
    /// [`crate::autosplit::SPLIT_CHECK_INTERVAL`].
    fn check_splits(&mut self) {
        let Some(w) = &mut self.splits else {
            return;
        };
        let at = Instant::now();
        if w.due(at) && w.check(at, local(self.clock.now()), &self.replicas) {
            self.views_dirty = true;
        }
    }

    fn step(&mut self, group: GroupId, now: TtInterval, input: Input) {
        let mut out = std::mem::take(&mut self.out);
        match self.replicas.get_mut(&group) {
            Some(r) => r.step(now, input, &mut out),
            None => return,
        }
        self.absorb(group, &mut out);
        self.out = out;
        // Group messages between local replicas go round within the turn.
        while let Some((g, msg)) = self.internal.pop_front() {
            let mut out = std::mem::take(&mut self.out);
            if let Some(r) = self.replicas.get_mut(&g) {
                r.step(now, Input::FromGroup(msg), &mut out);
            }
            self.absorb(g, &mut out);
            self.out = out;
        }
        self.create_children(now);
    }

    /// Creates the children of the splits the last steps applied, each on
    /// this node beside its parent's replica (docs/design.md §6, "Split
    /// children"): the child's first persist request (its snapshot and
    /// promise) is written and synced before the child exists, so it
    /// answers nothing and sends nothing a crash would forget. A seed for
    /// a child this node already hosts (recovered from its own records,
    /// and re-emitted by the parent's replay) is ignored, as is one for an
    /// id this node dropped.
    fn create_children(&mut self, now: TtInterval) {
        while let Some(seed) = self.seeds.pop() {
            let child = seed.group;
            if self.replicas.contains_key(&child) {
                tracing::debug!(child, "split seed for a child this node has: ignored");
                continue;
            }
            if self.log.is_dropped(child) {
                tracing::warn!(child, "split seed for a dropped group id: ignored");
                continue;
            }
            let parent = seed.parent;
            let mut cfg = self
                .replicas
                .get(&parent)
                .map_or_else(|| self.template.clone(), |r| r.config().clone());
            cfg.group = child;
            cfg.descriptor = seed.descriptor.clone();
            cfg.paxos.id = self.node;
            cfg.paxos.initial_voters = seed.snapshot.membership.voters.clone();
            let nodes = self
                .group_nodes
                .get(&parent)
                .cloned()
                .unwrap_or_else(|| seed.snapshot.membership.voters.clone());
            let started = Instant::now();
            let mut replica =
                GroupReplica::from_split(cfg, seed, Box::new(self.replica_rng(child)));
            let mut out = Vec::new();
            replica.start(now, &mut out);
            let first = Output::take_persists(&mut out);
            let made = started.elapsed();
            if self.sync_now(child, &first).is_err() {
                return;
            }
            tracing::info!(
                child,
                parent,
                made_ms = made.as_millis() as u64,
                durable_ms = (started.elapsed() - made).as_millis() as u64,
                "split child created"
            );
            self.group_nodes.insert(child, nodes);
            self.replicas.insert(child, replica);
            self.views_dirty = true;
            self.absorb(child, &mut out);
            if let Some(seq) = first.iter().map(|r| r.seq).max() {
                if let Some(r) = self.replicas.get_mut(&child) {
                    r.step(now, Input::Persisted { seq }, &mut out);
                }
                self.absorb(child, &mut out);
            }
        }
    }

    fn handle(&mut self, ev: Event) {
        let now = self.clock.now();
        match ev {
            Event::Request {
                group,
                request,
                reply,
            } => {
                if !self.replicas.contains_key(&group) {
                    // Dropped since the service looked: nothing was done,
                    // and the caller's retry finds the group gone.
                    let _ = reply.send(Err(meridian_txn::TxnError::LeaderNotReady));
                    return;
                }
                if let Some(w) = &mut self.splits {
                    w.record(group, local(now), &request);
                }
                let id = self.next_request;
                self.next_request += 1;
                self.pending.insert(id, (group, reply));
                self.step(group, now, Input::Request { id, request });
            }
            Event::Peer { group, msg } => {
                self.observe_round_trip(now, &msg);
                self.step(group, now, Input::Message(msg))
            }
            Event::FromGroup { group, msg } => self.step(group, now, Input::FromGroup(msg)),
            Event::WaitsFor(reply) => {
                let edges = self
                    .replicas
                    .iter()
                    .flat_map(|(g, r)| r.waits_for().into_iter().map(|w| (*g, w)))
                    .collect();
                let _ = reply.send(edges);
            }
            Event::Membership {
                group,
                change,
                reply,
            } => {
                let mut out = std::mem::take(&mut self.out);
                let result = match self.replicas.get_mut(&group) {
                    Some(r) => r
                        .propose_membership(now, change, &mut out)
                        .map_err(crate::admin::membership_error),
                    None => Err(meridian_proto::RemoteError::NoReplica { group }),
                };
                self.absorb(group, &mut out);
                self.out = out;
                self.views_dirty = true;
                let _ = reply.send(result);
            }
            Event::AddPeer { node, queue } => {
                tracing::info!(peer = node, "peer added");
                self.peers.insert(node, queue);
            }
            Event::ClockHealth { ok, reason } => {
                // docs/design.md §2: out of bound, every replica steps down,
                // campaigns for nothing and refuses to serve until it is back.
                self.clock_ok.store(ok, Ordering::Relaxed);
                let groups: Vec<GroupId> = self.replicas.keys().copied().collect();
                for g in groups {
                    let reason = reason.clone();
                    self.step(g, now, Input::ClockHealth { ok, reason });
                }
                self.views_dirty = true;
            }
            Event::HandOver => {
                let leading: Vec<GroupId> = self
                    .replicas
                    .iter()
                    .filter(|(_, r)| r.paxos().role() == Role::Leader)
                    .map(|(g, _)| *g)
                    .collect();
                for g in leading {
                    self.step(g, now, Input::HandOver { to: None });
                }
                self.views_dirty = true;
            }
            Event::AddReplica { seed, reply } => {
                let result = self.add_replica(now, *seed);
                self.views_dirty = true;
                let _ = reply.send(result);
            }
            Event::DropReplica { group, reply } => {
                let result = self.drop_replica(group);
                self.views_dirty = true;
                let _ = reply.send(result);
            }
            Event::Shutdown => {}
        }
    }

    /// The configuration of this node's replica of `group`, from the
    /// node's template.
    fn replica_config(&self, group: GroupId, voters: Vec<NodeId>) -> meridian_txn::Config {
        let mut cfg = self.template.clone();
        cfg.group = group;
        cfg.paxos.id = self.node;
        cfg.paxos.initial_voters = voters;
        cfg
    }

    /// Creates a replica from `seed`: its state is written and synced
    /// first, then the replica is created from it, started, and its
    /// outputs join the turn's.
    fn add_replica(&mut self, now: TtInterval, seed: ReplicaSeed) -> Result<(), ReplicaError> {
        let group = seed.group;
        if group == 0 || group > meridian_txn::MAX_GROUP_ID {
            return Err(ReplicaError::Invalid(format!(
                "group id {group} is outside 1..={}",
                meridian_txn::MAX_GROUP_ID
            )));
        }
        if self.replicas.contains_key(&group) {
            return Err(ReplicaError::AlreadyHosted { group });
        }
        if self.log.is_dropped(group) {
            return Err(ReplicaError::Dropped { group });
        }
        let first = PersistRequest {
            hard_state: Some(seed.state.hard_state),
            snapshot: seed.state.snapshot.clone(),
            entries: seed.state.entries.clone(),
            ..PersistRequest::default()
        };
        if seed.state.snapshot.is_none() {
            return Err(ReplicaError::Invalid(format!(
                "group {group}: a seed without a snapshot (its membership and state)"
            )));
        }
        // Durable before the replica exists: nothing reaches a replica that
        // a crash would forget.
        self.sync_now(group, &[first])?;
        let mut cfg = self.replica_config(group, seed.voters.clone());
        cfg.descriptor = seed.descriptor;
        self.group_nodes.entry(group).or_insert(seed.voters);
        let mut replica = GroupReplica::new(cfg, seed.state, Box::new(self.replica_rng(group)));
        let mut out = std::mem::take(&mut self.out);
        replica.start(now, &mut out);
        self.replicas.insert(group, replica);
        tracing::info!(group, "replica created");
        self.absorb(group, &mut out);
        self.out = out;
        Ok(())
    }

    /// Writes `reqs` of `group` and syncs the log at once, within the
    /// current event (the turn's other persist requests are not yet
    /// written, so nothing else becomes durable early).
    fn sync_now(&mut self, group: GroupId, reqs: &[PersistRequest]) -> Result<(), ReplicaError> {
        for req in reqs {
            if let Err(e) = self.log.write(group, req) {
                let reason = format!("write-ahead log write failed: {e}");
                self.fail(&reason);
                return Err(ReplicaError::Log(reason));
            }
        }
        if let Err(e) = self.log.sync() {
            let reason = format!(
                "write-ahead log fsync failed: {e}; the page cache can no longer be trusted"
            );
            self.fail(&reason);
            return Err(ReplicaError::Log(reason));
        }
        Ok(())
    }

    /// Drops the replica of `group`: its unwritten persist requests are
    /// discarded, its waiting callers released, and the drop made durable.
    fn drop_replica(&mut self, group: GroupId) -> Result<(), ReplicaError> {
        if self.replicas.remove(&group).is_none() {
            return Err(ReplicaError::NotHosted { group });
        }
        self.persist.retain(|(g, _)| *g != group);
        self.internal.retain(|(g, _)| *g != group);
        // Their oneshots close: the services answer "unavailable".
        self.pending.retain(|_, (g, _)| *g != group);
        if let Err(e) = self.log.drop_group(group) {
            let reason = format!("write-ahead log write failed: {e}");
            self.fail(&reason);
            return Err(ReplicaError::Log(reason));
        }
        self.sync_now(group, &[])?;
        tracing::info!(group, "replica dropped");
        Ok(())
    }

    fn replica_rng(&self, group: GroupId) -> rand::rngs::SmallRng {
        <rand::rngs::SmallRng as rand::SeedableRng>::seed_from_u64(
            self.clock.now().latest.as_nanos() ^ (self.node << 32) ^ group,
        )
    }

    /// Sorts one step's outputs into the turn's batches.
    fn absorb(&mut self, group: GroupId, out: &mut Vec<Output>) {
        for o in out.drain(..) {
            match o {
                Output::Send(m) => {
                    self.encode_buf.clear();
                    codec::encode_message(&m, &mut self.encode_buf);
                    let body = self.encode_buf.split().freeze();
                    self.outbound
                        .entry(m.to)
                        .or_default()
                        .push(pb::PeerMessage {
                            group,
                            body: Some(pb::peer_message::Body::Paxos(body)),
                        });
                }
                Output::Persist(req) => self.persist.push((group, req)),
                Output::ToGroup { group: to, msg } => self.send_to_group(to, msg),
                Output::Reply { id, reply } => {
                    self.metrics.observe_reply(&reply);
                    if let Some((_, tx)) = self.pending.remove(&id) {
                        let _ = tx.send(reply);
                    }
                }
                Output::RoleChanged { role, leader } => {
                    tracing::info!(group, ?role, ?leader, "role changed");
                    if role == Role::Leader {
                        self.metrics.elections.inc(group);
                    }
                    self.views_dirty = true;
                }
                Output::Applied(entries) => {
                    self.metrics.applied.add(group, entries.len() as u64);
                }
                Output::SnapshotRestored { last_slot } => {
                    tracing::info!(group, last_slot, "restored a snapshot");
                    self.metrics.snapshots_restored.inc(group);
                }
                Output::SplitChild(seed) => self.seeds.push(*seed),
            }
        }
    }

    fn send_to_group(&mut self, to: GroupId, msg: GroupMessage) {
        // The configured replicas, and the voters this node's own replica of
        // the group knows: a node added by a membership change (and not in
        // the configuration) may lead it. Borrowed field by field: this
        // runs for every two-phase-commit message, so nothing is collected
        // but for a group the node does not know.
        let configured: &[NodeId] = self.group_nodes.get(&to).map_or(&[], Vec::as_slice);
        let voters: &[NodeId] = self
            .replicas
            .get(&to)
            .map_or(&[], |r| r.paxos().membership().voters.as_slice());
        // A group this node neither hosts nor was configured with: a
        // split's child created on other nodes (replicas are placed on
        // some of the nodes only). Every peer gets the message; those
        // without a replica of the group drop it.
        let everyone: Vec<NodeId> = if configured.is_empty() && voters.is_empty() {
            self.peers.keys().copied().collect()
        } else {
            Vec::new()
        };
        let nodes = configured
            .iter()
            .chain(voters.iter().filter(|v| !configured.contains(v)))
            .chain(everyone.iter());
        let mut body: Option<Bytes> = None;
        for &n in nodes {
            if n == self.node {
                self.internal.push_back((to, msg.clone()));
                continue;
            }
            let b = body.get_or_insert_with(|| {
                let mut buf = BytesMut::new();
                codec::encode_group_message(&msg, &mut buf);
                buf.freeze()
            });
            self.outbound.entry(n).or_default().push(pb::PeerMessage {
                group: to,
                body: Some(pb::peer_message::Body::GroupMessage(b.clone())),
            });
        }
    }

    /// Carries out the turn's outputs: one batch per peer, then one sync
    /// of the log whose `Persisted` steps may add outputs of their own,
    /// carried out the same way until none asks for a sync.
    fn flush(&mut self) {
        loop {
            self.send_outbound();
            if self.persist.is_empty() || self.failed {
                break;
            }
            self.sync_log();
        }
        if self.views_dirty || self.last_publish.elapsed() >= VIEW_REFRESH {
            self.views_dirty = false;
            self.last_publish = Instant::now();
            self.publish_views();
        }
    }

    /// Writes the turn's persist requests, makes them durable with one
    /// `fdatasync` (group commit across groups) and steps `Persisted` into
    /// each group, whose outputs join the turn's.
    fn sync_log(&mut self) {
        let mut batch = std::mem::take(&mut self.persist);
        let requests = batch.len();
        // Highest sequence written per group.
        let mut durable: BTreeMap<GroupId, u64> = BTreeMap::new();
        for (group, req) in batch.drain(..) {
            if let Err(e) = self.log.write(group, &req) {
                return self.fail(&format!("write-ahead log write failed: {e}"));
            }
            let d = durable.entry(group).or_default();
            *d = (*d).max(req.seq);
        }
        // Empty, its capacity kept for the steps below and later turns.
        self.persist = batch;
        let started = Instant::now();
        if let Err(e) = self.log.sync() {
            return self.fail(&format!(
                "write-ahead log fsync failed: {e}; the page cache can no longer be trusted"
            ));
        }
        self.metrics.observe_fsync(started.elapsed(), requests);
        let now = self.clock.now();
        for (group, seq) in durable {
            self.step(group, now, Input::Persisted { seq });
        }
    }

    fn fail(&mut self, reason: &str) {
        self.failed = true;
        (self.fatal)(reason);
    }

    fn send_outbound(&mut self) {
        for (to, msgs) in self.outbound.iter_mut() {
            if msgs.is_empty() {
                continue;
            }
            let Some(q) = self.peers.get(to) else {
                msgs.clear();
                continue;
            };
            for m in msgs.drain(..) {
                // A full queue means the peer is down or slow: Paxos and
                // two-phase commit resend what matters.
                if q.try_send(m).is_err() {
                    self.metrics.peer_drops.inc();
                }
            }
        }
    }

    /// A Paxos round trip, leader to acceptor and back (the acceptor's
    /// fsync included): an `Accepted` echoes the `TT.now().earliest` its
    /// leader stamped on the `Accept`, so both ends are this node's clock.
    fn observe_round_trip(&self, now: TtInterval, msg: &Message) {
        if let meridian_paxos::Body::Accepted { lease_start, .. } = msg.body {
            if lease_start > Timestamp::ZERO && now.earliest >= lease_start {
                let rtt = now.earliest.nanos_since(lease_start);
                self.metrics
                    .paxos_round_trip
                    .observe_duration(Duration::from_nanos(rtt));
            }
        }
    }

    fn publish_views(&self) {
        let mut views = self.views.write();
        views.retain(|g, _| self.replicas.contains_key(g));
        let now = local(self.clock.now());
        for (g, r) in &self.replicas {
            let p = r.paxos();
            // Sampled once per publication: how far behind the clock a
            // snapshot read at this replica must stay.
            let t_safe = r.t_safe();
            if t_safe > Timestamp::ZERO && now >= t_safe {
                self.metrics
                    .t_safe_lag
                    .observe_duration(Duration::from_nanos(now.nanos_since(t_safe)));
            }
            views.insert(
                *g,
                GroupView {
                    group: *g,
                    leader: p.leader(),
                    leading: r.is_leading(),
                    role: Some(p.role()),
                    chosen: p.chosen(),
                    applied: p.applied(),
                    t_safe,
                    active_txns: r.active_txns(),
                    voters: p.membership().voters.clone(),
                    descriptor: Some(r.state().descriptor().clone()),
                    bytes: r.state().range_bytes(),
                    split: self.splits.as_ref().and_then(|w| w.decision(*g).cloned()),
                },
            );
        }
    }
}

/// Sets the calling thread's timer slack to [`TIMER_SLACK_NANOS`]; best
/// effort (the default slack is only later wake-ups).
fn set_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK takes an integer argument and changes
    // only the calling thread's timer slack.
    let rc = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, TIMER_SLACK_NANOS, 0, 0, 0) };
    if rc != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "timer slack not set");
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Callers still waiting learn nothing more from this loop; their
        // oneshots close and the services answer "unavailable".
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log whose every sync fails, as a disk that returns `EIO`.
    struct FailingLog;

    impl Log for FailingLog {
        fn write(&mut self, _group: GroupId, _req: &PersistRequest) -> Result<(), String> {
            Ok(())
        }
        fn drop_group(&mut self, _group: GroupId) -> Result<(), String> {
            Ok(())
        }
        fn is_dropped(&self, _group: GroupId) -> bool {
            false
        }
        fn sync(&mut self) -> Result<(), String> {
            Err("injected EIO".to_owned())
        }
    }

    #[test]
    fn a_failed_sync_calls_the_fatal_handler_and_ends_the_loop() {
        let (fatal_tx, fatal_rx) = crossbeam_channel::unbounded::<String>();
        let fatal: FatalHandler = Arc::new(move |reason: &str| {
            let _ = fatal_tx.send(reason.to_owned());
        });
        let paxos = meridian_paxos::Config::new(1, vec![1]);
        let handle = start(LoopSetup {
            node: 1,
            replicas: vec![(meridian_txn::Config::new(1, paxos), Recovered::default())],
            group_nodes: BTreeMap::from([(1, vec![1])]),
            clock: Arc::new(meridian_truetime::SystemTrueTime::new(1_000_000)),
            log: Box::new(FailingLog),
            peers: HashMap::new(),
            fatal,
            metrics: Arc::default(),
            template: meridian_txn::Config::new(0, meridian_paxos::Config::new(1, vec![])),
            campaign_holds: BTreeMap::new(),
            splits: None,
        })
        .expect("start");
        // The single replica campaigns by itself; its promise is the first
        // thing the loop syncs.
        let reason = fatal_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the fatal handler is called");
        assert!(reason.contains("fsync failed"), "{reason}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !handle.thread.is_finished() {
            assert!(
                Instant::now() < deadline,
                "the loop goes on after a failed sync"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        // Nothing was stepped after the failure: the handler ran once.
        assert!(fatal_rx.try_recv().is_err());
        handle.shutdown();
    }

    /// What a log was asked, in order.
    #[derive(Clone, Debug, PartialEq, Eq)]
    enum Op {
        Write(GroupId),
        Drop(GroupId),
        Sync,
    }

    #[derive(Default)]
    struct RecordingLog {
        ops: Arc<parking_lot::Mutex<Vec<Op>>>,
        dropped: BTreeSet<GroupId>,
    }

    impl Log for RecordingLog {
        fn write(&mut self, group: GroupId, _req: &PersistRequest) -> Result<(), String> {
            self.ops.lock().push(Op::Write(group));
            Ok(())
        }
        fn drop_group(&mut self, group: GroupId) -> Result<(), String> {
            self.dropped.insert(group);
            self.ops.lock().push(Op::Drop(group));
            Ok(())
        }
        fn is_dropped(&self, group: GroupId) -> bool {
            self.dropped.contains(&group)
        }
        fn sync(&mut self) -> Result<(), String> {
            self.ops.lock().push(Op::Sync);
            Ok(())
        }
    }

    /// A group id beyond the 16 bits ids once had.
    const NEW_GROUP: GroupId = 70_000;

    fn single_node_loop() -> (LoopHandle, Arc<parking_lot::Mutex<Vec<Op>>>) {
        let log = RecordingLog::default();
        let ops = log.ops.clone();
        let paxos = meridian_paxos::Config::new(1, vec![1]);
        let handle = start(LoopSetup {
            node: 1,
            replicas: vec![(meridian_txn::Config::new(1, paxos), Recovered::default())],
            group_nodes: BTreeMap::from([(1, vec![1])]),
            clock: Arc::new(meridian_truetime::SystemTrueTime::new(1_000_000)),
            log: Box::new(log),
            peers: HashMap::new(),
            fatal: Arc::new(|reason: &str| panic!("fatal: {reason}")),
            metrics: Arc::default(),
            template: meridian_txn::Config::new(0, meridian_paxos::Config::new(1, vec![])),
            campaign_holds: BTreeMap::new(),
            splits: None,
        })
        .expect("start");
        (handle, ops)
    }

    fn range_from(group: GroupId, start: &'static [u8]) -> RangeDescriptor {
        RangeDescriptor {
            group,
            start: Bytes::from_static(start),
            end: None,
            generation: 1,
        }
    }

    fn add(h: &LoopHandle, seed: ReplicaSeed) -> Result<(), ReplicaError> {
        let (reply, rx) = oneshot::channel();
        h.inbox
            .send(Event::AddReplica {
                seed: Box::new(seed),
                reply,
            })
            .expect("loop alive");
        rx.blocking_recv().expect("an answer")
    }

    fn drop_replica(h: &LoopHandle, group: GroupId) -> Result<(), ReplicaError> {
        let (reply, rx) = oneshot::channel();
        h.inbox
            .send(Event::DropReplica { group, reply })
            .expect("loop alive");
        rx.blocking_recv().expect("an answer")
    }

    /// Begins a transaction at `group`, retrying while its replica elects
    /// itself; `None` if the loop closed the request unanswered.
    fn begin(h: &LoopHandle, group: GroupId) -> Option<Reply> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (reply, rx) = oneshot::channel();
            h.inbox
                .send(Event::Request {
                    group,
                    request: Request::Begin {
                        priority: None,
                        mode: meridian_txn::CcMode::Locking,
                        reserve: 0,
                    },
                    reply,
                })
                .expect("loop alive");
            let r = rx.blocking_recv().ok()?;
            if r.is_ok() || Instant::now() > deadline {
                return Some(r);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_for_views(h: &LoopHandle, what: impl Fn(&BTreeMap<GroupId, GroupView>) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !what(&h.views.read()) {
            assert!(Instant::now() < deadline, "views never got there");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn runtime_a_replica_added_at_run_time_is_durable_before_it_is_given_anything() {
        let (h, ops) = single_node_loop();
        add(&h, ReplicaSeed::empty(vec![1], range_from(NEW_GROUP, b"m"))).expect("added");
        {
            // The seed's write is the new group's first, and a sync
            // follows it at once: before the replica existed.
            let ops = ops.lock();
            let first = ops
                .iter()
                .position(|o| *o == Op::Write(NEW_GROUP))
                .expect("the seed was written");
            assert_eq!(ops.get(first + 1), Some(&Op::Sync), "{ops:?}");
        }
        assert!(
            matches!(begin(&h, NEW_GROUP), Some(Ok(_))),
            "the new group serves"
        );
        wait_for_views(&h, |v| {
            v.get(&NEW_GROUP)
                .is_some_and(|v| v.descriptor == Some(range_from(NEW_GROUP, b"m")) && v.leading)
        });
        assert_eq!(
            add(&h, ReplicaSeed::empty(vec![1], range_from(NEW_GROUP, b"m"))),
            Err(ReplicaError::AlreadyHosted { group: NEW_GROUP })
        );
        let mut bare = ReplicaSeed::empty(vec![1], range_from(NEW_GROUP + 1, b"x"));
        bare.state = Recovered::default();
        assert!(matches!(add(&h, bare), Err(ReplicaError::Invalid(_))));
        let too_big = ReplicaSeed::empty(vec![1], range_from(meridian_txn::MAX_GROUP_ID + 1, b"x"));
        assert!(matches!(add(&h, too_big), Err(ReplicaError::Invalid(_))));
        h.shutdown();
    }

    #[test]
    fn runtime_a_dropped_replica_stops_serving_its_drop_is_durable_and_its_id_never_reused() {
        let (h, ops) = single_node_loop();
        add(&h, ReplicaSeed::empty(vec![1], range_from(NEW_GROUP, b"m"))).expect("added");
        assert!(matches!(begin(&h, NEW_GROUP), Some(Ok(_))));
        drop_replica(&h, NEW_GROUP).expect("dropped");
        {
            let ops = ops.lock();
            let at = ops
                .iter()
                .position(|o| *o == Op::Drop(NEW_GROUP))
                .expect("the drop was logged");
            assert_eq!(ops.get(at + 1), Some(&Op::Sync), "durable before the reply");
            assert!(
                !ops[at..].contains(&Op::Write(NEW_GROUP)),
                "nothing of the group is written after its drop: {ops:?}"
            );
        }
        wait_for_views(&h, |v| !v.contains_key(&NEW_GROUP) && v.contains_key(&1));
        let (reply, rx) = oneshot::channel();
        h.inbox
            .send(Event::Request {
                group: NEW_GROUP,
                request: Request::Abort {
                    txn: meridian_participant::TxnId::new(1, 1),
                },
                reply,
            })
            .expect("loop alive");
        assert_eq!(
            rx.blocking_recv().expect("answered"),
            Err(meridian_txn::TxnError::LeaderNotReady),
            "a request for the dropped group is refused, retryable, nothing done"
        );
        assert_eq!(
            add(&h, ReplicaSeed::empty(vec![1], range_from(NEW_GROUP, b"m"))),
            Err(ReplicaError::Dropped { group: NEW_GROUP })
        );
        assert_eq!(
            drop_replica(&h, NEW_GROUP),
            Err(ReplicaError::NotHosted { group: NEW_GROUP })
        );
        assert!(
            matches!(begin(&h, 1), Some(Ok(_))),
            "the other group goes on"
        );
        h.shutdown();
    }

    /// A real log whose calls are also recorded.
    struct Recorded {
        wal: crate::storage::Wal,
        ops: Arc<parking_lot::Mutex<Vec<Op>>>,
    }

    impl Log for Recorded {
        fn write(&mut self, group: GroupId, req: &PersistRequest) -> Result<(), String> {
            self.ops.lock().push(Op::Write(group));
            Log::write(&mut self.wal, group, req)
        }
        fn drop_group(&mut self, group: GroupId) -> Result<(), String> {
            self.ops.lock().push(Op::Drop(group));
            Log::drop_group(&mut self.wal, group)
        }
        fn is_dropped(&self, group: GroupId) -> bool {
            Log::is_dropped(&self.wal, group)
        }
        fn sync(&mut self) -> Result<(), String> {
            self.ops.lock().push(Op::Sync);
            Log::sync(&mut self.wal)
        }
    }

    /// A one-node loop on the log in `dir`, its groups as a node recovers
    /// them: group 1 from the configuration, any other from its records.
    fn loop_on(dir: &std::path::Path) -> (LoopHandle, Arc<parking_lot::Mutex<Vec<Op>>>) {
        let (wal, mut recovered) =
            crate::storage::Wal::open(dir, crate::storage::WalOptions::default()).expect("open");
        let ops = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let template = meridian_txn::Config::new(0, meridian_paxos::Config::new(1, vec![]));
        let mut replicas = vec![(
            meridian_txn::Config::new(1, meridian_paxos::Config::new(1, vec![1])),
            recovered.remove(&1).unwrap_or_default(),
        )];
        for (group, state) in recovered {
            let mut c = template.clone();
            c.group = group;
            c.descriptor = RangeDescriptor {
                group,
                start: Bytes::new(),
                end: Some(Bytes::new()),
                generation: 0,
            };
            replicas.push((c, state));
        }
        let handle = start(LoopSetup {
            node: 1,
            replicas,
            group_nodes: BTreeMap::from([(1, vec![1])]),
            clock: Arc::new(meridian_truetime::SystemTrueTime::new(1_000_000)),
            log: Box::new(Recorded {
                wal,
                ops: ops.clone(),
            }),
            peers: HashMap::new(),
            fatal: Arc::new(|reason: &str| panic!("fatal: {reason}")),
            metrics: Arc::default(),
            template,
            campaign_holds: BTreeMap::new(),
            splits: None,
        })
        .expect("start");
        (handle, ops)
    }

    /// Asks `request` of `group` until it is answered without a retryable
    /// error (the replica elects itself first).
    fn ask(h: &LoopHandle, group: GroupId, request: Request) -> meridian_txn::Response {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (reply, rx) = oneshot::channel();
            h.inbox
                .send(Event::Request {
                    group,
                    request: request.clone(),
                    reply,
                })
                .expect("loop alive");
            match rx.blocking_recv() {
                Ok(Ok(r)) => return r,
                Ok(Err(e)) if e.is_retryable() && Instant::now() < deadline => {}
                other => panic!("{request:?} at group {group}: {other:?}"),
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn get(h: &LoopHandle, group: GroupId, key: &'static [u8]) -> Option<Bytes> {
        match ask(
            h,
            group,
            Request::ReadOnly {
                at: meridian_txn::ReadAt::Strong,
                reads: vec![meridian_txn::ReadOp::Get(Bytes::from_static(key))],
            },
        ) {
            meridian_txn::Response::ReadOnly { results, .. } => match &results[..] {
                [meridian_txn::ReadResult::Value(v)] => v.clone(),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
    }

    /// The driver rules of a split (docs/design.md §6, "Split children"):
    /// the child is created beside the parent, its first persist request
    /// written and synced before it exists; after a restart it comes back
    /// from its own records, not from the seed the parent's replay emits
    /// again, and serves the half it took with the data written before.
    #[test]
    fn runtime_split_child_is_durable_before_it_serves_and_recovered_from_its_own_records() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (h, ops) = loop_on(dir.path());
        let txn = match ask(
            &h,
            1,
            Request::Begin {
                priority: None,
                mode: meridian_txn::CcMode::Locking,
                reserve: 0,
            },
        ) {
            meridian_txn::Response::Begun { txn, .. } => txn,
            other => panic!("{other:?}"),
        };
        let writes = [&b"apple"[..], b"peach"]
            .iter()
            .map(|k| {
                meridian_participant::Write::put(Bytes::from_static(k), Bytes::from_static(b"v"))
            })
            .collect();
        ask(
            &h,
            1,
            Request::Commit {
                txn,
                writes,
                participants: Vec::new(),
            },
        );
        let child = NEW_GROUP;
        match ask(
            &h,
            1,
            Request::Split {
                key: Bytes::from_static(b"m"),
                child,
            },
        ) {
            meridian_txn::Response::Split { left, right } => {
                assert_eq!(left.end, Some(Bytes::from_static(b"m")));
                assert_eq!((right.group, right.start.as_ref()), (child, &b"m"[..]));
            }
            other => panic!("{other:?}"),
        }
        // The leader answers in the step that applies the split; the child
        // is created as that step ends.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ops = ops.lock().clone();
            if let Some(first) = ops.iter().position(|o| *o == Op::Write(child)) {
                if let Some(next) = ops.get(first + 1) {
                    assert_eq!(next, &Op::Sync, "synced before anything else: {ops:?}");
                    break;
                }
            }
            assert!(Instant::now() < deadline, "no child: {ops:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(get(&h, child, b"peach"), Some(Bytes::from_static(b"v")));
        assert_eq!(get(&h, 1, b"apple"), Some(Bytes::from_static(b"v")));
        h.shutdown();

        let (h, _ops) = loop_on(dir.path());
        wait_for_views(&h, |v| {
            v.get(&child)
                .and_then(|c| c.descriptor.as_ref())
                .is_some_and(|d| d.start.as_ref() == b"m")
                && v.get(&1)
                    .and_then(|p| p.descriptor.as_ref())
                    .is_some_and(|d| d.end.as_deref() == Some(&b"m"[..]))
        });
        assert_eq!(get(&h, child, b"peach"), Some(Bytes::from_static(b"v")));
        assert_eq!(get(&h, 1, b"apple"), Some(Bytes::from_static(b"v")));
        h.shutdown();
    }

    #[test]
    fn the_loop_wakes_for_an_event_at_once_and_for_its_timer_on_time() {
        let (tx, rx) = crossbeam_channel::unbounded::<Event>();
        // A timer that passes with nothing in the inbox: `None`, not early.
        let wait = Duration::from_millis(3);
        let start = Instant::now();
        assert!(matches!(next_event(&rx, wait), Ok(None)));
        assert!(start.elapsed() >= wait);
        // Inside the polled stretch too.
        assert!(matches!(next_event(&rx, TIMER_POLL / 2), Ok(None)));
        // An event already queued is taken without waiting out the timer.
        tx.send(Event::Shutdown).expect("receiver alive");
        let start = Instant::now();
        assert!(matches!(
            next_event(&rx, Duration::from_secs(10)),
            Ok(Some(Event::Shutdown))
        ));
        assert!(start.elapsed() < Duration::from_secs(5));
        // Every sender gone: the loop ends.
        drop(tx);
        assert!(next_event(&rx, Duration::from_millis(1)).is_err());
    }
}
