//! The client's typed errors (docs/design.md §5.5).

use meridian_participant::TxnId;
use meridian_proto::RemoteError;
use meridian_truetime::Timestamp;
use meridian_txn::{AbortReason, InvalidRequest, TxnError};

/// Every error the client library returns.
///
/// [`Error::is_retryable`] says whether running the transaction again (a
/// new attempt with the same priority) can succeed; [`crate::Client::transaction`]
/// does exactly that for the retryable ones.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The request breaks a limit of docs/design.md §6 (checked before
    /// anything is sent) or is malformed. Not retryable.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The transaction aborted; nothing it wrote is visible. Retryable as a
    /// new attempt.
    #[error("transaction aborted: {reason}")]
    Aborted {
        /// Why, in words (the node's [`AbortReason`] or the client's).
        reason: String,
    },
    /// The commit was sent, but whether it took effect could not be
    /// learned: it may or may not have committed. Neither success nor
    /// failure, and never retried as a new attempt. `txn` is the
    /// transaction's id, to ask about later with
    /// [`crate::Client::txn_status`]; `None` for a one-shot write whose
    /// answer (and with it the id the node issued) was lost.
    #[error("outcome of transaction {} is unknown", DisplayTxn(.txn))]
    OutcomeUnknown {
        /// The transaction, if its id is known.
        txn: Option<TxnId>,
    },
    /// No endpoint or replica answered: the cluster (or the part of it
    /// needed) is unreachable.
    #[error("cluster unavailable: {detail}")]
    Unavailable {
        /// What was tried and what failed.
        detail: String,
    },
    /// A node belongs to another cluster than the one the client joined.
    #[error("cluster id mismatch: the client knows cluster {expected}, a node answered {got}")]
    ClusterMismatch {
        /// The cluster id the client learned at connect.
        expected: u64,
        /// The id the node reported.
        got: u64,
    },
    /// A snapshot read's timestamp is further ahead of the clock than a
    /// node serves (the node's `max_read_lead`, default 1 s; the CLI also
    /// refuses such an `--at` before connecting). Not retryable at that
    /// timestamp: read at an earlier one, or wait.
    #[error(
        "read timestamp {read_ts} is too far ahead of the clock ({now_latest}); at most \
         {max_lead_nanos} ns ahead is served"
    )]
    ReadTimestampTooFarAhead {
        /// The timestamp asked for.
        read_ts: Timestamp,
        /// The clock's `TT.now().latest` that refused it (the node's, or
        /// the CLI's own).
        now_latest: Timestamp,
        /// The bound it was refused by, in nanoseconds.
        max_lead_nanos: u64,
    },
    /// A node answered with an error the client does not retry (or
    /// retried until its budget ran out).
    #[error(transparent)]
    Remote(RemoteError),
    /// The per-call deadline or the retry budget ran out before an answer.
    #[error("timed out: {0}")]
    Timeout(String),
    /// A bad endpoint, TLS file or option.
    #[error("configuration error: {0}")]
    Config(String),
    /// The transaction handle was used after its commit or abort.
    #[error("the transaction has already ended")]
    Finished,
    /// A user's request named a key in the system keyspace (the range
    /// directory's, `meridian_txn::api::is_system_key`). Not retryable.
    #[error(
        "key {} is in the system keyspace, reserved for the range directory",
        crate::show_bytes(.key)
    )]
    SystemKey {
        /// The key.
        key: bytes::Bytes,
    },
    /// A range split refused before anything changed: a key outside every
    /// range, on a range's boundary, in the system keyspace, or a split
    /// during another change of the same range. Not retryable.
    #[error("split refused: {0}")]
    BadSplit(String),
}

struct DisplayTxn<'a>(&'a Option<TxnId>);

impl std::fmt::Display for DisplayTxn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(t) => write!(f, "{t}"),
            None => f.write_str("(one-shot write, id not learned)"),
        }
    }
}

impl Error {
    /// Whether running the transaction (or request) again can succeed
    /// (docs/design.md §5.5): aborts, leader changes, overload and
    /// unreachable replicas are; limits, unknown outcomes and cluster
    /// mismatches are not.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Aborted { .. } | Error::Unavailable { .. } | Error::Timeout(_) => true,
            Error::Remote(e) => e.is_retryable(),
            Error::Invalid(_)
            | Error::ReadTimestampTooFarAhead { .. }
            | Error::OutcomeUnknown { .. }
            | Error::ClusterMismatch { .. }
            | Error::Config(_)
            | Error::Finished
            | Error::SystemKey { .. }
            | Error::BadSplit(_) => false,
        }
    }

    /// Whether the transaction certainly did not commit: every error but
    /// [`Error::OutcomeUnknown`] (a commit that is not known to have
    /// failed is reported as unknown, never as this).
    pub fn is_definitely_not_committed(&self) -> bool {
        !matches!(self, Error::OutcomeUnknown { .. })
    }

    /// The abort error for a transaction the node aborted.
    pub(crate) fn aborted(reason: AbortReason) -> Error {
        Error::Aborted {
            reason: reason.to_string(),
        }
    }
}

impl From<InvalidRequest> for Error {
    fn from(e: InvalidRequest) -> Error {
        match e {
            InvalidRequest::SystemKey { key } => Error::SystemKey { key },
            e => Error::Invalid(e.to_string()),
        }
    }
}

impl From<RemoteError> for Error {
    fn from(e: RemoteError) -> Error {
        match e {
            RemoteError::Invalid(m) => Error::Invalid(m),
            RemoteError::Txn(TxnError::Invalid(inv)) => Error::Invalid(inv.to_string()),
            RemoteError::Txn(TxnError::Aborted { reason, .. }) => Error::aborted(reason),
            RemoteError::Txn(TxnError::ReadTimestampTooFarAhead {
                read_ts,
                now_latest,
                max_lead_nanos,
            }) => Error::ReadTimestampTooFarAhead {
                read_ts,
                now_latest,
                max_lead_nanos,
            },
            RemoteError::Txn(TxnError::OutcomeUnknown { txn }) => {
                Error::OutcomeUnknown { txn: Some(txn) }
            }
            RemoteError::ClusterMismatch { expected, got } => Error::ClusterMismatch {
                // The node's `expected` is its own id; the client's is the
                // id it sent.
                expected: got,
                got: expected,
            },
            e => Error::Remote(e),
        }
    }
}

/// The error a transaction closure may fail with: the
/// client's own [`Error`], or an application's error type that can hold one.
///
/// The closure's `?` on a Meridian operation converts its [`Error`] with
/// `From`; an application error of the closure's own (an overdrawn
/// account, a missing row) ends the transaction: the attempt is aborted
/// and the error answered as it is, never retried. The retry loop asks
/// [`TransactError::meridian_error`] whether a failure is a Meridian error,
/// and retries it only if [`Error::is_retryable`] — the design of
/// `foundationdb`'s `TransactError`. The closure is given to
/// [`crate::Client::transact`] or [`crate::Client::transact_with`].
///
/// ```
/// use meridian_client::{Error, TransactError};
///
/// #[derive(Debug, thiserror::Error)]
/// enum BankError {
///     #[error("account {0} has too little money")]
///     InsufficientFunds(String),
///     #[error(transparent)]
///     Meridian(#[from] Error),
/// }
///
/// impl TransactError for BankError {
///     fn meridian_error(&self) -> Option<&Error> {
///         match self {
///             BankError::Meridian(e) => Some(e),
///             BankError::InsufficientFunds(_) => None,
///         }
///     }
/// }
/// ```
pub trait TransactError: From<Error> {
    /// The Meridian error this is, if it is one (`None`: the
    /// application's own, never retried).
    fn meridian_error(&self) -> Option<&Error>;
}

impl TransactError for Error {
    fn meridian_error(&self) -> Option<&Error> {
        Some(self)
    }
}
