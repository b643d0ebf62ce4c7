//! The Meridian server (docs/design.md §6): a tokio runtime driving the sans-IO
//! cores, tonic services, WAL and snapshot files, TOML config and the
//! `meridian` binary.
//!
//! Built so far:
//!
//! - [`codec`]: the explicit little-endian encoding of the cores' types, for
//!   the write-ahead log and the peer transport.
//!
//! The runtime, services and config land later.
#![deny(missing_docs)]

pub mod codec;
