//! Configuration of a group replica, with the defaults a deployment uses.

use meridian_participant::state::DEFAULT_COMMIT_RECORD_RETENTION_NANOS;
use meridian_participant::{LockLimits, RangeDescriptor};

const MS: u64 = 1_000_000;
const SECOND: u64 = 1_000_000_000;

/// Default interval between closed timestamps at an idle leader: 50 ms. A
/// strong read at a follower waits about this long at most for its safe
/// time (plus replication and the clock uncertainty).
pub const DEFAULT_CLOSE_INTERVAL_NANOS: u64 = 50 * MS;

/// Default bound on how long a read waits for safe time before it fails
/// with `NotYetSafe`: 1 s.
pub const DEFAULT_READ_WAIT_NANOS: u64 = SECOND;

/// Default bound L on how far ahead of `TT.now().latest` a read's
/// timestamp may be and still be served as it comes: 10 ms (docs/transactions.md,
/// "Reads at a timestamp"). A read further ahead waits until it is within
/// L; a leader's timestamp cache then pushes later writes of what it read
/// above it, so no write is pushed more than L past the clock.
pub const DEFAULT_READ_LEAD_NANOS: u64 = 10 * MS;

/// Default bound M past which a read's timestamp is refused as too far
/// ahead of `TT.now().latest` (`ReadTimestampTooFarAhead`): 1 s. Between L
/// and M the read waits, within its wait bound, until it is within L.
pub const DEFAULT_MAX_READ_LEAD_NANOS: u64 = SECOND;

/// Default inactivity timeout after which an idle transaction is aborted
/// (docs/design.md §5.1): 10 s.
pub const DEFAULT_INACTIVITY_TIMEOUT_NANOS: u64 = 10 * SECOND;

/// Default age below which versions are kept for snapshot reads: 10 min.
/// Reads further in the past fail with `BelowGcHorizon`.
pub const DEFAULT_GC_RETENTION_NANOS: u64 = 10 * 60 * SECOND;

/// Default interval between garbage collections: 10 s.
pub const DEFAULT_GC_INTERVAL_NANOS: u64 = 10 * SECOND;

/// Default number of applied entries between snapshots of the group state.
pub const DEFAULT_COMPACT_EVERY: u64 = 10_000;

/// Default most transactions active at one leader.
pub const DEFAULT_MAX_ACTIVE_TXNS: usize = 100_000;

/// Default most lock-free reads waiting for safe time at one replica.
pub const DEFAULT_MAX_WAITING_READS: usize = 10_000;

/// Largest group id: transaction ids embed it in 16 bits.
pub const MAX_GROUP_ID: u64 = 0xFFFF;

/// Largest node id: transaction ids embed it in 16 bits.
pub const MAX_NODE_ID: u64 = 0xFFFF;

/// Most ids one `Begin` reserves beside the one it begins
/// ([`crate::Request::Begin`]'s `reserve`).
pub const MAX_RESERVE_PER_BEGIN: u32 = 64;

/// Most reserved ids a leader keeps unbegun; past it the oldest are
/// dropped, and a request naming one is refused as for an id that ended
/// (its client begins another with `Begin`).
pub const MAX_UNBEGUN_RESERVED: usize = 65_536;

/// Configuration of one [`crate::GroupReplica`].
#[derive(Clone, Debug)]
pub struct Config {
    /// The participant group this replica belongs to (at most
    /// [`MAX_GROUP_ID`]).
    pub group: u64,
    /// The group's range as the node configuration bootstraps it (generation
    /// [`meridian_participant::INITIAL_GENERATION`]; docs/design.md §9). A
    /// replica serves only the keys of its *applied* descriptor: this one
    /// until a snapshot or a split replaces it. Default: the whole key
    /// space.
    pub descriptor: RangeDescriptor,
    /// The Paxos replica's configuration (its `id` at most [`MAX_NODE_ID`]).
    pub paxos: meridian_paxos::Config,
    /// Interval between closed timestamps at an idle leader.
    pub close_interval_nanos: u64,
    /// Bound on a lock-free read's wait for safe time.
    pub read_wait_nanos: u64,
    /// L: a read at most this far ahead of `TT.now().latest` is served as
    /// it comes; one further ahead (up to M) first waits until it is within
    /// L ([`DEFAULT_READ_LEAD_NANOS`]).
    pub read_lead_nanos: u64,
    /// M: a read further than this ahead of `TT.now().latest` fails with
    /// `ReadTimestampTooFarAhead` ([`DEFAULT_MAX_READ_LEAD_NANOS`]; at
    /// least L).
    pub max_read_lead_nanos: u64,
    /// The cluster's birth, recorded when the cluster was created: a
    /// snapshot read at an exact timestamp below it fails with
    /// `ReadBelowClusterBirth` (nothing was stored then). `None` (a
    /// cluster created before births were recorded): no check.
    pub birth: Option<meridian_truetime::Timestamp>,
    /// Most keys the leader's timestamp cache remembers one by one (past
    /// it the oldest raise its low-water mark).
    pub ts_cache_keys: usize,
    /// Most scanned ranges the leader's timestamp cache remembers one by
    /// one.
    pub ts_cache_ranges: usize,
    /// Idle time after which a leader aborts a transaction.
    pub inactivity_timeout_nanos: u64,
    /// Versions younger than this are kept for snapshot reads.
    pub gc_retention_nanos: u64,
    /// Interval between garbage collections.
    pub gc_interval_nanos: u64,
    /// How long commit records stay queryable by transaction id.
    pub commit_record_retention_nanos: u64,
    /// Applied entries between snapshots (log compactions); at least as
    /// many as the state holds versions, so snapshots cost O(1) per entry.
    pub compact_every: u64,
    /// Bounds on the leader's lock wait queues.
    pub lock_limits: LockLimits,
    /// Most transactions active at once at the leader.
    pub max_active_txns: usize,
    /// Most lock-free reads waiting for safe time.
    pub max_waiting_reads: usize,
    /// Two-phase commit: time from a coordinator's start to the prepare
    /// deadline (votes not in by then abort the transaction).
    pub prepare_timeout_nanos: u64,
    /// Two-phase commit: interval between resends of unanswered prepares,
    /// unacknowledged decisions and a prepared participant's outcome
    /// queries.
    pub resend_interval_nanos: u64,
    /// A deliberate bug of this layer (simulator only).
    #[cfg(feature = "planted-bugs")]
    pub planted_bug: Option<crate::PlantedBug>,
    /// A deliberate bug of the lock table (simulator only).
    #[cfg(feature = "planted-bugs")]
    pub lock_table_bug: Option<meridian_participant::PlantedBug>,
}

impl Config {
    /// Defaults for replica `paxos.id` of `group`.
    pub fn new(group: u64, paxos: meridian_paxos::Config) -> Config {
        Config {
            group,
            descriptor: RangeDescriptor::whole(group),
            paxos,
            close_interval_nanos: DEFAULT_CLOSE_INTERVAL_NANOS,
            read_wait_nanos: DEFAULT_READ_WAIT_NANOS,
            read_lead_nanos: DEFAULT_READ_LEAD_NANOS,
            max_read_lead_nanos: DEFAULT_MAX_READ_LEAD_NANOS,
            birth: None,
            ts_cache_keys: meridian_participant::tscache::DEFAULT_TS_CACHE_KEYS,
            ts_cache_ranges: meridian_participant::tscache::DEFAULT_TS_CACHE_RANGES,
            inactivity_timeout_nanos: DEFAULT_INACTIVITY_TIMEOUT_NANOS,
            gc_retention_nanos: DEFAULT_GC_RETENTION_NANOS,
            gc_interval_nanos: DEFAULT_GC_INTERVAL_NANOS,
            commit_record_retention_nanos: DEFAULT_COMMIT_RECORD_RETENTION_NANOS,
            compact_every: DEFAULT_COMPACT_EVERY,
            lock_limits: LockLimits::default(),
            max_active_txns: DEFAULT_MAX_ACTIVE_TXNS,
            max_waiting_reads: DEFAULT_MAX_WAITING_READS,
            prepare_timeout_nanos: crate::coordinator::DEFAULT_PREPARE_TIMEOUT_NANOS,
            resend_interval_nanos: crate::coordinator::DEFAULT_RESEND_INTERVAL_NANOS,
            #[cfg(feature = "planted-bugs")]
            planted_bug: None,
            #[cfg(feature = "planted-bugs")]
            lock_table_bug: None,
        }
    }

    pub(crate) fn validate(&self) {
        assert_eq!(
            self.descriptor.group, self.group,
            "the descriptor names another group"
        );
        assert!(
            self.group <= MAX_GROUP_ID,
            "group id {} exceeds {MAX_GROUP_ID}",
            self.group
        );
        assert!(
            self.paxos.id <= MAX_NODE_ID,
            "node id {} exceeds {MAX_NODE_ID}",
            self.paxos.id
        );
        assert!(
            self.close_interval_nanos > 0,
            "close interval must be positive"
        );
        assert!(self.gc_interval_nanos > 0, "GC interval must be positive");
        assert!(
            self.read_lead_nanos <= self.max_read_lead_nanos,
            "the read lead L must not exceed its bound M"
        );
        assert!(
            self.ts_cache_keys > 0 && self.ts_cache_ranges > 0,
            "the timestamp cache must hold something"
        );
        assert!(self.compact_every > 0, "compact_every must be positive");
        assert!(self.max_active_txns > 0 && self.max_waiting_reads > 0);
        assert!(
            self.resend_interval_nanos > 0,
            "resend interval must be positive"
        );
    }
}
