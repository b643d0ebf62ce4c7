//! The write-ahead log against power losses: seeded histories of random
//! batches on [`PowerLossFs`], which at a power loss keeps an arbitrary
//! subset of the unsynced pages (torn and out of order) and of the
//! unsynced directory operations and file lengths. The log must always
//! reopen with every synced record; and damage to synced data followed by
//! intact batches must always be reported as corruption.
//!
//! `MERIDIAN_POWER_LOSS_SEEDS=N` runs `N` seeds instead of
//! [`DEFAULT_SEEDS`]; `MERIDIAN_POWER_LOSS_SEED=S` runs the one seed `S`
//! (a failure prints it).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use meridian_paxos::{Ballot, Entry, HardState, Payload, PersistRequest, Recovered, Slot};
use meridian_truetime::Timestamp;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::fs::FileSystem as _;
use super::testing::PowerLossFs;
use super::tests::{Groups, is_synced_plus_a_prefix, snapshot};
use super::*;

/// Seeds each seeded test runs by default (`cargo test`).
const DEFAULT_SEEDS: u64 = 2_000;
/// Power losses (lives of the log) in one seed's history, at most.
const MAX_LIVES: u64 = 4;
/// Requests or syncs in one life, at most.
const MAX_STEPS: u64 = 24;
/// The largest command an entry carries: a batch spans several pages.
const MAX_COMMAND_BYTES: usize = 3_000;
/// Segment sizes drawn: small ones roll often; the default zero-fills 1 MiB
/// ahead.
const SEGMENT_SIZES: [u64; 4] = [4 << 10, 16 << 10, 64 << 10, SEGMENT_BYTES];

/// The seeds to run: `MERIDIAN_POWER_LOSS_SEED`, or the first
/// `MERIDIAN_POWER_LOSS_SEEDS` (default [`DEFAULT_SEEDS`]) from `base`.
fn seeds(base: u64) -> Vec<u64> {
    if let Some(one) = std::env::var("MERIDIAN_POWER_LOSS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return vec![one];
    }
    let n = std::env::var("MERIDIAN_POWER_LOSS_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEEDS);
    (base..base + n).collect()
}

/// Runs `f` on every seed; a failure names the seed that replays it.
fn for_each_seed(base: u64, f: impl Fn(u64) + std::panic::RefUnwindSafe) {
    for seed in seeds(base) {
        if std::panic::catch_unwind(|| f(seed)).is_err() {
            panic!("seed {seed} failed; replay it with MERIDIAN_POWER_LOSS_SEED={seed}");
        }
    }
}

fn entry(slot: Slot, round: u64, bytes: usize) -> Entry {
    // Distinct bytes per slot and round, some of them zeros.
    let command: Vec<u8> = (0..bytes)
        .map(|i| {
            if i % 7 == 0 {
                0
            } else {
                (slot + round + i as u64) as u8
            }
        })
        .collect();
    Entry {
        slot,
        ballot: Ballot::new(round, 1),
        ts: Timestamp::from_nanos(slot),
        payload: Payload::Command(Bytes::from(command)),
    }
}

/// A log on [`PowerLossFs`] and its model: what was synced (a sync that
/// returned), and what was written since.
struct Run {
    seed: u64,
    rng: SmallRng,
    fs: PowerLossFs,
    dir: PathBuf,
    opts: WalOptions,
    wal: Option<Wal>,
    synced: Groups,
    unsynced: Vec<(u64, PersistRequest)>,
    round: u64,
}

impl Run {
    fn new(seed: u64, dir: &Path) -> Run {
        let mut rng = SmallRng::seed_from_u64(seed);
        let opts = WalOptions {
            segment_bytes: SEGMENT_SIZES[rng.random_range(0..SEGMENT_SIZES.len())],
        };
        let mut run = Run {
            seed,
            fs: PowerLossFs::new(rng.random()),
            rng,
            dir: dir.to_owned(),
            opts,
            wal: None,
            synced: Groups::new(),
            unsynced: Vec::new(),
            round: 1,
        };
        run.open();
        run
    }

    /// Opens the log, again after each power loss that strikes in
    /// recovery; what it recovers must be the synced state plus a prefix
    /// of what was written after, which is then the synced state.
    fn open(&mut self) {
        let recovered = loop {
            match Wal::open_with(&self.dir, self.opts, Arc::new(self.fs.clone())) {
                Ok((wal, recovered)) => {
                    self.wal = Some(wal);
                    break recovered;
                }
                Err(_) if self.fs.is_off() => self.fs.restart(),
                Err(e) => panic!(
                    "seed {}: the log does not reopen after a power loss: {e}",
                    self.seed
                ),
            }
        };
        let matched = is_synced_plus_a_prefix(&recovered, &self.synced, &self.unsynced);
        assert!(
            matched,
            "seed {}: recovered state is not the synced state plus a prefix of later writes",
            self.seed
        );
        self.synced = recovered;
        self.unsynced.clear();
    }

    /// The model's state of `group` including unsynced writes.
    fn written(&self, group: u64) -> Recovered {
        let mut r = self.synced.get(&group).cloned().unwrap_or_default();
        for (g, req) in &self.unsynced {
            if *g == group {
                r.apply(req);
            }
        }
        r
    }

    /// A random request that continues `group`'s log.
    fn request(&mut self, group: u64) -> PersistRequest {
        self.request_of(group, true)
    }

    /// A random request that continues `group`'s log, with a snapshot
    /// sometimes if `snapshots`.
    fn request_of(&mut self, group: u64, snapshots: bool) -> PersistRequest {
        self.round += 1;
        let round = self.round;
        let w = self.written(group);
        let floor = w.snapshot.as_ref().map_or(1, |s| s.last_slot + 1);
        let end = w.entries.last().map_or(floor - 1, |e| e.slot);
        let n = self.rng.random_range(0..4u64);
        let bytes = self.rng.random_range(0..=MAX_COMMAND_BYTES);
        let entries = |from: Slot| (from..from + n).map(|s| entry(s, round, bytes)).collect();
        let hard_state = Some(HardState {
            promised: Ballot::new(round, 1),
        });
        match self.rng.random_range(0..10u8) {
            // An overwrite of the log's last few entries.
            0..=1 => {
                let from = end.saturating_sub(self.rng.random_range(0..4)).max(floor);
                PersistRequest {
                    entries: entries(from),
                    truncate_from: Some(from),
                    hard_state,
                    ..PersistRequest::default()
                }
            }
            // A snapshot of the applied prefix, or one from a leader
            // beyond the local log.
            2 if snapshots => {
                let lo = floor - 1;
                let last = if self.rng.random_bool(0.5) {
                    end + 1 + self.rng.random_range(0..3)
                } else {
                    self.rng.random_range(lo..=end)
                };
                PersistRequest {
                    entries: entries(last + 1),
                    snapshot: Some(snapshot(last, self.rng.random_range(0..5_000))),
                    hard_state,
                    ..PersistRequest::default()
                }
            }
            3 => PersistRequest {
                hard_state: Some(HardState {
                    promised: Ballot::new(round, 2),
                }),
                ..PersistRequest::default()
            },
            _ => PersistRequest {
                entries: entries(end + 1),
                hard_state,
                ..PersistRequest::default()
            },
        }
    }

    /// One life: random writes and syncs until a power loss, inside an
    /// operation of the log (a write, an `fdatasync`, a directory sync, a
    /// rename) or between two calls.
    fn live(&mut self) {
        let steps = self.rng.random_range(1..=MAX_STEPS);
        if self.rng.random_bool(0.8) {
            let at = self.rng.random_range(1..=2 * steps + 4);
            self.fs.lose_power_at_op(at);
        }
        for _ in 0..steps {
            if self.rng.random_range(0..3u8) == 0 {
                match self.wal.as_mut().expect("open").sync() {
                    Ok(_) => {
                        for (g, req) in self.unsynced.drain(..) {
                            self.synced.entry(g).or_default().apply(&req);
                        }
                    }
                    Err(e) => {
                        assert!(self.fs.is_off(), "seed {}: sync failed: {e}", self.seed);
                        break;
                    }
                }
            } else {
                let group = self.rng.random_range(0..3u64);
                let req = self.request(group);
                let res = self.wal.as_mut().expect("open").write(group, &req);
                // A write that fails may still have reached the file.
                self.unsynced.push((group, req));
                if let Err(e) = res {
                    assert!(self.fs.is_off(), "seed {}: write failed: {e}", self.seed);
                    break;
                }
            }
        }
        self.fs.power_loss();
        self.wal = None;
        self.fs.restart();
    }
}

/// The rule the power losses check: a power loss, wherever it strikes,
/// loses nothing a returned sync made durable, leaves no gap, and never
/// leaves a log that will not open. Every byte of the unsynced batches
/// may be lost or kept, page by page, in any combination.
#[test]
fn power_loss_at_any_point_reopens_with_every_synced_record() {
    let totals = std::sync::Mutex::new(testing::PowerLossStats::default());
    for_each_seed(0, |seed| {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut run = Run::new(seed, tmp.path());
        let lives = run.rng.random_range(1..=MAX_LIVES);
        for _ in 0..lives {
            run.live();
            run.open();
        }
        // Everything synced, then a last power loss: all of it is back.
        run.wal.as_mut().expect("open").sync().expect("sync");
        for (g, req) in run.unsynced.drain(..) {
            run.synced.entry(g).or_default().apply(&req);
        }
        let synced = run.synced.clone();
        run.fs.power_loss();
        run.wal = None;
        run.fs.restart();
        run.open();
        assert_eq!(run.synced, synced, "seed {seed}");
        let s = run.fs.stats();
        let mut t = totals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        t.power_losses += s.power_losses;
        t.pages_kept += s.pages_kept;
        t.pages_torn += s.pages_torn;
        t.pages_lost += s.pages_lost;
        t.lengths_lost += s.lengths_lost;
        t.dir_ops_lost += s.dir_ops_lost;
        t.max_writes_between_syncs = t.max_writes_between_syncs.max(s.max_writes_between_syncs);
    });
    let t = totals
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if seeds(0).len() >= 100 {
        // The histories reached what they are meant to.
        assert!(
            t.pages_kept > 0 && t.pages_torn > 0 && t.pages_lost > 0,
            "{t:?}"
        );
        assert!(t.lengths_lost > 0 && t.dir_ops_lost > 0, "{t:?}");
    }
    // One write per sync: batch k + 1 is never written before batch k's
    // sync returned, which is what lets recovery tell synced damage from
    // a torn tail.
    assert_eq!(t.max_writes_between_syncs, 1, "{t:?}");
}

/// A stretch of a segment that recovery checks as a unit: its header, or
/// one batch.
#[derive(Clone, Debug)]
struct Unit {
    file: PathBuf,
    offset: usize,
    len: usize,
    /// A batch (not a segment header).
    batch: bool,
}

/// The segment headers and batches of the log in `dir`, in log order.
fn layout(fs: &PowerLossFs, dir: &Path) -> Vec<Unit> {
    let mut names = fs.list(dir).expect("list");
    names.retain(|n| n.starts_with("wal-"));
    names.sort();
    let mut units = Vec::new();
    for name in names {
        let file = dir.join(&name);
        let data = fs.read(&file).expect("read");
        let seq = name[4..name.len() - 4].parse().expect("segment number");
        let salt = record::read_segment_header(&data, seq)
            .expect("segment header")
            .salt;
        units.push(Unit {
            file: file.clone(),
            offset: 0,
            len: record::SEGMENT_HEADER_BYTES,
            batch: false,
        });
        let mut at = record::SEGMENT_HEADER_BYTES;
        while let record::Batch::Intact { next, .. } = record::read_batch(&data, at, Some(salt)) {
            units.push(Unit {
                file: file.clone(),
                offset: at,
                len: next - at,
                batch: true,
            });
            at = next;
        }
    }
    units
}

/// Damages `unit` durably: a flipped bit, a zeroed stretch, or all of it
/// zeroed.
fn damage(rng: &mut SmallRng, fs: &PowerLossFs, unit: &Unit) {
    let data = fs.read(&unit.file).expect("read");
    let bytes = &data[unit.offset..unit.offset + unit.len];
    let (lo, hi) = match rng.random_range(0..4u8) {
        0 => (0, unit.len),
        1 => (0, record::BATCH_HEADER_BYTES.min(unit.len)),
        _ => {
            let lo = rng.random_range(0..unit.len);
            (lo, rng.random_range(lo + 1..=unit.len))
        }
    };
    if rng.random_bool(0.5) && bytes[lo..hi].iter().any(|&b| b != 0) {
        fs.corrupt(&unit.file, unit.offset + lo, &vec![0; hi - lo])
            .expect("zero");
    } else {
        let at = rng.random_range(lo..hi);
        let flipped = bytes[at] ^ (1 << rng.random_range(0..8));
        fs.corrupt(&unit.file, unit.offset + at, &[flipped])
            .expect("flip");
    }
}

/// What [`synced_log_then_damage`] did and found.
struct Damaged {
    /// The damaged unit.
    unit: Unit,
    /// The reopen.
    opened: Result<(Wal, Groups), StorageError>,
    /// The state before the last sync.
    before_last: Groups,
    /// The requests of the last sync.
    last_sync: Vec<(u64, PersistRequest)>,
    /// Whether the last sync deleted old segments.
    last_sync_purged: bool,
}

/// A log of synced batches (reopened now and then, so it has several
/// segments), then damage to one of its units, then a reopen.
fn synced_log_then_damage(seed: u64, pick_final_batch: bool) -> Damaged {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut run = Run::new(seed, tmp.path());
    let batches = run.rng.random_range(2..=12);
    let mut last_sync = Vec::new();
    let mut before_last = Groups::new();
    let mut last_sync_purged = false;
    for b in 0..batches {
        if b > 0 && run.rng.random_range(0..4u8) == 0 {
            run.wal = None;
            run.open();
        }
        before_last = run.synced.clone();
        for _ in 0..run.rng.random_range(1..=3) {
            let group = run.rng.random_range(0..3u64);
            // A snapshot is installed once its mark is synced: damage to
            // the final batch then names the wrong snapshot, which is
            // corruption too, but not the torn tail tested below.
            let req = run.request_of(group, b + 1 < batches);
            run.wal
                .as_mut()
                .expect("open")
                .write(group, &req)
                .expect("write");
            run.unsynced.push((group, req));
        }
        let stats = run.wal.as_mut().expect("open").sync().expect("sync");
        last_sync_purged = stats.segments_removed > 0;
        last_sync = std::mem::take(&mut run.unsynced);
        for (g, req) in &last_sync {
            run.synced.entry(*g).or_default().apply(req);
        }
    }
    run.wal = None;
    let units = layout(&run.fs, &run.dir);
    let last = units.len() - 1;
    assert!(units[last].batch, "seed {seed}: the log ends with a batch");
    let unit = if pick_final_batch {
        units[last].clone()
    } else {
        units[run.rng.random_range(0..last)].clone()
    };
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x00DA_3A6E);
    damage(&mut rng, &run.fs, &unit);
    let opened = Wal::open_with(&run.dir, run.opts, Arc::new(run.fs.clone()));
    Damaged {
        unit,
        opened,
        before_last,
        last_sync,
        last_sync_purged,
    }
}

/// The converse of the power-loss rule: damage to synced data that an
/// intact later batch follows is corruption, reported with the file and
/// the offset of the damaged segment header or batch, and the node
/// refuses to start, wherever in the log it is (including a zeroed batch
/// header in the middle of the last segment, which is not its end).
#[test]
fn corruption_of_synced_data_followed_by_intact_batches_is_reported() {
    for_each_seed(1 << 32, |seed| {
        let Damaged { unit, opened, .. } = synced_log_then_damage(seed, false);
        match opened {
            Err(StorageError::Corrupt {
                file,
                offset,
                reason,
            }) => assert_eq!(
                (&file, offset),
                (&unit.file, unit.offset as u64),
                "seed {seed}: {unit:?}: {reason}"
            ),
            Err(e) => panic!("seed {seed}: expected Corrupt at {unit:?}, got {e}"),
            Ok(_) => panic!("seed {seed}: damage at {unit:?} was not reported"),
        }
    });
}

/// Damage confined to the final batch cannot be told from a write that a
/// power loss tore: it is cut, and the log opens with what came before.
/// (Unless the batch's sync deleted old segments that the state before it
/// needs: then the cut would leave a log that names a deleted segment, or
/// no log at all, and it is reported as corruption.)
#[test]
fn damage_confined_to_the_final_batch_is_cut_as_a_torn_tail() {
    for_each_seed(2 << 32, |seed| {
        let d = synced_log_then_damage(seed, true);
        let (unit, before, last) = (d.unit, d.before_last, d.last_sync);
        let (wal, recovered) = match d.opened {
            Ok(opened) => opened,
            Err(StorageError::Corrupt { .. }) if d.last_sync_purged => return,
            Err(e) => panic!("seed {seed}: {e}"),
        };
        // Reported as a torn tail, unless it was zeroed whole: then it
        // reads as the segment's zero-filled end.
        if let Some(torn) = &wal.recovery().torn_tail {
            assert_eq!(
                (&torn.file, torn.offset),
                (&unit.file, unit.offset as u64),
                "seed {seed}"
            );
        }
        // The final batch holds the last sync's requests, or (after a
        // segment roll in the middle of them) their last part.
        let mut candidate = before;
        let mut matched = recovered == candidate;
        for (g, req) in &last[..last.len() - 1] {
            if matched {
                break;
            }
            candidate.entry(*g).or_default().apply(req);
            matched = recovered == candidate;
        }
        assert!(
            matched,
            "seed {seed}: recovered more or less than before the final batch"
        );
    });
}

/// A batch is bounded: past [`MAX_BUFFERED_BYTES`], [`Wal::write`] ends
/// it, written and synced (durable earlier than asked), so that the next
/// batch is never written before it is synced; a power loss then keeps it.
#[test]
fn a_batch_past_max_buffered_bytes_is_written_and_synced_by_write() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let fs = PowerLossFs::new(7);
    let (mut wal, _) =
        Wal::open_with(tmp.path(), WalOptions::default(), Arc::new(fs.clone())).expect("open");
    let mut model = Recovered::default();
    let mut slot = 1;
    let mut written = 0;
    while written < MAX_BUFFERED_BYTES {
        let req = PersistRequest {
            entries: vec![entry(slot, 1, 64 << 10)],
            ..PersistRequest::default()
        };
        wal.write(1, &req).expect("write");
        model.apply(&req);
        slot += 1;
        written += 64 << 10;
    }
    // Not synced by the caller: only what `write` synced survives.
    let one_more = PersistRequest {
        entries: vec![entry(slot, 1, 10)],
        ..PersistRequest::default()
    };
    wal.write(1, &one_more).expect("write");
    fs.power_loss();
    drop(wal);
    fs.restart();
    let (_, recovered) =
        Wal::open_with(tmp.path(), WalOptions::default(), Arc::new(fs.clone())).expect("reopen");
    assert_eq!(recovered.get(&1), Some(&model));
    assert_eq!(fs.stats().max_writes_between_syncs, 1);
}
