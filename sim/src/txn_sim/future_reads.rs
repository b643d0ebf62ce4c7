//! Reads at future timestamps in the transaction layers (docs/transactions.md,
//! "Reads at a timestamp"): on some seeds clients read at timestamps ahead
//! of their clocks — within L, between L and M, and beyond M — and every
//! seed checks, after the heal, that no replica's safe time lags behind
//! the clock (a close parked for a future timestamp once froze the
//! followers' safe time until the leader changed).

use meridian_truetime::Timestamp;
use meridian_txn::{DEFAULT_MAX_READ_LEAD_NANOS, DEFAULT_READ_LEAD_NANOS, ReadAt};
use rand::Rng;

use super::{MS, Sim};
use crate::check::{Violation, rules};

/// The share of seeds whose clients read at future timestamps.
const FUTURE_READ_SEEDS_PER_16: u64 = 8;
/// On those seeds, the share of exact-timestamp reads that read ahead of
/// the client's clock.
const FUTURE_READ_SHARE: f64 = 0.5;
/// Leads drawn between L and M stay below this, so a read's wait for the
/// clock fits the clients' patience.
const MID_LEAD_MAX: u64 = 200 * MS;
/// Liveness: at the end of a run, long after the heal, every voter's safe
/// time is within this of the clock (closes come every 20 ms; this leaves
/// room for a commit wait, a slow follower and a leader change).
pub(super) const SAFE_TIME_LAG_BOUND: u64 = 1_000 * MS;

/// Whether `seed`'s clients read at future timestamps: from the seed, not
/// the run's RNG, so other seeds draw as before.
pub(super) fn enabled(seed: u64) -> bool {
    (seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 60) < FUTURE_READ_SEEDS_PER_16
}

impl Sim {
    /// On a future-read seed, sometimes a timestamp ahead of `now_latest`
    /// (the client's clock): within L half the time, between L and
    /// [`MID_LEAD_MAX`] or just beyond M otherwise. `None`: read as usual.
    pub(super) fn future_read_at(&mut self, now_latest: Timestamp) -> Option<ReadAt> {
        if !self.future_reads || !self.rng.random_bool(FUTURE_READ_SHARE) {
            return None;
        }
        let lead = match self.rng.random_range(0..10) {
            0..5 => self.rng.random_range(0..=DEFAULT_READ_LEAD_NANOS),
            5..8 => self
                .rng
                .random_range(DEFAULT_READ_LEAD_NANOS..=MID_LEAD_MAX),
            _ => self.rng.random_range(
                DEFAULT_MAX_READ_LEAD_NANOS..=DEFAULT_MAX_READ_LEAD_NANOS + 1_000 * MS,
            ),
        };
        Some(ReadAt::Exact(now_latest.saturating_add(lead)))
    }

    /// Every voter's safe time is within [`SAFE_TIME_LAG_BOUND`] of the
    /// clock at the end of the run.
    pub(super) fn check_safe_time_lag(
        &self,
        voters: &std::collections::BTreeSet<meridian_paxos::NodeId>,
    ) -> Result<(), Violation> {
        let now = self.now();
        for n in self.nodes.iter().filter(|n| voters.contains(&n.id)) {
            let Some(r) = n.replica.as_ref() else {
                continue;
            };
            let lag = now.nanos_since(r.t_safe());
            if lag > SAFE_TIME_LAG_BOUND {
                return Err(self.violation(
                    rules::SAFE_TIME_LAG,
                    format!(
                        "node {} (group {}): t_safe {} lags the clock by {} ms, more than {} ms, \
                         long after the heal",
                        n.id,
                        n.group,
                        r.t_safe().0,
                        lag / MS,
                        SAFE_TIME_LAG_BOUND / MS
                    ),
                ));
            }
        }
        Ok(())
    }
}
