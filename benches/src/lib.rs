//! Meridian's benchmarks (docs/design.md §8): the `meridian-ycsb` binary
//! (YCSB A–F and transactional workloads against an embedded cluster) and
//! the cross-crate criterion benches. The per-core criterion benches live
//! with their crates (`paxos/benches`, `participant/benches`,
//! `txn/benches`).
//!
//! Not yet built: `meridian-ycsb` and the cross-crate benches land with the
//! node runtime; this crate holds only this documentation.
#![deny(missing_docs)]
