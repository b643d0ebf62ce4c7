//! Meridian's benchmarks (docs/design.md §8): the `meridian-ycsb` binary,
//! which runs the YCSB workloads A–F and two transactional workloads
//! (`transfer`, YCSB+T's closed economy, and `ro-sum`, strong read-only
//! transactions over keys of several groups) against an embedded local
//! cluster or an existing one. The per-core criterion benches live with
//! their crates (`paxos/benches`, `participant/benches`, `txn/benches`,
//! `node/benches`).
//!
//! The modules are the binary's parts, public so that its tests and other
//! drivers can reuse them:
//!
//! - [`keys`]: the key format, which spreads records over every group;
//! - [`generator`]: YCSB's request distributions (scrambled zipfian,
//!   uniform, latest) and the insert counter;
//! - [`workload`]: the workloads' operation mixes;
//! - [`stats`]: latency histograms, the per-second timeline, aborts and
//!   retries by reason;
//! - [`store`]: the system under test as the runner drives it, and
//!   Meridian's implementation over [`meridian_client::Client`];
//! - `etcd` (cargo feature `etcd`): the same operations against etcd;
//! - [`runner`]: the load and run phases against a [`store::Store`];
//! - [`report`]: the text report in YCSB's `[SECTION], Metric, Value`
//!   lines and the JSON file;
//! - [`plot`]: throughput and each operation kind's p99 over time as SVG;
//! - [`retries`]: counts the client's retries by reason.
#![deny(missing_docs)]

#[cfg(feature = "etcd")]
pub mod etcd;
pub mod generator;
pub mod keys;
pub mod plot;
pub mod report;
pub mod retries;
pub mod runner;
pub mod stats;
pub mod store;
pub mod workload;
