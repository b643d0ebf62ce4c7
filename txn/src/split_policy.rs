//! When to split a range, and where: a sans-IO policy (no clock, no
//! randomness of its own; the driver passes both in), for automatic range
//! splits. The node's driver loop feeds each led range's policy every
//! request's key and asks it once a second whether to split
//! (`meridian_node::autosplit`); the node turns splits by load on only when
//! configured.
//!
//! Two triggers, as CockroachDB's size- and load-based splits:
//!
//! - **Size**: the bytes of the newest live versions of the range
//!   (`GroupState::range_bytes`) exceed [`SplitPolicyConfig::split_bytes`]
//!   (default [`DEFAULT_SPLIT_BYTES`], 64 MiB). The caller supplies the key
//!   that halves those bytes.
//! - **Load**: the requests per second the range serves stay above
//!   [`SplitPolicyConfig::load_qps`] (default [`DEFAULT_SPLIT_LOAD_QPS`])
//!   for [`SplitPolicyConfig::load_sustain_nanos`] (hysteresis: a burst
//!   does not split, and the count re-arms only after it falls below
//!   [`LOAD_REARM_FRACTION`] of the threshold). The split key halves the
//!   load of a reservoir sample of the requests' keys (Vitter's algorithm
//!   R, [`LOAD_SAMPLE_KEYS`] keys), and is refused when no key gives each
//!   side at least [`MIN_LOAD_SIDE_FRACTION`] of the samples: a single hot
//!   key cannot be split across ranges, and splitting beside it only moves
//!   it.
//!
//! Both triggers respect a minimum range size
//! ([`SplitPolicyConfig::min_range_bytes`]: a range smaller than it is
//! never split, by load either, since each range costs heartbeats, leases
//! and closed timestamps when idle) and a cap on the ranges a node holds
//! ([`SplitPolicyConfig::max_ranges_per_node`]).

use bytes::Bytes;
use meridian_truetime::Timestamp;

/// Default size over which a range splits: 64 MiB of newest live versions
/// (CockroachDB's `range_max_bytes` was 64 MiB for years; TiKV's region
/// split size is 96 MiB).
pub const DEFAULT_SPLIT_BYTES: u64 = 64 << 20;

/// Default load over which a range splits: 2,500 requests per second, the
/// default of CockroachDB's `kv.range_split.load_qps_threshold`. About a
/// quarter of what one Meridian group commits per second on the 2-vCPU
/// machine of docs/performance.md, so a hot range splits well before its
/// leader saturates.
pub const DEFAULT_SPLIT_LOAD_QPS: f64 = 2_500.0;

/// Default time the load must stay above the threshold before a split:
/// 10 s.
pub const DEFAULT_LOAD_SUSTAIN_NANOS: u64 = 10_000_000_000;

/// Default smallest range that may split: 1 MiB of newest live versions.
pub const DEFAULT_MIN_RANGE_BYTES: u64 = 1 << 20;

/// Default most ranges one node holds replicas of before it stops
/// splitting them: 64.
pub const DEFAULT_MAX_RANGES_PER_NODE: u64 = 64;

/// Length of one load-measuring window: 1 s.
pub const LOAD_WINDOW_NANOS: u64 = 1_000_000_000;

/// Keys kept in the reservoir sample of requests.
pub const LOAD_SAMPLE_KEYS: usize = 64;

/// Fewest sampled requests before a load split key is chosen.
pub const MIN_LOAD_SAMPLES: u64 = 32;

/// Each side of a load split must carry at least this share of the
/// sampled requests.
pub const MIN_LOAD_SIDE_FRACTION: f64 = 0.25;

/// After the load has been over the threshold, it counts as fallen (and
/// the sustain clock restarts) only below this share of the threshold.
pub const LOAD_REARM_FRACTION: f64 = 0.8;

/// The policy's thresholds.
#[derive(Clone, Debug, PartialEq)]
pub struct SplitPolicyConfig {
    /// Split a range whose newest live versions exceed this many bytes.
    pub split_bytes: u64,
    /// Split a range serving more requests per second than this.
    pub load_qps: f64,
    /// How long the load must stay over `load_qps`, ns.
    pub load_sustain_nanos: u64,
    /// Never split a range smaller than this.
    pub min_range_bytes: u64,
    /// Never split a range of a node that holds this many ranges.
    pub max_ranges_per_node: u64,
}

impl Default for SplitPolicyConfig {
    fn default() -> Self {
        SplitPolicyConfig {
            split_bytes: DEFAULT_SPLIT_BYTES,
            load_qps: DEFAULT_SPLIT_LOAD_QPS,
            load_sustain_nanos: DEFAULT_LOAD_SUSTAIN_NANOS,
            min_range_bytes: DEFAULT_MIN_RANGE_BYTES,
            max_ranges_per_node: DEFAULT_MAX_RANGES_PER_NODE,
        }
    }
}

/// What the driver knows of the range when it asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeFacts {
    /// First key of the range.
    pub start: Bytes,
    /// Bound after its last key; `None` = unbounded.
    pub end: Option<Bytes>,
    /// Bytes of its newest live versions (`GroupState::range_bytes`).
    pub bytes: u64,
    /// The key that halves those bytes, if the driver found one.
    pub size_midpoint: Option<Bytes>,
    /// Ranges the node holds replicas of.
    pub ranges_on_node: u64,
}

impl RangeFacts {
    /// Whether `key` splits the range into two non-empty halves: inside
    /// it and not its first key.
    pub fn splits_at(&self, key: &[u8]) -> bool {
        key > self.start.as_ref() && self.end.as_ref().is_none_or(|e| key < e.as_ref())
    }
}

/// Why and where to split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SplitDecision {
    /// The range is over its size threshold.
    BySize {
        /// The split key: the right half starts here.
        key: Bytes,
    },
    /// The range has been over its load threshold for the sustain time.
    ByLoad {
        /// The split key, halving the sampled load.
        key: Bytes,
    },
}

/// The load split policy's state for one range: the request rate per
/// window, the hysteresis and the reservoir of sampled keys.
#[derive(Clone, Debug)]
pub struct SplitPolicy {
    cfg: SplitPolicyConfig,
    /// Start of the current load window.
    window_start: Option<Timestamp>,
    /// Requests counted in the current window.
    window_count: u64,
    /// Requests per second of the last full window.
    last_qps: f64,
    /// Since when the load has been over the threshold (hysteresis).
    hot_since: Option<Timestamp>,
    /// Reservoir sample of the keys requested since the load went hot.
    sample: Vec<Bytes>,
    /// Requests offered to the reservoir.
    sampled: u64,
}

impl SplitPolicy {
    /// A policy with thresholds `cfg`, no load seen.
    pub fn new(cfg: SplitPolicyConfig) -> SplitPolicy {
        SplitPolicy {
            cfg,
            window_start: None,
            window_count: 0,
            last_qps: 0.0,
            hot_since: None,
            sample: Vec::with_capacity(LOAD_SAMPLE_KEYS),
            sampled: 0,
        }
    }

    /// The thresholds.
    pub fn config(&self) -> &SplitPolicyConfig {
        &self.cfg
    }

    /// Requests per second of the last full window.
    pub fn qps(&self) -> f64 {
        self.last_qps
    }

    /// Counts one request for `key` at local time `now`; `random` is a
    /// fresh random number from the driver (for the reservoir).
    pub fn record(&mut self, now: Timestamp, key: &[u8], random: u64) {
        self.roll_window(now);
        self.window_count += 1;
        if self.hot_since.is_none() {
            return;
        }
        // Algorithm R: the n-th request replaces a random slot with
        // probability k/n.
        self.sampled += 1;
        if self.sample.len() < LOAD_SAMPLE_KEYS {
            self.sample.push(Bytes::copy_from_slice(key));
        } else {
            let slot = random % self.sampled;
            if let Some(s) = self.sample.get_mut(slot as usize) {
                *s = Bytes::copy_from_slice(key);
            }
        }
    }

    /// Closes the windows that ended by `now`, updating the rate and the
    /// hysteresis.
    fn roll_window(&mut self, now: Timestamp) {
        let start = *self.window_start.get_or_insert(now);
        if now.nanos_since(start) < LOAD_WINDOW_NANOS {
            return;
        }
        let elapsed = now.nanos_since(start);
        // A window with no requests after it (an idle stretch) counts as
        // zero load for the rest.
        let full_windows = elapsed / LOAD_WINDOW_NANOS;
        self.last_qps = if full_windows > 1 {
            0.0
        } else {
            self.window_count as f64 * 1e9 / LOAD_WINDOW_NANOS as f64
        };
        self.window_count = 0;
        self.window_start = Some(start.saturating_add(full_windows * LOAD_WINDOW_NANOS));
        if self.last_qps > self.cfg.load_qps {
            if self.hot_since.is_none() {
                self.hot_since = Some(now);
                self.sample.clear();
                self.sampled = 0;
            }
        } else if self.last_qps < self.cfg.load_qps * LOAD_REARM_FRACTION {
            self.hot_since = None;
            self.sample.clear();
            self.sampled = 0;
        }
    }

    /// Whether to split the range now, and where. Size first; then load.
    pub fn decide(&mut self, now: Timestamp, facts: &RangeFacts) -> Option<SplitDecision> {
        self.roll_window(now);
        if facts.ranges_on_node >= self.cfg.max_ranges_per_node
            || facts.bytes < self.cfg.min_range_bytes
        {
            return None;
        }
        if facts.bytes > self.cfg.split_bytes {
            if let Some(key) = facts.size_midpoint.as_ref().filter(|k| facts.splits_at(k)) {
                return Some(SplitDecision::BySize { key: key.clone() });
            }
        }
        let hot_since = self.hot_since?;
        if now.nanos_since(hot_since) < self.cfg.load_sustain_nanos
            || self.sampled < MIN_LOAD_SAMPLES
        {
            return None;
        }
        let key = load_split_key(&self.sample, facts)?;
        Some(SplitDecision::ByLoad { key })
    }

    /// Forgets the load seen: after a split (either half starts afresh).
    pub fn reset(&mut self) {
        *self = SplitPolicy::new(self.cfg.clone());
    }
}

/// The sampled key that best halves the samples (the right half starts
/// at it), if one leaves each side at least [`MIN_LOAD_SIDE_FRACTION`]
/// of them and splits the range.
fn load_split_key(sample: &[Bytes], facts: &RangeFacts) -> Option<Bytes> {
    let mut keys: Vec<&Bytes> = sample.iter().collect();
    keys.sort();
    let n = keys.len();
    let min_side = (n as f64 * MIN_LOAD_SIDE_FRACTION).ceil() as usize;
    let mut best: Option<(usize, &Bytes)> = None;
    for (i, k) in keys.iter().enumerate() {
        // Only the first occurrence of a key: the left side holds the
        // samples before it, the right side it and those after.
        if i > 0 && keys[i - 1] == *k {
            continue;
        }
        let (left, right) = (i, n - i);
        if left < min_side || right < min_side || !facts.splits_at(k) {
            continue;
        }
        let imbalance = left.abs_diff(right);
        if best.is_none_or(|(b, _)| imbalance < b) {
            best = Some((imbalance, k));
        }
    }
    best.map(|(_, k)| (*k).clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    fn facts(bytes: u64) -> RangeFacts {
        RangeFacts {
            start: Bytes::new(),
            end: None,
            bytes,
            size_midpoint: Some(Bytes::from_static(b"m")),
            ranges_on_node: 1,
        }
    }

    fn at(ns: u64) -> Timestamp {
        Timestamp::from_nanos(ns)
    }

    /// Drives `qps` requests per second for `secs` seconds from `from`,
    /// keys from `key(i)`; returns the time reached.
    fn drive(
        p: &mut SplitPolicy,
        from: u64,
        secs: u64,
        qps: u64,
        key: impl Fn(u64) -> Vec<u8>,
    ) -> u64 {
        let step = SEC / qps;
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        for i in 0..secs * qps {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            p.record(at(from + i * step), &key(i), rng);
        }
        from + secs * SEC
    }

    #[test]
    fn a_range_over_the_size_threshold_splits_at_its_byte_midpoint_and_one_under_does_not() {
        let mut p = SplitPolicy::new(SplitPolicyConfig::default());
        assert_eq!(p.decide(at(SEC), &facts(DEFAULT_SPLIT_BYTES)), None);
        assert_eq!(
            p.decide(at(SEC), &facts(DEFAULT_SPLIT_BYTES + 1)),
            Some(SplitDecision::BySize {
                key: Bytes::from_static(b"m")
            })
        );
        // A midpoint on the range's first key splits nothing.
        let mut f = facts(DEFAULT_SPLIT_BYTES + 1);
        f.size_midpoint = Some(Bytes::new());
        assert_eq!(p.decide(at(SEC), &f), None);
    }

    #[test]
    fn no_split_below_the_minimum_size_or_at_the_cap_of_ranges_per_node() {
        let cfg = SplitPolicyConfig {
            split_bytes: 10,
            ..SplitPolicyConfig::default()
        };
        let mut p = SplitPolicy::new(cfg);
        // Over the split size but under the minimum: nothing.
        assert_eq!(p.decide(at(SEC), &facts(DEFAULT_MIN_RANGE_BYTES - 1)), None);
        let mut f = facts(DEFAULT_MIN_RANGE_BYTES);
        assert!(p.decide(at(SEC), &f).is_some());
        f.ranges_on_node = DEFAULT_MAX_RANGES_PER_NODE;
        assert_eq!(p.decide(at(SEC), &f), None);
    }

    #[test]
    fn sustained_load_over_the_threshold_splits_at_the_key_that_halves_the_sampled_load() {
        let mut p = SplitPolicy::new(SplitPolicyConfig::default());
        let f = facts(DEFAULT_MIN_RANGE_BYTES);
        // 3,000 requests/s over 100 keys, uniformly.
        let key = |i: u64| format!("k{:03}", i % 100).into_bytes();
        let t = drive(&mut p, 0, 5, 3_000, key);
        // Hot for less than the sustain time: no split yet (hysteresis).
        assert_eq!(p.decide(at(t), &f), None);
        let t = drive(&mut p, t, 7, 3_000, key);
        let Some(SplitDecision::ByLoad { key: k }) = p.decide(at(t), &f) else {
            panic!("no load split after {} s hot", 11);
        };
        // Near the middle of k000..k099.
        let n: u64 = std::str::from_utf8(&k[1..]).unwrap().parse().unwrap();
        assert!((25..=75).contains(&n), "split at {k:?}");
    }

    #[test]
    fn a_burst_does_not_split_and_load_below_the_rearm_level_restarts_the_sustain_clock() {
        let mut p = SplitPolicy::new(SplitPolicyConfig::default());
        let f = facts(DEFAULT_MIN_RANGE_BYTES);
        let key = |i: u64| format!("k{:03}", i % 100).into_bytes();
        let t = drive(&mut p, 0, 8, 3_000, key);
        // Just under the threshold but above the re-arm level: still hot.
        let t = drive(&mut p, t, 1, 2_200, key);
        // Far below: cools down.
        let t = drive(&mut p, t, 2, 1_000, key);
        let t = drive(&mut p, t, 5, 3_000, key);
        assert_eq!(p.decide(at(t), &f), None, "the sustain clock restarted");
        let t = drive(&mut p, t, 7, 3_000, key);
        assert!(matches!(
            p.decide(at(t), &f),
            Some(SplitDecision::ByLoad { .. })
        ));
    }

    #[test]
    fn a_single_hot_key_is_never_a_load_split_point() {
        let mut p = SplitPolicy::new(SplitPolicyConfig::default());
        let f = facts(DEFAULT_MIN_RANGE_BYTES);
        // 90 % of requests on one key, the rest spread: no split leaves a
        // quarter of the load on each side without cutting at the hot key.
        let key = |i: u64| {
            if i % 10 == 0 {
                format!("k{:03}", i % 97).into_bytes()
            } else {
                b"hot".to_vec()
            }
        };
        let t = drive(&mut p, 0, 15, 3_000, key);
        assert_eq!(p.decide(at(t), &f), None);
        // All on one key: none either.
        let mut p = SplitPolicy::new(SplitPolicyConfig::default());
        let t = drive(&mut p, 0, 15, 3_000, |_| b"hot".to_vec());
        assert_eq!(p.decide(at(t), &f), None);
    }

    #[test]
    fn the_load_split_key_lies_inside_the_range_and_an_idle_range_cools_down() {
        let mut p = SplitPolicy::new(SplitPolicyConfig::default());
        let mut f = facts(DEFAULT_MIN_RANGE_BYTES);
        f.start = Bytes::from_static(b"k050");
        let key = |i: u64| format!("k{:03}", 50 + i % 50).into_bytes();
        let t = drive(&mut p, 0, 12, 3_000, key);
        match p.decide(at(t), &f) {
            Some(SplitDecision::ByLoad { key }) => assert!(f.splits_at(&key), "{key:?}"),
            other => panic!("{other:?}"),
        }
        // Ten idle seconds: the rate is zero and nothing splits.
        assert_eq!(p.decide(at(t + 10 * SEC), &f), None);
        assert_eq!(p.qps(), 0.0);
    }
}
