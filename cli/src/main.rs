//! The `meridian` binary: runs Meridian nodes and local clusters, makes
//! their certificates, and reads and writes a running cluster.
//!
//! - `meridian node --config FILE` runs a node (SIGTERM drains it);
//! - `meridian cluster init|run` writes or starts a local cluster;
//! - `meridian cert create-ca|create-node|create-client` makes the
//!   certificates of mutual TLS;
//! - `meridian admin waits-for|change-membership|replace-node|split` operates
//!   a cluster;
//! - the client subcommands (`get`, `put`, `delete`, `scan`, `txn`,
//!   `read-only`, `status`, `txn-status`).
//!
//! Global options go anywhere on the line, and each has an environment
//! variable: `meridian get KEY --endpoints 127.0.0.1:7101 --output json`.

use std::process::ExitCode;

use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};
use meridian_cli::{AdminCommand, ClientCommand, EXIT_USAGE, GlobalArgs};
use meridian_node::certs::CertCommand;
use meridian_node::cli::{ClusterCommand, NodeArgs};

/// The process allocator: mimalloc, whose thread-local free lists suit the
/// many small short-lived buffers of the request path better than glibc's
/// (`meridian-ycsb`, which measures the node, uses it too).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What `meridian --help` says first.
const ABOUT: &str = "Meridian: a distributed, strictly serializable transactional key-value \
store (Multi-Paxos groups, two-phase commit, TrueTime-style commit wait).\n\n\
This one program runs its nodes (`node`, `cluster`), makes their certificates (`cert`), \
operates a cluster (`admin`), and reads and writes it (`get`, `put`, `txn`, ...).";

/// What `meridian --help` says last.
const AFTER_HELP: &str = "Global options may be given anywhere on the line, or set in the \
environment: MERIDIAN_ENDPOINTS, MERIDIAN_OUTPUT, MERIDIAN_TIMEOUT, MERIDIAN_TLS_CA, \
MERIDIAN_TLS_CERT, MERIDIAN_TLS_KEY (MERIDIAN_LOG sets a node's log level).\n\
Exit codes: 0 done; 1 not committed (aborted or refused); 2 bad usage or input, nothing \
sent; 3 outcome of a commit unknown; 4 cluster unavailable or --timeout passed.";

/// The command line.
#[derive(Parser, Debug)]
#[command(name = "meridian", version, about = ABOUT, after_help = AFTER_HELP)]
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
    /// Makes the certificates of mutual TLS: a CA, nodes' and clients'.
    #[command(subcommand)]
    Cert(CertCommand),
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

/// Whether the command line (or the environment) asks for JSON output,
/// looked up without clap, for the errors clap itself reports.
fn json_requested(args: &[std::ffi::OsString]) -> bool {
    let mut json = std::env::var("MERIDIAN_OUTPUT").is_ok_and(|v| v == "json");
    let mut it = args.iter().filter_map(|a| a.to_str());
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        if a == "--output" {
            json = it.next() == Some("json");
        } else if let Some(v) = a.strip_prefix("--output=") {
            json = v == "json";
        }
    }
    json
}

/// Parses the command line; a usage error exits 2, as JSON on stderr under
/// `--output json`.
fn parse() -> Cli {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let parsed = Cli::command()
        .try_get_matches_from(&args)
        .and_then(|mut m| Cli::from_arg_matches_mut(&mut m));
    match parsed {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            let usage = !matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            );
            if usage && json_requested(&args) {
                let text = e.to_string();
                let msg = text.lines().next().unwrap_or_default();
                let msg = msg.trim_start_matches("error: ");
                eprintln!(
                    "{}",
                    serde_json::json!({ "error": msg, "exit_code": EXIT_USAGE })
                );
                std::process::exit(i32::from(EXIT_USAGE));
            }
            e.exit()
        }
    }
}

fn main() -> ExitCode {
    let cli = parse();
    match cli.command {
        Command::Node(args) => {
            init_logging();
            meridian_node::cli::run_node(&args)
        }
        Command::Cluster(ClusterCommand::Init(args)) => meridian_node::cli::cluster_init(&args),
        Command::Cluster(ClusterCommand::Run(args)) => meridian_node::cli::cluster_run(&args),
        Command::Cert(cmd) => meridian_node::certs::run(&cmd),
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
