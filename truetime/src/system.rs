//! The system clock with a configured error bound.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::{Timestamp, TrueTime, TtInterval};

/// Reads the system clock and widens it by a configured ε. Correct only if
/// the host's clock really stays within ε of true time (NTP, chrony, PTP).
#[derive(Clone, Copy, Debug)]
pub struct SystemTrueTime {
    epsilon_nanos: u64,
}

/// Default ε for [`SystemTrueTime`]: 7 ms, Spanner's worst-case sawtooth.
pub const DEFAULT_SYSTEM_EPSILON_NANOS: u64 = 7_000_000;

impl SystemTrueTime {
    /// A clock with error bound `epsilon_nanos`.
    pub fn new(epsilon_nanos: u64) -> SystemTrueTime {
        SystemTrueTime { epsilon_nanos }
    }

    /// The configured ε in nanoseconds.
    pub fn epsilon_nanos(&self) -> u64 {
        self.epsilon_nanos
    }
}

impl Default for SystemTrueTime {
    fn default() -> Self {
        SystemTrueTime::new(DEFAULT_SYSTEM_EPSILON_NANOS)
    }
}

/// The system clock as a [`Timestamp`]; a clock before 1970 reads as zero.
pub(crate) fn system_now() -> Timestamp {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    Timestamp(u64::try_from(nanos).unwrap_or(u64::MAX))
}

impl TrueTime for SystemTrueTime {
    fn now(&self) -> TtInterval {
        TtInterval::around(system_now(), self.epsilon_nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_interval_brackets_the_system_clock() {
        let tt = SystemTrueTime::new(5_000_000);
        let before = system_now();
        let i = tt.now();
        let after = system_now();
        assert!(i.earliest <= after && i.latest >= before);
        assert_eq!(i.epsilon_nanos(), 5_000_000);
    }

    #[test]
    fn spanner_s4_1_2_commit_wait_terminates_on_system_clock() {
        let tt = SystemTrueTime::new(1_000_000);
        let s = tt.now().latest;
        let mut spins = 0u64;
        while !tt.after(s) {
            spins += 1;
            std::hint::spin_loop();
        }
        assert!(tt.now().earliest > s);
        assert!(spins > 0);
    }
}
