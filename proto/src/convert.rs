//! Conversions between the wire messages ([`crate::pb`]) and the core types
//! of `meridian-txn`, and [`RemoteError`], every error a node can answer.
//!
//! Decoding is total: a malformed message (a missing required field, an
//! unknown enum value) becomes [`RemoteError::Invalid`], never a panic.

use bytes::Bytes;
use meridian_participant::{Priority, TxnId, Write};
use meridian_truetime::Timestamp;
use meridian_txn::{
    AbortReason, CcMode, GroupId, Guest, Participant, ReadAt, ReadOp, ReadResult, TxnError,
};

use crate::pb;

/// Every error a node answers a client with: the core's typed
/// [`TxnError`]s and the node's own.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RemoteError {
    /// An error of the transaction protocol.
    #[error(transparent)]
    Txn(TxnError),
    /// The request is malformed or breaks a limit.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The keys asked for are not in the group named: the client's range
    /// map is stale.
    #[error("the keys do not belong to group {group}")]
    WrongGroup {
        /// The group named in the request.
        group: GroupId,
    },
    /// The request names another cluster.
    #[error(
        "cluster id mismatch: this node belongs to cluster {expected}, the request names {got}"
    )]
    ClusterMismatch {
        /// This node's cluster id.
        expected: u64,
        /// The id in the request.
        got: u64,
    },
    /// The request names an older configuration epoch than the node's.
    #[error("stale configuration epoch; the node is at epoch {epoch}")]
    StaleEpoch {
        /// The node's epoch.
        epoch: u64,
    },
    /// The node hosts no replica of the group named.
    #[error("this node hosts no replica of group {group}")]
    NoReplica {
        /// The group named.
        group: GroupId,
    },
    /// The node's clock is outside its uncertainty bound; it neither leads
    /// nor serves until it is back.
    #[error("the node's clock is outside its uncertainty bound: {0}")]
    ClockUnhealthy(String),
    /// The node is shutting down.
    #[error("the node is draining for shutdown")]
    Draining,
}

impl RemoteError {
    /// Whether trying again — elsewhere, later, or as a new attempt — can
    /// succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            RemoteError::Txn(e) => e.is_retryable(),
            RemoteError::WrongGroup { .. }
            | RemoteError::StaleEpoch { .. }
            | RemoteError::NoReplica { .. }
            | RemoteError::ClockUnhealthy(_)
            | RemoteError::Draining => true,
            RemoteError::Invalid(_) | RemoteError::ClusterMismatch { .. } => false,
        }
    }
}

impl From<TxnError> for RemoteError {
    fn from(e: TxnError) -> RemoteError {
        match e {
            TxnError::Invalid(inv) => RemoteError::Invalid(inv.to_string()),
            TxnError::ClockUnhealthy { reason } => RemoteError::ClockUnhealthy(reason),
            e => RemoteError::Txn(e),
        }
    }
}

fn missing(what: &str) -> RemoteError {
    RemoteError::Invalid(format!("missing {what}"))
}

/// A transaction id on the wire.
pub fn txn_to_pb(t: TxnId) -> pb::TxnId {
    pb::TxnId {
        origin: t.origin,
        seq: t.seq,
    }
}

/// A transaction id from the wire.
pub fn txn_from_pb(t: Option<pb::TxnId>) -> Result<TxnId, RemoteError> {
    let t = t.ok_or_else(|| missing("transaction id"))?;
    Ok(TxnId::new(t.origin, t.seq))
}

/// A concurrency-control mode on the wire.
pub fn mode_to_pb(m: CcMode) -> i32 {
    match m {
        CcMode::Locking => pb::CcMode::Locking as i32,
        CcMode::Optimistic => pb::CcMode::Optimistic as i32,
    }
}

/// A concurrency-control mode from the wire.
pub fn mode_from_pb(m: i32) -> Result<CcMode, RemoteError> {
    match pb::CcMode::try_from(m) {
        Ok(pb::CcMode::Locking) => Ok(CcMode::Locking),
        Ok(pb::CcMode::Optimistic) => Ok(CcMode::Optimistic),
        Err(_) => Err(RemoteError::Invalid(format!(
            "unknown concurrency mode {m}"
        ))),
    }
}

/// A guest's description on the wire.
pub fn guest_to_pb(g: Guest) -> pb::Guest {
    pb::Guest {
        priority: g.priority.0.as_nanos(),
        term: g.term,
        mode: mode_to_pb(g.mode),
    }
}

/// A guest's description from the wire.
pub fn guest_from_pb(g: Option<pb::Guest>) -> Result<Option<Guest>, RemoteError> {
    g.map(|g| {
        Ok(Guest {
            priority: Priority::new(Timestamp::from_nanos(g.priority)),
            term: g.term,
            mode: mode_from_pb(g.mode)?,
        })
    })
    .transpose()
}

/// A write on the wire.
pub fn write_to_pb(w: &Write) -> pb::Write {
    pb::Write {
        key: w.key.clone(),
        value: w.value.clone(),
    }
}

/// A write from the wire.
pub fn write_from_pb(w: pb::Write) -> Write {
    Write {
        key: w.key,
        value: w.value,
    }
}

/// A participant on the wire.
pub fn participant_to_pb(p: &Participant) -> pb::Participant {
    pb::Participant {
        group: p.group,
        term: p.term,
        writes: p.writes.iter().map(write_to_pb).collect(),
    }
}

/// A participant from the wire.
pub fn participant_from_pb(p: pb::Participant) -> Participant {
    Participant {
        group: p.group,
        term: p.term,
        writes: p.writes.into_iter().map(write_from_pb).collect(),
    }
}

/// A read-only request's timestamp choice on the wire.
pub fn read_at_to_pb(at: ReadAt) -> pb::read_only_request::At {
    use pb::read_only_request::At;
    match at {
        ReadAt::Strong => At::Strong(pb::Empty {}),
        ReadAt::Exact(ts) => At::Exact(ts.as_nanos()),
        ReadAt::MaxStaleness(n) => At::MaxStaleness(n),
    }
}

/// A read-only request's timestamp choice from the wire.
pub fn read_at_from_pb(at: Option<pb::read_only_request::At>) -> Result<ReadAt, RemoteError> {
    use pb::read_only_request::At;
    Ok(match at.ok_or_else(|| missing("read timestamp choice"))? {
        At::Strong(_) => ReadAt::Strong,
        At::Exact(ts) => ReadAt::Exact(Timestamp::from_nanos(ts)),
        At::MaxStaleness(n) => ReadAt::MaxStaleness(n),
    })
}

fn limit_from_pb(limit: u64) -> usize {
    usize::try_from(limit).unwrap_or(usize::MAX)
}

/// One read of a read-only request on the wire.
pub fn read_op_to_pb(op: &ReadOp) -> pb::ReadOp {
    use pb::read_op::Op;
    pb::ReadOp {
        op: Some(match op {
            ReadOp::Get(k) => Op::Get(k.clone()),
            ReadOp::Scan { start, end, limit } => Op::Scan(pb::ScanOp {
                start: start.clone(),
                end: end.clone(),
                limit: *limit as u64,
            }),
        }),
    }
}

/// One read of a read-only request from the wire.
pub fn read_op_from_pb(op: pb::ReadOp) -> Result<ReadOp, RemoteError> {
    use pb::read_op::Op;
    Ok(match op.op.ok_or_else(|| missing("read operation"))? {
        Op::Get(k) => ReadOp::Get(k),
        Op::Scan(s) => ReadOp::Scan {
            start: s.start,
            end: s.end,
            limit: limit_from_pb(s.limit),
        },
    })
}

/// Scan rows on the wire.
pub fn rows_to_pb(rows: Vec<(Bytes, Bytes)>) -> Vec<pb::Row> {
    rows.into_iter()
        .map(|(key, value)| pb::Row { key, value })
        .collect()
}

/// Scan rows from the wire.
pub fn rows_from_pb(rows: Vec<pb::Row>) -> Vec<(Bytes, Bytes)> {
    rows.into_iter().map(|r| (r.key, r.value)).collect()
}

/// One read result on the wire.
pub fn read_result_to_pb(r: ReadResult) -> pb::ReadResult {
    use pb::read_result::Result as R;
    pb::ReadResult {
        result: Some(match r {
            ReadResult::Value(value) => R::Value(pb::MaybeValue { value }),
            ReadResult::Rows(rows) => R::Rows(pb::Rows {
                rows: rows_to_pb(rows),
            }),
        }),
    }
}

/// One read result from the wire.
pub fn read_result_from_pb(r: pb::ReadResult) -> Result<ReadResult, RemoteError> {
    use pb::read_result::Result as R;
    Ok(match r.result.ok_or_else(|| missing("read result"))? {
        R::Value(v) => ReadResult::Value(v.value),
        R::Rows(rows) => ReadResult::Rows(rows_from_pb(rows.rows)),
    })
}

fn reason_to_pb(r: AbortReason) -> pb::AbortReason {
    match r {
        AbortReason::Wounded => pb::AbortReason::Wounded,
        AbortReason::LeaderChanged => pb::AbortReason::LeaderChanged,
        AbortReason::Inactive => pb::AbortReason::Inactive,
        AbortReason::ClientAbort => pb::AbortReason::ClientAbort,
        AbortReason::Overloaded => pb::AbortReason::Overloaded,
        AbortReason::Unknown => pb::AbortReason::Unknown,
        AbortReason::Conflict => pb::AbortReason::Conflict,
    }
}

fn reason_from_pb(r: i32) -> AbortReason {
    match pb::AbortReason::try_from(r) {
        Ok(pb::AbortReason::Wounded) => AbortReason::Wounded,
        Ok(pb::AbortReason::LeaderChanged) => AbortReason::LeaderChanged,
        Ok(pb::AbortReason::Inactive) => AbortReason::Inactive,
        Ok(pb::AbortReason::ClientAbort) => AbortReason::ClientAbort,
        Ok(pb::AbortReason::Overloaded) => AbortReason::Overloaded,
        Ok(pb::AbortReason::Conflict) => AbortReason::Conflict,
        Ok(pb::AbortReason::Unknown | pb::AbortReason::Unspecified) | Err(_) => {
            AbortReason::Unknown
        }
    }
}

/// An error on the wire.
pub fn error_to_pb(e: &RemoteError) -> pb::Error {
    use pb::error::Kind;
    let empty = pb::Empty {};
    let kind = match e {
        RemoteError::Txn(t) => match t {
            TxnError::NotLeader { leader } => Kind::NotLeader(pb::NotLeader { leader: *leader }),
            TxnError::LeaderNotReady => Kind::LeaderNotReady(empty),
            TxnError::Aborted { txn, reason } => Kind::Aborted(pb::Aborted {
                txn: Some(txn_to_pb(*txn)),
                reason: reason_to_pb(*reason) as i32,
            }),
            TxnError::LockQueueFull { key } => Kind::LockQueueFull(key.clone()),
            TxnError::Overloaded => Kind::Overloaded(empty),
            TxnError::NotYetSafe { read_ts, t_safe } => Kind::NotYetSafe(pb::NotYetSafe {
                read_ts: read_ts.as_nanos(),
                t_safe: t_safe.as_nanos(),
            }),
            TxnError::BelowGcHorizon { read_ts, horizon } => {
                Kind::BelowGcHorizon(pb::BelowGcHorizon {
                    read_ts: read_ts.as_nanos(),
                    horizon: horizon.as_nanos(),
                })
            }
            TxnError::ReadBelowClusterBirth { read_ts, birth } => {
                Kind::ReadBelowClusterBirth(pb::ReadBelowClusterBirth {
                    read_ts: read_ts.as_nanos(),
                    birth: birth.as_nanos(),
                })
            }
            TxnError::ReadTimestampTooFarAhead {
                read_ts,
                now_latest,
                max_lead_nanos,
            } => Kind::ReadTsTooFarAhead(pb::ReadTimestampTooFarAhead {
                read_ts: read_ts.as_nanos(),
                now_latest: now_latest.as_nanos(),
                max_lead_nanos: *max_lead_nanos,
            }),
            TxnError::OutcomeUnknown { txn } => Kind::OutcomeUnknown(txn_to_pb(*txn)),
            TxnError::TxnBusy { txn } => Kind::TxnBusy(txn_to_pb(*txn)),
            TxnError::TooLateToAbort { txn } => Kind::TooLateToAbort(txn_to_pb(*txn)),
            TxnError::Invalid(_) => Kind::Invalid(empty),
            TxnError::ClockUnhealthy { .. } => Kind::ClockUnhealthy(empty),
            // Until the wire carries range descriptors: a key outside the
            // group's range reads as the wrong group (retryable after a
            // routing refresh); a bad split as an invalid request.
            TxnError::OutsideRange { descriptor } => Kind::WrongGroup(descriptor.group),
            TxnError::BadSplitKey { .. } | TxnError::RangeChangeInProgress => Kind::Invalid(empty),
        },
        RemoteError::Invalid(_) => Kind::Invalid(empty),
        RemoteError::WrongGroup { group } => Kind::WrongGroup(*group),
        RemoteError::ClusterMismatch { expected, got } => {
            Kind::ClusterMismatch(pb::ClusterMismatch {
                expected: *expected,
                got: *got,
            })
        }
        RemoteError::StaleEpoch { epoch } => Kind::StaleEpoch(*epoch),
        RemoteError::NoReplica { group } => Kind::NoReplica(*group),
        RemoteError::ClockUnhealthy(_) => Kind::ClockUnhealthy(empty),
        RemoteError::Draining => Kind::Draining(empty),
    };
    pb::Error {
        message: e.to_string(),
        kind: Some(kind),
    }
}

/// An error from the wire; `None` if the response carries none.
pub fn error_from_pb(e: Option<pb::Error>) -> Option<RemoteError> {
    use pb::error::Kind;
    let e = e?;
    let txn = |t: pb::TxnId| TxnId::new(t.origin, t.seq);
    Some(match e.kind {
        None => RemoteError::Invalid(format!("unrecognised error: {}", e.message)),
        Some(kind) => match kind {
            Kind::NotLeader(n) => RemoteError::Txn(TxnError::NotLeader { leader: n.leader }),
            Kind::LeaderNotReady(_) => RemoteError::Txn(TxnError::LeaderNotReady),
            Kind::Aborted(a) => RemoteError::Txn(TxnError::Aborted {
                txn: a.txn.map_or(TxnId::new(0, 0), txn),
                reason: reason_from_pb(a.reason),
            }),
            Kind::LockQueueFull(key) => RemoteError::Txn(TxnError::LockQueueFull { key }),
            Kind::Overloaded(_) => RemoteError::Txn(TxnError::Overloaded),
            Kind::NotYetSafe(n) => RemoteError::Txn(TxnError::NotYetSafe {
                read_ts: Timestamp::from_nanos(n.read_ts),
                t_safe: Timestamp::from_nanos(n.t_safe),
            }),
            Kind::BelowGcHorizon(b) => RemoteError::Txn(TxnError::BelowGcHorizon {
                read_ts: Timestamp::from_nanos(b.read_ts),
                horizon: Timestamp::from_nanos(b.horizon),
            }),
            Kind::ReadBelowClusterBirth(b) => RemoteError::Txn(TxnError::ReadBelowClusterBirth {
                read_ts: Timestamp::from_nanos(b.read_ts),
                birth: Timestamp::from_nanos(b.birth),
            }),
            Kind::ReadTsTooFarAhead(r) => RemoteError::Txn(TxnError::ReadTimestampTooFarAhead {
                read_ts: Timestamp::from_nanos(r.read_ts),
                now_latest: Timestamp::from_nanos(r.now_latest),
                max_lead_nanos: r.max_lead_nanos,
            }),
            Kind::OutcomeUnknown(t) => RemoteError::Txn(TxnError::OutcomeUnknown { txn: txn(t) }),
            Kind::TxnBusy(t) => RemoteError::Txn(TxnError::TxnBusy { txn: txn(t) }),
            Kind::TooLateToAbort(t) => RemoteError::Txn(TxnError::TooLateToAbort { txn: txn(t) }),
            Kind::Invalid(_) => RemoteError::Invalid(
                e.message
                    .strip_prefix("invalid request: ")
                    .unwrap_or(&e.message)
                    .to_string(),
            ),
            Kind::WrongGroup(group) => RemoteError::WrongGroup { group },
            Kind::ClusterMismatch(m) => RemoteError::ClusterMismatch {
                expected: m.expected,
                got: m.got,
            },
            Kind::StaleEpoch(epoch) => RemoteError::StaleEpoch { epoch },
            Kind::NoReplica(group) => RemoteError::NoReplica { group },
            Kind::ClockUnhealthy(_) => RemoteError::ClockUnhealthy(
                e.message
                    .strip_prefix("the node's clock is outside its uncertainty bound: ")
                    .unwrap_or(&e.message)
                    .to_string(),
            ),
            Kind::Draining(_) => RemoteError::Draining,
        },
    })
}

/// A response that carries a typed error in its `error` field: every
/// response of the client and admin services, and the peers' hello.
pub trait Answer: Default {
    /// The response's error field.
    fn error_field(&mut self) -> &mut Option<pb::Error>;

    /// Takes the error out, if there is one.
    fn take_error(&mut self) -> Option<pb::Error> {
        self.error_field().take()
    }

    /// A response that carries only the error `e`.
    fn failed(e: &RemoteError) -> Self {
        let mut t = Self::default();
        *t.error_field() = Some(error_to_pb(e));
        t
    }
}

macro_rules! answer {
    ($($t:ty),*) => {$(
        impl Answer for $t {
            fn error_field(&mut self) -> &mut Option<pb::Error> {
                &mut self.error
            }
        }
    )*};
}

answer!(
    pb::BeginResponse,
    pb::ReadResponse,
    pb::ScanResponse,
    pb::CommitResponse,
    pb::AbortResponse,
    pb::HeartbeatResponse,
    pb::ReadOnlyResponse,
    pb::TxnStatusResponse,
    pb::NowResponse,
    pb::StatusResponse,
    pb::WaitsForResponse,
    pb::ChangeMembershipResponse,
    pb::AddNodeResponse,
    pb::HelloResponse
);

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(e: RemoteError) {
        assert_eq!(error_from_pb(Some(error_to_pb(&e))), Some(e.clone()), "{e}");
    }

    #[test]
    fn every_error_survives_the_wire() {
        let txn = TxnId::new(0x1_0002, 7);
        let ts = Timestamp::from_nanos(42);
        for e in [
            TxnError::NotLeader { leader: Some(3) },
            TxnError::NotLeader { leader: None },
            TxnError::LeaderNotReady,
            TxnError::Aborted {
                txn,
                reason: AbortReason::Conflict,
            },
            TxnError::LockQueueFull {
                key: Bytes::from_static(b"k"),
            },
            TxnError::Overloaded,
            TxnError::NotYetSafe {
                read_ts: ts,
                t_safe: ts,
            },
            TxnError::BelowGcHorizon {
                read_ts: ts,
                horizon: ts,
            },
            TxnError::ReadBelowClusterBirth {
                read_ts: ts,
                birth: ts,
            },
            TxnError::ReadTimestampTooFarAhead {
                read_ts: ts,
                now_latest: ts,
                max_lead_nanos: 7,
            },
            TxnError::OutcomeUnknown { txn },
            TxnError::TxnBusy { txn },
            TxnError::TooLateToAbort { txn },
        ] {
            round_trip(RemoteError::Txn(e));
        }
        round_trip(RemoteError::Invalid("empty key".into()));
        round_trip(RemoteError::WrongGroup { group: 2 });
        round_trip(RemoteError::ClusterMismatch {
            expected: 1,
            got: 2,
        });
        round_trip(RemoteError::StaleEpoch { epoch: 3 });
        round_trip(RemoteError::NoReplica { group: 4 });
        round_trip(RemoteError::Draining);
        let clock = RemoteError::ClockUnhealthy("offset 9 ms against node 2".into());
        let back = error_from_pb(Some(error_to_pb(&clock)));
        assert!(matches!(back, Some(RemoteError::ClockUnhealthy(m)) if m.contains("9 ms")));
    }

    #[test]
    fn malformed_messages_are_invalid_not_panics() {
        assert!(matches!(txn_from_pb(None), Err(RemoteError::Invalid(_))));
        assert!(matches!(mode_from_pb(99), Err(RemoteError::Invalid(_))));
        assert!(matches!(
            read_at_from_pb(None),
            Err(RemoteError::Invalid(_))
        ));
        assert!(matches!(
            read_op_from_pb(pb::ReadOp { op: None }),
            Err(RemoteError::Invalid(_))
        ));
        assert!(matches!(
            error_from_pb(Some(pb::Error {
                message: "?".into(),
                kind: None
            })),
            Some(RemoteError::Invalid(_))
        ));
    }

    #[test]
    fn reads_and_writes_round_trip() {
        let w = Write::put(Bytes::from_static(b"k"), Bytes::from_static(b"v"));
        assert_eq!(write_from_pb(write_to_pb(&w)), w);
        let d = Write::delete(Bytes::from_static(b"k"));
        assert_eq!(write_from_pb(write_to_pb(&d)), d);
        let scan = ReadOp::Scan {
            start: Bytes::from_static(b"a"),
            end: None,
            limit: 10,
        };
        assert_eq!(read_op_from_pb(read_op_to_pb(&scan)), Ok(scan));
        for at in [
            ReadAt::Strong,
            ReadAt::Exact(Timestamp::from_nanos(5)),
            ReadAt::MaxStaleness(9),
        ] {
            assert_eq!(read_at_from_pb(Some(read_at_to_pb(at))), Ok(at));
        }
        let rows = ReadResult::Rows(vec![(Bytes::from_static(b"a"), Bytes::from_static(b"1"))]);
        assert_eq!(
            read_result_from_pb(read_result_to_pb(rows.clone())),
            Ok(rows)
        );
    }
}
