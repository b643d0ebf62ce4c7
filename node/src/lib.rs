//! The Meridian server (docs/design.md §6): a tokio runtime driving the sans-IO
//! cores, tonic services, WAL and snapshot files, TOML config and the
//! `meridian` binary.
//!
//! Not yet built: filled when the node runtime lands.
#![deny(missing_docs)]
