//! Meridian's wire protocol (docs/design.md §6): the `.proto` definitions in
//! `proto/meridian.proto`, the tonic/prost code generated from them with
//! `protox` (a pure-Rust protobuf compiler: no system `protoc` is needed),
//! and conversions between the wire messages and the core types of
//! `meridian-txn`.
//!
//! Three services:
//! - [`pb::meridian_server::Meridian`]: the client API — begin, read, scan,
//!   commit, abort, heartbeat, read-only, transaction status, `TT.now()`,
//!   cluster status; and `Calls`, one stream carrying batches of all of
//!   these but status ([`calls`]);
//! - [`pb::admin_server::Admin`]: who waits for whom, membership changes;
//! - [`pb::peer_server::Peer`]: a stream of coalesced message batches from
//!   one node to another, and a hello that checks the cluster id and
//!   samples the peer's clock.
//!
//! Every request carries a [`pb::Header`] with the cluster id and the
//! configuration epoch; errors travel inside responses as a typed
//! [`pb::Error`], converted by [`RemoteError`].
#![deny(missing_docs)]

pub mod calls;
pub mod convert;

pub use convert::RemoteError;

/// The generated messages and services (package `meridian.v1`).
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("meridian.v1");
}

/// Largest gRPC message a node or client accepts or sends: a transaction of
/// [`meridian_txn::api::MAX_TXN_OPERATIONS`] writes of the largest value
/// would be 250 MiB, so requests are bounded well below that and clients
/// split nothing: 64 MiB, with the §6 limits checked before sending.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
