//! TrueTime for Meridian (docs/design.md §2; Spanner §3).
//!
//! Time in Meridian is never a single instant: a clock reading is an interval
//! [`TtInterval`] `[earliest, latest]` that is guaranteed to contain true time
//! while the clock's error bound ε holds. Everything above this crate —
//! leader leases, commit timestamps, commit wait, safe time — is written
//! against that guarantee.
//!
//! The sans-IO cores (`paxos`, `participant`, `txn`) never read a clock: the
//! driver reads one of the backends here and passes the [`TtInterval`] in.
//!
//! Backends:
//! - [`SimulatedTrueTime`]: virtual time for the simulator, with per-node
//!   offset and drift inside ε, Spanner's sawtooth ε, and a switch that breaks
//!   the bound so tests can prove the checkers notice.
//! - [`SystemTrueTime`]: the system clock plus a configured ε.
//! - [`KernelTrueTime`]: the system clock with ε taken from the kernel's own
//!   error estimate (`adjtimex` maxerror) on Linux.
//!
//! # Example
//!
//! A reading is an interval; `after` and `before` are the only certain
//! answers it gives. Commit wait is waiting until `after(s)` holds:
//!
//! ```
//! use meridian_truetime::{
//!     ClockModel, SimulatedTrueTime, Timestamp, TrueTime, TtInterval, VirtualClock,
//! };
//!
//! let t = Timestamp::from_nanos(1_000_000_000);
//! let reading = TtInterval::around(t, 5_000_000); // t ± 5 ms
//! assert_eq!(reading.epsilon_nanos(), 5_000_000);
//! assert!(reading.contains(t));
//! assert!(reading.after(Timestamp::from_nanos(994_000_000))); // surely passed
//! assert!(!reading.after(t)); // t itself may not have passed yet
//! assert!(reading.before(Timestamp::from_nanos(1_006_000_000))); // surely not yet
//!
//! // A simulated node clock: virtual true time read through Spanner's error
//! // model (1 ms base ε, 200 ppm drift, 30 s between syncs).
//! let clock = VirtualClock::new(Timestamp::from_nanos(1_767_225_600_000_000_000));
//! let tt = SimulatedTrueTime::new(clock.clone(), ClockModel::SPANNER, 42);
//! let now = tt.now();
//! assert!(now.contains(clock.now())); // the bound holds
//! assert!(now.epsilon_nanos() <= ClockModel::SPANNER.max_epsilon_nanos());
//!
//! // Commit wait: a commit timestamp s = now.latest is not yet surely past;
//! // it is once true time has moved on by more than twice the largest ε.
//! let s = now.latest;
//! assert!(!tt.after(s));
//! clock.advance(2 * ClockModel::SPANNER.max_epsilon_nanos() + 1);
//! assert!(tt.after(s));
//! ```
#![deny(missing_docs)]

mod elapsed;
mod kernel;
mod simulated;
mod system;
mod timestamp;

pub use elapsed::{
    DRIFT_PPM_LIMIT, MAX_CLOCK_DRIFT_PPM, RawInstant, aged_latest_nanos,
    true_elapsed_upper_bound_nanos,
};
pub use kernel::{DEFAULT_MAX_KERNEL_EPSILON_NANOS, KernelTrueTime};
pub use simulated::{ClockModel, SimulatedTrueTime, VirtualClock};
pub use system::{DEFAULT_SYSTEM_EPSILON_NANOS, SystemTrueTime};
pub use timestamp::{ParseTimestampError, Timestamp, TtInterval};

/// Errors from clock backends.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ClockError {
    /// The backend does not exist on this platform.
    #[error("{0} is not supported on this platform")]
    Unsupported(&'static str),
    /// The kernel reports that the clock is not synchronised (no NTP/PTP
    /// discipline), so it cannot give an error bound.
    #[error(
        "the kernel reports the system clock is not synchronised (adjtimex status {status:#x}); \
         run an NTP/PTP daemon or use the system clock backend with a configured epsilon"
    )]
    Unsynchronized {
        /// The raw `adjtimex` status word.
        status: i64,
    },
    /// The kernel's error estimate is larger than the configured maximum.
    #[error("clock error estimate {estimate_ns} ns exceeds the allowed maximum {max_ns} ns")]
    UncertaintyTooLarge {
        /// The kernel's estimate in nanoseconds.
        estimate_ns: u64,
        /// The configured maximum in nanoseconds.
        max_ns: u64,
    },
    /// A system call failed.
    #[error("clock system call failed: {0}")]
    Syscall(String),
}

/// The TrueTime API (Spanner §3, Table 1).
///
/// `now()` returns an interval guaranteed to contain the absolute time at
/// which it was called, as long as the backend's error bound holds.
pub trait TrueTime: Send + Sync {
    /// The current time as an uncertainty interval.
    fn now(&self) -> TtInterval;

    /// `TT.after(t)`: true if `t` has definitely passed (`now().earliest > t`).
    fn after(&self, t: Timestamp) -> bool {
        self.now().after(t)
    }

    /// `TT.before(t)`: true if `t` has definitely not arrived
    /// (`now().latest < t`).
    fn before(&self, t: Timestamp) -> bool {
        self.now().before(t)
    }
}

impl<T: TrueTime + ?Sized> TrueTime for std::sync::Arc<T> {
    fn now(&self) -> TtInterval {
        (**self).now()
    }
}

impl<T: TrueTime + ?Sized> TrueTime for Box<T> {
    fn now(&self) -> TtInterval {
        (**self).now()
    }
}
