//! The workloads: YCSB's core workloads A–F by their standard definitions,
//! YCSB+T's closed economy (`transfer`) and strong read-only transactions
//! over several groups (`ro-sum`).

use rand::Rng;

use crate::generator::Distribution;

/// A workload, as `--workload` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Workload {
    /// Update heavy: 50 % reads, 50 % updates, zipfian.
    A,
    /// Read mostly: 95 % reads, 5 % updates, zipfian.
    B,
    /// Read only: 100 % reads, zipfian.
    C,
    /// Read latest: 95 % reads, 5 % inserts, the newest records the
    /// most popular.
    D,
    /// Short ranges: 95 % scans of 1–100 rows, 5 % inserts, zipfian.
    E,
    /// Read-modify-write: 50 % reads, 50 % read-modify-write
    /// transactions, zipfian.
    F,
    /// YCSB+T's closed economy: each operation moves a random amount
    /// between two random distinct accounts in one read-write transaction;
    /// the total is checked at the end.
    Transfer,
    /// Strong read-only transactions over `--keys` accounts spread over
    /// the groups, each summing their balances.
    #[value(name = "ro-sum")]
    RoSum,
}

/// One kind of operation, reported separately.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    /// A strong read of one record.
    Read,
    /// A blind overwrite of one record (the record is one value).
    Update,
    /// A write of a new record.
    Insert,
    /// A strong read-only scan of 1–100 rows.
    Scan,
    /// A read and a write of one record in one read-write transaction.
    ReadModifyWrite,
    /// A transfer between two accounts in one read-write transaction.
    Transfer,
    /// A strong read-only transaction over several accounts.
    RoSum,
}

impl Op {
    /// Every kind, in report order.
    pub const ALL: [Op; 7] = [
        Op::Read,
        Op::Update,
        Op::Insert,
        Op::Scan,
        Op::ReadModifyWrite,
        Op::Transfer,
        Op::RoSum,
    ];

    /// Its name in the report, as YCSB spells it.
    pub fn name(self) -> &'static str {
        match self {
            Op::Read => "READ",
            Op::Update => "UPDATE",
            Op::Insert => "INSERT",
            Op::Scan => "SCAN",
            Op::ReadModifyWrite => "READ-MODIFY-WRITE",
            Op::Transfer => "TRANSFER",
            Op::RoSum => "RO-SUM",
        }
    }

    /// Its index in [`Op::ALL`].
    pub fn index(self) -> usize {
        Op::ALL.iter().position(|o| *o == self).expect("listed")
    }

    /// Whether it runs as a read-write transaction (and so commits, waits
    /// out commit wait, and may abort and be retried).
    pub fn is_transaction(self) -> bool {
        matches!(
            self,
            Op::Update | Op::Insert | Op::ReadModifyWrite | Op::Transfer
        )
    }
}

impl Workload {
    /// Its name, as the command line spells it.
    pub fn name(self) -> &'static str {
        match self {
            Workload::A => "a",
            Workload::B => "b",
            Workload::C => "c",
            Workload::D => "d",
            Workload::E => "e",
            Workload::F => "f",
            Workload::Transfer => "transfer",
            Workload::RoSum => "ro-sum",
        }
    }

    /// The operation mix: `(operation, proportion)`, proportions summing
    /// to one.
    pub fn mix(self) -> &'static [(Op, f64)] {
        match self {
            Workload::A => &[(Op::Read, 0.5), (Op::Update, 0.5)],
            Workload::B => &[(Op::Read, 0.95), (Op::Update, 0.05)],
            Workload::C => &[(Op::Read, 1.0)],
            Workload::D => &[(Op::Read, 0.95), (Op::Insert, 0.05)],
            Workload::E => &[(Op::Scan, 0.95), (Op::Insert, 0.05)],
            Workload::F => &[(Op::Read, 0.5), (Op::ReadModifyWrite, 0.5)],
            Workload::Transfer => &[(Op::Transfer, 1.0)],
            Workload::RoSum => &[(Op::RoSum, 1.0)],
        }
    }

    /// The request distribution it uses unless `--distribution` says
    /// otherwise: YCSB's (zipfian; latest for D); uniform for the two
    /// transactional workloads, whose accounts are chosen at random.
    pub fn default_distribution(self, theta: f64) -> Distribution {
        match self {
            Workload::D => Distribution::Latest(theta),
            Workload::Transfer | Workload::RoSum => Distribution::Uniform,
            _ => Distribution::Zipfian(theta),
        }
    }

    /// Whether its records are accounts holding a balance, rather than
    /// YCSB records of ten 100-byte fields.
    pub fn uses_accounts(self) -> bool {
        matches!(self, Workload::Transfer | Workload::RoSum)
    }

    /// The default record count: 1,000 accounts for `transfer`, YCSB's
    /// 100,000 records otherwise.
    pub fn default_records(self) -> u64 {
        match self {
            Workload::Transfer => 1_000,
            _ => 100_000,
        }
    }

    /// Draws the next operation.
    pub fn choose(self, rng: &mut impl Rng) -> Op {
        let mix = self.mix();
        let mut u: f64 = rng.random();
        for (op, p) in mix {
            if u < *p {
                return *op;
            }
            u -= p;
        }
        mix[mix.len() - 1].0
    }
}

/// Fields per YCSB record.
pub const FIELDS: usize = 10;
/// Bytes per field.
pub const FIELD_BYTES: usize = 100;
/// Bytes per record: ten fields of 100 bytes, stored as one value.
pub const RECORD_BYTES: usize = FIELDS * FIELD_BYTES;

/// Fills `buf` with random printable bytes.
pub fn fill_random(rng: &mut impl Rng, buf: &mut [u8]) {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    for b in buf {
        *b = ALPHABET[rng.random_range(0..ALPHABET.len())];
    }
}

/// A new YCSB record: ten random 100-byte fields, one value.
pub fn new_record(rng: &mut impl Rng) -> Vec<u8> {
    let mut v = vec![0u8; RECORD_BYTES];
    fill_random(rng, &mut v);
    v
}

/// `record` with field `field` replaced by the same field of `fresh`, a
/// new record; `fresh` itself if `record` is missing or not a record.
pub fn update_field(record: Option<&[u8]>, field: usize, fresh: &[u8]) -> Vec<u8> {
    match record {
        Some(r) if r.len() == RECORD_BYTES && fresh.len() == RECORD_BYTES => {
            let mut v = r.to_vec();
            let at = (field % FIELDS) * FIELD_BYTES;
            v[at..at + FIELD_BYTES].copy_from_slice(&fresh[at..at + FIELD_BYTES]);
            v
        }
        _ => fresh.to_vec(),
    }
}

/// The balance every account starts with.
pub const INITIAL_BALANCE: i64 = 1_000;

/// Largest amount one transfer moves.
pub const MAX_TRANSFER: i64 = 100;

/// An account's balance from its stored value (`None`: not a balance).
pub fn parse_balance(v: &[u8]) -> Option<i64> {
    std::str::from_utf8(v).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    #[test]
    fn mixes_sum_to_one_and_draw_in_proportion() {
        let mut rng = SmallRng::seed_from_u64(1);
        for w in [
            Workload::A,
            Workload::B,
            Workload::C,
            Workload::D,
            Workload::E,
            Workload::F,
            Workload::Transfer,
            Workload::RoSum,
        ] {
            let total: f64 = w.mix().iter().map(|(_, p)| p).sum();
            assert!((total - 1.0).abs() < 1e-9, "{w:?}");
            let draws = 100_000;
            let mut counts = [0u64; 7];
            for _ in 0..draws {
                counts[w.choose(&mut rng).index()] += 1;
            }
            for (op, p) in w.mix() {
                let got = counts[op.index()] as f64 / draws as f64;
                assert!((got - p).abs() < 0.01, "{w:?} {op:?}: {got}");
            }
        }
    }

    #[test]
    fn records_are_ten_fields_of_a_hundred_bytes() {
        let mut rng = SmallRng::seed_from_u64(2);
        let r = new_record(&mut rng);
        assert_eq!(r.len(), 1000);
        let fresh = new_record(&mut rng);
        let u = update_field(Some(&r), 3, &fresh);
        assert_eq!(u.len(), 1000);
        assert_eq!(r[..300], u[..300]);
        assert_eq!(fresh[300..400], u[300..400]);
        assert_eq!(r[400..], u[400..]);
        assert_eq!(update_field(None, 3, &fresh), fresh);
    }
}
