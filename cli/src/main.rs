//! The `meridian` binary.
//!
//! - `meridian node --config FILE` runs a node (SIGTERM drains it);
//! - `meridian cluster init|run` writes or starts a local cluster;
//! - `meridian admin waits-for|change-membership|replace-node` operates a
//!   cluster ([`meridian_cli::AdminCommand`]);
//! - the client subcommands of `meridian_cli` (`get`, `put`,
//!   `delete`, `scan`, `txn`, `read-only`, `status`, `txn-status`).
//!
//! Global options come before the subcommand:
//! `meridian --endpoints 127.0.0.1:7101 --output json get KEY`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use meridian_cli::{AdminCommand, ClientCommand, GlobalArgs};
use meridian_node::cli::{ClusterCommand, NodeArgs};

/// The process allocator: mimalloc, whose thread-local free lists suit the
/// many small short-lived buffers of the request path better than glibc's
/// (`meridian-ycsb`, which measures the node, uses it too).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Meridian: a distributed transaction engine.
#[derive(Parser, Debug)]
#[command(name = "meridian", version, about)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs a node from its configuration file.
    Node(NodeArgs),
    /// A local cluster: write its configurations, or start it.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Operations on a running cluster.
    #[command(subcommand)]
    Admin(AdminCommand),
    #[command(flatten)]
    Client(ClientCommand),
}

/// Logs go to stderr; `MERIDIAN_LOG` sets the level (error, warn, info,
/// debug, trace; default info).
fn init_logging() {
    let level = std::env::var("MERIDIAN_LOG")
        .ok()
        .and_then(|l| l.parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::INFO);
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Node(args) => {
            init_logging();
            meridian_node::cli::run_node(&args)
        }
        Command::Cluster(ClusterCommand::Init(args)) => meridian_node::cli::cluster_init(&args),
        Command::Cluster(ClusterCommand::Run(args)) => meridian_node::cli::cluster_run(&args),
        Command::Admin(cmd) => runtime().block_on(meridian_cli::run_admin(&cli.global, cmd)),
        Command::Client(cmd) => runtime().block_on(meridian_cli::run(&cli.global, cmd)),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("meridian: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    }
}
