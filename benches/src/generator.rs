//! YCSB's request distributions: [`Zipfian`] (Gray et al., "Quickly
//! generating billion-record synthetic databases", as YCSB's
//! `ZipfianGenerator`), [`ScrambledZipfian`] (YCSB's default: a zipfian
//! over ten billion items hashed onto the records, so the hot records are
//! scattered over the key space rather than clustered at its start), the
//! `latest` distribution (zipfian over recency, for workload D) and
//! uniform; and the [`InsertCounter`] that hands out new record numbers
//! and says which are acknowledged.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use rand::Rng;

use crate::keys::fnv1a64;

/// YCSB's default zipfian constant θ.
pub const DEFAULT_THETA: f64 = 0.99;

/// The number of items the scrambled zipfian draws from before hashing
/// (YCSB's `ScrambledZipfianGenerator.ITEM_COUNT`).
pub const SCRAMBLED_ITEMS: u64 = 10_000_000_000;

/// Terms summed one by one before [`zeta`] switches to the
/// Euler–Maclaurin formula.
const EXACT_TERMS: u64 = 10_000;

/// `Σ_{i=from+1}^{to} 1/i^θ`: the terms YCSB's incremental `zeta` adds
/// when the item count grows from `from` to `to`.
fn zeta_terms(from: u64, to: u64, theta: f64) -> f64 {
    (from..to).map(|i| 1.0 / ((i + 1) as f64).powf(theta)).sum()
}

/// The generalised harmonic number `ζ(n, θ) = Σ_{i=1}^{n} 1/i^θ`.
///
/// Exact for up to 10,000 terms; beyond, the first 9,999 terms are summed
/// and the rest taken by the Euler–Maclaurin formula, whose error there is
/// far below `f64`'s precision. YCSB sums all ten billion terms for a
/// non-default θ, which takes minutes; this takes microseconds and agrees
/// with YCSB's precomputed `ζ(10¹⁰, 0.99) = 26.46902820178302`.
pub fn zeta(n: u64, theta: f64) -> f64 {
    if n <= EXACT_TERMS {
        return zeta_terms(0, n, theta);
    }
    let a = EXACT_TERMS as f64;
    let b = n as f64;
    let f = |x: f64| x.powf(-theta);
    let f1 = |x: f64| -theta * x.powf(-theta - 1.0);
    let f3 = |x: f64| -theta * (theta + 1.0) * (theta + 2.0) * x.powf(-theta - 3.0);
    let integral = (b.powf(1.0 - theta) - a.powf(1.0 - theta)) / (1.0 - theta);
    let tail = integral + (f(a) + f(b)) / 2.0 + (f1(b) - f1(a)) / 12.0 - (f3(b) - f3(a)) / 720.0;
    zeta_terms(0, EXACT_TERMS - 1, theta) + tail
}

/// Zipfian over `0..items` (item 0 the most popular), with YCSB's
/// algorithm; the item count may grow between draws ([`Zipfian::next_of`]),
/// as the `latest` distribution needs.
#[derive(Clone, Debug)]
pub struct Zipfian {
    theta: f64,
    alpha: f64,
    zeta2theta: f64,
    /// The item count `zetan` and `eta` were computed for.
    items: u64,
    zetan: f64,
    eta: f64,
}

impl Zipfian {
    /// Zipfian over `0..items` with constant `theta` (0 < θ < 1).
    pub fn new(items: u64, theta: f64) -> Zipfian {
        Zipfian::with_zeta(items, theta, zeta(items, theta))
    }

    /// [`Zipfian::new`] with `ζ(items, θ)` given.
    pub fn with_zeta(items: u64, theta: f64, zetan: f64) -> Zipfian {
        let items = items.max(1);
        let zeta2theta = zeta(2, theta);
        let mut z = Zipfian {
            theta,
            alpha: 1.0 / (1.0 - theta),
            zeta2theta,
            items,
            zetan,
            eta: 0.0,
        };
        z.eta = z.eta_for(items);
        z
    }

    fn eta_for(&self, items: u64) -> f64 {
        (1.0 - (2.0 / items as f64).powf(1.0 - self.theta)) / (1.0 - self.zeta2theta / self.zetan)
    }

    /// ζ for the current item count.
    pub fn zetan(&self) -> f64 {
        self.zetan
    }

    /// The probability of item `i` (0-based rank) among the current items.
    pub fn probability(&self, i: u64) -> f64 {
        1.0 / ((i + 1) as f64).powf(self.theta) / self.zetan
    }

    /// One draw over the generator's item count.
    pub fn next(&mut self, rng: &mut impl Rng) -> u64 {
        self.next_of(rng, self.items)
    }

    /// One draw over `0..items`; ζ is extended incrementally when `items`
    /// grew since the last draw (and recomputed if it shrank).
    pub fn next_of(&mut self, rng: &mut impl Rng, items: u64) -> u64 {
        let items = items.max(1);
        if items != self.items {
            self.zetan = if items > self.items {
                self.zetan + zeta_terms(self.items, items, self.theta)
            } else {
                zeta(items, self.theta)
            };
            self.items = items;
            self.eta = self.eta_for(items);
        }
        let u: f64 = rng.random();
        let uz = u * self.zetan;
        if uz < 1.0 {
            return 0;
        }
        if uz < 1.0 + 0.5f64.powf(self.theta) {
            return 1.min(items - 1);
        }
        let v = (items as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64;
        v.min(items - 1)
    }
}

/// YCSB's scrambled zipfian over `0..items`: a [`Zipfian`] over
/// [`SCRAMBLED_ITEMS`] items, each draw hashed (FNV-1a) onto the records.
/// The most popular record is drawn with probability about `1/ζ(10¹⁰, θ)`
/// (3.8 % for θ = 0.99).
#[derive(Clone, Debug)]
pub struct ScrambledZipfian {
    items: u64,
    zipf: Zipfian,
}

impl ScrambledZipfian {
    /// Scrambled zipfian over `0..items` with constant `theta`.
    pub fn new(items: u64, theta: f64) -> ScrambledZipfian {
        ScrambledZipfian {
            items: items.max(1),
            zipf: Zipfian::new(SCRAMBLED_ITEMS, theta),
        }
    }

    /// One draw.
    pub fn next(&mut self, rng: &mut impl Rng) -> u64 {
        fnv1a64(self.zipf.next(rng)) % self.items
    }

    /// The record drawn for the zipfian's most popular item.
    pub fn hottest(&self) -> u64 {
        fnv1a64(0) % self.items
    }

    /// The probability of the zipfian's most popular item.
    pub fn hottest_probability(&self) -> f64 {
        self.zipf.probability(0)
    }
}

/// How requests choose among the records.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Distribution {
    /// Every record equally likely.
    Uniform,
    /// YCSB's scrambled zipfian with constant θ.
    Zipfian(f64),
    /// Zipfian over recency with constant θ: the newest record is the most
    /// popular (YCSB's `SkewedLatestGenerator`, workload D).
    Latest(f64),
}

impl Distribution {
    /// Its name, as the command line spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Distribution::Uniform => "uniform",
            Distribution::Zipfian(_) => "zipfian",
            Distribution::Latest(_) => "latest",
        }
    }
}

/// One thread's chooser of existing records, by a [`Distribution`].
#[derive(Clone, Debug)]
pub enum KeyChooser {
    /// Uniform over `0..records`, or over every acknowledged record when
    /// inserts add more.
    Uniform,
    /// Scrambled zipfian over the records loaded.
    Zipfian(ScrambledZipfian),
    /// Zipfian over recency: `newest - zipfian(count)`.
    Latest(Zipfian),
}

impl KeyChooser {
    /// A chooser over `records` records (the latest distribution follows
    /// the inserts' acknowledged count as it grows).
    pub fn new(dist: Distribution, records: u64) -> KeyChooser {
        match dist {
            Distribution::Uniform => KeyChooser::Uniform,
            Distribution::Zipfian(theta) => {
                KeyChooser::Zipfian(ScrambledZipfian::new(records, theta))
            }
            Distribution::Latest(theta) => KeyChooser::Latest(Zipfian::new(records, theta)),
        }
    }

    /// A record number below `count`, the number of records known to
    /// exist (the load's, plus the acknowledged inserts).
    pub fn next(&mut self, rng: &mut impl Rng, count: u64) -> u64 {
        let count = count.max(1);
        match self {
            KeyChooser::Uniform => rng.random_range(0..count),
            // YCSB's scrambled zipfian stays over the records loaded;
            // inserted records are reached by the latest distribution.
            KeyChooser::Zipfian(z) => z.next(rng).min(count - 1),
            KeyChooser::Latest(z) => count - 1 - z.next_of(rng, count),
        }
    }
}

/// Hands out the numbers of new records (from the number loaded up) and
/// tracks which have been acknowledged, so that reads choose only among
/// records whose insert has finished (YCSB's
/// `AcknowledgedCounterGenerator`): [`InsertCounter::limit`] is the length
/// of the prefix of record numbers all acknowledged.
#[derive(Debug)]
pub struct InsertCounter {
    next: AtomicU64,
    limit: AtomicU64,
    /// Acknowledged numbers above the limit.
    pending: Mutex<BTreeSet<u64>>,
}

impl InsertCounter {
    /// A counter whose first new record is `start` (records `0..start`
    /// exist).
    pub fn new(start: u64) -> InsertCounter {
        InsertCounter {
            next: AtomicU64::new(start),
            limit: AtomicU64::new(start),
            pending: Mutex::new(BTreeSet::new()),
        }
    }

    /// The number of a new record.
    pub fn claim(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// Marks record `n`'s insert as finished (successful or not, as YCSB
    /// does: a failed insert must not stall the limit).
    pub fn acknowledge(&self, n: u64) {
        let mut pending = self.pending.lock().expect("insert counter lock");
        pending.insert(n);
        let mut limit = self.limit.load(Ordering::Relaxed);
        while pending.remove(&limit) {
            limit += 1;
        }
        self.limit.store(limit, Ordering::Release);
    }

    /// Records `0..limit` are all loaded or acknowledged.
    pub fn limit(&self) -> u64 {
        self.limit.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    #[test]
    fn zeta_matches_ycsb_precomputed_constant() {
        // YCSB's ScrambledZipfianGenerator.ZETAN.
        let z = zeta(SCRAMBLED_ITEMS, 0.99);
        assert!((z - 26.469_028_201_783_02).abs() < 1e-6, "ζ = {z}");
        // The formula agrees with the exact sum where both can be had.
        for theta in [0.5, 0.8, 0.99] {
            let exact = zeta_terms(0, 200_000, theta);
            let approx = zeta(200_000, theta);
            assert!((exact - approx).abs() < 1e-9 * exact, "θ {theta}");
        }
    }

    #[test]
    fn zipfian_hottest_item_gets_its_share() {
        let mut rng = SmallRng::seed_from_u64(7);
        let n = 1000;
        let draws = 200_000;
        let mut z = Zipfian::new(n, 0.99);
        let mut counts = vec![0u64; n as usize];
        for _ in 0..draws {
            counts[z.next(&mut rng) as usize] += 1;
        }
        let expected = z.probability(0);
        let got = counts[0] as f64 / draws as f64;
        assert!(
            (got - expected).abs() < 0.1 * expected,
            "item 0: {got:.4} of draws, expected {expected:.4}"
        );
        // Popularity falls with rank.
        assert!(counts[0] > counts[1] && counts[1] > counts[10] && counts[10] > counts[500]);
    }

    #[test]
    fn scrambled_zipfian_is_skewed_but_scattered() {
        let mut rng = SmallRng::seed_from_u64(11);
        let n = 1000;
        let draws = 200_000;
        let mut z = ScrambledZipfian::new(n, DEFAULT_THETA);
        let mut counts = vec![0u64; n as usize];
        for _ in 0..draws {
            counts[z.next(&mut rng) as usize] += 1;
        }
        let (hot, &hot_count) = counts
            .iter()
            .enumerate()
            .max_by_key(|(_, c)| **c)
            .expect("items");
        assert_eq!(hot as u64, z.hottest());
        // The hottest record gets the zipfian's first item (3.8 %) plus
        // its share of the long tail hashed onto it.
        let share = hot_count as f64 / draws as f64;
        let expected = z.hottest_probability();
        assert!((0.0377..0.0379).contains(&expected), "{expected}");
        assert!(
            share > 0.9 * expected && share < 1.5 * expected,
            "hottest record got {share:.4}, expected about {expected:.4}"
        );
        // Not clustered: the hottest records are not the first ones.
        let mut order: Vec<usize> = (0..n as usize).collect();
        order.sort_by_key(|i| std::cmp::Reverse(counts[*i]));
        assert!(order[..10].iter().any(|i| *i >= 100));
        // Skewed: the ten hottest of 1000 get far more than 1 %.
        let top10: u64 = order[..10].iter().map(|i| counts[*i]).sum();
        assert!(top10 as f64 / draws as f64 > 0.1);
        // Larger θ, more skew.
        let mut flat = ScrambledZipfian::new(n, 0.5);
        let flat_hot = (0..draws)
            .filter(|_| flat.next(&mut rng) == flat.hottest())
            .count();
        assert!((flat_hot as u64) < hot_count / 4);
    }

    #[test]
    fn latest_prefers_the_newest_records_and_follows_inserts() {
        let mut rng = SmallRng::seed_from_u64(3);
        let mut c = KeyChooser::new(Distribution::Latest(DEFAULT_THETA), 1000);
        let draws = 50_000;
        let newest = (0..draws).filter(|_| c.next(&mut rng, 1000) >= 990).count();
        assert!(newest > draws / 4, "newest ten drawn {newest} of {draws}");
        for _ in 0..1000 {
            assert!(c.next(&mut rng, 1500) < 1500);
        }
        let top = (0..draws)
            .filter(|_| c.next(&mut rng, 1500) == 1499)
            .count();
        assert!(top > draws / 100);
    }

    #[test]
    fn insert_counter_limit_waits_for_gaps() {
        let c = InsertCounter::new(10);
        let (a, b, d) = (c.claim(), c.claim(), c.claim());
        assert_eq!((a, b, d), (10, 11, 12));
        c.acknowledge(11);
        assert_eq!(c.limit(), 10);
        c.acknowledge(10);
        assert_eq!(c.limit(), 12);
        c.acknowledge(12);
        assert_eq!(c.limit(), 13);
    }
}
