//! The Meridian server (docs/design.md §6): the driver that runs the sans-IO
//! cores for real — a write-ahead log with group commit, tonic gRPC
//! services, peer streams, a clock check, metrics — and the configuration
//! of a node.
//!
//! - [`config`]: a node's TOML configuration, checked whole, and the
//!   default layout of a local cluster;
//! - [`autosplit`]: automatic range splits, by size and by load;
//! - [`runtime`]: the driver loop — one thread steps every group replica of
//!   the node, one thread owns the log;
//! - [`storage`]: the write-ahead log (CRC32C records, one `fdatasync` for
//!   every group's writes, snapshots in their own files, torn-tail cut,
//!   corruption named by file and offset, a locked data directory);
//! - [`codec`]: the explicit little-endian encoding of the cores' types, for
//!   the log and the peer transport;
//! - [`identity`]: the cluster and node a data directory belongs to,
//!   recorded at first start and checked at every start;
//! - [`liveness`]: when this node last heard from each peer;
//! - [`members`]: the nodes this node knows, those added at run time
//!   recorded in the data directory;
//! - [`peer`]: streams of coalesced message batches between nodes and the
//!   clock check;
//! - [`service`], [`admin`]: the client and admin gRPC services;
//! - [`server`]: [`Node::start`] and drain;
//! - [`metrics`]: Prometheus text metrics, on an endpoint that also
//!   answers [`health`] checks (`/health`, `/ready`) and serves the web
//!   [`console`] (`/console`, `/console/api`).
//! - [`tls`]: mutual TLS: the check of a node's own certificate and the
//!   handshakes; [`certs`]: the certificates `meridian cert` makes.
#![deny(missing_docs)]

pub mod admin;
pub mod autosplit;
pub mod certs;
pub mod cli;
pub mod codec;
pub mod config;
pub mod console;
mod durable;
pub mod health;
pub mod identity;
pub mod liveness;
pub mod local;
pub mod members;
pub mod metrics;
pub mod peer;
pub mod runtime;
pub mod server;
pub mod service;
pub mod status;
pub mod storage;
mod storage_glue;
pub mod tls;

pub use config::NodeConfig;
pub use server::{Node, StartError, StartOptions};
