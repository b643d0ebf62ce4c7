//! Small identifiers shared by the participant's modules.

use std::fmt;

use meridian_truetime::Timestamp;

/// A transaction's identity.
///
/// Issued by the group leader that begins the transaction: `origin` names
/// the leadership term that issued it (a value unique to one group and one
/// leader ballot, and growing with the ballots of that group; the
/// transaction layer builds it), `seq` counts the transactions that term
/// began. A leader therefore knows whether an id is
/// one of its own — a request for an id of an earlier term, whose locks
/// died with that term, is refused rather than mistaken for a new
/// transaction. The lock table keys every hold and every wait by it.
///
/// Origin 0 is never issued by a leader; tests and benches use it for
/// plain numbered transactions.
///
/// It prints one way everywhere — `Debug`, `Display`, logs, the CLI —
/// as `origin_hex.seq` (`seq` alone for origin 0), the form the CLI's
/// `txn-status` takes back.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TxnId {
    /// The leadership term that issued the id.
    pub origin: u64,
    /// The position of the transaction among those its term began.
    pub seq: u64,
}

impl TxnId {
    /// The id `seq` of leadership term `origin`.
    pub const fn new(origin: u64, seq: u64) -> TxnId {
        TxnId { origin, seq }
    }

    /// A plain numbered id (origin 0), for tests and tools.
    pub const fn local(seq: u64) -> TxnId {
        TxnId { origin: 0, seq }
    }
}

impl fmt::Display for TxnId {
    /// `seq` for origin 0, else `origin.seq` with the origin in hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.origin == 0 {
            write!(f, "{}", self.seq)
        } else {
            write!(f, "{:x}.{}", self.origin, self.seq)
        }
    }
}

impl fmt::Debug for TxnId {
    /// The same as `Display`: one id, one spelling.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A transaction's wound-wait priority (Spanner §4.2.1).
///
/// The timestamp at which the transaction *first* started. A retry keeps
/// the priority of the attempt that was aborted, so a transaction only
/// grows older relative to newcomers and is never starved: eventually it is
/// the oldest in the system and wounds everything in its way.
///
/// A lower timestamp means older, which means higher priority. Ties are
/// broken by [`TxnId`] (see [`Priority::is_older`]), so any two distinct
/// transactions are strictly ordered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Priority(pub Timestamp);

impl Priority {
    /// The priority of a transaction that first started at `start_ts`.
    pub const fn new(start_ts: Timestamp) -> Priority {
        Priority(start_ts)
    }

    /// Spanner §4.2.1: whether transaction `txn` with priority `self` is
    /// older (has higher priority) than `other_txn` with priority `other`.
    ///
    /// Compares first start timestamps, then transaction ids. Under
    /// wound-wait an older requester wounds a younger holder; a younger
    /// requester waits for an older holder.
    pub fn is_older(self, txn: TxnId, other: Priority, other_txn: TxnId) -> bool {
        (self, txn) < (other, other_txn)
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ns", self.0.as_nanos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earlier_first_start_is_older_and_txn_id_breaks_ties() {
        let p = |ns| Priority::new(Timestamp::from_nanos(ns));
        assert!(p(5).is_older(TxnId::local(9), p(6), TxnId::local(1)));
        assert!(!p(6).is_older(TxnId::local(1), p(5), TxnId::local(9)));
        assert!(p(5).is_older(TxnId::local(1), p(5), TxnId::local(2)));
        assert!(!p(5).is_older(TxnId::local(2), p(5), TxnId::local(1)));
        assert!(!p(5).is_older(TxnId::local(1), p(5), TxnId::local(1)));
    }

    #[test]
    fn a_txn_id_prints_the_same_in_debug_and_display() {
        for (id, shown) in [
            (TxnId::new(0x1f_0002, 7), "1f0002.7"),
            (TxnId::local(3), "3"),
        ] {
            assert_eq!(id.to_string(), shown);
            assert_eq!(format!("{id:?}"), shown);
            assert_eq!(format!("{:?}", Some(id)), format!("Some({shown})"));
        }
    }
}
