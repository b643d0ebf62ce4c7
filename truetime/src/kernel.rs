//! TrueTime with ε from the kernel's own clock error estimate.
//!
//! On Linux, `adjtimex(2)` reports `maxerror`: the kernel's bound, in
//! microseconds, on how far the system clock may be from true time. NTP and
//! PTP daemons set it at each sync and the kernel grows it by 500 ppm between
//! syncs — a TrueTime ε maintained by the operating system itself.

use crate::{ClockError, TrueTime, TtInterval};

/// Largest kernel error estimate accepted by default: 250 ms. Beyond that
/// commit wait would dominate every transaction; better to refuse to start.
pub const DEFAULT_MAX_KERNEL_EPSILON_NANOS: u64 = 250_000_000;

/// TrueTime whose ε is the kernel's `adjtimex` maxerror (Linux only).
#[derive(Clone, Copy, Debug)]
pub struct KernelTrueTime {
    max_epsilon_nanos: u64,
}

impl KernelTrueTime {
    /// Checks that the kernel clock is synchronised and its error estimate
    /// is at most [`DEFAULT_MAX_KERNEL_EPSILON_NANOS`].
    pub fn new() -> Result<KernelTrueTime, ClockError> {
        KernelTrueTime::with_max_epsilon(DEFAULT_MAX_KERNEL_EPSILON_NANOS)
    }

    /// Like [`KernelTrueTime::new`] with a custom ceiling on ε.
    pub fn with_max_epsilon(max_epsilon_nanos: u64) -> Result<KernelTrueTime, ClockError> {
        let tt = KernelTrueTime { max_epsilon_nanos };
        tt.try_now()?;
        Ok(tt)
    }

    /// A reading, or why the kernel cannot give one.
    pub fn try_now(&self) -> Result<TtInterval, ClockError> {
        let (now, eps) = imp::read()?;
        if eps > self.max_epsilon_nanos {
            return Err(ClockError::UncertaintyTooLarge {
                estimate_ns: eps,
                max_ns: self.max_epsilon_nanos,
            });
        }
        Ok(TtInterval::around(now, eps))
    }
}

impl TrueTime for KernelTrueTime {
    /// The kernel reading. If the kernel stops vouching for the clock after
    /// construction, the interval widens to the configured maximum ε rather
    /// than pretending to a precision it no longer has.
    fn now(&self) -> TtInterval {
        match self.try_now() {
            Ok(i) => i,
            Err(_) => TtInterval::around(crate::system::system_now(), self.max_epsilon_nanos),
        }
    }
}

#[cfg(target_os = "linux")]
mod imp {
    use crate::{ClockError, Timestamp};

    /// `STA_UNSYNC` from `<sys/timex.h>`.
    const STA_UNSYNC: i32 = 0x0040;
    /// `TIME_ERROR` return of `adjtimex`.
    const TIME_ERROR: i32 = 5;

    pub(super) fn read() -> Result<(Timestamp, u64), ClockError> {
        // SAFETY: `timex` is plain old data; zeroed with modes = 0 asks the
        // kernel only to read its state.
        let mut tx: libc::timex = unsafe { std::mem::zeroed() };
        // SAFETY: `tx` is a valid, exclusively borrowed `timex`.
        let state = unsafe { libc::adjtimex(&mut tx) };
        if state == -1 {
            return Err(ClockError::Syscall(
                std::io::Error::last_os_error().to_string(),
            ));
        }
        if state == TIME_ERROR || tx.status & STA_UNSYNC != 0 {
            return Err(ClockError::Unsynchronized {
                status: i64::from(tx.status),
            });
        }
        let eps_nanos = u64::try_from(tx.maxerror)
            .unwrap_or(u64::MAX)
            .saturating_mul(1_000);
        Ok((crate::system::system_now(), eps_nanos))
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use crate::{ClockError, Timestamp};

    pub(super) fn read() -> Result<(Timestamp, u64), ClockError> {
        Err(ClockError::Unsupported("KernelTrueTime (adjtimex)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_clock_gives_a_bounded_interval_or_a_clear_error() {
        match KernelTrueTime::new() {
            Ok(tt) => {
                let i = tt.now();
                assert!(i.earliest <= i.latest);
                assert!(i.epsilon_nanos() <= DEFAULT_MAX_KERNEL_EPSILON_NANOS);
            }
            Err(e) => {
                let msg = e.to_string();
                assert!(
                    msg.contains("not synchronised")
                        || msg.contains("exceeds")
                        || msg.contains("not supported"),
                    "unclear error: {msg}"
                );
            }
        }
    }

    #[test]
    fn kernel_clock_rejects_a_tiny_epsilon_ceiling() {
        // No real kernel vouches for 0 ns; the error must say why.
        let err = KernelTrueTime::with_max_epsilon(0).unwrap_err();
        assert!(matches!(
            err,
            ClockError::UncertaintyTooLarge { .. }
                | ClockError::Unsynchronized { .. }
                | ClockError::Unsupported(_)
        ));
    }
}
