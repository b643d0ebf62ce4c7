//! Meridian's wire protocol (docs/design.md §6): `.proto` definitions and the
//! tonic/prost code generated from them with `protox` (no system `protoc`).
//!
//! Not yet built: filled when the node runtime lands.
#![deny(missing_docs)]
