//! The node's durable storage: one write-ahead log shared by every Paxos
//! group the node hosts (docs/design.md §3, §6).
//!
//! The Paxos core is sans-IO: it emits [`PersistRequest`]s and, on restart,
//! takes back a [`Recovered`]. [`Wal`] is the disk under it. The driver
//! loop hands it every group's requests with [`Wal::write`] and makes them
//! all durable with one [`Wal::sync`] — one `fdatasync` for every group
//! (group commit across groups) — before it reports `Persisted` to the
//! replicas. [`Wal::open`] returns, per group, exactly what
//! `Recovered::apply` of every synced request would give.
//!
//! On disk, in the data directory:
//!
//! - `LOCK`: held with an exclusive `flock` while a [`Wal`] is open.
//! - `wal-<seq>.log`: segments of batches, rolled at
//!   [`WalOptions::segment_bytes`]. A batch is what one write and one
//!   `fdatasync` made durable: a numbered, CRC32C-checked run of
//!   CRC32C-framed records. Each segment starts with a checkpoint of every
//!   group (hard state, snapshot mark, last slot), so a segment whose
//!   entries are all covered by snapshots or truncated can be deleted:
//!   restart time stays bounded as data grows.
//!
//! Recovery's rule: damage is a torn tail (cut) if and only if no intact
//! later batch follows it, because batch `k + 1` is written only once
//! batch `k`'s sync has returned; otherwise it is
//! [`StorageError::Corrupt`] (docs/design.md §6).
//! - `snap-<group>.bin`: each group's latest snapshot, with its own header
//!   and CRC32C; the log holds only a small mark naming it. A new snapshot
//!   is written and fsynced as `snap-<group>.<id>.pending` and renamed over
//!   `snap-<group>.bin` once its mark is durable.
//!
//! Errors from [`Wal::sync`] (and any I/O error) are fatal: the log
//! refuses every later call and the process must exit and recover from
//! disk. Retrying a failed `fsync` is unsafe, because the kernel may have
//! dropped the dirty pages it failed to write (PostgreSQL's lesson).
//!
//! [`PersistRequest`]: meridian_paxos::PersistRequest
//! [`Recovered`]: meridian_paxos::Recovered

use std::io;
use std::path::PathBuf;

mod fs;
mod power_loss;
mod record;
mod shape;
#[doc(hidden)]
pub mod testing;
mod wal;

#[cfg(test)]
mod power_loss_tests;
#[cfg(test)]
mod tests;

pub use fs::{FileSystem, RealFs, WalFile};
pub use wal::{
    MAX_BUFFERED_BYTES, MAX_GROUP_ID, PREALLOCATE_BYTES, RecoveryReport, SEGMENT_BYTES, SyncStats,
    TornTail, Wal, WalOptions,
};

/// Why storage failed. Every variant but [`StorageError::InvalidRequest`],
/// [`StorageError::GroupDropped`] and [`StorageError::GroupOutOfRange`]
/// leaves the [`Wal`] poisoned.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// An I/O call failed.
    #[error("storage I/O error: {op} {file}: {source}")]
    Io {
        /// The operation (`fdatasync`, `write`, `rename`, ...).
        op: &'static str,
        /// The file or directory.
        file: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// A write failed with `ENOSPC`. Nothing after the last successful
    /// [`Wal::sync`] is durable; after space is freed, a restart recovers
    /// exactly what was synced.
    #[error(
        "disk full writing {file}: free space and restart the node; everything synced before is intact"
    )]
    DiskFull {
        /// The file being written.
        file: PathBuf,
    },
    /// Damage that is not a torn tail: data that was once durable cannot be
    /// read. The node refuses to start rather than silently lose it.
    #[error("corrupt storage: {file} at byte offset {offset}: {reason}")]
    Corrupt {
        /// The damaged file.
        file: PathBuf,
        /// Where in it the damage starts.
        offset: u64,
        /// What is wrong there.
        reason: String,
    },
    /// A segment of a log format this build does not read. Meridian is
    /// before 1.0: a release may change the format without converting old
    /// logs (docs/operations.md).
    #[error(
        "{file} is in log format version {version}, which this build does not read (it reads versions {older} and {supported}); move the data directory aside and let the group rebuild the node",
        older = record::SEGMENT_VERSION_GROUP_U16,
        supported = record::SEGMENT_VERSION
    )]
    UnsupportedFormat {
        /// The segment.
        file: PathBuf,
        /// Its format version.
        version: u32,
    },
    /// Another process (or another open [`Wal`]) holds the data directory.
    #[error("data directory {dir} is locked: another process is using it")]
    Locked {
        /// The data directory.
        dir: PathBuf,
    },
    /// An earlier write or sync failed; the log refuses every call since.
    #[error(
        "the write-ahead log is unusable after an earlier failure ({cause}); the process must exit and recover from disk"
    )]
    Poisoned {
        /// The failure that poisoned it.
        cause: String,
    },
    /// A request the log cannot record as `Recovered::apply` defines it.
    #[error("invalid persist request for group {group}: {reason}")]
    InvalidRequest {
        /// The group.
        group: u64,
        /// What is wrong.
        reason: String,
    },
    /// A write for a group this log dropped ([`Wal::drop_group`]): group
    /// ids are never reused.
    #[error("group {group} was dropped from this node; its id is never used again")]
    GroupDropped {
        /// The group id given.
        group: u64,
    },
    /// A group id above [`MAX_GROUP_ID`].
    #[error("group id {group} exceeds the maximum {max}", max = MAX_GROUP_ID)]
    GroupOutOfRange {
        /// The group id given.
        group: u64,
    },
}

impl StorageError {
    /// Classifies an I/O error on `file`: `ENOSPC` becomes
    /// [`StorageError::DiskFull`].
    pub(crate) fn io(
        op: &'static str,
        file: impl Into<PathBuf>,
        source: io::Error,
    ) -> StorageError {
        let file = file.into();
        if source.raw_os_error() == Some(libc::ENOSPC) {
            StorageError::DiskFull { file }
        } else {
            StorageError::Io { op, file, source }
        }
    }

    pub(crate) fn corrupt(
        file: impl Into<PathBuf>,
        offset: u64,
        reason: impl Into<String>,
    ) -> StorageError {
        StorageError::Corrupt {
            file: file.into(),
            offset,
            reason: reason.into(),
        }
    }
}
