//! The on-disk formats: segment headers, batches, framed records and their
//! payloads, and snapshot files.
//!
//! A segment (format version 3) is a [`SEGMENT_HEADER_BYTES`] header
//! (magic, version, the segment's sequence number, a random salt, CRC32C)
//! and then batches. A batch is what one write and one `fdatasync` of the
//! log made durable: a [`BATCH_HEADER_BYTES`] header (magic, body length,
//! the batch's sequence number, the segment's salt, the body's CRC32C, the
//! header's CRC32C) and a body of records, each
//! `[len u32][crc32c u32][payload]`, the CRC over the payload. A payload is
//! `[group u32][kind u8][body]`. Everything is little-endian.
//!
//! Version 2 differs only in the payload's group id, 16 bits wide. This
//! build reads version 2 segments (a log written by the build before) and
//! writes version 3: a directory's older segments may be version 2 and
//! its newer ones version 3 until compaction deletes the old ones. Version
//! 1 (no batches) is refused.
//!
//! Batch sequence numbers rise by one from batch to batch across segments,
//! and batch `k + 1` is written only once batch `k`'s sync has returned.
//! So an intact batch with a higher sequence number than a damaged one
//! proves that the damaged one was synced (docs/design.md §6). The salt
//! ties a batch to its segment's life: bytes that merely look like a batch
//! (inside a value, or left from an earlier file) do not carry it.

use bytes::{BufMut, BytesMut};
use meridian_paxos::{Entry, HardState, PersistRequest, Slot, Snapshot};

use crate::codec::{self, DecodeError, Reader};

/// Marks a segment file.
pub(crate) const SEGMENT_MAGIC: [u8; 4] = *b"MWAL";
/// The segment format this build writes (and reads): group ids in 32 bits.
/// Version 1 had no batches; this build refuses it.
pub(crate) const SEGMENT_VERSION: u32 = 3;
/// The older segment format this build still reads: group ids in 16 bits.
pub(crate) const SEGMENT_VERSION_GROUP_U16: u32 = 2;
/// Magic, version, sequence number, salt, CRC32C of the fields before it.
pub(crate) const SEGMENT_HEADER_BYTES: usize = 4 + 4 + 8 + 8 + 4;
/// Marks a batch.
pub(crate) const BATCH_MAGIC: [u8; 4] = *b"MBAT";
/// Magic, body length, batch sequence number, salt, body CRC32C, and the
/// CRC32C of those fields.
pub(crate) const BATCH_HEADER_BYTES: usize = 4 + 4 + 8 + 8 + 4 + 4;
/// Length and CRC before each payload.
pub(crate) const RECORD_HEADER_BYTES: usize = 4 + 4;
/// The smallest payload of any version read: a (16-bit) group id and a
/// kind. Rules out an all-zero record (length 0, and CRC32C of nothing is
/// 0) in a zero-filled tail.
pub(crate) const MIN_PAYLOAD_BYTES: usize = 2 + 1;
/// The largest payload a reader accepts; a length above it is damage. A
/// transaction is bounded well below (1000 writes of ≤ 256 KiB values).
pub(crate) const MAX_PAYLOAD_BYTES: usize = 1 << 30;

/// Marks a snapshot file.
pub(crate) const SNAPSHOT_MAGIC: [u8; 4] = *b"MSNP";
/// The snapshot file format this build writes and reads.
pub(crate) const SNAPSHOT_VERSION: u32 = 1;
/// Magic, version, group, snapshot id, body length, body CRC32C.
pub(crate) const SNAPSHOT_HEADER_BYTES: usize = 4 + 4 + 8 + 8 + 8 + 4;

const KIND_REQUEST: u8 = 1;
const KIND_CHECKPOINT: u8 = 2;
const KIND_DROP: u8 = 3;

const HAS_SNAPSHOT: u8 = 1;
const HAS_TRUNCATE: u8 = 2;
const HAS_HARD_STATE: u8 = 4;

/// What the log records of a group's snapshot; the snapshot itself is in
/// its own file, whose header carries the same id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SnapshotMark {
    /// Unique within the data directory, rising.
    pub(crate) id: u64,
    /// The snapshot's last slot.
    pub(crate) last_slot: Slot,
}

/// A decoded payload.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Record {
    /// One `PersistRequest` of one group, its snapshot as a mark.
    Request {
        group: u64,
        snapshot: Option<SnapshotMark>,
        truncate_from: Option<Slot>,
        entries: Vec<Entry>,
        hard_state: Option<HardState>,
    },
    /// A group's state when a segment began, so that older segments never
    /// hold the only copy of a hard state or snapshot mark.
    Checkpoint {
        group: u64,
        hard_state: HardState,
        snapshot: Option<SnapshotMark>,
        /// The log's last slot then.
        end: Slot,
    },
    /// The node dropped its replica of a group: the group's earlier
    /// records are dead, and its id is never used again.
    Drop {
        /// The group.
        group: u64,
    },
}

/// Appends a segment header (of [`SEGMENT_VERSION`]).
pub(crate) fn put_segment_header(buf: &mut BytesMut, seq: u64, salt: u64) {
    let start = buf.len();
    buf.put_slice(&SEGMENT_MAGIC);
    buf.put_u32_le(SEGMENT_VERSION);
    buf.put_u64_le(seq);
    buf.put_u64_le(salt);
    let crc = crc32c::crc32c(&buf[start..]);
    buf.put_u32_le(crc);
}

/// Why a segment header cannot be used.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BadSegmentHeader {
    /// Short, or its magic or CRC is wrong: never written whole, or damaged.
    Damaged(String),
    /// A whole header of a format this build does not read.
    Unsupported(u32),
    /// A whole header that names another segment.
    Misnamed(u64),
}

fn le_u32(data: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
}

fn le_u64(data: &[u8], at: usize) -> u64 {
    u64::from_le_bytes([
        data[at],
        data[at + 1],
        data[at + 2],
        data[at + 3],
        data[at + 4],
        data[at + 5],
        data[at + 6],
        data[at + 7],
    ])
}

/// A segment header as read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    /// The segment's format version: [`SEGMENT_VERSION`] or
    /// [`SEGMENT_VERSION_GROUP_U16`].
    pub(crate) version: u32,
    /// The salt its batches carry.
    pub(crate) salt: u64,
}

/// Reads the header of segment `seq` at the start of `data`.
pub(crate) fn read_segment_header(
    data: &[u8],
    seq: u64,
) -> Result<SegmentHeader, BadSegmentHeader> {
    if data.len() >= 8 && data[..4] == SEGMENT_MAGIC && le_u32(data, 4) == 1 {
        // Version 1 had a 16-byte header without a CRC.
        return Err(BadSegmentHeader::Unsupported(1));
    }
    if data.len() < SEGMENT_HEADER_BYTES {
        return Err(BadSegmentHeader::Damaged(format!(
            "{} bytes, less than a segment header",
            data.len()
        )));
    }
    let magic = &data[..4];
    if magic != SEGMENT_MAGIC {
        return Err(BadSegmentHeader::Damaged(format!(
            "not a segment header: magic {magic:?}"
        )));
    }
    let stored = le_u32(data, SEGMENT_HEADER_BYTES - 4);
    let actual = crc32c::crc32c(&data[..SEGMENT_HEADER_BYTES - 4]);
    if stored != actual {
        return Err(BadSegmentHeader::Damaged(format!(
            "segment header CRC32C mismatch: stored {stored:#010x}, computed {actual:#010x}"
        )));
    }
    let version = match le_u32(data, 4) {
        v @ (SEGMENT_VERSION | SEGMENT_VERSION_GROUP_U16) => v,
        v => return Err(BadSegmentHeader::Unsupported(v)),
    };
    match le_u64(data, 8) {
        s if s == seq => Ok(SegmentHeader {
            version,
            salt: le_u64(data, 16),
        }),
        s => Err(BadSegmentHeader::Misnamed(s)),
    }
}

/// Appends room for a batch header, filled in by [`finish_batch`] once the
/// body is complete; returns where it is.
pub(crate) fn begin_batch(buf: &mut BytesMut) -> usize {
    let at = buf.len();
    buf.put_bytes(0, BATCH_HEADER_BYTES);
    at
}

/// Fills in the header at `at` of the batch whose body runs to the end of
/// `buf`.
pub(crate) fn finish_batch(buf: &mut [u8], at: usize, seq: u64, salt: u64) {
    let body = &buf[at + BATCH_HEADER_BYTES..];
    let len = u32::try_from(body.len()).expect("batches are bounded by MAX_BUFFERED_BYTES");
    let body_crc = crc32c::crc32c(body);
    let head = &mut buf[at..at + BATCH_HEADER_BYTES];
    head[..4].copy_from_slice(&BATCH_MAGIC);
    head[4..8].copy_from_slice(&len.to_le_bytes());
    head[8..16].copy_from_slice(&seq.to_le_bytes());
    head[16..24].copy_from_slice(&salt.to_le_bytes());
    head[24..28].copy_from_slice(&body_crc.to_le_bytes());
    let head_crc = crc32c::crc32c(&head[..28]);
    head[28..32].copy_from_slice(&head_crc.to_le_bytes());
}

/// How reading a batch at an offset went.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Batch<'a> {
    /// A whole batch with good CRCs.
    Intact {
        /// Its sequence number.
        seq: u64,
        /// Its records.
        body: &'a [u8],
        /// Where the next batch starts.
        next: usize,
    },
    /// Not a whole batch with good CRCs: torn, zeroed, or damaged.
    Bad(String),
}

/// Reads the batch at `at`; with `salt`, a batch of another salt is bad.
pub(crate) fn read_batch(data: &[u8], at: usize, salt: Option<u64>) -> Batch<'_> {
    let rest = data.len().saturating_sub(at);
    if rest < BATCH_HEADER_BYTES {
        return Batch::Bad(format!("{rest} bytes, less than a batch header"));
    }
    let head = &data[at..at + BATCH_HEADER_BYTES];
    if head[..4] != BATCH_MAGIC {
        return Batch::Bad(if head.iter().all(|&b| b == 0) {
            "zeroed batch header".to_owned()
        } else {
            format!("no batch header: magic {:?}", &head[..4])
        });
    }
    let stored = le_u32(head, 28);
    let actual = crc32c::crc32c(&head[..28]);
    if stored != actual {
        return Batch::Bad(format!(
            "batch header CRC32C mismatch: stored {stored:#010x}, computed {actual:#010x}"
        ));
    }
    let len = le_u32(head, 4) as usize;
    let seq = le_u64(head, 8);
    let batch_salt = le_u64(head, 16);
    if salt.is_some_and(|s| s != batch_salt) {
        return Batch::Bad(format!(
            "batch {seq} of another segment (salt {batch_salt:#x})"
        ));
    }
    if len > rest - BATCH_HEADER_BYTES {
        return Batch::Bad(format!(
            "batch {seq} of {len} bytes runs past the end of the file"
        ));
    }
    let start = at + BATCH_HEADER_BYTES;
    let body = &data[start..start + len];
    let stored = le_u32(head, 24);
    let actual = crc32c::crc32c(body);
    if stored != actual {
        return Batch::Bad(format!(
            "batch {seq}: body CRC32C mismatch: stored {stored:#010x}, computed {actual:#010x}"
        ));
    }
    Batch::Intact {
        seq,
        body,
        next: start + len,
    }
}

/// Where the bytes of `data` end once its trailing zeros are dropped.
pub(crate) fn trim_zeros(data: &[u8]) -> usize {
    const BLOCK: usize = 4096;
    static ZEROS: [u8; BLOCK] = [0; BLOCK];
    let mut end = data.len();
    // Whole blocks compare with `memcmp`, fast even unoptimised.
    while end >= BLOCK && data[end - BLOCK..end] == ZEROS {
        end -= BLOCK;
    }
    while end > 0 && data[end - 1] == 0 {
        end -= 1;
    }
    end
}

/// The first intact batch that starts at or after `from`, carries `salt`
/// (any salt if `None`) and a sequence number above `after` (any if
/// `None`): `(offset, sequence number)`. If one follows damage, the damage
/// was synced (its batch's sync returned before this batch was written).
pub(crate) fn intact_batch_after(
    data: &[u8],
    from: usize,
    salt: Option<u64>,
    after: Option<u64>,
) -> Option<(usize, u64)> {
    // A batch starts with its magic, before the zero-filled end.
    let end = trim_zeros(data).min(data.len().checked_sub(BATCH_HEADER_BYTES)? + 1);
    let mut i = from;
    while i < end {
        let next = data[i..end].iter().position(|&b| b == BATCH_MAGIC[0])?;
        i += next;
        if data[i..i + 4] == BATCH_MAGIC {
            if let Batch::Intact { seq, .. } = read_batch(data, i, salt) {
                if after.is_none_or(|a| seq > a) {
                    return Some((i, seq));
                }
            }
        }
        i += 1;
    }
    None
}

/// Appends a framed record (of [`SEGMENT_VERSION`]) whose payload `body`
/// writes after the group and kind.
fn put_record(buf: &mut BytesMut, group: u64, kind: u8, body: impl FnOnce(&mut BytesMut)) {
    let start = buf.len();
    buf.put_u64_le(0); // length and CRC, filled below
    let group = u32::try_from(group).expect("group ids are checked against MAX_GROUP_ID");
    buf.put_u32_le(group);
    buf.put_u8(kind);
    body(buf);
    let payload = &buf[start + RECORD_HEADER_BYTES..];
    let len = u32::try_from(payload.len()).expect("records are bounded by MAX_PAYLOAD_BYTES");
    let crc = crc32c::crc32c(payload);
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

fn put_mark(buf: &mut BytesMut, m: SnapshotMark) {
    buf.put_u64_le(m.id);
    buf.put_u64_le(m.last_slot);
}

/// Appends a request record: `entries` are those of `req` the log takes.
pub(crate) fn put_request(
    buf: &mut BytesMut,
    group: u64,
    snapshot: Option<SnapshotMark>,
    req: &PersistRequest,
    entries: &[Entry],
) {
    put_record(buf, group, KIND_REQUEST, |buf| {
        let mut flags = 0;
        if snapshot.is_some() {
            flags |= HAS_SNAPSHOT;
        }
        if req.truncate_from.is_some() {
            flags |= HAS_TRUNCATE;
        }
        if req.hard_state.is_some() {
            flags |= HAS_HARD_STATE;
        }
        buf.put_u8(flags);
        if let Some(m) = snapshot {
            put_mark(buf, m);
        }
        if let Some(from) = req.truncate_from {
            buf.put_u64_le(from);
        }
        codec::encode_entries(entries, buf);
        if let Some(hs) = &req.hard_state {
            codec::encode_hard_state(hs, buf);
        }
    });
}

/// Appends a checkpoint record.
pub(crate) fn put_checkpoint(
    buf: &mut BytesMut,
    group: u64,
    hard_state: &HardState,
    snapshot: Option<SnapshotMark>,
    end: Slot,
) {
    put_record(buf, group, KIND_CHECKPOINT, |buf| {
        codec::encode_hard_state(hard_state, buf);
        match snapshot {
            None => buf.put_u8(0),
            Some(m) => {
                buf.put_u8(1);
                put_mark(buf, m);
            }
        }
        buf.put_u64_le(end);
    });
}

/// Appends a drop record: `group`'s replica is gone from this node.
pub(crate) fn put_drop(buf: &mut BytesMut, group: u64) {
    put_record(buf, group, KIND_DROP, |_| {});
}

/// How reading a record at an offset went.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame<'a> {
    /// A record with a good CRC; the next one starts at `next`.
    Good { payload: &'a [u8], next: usize },
    /// Not a whole record with a good CRC: torn, or damaged.
    Bad(String),
}

/// Reads the framed record at `at` (which must be before the end).
pub(crate) fn read_frame(data: &[u8], at: usize) -> Frame<'_> {
    let rest = data.len() - at;
    if rest < RECORD_HEADER_BYTES {
        return Frame::Bad(format!("{rest} bytes, less than a record header"));
    }
    let word = |i: usize| u32::from_le_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
    let len = word(at) as usize;
    let crc = word(at + 4);
    if !(MIN_PAYLOAD_BYTES..=MAX_PAYLOAD_BYTES).contains(&len) {
        return Frame::Bad(format!("record length {len} out of bounds"));
    }
    if len > rest - RECORD_HEADER_BYTES {
        return Frame::Bad(format!(
            "record of {len} bytes runs past the end of the file"
        ));
    }
    let start = at + RECORD_HEADER_BYTES;
    let payload = &data[start..start + len];
    let actual = crc32c::crc32c(payload);
    if actual != crc {
        return Frame::Bad(format!(
            "CRC32C mismatch: stored {crc:#010x}, computed {actual:#010x}"
        ));
    }
    Frame::Good {
        payload,
        next: start + len,
    }
}

fn read_mark(r: &mut Reader<'_>) -> Result<SnapshotMark, DecodeError> {
    Ok(SnapshotMark {
        id: r.u64("snapshot id")?,
        last_slot: r.u64("snapshot last_slot")?,
    })
}

/// Decodes a payload of a segment of format `version` (one that
/// [`read_segment_header`] accepted).
pub(crate) fn decode_record(payload: &[u8], version: u32) -> Result<Record, DecodeError> {
    let mut r = Reader::new(payload);
    let group = match version {
        SEGMENT_VERSION_GROUP_U16 => u64::from(r.u16("group")?),
        _ => u64::from(r.u32("group")?),
    };
    let record = match r.u8("record kind")? {
        KIND_REQUEST => {
            let flags = r.u8("flags")?;
            if flags & !(HAS_SNAPSHOT | HAS_TRUNCATE | HAS_HARD_STATE) != 0 {
                return Err(DecodeError::Invalid("request flags"));
            }
            let snapshot = match flags & HAS_SNAPSHOT {
                0 => None,
                _ => Some(read_mark(&mut r)?),
            };
            let truncate_from = match flags & HAS_TRUNCATE {
                0 => None,
                _ => Some(r.u64("truncate_from")?),
            };
            let entries = r.entries()?;
            let hard_state = match flags & HAS_HARD_STATE {
                0 => None,
                _ => Some(r.hard_state()?),
            };
            Record::Request {
                group,
                snapshot,
                truncate_from,
                entries,
                hard_state,
            }
        }
        KIND_CHECKPOINT => {
            let hard_state = r.hard_state()?;
            let snapshot = match r.u8("snapshot presence")? {
                0 => None,
                1 => Some(read_mark(&mut r)?),
                _ => return Err(DecodeError::Invalid("snapshot presence")),
            };
            Record::Checkpoint {
                group,
                hard_state,
                snapshot,
                end: r.u64("checkpoint end")?,
            }
        }
        KIND_DROP if version != SEGMENT_VERSION_GROUP_U16 => Record::Drop { group },
        _ => return Err(DecodeError::Invalid("record kind")),
    };
    r.finish()?;
    Ok(record)
}

/// A whole snapshot file: header, then the encoded snapshot.
pub(crate) fn encode_snapshot_file(group: u64, id: u64, snap: &Snapshot) -> BytesMut {
    let mut body = BytesMut::with_capacity(snap.data.len() + 128);
    codec::encode_snapshot(snap, &mut body);
    let mut buf = BytesMut::with_capacity(SNAPSHOT_HEADER_BYTES + body.len());
    buf.put_slice(&SNAPSHOT_MAGIC);
    buf.put_u32_le(SNAPSHOT_VERSION);
    buf.put_u64_le(group);
    buf.put_u64_le(id);
    buf.put_u64_le(body.len() as u64);
    buf.put_u32_le(crc32c::crc32c(&body));
    buf.put_slice(&body);
    buf
}

/// A snapshot file's header, as read.
#[derive(Debug)]
pub(crate) struct SnapshotHeader {
    pub(crate) group: u64,
    pub(crate) id: u64,
}

/// Decodes a snapshot file; the error names the offset of the damage.
pub(crate) fn decode_snapshot_file(
    data: &[u8],
) -> Result<(SnapshotHeader, Snapshot), (u64, String)> {
    let head = data.get(..SNAPSHOT_HEADER_BYTES).ok_or_else(|| {
        (
            0,
            format!("{} bytes, less than a snapshot header", data.len()),
        )
    })?;
    let mut r = Reader::new(head);
    let mut field = |what: &'static str| r.u64(what).map_err(|e| (0, e.to_string()));
    let magic_version = field("magic and version")?;
    if magic_version.to_le_bytes()[..4] != SNAPSHOT_MAGIC {
        return Err((0, "not a snapshot file".to_owned()));
    }
    let version = (magic_version >> 32) as u32;
    if version != SNAPSHOT_VERSION {
        return Err((4, format!("unknown snapshot version {version}")));
    }
    let group = field("group")?;
    let id = field("snapshot id")?;
    let len = field("body length")?;
    let crc = r.u32("body crc").map_err(|e| (0, e.to_string()))?;
    let body = &data[SNAPSHOT_HEADER_BYTES..];
    if body.len() as u64 != len {
        return Err((
            SNAPSHOT_HEADER_BYTES as u64,
            format!("body is {} bytes, header says {len}", body.len()),
        ));
    }
    let actual = crc32c::crc32c(body);
    if actual != crc {
        return Err((
            SNAPSHOT_HEADER_BYTES as u64,
            format!("CRC32C mismatch: stored {crc:#010x}, computed {actual:#010x}"),
        ));
    }
    let snap = codec::decode_snapshot(body).map_err(|e| {
        (
            SNAPSHOT_HEADER_BYTES as u64,
            format!("undecodable snapshot: {e}"),
        )
    })?;
    Ok((SnapshotHeader { group, id }, snap))
}
