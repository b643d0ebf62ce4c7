//! The range directory (docs/design.md, "The range directory"): which
//! group serves which key range, with its replicas and generation, kept as
//! data in the system keyspace and changed only by transactions; the
//! cluster-wide allocation of group ids; and the operator's split
//! ([`Client::split`], `meridian admin split KEY`).
//!
//! # Layout
//! Under [`meridian_txn::api::SYSTEM_KEY_PREFIX`]:
//! - `dir/range/<group id, 8 bytes big-endian>` → a [`DirectoryRecord`]
//!   (the group's descriptor and replicas);
//! - `dir/next-group-id` → the next group id to hand out (8 bytes
//!   big-endian).
//!
//! An absent record means the bootstrap layout from the nodes'
//! configuration (generation 1, as every node's `Status` reports it); an
//! absent counter means one above the largest group id the cluster
//! reports. The system keyspace is the first stretch of the key order and
//! a split key inside it is refused, so it lives in one range, whose group
//! (the one whose range starts at the empty key) never changes: the
//! directory is always found where the bootstrap layout puts it.
//!
//! # Ids
//! [`Client::allocate_group_id`] is a read-write transaction that reads
//! the counter and writes it plus one: two concurrent allocations conflict
//! on the counter (wound-wait or OCC makes one retry) and get different
//! ids. An id is never handed out twice; a split that fails after its id
//! was allocated wastes it (the log's records name groups by id, so a
//! reused id could replay a dropped group's records).

use bytes::{BufMut, Bytes, BytesMut};
use meridian_participant::RangeDescriptor;
use meridian_participant::mvcc::MAX_SCAN_ROWS;
use meridian_txn::api::{SYSTEM_KEY_PREFIX, check_split_key};
use meridian_txn::{GroupId, ReadAt, ReadOp, ReadResult};

use crate::{Client, Error, NodeId, TxnOptions, show_bytes};

/// The directory's keys, below [`SYSTEM_KEY_PREFIX`].
const DIRECTORY_KEYS: &[u8] = b"dir/";

/// The directory records' key prefix, below [`DIRECTORY_KEYS`].
const RANGE_RECORDS: &[u8] = b"range/";

/// The counter's key, below [`DIRECTORY_KEYS`].
const NEXT_GROUP_ID: &[u8] = b"next-group-id";

/// The encoding of a [`DirectoryRecord`]'s value; a record of another
/// version is refused, not guessed at.
pub const RECORD_FORMAT_VERSION: u8 = 1;

/// The key of `group`'s directory record.
pub fn range_record_key(group: GroupId) -> Bytes {
    let mut k = BytesMut::new();
    k.put_slice(SYSTEM_KEY_PREFIX);
    k.put_slice(DIRECTORY_KEYS);
    k.put_slice(RANGE_RECORDS);
    k.put_u64(group);
    k.freeze()
}

/// The `[start, end)` of every directory record's key.
fn range_records_span() -> (Bytes, Bytes) {
    let mut start = BytesMut::new();
    start.put_slice(SYSTEM_KEY_PREFIX);
    start.put_slice(DIRECTORY_KEYS);
    start.put_slice(RANGE_RECORDS);
    let start = start.freeze();
    let mut end = start.to_vec();
    // "range/" → "range0": just past every key with the prefix.
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    (start, Bytes::from(end))
}

/// The key of the group id counter.
pub fn next_group_id_key() -> Bytes {
    let mut k = BytesMut::new();
    k.put_slice(SYSTEM_KEY_PREFIX);
    k.put_slice(DIRECTORY_KEYS);
    k.put_slice(NEXT_GROUP_ID);
    k.freeze()
}

/// One group in the directory: its descriptor and the nodes holding its
/// replicas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryRecord {
    /// Its range and generation.
    pub descriptor: RangeDescriptor,
    /// The nodes holding its replicas.
    pub replicas: Vec<NodeId>,
}

/// A directory value that could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("directory record of group {group}: {why}")]
pub struct BadRecord {
    /// The group whose record it is (from its key).
    pub group: GroupId,
    /// What is wrong with it.
    pub why: String,
}

impl DirectoryRecord {
    /// The record's value: version, group, generation, start, end (a flag
    /// then the bytes), replicas; lengths and numbers big-endian.
    pub fn encode(&self) -> Bytes {
        let d = &self.descriptor;
        let mut b = BytesMut::new();
        b.put_u8(RECORD_FORMAT_VERSION);
        b.put_u64(d.group);
        b.put_u64(d.generation);
        b.put_u32(d.start.len() as u32);
        b.put_slice(&d.start);
        match &d.end {
            Some(e) => {
                b.put_u8(1);
                b.put_u32(e.len() as u32);
                b.put_slice(e);
            }
            None => b.put_u8(0),
        }
        b.put_u32(self.replicas.len() as u32);
        for r in &self.replicas {
            b.put_u64(*r);
        }
        b.freeze()
    }

    /// Decodes the value of `group`'s record ([`DirectoryRecord::encode`]).
    pub fn decode(group: GroupId, value: &[u8]) -> Result<DirectoryRecord, BadRecord> {
        let bad = |why: &str| BadRecord {
            group,
            why: why.to_string(),
        };
        let mut r = Reader(value);
        let version = r.u8().ok_or_else(|| bad("empty"))?;
        if version != RECORD_FORMAT_VERSION {
            return Err(bad(&format!(
                "format version {version}, this client reads {RECORD_FORMAT_VERSION}"
            )));
        }
        let truncated = || bad("truncated");
        let stored = r.u64().ok_or_else(truncated)?;
        if stored != group {
            return Err(bad(&format!("names group {stored}")));
        }
        let generation = r.u64().ok_or_else(truncated)?;
        let start = r.bytes().ok_or_else(truncated)?;
        let end = match r.u8().ok_or_else(truncated)? {
            0 => None,
            1 => Some(r.bytes().ok_or_else(truncated)?),
            _ => return Err(bad("bad end flag")),
        };
        let n = r.u32().ok_or_else(truncated)?;
        let mut replicas = Vec::new();
        for _ in 0..n {
            replicas.push(r.u64().ok_or_else(truncated)?);
        }
        if !r.0.is_empty() {
            return Err(bad("trailing bytes"));
        }
        Ok(DirectoryRecord {
            descriptor: RangeDescriptor {
                group,
                start,
                end,
                generation,
            },
            replicas,
        })
    }
}

/// A cursor over a record's bytes.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_be_bytes(b.try_into().expect("8 bytes")))
    }
    fn bytes(&mut self) -> Option<Bytes> {
        let n = self.u32()? as usize;
        self.take(n).map(Bytes::copy_from_slice)
    }
}

/// The group id of a record's key, if it is one.
fn group_of_record_key(key: &[u8]) -> Option<GroupId> {
    let (start, _) = range_records_span();
    let id = key.strip_prefix(&start[..])?;
    Some(u64::from_be_bytes(id.try_into().ok()?))
}

/// The directory as read at one timestamp.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Directory {
    /// Every record, by range start.
    pub records: Vec<DirectoryRecord>,
    /// The counter; `None` while no id was ever allocated.
    pub next_group_id: Option<GroupId>,
}

/// A split as [`Client::split`] made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitReport {
    /// The parent's range after the split (`[start, key)`).
    pub left: RangeDescriptor,
    /// The child's range (`[key, end)`).
    pub right: RangeDescriptor,
    /// The nodes holding both halves' replicas.
    pub replicas: Vec<NodeId>,
    /// Whether this call wrote the directory records (false: a newer
    /// generation of a range was already recorded).
    pub recorded: bool,
}

/// A step of [`Client::split`], for progress reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SplitStep {
    /// The range holding the key, as the directory and the cluster say.
    Found {
        /// Its descriptor (generation 1 for a bootstrap range).
        parent: RangeDescriptor,
    },
    /// A child group id was allocated.
    Allocated {
        /// The id.
        child: GroupId,
    },
    /// The parent's leader applied the split.
    Applied {
        /// The parent's range now.
        left: RangeDescriptor,
        /// The child's.
        right: RangeDescriptor,
    },
    /// The directory holds both halves.
    Recorded {
        /// Whether this call wrote them.
        written: bool,
    },
}

impl std::fmt::Display for SplitStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SplitStep::Found { parent } => write!(f, "range: {parent}"),
            SplitStep::Allocated { child } => write!(f, "allocated group id {child}"),
            SplitStep::Applied { left, right } => {
                write!(f, "split applied: {left} | {right}")
            }
            SplitStep::Recorded { written: true } => f.write_str("directory updated"),
            SplitStep::Recorded { written: false } => {
                f.write_str("directory already held a newer generation")
            }
        }
    }
}

/// Where the parent of a split at `key` is among `ranges`, or why the
/// split is refused before anything changes: a key in the system keyspace,
/// outside every range, or at the start of its range.
pub fn plan_split(ranges: &[RangeDescriptor], key: &[u8]) -> Result<RangeDescriptor, Error> {
    if let Err(e) = check_split_key(key) {
        return Err(match e {
            meridian_txn::InvalidRequest::SystemKey { .. } => Error::BadSplit(format!(
                "key {} is in the system keyspace, which is never split",
                show_bytes(key)
            )),
            e => Error::BadSplit(e.to_string()),
        });
    }
    let Some(parent) = ranges.iter().find(|d| d.contains(key)) else {
        return Err(Error::BadSplit(format!(
            "no range holds key {}",
            show_bytes(key)
        )));
    };
    if !parent.can_split_at(key) {
        return Err(Error::BadSplit(format!(
            "key {} is the boundary of {parent}; a split key lies strictly inside its range",
            show_bytes(key)
        )));
    }
    Ok(parent.clone())
}

impl Client {
    /// Reads the range directory by a strong read of the system keys (at
    /// one timestamp, in pages), and installs its records in the client's
    /// range map where they are newer than what the client knows.
    pub async fn directory(&self) -> Result<Directory, Error> {
        let (start, end) = range_records_span();
        let mut reads = vec![
            ReadOp::Get(next_group_id_key()),
            ReadOp::Scan {
                start,
                end: Some(end.clone()),
                limit: MAX_SCAN_ROWS,
            },
        ];
        let mut at = ReadAt::Strong;
        let mut dir = Directory::default();
        loop {
            let r = self.read_system(at, reads.clone()).await?;
            let mut rows = Vec::new();
            for res in r.results {
                match res {
                    ReadResult::Value(Some(v)) => {
                        let id: [u8; 8] = v[..].try_into().map_err(|_| {
                            Error::Invalid("the group id counter is not 8 bytes".into())
                        })?;
                        dir.next_group_id = Some(u64::from_be_bytes(id));
                    }
                    ReadResult::Value(None) => {}
                    ReadResult::Rows(page) => rows = page,
                }
            }
            let full = rows.len() >= MAX_SCAN_ROWS;
            let last = rows.last().map(|(k, _)| k.clone());
            for (k, v) in rows {
                let Some(group) = group_of_record_key(&k) else {
                    continue;
                };
                let rec = DirectoryRecord::decode(group, &v)
                    .map_err(|e| Error::Invalid(e.to_string()))?;
                dir.records.push(rec);
            }
            match last {
                Some(last) if full => {
                    let mut next = last.to_vec();
                    next.push(0);
                    at = ReadAt::Exact(r.read_ts);
                    reads = vec![ReadOp::Scan {
                        start: Bytes::from(next),
                        end: Some(end.clone()),
                        limit: MAX_SCAN_ROWS,
                    }];
                }
                _ => break,
            }
        }
        dir.records
            .sort_by(|a, b| a.descriptor.start.cmp(&b.descriptor.start));
        self.inner.install_records(&dir.records);
        Ok(dir)
    }

    /// One read of system keys: the user's checks skipped, no routing
    /// refresh (the directory's group is the bootstrap range at the start
    /// of the keyspace, which never moves).
    async fn read_system(
        &self,
        at: ReadAt,
        reads: Vec<ReadOp>,
    ) -> Result<crate::ReadOnlyResult, Error> {
        self.read_at_once(at, &reads).await
    }

    /// Refreshes the range map: a node's `Status`, then the directory's
    /// newer records. Best effort: a directory that cannot be read now
    /// leaves the map as `Status` gave it.
    pub(crate) async fn refresh_routing(&self) -> Result<(), Error> {
        self.inner.refresh().await?;
        if let Err(e) = self.directory().await {
            tracing::debug!(error = %e, "range directory not read");
        }
        Ok(())
    }

    /// Allocates a new group id, never handed out before, by a read-write
    /// transaction on the directory's counter (an absent counter starts one
    /// above the largest group id the cluster reports).
    pub async fn allocate_group_id(&self) -> Result<GroupId, Error> {
        let base = self
            .groups()
            .iter()
            .map(|g| g.id)
            .max()
            .unwrap_or(0)
            .saturating_add(1);
        let (id, _) = self
            .run_transaction(TxnOptions::default(), true, async move |txn| {
                let key = next_group_id_key();
                let id = match txn.get(key.clone()).await? {
                    Some(v) => u64::from_be_bytes(v[..].try_into().map_err(|_| {
                        Error::Invalid("the group id counter is not 8 bytes".into())
                    })?),
                    None => base,
                };
                if id > meridian_txn::MAX_GROUP_ID {
                    return Err(Error::Invalid(format!(
                        "group ids are exhausted (next {id}, at most {})",
                        meridian_txn::MAX_GROUP_ID
                    )));
                }
                txn.put(key, Bytes::copy_from_slice(&(id + 1).to_be_bytes()))?;
                Ok::<_, Error>(id)
            })
            .await?;
        Ok(id)
    }

    /// Writes `records` to the directory in one transaction, each only if
    /// the directory holds no record of its group at its generation or
    /// newer (compare and set: a lagging writer changes nothing). Answers
    /// whether each was written.
    pub async fn record_ranges(&self, records: &[DirectoryRecord]) -> Result<Vec<bool>, Error> {
        let all = records.to_vec();
        let records = records.to_vec();
        let (written, _) = self
            .run_transaction(TxnOptions::default(), true, async move |txn| {
                let keys: Vec<Bytes> = records
                    .iter()
                    .map(|r| range_record_key(r.descriptor.group))
                    .collect();
                let now = txn.get_many(keys.clone()).await?;
                let mut written = Vec::new();
                for ((rec, key), cur) in records.iter().zip(keys).zip(now) {
                    let cur_gen = match cur {
                        Some(v) => {
                            DirectoryRecord::decode(rec.descriptor.group, &v)
                                .map_err(|e| Error::Invalid(e.to_string()))?
                                .descriptor
                                .generation
                        }
                        None => 0,
                    };
                    let newer = rec.descriptor.generation > cur_gen;
                    if newer {
                        txn.put(key, rec.encode())?;
                    }
                    written.push(newer);
                }
                Ok::<_, Error>(written)
            })
            .await?;
        let installed: Vec<DirectoryRecord> = all
            .into_iter()
            .zip(&written)
            .filter(|(_, w)| **w)
            .map(|(r, _)| r)
            .collect();
        self.inner.install_records(&installed);
        Ok(written)
    }

    /// Splits the range holding `key` at `key` (docs/operations.md, "admin
    /// split"): finds the range (directory and `Status`), allocates a child
    /// group id, asks the range's leader to split (the split happens when
    /// it applies in the parent's log), then records both halves in the
    /// directory, conditional on their generation. `progress` hears each
    /// step.
    ///
    /// [`Error::BadSplit`] (nothing changed) for a key in the system
    /// keyspace, outside every range, on a range's boundary, or during
    /// another change of the same range. A split refused by the leader
    /// after the id was allocated wastes the id (ids are never reused).
    pub async fn split(
        &self,
        key: impl Into<Bytes>,
        progress: &mut (dyn FnMut(&SplitStep) + Send),
    ) -> Result<SplitReport, Error> {
        let key: Bytes = key.into();
        // A malformed key is refused before the cluster is asked.
        plan_split(&[RangeDescriptor::whole(0)], &key)?;
        self.refresh_routing().await?;
        let view = self.inner.view();
        let ranges: Vec<RangeDescriptor> = view
            .groups
            .iter()
            .map(|g| RangeDescriptor {
                group: g.id,
                start: g.start.clone(),
                end: g.end.clone(),
                generation: view.generation(g.id),
            })
            .collect();
        let parent = plan_split(&ranges, &key)?;
        let replicas = view
            .group(parent.group)
            .map(|g| g.replicas.clone())
            .unwrap_or_default();
        progress(&SplitStep::Found {
            parent: parent.clone(),
        });
        let child = self.allocate_group_id().await?;
        progress(&SplitStep::Allocated { child });
        let (left, right) = self.split_at_leader(parent.group, &key, child).await?;
        progress(&SplitStep::Applied {
            left: left.clone(),
            right: right.clone(),
        });
        let replicas = if left.group == parent.group {
            replicas
        } else {
            // The node split the group holding the key now (the range
            // changed since it was looked up): its replicas.
            self.inner.refresh().await?;
            self.inner
                .view()
                .group(left.group)
                .map(|g| g.replicas.clone())
                .unwrap_or_default()
        };
        // The split has applied: an error from here on says so.
        let applied = |e: Error| {
            let why = |d: String| {
                format!(
                    "the split applied ({left} | {right}) but the directory was not updated: {d}"
                )
            };
            match e {
                Error::Unavailable { detail } => Error::Unavailable {
                    detail: why(detail),
                },
                Error::Timeout(m) => Error::Timeout(why(m)),
                e => e,
            }
        };
        let written = self
            .record_ranges(&[
                DirectoryRecord {
                    descriptor: left.clone(),
                    replicas: replicas.clone(),
                },
                DirectoryRecord {
                    descriptor: right.clone(),
                    replicas: replicas.clone(),
                },
            ])
            .await
            .map_err(applied)?;
        let recorded = written.iter().all(|w| *w);
        progress(&SplitStep::Recorded { written: recorded });
        Ok(SplitReport {
            left,
            right,
            replicas,
            recorded,
        })
    }
}

impl Client {
    /// Asks the leader of `parent` to split its range at `key`, the right
    /// half going to group `child`; answers both halves once the split has
    /// applied at that leader.
    async fn split_at_leader(
        &self,
        parent: GroupId,
        key: &Bytes,
        child: GroupId,
    ) -> Result<(RangeDescriptor, RangeDescriptor), Error> {
        use crate::admin::AdminError;
        match crate::admin::split(self, key.clone(), child).await {
            Ok((left, right)) if left.group == parent && right.group == child => Ok((left, right)),
            Ok((left, right)) => Err(Error::Invalid(format!(
                "the split answered {left} | {right}, not group {parent} and group {child}"
            ))),
            // Refusals of the leader (a key not strictly inside the range,
            // another change of the range in progress) and bad arguments:
            // nothing changed.
            Err(AdminError::Refused(m) | AdminError::Invalid(m)) => {
                Err(Error::BadSplit(format!("{m} (group id {child} is wasted)")))
            }
            Err(e) => Err(Error::Unavailable {
                detail: e.to_string(),
            }),
        }
    }
}
