//! The exit codes of Meridian's command-line tools, and the code each
//! client [`Error`] maps to. They live with the errors so that every tool
//! built on the client (the `meridian` CLI, `meridian-ycsb`) and the admin
//! operations ([`crate::admin::AdminError::exit_code`]) classify alike.

use crate::Error;

/// Exit code: done.
pub const EXIT_OK: u8 = 0;
/// Exit code: definitely not committed (aborted or refused).
pub const EXIT_NOT_COMMITTED: u8 = 1;
/// Exit code: bad usage or input; nothing sent.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: the outcome of a commit is unknown.
pub const EXIT_OUTCOME_UNKNOWN: u8 = 3;
/// Exit code: the cluster is unreachable.
pub const EXIT_UNREACHABLE: u8 = 4;

/// The exit code for an error.
pub fn exit_code(e: &Error) -> u8 {
    match e {
        Error::Invalid(_)
        | Error::Config(_)
        | Error::ReadTimestampTooFarAhead { .. }
        | Error::SystemKey { .. }
        | Error::BadSplit(_) => EXIT_USAGE,
        Error::OutcomeUnknown { .. } => EXIT_OUTCOME_UNKNOWN,
        Error::Unavailable { .. } | Error::Timeout(_) => EXIT_UNREACHABLE,
        Error::Aborted { .. }
        | Error::Remote(_)
        | Error::ClusterMismatch { .. }
        | Error::Finished => EXIT_NOT_COMMITTED,
    }
}
