//! The trace of one run (`meridian-sim run --trace`): one line per event
//! worth reading, on stdout, at virtual time relative to the run's start.
//!
//! A line reads `+4.743229s send    n1→n2 accept b3.1 slots 13-15 prev
//! 12@3.1 commit 12`: the time, the kind of line, then what happened.
//! Replicas are `n1`, `n2`, …; clients of the transaction layer are `c0`,
//! `c1`, …; ballots are `round.node`; timestamps are relative to the start
//! of the run like the time column. A [`TraceFilter`] keeps the lines about
//! one node, client, transaction or kind of event.

use std::cell::Cell;
use std::fmt::Write as _;
use std::io::Write as _;
use std::str::FromStr;

use meridian_participant::{TxnId, Write};
use meridian_paxos::{Ballot, Body, Message, NodeId, Payload, Role};
use meridian_truetime::Timestamp;
use meridian_txn::{
    GroupMessage, ReadAt, ReadOp, ReadResult, Reply, Request, Response, TxnError, Vote,
};

use crate::world::{Adversary, ClockProfile, EPOCH, Faults, HandOvers, MS};

/// What a trace line is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TraceKind {
    /// A message (peer or client) put on the network.
    Send,
    /// A message (peer or client) delivered.
    Deliver,
    /// What a client does that is not a message: a Paxos proposal, a
    /// transaction's outcome given up on. `kind=client` also keeps every
    /// message to or from a client.
    Client,
    /// Faults: crashes, restarts, partitions, pauses, power loss,
    /// membership changes, the heal.
    Fault,
    /// A replica's role or leader changed.
    Role,
}

impl TraceKind {
    /// Every kind, with its name in a filter.
    pub const ALL: [(&'static str, TraceKind); 5] = [
        ("send", TraceKind::Send),
        ("deliver", TraceKind::Deliver),
        ("client", TraceKind::Client),
        ("fault", TraceKind::Fault),
        ("role", TraceKind::Role),
    ];

    /// The name in a filter and in the trace's kind column.
    pub fn name(self) -> &'static str {
        TraceKind::ALL
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("?", |(n, _)| n)
    }
}

/// Who a trace line is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Party {
    /// A replica, by id.
    Node(NodeId),
    /// A client of the transaction layer, by index.
    Client(usize),
}

/// Which trace lines to print. Parsed from `key=value[|value…]` terms
/// separated by commas: `node=2`, `client=0`, `kind=send|deliver`,
/// `txn=1a.3`. Different keys must all match (and); the values of one key,
/// or one key given twice, are alternatives (or). The empty filter keeps
/// every line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TraceFilter {
    kinds: Vec<TraceKind>,
    nodes: Vec<NodeId>,
    clients: Vec<usize>,
    txns: Vec<String>,
}

impl TraceFilter {
    /// Both filters' terms in one (as if written in one string): the
    /// values given for one key are joined as alternatives.
    pub fn merge(mut self, other: TraceFilter) -> TraceFilter {
        self.kinds.extend(other.kinds);
        self.nodes.extend(other.nodes);
        self.clients.extend(other.clients);
        self.txns.extend(other.txns);
        self
    }

    fn keeps(&self, kind: TraceKind, parties: &[Party], txn: Option<TxnId>) -> bool {
        let has_client = parties.iter().any(|p| matches!(p, Party::Client(_)));
        let kind_ok = self.kinds.is_empty()
            || self.kinds.contains(&kind)
            || (has_client && self.kinds.contains(&TraceKind::Client));
        let node_ok = self.nodes.is_empty()
            || parties
                .iter()
                .any(|p| matches!(p, Party::Node(n) if self.nodes.contains(n)));
        let client_ok = self.clients.is_empty()
            || parties
                .iter()
                .any(|p| matches!(p, Party::Client(c) if self.clients.contains(c)));
        let txn_ok = self.txns.is_empty()
            || txn.is_some_and(|t| self.txns.iter().any(|s| *s == t.to_string()));
        kind_ok && node_ok && client_ok && txn_ok
    }
}

impl FromStr for TraceFilter {
    type Err = String;

    fn from_str(s: &str) -> Result<TraceFilter, String> {
        let mut f = TraceFilter::default();
        for term in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (key, values) = term.split_once('=').ok_or_else(|| {
                format!("{term:?} is not key=value (keys: node, client, kind, txn)")
            })?;
            for v in values.split('|').map(str::trim) {
                if v.is_empty() {
                    return Err(format!("{term:?} has an empty value"));
                }
                match key.trim() {
                    "node" => f.nodes.push(
                        v.trim_start_matches('n')
                            .parse()
                            .map_err(|_| format!("node {v:?} is not a replica id (1, 2, …)"))?,
                    ),
                    "client" => f.clients.push(
                        v.trim_start_matches('c')
                            .parse()
                            .map_err(|_| format!("client {v:?} is not a client index (0, 1, …)"))?,
                    ),
                    "kind" => f.kinds.push(
                        TraceKind::ALL
                            .iter()
                            .find(|(n, _)| *n == v)
                            .map(|(_, k)| *k)
                            .ok_or_else(|| {
                                format!(
                                    "unknown kind {v:?} (kinds: send, deliver, client, fault, role)"
                                )
                            })?,
                    ),
                    "txn" => f.txns.push(v.to_string()),
                    other => {
                        return Err(format!(
                            "unknown key {other:?} (keys: node, client, kind, txn)"
                        ));
                    }
                }
            }
        }
        Ok(f)
    }
}

/// Writes a run's trace lines to stdout, if tracing.
pub(crate) struct Tracer {
    filter: Option<TraceFilter>,
    /// Stdout was closed (say, `| head`): stop writing, finish the run.
    closed: Cell<bool>,
}

impl Tracer {
    pub(crate) fn new(filter: Option<TraceFilter>) -> Tracer {
        Tracer {
            filter,
            closed: Cell::new(false),
        }
    }

    /// Whether any line may be printed (to skip work otherwise).
    pub(crate) fn on(&self) -> bool {
        self.filter.is_some() && !self.closed.get()
    }

    fn write(&self, line: &str) {
        let mut out = std::io::stdout().lock();
        if writeln!(out, "{line}").is_err() {
            self.closed.set(true);
        }
    }

    /// The run's first line, describing what the seed drew (never
    /// filtered).
    pub(crate) fn header(&self, text: impl FnOnce() -> String) {
        if self.on() {
            self.write(&text());
        }
    }

    /// One line at `at` (nanoseconds since the run began).
    pub(crate) fn line(
        &self,
        at: u64,
        kind: TraceKind,
        parties: &[Party],
        txn: Option<TxnId>,
        text: impl FnOnce() -> String,
    ) {
        let Some(f) = &self.filter else { return };
        if self.closed.get() || !f.keeps(kind, parties, txn) {
            return;
        }
        self.write(&format!("{:>11} {:<7} {}", since(at), kind.name(), text()));
    }
}

/// `+S.UUUUUUs`: nanoseconds since the run began, to the microsecond.
pub fn since(nanos: u64) -> String {
    format!(
        "+{}.{:06}s",
        nanos / 1_000_000_000,
        nanos % 1_000_000_000 / 1_000
    )
}

/// A timestamp relative to the start of the run, like the time column;
/// `0` for [`Timestamp::ZERO`] (none), `max` for [`Timestamp::MAX`].
pub(crate) fn ts(t: Timestamp) -> String {
    if t == Timestamp::ZERO {
        "0".into()
    } else if t == Timestamp::MAX {
        "max".into()
    } else if t.0 >= EPOCH {
        since(t.0 - EPOCH)
    } else {
        format!("-{}", &since(EPOCH - t.0)[1..])
    }
}

fn ballot(b: Ballot) -> String {
    format!("{}.{}", b.round, b.node)
}

/// A node's role change: `n2 is follower of n1`.
pub(crate) fn role(id: NodeId, role: Role, leader: Option<NodeId>) -> String {
    let r = match role {
        Role::Follower => "follower",
        Role::Candidate => "candidate",
        Role::Leader => "leader",
    };
    match (role, leader) {
        (Role::Follower, Some(l)) => format!("n{id} is follower of n{l}"),
        (Role::Follower, None) => format!("n{id} is follower (no known leader)"),
        _ => format!("n{id} is {r}"),
    }
}

/// A Paxos message, without payloads: `n1→n2 accept b3.1 slots 13-15 prev
/// 12@3.1 commit 12`.
pub(crate) fn message(m: &Message) -> String {
    let mut s = format!("n{}→n{} ", m.from, m.to);
    let b = ballot(m.ballot);
    match &m.body {
        Body::Prepare {
            last_slot,
            last_ballot,
            pre_vote,
            hand_over,
        } => {
            let what = match (*pre_vote, *hand_over) {
                (true, _) => "pre-vote",
                (false, true) => "prepare (taking over)",
                (false, false) => "prepare",
            };
            let _ = write!(s, "{what} b{b} last {last_slot}@{}", ballot(*last_ballot));
        }
        Body::TakeOver { last_slot } => {
            let _ = write!(s, "take over b{b} last {last_slot}");
        }
        Body::Promise {
            granted,
            pre_vote,
            lease_until,
        } => {
            let what = if *pre_vote { "pre-vote" } else { "promise" };
            let answer = if *granted { "granted" } else { "refused" };
            let _ = write!(s, "{what} {answer} b{b}");
            if *lease_until != Timestamp::ZERO {
                let _ = write!(s, " lease until {}", ts(*lease_until));
            }
        }
        Body::Accept {
            prev_slot,
            prev_ballot,
            entries,
            commit,
            ..
        } => {
            if entries.is_empty() {
                let _ = write!(s, "heartbeat b{b} commit {commit}");
            } else {
                let first = entries[0].slot;
                let last = entries[entries.len() - 1].slot;
                let slots = if first == last {
                    format!("slot {first}")
                } else {
                    format!("slots {first}-{last}")
                };
                let _ = write!(
                    s,
                    "accept b{b} {slots} prev {prev_slot}@{} commit {commit}",
                    ballot(*prev_ballot)
                );
                let noops = entries
                    .iter()
                    .filter(|e| e.payload == Payload::Noop)
                    .count();
                let configs = entries
                    .iter()
                    .filter(|e| matches!(e.payload, Payload::Config(_)))
                    .count();
                if noops > 0 {
                    let _ = write!(s, " ({noops} no-op)");
                }
                if configs > 0 {
                    let _ = write!(s, " ({configs} config)");
                }
            }
        }
        Body::Accepted { ok, upto, .. } => {
            if *ok {
                let _ = write!(s, "accepted b{b} upto {upto}");
            } else {
                let _ = write!(s, "accept refused b{b} resend from {upto}");
            }
        }
        Body::InstallSnapshot { snapshot, .. } => {
            let _ = write!(s, "snapshot b{b} through slot {}", snapshot.last_slot);
        }
    }
    if m.epoch > 0 {
        let _ = write!(s, " epoch {}", m.epoch);
    }
    s
}

/// What happened to a message on the network: ` [lost]`, ` [duplicated]`.
pub(crate) fn fate(copies: usize) -> &'static str {
    match copies {
        0 => " [lost]",
        1 => "",
        _ => " [duplicated]",
    }
}

fn keys<'a>(ks: impl Iterator<Item = &'a bytes::Bytes>) -> String {
    ks.map(|k| String::from_utf8_lossy(k).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The transaction a request is about, if any.
pub(crate) fn request_txn(r: &Request) -> Option<TxnId> {
    match r {
        Request::Read { txn, .. }
        | Request::Scan { txn, .. }
        | Request::Commit { txn, .. }
        | Request::Abort { txn }
        | Request::Heartbeat { txn }
        | Request::TxnStatus { txn } => Some(*txn),
        Request::Begin { .. } | Request::ReadOnly { .. } | Request::Split { .. } => None,
    }
}

/// How a trace line marks an optimistic transaction.
fn mode_note(mode: meridian_txn::CcMode) -> &'static str {
    match mode {
        meridian_txn::CcMode::Locking => "",
        meridian_txn::CcMode::Optimistic => " optimistic",
    }
}

/// The transaction a two-phase-commit message is about.
pub(crate) fn group_message_txn(m: &GroupMessage) -> TxnId {
    match m {
        GroupMessage::Prepare { txn, .. }
        | GroupMessage::Vote { txn, .. }
        | GroupMessage::Decide { txn, .. }
        | GroupMessage::Ack { txn, .. }
        | GroupMessage::Wound { txn }
        | GroupMessage::Query { txn, .. } => *txn,
    }
}

/// A two-phase-commit message, without values: `prepare txn 1a.3 (coordinator
/// group 1, writes acct/01)`, `vote yes at +0.5s txn 1a.3 from group 2`.
pub(crate) fn group_message(m: &GroupMessage) -> String {
    match m {
        GroupMessage::Prepare {
            txn,
            coordinator,
            writes,
            ..
        } => format!(
            "prepare txn {txn} (coordinator group {coordinator}, writes {})",
            keys(writes.iter().map(|w: &Write| &w.key))
        ),
        GroupMessage::Vote { txn, from, vote } => match vote {
            Vote::Yes(t) => format!("vote yes at {} on txn {txn} from group {from}", ts(*t)),
            Vote::No(why) => format!("vote no on txn {txn} from group {from}: {why}"),
        },
        GroupMessage::Decide { txn, decision, .. } => match decision {
            meridian_participant::Decision::Commit(t) => {
                format!("decide commit at {} for txn {txn}", ts(*t))
            }
            meridian_participant::Decision::Abort => format!("decide abort for txn {txn}"),
        },
        GroupMessage::Ack { txn, from } => format!("ack txn {txn} from group {from}"),
        GroupMessage::Wound { txn } => format!("wound txn {txn} (an older one waits for it)"),
        GroupMessage::Query { txn, from, .. } => {
            format!("query the outcome of txn {txn} from group {from}")
        }
    }
}

/// ` reserving N ids`, or nothing for none.
fn reserve_note(n: u32) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(" reserving {n} ids")
    }
}

/// A client request, without values: `begin`, `read txn 1a.3 acct/01
/// acct/02`, `commit txn 1a.3 writes acct/01 acct/02`.
pub(crate) fn request(r: &Request) -> String {
    match r {
        Request::Begin {
            priority: None,
            mode,
            reserve,
        } => format!("begin{}{}", mode_note(*mode), reserve_note(*reserve)),
        Request::Begin {
            priority: Some(p),
            mode,
            reserve,
        } => format!(
            "begin{}{} (retry, priority {})",
            mode_note(*mode),
            reserve_note(*reserve),
            ts(p.0)
        ),
        Request::Read {
            txn,
            keys: k,
            guest: None,
        } => format!("read txn {txn} {}", keys(k.iter())),
        Request::Read {
            txn,
            keys: k,
            guest: Some(g),
        } => format!(
            "read txn {txn} {} (guest, term {})",
            keys(k.iter()),
            g.term.map_or("first".to_string(), |t| format!("{t:x}"))
        ),
        Request::Scan {
            txn,
            start,
            end,
            limit,
            guest,
        } => format!(
            "scan txn {txn} [{}, {}) limit {limit}{}",
            String::from_utf8_lossy(start),
            end.as_ref()
                .map_or("∞".into(), |e| String::from_utf8_lossy(e).into_owned()),
            guest.map_or(String::new(), |g| format!(
                " (guest, term {})",
                g.term.map_or("first".to_string(), |t| format!("{t:x}"))
            ))
        ),
        Request::Commit {
            txn,
            writes,
            participants,
        } if writes.is_empty() && participants.is_empty() => {
            format!("commit txn {txn} (no writes)")
        }
        Request::Commit {
            txn,
            writes,
            participants,
        } => {
            let mut line = format!(
                "commit txn {txn} writes {}",
                keys(writes.iter().map(|w: &Write| &w.key))
            );
            for p in participants {
                line.push_str(&format!(
                    "; group {} writes {}",
                    p.group,
                    keys(p.writes.iter().map(|w: &Write| &w.key))
                ));
            }
            line
        }
        Request::Abort { txn } => format!("abort txn {txn}"),
        Request::Heartbeat { txn } => format!("heartbeat txn {txn}"),
        Request::TxnStatus { txn } => format!("status of txn {txn}"),
        Request::Split { key, child } => {
            format!(
                "split at {} into group {child}",
                String::from_utf8_lossy(key)
            )
        }
        Request::ReadOnly { at, reads } => {
            let at = match at {
                ReadAt::Strong => "strong".to_string(),
                ReadAt::Exact(t) => format!("at {}", ts(*t)),
                ReadAt::MaxStaleness(n) => format!("max staleness {} ms", n / MS),
            };
            let gets = reads.iter().filter(|r| matches!(r, ReadOp::Get(_))).count();
            let scans = reads.len() - gets;
            format!("read-only {at}: {gets} gets, {scans} scans")
        }
    }
}

/// A reply, without values: `begun txn 1a.3`, `committed at +4.100000s`,
/// `error: transaction 1a.3 aborted: wounded by an older transaction`.
pub(crate) fn reply(r: &Reply) -> String {
    match r {
        Ok(Response::Begun {
            txn,
            priority,
            reserved,
        }) => {
            format!(
                "begun txn {txn} priority {}{}",
                ts(priority.0),
                reserve_note(*reserved)
            )
        }
        Ok(Response::Read { values, .. }) => format!("read {} values", values.len()),
        Ok(Response::Rows { rows, .. }) => format!("scanned {} rows", rows.len()),
        Ok(Response::Committed { commit_ts }) => format!("committed at {}", ts(*commit_ts)),
        Ok(Response::Aborted) => "aborted".into(),
        Ok(Response::Split { left, right }) => format!("split: {left} and {right}"),
        Ok(Response::Alive) => "alive".into(),
        Ok(Response::TxnStatus(s)) => match s {
            meridian_txn::TxnStatus::Committed(t) => format!("status: committed at {}", ts(*t)),
            meridian_txn::TxnStatus::Aborted => "status: aborted".into(),
            meridian_txn::TxnStatus::InProgress => "status: in progress".into(),
            meridian_txn::TxnStatus::Unknown => "status: unknown".into(),
        },
        Ok(Response::ReadOnly { read_ts, results }) => {
            let rows: usize = results
                .iter()
                .map(|r| match r {
                    ReadResult::Value(_) => 1,
                    ReadResult::Rows(rows) => rows.len(),
                })
                .sum();
            format!("read-only at {}: {rows} values", ts(*read_ts))
        }
        Err(e) => format!("error: {}", error(e)),
    }
}

/// A transaction error, with timestamps relative to the run and node ids
/// as in the rest of the trace.
pub(crate) fn error(e: &TxnError) -> String {
    match e {
        TxnError::NotLeader { leader: Some(l) } => format!("not the leader (try n{l})"),
        TxnError::NotLeader { leader: None } => "not the leader (no known leader)".into(),
        TxnError::LockQueueFull { key } => {
            format!("lock queue full for key {}", String::from_utf8_lossy(key))
        }
        TxnError::NotYetSafe { read_ts, t_safe } => format!(
            "read at {} not yet safe here (t_safe {})",
            ts(*read_ts),
            ts(*t_safe)
        ),
        TxnError::BelowGcHorizon { read_ts, horizon } => format!(
            "read at {} below the GC horizon {}",
            ts(*read_ts),
            ts(*horizon)
        ),
        other => other.to_string(),
    }
}

/// The transaction a reply names, if any.
pub(crate) fn reply_txn(r: &Reply) -> Option<TxnId> {
    match r {
        Ok(Response::Begun { txn, .. }) => Some(*txn),
        Err(
            TxnError::Aborted { txn, .. }
            | TxnError::OutcomeUnknown { txn }
            | TxnError::TxnBusy { txn }
            | TxnError::TooLateToAbort { txn },
        ) => Some(*txn),
        _ => None,
    }
}

fn pct(p: f64) -> String {
    format!("{}%", (p * 1000.0).round() / 10.0)
}

fn ms(nanos: u64) -> String {
    let whole = nanos / MS;
    let tenths = nanos % MS / (MS / 10);
    if tenths == 0 {
        format!("{whole}")
    } else {
        format!("{whole}.{tenths}")
    }
}

/// The fault mix of a run, in words, as two indented lines. `membership`:
/// whether the layer changes membership at all (the transaction layer
/// never does); `pause`: the per-tick probability of a process pause, in a
/// layer that pauses replicas.
pub(crate) fn faults(f: &Faults, membership: bool, pause: Option<f64>) -> String {
    let mut s = format!(
        "  messages: drop {} duplicate {} straggle {} delay {}-{} ms; disk sync up to {} ms\n  \
         per fault tick: crash {} partition {} power loss {}",
        pct(f.drop),
        pct(f.duplicate),
        pct(f.straggle),
        ms(f.delay_min),
        ms(f.delay_max),
        ms(f.disk_max),
        pct(f.crash),
        pct(f.partition),
        pct(f.power_loss),
    );
    if let Some(p) = pause {
        let _ = write!(s, " pause {}", pct(p));
    }
    let _ = write!(
        s,
        "; compaction {}",
        if f.compaction { "on" } else { "off" }
    );
    if membership {
        let _ = write!(
            s,
            "; membership churn {}",
            if f.membership { "on" } else { "off" }
        );
    }
    s
}

/// The hand-over fault's rates, for a run's header (nothing if it is off).
pub(crate) fn hand_overs(h: &HandOvers) -> String {
    let mut s = String::new();
    if h.probability > 0.0 {
        let _ = write!(s, "; leader hand-over {}", pct(h.probability));
    }
    if h.after_election > 0.0 {
        let _ = write!(s, "; new leaders handing over {}", pct(h.after_election));
    }
    s
}

/// A leader asked to hand its leadership over.
pub(crate) fn hand_over(leader: NodeId, to: Option<NodeId>) -> String {
    match to {
        Some(t) => format!("hand-over: n{leader} is asked to hand its leadership to n{t}"),
        None => format!("hand-over: n{leader} is asked to hand its leadership on"),
    }
}

/// The clocks and adversarial schedules of a run, in words.
pub(crate) fn schedule(p: ClockProfile, a: &Adversary) -> String {
    format!(
        "clocks {}; election timers {}; new leaders crashed {}",
        clocks(p),
        if a.lockstep {
            "in lockstep"
        } else {
            "independent"
        },
        pct(a.crash_new_leader)
    )
}

/// A clock profile, in words.
fn clocks(p: ClockProfile) -> &'static str {
    match p {
        ClockProfile::InStep => "in step",
        ClockProfile::Staggered => "staggered sync phases",
        ClockProfile::Mixed => "mixed epsilon, drift and period per node",
        ClockProfile::Wide => "wide epsilon (10-60 ms)",
    }
}

/// A partition drawn by the network (see `Network::maybe_partition`).
pub(crate) fn partition(kind: u32, victim: NodeId, leader: Option<NodeId>) -> String {
    match (kind, leader) {
        (0, Some(_)) => format!("partition: leader n{victim} cut off both ways"),
        (2, _) => format!("partition: n{victim} unheard (its messages are lost)"),
        (3, Some(l)) => format!("partition: link n{l}-n{victim} cut both ways"),
        _ => format!("partition: n{victim} cut off both ways"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_and_combine() {
        let f: TraceFilter = "node=2,kind=send|deliver".parse().unwrap();
        assert!(f.keeps(TraceKind::Send, &[Party::Node(1), Party::Node(2)], None));
        assert!(!f.keeps(TraceKind::Send, &[Party::Node(1), Party::Node(3)], None));
        assert!(!f.keeps(TraceKind::Fault, &[Party::Node(2)], None));
        let g = f.merge("txn=1a.3".parse().unwrap());
        assert!(!g.keeps(TraceKind::Send, &[Party::Node(2)], None));
        assert!(g.keeps(
            TraceKind::Send,
            &[Party::Node(2)],
            Some(TxnId::new(0x1a, 3))
        ));
        let c: TraceFilter = "kind=client".parse().unwrap();
        assert!(c.keeps(
            TraceKind::Deliver,
            &[Party::Client(0), Party::Node(1)],
            None
        ));
        assert!(!c.keeps(TraceKind::Deliver, &[Party::Node(2), Party::Node(1)], None));
        assert!("node=x".parse::<TraceFilter>().is_err());
        assert!("colour=red".parse::<TraceFilter>().is_err());
        assert!("kind=tick".parse::<TraceFilter>().is_err());
        assert!("node".parse::<TraceFilter>().is_err());
    }

    #[test]
    fn times_are_relative_to_the_run() {
        assert_eq!(since(4_743_229_123), "+4.743229s");
        assert_eq!(ts(Timestamp(EPOCH + 1_500_000)), "+0.001500s");
        assert_eq!(ts(Timestamp(EPOCH - 2_000_000_000)), "-2.000000s");
        assert_eq!(ts(Timestamp::ZERO), "0");
    }
}
