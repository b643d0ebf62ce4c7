//! The `meridian` binary: for now the client subcommands of
//! `meridian_client::cli` (`get`, `put`, `delete`, `scan`, `txn`,
//! `read-only`, `status`, `txn-status`). Global options come before the
//! subcommand: `meridian --endpoints 127.0.0.1:7000 --output json get KEY`.
//!
//! The server's subcommands (`node`, `cluster`, `admin`) join these in a
//! top-level enum that flattens [`ClientCommand`]
//! (`#[command(flatten)] Client(ClientCommand)`).

use std::process::ExitCode;

use clap::Parser;
use meridian_client::cli::{ClientCommand, GlobalArgs};

/// Meridian: a distributed transaction engine.
#[derive(Parser, Debug)]
#[command(name = "meridian", version, about)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: ClientCommand,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    meridian_client::cli::run(&cli.global, cli.command).await
}
