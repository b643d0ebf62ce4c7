//! What clients ask of a group replica and what they are told (docs/design.md
//! §5): requests, responses, typed errors, and the limits every request is
//! checked against.
//!
//! These types are the client API of one participant group. The simulator
//! and the test drivers pass them as they are; the planned node runtime
//! will map them to and from gRPC messages.

use bytes::Bytes;
use meridian_participant::{Decision, Priority, RangeDescriptor, TxnId, Write};
use meridian_paxos::NodeId;
use meridian_truetime::Timestamp;

/// Longest key accepted, in bytes (docs/design.md §6). Keys are at least one
/// byte.
pub const MAX_KEY_BYTES: usize = 4096;

/// Longest value accepted, in bytes (docs/design.md §6: 256 KiB).
pub const MAX_VALUE_BYTES: usize = 256 * 1024;

/// Most operations (keys read plus keys written) in one transaction, and
/// most reads in one read-only request (docs/design.md §6).
pub const MAX_TXN_OPERATIONS: usize = 1000;

/// Identifies a request to the driver that submitted it; every reply
/// carries it. Chosen by the driver, opaque to the core.
pub type RequestId = u64;

/// A participant group's id (at most [`crate::MAX_GROUP_ID`]).
pub type GroupId = u64;

/// The leadership term of a participant group as a transaction knows it
/// (docs/design.md §5.1): the origin of the ids that term's leader issues.
/// A transaction's locks at a group live exactly as long as the term in
/// which it took them, so every request after the first one at a group
/// names the term the first one met; a different term means the locks
/// are gone and the transaction must abort.
pub type Term = u64;

/// How a read-write transaction controls concurrency, chosen per
/// transaction at [`Request::Begin`] (docs/design.md §5.1, §5.4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CcMode {
    /// Two-phase locking under wound-wait (Spanner §4.2.1): reads take
    /// shared locks and wait for them; commit takes exclusive locks and
    /// waits for them.
    #[default]
    Locking,
    /// FaRM-style optimistic concurrency control (Dragojević et al., SOSP
    /// 2015): reads take no locks and record the version they saw; at
    /// commit (or prepare) the writes are try-locked without waiting, the
    /// recorded reads are validated and held shared until the outcome. A
    /// conflict aborts retryably ([`AbortReason::Conflict`]); the
    /// transaction never waits for a lock and never wounds.
    Optimistic,
}

/// How a group other than a transaction's home group (the one whose leader
/// began it, named in its [`TxnId`]) knows the transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Guest {
    /// The transaction's wound-wait priority, from
    /// [`Response::Begun`].
    pub priority: Priority,
    /// The term the transaction's first request at this group met
    /// ([`Response::Read::term`]); `None` for the first request.
    pub term: Option<Term>,
    /// The transaction's concurrency control, as at its `Begin`: a group
    /// learns it on first contact (later requests' modes are ignored).
    pub mode: CcMode,
}

/// The part of a cross-group transaction at one participant group other
/// than its coordinator (docs/design.md §5.1).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Participant {
    /// The group.
    pub group: GroupId,
    /// The term the transaction's reads there met; `None` if it only
    /// writes there.
    pub term: Option<Term>,
    /// Its writes there.
    pub writes: Vec<Write>,
}

/// A client request to a group replica.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Begins a read-write transaction at the group leader, which issues
    /// its [`TxnId`]. `priority` is the wound-wait priority of a retried
    /// transaction (its first attempt's); `None` for a first attempt, which
    /// gets `TT.now().latest` at the leader (Spanner §4.2.1).
    Begin {
        /// The priority to keep, for a retry.
        priority: Option<Priority>,
        /// Locking (2PL under wound-wait) or optimistic (FaRM OCC).
        mode: CcMode,
        /// How many further ids to reserve for the same client's later
        /// transactions at this group (docs/design.md §5.1, reserved
        /// transaction ids); at most [`crate::MAX_RESERVE_PER_BEGIN`] are
        /// granted. A reserved id is begun by its first request here: a
        /// read or scan naming it with a [`Guest`] whose `term` is `None`,
        /// which saves the `Begin` round trip.
        reserve: u32,
    },
    /// Reads `keys` at the leader: for a [`CcMode::Locking`] transaction
    /// under shared locks (Spanner §4.2.1), waiting for conflicting locks
    /// under wound-wait; for a [`CcMode::Optimistic`] one without locks,
    /// the newest applied version, recorded for validation at commit.
    Read {
        /// The transaction.
        txn: TxnId,
        /// Keys to read, in order.
        keys: Vec<Bytes>,
        /// `None` at the transaction's home group; elsewhere, how this
        /// group knows it.
        guest: Option<Guest>,
    },
    /// Scans `[start, end)` (`end` `None`: no upper bound) at the leader:
    /// the newest applied values of at most `limit` keys in the range, in
    /// key order. Same serving, guest and term rules as [`Request::Read`].
    /// A [`CcMode::Locking`] transaction first takes a shared *range* lock
    /// on the whole requested range under wound-wait, held until the
    /// outcome, so no other transaction writes inside it — an existing key
    /// or a new one (no phantoms; Spanner §2.1, §4.2.1). A
    /// [`CcMode::Optimistic`] one takes no lock; the rows it saw (keys and
    /// versions) are validated at commit or prepare, where the range is
    /// then held shared until the outcome (docs/design.md §5.4).
    ///
    /// The rows are the group's committed state only: the transaction's
    /// own buffered writes are the client's, which overlays them on the
    /// rows (they are not sent before `Commit`). Counts as one operation
    /// plus one per row returned towards [`MAX_TXN_OPERATIONS`].
    Scan {
        /// The transaction.
        txn: TxnId,
        /// First key (empty: from the first key there is).
        start: Bytes,
        /// Bound after the last key, if any.
        end: Option<Bytes>,
        /// Most rows to return (at most
        /// [`meridian_participant::mvcc::MAX_SCAN_ROWS`]).
        limit: usize,
        /// `None` at the transaction's home group; elsewhere, how this
        /// group knows it.
        guest: Option<Guest>,
    },
    /// Commits the transaction, sent to its home group's leader. With no
    /// `participants`: one-phase commit of `writes` in one Paxos round.
    /// Otherwise the home group coordinates two-phase commit over itself
    /// and `participants` (docs/design.md §5.1). A later write to a key
    /// replaces an earlier one in the same list.
    Commit {
        /// The transaction.
        txn: TxnId,
        /// Its writes at the home group.
        writes: Vec<Write>,
        /// The other groups it read or wrote at, with their writes.
        participants: Vec<Participant>,
    },
    /// Aborts the transaction and releases its locks.
    Abort {
        /// The transaction.
        txn: TxnId,
    },
    /// Keeps an idle transaction from the inactivity timeout (docs/design.md
    /// §5.1).
    Heartbeat {
        /// The transaction.
        txn: TxnId,
    },
    /// A lock-free read at a timestamp, served by any replica once its safe
    /// time reaches it: a read-only transaction (Spanner §4.2.2) or a
    /// snapshot read (§4.2.3).
    ReadOnly {
        /// Which timestamp to read at.
        at: ReadAt,
        /// What to read.
        reads: Vec<ReadOp>,
    },
    /// What became of `txn` (docs/design.md §5.5): asked of the leader of
    /// the transaction's home group (the group named in its id) by a
    /// client whose commit's outcome is unknown. Answered by a serving
    /// leader only (term started, lease held), from its group's commit
    /// records and its transaction table; see [`TxnStatus`].
    TxnStatus {
        /// The transaction.
        txn: TxnId,
    },
    /// Splits the group's range at `key` (docs/design.md §9), at its
    /// serving leader: the group keeps `[start, key)` and the new group
    /// `child` gets `[key, end)`. Answered [`Response::Split`] once the
    /// split has applied at this leader (every replica of the group then
    /// emits [`crate::Output::SplitChild`]); refused, with nothing
    /// changed, with [`TxnError::BadSplitKey`] for a key outside the range
    /// or at its start, or [`TxnError::RangeChangeInProgress`] while
    /// another split of the range is in flight. `child` is a group id
    /// never used before (the caller allocates it).
    Split {
        /// The first key of the right half.
        key: Bytes,
        /// The new group's id.
        child: GroupId,
    },
}

/// The answer to [`Request::TxnStatus`] (docs/design.md §5.5).
///
/// `Committed` and `Aborted` are final: no later answer, anywhere,
/// contradicts them. `InProgress` and `Unknown` are not outcomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TxnStatus {
    /// Committed at this timestamp (its commit record, or, for a
    /// cross-group transaction, its coordinator's decision record, is
    /// applied at the home group; sent only once `TT.after(ts)`).
    Committed(Timestamp),
    /// It did not commit and never will: the leader has applied every
    /// entry of earlier terms and holds its lease, and neither the log nor
    /// its own term has the transaction committing.
    Aborted,
    /// Still running or committing at this leader (its commit may yet
    /// land, or a transaction of a term this leader cannot judge): ask
    /// again.
    InProgress,
    /// Its commit record may have been pruned (older than the group's
    /// commit-record retention): it may or may not have committed.
    Unknown,
}

/// The timestamp of a lock-free read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReadAt {
    /// A strong read-only transaction (Spanner §4.2.2): at a leader that
    /// serves (term started, lease held) with nothing prepared, `s_read` is
    /// the highest Paxos write timestamp in its log rather than Spanner's
    /// `LastTS` (a follower whose clock runs ahead may already have applied
    /// one of the leader's entries), served at once when nothing is in
    /// flight; elsewhere `s_read = TT.now().latest`. Either way it is served
    /// once `t_safe` reaches `s_read`, and sees every transaction committed
    /// before the request arrived.
    Strong,
    /// A snapshot read at exactly this timestamp (Spanner §4.2.3).
    Exact(Timestamp),
    /// A bounded-staleness read: at the newest timestamp this replica can
    /// serve that is no older than `TT.now().latest - nanos`.
    MaxStaleness(u64),
}

/// One read of a read-only request.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ReadOp {
    /// The value of one key.
    Get(Bytes),
    /// The rows with `start ≤ key < end` (no upper bound if `end` is
    /// `None`), in key order, at most `limit` of them.
    Scan {
        /// First key.
        start: Bytes,
        /// Bound after the last key, if any.
        end: Option<Bytes>,
        /// Most rows to return (at most
        /// [`meridian_participant::mvcc::MAX_SCAN_ROWS`]).
        limit: usize,
    },
}

/// The result of one [`ReadOp`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ReadResult {
    /// A [`ReadOp::Get`]: the value, or `None` if the key has none.
    Value(Option<Bytes>),
    /// A [`ReadOp::Scan`]: `(key, value)` rows in key order.
    Rows(Vec<(Bytes, Bytes)>),
}

/// A successful answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// [`Request::Begin`]: the new transaction and its priority.
    Begun {
        /// The id the leader issued.
        txn: TxnId,
        /// Its wound-wait priority; pass it to `Begin` again on retry.
        priority: Priority,
        /// How many ids were reserved beside it: those of the same origin
        /// with sequence numbers `txn.seq + 1 ..= txn.seq + reserved`.
        reserved: u32,
    },
    /// [`Request::Read`]: one value per key, in order.
    Read {
        /// The values (`None`: no value).
        values: Vec<Option<Bytes>>,
        /// The group's term, to name in later requests there.
        term: Term,
    },
    /// [`Request::Scan`]: `(key, value)` rows in key order.
    Rows {
        /// The rows (deleted keys are not rows).
        rows: Vec<(Bytes, Bytes)>,
        /// The group's term, to name in later requests there.
        term: Term,
    },
    /// [`Request::Commit`]: committed at `commit_ts`; sent only once
    /// `TT.after(commit_ts)` (commit wait, Spanner §4.1.2).
    Committed {
        /// The commit timestamp.
        commit_ts: Timestamp,
    },
    /// [`Request::Abort`]: the transaction is aborted and its locks
    /// released.
    Aborted,
    /// [`Request::Heartbeat`]: the transaction is still alive.
    Alive,
    /// [`Request::ReadOnly`]: what the reads saw at `read_ts`.
    ReadOnly {
        /// The timestamp read at.
        read_ts: Timestamp,
        /// One result per read, in order.
        results: Vec<ReadResult>,
    },
    /// [`Request::TxnStatus`]: what became of the transaction.
    TxnStatus(TxnStatus),
    /// [`Request::Split`]: the split applied at the leader.
    Split {
        /// The range the group keeps.
        left: RangeDescriptor,
        /// The range the new group serves.
        right: RangeDescriptor,
    },
}

/// The answer to a [`Request`].
pub type Reply = Result<Response, TxnError>;

/// A participant's answer to a prepare.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Vote {
    /// Prepared at this timestamp; it will commit if told.
    Yes(Timestamp),
    /// Cannot prepare (wounded, its locks lost to a leader change, ...).
    No(AbortReason),
}

/// Two-phase commit between the leaders of participant groups
/// (docs/design.md §5.1). The driver delivers a message to the leader of
/// `to` — or to every replica of that group: a replica that does not lead
/// (or cannot serve yet) drops it, and the sender resends until answered.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum GroupMessage {
    /// Coordinator → participant: take the write locks, log a prepare
    /// record and vote.
    Prepare {
        /// The transaction.
        txn: TxnId,
        /// The coordinator group, to vote to and to ask.
        coordinator: GroupId,
        /// Its wound-wait priority.
        priority: Priority,
        /// The term its reads at the participant met, if it read there.
        term: Option<Term>,
        /// Its concurrency control (for a participant that first hears of
        /// the transaction here: it only writes there).
        mode: CcMode,
        /// Prepare records above this Paxos timestamp are void.
        deadline: Timestamp,
        /// Its writes at the participant.
        writes: Vec<Write>,
    },
    /// Participant → coordinator: the vote on `txn`.
    Vote {
        /// The transaction.
        txn: TxnId,
        /// The voting group.
        from: GroupId,
        /// The vote.
        vote: Vote,
    },
    /// Coordinator → participant: the outcome, to log and apply.
    Decide {
        /// The transaction.
        txn: TxnId,
        /// The group to acknowledge to.
        coordinator: GroupId,
        /// Commit at `s`, or abort.
        decision: Decision,
        /// The transaction's prepare deadline.
        deadline: Timestamp,
    },
    /// Participant → coordinator: the outcome of `txn` is logged here.
    Ack {
        /// The transaction.
        txn: TxnId,
        /// The acknowledging group.
        from: GroupId,
    },
    /// Participant → coordinator: an older transaction waits here for
    /// `txn`, which is prepared here; abort it if it is still collecting
    /// votes (wound-wait across groups, Spanner §4.2.1).
    Wound {
        /// The transaction to wound.
        txn: TxnId,
    },
    /// Prepared participant → coordinator: what became of `txn`? The
    /// coordinator answers with [`GroupMessage::Decide`] once it knows
    /// (presumed abort: no record of a commit means abort).
    Query {
        /// The transaction.
        txn: TxnId,
        /// The asking group.
        from: GroupId,
        /// The transaction's prepare deadline.
        deadline: Timestamp,
    },
}

/// Why a transaction was aborted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AbortReason {
    /// An older transaction needed its lock (wound-wait, Spanner §4.2.1).
    Wounded,
    /// The leader that held its locks lost leadership; the locks of
    /// unprepared transactions died with that term.
    LeaderChanged,
    /// No request arrived for longer than the inactivity timeout.
    Inactive,
    /// The client asked.
    ClientAbort,
    /// The leader's queues were full.
    Overloaded,
    /// The leader has no record of the transaction.
    Unknown,
    /// An optimistic transaction's write could not be locked without
    /// waiting, or one of its reads no longer validated (docs/design.md
    /// §5.4).
    Conflict,
}

impl std::fmt::Display for AbortReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AbortReason::Wounded => "wounded by an older transaction",
            AbortReason::LeaderChanged => "the group leader changed",
            AbortReason::Inactive => "inactive for longer than the timeout",
            AbortReason::ClientAbort => "aborted by the client",
            AbortReason::Overloaded => "the leader was overloaded",
            AbortReason::Unknown => "unknown to the leader",
            AbortReason::Conflict => "an optimistic read or write conflicted",
        })
    }
}

/// A request that breaks a limit; not retryable as it is.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRequest {
    /// Keys are at least one byte.
    #[error("empty key")]
    EmptyKey,
    /// A key longer than [`MAX_KEY_BYTES`].
    #[error("key of {len} bytes exceeds the maximum of {max}")]
    KeyTooLarge {
        /// The key's length.
        len: usize,
        /// [`MAX_KEY_BYTES`].
        max: usize,
    },
    /// A value longer than [`MAX_VALUE_BYTES`].
    #[error("value of {len} bytes exceeds the maximum of {max}")]
    ValueTooLarge {
        /// The value's length.
        len: usize,
        /// [`MAX_VALUE_BYTES`].
        max: usize,
    },
    /// More than [`MAX_TXN_OPERATIONS`] operations.
    #[error("{count} operations exceed the maximum of {max} per transaction")]
    TooManyOperations {
        /// Operations asked for (in the transaction so far, with this
        /// request).
        count: usize,
        /// [`MAX_TXN_OPERATIONS`].
        max: usize,
    },
    /// A scan limit above the store's maximum.
    #[error("scan limit {limit} exceeds the maximum of {max} rows")]
    ScanLimitTooLarge {
        /// The limit asked for.
        limit: usize,
        /// The maximum.
        max: usize,
    },
    /// A request with nothing to do (no keys, no reads).
    #[error("request has no operations")]
    Empty,
    /// A commit's participant group that is out of range, the home group
    /// itself, or named twice.
    #[error("participant group {group} is out of range, the home group, or named twice")]
    BadParticipant {
        /// The group.
        group: GroupId,
    },
    /// A [`Request::TxnStatus`] sent to a group other than the
    /// transaction's home group, which alone knows its outcome.
    #[error("the transaction's home group is {home}; ask its leader")]
    NotHomeGroup {
        /// The group named in the transaction's id.
        home: GroupId,
    },
}

/// Every error a client can see (docs/design.md §5.5). [`TxnError::is_retryable`]
/// says whether trying again (a new attempt, with the same priority) can
/// succeed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TxnError {
    /// This replica does not lead the group. Retryable at the leader.
    #[error("not the group leader (leader hint: {leader:?})")]
    NotLeader {
        /// The leader this replica follows, if known.
        leader: Option<NodeId>,
    },
    /// This replica leads but cannot serve yet: it is waiting out the
    /// previous leader's lease, catching up on its predecessors' entries,
    /// or has lost its lease. Retryable.
    #[error("the leader is not ready to serve (waiting for its lease or catching up)")]
    LeaderNotReady,
    /// The transaction was aborted; nothing it wrote is visible. Retryable
    /// as a new attempt.
    #[error("transaction {txn} aborted: {reason}")]
    Aborted {
        /// The transaction.
        txn: TxnId,
        /// Why.
        reason: AbortReason,
    },
    /// A lock wait queue is full. Retryable after a backoff; the
    /// transaction is still alive.
    #[error("lock queue full for key {key:?}")]
    LockQueueFull {
        /// The contended key.
        key: Bytes,
    },
    /// The group is overloaded. Retryable after a backoff.
    #[error("the group is overloaded; retry later")]
    Overloaded,
    /// The read's timestamp did not become safe here within the wait bound
    /// (Spanner §4.1.3). Retryable, here or at another replica.
    #[error("read at {read_ts} not yet safe at this replica (t_safe {t_safe})")]
    NotYetSafe {
        /// The timestamp asked for.
        read_ts: Timestamp,
        /// This replica's safe time when it gave up.
        t_safe: Timestamp,
    },
    /// The read's timestamp is below the garbage-collection horizon
    /// (docs/design.md §5.3). Not retryable at that timestamp.
    #[error("read at {read_ts} is below the GC horizon {horizon}")]
    BelowGcHorizon {
        /// The timestamp asked for.
        read_ts: Timestamp,
        /// The replica's GC horizon.
        horizon: Timestamp,
    },
    /// The read's timestamp is below the cluster's birth
    /// ([`crate::Config::birth`]): nothing was stored then, and answering
    /// "no value" would look as if the keys had been deleted then
    /// (docs/design.md §5.3). Not retryable at that timestamp.
    #[error("read at {read_ts} is below the cluster's birth ({birth}): nothing was stored then")]
    ReadBelowClusterBirth {
        /// The timestamp asked for.
        read_ts: Timestamp,
        /// The cluster's birth.
        birth: Timestamp,
    },
    /// The read's timestamp is more than the configured bound M
    /// ([`crate::Config::max_read_lead_nanos`]) ahead of this replica's
    /// `TT.now().latest`: serving it would mean waiting longer than a read
    /// should, or pushing later writes far into the future
    /// (docs/transactions.md, "Reads at a timestamp"). Not retryable at
    /// that timestamp.
    #[error(
        "read at {read_ts} is too far ahead of this replica's clock (TT.now().latest \
         {now_latest}, at most {max_lead_nanos} ns ahead is served)"
    )]
    ReadTimestampTooFarAhead {
        /// The timestamp asked for.
        read_ts: Timestamp,
        /// `TT.now().latest` at the replica that refused it.
        now_latest: Timestamp,
        /// The bound M it refused it by, in nanoseconds.
        max_lead_nanos: u64,
    },
    /// The commit was sent but its outcome could not be learned: it may or
    /// may not have committed. Neither success nor failure (docs/design.md
    /// §5.5).
    #[error("outcome of transaction {txn} is unknown")]
    OutcomeUnknown {
        /// The transaction.
        txn: TxnId,
    },
    /// Another request of this transaction is still in progress. A client
    /// sends one request per transaction at a time. Not retryable.
    #[error("transaction {txn} already has a request in progress")]
    TxnBusy {
        /// The transaction.
        txn: TxnId,
    },
    /// The transaction's commit is already under way; it can no longer be
    /// aborted. Its commit request will report the outcome.
    #[error("transaction {txn} is committing and can no longer abort")]
    TooLateToAbort {
        /// The transaction.
        txn: TxnId,
    },
    /// The request breaks a limit. Not retryable.
    #[error("invalid request: {0}")]
    Invalid(#[from] InvalidRequest),
    /// This replica's clock is outside its uncertainty bound (ε), as
    /// measured against its peers (docs/design.md §2): it refuses to lead
    /// or serve until its clock is back in bound. Retryable at another
    /// replica.
    #[error(
        "this node's clock is outside its uncertainty bound (ε): it refuses to lead or serve \
         until the clock is back in bound; retry at another replica ({reason})"
    )]
    ClockUnhealthy {
        /// What the node measured, as its driver reported it.
        reason: String,
    },
    /// A key or scan span outside the range this replica's group serves
    /// (its applied descriptor, or the left half of a split in flight at
    /// its leader; docs/design.md §9). Retryable once the caller has
    /// refreshed its routing: `descriptor` is what this replica serves.
    #[error("outside the range this group serves ({descriptor})")]
    OutsideRange {
        /// The range this replica serves.
        descriptor: RangeDescriptor,
    },
    /// A split key outside the range, or at its start: nothing changed.
    /// Not retryable.
    #[error("split key {key:?} is not strictly inside the range ({descriptor})")]
    BadSplitKey {
        /// The key asked for.
        key: Bytes,
        /// The range it had to lie in.
        descriptor: RangeDescriptor,
    },
    /// Another change of the range (a split) is in flight: nothing
    /// changed. Not retryable as it is (look at the range again first).
    #[error("another change of this range is in progress")]
    RangeChangeInProgress,
}

impl TxnError {
    /// Whether a retry (for a transaction: a new attempt with the same
    /// priority) can succeed (docs/design.md §5.5).
    pub fn is_retryable(&self) -> bool {
        match self {
            TxnError::NotLeader { .. }
            | TxnError::LeaderNotReady
            | TxnError::Aborted { .. }
            | TxnError::LockQueueFull { .. }
            | TxnError::Overloaded
            | TxnError::NotYetSafe { .. }
            | TxnError::ClockUnhealthy { .. }
            | TxnError::OutsideRange { .. } => true,
            TxnError::BelowGcHorizon { .. }
            | TxnError::ReadBelowClusterBirth { .. }
            | TxnError::ReadTimestampTooFarAhead { .. }
            | TxnError::OutcomeUnknown { .. }
            | TxnError::TxnBusy { .. }
            | TxnError::TooLateToAbort { .. }
            | TxnError::BadSplitKey { .. }
            | TxnError::RangeChangeInProgress
            | TxnError::Invalid(_) => false,
        }
    }
}

/// Checks a key against the limits.
pub fn check_key(key: &[u8]) -> Result<(), InvalidRequest> {
    if key.is_empty() {
        return Err(InvalidRequest::EmptyKey);
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(InvalidRequest::KeyTooLarge {
            len: key.len(),
            max: MAX_KEY_BYTES,
        });
    }
    Ok(())
}

/// Checks a write against the limits.
pub fn check_write(w: &Write) -> Result<(), InvalidRequest> {
    check_key(&w.key)?;
    match &w.value {
        Some(v) if v.len() > MAX_VALUE_BYTES => Err(InvalidRequest::ValueTooLarge {
            len: v.len(),
            max: MAX_VALUE_BYTES,
        }),
        _ => Ok(()),
    }
}

/// Checks that `count` operations are within [`MAX_TXN_OPERATIONS`].
pub fn check_operation_count(count: usize) -> Result<(), InvalidRequest> {
    if count > MAX_TXN_OPERATIONS {
        return Err(InvalidRequest::TooManyOperations {
            count,
            max: MAX_TXN_OPERATIONS,
        });
    }
    Ok(())
}

/// Checks the reads of a read-only request.
pub fn check_reads(reads: &[ReadOp]) -> Result<(), InvalidRequest> {
    if reads.is_empty() {
        return Err(InvalidRequest::Empty);
    }
    check_operation_count(reads.len())?;
    for r in reads {
        match r {
            ReadOp::Get(key) => check_key(key)?,
            ReadOp::Scan { start, end, limit } => check_scan(start, end.as_ref(), *limit)?,
        }
    }
    Ok(())
}

/// Checks a scan's bounds and limit: an empty `start` means from the first
/// key; otherwise both bounds are keys within the limits, and `limit` is at
/// most [`meridian_participant::mvcc::MAX_SCAN_ROWS`].
pub fn check_scan(start: &[u8], end: Option<&Bytes>, limit: usize) -> Result<(), InvalidRequest> {
    if !start.is_empty() {
        check_key(start)?;
    }
    if let Some(end) = end {
        check_key(end)?;
    }
    let max = meridian_participant::mvcc::MAX_SCAN_ROWS;
    if limit > max {
        return Err(InvalidRequest::ScanLimitTooLarge { limit, max });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn design_s6_limits_are_enforced_with_typed_errors() {
        assert_eq!(check_key(b""), Err(InvalidRequest::EmptyKey));
        assert!(check_key(&[b'k'; MAX_KEY_BYTES]).is_ok());
        assert_eq!(
            check_key(&[b'k'; MAX_KEY_BYTES + 1]),
            Err(InvalidRequest::KeyTooLarge {
                len: MAX_KEY_BYTES + 1,
                max: MAX_KEY_BYTES
            })
        );
        let big = Write::put(Bytes::from_static(b"k"), vec![0u8; MAX_VALUE_BYTES + 1]);
        assert!(matches!(
            check_write(&big),
            Err(InvalidRequest::ValueTooLarge { .. })
        ));
        assert!(check_write(&Write::delete(Bytes::from_static(b"k"))).is_ok());
        assert!(check_operation_count(MAX_TXN_OPERATIONS).is_ok());
        assert!(check_operation_count(MAX_TXN_OPERATIONS + 1).is_err());
        assert_eq!(check_reads(&[]), Err(InvalidRequest::Empty));
        let scan = ReadOp::Scan {
            start: Bytes::new(),
            end: None,
            limit: usize::MAX,
        };
        assert!(matches!(
            check_reads(&[scan]),
            Err(InvalidRequest::ScanLimitTooLarge { .. })
        ));
    }

    #[test]
    fn design_s5_5_errors_say_whether_they_are_retryable() {
        let txn = TxnId::local(1);
        assert!(
            TxnError::Aborted {
                txn,
                reason: AbortReason::Wounded
            }
            .is_retryable()
        );
        assert!(TxnError::NotLeader { leader: None }.is_retryable());
        let clock = TxnError::ClockUnhealthy {
            reason: "offset +40 ms from a quorum of peers".into(),
        };
        assert!(clock.is_retryable());
        assert!(
            clock
                .to_string()
                .contains("clock is outside its uncertainty bound"),
            "{clock}"
        );
        assert!(!TxnError::OutcomeUnknown { txn }.is_retryable());
        assert!(!TxnError::Invalid(InvalidRequest::EmptyKey).is_retryable());
        assert!(
            !TxnError::BelowGcHorizon {
                read_ts: Timestamp::ZERO,
                horizon: Timestamp::MAX
            }
            .is_retryable()
        );
        assert!(
            !TxnError::ReadBelowClusterBirth {
                read_ts: Timestamp::ZERO,
                birth: Timestamp::MAX
            }
            .is_retryable()
        );
    }
}
