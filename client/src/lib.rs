//! The Meridian client library (`meridian_client`, DESIGN.md §7) and its CLI
//! subcommands.
//!
//! Not yet built: filled when the node runtime lands.
#![deny(missing_docs)]
