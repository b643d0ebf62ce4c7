//! The Meridian server (docs/design.md §6): a tokio runtime driving the sans-IO
//! cores, tonic services, WAL and snapshot files, TOML config and the
//! `meridian` binary.
//!
//! Built so far:
//!
//! - [`codec`]: the explicit little-endian encoding of the cores' types, for
//!   the write-ahead log and the peer transport.
//! - [`storage`]: the node's durable storage under the sans-IO Paxos core.
//!   One write-ahead log ([`storage::Wal`]) serves every group the node
//!   hosts, so one `fdatasync` commits all their writes (group commit
//!   across groups). Segment files of CRC32C-framed records, a snapshot
//!   file per group, a torn tail cut on restart and any other damage a
//!   [`storage::StorageError::Corrupt`] naming file and offset; an I/O
//!   error poisons the log and the process must exit. Opening returns,
//!   per group, what `Recovered::apply` of every synced request gives.
//!
//! The runtime, services and config land later.
#![deny(missing_docs)]

pub mod codec;
pub mod storage;
