//! Elapsed time that no clock daemon slews, and the drift bound that ages a
//! clock reading by it (docs/design.md §2, "Ageing a clock reading").
//!
//! A reading `TT.now()` taken at some instant bounds true time at that
//! instant. To reuse it later, its `latest` must be moved forward by at
//! least the true time elapsed since. `CLOCK_MONOTONIC`
//! ([`std::time::Instant`]) is no safe measure of that: NTP and chrony
//! slew it by up to 500 ppm (`adjtimex`) and chrony's `maxslewrate` allows
//! 83,333 ppm, so an interval measured on it can be far shorter than true
//! time. `CLOCK_MONOTONIC_RAW` runs on the oscillator alone, which no
//! daemon adjusts; its only error is the oscillator's own drift, bounded by
//! [`MAX_CLOCK_DRIFT_PPM`].

use std::time::Duration;

/// The most a host's oscillator is taken to drift from true time, in parts
/// per million: the kernel's own assumption (it grows its clock error
/// estimate, `adjtimex` maxerror, by 500 ppm between syncs, and rejects
/// frequency corrections beyond it, `MAXFREQ`). One bound for everything
/// that ages a clock reading by elapsed time.
pub const MAX_CLOCK_DRIFT_PPM: u64 = 500;

/// The largest drift bound [`aged_latest_nanos`] accepts: a bound at or above
/// one million ppm would let a clock stand still.
pub const DRIFT_PPM_LIMIT: u64 = 999_999;

/// An instant of `CLOCK_MONOTONIC_RAW` (Linux; elsewhere the platform's
/// monotonic clock): a clock that counts oscillator ticks and that no NTP
/// or PTP daemon slews, so that the time between two instants is off from
/// true elapsed time by the oscillator's drift only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RawInstant(Duration);

impl RawInstant {
    /// The current instant.
    pub fn now() -> RawInstant {
        RawInstant(raw_now())
    }

    /// An instant `nanos` after the clock's (unspecified) origin: for tests
    /// that need instants they choose.
    pub fn from_nanos(nanos: u64) -> RawInstant {
        RawInstant(Duration::from_nanos(nanos))
    }

    /// Time elapsed from `earlier` to `self` on this clock; zero if
    /// `earlier` is later.
    pub fn saturating_duration_since(self, earlier: RawInstant) -> Duration {
        self.0.saturating_sub(earlier.0)
    }

    /// Time elapsed since this instant.
    pub fn elapsed(self) -> Duration {
        RawInstant::now().saturating_duration_since(self)
    }
}

#[cfg(target_os = "linux")]
fn raw_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC_RAW exists
    // on every Linux since 2.6.28 and the call cannot fail for it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_RAW, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_MONOTONIC_RAW) failed");
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

#[cfg(not(target_os = "linux"))]
fn raw_now() -> Duration {
    use std::sync::OnceLock;
    use std::time::Instant;
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed()
}

/// The most true time can have advanced while a clock drifting by at most
/// `drift_ppm` measured `measured_nanos` (a reading truncated to whole
/// nanoseconds, so up to one short): `(measured + 1) / (1 − drift)`,
/// rounded up.
///
/// # Panics
/// If `drift_ppm` exceeds [`DRIFT_PPM_LIMIT`].
pub fn true_elapsed_upper_bound_nanos(measured_nanos: u64, drift_ppm: u64) -> u64 {
    assert!(
        drift_ppm <= DRIFT_PPM_LIMIT,
        "a drift bound of {drift_ppm} ppm would let a clock stand still"
    );
    let measured = u128::from(measured_nanos) + 1;
    let scaled = (measured * 1_000_000).div_ceil(u128::from(1_000_000 - drift_ppm));
    u64::try_from(scaled).unwrap_or(u64::MAX)
}

/// A reading's `latest` (ns since the epoch), aged by `measured_nanos` of a
/// clock that drifts by at most `drift_ppm`: an upper bound on true time
/// `measured_nanos` (as measured) after the instant the reading bounded.
pub fn aged_latest_nanos(latest_nanos: u64, measured_nanos: u64, drift_ppm: u64) -> u64 {
    latest_nanos.saturating_add(true_elapsed_upper_bound_nanos(measured_nanos, drift_ppm))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_raw_clock_never_runs_backwards() {
        let a = RawInstant::now();
        let b = RawInstant::now();
        assert!(b >= a);
        assert_eq!(a.saturating_duration_since(b), Duration::ZERO);
    }

    #[test]
    fn an_aged_reading_covers_a_clock_slow_by_the_whole_drift_bound() {
        // A clock slow by exactly `ppm` measures m while true time moves
        // m / (1 − ppm): the bound must not fall below it.
        for ppm in [0, 200, MAX_CLOCK_DRIFT_PPM, 83_333] {
            for truth in [0u64, 1, 999, 1_000_000, 3_600_000_000_000] {
                let measured =
                    u64::try_from(u128::from(truth) * u128::from(1_000_000 - ppm) / 1_000_000)
                        .unwrap();
                let bound = true_elapsed_upper_bound_nanos(measured, ppm);
                assert!(
                    bound > truth || (truth == 0 && bound >= 1),
                    "{ppm} {truth} {bound}"
                );
                assert!(bound >= measured);
            }
        }
        assert_eq!(aged_latest_nanos(u64::MAX - 1, 10, 500), u64::MAX);
    }

    #[test]
    #[should_panic(expected = "stand still")]
    fn a_drift_bound_of_a_million_ppm_is_refused() {
        true_elapsed_upper_bound_nanos(1, 1_000_000);
    }
}
