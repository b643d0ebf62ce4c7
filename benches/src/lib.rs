//! Meridian's benchmarks (DESIGN.md §8.4): the `meridian-ycsb` binary (YCSB
//! A–F and transactional workloads against an embedded cluster) and the
//! cross-crate criterion benches. The per-core criterion benches live with
//! their crates (`paxos/benches`, `participant/benches`).
//!
//! Not yet built: `meridian-ycsb` lands with the node runtime.
#![deny(missing_docs)]
