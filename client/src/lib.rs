//! The Meridian client library (`meridian_client`, docs/design.md §7) and its CLI
//! subcommands.
//!
//! Not yet built: filled when the node runtime lands.
#![deny(missing_docs)]
