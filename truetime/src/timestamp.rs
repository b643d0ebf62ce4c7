//! [`Timestamp`] and [`TtInterval`].

use std::fmt;
use std::str::FromStr;

/// Nanoseconds since the Unix epoch. Totally ordered; the unit of every
/// commit, prepare, lease and safe time in Meridian.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The smallest timestamp; used as "no timestamp yet".
    pub const ZERO: Timestamp = Timestamp(0);
    /// The largest timestamp.
    pub const MAX: Timestamp = Timestamp(u64::MAX);

    /// A timestamp `nanos` nanoseconds after the epoch.
    pub const fn from_nanos(nanos: u64) -> Timestamp {
        Timestamp(nanos)
    }

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// `self + nanos`, saturating at [`Timestamp::MAX`].
    #[must_use]
    pub const fn saturating_add(self, nanos: u64) -> Timestamp {
        Timestamp(self.0.saturating_add(nanos))
    }

    /// `self - nanos`, saturating at [`Timestamp::ZERO`].
    #[must_use]
    pub const fn saturating_sub(self, nanos: u64) -> Timestamp {
        Timestamp(self.0.saturating_sub(nanos))
    }

    /// The next timestamp (`self + 1 ns`).
    #[must_use]
    pub const fn next(self) -> Timestamp {
        self.saturating_add(1)
    }

    /// The previous timestamp (`self - 1 ns`).
    #[must_use]
    pub const fn prev(self) -> Timestamp {
        self.saturating_sub(1)
    }

    /// Nanoseconds from `earlier` to `self`, zero if `earlier` is later.
    pub const fn nanos_since(self, earlier: Timestamp) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// RFC 3339 rendering with nanoseconds, for logs and the CLI.
    pub fn to_rfc3339(self) -> String {
        let secs = (self.0 / 1_000_000_000) as i64;
        let nanos = (self.0 % 1_000_000_000) as u32;
        match chrono::DateTime::from_timestamp(secs, nanos) {
            Some(dt) => dt.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            None => format!("{}ns", self.0),
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// Error returned when a string is neither RFC 3339 nor a count of
/// nanoseconds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid timestamp {input:?}: expected RFC 3339 (2026-01-02T03:04:05.000000006Z) or nanoseconds since the Unix epoch"
)]
pub struct ParseTimestampError {
    input: String,
}

impl FromStr for Timestamp {
    type Err = ParseTimestampError;

    /// Parses RFC 3339 or a plain integer count of nanoseconds.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseTimestampError {
            input: s.to_owned(),
        };
        if let Ok(n) = s.parse::<u64>() {
            return Ok(Timestamp(n));
        }
        let dt = chrono::DateTime::parse_from_rfc3339(s).map_err(|_| err())?;
        let nanos = dt.timestamp_nanos_opt().ok_or_else(err)?;
        u64::try_from(nanos).map(Timestamp).map_err(|_| err())
    }
}

/// A TrueTime reading: an interval that contains true time while the
/// clock's error bound holds (Spanner §3: `TTinterval`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TtInterval {
    /// No true time earlier than this can be the current time.
    pub earliest: Timestamp,
    /// No true time later than this can be the current time.
    pub latest: Timestamp,
}

impl TtInterval {
    /// An interval; panics if `earliest > latest` (a broken clock backend).
    pub fn new(earliest: Timestamp, latest: Timestamp) -> TtInterval {
        assert!(
            earliest <= latest,
            "TrueTime interval inverted: {earliest:?} > {latest:?}"
        );
        TtInterval { earliest, latest }
    }

    /// The interval `[t - eps, t + eps]`.
    pub fn around(t: Timestamp, eps_nanos: u64) -> TtInterval {
        TtInterval {
            earliest: t.saturating_sub(eps_nanos),
            latest: t.saturating_add(eps_nanos),
        }
    }

    /// A zero-width interval, for tests and benches that want exact time.
    pub fn exact(t: Timestamp) -> TtInterval {
        TtInterval {
            earliest: t,
            latest: t,
        }
    }

    /// `TT.after(t)`: `t` has definitely passed.
    pub fn after(&self, t: Timestamp) -> bool {
        self.earliest > t
    }

    /// `TT.before(t)`: `t` has definitely not arrived.
    pub fn before(&self, t: Timestamp) -> bool {
        self.latest < t
    }

    /// The half-width ε of this interval in nanoseconds.
    pub fn epsilon_nanos(&self) -> u64 {
        (self.latest.0 - self.earliest.0) / 2
    }

    /// The midpoint, the backend's best estimate of true time.
    pub fn midpoint(&self) -> Timestamp {
        Timestamp(self.earliest.0 + (self.latest.0 - self.earliest.0) / 2)
    }

    /// Whether `t` lies inside the interval.
    pub fn contains(&self, t: Timestamp) -> bool {
        self.earliest <= t && t <= self.latest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_rfc3339_round_trips() {
        let t = Timestamp(1_767_225_600_123_456_789);
        let s = t.to_string();
        assert_eq!(s, "2026-01-01T00:00:00.123456789Z");
        assert_eq!(s.parse::<Timestamp>().unwrap(), t);
        assert_eq!("42".parse::<Timestamp>().unwrap(), Timestamp(42));
        assert!("yesterday".parse::<Timestamp>().is_err());
        assert!("1960-01-01T00:00:00Z".parse::<Timestamp>().is_err());
    }

    #[test]
    fn spanner_s3_after_and_before_use_interval_bounds() {
        let i = TtInterval::around(Timestamp(1_000), 10);
        assert!(i.after(Timestamp(989)));
        assert!(!i.after(Timestamp(990)));
        assert!(i.before(Timestamp(1_011)));
        assert!(!i.before(Timestamp(1_010)));
        assert_eq!(i.epsilon_nanos(), 10);
        assert_eq!(i.midpoint(), Timestamp(1_000));
    }

    #[test]
    #[should_panic(expected = "inverted")]
    fn inverted_interval_is_rejected() {
        let _ = TtInterval::new(Timestamp(2), Timestamp(1));
    }
}
