//! [`Wal`]: the node's write-ahead log, its recovery and its truncation.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use meridian_paxos::{Entry, HardState, PersistRequest, Recovered, Snapshot};

use super::StorageError;
use super::fs::{DirLock, FileSystem, LockError, RealFs, WalFile};
use super::record::{
    self, BATCH_HEADER_BYTES, BadSegmentHeader, Batch, Frame, Record, SEGMENT_HEADER_BYTES,
    SnapshotMark, decode_record, read_frame,
};
use super::shape::{DELETED_SEGMENT, LogShape};

/// A segment is closed and a new one begun once it holds this much.
pub const SEGMENT_BYTES: u64 = 64 << 20;
/// A batch is buffered in memory up to this much (and one request more);
/// then [`Wal::write`] ends it: writes it and syncs it, durable earlier
/// than asked (which is safe), because batch `k + 1` may be written only
/// once batch `k`'s sync has returned.
pub const MAX_BUFFERED_BYTES: usize = 8 << 20;
/// The current segment is zero-filled this far past its last write (up to
/// the segment's size), so that a sync rewrites blocks the file already
/// has and records no new length (docs/design.md §6).
pub const PREALLOCATE_BYTES: u64 = 1 << 20;
/// The largest group id a record can name (ids are stored in 32 bits
/// since format version 3).
pub const MAX_GROUP_ID: u64 = 0xFFFF_FFFF;

const LOCK_FILE: &str = "LOCK";

/// How the log is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalOptions {
    /// Roll to a new segment once the current one holds this many bytes
    /// (a single record may overshoot it).
    pub segment_bytes: u64,
}

impl Default for WalOptions {
    fn default() -> WalOptions {
        WalOptions {
            segment_bytes: SEGMENT_BYTES,
        }
    }
}

/// What one [`Wal::sync`] did, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// Bytes written to the log since the previous sync.
    pub bytes: u64,
    /// Records written since the previous sync.
    pub records: u64,
    /// Time spent in `fdatasync` of the log.
    pub fsync: Duration,
    /// Old segments deleted because nothing in them was live any more.
    pub segments_removed: u64,
}

/// A torn tail cut from the last segment on open: a batch that a crash or
/// power loss interrupted before its sync returned. Damage confined to the
/// last batch cannot be told from such a write, and is cut the same way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// The segment.
    pub file: PathBuf,
    /// Where the cut batch started; the file now ends there.
    pub offset: u64,
    /// How many bytes were cut.
    pub bytes: u64,
    /// What was wrong with the batch.
    pub reason: String,
}

/// What [`Wal::open`] found, for the node to log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segments replayed.
    pub segments: usize,
    /// Batches replayed.
    pub batches: u64,
    /// The sequence number of the last batch replayed; the log goes on
    /// from the next.
    pub last_batch: Option<u64>,
    /// Records replayed.
    pub records: u64,
    /// The torn tail cut, if there was one.
    pub torn_tail: Option<TornTail>,
    /// Snapshots whose install a crash interrupted, finished on open.
    pub snapshots_installed: usize,
}

/// What the log knows of one group.
#[derive(Clone, Debug, Default)]
struct GroupLog {
    hard_state: HardState,
    snapshot: Option<SnapshotMark>,
    shape: LogShape,
}

/// The node's write-ahead log: one for all the groups it hosts (or one per
/// group, opened on its own directory; the type is the same).
///
/// Synchronous: the node's driver loop calls it. [`Wal::write`] buffers
/// into the open batch; [`Wal::sync`] writes the batch with one write and
/// makes it durable with one `fdatasync`, before anything later is
/// written. An I/O error poisons the log; see [`StorageError`].
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    fs: Arc<dyn FileSystem>,
    opts: WalOptions,
    _lock: DirLock,
    groups: BTreeMap<u64, GroupLog>,
    /// Sequence numbers of the segments on disk, oldest first; the last is
    /// `file`.
    segments: Vec<u64>,
    file: Box<dyn WalFile>,
    /// The current segment's salt, in each of its batches.
    salt: u64,
    /// Bytes handed to `file`.
    file_len: u64,
    /// Bytes of `file` known durable.
    synced_len: u64,
    /// The open batch (and, for a new segment, its header before it).
    buf: BytesMut,
    /// Where in `buf` the open batch's header goes; `None` if no batch is
    /// open.
    batch_at: Option<usize>,
    /// The sequence number of the next batch written.
    next_batch: u64,
    /// Bytes and records since the last sync.
    unsynced_bytes: u64,
    unsynced_records: u64,
    /// A created segment whose name is not yet durable.
    dir_dirty: bool,
    /// Snapshot files written but not yet renamed to `snap-<group>.bin`,
    /// by group: the newest id, and any older ones to delete.
    pending_snapshots: BTreeMap<u64, Vec<u64>>,
    next_snapshot_id: u64,
    /// Groups dropped ([`Wal::drop_group`]) since open, or whose drop
    /// record recovery found: their ids are never written again.
    dropped: BTreeSet<u64>,
    /// Groups dropped since the last sync: their snapshot files are
    /// deleted once the drop record is durable.
    dropped_unsynced: Vec<u64>,
    poisoned: Option<String>,
    recovery: RecoveryReport,
}

/// A salt for segment `seq`: random (from the keys the standard library
/// draws from the operating system for hash maps), so that no client can
/// write a value that passes for a batch of the log.
fn new_salt(seq: u64) -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(seq)
}

fn segment_name(seq: u64) -> String {
    format!("wal-{seq:020}.log")
}

fn parse_segment_name(name: &str) -> Option<u64> {
    name.strip_prefix("wal-")?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

fn snapshot_name(group: u64) -> String {
    format!("snap-{group}.bin")
}

fn pending_snapshot_name(group: u64, id: u64) -> String {
    format!("snap-{group}.{id}.pending")
}

/// `(group, id)` of a pending snapshot file name.
fn parse_pending_snapshot_name(name: &str) -> Option<(u64, u64)> {
    let rest = name.strip_prefix("snap-")?.strip_suffix(".pending")?;
    let (group, id) = rest.split_once('.')?;
    Some((group.parse().ok()?, id.parse().ok()?))
}

/// One group during replay: its log's shape, and the entries read so far
/// that are still live.
#[derive(Debug, Default)]
struct Replay {
    log: GroupLog,
    entries: Vec<Entry>,
}

impl Replay {
    /// Keeps `entries` to the live range of the shape.
    fn trim(&mut self) {
        let end = self.log.shape.end();
        match self.log.shape.first_live() {
            None => self.entries.clear(),
            Some(first) => {
                let lo = self.entries.partition_point(|e| e.slot < first);
                self.entries.drain(..lo);
                let hi = self.entries.partition_point(|e| e.slot <= end);
                self.entries.truncate(hi);
            }
        }
    }
}

impl Wal {
    /// Opens (or creates) the log in `dir` on the real file system; returns
    /// it with what every group recovers.
    pub fn open(
        dir: &Path,
        opts: WalOptions,
    ) -> Result<(Wal, BTreeMap<u64, Recovered>), StorageError> {
        Wal::open_with(dir, opts, Arc::new(RealFs))
    }

    /// [`Wal::open`] over the file layer `fs`.
    ///
    /// Recovery replays every segment, batch by batch. Damage (a batch
    /// that is not whole with good CRCs) is a torn tail if and only if no
    /// intact later batch follows it: then it is in the last segment, is
    /// cut, and is reported in [`Wal::recovery`]. Damage followed by an
    /// intact later batch was synced, and is [`StorageError::Corrupt`], as
    /// is any damage in a segment that is not the last. Zeros to the end of
    /// a segment are its zero-filled end. The log then continues in a new
    /// segment.
    pub fn open_with(
        dir: &Path,
        opts: WalOptions,
        fs: Arc<dyn FileSystem>,
    ) -> Result<(Wal, BTreeMap<u64, Recovered>), StorageError> {
        fs.create_dir_all(dir)
            .map_err(|e| StorageError::io("create directory", dir, e))?;
        let lock = match DirLock::acquire(dir.join(LOCK_FILE)) {
            Ok(lock) => lock,
            Err(LockError::Held) => {
                return Err(StorageError::Locked {
                    dir: dir.to_owned(),
                });
            }
            Err(LockError::Io(e)) => return Err(StorageError::io("lock", dir.join(LOCK_FILE), e)),
        };

        let names = fs.list(dir).map_err(|e| StorageError::io("list", dir, e))?;
        let mut segments: Vec<u64> = names.iter().filter_map(|n| parse_segment_name(n)).collect();
        segments.sort_unstable();
        for w in segments.windows(2) {
            if w[1] != w[0] + 1 {
                return Err(StorageError::corrupt(
                    dir.join(segment_name(w[0] + 1)),
                    0,
                    format!(
                        "segment missing between {} and {}",
                        segment_name(w[0]),
                        segment_name(w[1])
                    ),
                ));
            }
        }

        let mut report = RecoveryReport::default();
        let mut replay: BTreeMap<u64, Replay> = BTreeMap::new();
        let mut dropped: BTreeSet<u64> = BTreeSet::new();
        let mut max_snapshot_id = 0;
        let mut kept = segments.clone();
        // The last intact batch replayed, and where the intact batches of
        // the segment before end.
        let mut last_batch: Option<u64> = None;
        let mut prev_end: Option<(PathBuf, u64)> = None;
        // A last segment dropped because nothing in it was durable: the new
        // segment takes its number.
        let mut reuse = None;
        for (i, &seq) in segments.iter().enumerate() {
            let last = i + 1 == segments.len();
            let path = dir.join(segment_name(seq));
            let data = fs
                .read(&path)
                .map_err(|e| StorageError::io("read", &path, e))?;
            let (version, salt) = match record::read_segment_header(&data, seq) {
                Ok(h) => (h.version, h.salt),
                Err(BadSegmentHeader::Unsupported(version)) => {
                    return Err(StorageError::UnsupportedFormat {
                        file: path,
                        version,
                    });
                }
                Err(BadSegmentHeader::Misnamed(s)) => {
                    return Err(StorageError::corrupt(
                        &path,
                        0,
                        format!("header names segment {s}, file name {seq}"),
                    ));
                }
                Err(BadSegmentHeader::Damaged(reason)) => {
                    if let Some((at, s)) = record::intact_batch_after(&data, 0, None, last_batch) {
                        return Err(StorageError::corrupt(
                            &path,
                            0,
                            format!("{reason}, and intact batch {s} follows at offset {at}"),
                        ));
                    }
                    if !last || deleted_before(&kept, seq) {
                        return Err(StorageError::corrupt(&path, 0, reason));
                    }
                    // Created, then a power loss before its first batch
                    // (which carries the header) was durable: it held
                    // nothing synced, and the new segment reuses its
                    // number.
                    kept.pop();
                    reuse = Some(seq);
                    report.torn_tail = Some(TornTail {
                        file: path,
                        offset: 0,
                        bytes: data.len() as u64,
                        reason: format!("segment header never written: {reason}"),
                    });
                    break;
                }
            };
            let mut at = SEGMENT_HEADER_BYTES;
            let mut intact = 0;
            let mut torn = None;
            while at < data.len() {
                let (batch, body) = match record::read_batch(&data, at, Some(salt)) {
                    Batch::Intact {
                        seq, body, next, ..
                    } => {
                        let start = at;
                        at = next;
                        ((start, seq), body)
                    }
                    Batch::Bad(reason) => {
                        // The rule (docs/design.md §6): damage is a torn
                        // tail if and only if no intact later batch
                        // follows it. Batch k + 1 is written only after
                        // batch k's sync returned, so an intact later
                        // batch proves the damaged one was synced.
                        if let Some((later, s)) =
                            record::intact_batch_after(&data, at + 1, Some(salt), last_batch)
                        {
                            return Err(StorageError::corrupt(
                                &path,
                                at as u64,
                                format!(
                                    "{reason}; intact batch {s} follows at offset {later}, so this data was synced"
                                ),
                            ));
                        }
                        // Zeros to the end: the segment was zero-filled
                        // ahead of its writes (PREALLOCATE_BYTES) and its
                        // batches end here.
                        if record::trim_zeros(&data[at..]) == 0 {
                            break;
                        }
                        if !last {
                            return Err(StorageError::corrupt(&path, at as u64, reason));
                        }
                        if intact == 0 {
                            // Dropped whole below.
                            torn = Some(reason);
                            break;
                        }
                        let mut f = fs
                            .open_append(&path)
                            .map_err(|e| StorageError::io("open", &path, e))?;
                        f.set_len(at as u64)
                            .and_then(|()| f.sync_data())
                            .map_err(|e| StorageError::io("cut torn tail of", &path, e))?;
                        report.torn_tail = Some(TornTail {
                            file: path.clone(),
                            offset: at as u64,
                            bytes: (data.len() - at) as u64,
                            reason,
                        });
                        break;
                    }
                };
                let (start, bseq) = batch;
                if let Some(prev) = last_batch {
                    if bseq != prev + 1 {
                        // Batches are numbered without gaps across
                        // segments: a segment's first batch that skips
                        // numbers means the segment before lost its last.
                        let (file, offset) = match &prev_end {
                            Some((file, end)) if start == SEGMENT_HEADER_BYTES => {
                                (file.clone(), *end)
                            }
                            _ => (path.clone(), start as u64),
                        };
                        return Err(StorageError::corrupt(
                            file,
                            offset,
                            format!(
                                "batches {} to {} are missing: batch {bseq} of {} follows batch {prev}",
                                prev + 1,
                                bseq - 1,
                                path.display()
                            ),
                        ));
                    }
                }
                last_batch = Some(bseq);
                intact += 1;
                let body_at = start + BATCH_HEADER_BYTES;
                let mut r = 0;
                while r < body.len() {
                    let offset = (body_at + r) as u64;
                    let payload = match read_frame(body, r) {
                        Frame::Good { payload, next } => {
                            r = next;
                            payload
                        }
                        // The batch's CRC matched: written so.
                        Frame::Bad(reason) => {
                            return Err(StorageError::corrupt(
                                &path,
                                offset,
                                format!("in an intact batch: {reason}"),
                            ));
                        }
                    };
                    let rec = decode_record(payload, version).map_err(|e| {
                        StorageError::corrupt(&path, offset, format!("undecodable record: {e}"))
                    })?;
                    report.records += 1;
                    replay_record(&mut replay, &mut dropped, rec, seq, &mut max_snapshot_id)
                        .map_err(|reason| StorageError::corrupt(&path, offset, reason))?;
                }
            }
            if intact == 0 {
                // Every segment begins with a batch (its checkpoints),
                // written with its header.
                if !last || deleted_before(&kept, seq) {
                    return Err(StorageError::corrupt(
                        &path,
                        SEGMENT_HEADER_BYTES as u64,
                        torn.map_or_else(
                            || "no intact batch; every segment begins with one".to_owned(),
                            |reason| format!("{reason}; every segment begins with an intact batch"),
                        ),
                    ));
                }
                // The first batch never became durable whole: nothing in
                // the segment was synced. It is dropped, and the new
                // segment takes its number.
                kept.pop();
                reuse = Some(seq);
                report.torn_tail = Some(TornTail {
                    file: path,
                    offset: SEGMENT_HEADER_BYTES as u64,
                    bytes: data.len().saturating_sub(SEGMENT_HEADER_BYTES) as u64,
                    reason: torn.unwrap_or_else(|| "first batch never written".to_owned()),
                });
                break;
            }
            report.segments += 1;
            report.batches += intact;
            prev_end = Some((path, at as u64));
        }

        // Snapshot files: finish interrupted installs, drop unreferenced
        // pending ones, load the current one of each group.
        let mut pending: BTreeMap<(u64, u64), String> = BTreeMap::new();
        for name in &names {
            if let Some((group, id)) = parse_pending_snapshot_name(name) {
                max_snapshot_id = max_snapshot_id.max(id);
                pending.insert((group, id), name.clone());
            }
        }
        let mut recovered = BTreeMap::new();
        for (&group, r) in &mut replay {
            if r.log.shape.oldest_segment() == Some(DELETED_SEGMENT) {
                let first = r.log.shape.first_live().unwrap_or_default();
                return Err(StorageError::corrupt(
                    dir.join(segment_name(kept.first().copied().unwrap_or(1))),
                    0,
                    format!("group {group}'s entries from slot {first} are in a deleted segment"),
                ));
            }
            let snapshot = match r.log.snapshot {
                None => None,
                Some(mark) => {
                    let (snap, installed) =
                        load_snapshot(fs.as_ref(), dir, group, mark, &mut pending)?;
                    report.snapshots_installed += usize::from(installed);
                    Some(snap)
                }
            };
            debug_assert_eq!(
                r.entries.first().map(|e| e.slot),
                r.log.shape.first_live(),
                "replayed entries start where the shape's live range does"
            );
            recovered.insert(
                group,
                Recovered {
                    hard_state: r.log.hard_state,
                    snapshot,
                    entries: std::mem::take(&mut r.entries),
                },
            );
        }
        for name in pending.values() {
            let path = dir.join(name);
            fs.remove(&path)
                .map_err(|e| StorageError::io("remove", &path, e))?;
        }
        // A dropped group's snapshot file, if a crash came between its drop
        // record's sync and the file's deletion.
        for &group in &dropped {
            let name = snapshot_name(group);
            if names.contains(&name) {
                let path = dir.join(name);
                fs.remove(&path)
                    .map_err(|e| StorageError::io("remove", &path, e))?;
            }
        }

        let groups = replay.into_iter().map(|(g, r)| (g, r.log)).collect();
        report.last_batch = last_batch;
        let next_seq = reuse.unwrap_or_else(|| kept.last().map_or(1, |s| s + 1));
        let first_path = dir.join(segment_name(next_seq));
        let file = fs
            .create(&first_path)
            .map_err(|e| StorageError::io("create", &first_path, e))?;
        kept.push(next_seq);
        let mut wal = Wal {
            dir: dir.to_owned(),
            fs,
            opts,
            _lock: lock,
            groups,
            segments: kept,
            file,
            salt: 0,
            file_len: 0,
            synced_len: 0,
            buf: BytesMut::new(),
            batch_at: None,
            next_batch: last_batch.map_or(1, |b| b + 1),
            unsynced_bytes: 0,
            unsynced_records: 0,
            dir_dirty: true,
            pending_snapshots: BTreeMap::new(),
            next_snapshot_id: max_snapshot_id + 1,
            dropped,
            dropped_unsynced: Vec::new(),
            poisoned: None,
            recovery: report,
        };
        wal.begin_segment(next_seq);
        wal.sync()?;
        Ok((wal, recovered))
    }

    /// What recovery found on open.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The sequence numbers of the segments on disk, oldest first.
    pub fn segments(&self) -> &[u64] {
        &self.segments
    }

    fn check(&self) -> Result<(), StorageError> {
        match &self.poisoned {
            None => Ok(()),
            Some(cause) => Err(StorageError::Poisoned {
                cause: cause.clone(),
            }),
        }
    }

    /// Records `err` as fatal and returns it.
    fn poison(&mut self, err: StorageError) -> StorageError {
        if self.poisoned.is_none() {
            self.poisoned = Some(err.to_string());
        }
        err
    }

    /// Bytes handed to the current segment (its file is longer once
    /// zero-filled ahead).
    #[cfg(test)]
    pub(crate) fn segment_end(&self) -> u64 {
        self.file_len
    }

    fn current_path(&self) -> PathBuf {
        let seq = self.segments.last().copied().unwrap_or(1);
        self.dir.join(segment_name(seq))
    }

    /// Buffers `req` of `group` in the open batch (not durable until
    /// [`Wal::sync`]). A snapshot is written to its own file and fsynced
    /// here; the log records a mark naming it. A batch that reaches
    /// [`MAX_BUFFERED_BYTES`], or a segment that reaches its size, is
    /// written and synced here, early.
    pub fn write(&mut self, group: u64, req: &PersistRequest) -> Result<(), StorageError> {
        self.check()?;
        if group > MAX_GROUP_ID {
            return Err(StorageError::GroupOutOfRange { group });
        }
        if self.dropped.contains(&group) {
            return Err(StorageError::GroupDropped { group });
        }
        if req.is_empty() {
            return Ok(());
        }
        if self.file_len + self.buf.len() as u64 >= self.opts.segment_bytes {
            self.roll().map_err(|e| self.poison(e))?;
        }
        let segment = self.segments.last().copied().unwrap_or(1);
        let log = self.groups.get(&group).cloned().unwrap_or_default();
        let mut next = log.clone();
        if let Some(s) = &req.snapshot {
            next.shape.snapshot(s.last_slot);
        }
        if let Some(from) = req.truncate_from {
            next.shape.truncate(from);
        }
        let taken = next.shape.append(&req.entries, segment).map_err(|gap| {
            StorageError::InvalidRequest {
                group,
                reason: format!(
                    "entries must continue the log: expected slot {}, got {}",
                    gap.expected, gap.got
                ),
            }
        })?;
        if let Some(hs) = req.hard_state {
            next.hard_state = hs;
        }
        if let Some(s) = &req.snapshot {
            let mark = self
                .write_snapshot_file(group, s)
                .map_err(|e| self.poison(e))?;
            next.snapshot = Some(mark);
        }
        let entries = &req.entries[req.entries.len() - taken..];
        let mark = req.snapshot.as_ref().and(next.snapshot);
        if self.batch_at.is_none() {
            self.batch_at = Some(record::begin_batch(&mut self.buf));
        }
        let before = self.buf.len();
        record::put_request(&mut self.buf, group, mark, req, entries);
        self.unsynced_bytes += (self.buf.len() - before) as u64;
        self.unsynced_records += 1;
        self.groups.insert(group, next);
        if self.buf.len() >= MAX_BUFFERED_BYTES {
            self.commit().map_err(|e| self.poison(e))?;
        }
        Ok(())
    }

    /// Buffers the drop of this node's replica of `group` (durable at the
    /// next [`Wal::sync`]). From then on the group's records are dead: the
    /// group no longer holds back the deletion of old segments, is not
    /// checkpointed into new ones, and recovery forgets what it replayed
    /// of it on reading the drop record (docs/design.md §6). Its snapshot
    /// file is deleted once the drop is durable. The id is never written
    /// again: [`Wal::write`] refuses it. Dropping a group the log never
    /// heard of records the drop all the same (a replica created and
    /// dropped before its first write).
    pub fn drop_group(&mut self, group: u64) -> Result<(), StorageError> {
        self.check()?;
        if group > MAX_GROUP_ID {
            return Err(StorageError::GroupOutOfRange { group });
        }
        if !self.dropped.insert(group) {
            return Ok(());
        }
        self.groups.remove(&group);
        if self.batch_at.is_none() {
            self.batch_at = Some(record::begin_batch(&mut self.buf));
        }
        let before = self.buf.len();
        record::put_drop(&mut self.buf, group);
        self.unsynced_bytes += (self.buf.len() - before) as u64;
        self.unsynced_records += 1;
        self.dropped_unsynced.push(group);
        Ok(())
    }

    /// Whether `group` was dropped (since open, or by a drop record that
    /// recovery read).
    pub fn is_dropped(&self, group: u64) -> bool {
        self.dropped.contains(&group)
    }

    /// Deletes the snapshot files of the groups whose drop records the
    /// last sync made durable (pending ones included).
    fn remove_dropped_snapshots(&mut self) -> Result<(), StorageError> {
        if self.dropped_unsynced.is_empty() {
            return Ok(());
        }
        for group in std::mem::take(&mut self.dropped_unsynced) {
            let mut names = vec![snapshot_name(group)];
            if let Some(ids) = self.pending_snapshots.remove(&group) {
                names.extend(ids.into_iter().map(|id| pending_snapshot_name(group, id)));
            }
            for name in names {
                let path = self.dir.join(name);
                match self.fs.remove(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(StorageError::io("remove", &path, e)),
                }
            }
        }
        self.sync_dir()
    }

    /// Writes a snapshot as a pending file, durable (file and name) before
    /// the mark that names it can reach the log.
    fn write_snapshot_file(
        &mut self,
        group: u64,
        snap: &Snapshot,
    ) -> Result<SnapshotMark, StorageError> {
        let id = self.next_snapshot_id;
        self.next_snapshot_id += 1;
        let path = self.dir.join(pending_snapshot_name(group, id));
        let bytes = record::encode_snapshot_file(group, id, snap);
        let mut f = self
            .fs
            .create(&path)
            .map_err(|e| StorageError::io("create", &path, e))?;
        f.write_all(&bytes)
            .map_err(|e| StorageError::io("write", &path, e))?;
        f.sync_data()
            .map_err(|e| StorageError::io("fdatasync", &path, e))?;
        self.fs
            .sync_dir(&self.dir)
            .map_err(|e| StorageError::io("fsync directory", &self.dir, e))?;
        self.pending_snapshots.entry(group).or_default().push(id);
        Ok(SnapshotMark {
            id,
            last_slot: snap.last_slot,
        })
    }

    /// Writes the open batch to the file with one write. Nothing else is
    /// written before it is synced. On failure the file is cut back to
    /// what was synced, so that a partial batch is never followed by
    /// anything (and a reopen finds at most a torn tail).
    fn write_batch(&mut self) -> Result<bool, StorageError> {
        let Some(at) = self.batch_at.take() else {
            debug_assert!(self.buf.is_empty());
            return Ok(false);
        };
        // The recovery rule rests on this: an intact batch k + 1 proves
        // that batch k was synced.
        assert_eq!(
            self.synced_len, self.file_len,
            "batch {} is written only after the previous batch's sync returned",
            self.next_batch
        );
        record::finish_batch(&mut self.buf, at, self.next_batch, self.salt);
        let end = self.file_len + self.buf.len() as u64;
        let zero_filled = if end > self.file.file_len() {
            let len = (end + PREALLOCATE_BYTES).min(self.opts.segment_bytes.max(end));
            self.file.preallocate(len).map_err(|e| ("preallocate", e))
        } else {
            Ok(())
        };
        let written =
            zero_filled.and_then(|()| self.file.write_all(&self.buf).map_err(|e| ("write", e)));
        if let Err((op, e)) = written {
            let _best_effort = self.file.set_len(self.synced_len);
            return Err(StorageError::io(op, self.current_path(), e));
        }
        self.file_len = end;
        self.next_batch += 1;
        self.buf.clear();
        Ok(true)
    }

    /// Writes the open batch and syncs it: one write, one `fdatasync`.
    /// Returns the time the `fdatasync` took, if there was a batch.
    fn commit(&mut self) -> Result<Option<Duration>, StorageError> {
        if !self.write_batch()? {
            return Ok(None);
        }
        let start = Instant::now();
        self.file
            .sync_data()
            .map_err(|e| StorageError::io("fdatasync", self.current_path(), e))?;
        self.synced_len = self.file_len;
        Ok(Some(start.elapsed()))
    }

    /// Closes the current segment durably and begins the next one.
    fn roll(&mut self) -> Result<(), StorageError> {
        // A segment that is not the last is whole: a reader treats damage
        // in it as corruption, never as a torn tail.
        self.commit()?;
        // Its name is durable before the next segment's can be: a power
        // loss never leaves a gap in the sequence.
        if self.dir_dirty {
            self.sync_dir()?;
            self.dir_dirty = false;
        }
        let seq = self.segments.last().copied().unwrap_or(0) + 1;
        let path = self.dir.join(segment_name(seq));
        self.file = self
            .fs
            .create(&path)
            .map_err(|e| StorageError::io("create", &path, e))?;
        self.segments.push(seq);
        self.file_len = 0;
        self.synced_len = 0;
        self.dir_dirty = true;
        self.begin_segment(seq);
        Ok(())
    }

    /// Buffers a segment's header and, in its first batch, a checkpoint of
    /// every group. A new salt ties the segment's batches to it.
    fn begin_segment(&mut self, seq: u64) {
        assert!(
            self.buf.is_empty() && self.batch_at.is_none(),
            "a segment begins once the previous one's batches are written"
        );
        self.salt = new_salt(seq);
        record::put_segment_header(&mut self.buf, seq, self.salt);
        let before = self.buf.len();
        self.batch_at = Some(record::begin_batch(&mut self.buf));
        for (&group, log) in &self.groups {
            record::put_checkpoint(
                &mut self.buf,
                group,
                &log.hard_state,
                log.snapshot,
                log.shape.end(),
            );
            self.unsynced_records += 1;
        }
        self.unsynced_bytes += (self.buf.len() - before) as u64;
    }

    /// Makes everything written so far durable with one `fdatasync`, then
    /// installs the snapshots it made durable and deletes segments that
    /// hold nothing live.
    ///
    /// An error here is fatal: the log is poisoned and the caller must exit
    /// the process (a failed `fsync` cannot be retried safely).
    pub fn sync(&mut self) -> Result<SyncStats, StorageError> {
        self.check()?;
        self.sync_inner().map_err(|e| self.poison(e))
    }

    fn sync_inner(&mut self) -> Result<SyncStats, StorageError> {
        let mut stats = SyncStats {
            bytes: self.unsynced_bytes,
            records: self.unsynced_records,
            ..SyncStats::default()
        };
        if let Some(fsync) = self.commit()? {
            stats.fsync = fsync;
        }
        if self.dir_dirty {
            self.sync_dir()?;
            self.dir_dirty = false;
        }
        self.unsynced_bytes = 0;
        self.unsynced_records = 0;
        self.remove_dropped_snapshots()?;
        self.install_snapshots()?;
        stats.segments_removed = self.purge()?;
        Ok(stats)
    }

    fn sync_dir(&self) -> Result<(), StorageError> {
        self.fs
            .sync_dir(&self.dir)
            .map_err(|e| StorageError::io("fsync directory", &self.dir, e))
    }

    /// Renames each group's newest pending snapshot (its mark now durable)
    /// over `snap-<group>.bin` and deletes older pending ones.
    fn install_snapshots(&mut self) -> Result<(), StorageError> {
        if self.pending_snapshots.is_empty() {
            return Ok(());
        }
        for (group, ids) in std::mem::take(&mut self.pending_snapshots) {
            let Some((&newest, older)) = ids.split_last() else {
                continue;
            };
            for &id in older {
                let path = self.dir.join(pending_snapshot_name(group, id));
                self.fs
                    .remove(&path)
                    .map_err(|e| StorageError::io("remove", &path, e))?;
            }
            let from = self.dir.join(pending_snapshot_name(group, newest));
            let to = self.dir.join(snapshot_name(group));
            self.fs
                .rename(&from, &to)
                .map_err(|e| StorageError::io("rename", &from, e))?;
        }
        self.sync_dir()
    }

    /// Deletes, oldest first, segments older than every group's oldest live
    /// entry. Each deletion is made durable before the next, so a crash
    /// never leaves a gap in the sequence.
    fn purge(&mut self) -> Result<u64, StorageError> {
        let current = self.segments.last().copied().unwrap_or(1);
        let keep_from = self
            .groups
            .values()
            .filter_map(|g| g.shape.oldest_segment())
            .fold(current, u64::min);
        let mut removed = 0;
        while self.segments.first().is_some_and(|&s| s < keep_from) {
            let seq = self.segments[0];
            let path = self.dir.join(segment_name(seq));
            self.fs
                .remove(&path)
                .map_err(|e| StorageError::io("remove", &path, e))?;
            self.sync_dir()?;
            self.segments.remove(0);
            removed += 1;
        }
        Ok(removed)
    }
}

/// Whether segment `seq`, the last of `kept`, is the only one left of a
/// log that had segments before it. Those were deleted only after a sync
/// of a later segment's first batch returned, so its first batch (with its
/// header) was synced: if it is damaged, that is corruption, not a segment
/// that a power loss caught before anything in it was durable.
fn deleted_before(kept: &[u64], seq: u64) -> bool {
    kept.len() == 1 && seq > 1
}

/// Applies one replayed record, as `Recovered::apply` would. A drop
/// record forgets the group; a record of a group after its drop is
/// corruption (ids are never reused).
fn replay_record(
    replay: &mut BTreeMap<u64, Replay>,
    dropped: &mut BTreeSet<u64>,
    rec: Record,
    segment: u64,
    max_snapshot_id: &mut u64,
) -> Result<(), String> {
    let group = match &rec {
        Record::Checkpoint { group, .. }
        | Record::Request { group, .. }
        | Record::Drop { group } => *group,
    };
    if dropped.contains(&group) {
        return Err(format!(
            "a record of group {group} after its drop (group ids are never reused)"
        ));
    }
    match rec {
        Record::Drop { group } => {
            replay.remove(&group);
            dropped.insert(group);
        }
        Record::Checkpoint {
            group,
            hard_state,
            snapshot,
            end,
        } => {
            if let Some(m) = snapshot {
                *max_snapshot_id = (*max_snapshot_id).max(m.id);
            }
            // Only a group's first checkpoint says anything new: later ones
            // repeat what the records before them built.
            replay.entry(group).or_insert_with(|| Replay {
                log: GroupLog {
                    hard_state,
                    snapshot,
                    shape: LogShape::at_checkpoint(snapshot.map_or(0, |m| m.last_slot), end),
                },
                entries: Vec::new(),
            });
        }
        Record::Request {
            group,
            snapshot,
            truncate_from,
            entries,
            hard_state,
        } => {
            let r = replay.entry(group).or_default();
            if let Some(m) = snapshot {
                *max_snapshot_id = (*max_snapshot_id).max(m.id);
                r.log.shape.snapshot(m.last_slot);
                r.log.snapshot = Some(m);
                r.trim();
            }
            if let Some(from) = truncate_from {
                r.log.shape.truncate(from);
                r.trim();
            }
            let taken = r.log.shape.append(&entries, segment).map_err(|gap| {
                format!(
                    "group {group}: entries do not continue the log: expected slot {}, got {}",
                    gap.expected, gap.got
                )
            })?;
            r.entries
                .extend_from_slice(&entries[entries.len() - taken..]);
            if let Some(hs) = hard_state {
                r.log.hard_state = hs;
            }
        }
    }
    Ok(())
}

/// Loads the snapshot that `mark` names: `snap-<group>.bin`, or a pending
/// file whose install a crash interrupted (its mark was durable), which is
/// installed now. Returns the snapshot and whether it was installed.
fn load_snapshot(
    fs: &dyn FileSystem,
    dir: &Path,
    group: u64,
    mark: SnapshotMark,
    pending: &mut BTreeMap<(u64, u64), String>,
) -> Result<(Snapshot, bool), StorageError> {
    let current = dir.join(snapshot_name(group));
    let installed = match pending.remove(&(group, mark.id)) {
        Some(name) => {
            let from = dir.join(name);
            fs.rename(&from, &current)
                .map_err(|e| StorageError::io("rename", &from, e))?;
            fs.sync_dir(dir)
                .map_err(|e| StorageError::io("fsync directory", dir, e))?;
            true
        }
        None => false,
    };
    let data = fs.read(&current).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            StorageError::corrupt(
                &current,
                0,
                format!(
                    "missing; the log names snapshot {} of group {group}",
                    mark.id
                ),
            )
        } else {
            StorageError::io("read", &current, e)
        }
    })?;
    let (header, snap) = record::decode_snapshot_file(&data)
        .map_err(|(offset, reason)| StorageError::corrupt(&current, offset, reason))?;
    if header.group != group || header.id != mark.id || snap.last_slot != mark.last_slot {
        return Err(StorageError::corrupt(
            &current,
            0,
            format!(
                "holds snapshot {} of group {} through slot {}; the log names snapshot {} of group {group} through slot {}",
                header.id, header.group, snap.last_slot, mark.id, mark.last_slot
            ),
        ));
    }
    Ok((snap, installed))
}
