//! The write-ahead log against its model, `Recovered::apply`, on real files
//! in temporary directories: crashes, torn tails, corruption, a failed
//! fsync, a full disk, the directory lock, and log truncation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use meridian_paxos::{
    Ballot, Entry, HardState, Membership, Payload, PersistRequest, Recovered, Slot, Snapshot,
};
use meridian_truetime::Timestamp;
use proptest::prelude::*;

use super::testing::FaultyFs;
use super::*;

pub(super) type Groups = BTreeMap<u64, Recovered>;

fn opts(segment_bytes: u64) -> WalOptions {
    WalOptions { segment_bytes }
}

pub(super) fn entry(slot: Slot, round: u64) -> Entry {
    Entry {
        slot,
        ballot: Ballot::new(round, 1),
        ts: Timestamp::from_nanos(slot),
        payload: Payload::Command(Bytes::from(format!("command {slot} at round {round}"))),
    }
}

pub(super) fn append(from: Slot, n: u64, round: u64) -> PersistRequest {
    PersistRequest {
        entries: (from..from + n).map(|s| entry(s, round)).collect(),
        hard_state: Some(HardState {
            promised: Ballot::new(round, 1),
        }),
        ..PersistRequest::default()
    }
}

/// Whether `recovered` is the `synced` state plus some prefix (perhaps
/// empty) of the `unsynced` writes, in order: what a log may reopen with
/// after a crash or a power loss.
pub(super) fn is_synced_plus_a_prefix(
    recovered: &Groups,
    synced: &Groups,
    unsynced: &[(u64, PersistRequest)],
) -> bool {
    let mut candidate = synced.clone();
    if *recovered == candidate {
        return true;
    }
    for (g, req) in unsynced {
        candidate.entry(*g).or_default().apply(req);
        if *recovered == candidate {
            return true;
        }
    }
    false
}

pub(super) fn snapshot(last_slot: Slot, data_len: usize) -> Snapshot {
    Snapshot {
        last_slot,
        last_ballot: Ballot::new(1, 1),
        last_ts: Timestamp::from_nanos(last_slot),
        membership: Membership::new(1, vec![1, 2, 3]),
        data: Bytes::from(vec![last_slot as u8; data_len]),
    }
}

/// The log and the model side by side: what was written, what was synced.
struct Harness {
    dir: PathBuf,
    wal: Option<Wal>,
    synced: Groups,
    unsynced: Vec<(u64, PersistRequest)>,
    opts: WalOptions,
}

impl Harness {
    fn new(dir: &Path, opts: WalOptions) -> Harness {
        let (wal, recovered) = Wal::open(dir, opts).expect("open");
        assert!(recovered.is_empty());
        Harness {
            dir: dir.to_owned(),
            wal: Some(wal),
            synced: Groups::new(),
            unsynced: Vec::new(),
            opts,
        }
    }

    fn wal(&mut self) -> &mut Wal {
        self.wal.as_mut().expect("open")
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

    fn write(&mut self, group: u64, req: PersistRequest) {
        self.wal().write(group, &req).expect("write");
        self.unsynced.push((group, req));
    }

    fn sync(&mut self) -> SyncStats {
        let stats = self.wal().sync().expect("sync");
        for (g, req) in self.unsynced.drain(..) {
            self.synced.entry(g).or_default().apply(&req);
        }
        stats
    }

    /// Drops the log without syncing and reopens it: what it recovers must
    /// be the synced state plus some prefix of the unsynced writes (a
    /// segment roll makes earlier writes durable early).
    fn crash_and_reopen(&mut self) -> Groups {
        self.wal = None;
        let (wal, recovered) = Wal::open(&self.dir, self.opts).expect("reopen");
        self.wal = Some(wal);
        let matched = is_synced_plus_a_prefix(&recovered, &self.synced, &self.unsynced);
        assert!(
            matched,
            "recovered state is not the synced state plus a prefix of unsynced writes"
        );
        self.synced = recovered.clone();
        self.unsynced.clear();
        recovered
    }
}

/// One step of a random history; group and sizes are reduced modulo what
/// the state allows when it is turned into a request.
#[derive(Clone, Debug)]
enum Step {
    Append {
        group: u64,
        n: u64,
    },
    Overwrite {
        group: u64,
        back: u64,
        n: u64,
    },
    Snapshot {
        group: u64,
        at: u64,
        ahead: bool,
        then: u64,
    },
    HardState {
        group: u64,
    },
    Sync,
    Crash,
}

fn step() -> impl Strategy<Value = Step> {
    let group = 0u64..3;
    prop_oneof![
        6 => (group.clone(), 1u64..5).prop_map(|(group, n)| Step::Append { group, n }),
        2 => (group.clone(), 0u64..4, 0u64..4)
            .prop_map(|(group, back, n)| Step::Overwrite { group, back, n }),
        2 => (group.clone(), any::<u64>(), any::<bool>(), 0u64..3)
            .prop_map(|(group, at, ahead, then)| Step::Snapshot { group, at, ahead, then }),
        1 => group.prop_map(|group| Step::HardState { group }),
        3 => Just(Step::Sync),
        1 => Just(Step::Crash),
    ]
}

fn run_history(steps: &[Step], segment_bytes: u64) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut h = Harness::new(tmp.path(), opts(segment_bytes));
    let mut round = 1;
    for s in steps {
        round += 1;
        match *s {
            Step::Append { group, n } => {
                let w = h.written(group);
                let next = w.entries.last().map_or_else(
                    || w.snapshot.as_ref().map_or(1, |s| s.last_slot + 1),
                    |e| e.slot + 1,
                );
                h.write(group, append(next, n, round));
            }
            Step::Overwrite { group, back, n } => {
                let w = h.written(group);
                let end = w.entries.last().map_or(0, |e| e.slot);
                let floor = w.snapshot.as_ref().map_or(1, |s| s.last_slot + 1);
                let from = end.saturating_sub(back).max(floor);
                let mut req = append(from, n, round);
                req.truncate_from = Some(from);
                h.write(group, req);
            }
            Step::Snapshot {
                group,
                at,
                ahead,
                then,
            } => {
                let w = h.written(group);
                let lo = w.snapshot.as_ref().map_or(0, |s| s.last_slot);
                let hi = w.entries.last().map_or(lo, |e| e.slot);
                // A snapshot of the applied prefix, or one from a leader
                // (InstallSnapshot) beyond the local log.
                let last = if ahead {
                    hi + 1 + at % 3
                } else {
                    lo + at % (hi - lo + 1)
                };
                let mut req = append(last + 1, then, round);
                req.snapshot = Some(snapshot(last, (at % 200) as usize));
                h.write(group, req);
            }
            Step::HardState { group } => h.write(
                group,
                PersistRequest {
                    hard_state: Some(HardState {
                        promised: Ballot::new(round, 2),
                    }),
                    ..PersistRequest::default()
                },
            ),
            Step::Sync => {
                h.sync();
            }
            Step::Crash => {
                h.crash_and_reopen();
            }
        }
    }
    h.sync();
    let synced = h.synced.clone();
    assert_eq!(h.crash_and_reopen(), synced);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn reload_equals_the_model_of_synced_requests(
        steps in proptest::collection::vec(step(), 1..80),
        segment_bytes in prop_oneof![Just(256u64), Just(2048), Just(SEGMENT_BYTES)],
    ) {
        run_history(&steps, segment_bytes);
    }
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    v.sort();
    v
}

fn last_segment(dir: &Path) -> PathBuf {
    segment_files(dir).pop().expect("a segment")
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).expect("read dir") {
        let p = e.expect("entry").path();
        if p.file_name().is_some_and(|n| n != "LOCK") {
            std::fs::copy(&p, to.join(p.file_name().expect("name"))).expect("copy");
        }
    }
}

/// Three synced appends of group 1; returns the model after each and the
/// end of the last segment's records after each. The file itself is
/// longer, zero-filled ahead; it is cut to the last record's end here so
/// that the tests below can damage its tail.
fn three_synced_records(dir: &Path) -> (Vec<Groups>, Vec<u64>) {
    let mut h = Harness::new(dir, WalOptions::default());
    let seg = last_segment(dir);
    let mut models = vec![h.synced.clone()];
    let mut lens = vec![h.wal().segment_end()];
    for i in 0..3 {
        h.write(1, append(1 + 2 * i, 2, 1));
        h.sync();
        models.push(h.synced.clone());
        lens.push(h.wal().segment_end());
    }
    drop(h);
    assert!(std::fs::metadata(&seg).expect("stat").len() > lens[3]);
    cut(&seg, lens[3]);
    (models, lens)
}

fn cut(path: &Path, len: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.set_len(len))
        .expect("cut");
}

#[test]
fn a_zero_filled_tail_ends_a_segment_and_a_record_torn_before_it_is_cut() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut h = Harness::new(tmp.path(), WalOptions::default());
    for i in 0..3 {
        h.write(1, append(1 + 2 * i, 2, 1));
        h.sync();
    }
    let seg = last_segment(tmp.path());
    let end = h.wal().segment_end();
    let synced = h.synced.clone();
    drop(h);
    let len = std::fs::metadata(&seg).expect("stat").len();
    assert!(
        len > end && len >= PREALLOCATE_BYTES,
        "the segment is zero-filled ahead of its records: {len} bytes, records end at {end}"
    );
    let copy = tempfile::tempdir().expect("tempdir");
    copy_dir(tmp.path(), copy.path());
    // A crash leaves the zeros: nothing is torn.
    let (wal, recovered) = Wal::open(tmp.path(), WalOptions::default()).expect("open");
    assert_eq!(recovered, synced);
    assert_eq!(wal.recovery().torn_tail, None);
    drop(wal);
    // Nor is it damage once the segment is no longer the last.
    let (_, recovered) = Wal::open(tmp.path(), WalOptions::default()).expect("reopen");
    assert_eq!(recovered, synced);
    // Half a record written into the zeros is a torn tail, cut.
    let copied = copy.path().join(seg.file_name().expect("name"));
    let mut data = std::fs::read(&copied).expect("read");
    data[end as usize..end as usize + 7].copy_from_slice(&[9, 0, 0, 0, 1, 2, 3]);
    std::fs::write(&copied, &data).expect("write");
    let (wal, recovered) = Wal::open(copy.path(), WalOptions::default()).expect("open");
    assert_eq!(recovered, synced);
    assert_eq!(
        wal.recovery().torn_tail.as_ref().map(|t| t.offset),
        Some(end)
    );
}

#[test]
fn a_torn_last_record_is_cut_at_every_byte_offset() {
    let base = tempfile::tempdir().expect("tempdir");
    let (models, lens) = three_synced_records(base.path());
    let seg_name = last_segment(base.path())
        .file_name()
        .expect("name")
        .to_owned();
    for cut in lens[2]..lens[3] {
        let tmp = tempfile::tempdir().expect("tempdir");
        copy_dir(base.path(), tmp.path());
        let seg = tmp.path().join(&seg_name);
        self::cut(&seg, cut);
        let (mut wal, recovered) = Wal::open(tmp.path(), WalOptions::default()).expect("open");
        assert_eq!(recovered, models[2], "cut at {cut}");
        let torn = wal.recovery().torn_tail.clone();
        if cut == lens[2] {
            assert_eq!(torn, None);
        } else {
            let torn = torn.expect("torn tail reported");
            assert_eq!((torn.file, torn.offset), (seg.clone(), lens[2]));
        }
        assert_eq!(std::fs::metadata(&seg).expect("stat").len(), lens[2]);
        // The log goes on after the cut, and reopens cleanly.
        wal.write(1, &append(5, 1, 2)).expect("write");
        wal.sync().expect("sync");
        drop(wal);
        let (_, again) = Wal::open(tmp.path(), WalOptions::default()).expect("reopen");
        assert_eq!(again[&1].entries.last().map(|e| e.slot), Some(5));
    }
}

fn flip_bit(path: &Path, offset: u64) {
    let mut data = std::fs::read(path).expect("read");
    data[offset as usize] ^= 0x10;
    std::fs::write(path, data).expect("write");
}

#[test]
fn a_flipped_bit_in_the_last_record_is_a_torn_tail() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (models, lens) = three_synced_records(tmp.path());
    let seg = last_segment(tmp.path());
    flip_bit(&seg, lens[3] - 3);
    let (wal, recovered) = Wal::open(tmp.path(), WalOptions::default()).expect("open");
    assert_eq!(recovered, models[2]);
    assert_eq!(
        wal.recovery().torn_tail.as_ref().map(|t| t.offset),
        Some(lens[2])
    );
}

#[test]
fn a_flipped_bit_in_a_middle_record_is_corruption_naming_file_and_offset() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_, lens) = three_synced_records(tmp.path());
    let seg = last_segment(tmp.path());
    flip_bit(&seg, lens[2] - 3);
    let err = Wal::open(tmp.path(), WalOptions::default()).expect_err("corrupt");
    match &err {
        StorageError::Corrupt { file, offset, .. } => {
            assert_eq!((file, *offset), (&seg, lens[1]));
        }
        other => panic!("expected Corrupt, got {other}"),
    }
    let msg = err.to_string();
    assert!(msg.contains(&seg.display().to_string()), "{msg}");
    assert!(msg.contains(&format!("offset {}", lens[1])), "{msg}");
}

#[test]
fn damage_in_a_segment_that_is_not_the_last_is_corruption() {
    let tmp = tempfile::tempdir().expect("tempdir");
    three_synced_records(tmp.path());
    // Reopening continues in a new segment; the old one is whole.
    let (wal, _) = Wal::open(tmp.path(), WalOptions::default()).expect("open");
    drop(wal);
    let segs = segment_files(tmp.path());
    assert!(segs.len() >= 2, "{segs:?}");
    // Its last record loses its last byte.
    let older = &segs[segs.len() - 2];
    let len = std::fs::metadata(older).expect("stat").len();
    cut(older, len - 1);
    match Wal::open(tmp.path(), WalOptions::default()) {
        Err(StorageError::Corrupt { file, .. }) => assert_eq!(&file, older),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn a_truncated_last_segment_recovers_the_records_before_the_cut() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (models, lens) = three_synced_records(tmp.path());
    let seg = last_segment(tmp.path());
    cut(&seg, lens[1]);
    let (wal, recovered) = Wal::open(tmp.path(), WalOptions::default()).expect("open");
    assert_eq!(recovered, models[1]);
    assert_eq!(wal.recovery().torn_tail, None);
}

#[test]
fn a_failed_fsync_poisons_the_log() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let fs = FaultyFs::new();
    let (mut wal, _) =
        Wal::open_with(tmp.path(), WalOptions::default(), Arc::new(fs.clone())).expect("open");
    wal.write(1, &append(1, 2, 1)).expect("write");
    wal.sync().expect("sync");
    wal.write(1, &append(3, 2, 1)).expect("write");
    fs.fail_syncs();
    let err = wal.sync().expect_err("fsync fails");
    assert!(
        matches!(
            err,
            StorageError::Io {
                op: "fdatasync",
                ..
            }
        ),
        "{err}"
    );
    fs.heal();
    // No retry after a failed fsync: every later call is refused.
    let later = wal.sync().expect_err("poisoned");
    assert!(matches!(later, StorageError::Poisoned { .. }), "{later}");
    assert!(later.to_string().contains("must exit"), "{later}");
    assert!(matches!(
        wal.write(1, &append(5, 1, 1)),
        Err(StorageError::Poisoned { .. })
    ));
}

#[test]
fn a_full_disk_is_reported_and_a_reopen_recovers_what_was_synced() {
    for space in [0u64, 1, 7, 8, 9, 40, 100] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let fs = FaultyFs::new();
        let (mut wal, _) =
            Wal::open_with(tmp.path(), WalOptions::default(), Arc::new(fs.clone())).expect("open");
        let mut model = Groups::new();
        for (g, req) in [(1, append(1, 3, 1)), (2, append(1, 1, 1))] {
            wal.write(g, &req).expect("write");
            model.entry(g).or_default().apply(&req);
        }
        wal.sync().expect("sync");
        wal.write(1, &append(4, 20, 1)).expect("buffered");
        fs.disk_full_after(space);
        let err = wal.sync().expect_err("disk full");
        match &err {
            StorageError::DiskFull { file } => {
                assert!(file.starts_with(tmp.path()), "{err}");
                assert!(err.to_string().contains("disk full"), "{err}");
            }
            other => panic!("expected DiskFull, got {other}"),
        }
        assert!(matches!(wal.sync(), Err(StorageError::Poisoned { .. })));
        drop(wal);
        fs.heal();
        let (_, recovered) =
            Wal::open_with(tmp.path(), WalOptions::default(), Arc::new(fs)).expect("reopen");
        assert_eq!(recovered, model, "space {space}");
    }
}

#[test]
fn a_partial_record_left_by_a_full_disk_is_a_torn_tail() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (models, lens) = three_synced_records(tmp.path());
    // What a full disk leaves when the cut back to the synced length
    // failed too: half a record at the end.
    let seg = last_segment(tmp.path());
    let data = std::fs::read(&seg).expect("read");
    let half = (lens[2] + (lens[3] - lens[2]) / 2) as usize;
    std::fs::write(&seg, &data[..half]).expect("write");
    let (_, recovered) = Wal::open(tmp.path(), WalOptions::default()).expect("open");
    assert_eq!(recovered, models[2]);
}

#[test]
fn a_second_open_of_the_data_directory_is_locked() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (wal, _) = Wal::open(tmp.path(), WalOptions::default()).expect("open");
    let err = Wal::open(tmp.path(), WalOptions::default()).expect_err("locked");
    assert!(matches!(&err, StorageError::Locked { dir } if dir == tmp.path()));
    assert!(err.to_string().contains("another process"), "{err}");
    drop(wal);
    Wal::open(tmp.path(), WalOptions::default()).expect("open after the first closed");
}

#[test]
fn a_corrupt_snapshot_file_is_corruption() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut h = Harness::new(tmp.path(), WalOptions::default());
    h.write(1, append(1, 5, 1));
    let mut req = append(5, 1, 1);
    req.entries.clear();
    req.snapshot = Some(snapshot(3, 1000));
    h.write(1, req);
    h.sync();
    drop(h);
    let snap = tmp.path().join("snap-1.bin");
    flip_bit(&snap, 500);
    match Wal::open(tmp.path(), WalOptions::default()) {
        Err(StorageError::Corrupt { file, offset, .. }) => {
            assert_eq!(file, snap);
            assert_eq!(offset, record::SNAPSHOT_HEADER_BYTES as u64);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn a_snapshot_whose_install_a_crash_interrupted_is_installed_on_open() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut h = Harness::new(tmp.path(), WalOptions::default());
    h.write(1, append(1, 5, 1));
    let mut req = append(6, 2, 1);
    req.snapshot = Some(snapshot(4, 100));
    h.write(1, req);
    h.sync();
    let synced = h.synced.clone();
    drop(h);
    // The mark was durable, the rename was not.
    let pending: Vec<PathBuf> = std::fs::read_dir(tmp.path())
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .collect();
    let bin = tmp.path().join("snap-1.bin");
    assert!(pending.contains(&bin));
    std::fs::rename(&bin, tmp.path().join("snap-1.1.pending")).expect("rename");
    let (wal, recovered) = Wal::open(tmp.path(), WalOptions::default()).expect("open");
    assert_eq!(recovered, synced);
    assert_eq!(wal.recovery().snapshots_installed, 1);
    assert!(bin.exists());
}

#[test]
fn an_unsynced_snapshot_is_lost_with_its_mark() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut h = Harness::new(tmp.path(), WalOptions::default());
    h.write(1, append(1, 5, 1));
    h.sync();
    let mut req = append(6, 0, 1);
    req.snapshot = Some(snapshot(4, 100));
    h.write(1, req);
    let synced = h.synced.clone();
    assert_eq!(h.crash_and_reopen(), synced);
    // The pending file was removed.
    let names: Vec<String> = std::fs::read_dir(tmp.path())
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.ends_with(".pending")), "{names:?}");
}

#[test]
fn old_segments_are_deleted_once_snapshots_cover_them() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut h = Harness::new(tmp.path(), opts(4096));
    let mut next = [1u64; 3];
    let mut max_segments = 0;
    for round in 1..=300u64 {
        for (g, slot) in next.iter_mut().enumerate() {
            h.write(g as u64, append(*slot, 4, round));
            *slot += 4;
            if round % 20 == 0 {
                let mut req = append(*slot, 0, round);
                req.entries.clear();
                req.snapshot = Some(snapshot(*slot - 3, 64));
                h.write(g as u64, req);
            }
        }
        h.sync();
        max_segments = max_segments.max(segment_files(tmp.path()).len());
    }
    let first = h.wal().segments()[0];
    assert!(first > 10, "old segments were deleted (first kept {first})");
    let on_disk = segment_files(tmp.path()).len();
    assert!(on_disk <= 8, "{on_disk} segments on disk");
    assert!(
        max_segments <= 10,
        "at most {max_segments} segments at once"
    );
    let synced = h.synced.clone();
    assert_eq!(h.crash_and_reopen(), synced);
    assert!(synced[&0].entries.len() < 100);
}

#[test]
fn a_missing_segment_is_corruption() {
    let tmp = tempfile::tempdir().expect("tempdir");
    three_synced_records(tmp.path());
    for _ in 0..2 {
        let (wal, _) = Wal::open(tmp.path(), WalOptions::default()).expect("open");
        drop(wal);
    }
    let segs = segment_files(tmp.path());
    assert!(segs.len() >= 3, "{segs:?}");
    std::fs::remove_file(&segs[1]).expect("remove");
    match Wal::open(tmp.path(), WalOptions::default()) {
        Err(StorageError::Corrupt { file, .. }) => assert_eq!(file, segs[1]),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn group_ids_above_the_maximum_are_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut wal, _) = Wal::open(tmp.path(), WalOptions::default()).expect("open");
    assert!(matches!(
        wal.write(MAX_GROUP_ID + 1, &append(1, 1, 1)),
        Err(StorageError::GroupOutOfRange { .. })
    ));
    wal.write(MAX_GROUP_ID, &append(1, 1, 1))
        .expect("the largest id");
}

#[test]
fn a_gap_in_entries_is_refused_without_poisoning() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut wal, _) = Wal::open(tmp.path(), WalOptions::default()).expect("open");
    assert!(matches!(
        wal.write(1, &append(2, 1, 1)),
        Err(StorageError::InvalidRequest { .. })
    ));
    wal.write(1, &append(1, 1, 1)).expect("write");
    wal.sync().expect("sync");
}

#[test]
fn one_sync_covers_every_group() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut h = Harness::new(tmp.path(), WalOptions::default());
    for g in 0..3 {
        h.write(g, append(1, 4, 1));
    }
    let stats = h.sync();
    assert_eq!(stats.records, 3);
    assert!(stats.bytes > 0);
    let synced = h.synced.clone();
    assert_eq!(h.crash_and_reopen(), synced);
}

#[test]
fn a_last_segment_whose_header_never_reached_the_disk_is_dropped() {
    for garbage in [vec![], vec![b'M', b'W'], vec![0u8; 64]] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (models, _) = three_synced_records(tmp.path());
        let (wal, _) = Wal::open(tmp.path(), WalOptions::default()).expect("open");
        drop(wal);
        // A crash right after a roll created the next segment.
        let last = last_segment(tmp.path());
        std::fs::write(&last, &garbage).expect("write");
        let (wal, recovered) = Wal::open(tmp.path(), WalOptions::default()).expect("reopen");
        assert_eq!(recovered, models[3]);
        assert_eq!(
            wal.recovery().torn_tail.as_ref().map(|t| &t.file),
            Some(&last)
        );
    }
}

/// Issue-level rule: a zeroed batch (or record) header in the middle of the
/// last segment is not its zero-filled end. Taking it for the end would
/// silently drop the synced, acknowledged batches after it.
#[test]
fn a_zeroed_header_followed_by_intact_batches_is_corruption_not_the_end() {
    let base = tempfile::tempdir().expect("tempdir");
    let (_, lens) = three_synced_records(base.path());
    let seg_name = last_segment(base.path())
        .file_name()
        .expect("name")
        .to_owned();
    let batch = lens[1] as usize;
    let first_record = batch + record::BATCH_HEADER_BYTES;
    for (what, from, to) in [
        ("batch header", batch, first_record),
        ("record header", first_record, first_record + 8),
        ("whole batch", batch, lens[2] as usize),
    ] {
        let tmp = tempfile::tempdir().expect("tempdir");
        copy_dir(base.path(), tmp.path());
        let seg = tmp.path().join(&seg_name);
        let mut data = std::fs::read(&seg).expect("read");
        data[from..to].fill(0);
        std::fs::write(&seg, &data).expect("write");
        match Wal::open(tmp.path(), WalOptions::default()) {
            Err(StorageError::Corrupt { file, offset, .. }) => {
                assert_eq!((file, offset), (seg, lens[1]), "{what}");
            }
            Err(e) => panic!("{what}: expected Corrupt, got {e}"),
            Ok(_) => panic!("{what} zeroed: taken for the end of the log"),
        }
    }
}

/// The defect a zero-filled segment allowed: a power loss during the
/// `fdatasync` of a batch that spans pages keeps a later page of it but not
/// an earlier one. Nothing of it was acknowledged; it is a torn tail, and
/// the log opens with everything synced before it.
#[test]
fn a_later_page_of_an_unsynced_batch_kept_without_an_earlier_one_is_a_torn_tail() {
    const PAGE: u64 = 4096;
    let base = tempfile::tempdir().expect("tempdir");
    let mut h = Harness::new(base.path(), WalOptions::default());
    for i in 0..2 {
        h.write(1, append(1 + 2 * i, 2, 1));
        h.sync();
    }
    let synced = h.synced.clone();
    let start = h.wal().segment_end();
    // A batch of many records over several pages.
    for i in 0..12 {
        let mut req = append(5 + i, 1, 1);
        req.entries[0].payload = Payload::Command(Bytes::from(vec![b'x'; 1500]));
        h.write(1, req);
    }
    h.sync();
    let end = h.wal().segment_end();
    drop(h);
    let seg_name = last_segment(base.path())
        .file_name()
        .expect("name")
        .to_owned();
    let pages: Vec<u64> = (start / PAGE..end.div_ceil(PAGE)).collect();
    assert!(pages.len() >= 4, "the batch spans {} pages", pages.len());
    // Each page of the batch in turn never reached the disk (it still
    // holds the zero-fill); the others did.
    for &lost in &pages {
        let tmp = tempfile::tempdir().expect("tempdir");
        copy_dir(base.path(), tmp.path());
        let seg = tmp.path().join(&seg_name);
        let mut data = std::fs::read(&seg).expect("read");
        let (lo, hi) = ((lost * PAGE).max(start), ((lost + 1) * PAGE).min(end));
        data[lo as usize..hi as usize].fill(0);
        std::fs::write(&seg, &data).expect("write");
        let (wal, recovered) = Wal::open(tmp.path(), WalOptions::default())
            .unwrap_or_else(|e| panic!("page {lost} lost: {e}"));
        assert_eq!(recovered, synced, "page {lost} lost");
        assert_eq!(
            wal.recovery().torn_tail.as_ref().map(|t| t.offset),
            Some(start),
            "page {lost} lost"
        );
    }
}

#[test]
fn a_zeroed_last_batch_of_an_older_segment_is_corruption_by_the_gap_in_batch_numbers() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_, lens) = three_synced_records(tmp.path());
    let older = last_segment(tmp.path());
    // Reopening continues in a new segment, batch numbers going on.
    let (wal, _) = Wal::open(tmp.path(), WalOptions::default()).expect("open");
    drop(wal);
    // The older segment's last batch reads as zeros: it looks like the
    // segment's zero-filled end, but the next segment's first batch does
    // not follow the batch before it.
    let mut data = std::fs::read(&older).expect("read");
    data[lens[2] as usize..lens[3] as usize].fill(0);
    std::fs::write(&older, &data).expect("write");
    match Wal::open(tmp.path(), WalOptions::default()) {
        Err(StorageError::Corrupt {
            file,
            offset,
            reason,
        }) => {
            assert_eq!((file, offset), (older, lens[2]));
            assert!(reason.contains("missing"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn a_segment_of_the_format_before_batches_is_refused_with_a_typed_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let seg = tmp.path().join("wal-00000000000000000001.log");
    // Version 1: magic, version, sequence number, then records.
    let mut v1 = b"MWAL".to_vec();
    v1.extend_from_slice(&1u32.to_le_bytes());
    v1.extend_from_slice(&1u64.to_le_bytes());
    v1.extend_from_slice(&[0; 64]);
    std::fs::write(&seg, &v1).expect("write");
    let err = Wal::open(tmp.path(), WalOptions::default()).expect_err("refused");
    match &err {
        StorageError::UnsupportedFormat { file, version } => {
            assert_eq!((file, *version), (&seg, 1));
        }
        other => panic!("expected UnsupportedFormat, got {other}"),
    }
    assert!(err.to_string().contains("version 1"), "{err}");
}

/// Rewrites a segment this build wrote (format version 3) as the build
/// before wrote it (version 2: group ids in 16 bits), batch by batch, with
/// every CRC recomputed.
fn downgrade_to_v2(path: &Path, seq: u64) {
    use bytes::{BufMut, BytesMut};
    let data = std::fs::read(path).expect("read");
    let head = record::read_segment_header(&data, seq).expect("a v3 header");
    assert_eq!(head.version, record::SEGMENT_VERSION);
    let mut out = BytesMut::new();
    out.put_slice(&data[..record::SEGMENT_HEADER_BYTES]);
    out[4..8].copy_from_slice(&record::SEGMENT_VERSION_GROUP_U16.to_le_bytes());
    let crc = crc32c::crc32c(&out[..record::SEGMENT_HEADER_BYTES - 4]);
    out[record::SEGMENT_HEADER_BYTES - 4..].copy_from_slice(&crc.to_le_bytes());
    let mut at = record::SEGMENT_HEADER_BYTES;
    while let record::Batch::Intact { seq, body, next } =
        record::read_batch(&data, at, Some(head.salt))
    {
        let batch_at = record::begin_batch(&mut out);
        let mut r = 0;
        while r < body.len() {
            let record::Frame::Good { payload, next } = record::read_frame(body, r) else {
                panic!("a bad record in an intact batch");
            };
            let group = u32::from_le_bytes(payload[..4].try_into().expect("4 bytes"));
            let mut v2 = BytesMut::new();
            v2.put_u16_le(u16::try_from(group).expect("a 16-bit group id"));
            v2.put_slice(&payload[4..]);
            out.put_u32_le(v2.len() as u32);
            out.put_u32_le(crc32c::crc32c(&v2));
            out.put_slice(&v2);
            r = next;
        }
        record::finish_batch(&mut out, batch_at, seq, head.salt);
        at = next;
    }
    std::fs::write(path, &out).expect("write");
}

/// The format decision (docs/design.md §6, "Format versions"): a log the
/// build before wrote (version 2, 16-bit group ids) is read, not refused;
/// the log goes on in version 3 segments beside the old ones, which
/// compaction deletes as it would any segment.
#[test]
fn a_version_2_log_is_read_and_continued_in_version_3_segments() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut h = Harness::new(tmp.path(), WalOptions::default());
    for g in [1, 7, 0xFFFF] {
        h.write(g, append(1, 3, 1));
    }
    h.sync();
    let mut req = append(4, 0, 2);
    req.snapshot = Some(snapshot(2, 32));
    h.write(7, req);
    h.sync();
    let synced = h.synced.clone();
    h.wal = None;
    let segs = segment_files(tmp.path());
    assert_eq!(segs.len(), 1);
    downgrade_to_v2(&segs[0], 1);
    let (mut wal, recovered) = Wal::open(tmp.path(), WalOptions::default()).expect("read v2");
    assert_eq!(recovered, synced, "a version 2 log recovers whole");
    let segs = segment_files(tmp.path());
    assert_eq!(segs.len(), 2);
    let version = |p: &Path, seq| {
        record::read_segment_header(&std::fs::read(p).expect("read"), seq)
            .expect("header")
            .version
    };
    assert_eq!(version(&segs[0], 1), record::SEGMENT_VERSION_GROUP_U16);
    assert_eq!(version(&segs[1], 2), record::SEGMENT_VERSION);
    // New ids beyond 16 bits go to the version 3 segment beside them.
    wal.write(0x1_0000, &append(1, 2, 1)).expect("write");
    wal.write(1, &append(4, 1, 1)).expect("write");
    wal.sync().expect("sync");
    drop(wal);
    let (_wal, again) = Wal::open(tmp.path(), WalOptions::default()).expect("reopen");
    let mut expected = synced;
    expected
        .entry(0x1_0000)
        .or_default()
        .apply(&append(1, 2, 1));
    expected.entry(1).or_default().apply(&append(4, 1, 1));
    assert_eq!(again, expected);
}

/// Version 3 is the newest format: a later one (written by a newer build)
/// is refused with the typed error, naming both versions read.
#[test]
fn a_segment_of_a_later_format_is_refused_with_a_typed_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    three_synced_records(tmp.path());
    let seg = segment_files(tmp.path())[0].clone();
    let mut data = std::fs::read(&seg).expect("read");
    data[4..8].copy_from_slice(&4u32.to_le_bytes());
    let crc = crc32c::crc32c(&data[..record::SEGMENT_HEADER_BYTES - 4]);
    data[record::SEGMENT_HEADER_BYTES - 4..record::SEGMENT_HEADER_BYTES]
        .copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&seg, &data).expect("write");
    let err = Wal::open(tmp.path(), WalOptions::default()).expect_err("refused");
    assert!(
        matches!(&err, StorageError::UnsupportedFormat { version: 4, file } if *file == seg),
        "{err}"
    );
    assert!(err.to_string().contains("versions 2 and 3"), "{err}");
}

#[test]
fn group_ids_of_32_bits_survive_a_reopen() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut h = Harness::new(tmp.path(), WalOptions::default());
    for g in [0x1_0000, 0xABCD_EF01, MAX_GROUP_ID] {
        h.write(g, append(1, 2, 1));
    }
    h.sync();
    let synced = h.synced.clone();
    assert_eq!(h.crash_and_reopen(), synced);
    assert_eq!(synced.len(), 3);
}

/// Dropping a replica (docs/design.md §6, "Dropped groups"): recovery
/// forgets the group on reading its drop record, its snapshot file goes,
/// and its id is never written again.
#[test]
fn a_dropped_group_is_forgotten_at_recovery_and_its_id_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut h = Harness::new(tmp.path(), WalOptions::default());
    h.write(1, append(1, 2, 1));
    let mut req = append(1, 2, 1);
    req.snapshot = Some(snapshot(1, 16));
    h.write(2, req);
    h.sync();
    let snap = tmp.path().join("snap-2.bin");
    assert!(snap.exists());
    h.wal().drop_group(2).expect("drop");
    assert!(h.wal().is_dropped(2));
    assert!(matches!(
        h.wal().write(2, &append(3, 1, 1)),
        Err(StorageError::GroupDropped { group: 2 })
    ));
    // Unsynced, the drop may be lost with a crash: the group comes back.
    h.wal = None;
    let (mut wal, recovered) = Wal::open(tmp.path(), WalOptions::default()).expect("reopen");
    assert!(
        recovered.contains_key(&2),
        "an unsynced drop is not durable"
    );
    wal.drop_group(2).expect("drop");
    wal.sync().expect("sync");
    assert!(
        !snap.exists(),
        "the snapshot file goes once the drop is durable"
    );
    drop(wal);
    let (mut wal, recovered) = Wal::open(tmp.path(), WalOptions::default()).expect("reopen");
    assert_eq!(recovered.keys().copied().collect::<Vec<_>>(), vec![1]);
    assert!(wal.is_dropped(2), "the drop record is still in the log");
    assert!(matches!(
        wal.write(2, &append(1, 1, 1)),
        Err(StorageError::GroupDropped { group: 2 })
    ));
    wal.write(1, &append(3, 1, 1)).expect("other groups go on");
    wal.sync().expect("sync");
}

/// A dropped group's records no longer hold back compaction: once the
/// live groups' snapshots cover the old segments, they are deleted though
/// the dropped group never took a snapshot.
#[test]
fn a_dropped_group_does_not_hold_back_segment_deletion() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut h = Harness::new(tmp.path(), opts(4096));
    h.write(9, append(1, 4, 1));
    h.sync();
    h.wal().drop_group(9).expect("drop");
    let mut slot = 1;
    for round in 1..=200u64 {
        h.write(1, append(slot, 4, round));
        slot += 4;
        if round % 20 == 0 {
            let mut req = append(slot, 0, round);
            req.snapshot = Some(snapshot(slot - 1, 64));
            h.write(1, req);
        }
        h.wal().sync().expect("sync");
    }
    let first = h.wal().segments()[0];
    assert!(
        first > 5,
        "segments holding the dropped group's records went (first kept {first})"
    );
    h.wal = None;
    let (_wal, recovered) = Wal::open(tmp.path(), opts(4096)).expect("reopen");
    assert_eq!(recovered.keys().copied().collect::<Vec<_>>(), vec![1]);
}

/// Old segments are deleted only after a sync of a later segment's first
/// batch returned. So when the only segment left, numbered above 1, has a
/// damaged first batch, that batch was synced: corruption, not a segment
/// that a power loss caught empty (dropping it would lose the whole log).
#[test]
fn a_damaged_first_batch_of_the_only_segment_left_after_deletions_is_corruption() {
    let tmp = tempfile::tempdir().expect("tempdir");
    three_synced_records(tmp.path());
    for _ in 0..2 {
        let (wal, _) = Wal::open(tmp.path(), WalOptions::default()).expect("open");
        drop(wal);
    }
    let segs = segment_files(tmp.path());
    assert_eq!(segs.len(), 3, "{segs:?}");
    // As deletion leaves it once snapshots cover the older segments.
    for old in &segs[..2] {
        std::fs::remove_file(old).expect("remove");
    }
    let only = &segs[2];
    let first_batch = record::SEGMENT_HEADER_BYTES as u64;
    flip_bit(only, first_batch + 40);
    match Wal::open(tmp.path(), WalOptions::default()) {
        Err(StorageError::Corrupt { file, offset, .. }) => {
            assert_eq!((&file, offset), (only, first_batch));
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}
