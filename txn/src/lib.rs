//! Sans-IO transaction protocol (DESIGN.md §5): the two-phase-commit
//! coordinator and its one-phase fast path, commit timestamp rules and commit
//! wait, FaRM-style OCC validation, read-only transactions and recovery.
//!
//! Not yet built: this crate is filled by the participant and transaction
//! issues that follow the Paxos foundation.
#![deny(missing_docs)]
