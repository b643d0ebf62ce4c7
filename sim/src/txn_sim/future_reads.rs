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
/// Leads drawn past M reach up to M plus this: far beyond the run, so on
/// seeds that lift M a close proposed for such a read never comes due.
const FAR_LEAD_SPAN: u64 = 100_000 * MS;
/// Liveness: at the end of a run, long after the heal, every voter's
/// `t_paxos_safe` — the part of safe time that applied entries and closed
/// timestamps advance — is within this of the clock (idle closes come every
/// 20 ms; this leaves room for a commit wait and a slow follower, not for
/// closes that stopped: with a far-future close parked in the idle close's
/// place, a quarter of the seeds that lift L and M fail it). `t_tm_safe` is
/// left out: a transaction still prepared at the end holds it back by
/// design (Spanner §4.1.3) for as long as its two-phase commit takes, two
/// commit waits and their rounds — over 250 ms with ε of 60 ms (cluster
/// seed 634) — and clients still finish transactions they began before
/// they fell quiet. Prepared transactions are bounded by the atomic
/// commitment check instead.
pub(super) const SAFE_TIME_LAG_BOUND: u64 = 250 * MS;

/// On some future-read seeds the replicas' L and M are both this (an
/// operator who lifts the bounds): reads far ahead of the clock and past
/// the lease are admitted at once, and the close proposed for each waits
/// in the Paxos queue for a clock that never reaches it in the run — it
/// must not hold back the idle closes that advance safe time.
const WIDE_READ_LEAD: u64 = 3_600_000 * MS;
/// On some future-read seeds the leader's timestamp cache is this small,
/// so it evicts and answers from its low-water mark.
const SMALL_TS_CACHE: (usize, usize) = (4, 1);

/// How a seed exercises reads at future timestamps: drawn from the seed,
/// not the run's RNG, so other seeds draw as before.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct FutureReads {
    /// Clients read at future timestamps.
    on: bool,
    /// The replicas' L is [`WIDE_READ_LEAD`].
    wide_lead: bool,
    /// The leader's timestamp cache is [`SMALL_TS_CACHE`].
    small_cache: bool,
}

impl FutureReads {
    pub(super) fn draw(seed: u64) -> FutureReads {
        let h = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let on = (h >> 60) < FUTURE_READ_SEEDS_PER_16;
        FutureReads {
            on,
            wide_lead: on && (h >> 58) & 1 == 1,
            small_cache: on && (h >> 57) & 1 == 1,
        }
    }

    /// Sets the replicas' bounds for this seed.
    pub(super) fn configure(&self, c: &mut meridian_txn::Config) {
        if self.wide_lead {
            c.read_lead_nanos = WIDE_READ_LEAD;
            c.max_read_lead_nanos = WIDE_READ_LEAD;
        }
        if self.small_cache {
            (c.ts_cache_keys, c.ts_cache_ranges) = SMALL_TS_CACHE;
        }
    }
}

impl Sim {
    /// On a future-read seed, sometimes a timestamp ahead of `now_latest`
    /// (the client's clock): within L half the time, between L and
    /// [`MID_LEAD_MAX`] or beyond M (by up to [`FAR_LEAD_SPAN`]) otherwise. `None`: read as usual.
    pub(super) fn future_read_at(&mut self, now_latest: Timestamp) -> Option<ReadAt> {
        if !self.future_reads.on || !self.rng.random_bool(FUTURE_READ_SHARE) {
            return None;
        }
        let lead = match self.rng.random_range(0..10) {
            0..5 => self.rng.random_range(0..=DEFAULT_READ_LEAD_NANOS),
            5..8 => self
                .rng
                .random_range(DEFAULT_READ_LEAD_NANOS..=MID_LEAD_MAX),
            _ => self.rng.random_range(
                DEFAULT_MAX_READ_LEAD_NANOS..=DEFAULT_MAX_READ_LEAD_NANOS + FAR_LEAD_SPAN,
            ),
        };
        Some(ReadAt::Exact(now_latest.saturating_add(lead)))
    }

    /// Every voter's `t_paxos_safe` is within [`SAFE_TIME_LAG_BOUND`] of
    /// the clock at the end of the run.
    pub(super) fn check_safe_time_lag(
        &self,
        voters: &std::collections::BTreeSet<(meridian_txn::GroupId, meridian_paxos::NodeId)>,
    ) -> Result<(), Violation> {
        let now = self.now();
        for n in self
            .nodes
            .iter()
            .filter(|n| voters.contains(&(n.group, n.id)))
        {
            let Some(r) = n.replica.as_ref() else {
                continue;
            };
            let closed = r.state().t_paxos_safe();
            let lag = now.nanos_since(closed);
            if lag > SAFE_TIME_LAG_BOUND {
                return Err(self.violation(
                    rules::SAFE_TIME_LAG,
                    format!(
                        "node {} (group {}): t_paxos_safe {} lags the clock by {} ms, more than \
                         {} ms, long after the heal",
                        n.id,
                        n.group,
                        closed.0,
                        lag / MS,
                        SAFE_TIME_LAG_BOUND / MS
                    ),
                ));
            }
        }
        Ok(())
    }
}
