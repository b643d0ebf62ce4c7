//! Virtual-time TrueTime for the deterministic simulator.
//!
//! True time is a shared [`VirtualClock`] the simulator advances. Each node's
//! [`SimulatedTrueTime`] reads it through its own error model: at every clock
//! synchronisation (every `sync_period_nanos`) the node's offset is drawn
//! inside `±base_epsilon_nanos` and its drift inside `±max_drift_ppm`, both
//! from a hash of the node's seed and the sync epoch, so a reading is a pure
//! function of (seed, true time). ε grows from the base value as drift may
//! accumulate and falls back at the next sync: Spanner's sawtooth (§5.3,
//! 1 ms to 7 ms over 30 s by default).
//!
//! Real clocks do not resynchronise in step: [`SimulatedTrueTime::with_phase`]
//! shifts a node's sync schedule, so at one true instant different nodes are
//! at different points of their sawtooth (different ε, and offsets that jump
//! at different moments). Each node may also follow its own [`ClockModel`].
//!
//! [`SimulatedTrueTime::set_bound_broken`] makes the clock lie: the error is
//! pushed outside the reported ε, so true time is no longer inside the
//! interval. Tests use it to prove that the invariant checkers notice.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::{Timestamp, TrueTime, TtInterval};

/// The simulator's notion of true (absolute) time, shared by every node.
#[derive(Clone, Debug, Default)]
pub struct VirtualClock(Arc<AtomicU64>);

impl VirtualClock {
    /// A clock that starts at `start`.
    pub fn new(start: Timestamp) -> VirtualClock {
        VirtualClock(Arc::new(AtomicU64::new(start.0)))
    }

    /// True time now.
    pub fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::Relaxed))
    }

    /// Moves true time to `t`; time never goes backwards.
    pub fn set(&self, t: Timestamp) {
        let prev = self.0.swap(t.0, Ordering::Relaxed);
        assert!(
            prev <= t.0,
            "virtual time went backwards: {prev} -> {}",
            t.0
        );
    }

    /// Advances true time by `nanos`.
    pub fn advance(&self, nanos: u64) {
        self.0.fetch_add(nanos, Ordering::Relaxed);
    }
}

/// Parameters of a simulated clock's error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockModel {
    /// Offset bound right after a sync, in nanoseconds (Spanner: ~1 ms).
    pub base_epsilon_nanos: u64,
    /// Drift bound in parts per million (Spanner assumes 200 ppm).
    pub max_drift_ppm: u64,
    /// Time between syncs in nanoseconds (Spanner: 30 s).
    pub sync_period_nanos: u64,
}

impl ClockModel {
    /// Spanner's published figures: 1 ms base, 200 ppm, 30 s period, so ε
    /// saws between 1 ms and 7 ms.
    pub const SPANNER: ClockModel = ClockModel {
        base_epsilon_nanos: 1_000_000,
        max_drift_ppm: 200,
        sync_period_nanos: 30_000_000_000,
    };

    /// The largest ε this model ever reports.
    pub fn max_epsilon_nanos(&self) -> u64 {
        self.base_epsilon_nanos + self.max_drift_ppm * self.sync_period_nanos / 1_000_000
    }
}

impl Default for ClockModel {
    fn default() -> Self {
        ClockModel::SPANNER
    }
}

/// One node's TrueTime over a [`VirtualClock`].
#[derive(Clone, Debug)]
pub struct SimulatedTrueTime {
    clock: VirtualClock,
    model: ClockModel,
    seed: u64,
    /// Shift of this node's sync schedule: it resyncs when
    /// `(t + phase) % sync_period == 0`.
    phase_nanos: u64,
    broken: Arc<AtomicBool>,
}

/// SplitMix64: a tiny, well-mixed hash used so that readings are a pure
/// function of (seed, epoch) and need no mutable RNG.
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A value uniformly spread over `[-bound, bound]` from a hash.
fn signed_in(hash: u64, bound: u64) -> i64 {
    if bound == 0 {
        return 0;
    }
    let span = 2 * bound + 1;
    (hash % span) as i64 - bound as i64
}

impl SimulatedTrueTime {
    /// A node clock reading `clock` through `model`; `seed` picks this node's
    /// offsets and drifts.
    pub fn new(clock: VirtualClock, model: ClockModel, seed: u64) -> SimulatedTrueTime {
        SimulatedTrueTime {
            clock,
            model,
            seed,
            phase_nanos: 0,
            broken: Arc::new(AtomicBool::new(false)),
        }
    }

    /// This clock with its sync schedule shifted by `phase_nanos` (taken
    /// modulo the sync period): it resyncs `phase_nanos` earlier than an
    /// unshifted clock, so its ε and offset jumps are out of step with them.
    pub fn with_phase(mut self, phase_nanos: u64) -> SimulatedTrueTime {
        self.phase_nanos = phase_nanos % self.model.sync_period_nanos.max(1);
        self
    }

    /// The model this clock follows.
    pub fn model(&self) -> ClockModel {
        self.model
    }

    /// Breaks (or restores) the error bound: while broken, true time lies
    /// outside the interval `now()` returns.
    pub fn set_bound_broken(&self, broken: bool) {
        self.broken.store(broken, Ordering::Relaxed);
    }

    /// Whether the bound is currently broken.
    pub fn bound_broken(&self) -> bool {
        self.broken.load(Ordering::Relaxed)
    }

    /// The reading at true time `t` (pure function of seed, model and `t`).
    pub fn reading_at(&self, t: Timestamp) -> TtInterval {
        let period = self.model.sync_period_nanos.max(1);
        let shifted = t.0.saturating_add(self.phase_nanos);
        let epoch = shifted / period;
        let since_sync = shifted % period;
        let h = splitmix64(self.seed ^ splitmix64(epoch));
        let offset = signed_in(h, self.model.base_epsilon_nanos);
        let drift_ppm = signed_in(splitmix64(h), self.model.max_drift_ppm);
        let drift = drift_ppm * since_sync as i64 / 1_000_000;
        let mut error = offset + drift;
        let eps = self.model.base_epsilon_nanos + self.model.max_drift_ppm * since_sync / 1_000_000;
        debug_assert!(
            error.unsigned_abs() <= eps,
            "clock model exceeded its own bound"
        );
        if self.bound_broken() {
            // Push the error a full base ε beyond the bound, on the side it
            // already leans to.
            let push = (eps + self.model.base_epsilon_nanos.max(1)) as i64;
            error = if error >= 0 { push } else { -push };
        }
        let local = if error >= 0 {
            t.saturating_add(error as u64)
        } else {
            t.saturating_sub(error.unsigned_abs())
        };
        TtInterval::around(local, eps)
    }
}

impl TrueTime for SimulatedTrueTime {
    fn now(&self) -> TtInterval {
        self.reading_at(self.clock.now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEP: u64 = 7_919_993; // a prime step so readings cover the sawtooth

    fn nodes(clock: &VirtualClock) -> Vec<SimulatedTrueTime> {
        // Each node its own ε, drift, sync period and phase, as real
        // clocks have.
        (0..5)
            .map(|i| {
                let model = ClockModel {
                    base_epsilon_nanos: 250_000 * (1 + 3 * i),
                    max_drift_ppm: [0, 50, 200, 500, 200][i as usize],
                    sync_period_nanos: 1_000_000_000 * (1 + 7 * i),
                };
                SimulatedTrueTime::new(clock.clone(), model, 17 + i).with_phase(i * 777_777_777)
            })
            .collect()
    }

    #[test]
    fn phased_clocks_resync_out_of_step() {
        let clock = VirtualClock::new(Timestamp(0));
        let model = ClockModel::SPANNER;
        let a = SimulatedTrueTime::new(clock.clone(), model, 1);
        let b =
            SimulatedTrueTime::new(clock.clone(), model, 1).with_phase(model.sync_period_nanos / 2);
        let mut differ = 0;
        for _ in 0..300 {
            clock.advance(100_000_000);
            let (ea, eb) = (a.now().epsilon_nanos(), b.now().epsilon_nanos());
            assert!(ea <= model.max_epsilon_nanos() && eb <= model.max_epsilon_nanos());
            if ea.abs_diff(eb) > 2_000_000 {
                differ += 1;
            }
            assert!(a.now().contains(clock.now()) && b.now().contains(clock.now()));
        }
        assert!(
            differ > 100,
            "half a period apart, ε differs most of the time"
        );
        // A phase is taken modulo the period.
        let c = SimulatedTrueTime::new(clock.clone(), model, 1).with_phase(model.sync_period_nanos);
        assert_eq!(c.now(), a.now());
    }

    #[test]
    fn spanner_s3_interval_contains_true_time_on_every_node() {
        let clock = VirtualClock::new(Timestamp(1_000_000_000_000));
        let nodes = nodes(&clock);
        for _ in 0..20_000 {
            clock.advance(STEP);
            for n in &nodes {
                let i = n.now();
                assert!(i.contains(clock.now()), "{i:?} misses {:?}", clock.now());
            }
        }
    }

    #[test]
    fn spanner_s3_after_is_never_true_before_true_time_passes() {
        // For every node and every probe t: if some node says after(t),
        // true time must already be beyond t.
        let clock = VirtualClock::new(Timestamp(5_000_000_000));
        let nodes = nodes(&clock);
        for k in 0..20_000u64 {
            clock.advance(STEP);
            let now = clock.now();
            for probe in [
                now.saturating_sub(8_000_000),
                now,
                now.saturating_add(k % 9_000_000),
            ] {
                for n in &nodes {
                    if n.after(probe) {
                        assert!(now > probe, "after({probe:?}) true at true time {now:?}");
                    }
                    if n.before(probe) {
                        assert!(now < probe, "before({probe:?}) true at true time {now:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn spanner_s5_3_epsilon_is_a_sawtooth_between_base_and_max() {
        let model = ClockModel::SPANNER;
        let clock = VirtualClock::new(Timestamp(0));
        let tt = SimulatedTrueTime::new(clock.clone(), model, 1);
        let mut min_eps = u64::MAX;
        let mut max_eps = 0;
        for _ in 0..(2 * model.sync_period_nanos / 100_000_000) {
            clock.advance(100_000_000);
            let e = tt.now().epsilon_nanos();
            min_eps = min_eps.min(e);
            max_eps = max_eps.max(e);
        }
        assert!(min_eps <= model.base_epsilon_nanos + 100_000);
        assert!(max_eps >= model.max_epsilon_nanos() - 100_000);
        assert!(max_eps <= model.max_epsilon_nanos());
        assert_eq!(model.max_epsilon_nanos(), 7_000_000);
    }

    #[test]
    fn nodes_disagree_within_the_bound() {
        let clock = VirtualClock::new(Timestamp(10_000_000_000));
        let ns = nodes(&clock);
        let mids: Vec<_> = ns.iter().map(|n| n.now().midpoint().0).collect();
        assert!(
            mids.windows(2).any(|w| w[0] != w[1]),
            "clocks identical: no offsets"
        );
    }

    #[test]
    fn broken_bound_excludes_true_time() {
        let clock = VirtualClock::new(Timestamp(10_000_000_000));
        let tt = SimulatedTrueTime::new(clock.clone(), ClockModel::SPANNER, 3);
        tt.set_bound_broken(true);
        for _ in 0..1_000 {
            clock.advance(STEP);
            assert!(!tt.now().contains(clock.now()));
        }
        tt.set_bound_broken(false);
        assert!(tt.now().contains(clock.now()));
    }

    #[test]
    fn readings_are_deterministic_per_seed() {
        let clock = VirtualClock::new(Timestamp(123_456_789_000));
        let a = SimulatedTrueTime::new(clock.clone(), ClockModel::SPANNER, 9);
        let b = SimulatedTrueTime::new(clock.clone(), ClockModel::SPANNER, 9);
        assert_eq!(a.now(), b.now());
    }
}
