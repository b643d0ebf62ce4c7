//! The key format.
//!
//! Record `n` is stored under `<P>user<n>`: one prefix character `P`, then
//! `user` and the record number in decimal (`"user17`, `Kuser18`, …). `P` is drawn from the record number by a
//! hash ([`prefix_of`]) uniformly over the 94 printable ASCII characters
//! `!` (0x21) to `~` (0x7e). Meridian's default layout splits key ranges
//! by their first byte over printable ASCII (`meridian_node::config::
//! default_split_points`), so records spread evenly over every group of
//! both the embedded cluster and a `meridian cluster run` cluster, and two
//! random records usually live in different groups.
//!
//! A scan (workload E) starts at a record's key and stays within its
//! prefix character ([`scan_end`]): with the default 100,000 records each
//! prefix holds about a thousand, so a scan of at most 100 rows is served
//! by one group, as a scan over consecutive keys would be.

/// First prefix character: `!`.
pub const FIRST_PREFIX: u8 = 0x21;
/// Last prefix character: `~`.
pub const LAST_PREFIX: u8 = 0x7e;
/// How many prefix characters there are.
pub const PREFIXES: u64 = (LAST_PREFIX - FIRST_PREFIX) as u64 + 1;

/// 64-bit FNV-1a over the eight bytes of `v`, least significant first
/// (YCSB's `Utils.fnvhash64`, made non-negative as YCSB does).
pub fn fnv1a64(mut v: u64) -> u64 {
    const OFFSET: u64 = 0xCBF2_9CE4_8422_2325;
    const PRIME: u64 = 1_099_511_628_211;
    let mut h = OFFSET;
    for _ in 0..8 {
        h ^= v & 0xff;
        h = h.wrapping_mul(PRIME);
        v >>= 8;
    }
    (h as i64).unsigned_abs()
}

/// The prefix character of record `n`.
pub fn prefix_of(n: u64) -> u8 {
    // Hash again with the bits mixed, so that the prefix does not follow
    // the scrambled zipfian's own use of the same hash.
    FIRST_PREFIX + (fnv1a64(n ^ 0x9E37_79B9_7F4A_7C15) % PREFIXES) as u8
}

/// The key of record `n`.
pub fn record_key(n: u64) -> String {
    format!("{}user{n}", char::from(prefix_of(n)))
}

/// The exclusive end of a scan starting at `key`: the next prefix
/// character, so that the scan stays among keys of the same prefix.
pub fn scan_end(key: &[u8]) -> Vec<u8> {
    let first = key.first().copied().unwrap_or(FIRST_PREFIX);
    vec![first.saturating_add(1)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use meridian_node::config::default_split_points;

    /// The group (1-based) of `key` under the default layout of `groups`.
    fn group_of(key: &[u8], groups: u64) -> usize {
        let splits = default_split_points(groups);
        1 + splits.iter().filter(|s| key >= s.as_bytes()).count()
    }

    #[test]
    fn keys_spread_over_every_group_of_the_default_layout() {
        for groups in 1..=16u64 {
            let mut per_group = vec![0u64; groups as usize + 1];
            let records = 10_000;
            for n in 0..records {
                per_group[group_of(record_key(n).as_bytes(), groups)] += 1;
            }
            for (g, &c) in per_group.iter().enumerate().skip(1) {
                // Even shares, within the rounding of 94 characters over
                // the groups and the hash's noise.
                let share = c as f64 / records as f64;
                let even = 1.0 / groups as f64;
                assert!(
                    share > 0.6 * even && share < 1.5 * even,
                    "{groups} groups: group {g} got {c} of {records} keys"
                );
            }
        }
    }

    #[test]
    fn two_random_records_usually_cross_groups() {
        let mut crossing = 0;
        for n in 0..1000u64 {
            let (a, b) = (record_key(n), record_key(n + 1000));
            if group_of(a.as_bytes(), 3) != group_of(b.as_bytes(), 3) {
                crossing += 1;
            }
        }
        assert!(crossing > 550, "only {crossing} of 1000 pairs cross groups");
    }

    #[test]
    fn key_format_and_scan_end() {
        let k = record_key(42);
        assert!(k.ends_with("user42"));
        assert!((FIRST_PREFIX..=LAST_PREFIX).contains(&k.as_bytes()[0]));
        assert_eq!(scan_end(k.as_bytes()), vec![k.as_bytes()[0] + 1]);
        assert!(k.as_bytes() < &scan_end(k.as_bytes())[..]);
        // Printable prefixes only: none is a space.
        assert!((0..10_000).all(|n| prefix_of(n) != b' '));
    }
}
