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

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use meridian_participant::WaitsFor;
use meridian_paxos::{MembershipChange, Message, NodeId, PersistRequest, Recovered, Role};
use meridian_proto::pb;
use meridian_truetime::{Timestamp, TrueTime, TtInterval};
use meridian_txn::{GroupId, GroupMessage, GroupReplica, Input, Output, Reply, Request};
use parking_lot::RwLock;
use tokio::sync::oneshot;

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
    /// Makes every buffered write durable with one sync. An error is fatal:
    /// the process must end (no retry after a failed fsync).
    fn sync(&mut self) -> Result<(), String>;
}

/// A log that keeps nothing (for tests of the runtime alone).
#[derive(Debug, Default)]
pub struct NullLog;

impl Log for NullLog {
    fn write(&mut self, _group: GroupId, _req: &PersistRequest) -> Result<(), String> {
        Ok(())
    }
    fn sync(&mut self) -> Result<(), String> {
        Ok(())
    }
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
    /// Bytes of the newest live version of each key of the replica's
    /// range ([`meridian_participant::GroupState::range_bytes`]).
    pub bytes: u64,
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
    /// Replicas that are not their group's preferred leader
    /// ([`crate::config::preferred_leader`]) and how long after the loop
    /// starts they stay without timer ticks, so none of them campaigns
    /// before the preferred replica has had its election timeout
    /// ([`crate::server::PREFERRED_LEADER_HEAD_START_TIMEOUTS`]). Only
    /// timing changes: a held replica still answers every message, and a
    /// leader is never held.
    pub campaign_holds: BTreeMap<GroupId, Duration>,
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
        views: views.clone(),
        clock_ok: clock_ok.clone(),
        pending: HashMap::new(),
        next_request: 1,
        internal: VecDeque::new(),
        out: Vec::new(),
        persist: Vec::new(),
        outbound: HashMap::new(),
        views_dirty: true,
        last_publish: Instant::now(),
        encode_buf: BytesMut::new(),
        holds,
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
    views: Views,
    clock_ok: Arc<AtomicBool>,
    pending: HashMap<u64, oneshot::Sender<Reply>>,
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
    }

    fn handle(&mut self, ev: Event) {
        let now = self.clock.now();
        match ev {
            Event::Request {
                group,
                request,
                reply,
            } => {
                let id = self.next_request;
                self.next_request += 1;
                self.pending.insert(id, reply);
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
            Event::Shutdown => {}
        }
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
                    if let Some(tx) = self.pending.remove(&id) {
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
            }
        }
    }

    fn send_to_group(&mut self, to: GroupId, msg: GroupMessage) {
        // The configured replicas, and the voters this node's own replica of
        // the group knows: a node added by a membership change (and not in
        // the configuration) may lead it. Borrowed field by field: this
        // runs for every two-phase-commit message, so nothing is collected.
        let configured: &[NodeId] = self.group_nodes.get(&to).map_or(&[], Vec::as_slice);
        let voters: &[NodeId] = self
            .replicas
            .get(&to)
            .map_or(&[], |r| r.paxos().membership().voters.as_slice());
        let nodes = configured
            .iter()
            .chain(voters.iter().filter(|v| !configured.contains(v)));
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
                    bytes: r.state().range_bytes(),
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
            campaign_holds: BTreeMap::new(),
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
