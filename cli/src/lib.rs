//! The `meridian` command line (docs/design.md §7, docs/operations.md): the
//! client and admin subcommands, over the client library `meridian-client`;
//! the binary adds the server, local-cluster and certificate subcommands of
//! `meridian-node`.
//!
//! The client subcommands: `get`, `put`, `delete`, `scan`, `txn`,
//! `read-only`, `status`, `txn-status`, and `admin`. The binary parses
//! [`GlobalArgs`] (accepted anywhere on the line, each with an environment
//! variable) and a [`ClientCommand`], and calls [`run`].
//!
//! # Keys and values
//! Keys and values given on the command line are taken as their UTF-8
//! bytes; `put KEY` without a value reads it from stdin, byte for byte. In
//! output, bytes that are valid UTF-8 are printed as text; other bytes are
//! printed escaped (`\xNN`) in text output, and in JSON output as a
//! `key_base64` / `value_base64` field (standard base64) in place of `key`
//! / `value`.
//!
//! # Output
//! `--output text` (the default) is for people, and follows etcdctl: a
//! read of a missing key prints nothing, and labelled reads list only the
//! keys found. `--output json` prints one JSON object per line on stdout:
//! - a read: `{"key": "k", "value": "v"}` (`"value": null` when the key has
//!   no value);
//! - a commit: `{"committed": true, "commit_ts": <ns>, "txn": "<id>"}`;
//! - a read-only read's timestamp: `{"read_ts": <ns>}` after its reads;
//! - `status` and `txn-status`: one object each (see their docs).
//!
//! Errors go to stderr as one line: `error: ...` in text mode,
//! `{"error": "...", "exit_code": N}` in JSON mode (the binary does the same
//! for clap's usage errors).
//!
//! # Exit codes
//! - 0: done (committed, read, answered);
//! - 1: definitely not committed — aborted or refused by the cluster;
//! - 2: bad usage or input, found before connecting (clap's own errors
//!   too; an endpoint that cannot be parsed, or `https://` without
//!   `--tls-ca`; a malformed or empty `txn` script; a key or value over
//!   the limits); nothing was sent. Also a group that does not exist;
//! - 3: the commit's outcome is unknown (it may or may not have committed);
//! - 4: the cluster is unreachable (no endpoint or replica answered), or
//!   `--timeout` passed; nothing was committed.
//!
//! # Deadline
//! `--timeout` bounds a client subcommand as a whole: connecting, retries
//! and calls. A write whose deadline passes after it connected exits 3.
//!
//! # `txn` scripts
//! One operation per line, from FILE or stdin; the grammar is
//! [`TXN_GRAMMAR`] (`meridian txn --help` shows it). The whole script is
//! checked before anything is sent; a malformed line exits 2 with
//! `line N: ...`. The script runs as one transaction (retried as a whole
//! on a retryable abort); its reads see its earlier writes. Each read is
//! printed in order, then the commit.

use std::io::{Read, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use bytes::Bytes;
use clap::{Args, Subcommand, ValueEnum};

mod split;
pub mod status;
use serde_json::{Value as Json, json};

pub use meridian_client::exit::{
    EXIT_NOT_COMMITTED, EXIT_OK, EXIT_OUTCOME_UNKNOWN, EXIT_UNREACHABLE, EXIT_USAGE, exit_code,
};
use meridian_client::{
    CcMode, Client, ClientOptions, ClusterStatus, Committed, Error, ReadOp, ReadResult, Timestamp,
    TlsOptions, TxnOptions, TxnStatus, parse_txn_id,
};

/// Default rows of a `scan`.
pub const DEFAULT_SCAN_LIMIT: usize = 100;

/// Output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// For people.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Options every client subcommand takes: accepted anywhere on the command
/// line, each with an environment variable.
#[derive(Args, Clone, Debug)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Nodes to connect through, comma-separated: `host:port`,
    /// `http://host:port`, or `https://host:port` (with --tls-ca).
    #[arg(
        long,
        env = "MERIDIAN_ENDPOINTS",
        value_delimiter = ',',
        global = true,
        value_name = "HOST:PORT,..."
    )]
    pub endpoints: Vec<String>,
    /// Output format: text for people, json for programs (one object per
    /// line).
    #[arg(
        long,
        value_enum,
        default_value_t = Output::Text,
        env = "MERIDIAN_OUTPUT",
        global = true
    )]
    pub output: Output,
    /// Deadline of the whole command, like `500ms`, `2s`, `1m`: past it the
    /// command gives up (exit 4, or 3 if a commit may have been sent).
    #[arg(
        long,
        default_value = "5s",
        value_parser = parse_duration,
        env = "MERIDIAN_TIMEOUT",
        global = true,
        value_name = "DURATION"
    )]
    pub timeout: Duration,
    /// PEM file of the CA that signed the nodes' certificates (turns TLS
    /// on; needs --tls-cert and --tls-key: the nodes require a client
    /// certificate).
    #[arg(
        long,
        requires = "tls_cert",
        env = "MERIDIAN_TLS_CA",
        global = true,
        value_name = "FILE"
    )]
    pub tls_ca: Option<PathBuf>,
    /// PEM file of this client's certificate (`meridian cert
    /// create-client`).
    #[arg(
        long,
        requires_all = ["tls_ca", "tls_key"],
        env = "MERIDIAN_TLS_CERT",
        global = true,
        value_name = "FILE"
    )]
    pub tls_cert: Option<PathBuf>,
    /// PEM file of this client's private key.
    #[arg(
        long,
        requires = "tls_cert",
        env = "MERIDIAN_TLS_KEY",
        global = true,
        value_name = "FILE"
    )]
    pub tls_key: Option<PathBuf>,
}

/// The grammar of `txn` scripts, shown by `meridian txn --help`.
pub const TXN_GRAMMAR: &str = r#"Script grammar (one operation per line; the whole script runs as one transaction):
  get KEY
  put KEY VALUE
  delete KEY
  # a comment; blank lines are ignored

A KEY is a word without spaces, or a quoted string. A VALUE is a quoted
string, or else the rest of the line after the key (inner spaces kept,
trailing spaces dropped, a '#' included).
Quoted strings use double quotes and these escapes:
  \"  quote    \\  backslash    \n  newline    \t  tab    \r  return
  \xNN  the byte NN (two hex digits)
Example:
  put "a b" "two\nlines"
  put greeting hello world
  get "a b"

The script is checked whole before anything is sent: a malformed line, a key
or value over the limits, or a script with no operation exits 2. Reads see
the script's earlier writes; each read is printed in order, then the commit."#;

/// The client subcommands.
#[derive(Subcommand, Clone, Debug)]
pub enum ClientCommand {
    /// Reads one key (strongly consistent). A missing key prints nothing
    /// in text output (`"value": null` in JSON) and exits 0.
    Get {
        /// The key.
        key: String,
    },
    /// Writes one key in a transaction of its own. Without VALUE, the
    /// value is read from standard input, byte for byte (a trailing
    /// newline is kept: use `printf` or `echo -n`).
    Put {
        /// The key.
        key: String,
        /// The value (default: standard input).
        value: Option<String>,
    },
    /// Deletes one key in a transaction of its own.
    Delete {
        /// The key.
        key: String,
    },
    /// Lists the rows with START <= key < END in key order (strongly
    /// consistent).
    Scan {
        /// First key ("" for the first key there is).
        start: String,
        /// Bound after the last key (default: to the end).
        end: Option<String>,
        /// Most rows to list.
        #[arg(long, default_value_t = DEFAULT_SCAN_LIMIT)]
        limit: usize,
    },
    /// Runs a script of gets, puts and deletes as one transaction.
    #[command(after_help = TXN_GRAMMAR)]
    Txn {
        /// The script file ("-" or none: standard input).
        file: Option<PathBuf>,
        /// Use optimistic concurrency control instead of locking.
        #[arg(long)]
        optimistic: bool,
    },
    /// Reads keys without locks at one timestamp: now (strong), at a given
    /// time (--at), or slightly stale (--max-staleness). Prints each key
    /// found, then the read's timestamp.
    ReadOnly {
        /// The keys.
        #[arg(required = true)]
        keys: Vec<String>,
        /// Read at this timestamp: nanoseconds since the Unix epoch, or
        /// RFC 3339 like 2026-12-07T18:00:00Z.
        #[arg(long, conflicts_with = "max_staleness")]
        at: Option<String>,
        /// Read at most this stale, like `500ms` or `2s` (served by any
        /// replica, not only the leader).
        #[arg(long, value_parser = parse_duration)]
        max_staleness: Option<Duration>,
    },
    /// Shows the cluster as one node sees it: every node's liveness (last
    /// contact, or down), the ranges with their leaders, the answering
    /// node's replicas (role, chosen and applied slots, active
    /// transactions, safe-time lag) and its clock.
    Status {
        /// Ask this node (default: the first endpoint that answers).
        #[arg(long, value_name = "ID")]
        node: Option<u64>,
    },
    /// Tells what became of a transaction, by the id printed at its commit
    /// (`ORIGIN_HEX.SEQ` or `SEQ`).
    TxnStatus {
        /// The transaction id.
        id: String,
    },
}

/// The `meridian admin` subcommands (operations on a running cluster).
#[derive(Subcommand, Clone, Debug)]
pub enum AdminCommand {
    /// Lists who waits for whom in every group each node leads.
    WaitsFor,
    /// Adds or removes one voter of a group (sent to each node until the
    /// group's leader accepts it).
    ChangeMembership {
        /// The group.
        #[arg(long)]
        group: u64,
        /// Node to add as a voter.
        #[arg(long, conflicts_with = "remove", required_unless_present = "remove")]
        add: Option<u64>,
        /// Node to remove.
        #[arg(long)]
        remove: Option<u64>,
    },
    /// Replaces node OLD by node NEW online: tells every node of NEW's
    /// address, then in each group that has OLD as a voter, one change at
    /// a time at its leader, adds NEW, waits for it to catch up, and
    /// removes OLD. NEW must be running, its configuration listing it under
    /// `joining`. Safe to run again after a partial run.
    ReplaceNode {
        /// The node to replace.
        #[arg(long)]
        old: u64,
        /// The node replacing it.
        #[arg(long)]
        new: u64,
        /// NEW's gRPC address, host:port, as the other nodes reach it.
        #[arg(long)]
        address: String,
        /// How long NEW's replica of one group may take to catch up.
        #[arg(long, default_value = "120s", value_parser = parse_duration)]
        catch_up_timeout: Duration,
    },
    /// Splits the range holding KEY at KEY: allocates a group id for the
    /// right half in the range directory, has the range's leader split it
    /// (every replica creates the child on its node), and records both
    /// halves in the directory. Exit 2, nothing changed, for a key in the
    /// system keyspace, outside every range, on a range's boundary, or
    /// during another change of the range.
    Split {
        /// The split key: the argument's bytes, or a quoted string with
        /// the `txn` script's escapes (`'"\x00a"'`).
        key: String,
    },
}

/// Runs an admin subcommand and answers its exit code: 0 done, 1 refused,
/// 2 bad usage, 4 unreachable (or out of time).
pub async fn run_admin(global: &GlobalArgs, cmd: AdminCommand) -> ExitCode {
    ExitCode::from(run_admin_code(global, cmd).await)
}

/// [`run_admin`], answering the exit code as a number.
pub async fn run_admin_code(global: &GlobalArgs, cmd: AdminCommand) -> u8 {
    use meridian_client::admin::{self, AdminError, MembershipChange, Progress};
    let p = Printer {
        output: global.output,
    };
    let fail = |e: AdminError| p.error_message(&e.to_string(), e.exit_code());
    if let Err(m) = check_endpoints(global) {
        return p.error_message(&m, EXIT_USAGE);
    }
    // Check the arguments before connecting: bad ones send nothing.
    let change = match &cmd {
        AdminCommand::ReplaceNode {
            old, new, address, ..
        } => {
            if let Err(e) = admin::check_replace_args(*old, *new, address) {
                return fail(e);
            }
            None
        }
        AdminCommand::ChangeMembership { add, remove, .. } => match (add, remove) {
            (Some(n), None) => Some(MembershipChange::Add(*n)),
            (None, Some(n)) => Some(MembershipChange::Remove(*n)),
            _ => return p.error_message("give exactly one of --add and --remove", EXIT_USAGE),
        },
        AdminCommand::WaitsFor => None,
        AdminCommand::Split { key } => {
            if let Err((m, code)) = split::check(key) {
                return p.error_message(&m, code);
            }
            None
        }
    };
    let client = match Client::connect_with(&global.endpoints, options(global)).await {
        Ok(c) => c,
        Err(e) => return p.error(&e),
    };
    match cmd {
        AdminCommand::Split { key } => {
            let key = split::check(&key).expect("checked above");
            split::run(&p, &client, key).await
        }
        AdminCommand::WaitsFor => {
            let nodes = match admin::waits_for(&client).await {
                Ok(n) => n,
                Err(e) => return fail(e),
            };
            let id = |t: Option<meridian_proto::pb::TxnId>| {
                t.map_or("?".into(), |t| format!("{:x}.{}", t.origin, t.seq))
            };
            for (node, r) in nodes {
                match r {
                    Ok(edges) => {
                        for e in edges {
                            match p.output {
                                Output::Json => p.json(json!({
                                    "node": node,
                                    "group": e.group,
                                    "waiter": id(e.waiter),
                                    "holder": id(e.holder),
                                    "key": text_bytes(&e.key),
                                })),
                                Output::Text => p.line(&format!(
                                    "group {} {} waits for {} on {}",
                                    e.group,
                                    id(e.waiter),
                                    id(e.holder),
                                    text_bytes(&e.key)
                                )),
                            }
                        }
                    }
                    Err(why) => {
                        let _ = writeln!(std::io::stderr(), "node {node}: {why}");
                    }
                }
            }
            EXIT_OK
        }
        AdminCommand::ChangeMembership { group, .. } => {
            let change = change.expect("checked above");
            let groups: Vec<u64> = client.groups().iter().map(|g| g.id).collect();
            if !groups.contains(&group) {
                return p.error_message(
                    &format!("group {group} does not exist (the cluster's groups: {groups:?})"),
                    EXIT_USAGE,
                );
            }
            match admin::change_membership(&client, group, change).await {
                Ok(voters) => {
                    match p.output {
                        Output::Json => p.json(json!({ "group": group, "voters": voters })),
                        Output::Text => p.line(&format!(
                            "group {group}: change proposed; voters now {voters:?}"
                        )),
                    }
                    EXIT_OK
                }
                Err(e) => fail(e),
            }
        }
        AdminCommand::ReplaceNode {
            old,
            new,
            address,
            catch_up_timeout,
        } => {
            let opts = admin::ReplaceOptions {
                catch_up_timeout,
                ..admin::ReplaceOptions::default()
            };
            let output = p.output;
            let mut show = move |ev: Progress| {
                let p = Printer { output };
                match (output, ev) {
                    (
                        Output::Json,
                        Progress::Told {
                            node,
                            already_known,
                        },
                    ) => p.json(json!({
                        "event": "told", "node": node, "already_known": already_known,
                    })),
                    (
                        Output::Text,
                        Progress::Told {
                            node,
                            already_known,
                        },
                    ) => p.line(&format!(
                        "node {node}: {}",
                        if already_known {
                            "already knew the new node"
                        } else {
                            "told of the new node"
                        }
                    )),
                    (Output::Json, Progress::NotTold { node, why }) => p.json(json!({
                        "event": "not_told", "node": node, "error": why,
                    })),
                    (Output::Text, Progress::NotTold { node, why }) => {
                        p.line(&format!("node {node}: not told (unreachable): {why}"))
                    }
                    (Output::Json, Progress::Added { group, already }) => p.json(json!({
                        "event": "added", "group": group, "already": already,
                    })),
                    (Output::Text, Progress::Added { group, already }) => p.line(&format!(
                        "group {group}: {}",
                        if already {
                            "new node already a voter"
                        } else {
                            "new node added as a voter"
                        }
                    )),
                    (
                        Output::Json,
                        Progress::CatchingUp {
                            group,
                            applied,
                            target,
                        },
                    ) => p.json(json!({
                        "event": "catching_up", "group": group, "applied": applied,
                        "target": target,
                    })),
                    (
                        Output::Text,
                        Progress::CatchingUp {
                            group,
                            applied,
                            target,
                        },
                    ) => p.line(&format!(
                        "group {group}: catching up, applied {applied} of {target}"
                    )),
                    (Output::Json, Progress::CaughtUp { group, applied }) => p.json(json!({
                        "event": "caught_up", "group": group, "applied": applied,
                    })),
                    (Output::Text, Progress::CaughtUp { group, applied }) => {
                        p.line(&format!("group {group}: caught up (applied {applied})"))
                    }
                    (
                        Output::Json,
                        Progress::Removed {
                            group,
                            already,
                            voters,
                        },
                    ) => p.json(json!({
                        "event": "removed", "group": group, "already": already,
                        "voters": voters,
                    })),
                    (
                        Output::Text,
                        Progress::Removed {
                            group,
                            already,
                            voters,
                        },
                    ) => p.line(&format!(
                        "group {group}: {}; voters {voters:?}",
                        if already {
                            "old node already removed"
                        } else {
                            "old node removed"
                        }
                    )),
                }
            };
            match admin::replace_node(&client, old, new, &address, &opts, &mut show).await {
                Ok(report) => {
                    let groups: Vec<u64> = report.groups.iter().map(|(g, _)| *g).collect();
                    match p.output {
                        Output::Json => p.json(json!({
                            "replaced": true,
                            "old": old,
                            "new": new,
                            "address": address,
                            "groups": report.groups.iter().map(|(g, v)| json!({
                                "id": g, "voters": v,
                            })).collect::<Vec<_>>(),
                            "not_told": report.not_told.iter().map(|(n, w)| json!({
                                "node": n, "error": w,
                            })).collect::<Vec<_>>(),
                        })),
                        Output::Text => p.line(&format!(
                            "replaced node {old} by node {new} ({address}) in {} group(s): {groups:?}",
                            groups.len()
                        )),
                    }
                    EXIT_OK
                }
                Err(e) => fail(e),
            }
        }
    }
}

/// Parses a duration: a number followed by `ns`, `us`, `ms`, `s`, `m` or
/// `h` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("bad duration {s:?}: expected like 500ms, 2s, 1m"))?;
    let secs = match unit.trim() {
        "ns" => n / 1e9,
        "us" | "µs" => n / 1e6,
        "ms" => n / 1e3,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        u => return Err(format!("bad duration {s:?}: unknown unit {u:?}")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("bad duration {s:?}: {e}"))
}

/// One operation of a `txn` script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScriptOp {
    /// `get KEY`.
    Get(Bytes),
    /// `put KEY VALUE`.
    Put(Bytes, Bytes),
    /// `delete KEY`.
    Delete(Bytes),
}

/// Parses a `txn` script (grammar: [`TXN_GRAMMAR`]), checking every key
/// and value against the limits and the operation count, so that a bad
/// script sends nothing. A script without an operation is refused. Errors
/// read `line N: ...`.
pub fn parse_script(text: &str) -> Result<Vec<ScriptOp>, String> {
    let mut ops = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let n = n + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |m: &str| format!("line {n}: {m}");
        let (verb, rest) = line
            .split_once(char::is_whitespace)
            .map_or((line, ""), |(v, r)| (v, r.trim_start()));
        if !matches!(verb, "get" | "put" | "delete") {
            return Err(err(&format!(
                "unknown operation {verb:?} (expected get, put or delete)"
            )));
        }
        if rest.is_empty() {
            return Err(err(&if verb == "put" {
                "`put` needs a key and a value".to_string()
            } else {
                format!("`{verb}` needs a key")
            }));
        }
        let (key, tail) = script_token(rest).map_err(|m| err(&m))?;
        let tail = tail.trim_start();
        let key = Bytes::from(key);
        let check_key =
            |k: &Bytes| meridian_txn::api::check_user_key(k).map_err(|e| err(&e.to_string()));
        let op = match verb {
            "get" | "delete" => {
                if !(tail.is_empty() || tail.starts_with('#')) {
                    return Err(err(&format!(
                        "`{verb}` takes one key, found more: {tail:?}"
                    )));
                }
                check_key(&key)?;
                if verb == "get" {
                    ScriptOp::Get(key)
                } else {
                    ScriptOp::Delete(key)
                }
            }
            _ => {
                let value = if tail.starts_with('"') {
                    let (v, after) = script_token(tail).map_err(|m| err(&m))?;
                    let after = after.trim_start();
                    if !(after.is_empty() || after.starts_with('#')) {
                        return Err(err(&format!(
                            "unexpected text after the quoted value: {after:?}"
                        )));
                    }
                    Bytes::from(v)
                } else if tail.is_empty() {
                    return Err(err("`put` needs a key and a value"));
                } else {
                    Bytes::copy_from_slice(tail.trim_end().as_bytes())
                };
                let w = meridian_participant::Write::put(key.clone(), value.clone());
                meridian_txn::api::check_write(&w).map_err(|e| err(&e.to_string()))?;
                check_key(&key)?;
                ScriptOp::Put(key, value)
            }
        };
        ops.push(op);
        meridian_txn::api::check_operation_count(ops.len()).map_err(|e| err(&e.to_string()))?;
    }
    if ops.is_empty() {
        return Err("the script has no operation (get, put or delete): nothing to commit".into());
    }
    Ok(ops)
}

/// The first token of `s` (which starts with no whitespace): a quoted
/// string with its escapes undone, or a bare word up to the next
/// whitespace. Answers the token's bytes and the text after it.
fn script_token(s: &str) -> Result<(Vec<u8>, &str), String> {
    let Some(body) = s.strip_prefix('"') else {
        let end = s.find(char::is_whitespace).unwrap_or(s.len());
        return Ok((s.as_bytes()[..end].to_vec(), &s[end..]));
    };
    let mut out = Vec::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &body[i + 1..])),
            '\\' => {
                let Some((_, e)) = chars.next() else { break };
                match e {
                    '"' => out.push(b'"'),
                    '\\' => out.push(b'\\'),
                    'n' => out.push(b'\n'),
                    't' => out.push(b'\t'),
                    'r' => out.push(b'\r'),
                    'x' => {
                        let hex: String = chars.by_ref().take(2).map(|(_, h)| h).collect();
                        let byte = u8::from_str_radix(&hex, 16)
                            .ok()
                            .filter(|_| hex.len() == 2)
                            .ok_or_else(|| {
                                format!("bad escape \\x{hex}: two hex digits are needed")
                            })?;
                        out.push(byte);
                    }
                    other => {
                        return Err(format!(
                            "unknown escape \\{other} (known: \\\" \\\\ \\n \\t \\r \\xNN)"
                        ));
                    }
                }
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    Err("unterminated quoted string (a closing \" is missing)".into())
}

/// How far ahead of this machine's clock the CLI lets `read-only --at`
/// go: the nodes' default bound M ([`meridian_txn::DEFAULT_MAX_READ_LEAD_NANOS`]).
pub const MAX_AT_LEAD_NANOS: u64 = meridian_txn::DEFAULT_MAX_READ_LEAD_NANOS;

/// This machine's wall clock, as a timestamp (the system clock with no
/// uncertainty added).
fn wall_clock_now() -> Timestamp {
    meridian_truetime::TrueTime::now(&meridian_truetime::SystemTrueTime::new(0)).latest
}

/// The error for a `read-only --at ts` more than [`MAX_AT_LEAD_NANOS`]
/// ahead of `now`, if it is.
pub fn too_far_ahead(ts: Timestamp, now: Timestamp) -> Option<Error> {
    (ts.as_nanos().saturating_sub(now.as_nanos()) > MAX_AT_LEAD_NANOS).then_some(
        Error::ReadTimestampTooFarAhead {
            read_ts: ts,
            now_latest: now,
            max_lead_nanos: MAX_AT_LEAD_NANOS,
        },
    )
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for chunk in b.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Bytes as text output shows them: UTF-8 as is, other bytes escaped.
pub fn text_bytes(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_string(),
        Err(_) => b.escape_ascii().to_string(),
    }
}

/// Adds `name` (UTF-8) or `name_base64` (other bytes) to a JSON object.
fn json_bytes(obj: &mut serde_json::Map<String, Json>, name: &str, b: Option<&[u8]>) {
    match b {
        None => {
            obj.insert(name.into(), Json::Null);
        }
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) => {
                obj.insert(name.into(), Json::String(s.into()));
            }
            Err(_) => {
                obj.insert(format!("{name}_base64"), Json::String(base64(b)));
            }
        },
    }
}

/// Prints results in the chosen format.
struct Printer {
    output: Output,
}

impl Printer {
    fn line(&self, s: &str) {
        let mut out = std::io::stdout().lock();
        // A closed stdout (`| head`) is not the command's failure.
        let _ = writeln!(out, "{s}");
    }

    fn json(&self, v: Json) {
        self.line(&v.to_string());
    }

    /// A read of `key`; `labelled` prefixes text output with the key.
    fn read(&self, key: &[u8], value: Option<&[u8]>, labelled: bool) {
        match self.output {
            Output::Json => {
                let mut obj = serde_json::Map::new();
                json_bytes(&mut obj, "key", Some(key));
                json_bytes(&mut obj, "value", value);
                self.json(Json::Object(obj));
            }
            // As etcdctl: a missing key prints nothing (JSON has `null`).
            Output::Text => match value {
                None => {}
                Some(v) if labelled => {
                    self.line(&format!("{} = {}", text_bytes(key), text_bytes(v)))
                }
                Some(v) => self.line(&text_bytes(v)),
            },
        }
    }

    fn committed(&self, c: &Committed) {
        let txn = c.txn.map(|t| t.to_string());
        match self.output {
            Output::Json => self.json(json!({
                "committed": true,
                "commit_ts": c.commit_ts.as_nanos(),
                "txn": txn,
            })),
            Output::Text => self.line(&format!(
                "committed at {} ({} ns){}",
                c.commit_ts,
                c.commit_ts.as_nanos(),
                txn.map_or_else(String::new, |t| format!(", txn {t}"))
            )),
        }
    }

    fn read_ts(&self, ts: Timestamp) {
        match self.output {
            Output::Json => self.json(json!({ "read_ts": ts.as_nanos() })),
            Output::Text => self.line(&format!("read at {ts} ({} ns)", ts.as_nanos())),
        }
    }

    fn error(&self, e: &Error) -> u8 {
        let code = exit_code(e);
        self.error_message(&e.to_string(), code)
    }

    fn error_message(&self, msg: &str, code: u8) -> u8 {
        let mut err = std::io::stderr().lock();
        let _ = match self.output {
            Output::Json => writeln!(err, "{}", json!({ "error": msg, "exit_code": code })),
            Output::Text => writeln!(err, "error: {msg}"),
        };
        code
    }
}

fn options(global: &GlobalArgs) -> ClientOptions {
    // Each call and the retries together fit in the command's deadline.
    let mut o = ClientOptions::default().with_request_timeout(global.timeout);
    o.connect_timeout = o.connect_timeout.min(global.timeout);
    o.retry_budget = o.retry_budget.min(global.timeout);
    if let Some(ca) = &global.tls_ca {
        o.tls = Some(TlsOptions {
            ca_cert: ca.clone(),
            client_cert: global.tls_cert.clone(),
            client_key: global.tls_key.clone(),
            domain: None,
        });
    }
    o
}

fn bytes(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// Runs one client subcommand and answers its exit code (see the module
/// docs).
pub async fn run(global: &GlobalArgs, cmd: ClientCommand) -> ExitCode {
    ExitCode::from(run_code(global, cmd).await)
}

/// [`run`], answering the exit code as a number.
pub async fn run_code(global: &GlobalArgs, cmd: ClientCommand) -> u8 {
    let p = Printer {
        output: global.output,
    };
    if let Err(m) = check_endpoints(global) {
        return p.error_message(&m, EXIT_USAGE);
    }
    // Check the input before connecting: bad input sends nothing.
    if let Err(m) = check_input(&cmd) {
        return p.error_message(&m, EXIT_USAGE);
    }
    let script = match &cmd {
        ClientCommand::Txn { file, .. } => {
            let text = match file.as_ref().filter(|f| f.as_os_str() != "-") {
                Some(f) => std::fs::read_to_string(f)
                    .map_err(|e| format!("cannot read {}: {e}", f.display())),
                None => {
                    let mut s = String::new();
                    std::io::stdin()
                        .read_to_string(&mut s)
                        .map(|_| s)
                        .map_err(|e| format!("cannot read stdin: {e}"))
                }
            };
            match text.and_then(|t| parse_script(&t)) {
                Ok(ops) => ops,
                Err(m) => return p.error_message(&m, EXIT_USAGE),
            }
        }
        _ => Vec::new(),
    };
    let at = match &cmd {
        ClientCommand::ReadOnly { at: Some(at), .. } => match Timestamp::from_str(at) {
            Ok(ts) => Some(ts),
            Err(e) => return p.error_message(&e.to_string(), EXIT_USAGE),
        },
        _ => None,
    };
    // A timestamp further ahead than any node serves is refused here, by
    // this machine's clock, before connecting (the node refuses it too,
    // by its own clock: docs/operations.md).
    if let Some(e) = at.and_then(|ts| too_far_ahead(ts, wall_clock_now())) {
        return p.error(&e);
    }
    if let ClientCommand::TxnStatus { id } = &cmd {
        if let Err(e) = parse_txn_id(id) {
            return p.error(&e);
        }
    }
    let stdin_value = match &cmd {
        ClientCommand::Put { key, value: None } => match read_value(std::io::stdin().lock()) {
            Ok(v) => {
                let w = meridian_participant::Write::put(bytes(key), v.clone());
                if let Err(e) = meridian_txn::api::check_write(&w) {
                    return p.error_message(&format!("invalid request: {e}"), EXIT_USAGE);
                }
                Some(v)
            }
            Err(m) => return p.error_message(&m, EXIT_USAGE),
        },
        _ => None,
    };
    // `--timeout` bounds the whole command. A write whose deadline passes
    // after it connected may have sent its commit: its outcome is unknown.
    let writes = matches!(
        cmd,
        ClientCommand::Put { .. } | ClientCommand::Delete { .. } | ClientCommand::Txn { .. }
    );
    let connected = std::sync::atomic::AtomicBool::new(false);
    let work = async {
        let client = match Client::connect_with(&global.endpoints, options(global)).await {
            Ok(c) => c,
            Err(e) => return p.error(&e),
        };
        connected.store(true, std::sync::atomic::Ordering::Release);
        match execute(&client, &p, cmd, script, at, stdin_value).await {
            Ok(()) => EXIT_OK,
            Err(e) => p.error(&e),
        }
    };
    match tokio::time::timeout(global.timeout, work).await {
        Ok(code) => code,
        Err(_) if writes && connected.load(std::sync::atomic::Ordering::Acquire) => p
            .error_message(
                &format!(
                    "no answer within --timeout {:?}: the write may or may not have committed",
                    global.timeout
                ),
                EXIT_OUTCOME_UNKNOWN,
            ),
        Err(_) => p.error_message(
            &format!(
                "cluster unavailable: no answer within --timeout {:?}",
                global.timeout
            ),
            EXIT_UNREACHABLE,
        ),
    }
}

/// Checks the endpoints before anything is sent: some are given, and an
/// `https://` one comes with `--tls-ca`.
fn check_endpoints(global: &GlobalArgs) -> Result<(), String> {
    if global.endpoints.iter().all(|e| e.trim().is_empty()) {
        return Err(
            "no endpoints: pass --endpoints HOST:PORT[,...] or set MERIDIAN_ENDPOINTS".into(),
        );
    }
    if global.tls_ca.is_none() {
        if let Some(e) = global
            .endpoints
            .iter()
            .find(|e| e.trim().starts_with("https://"))
        {
            return Err(format!(
                "endpoint {e} asks for TLS, but no CA was given: pass --tls-ca, --tls-cert \
                 and --tls-key (or MERIDIAN_TLS_CA, MERIDIAN_TLS_CERT, MERIDIAN_TLS_KEY)"
            ));
        }
    }
    Ok(())
}

/// Checks the keys and values given on the command line against the
/// limits (docs/design.md §6) before anything is sent.
fn check_input(cmd: &ClientCommand) -> Result<(), String> {
    let key = |k: &str| {
        meridian_txn::api::check_key(k.as_bytes()).map_err(|e| format!("invalid request: {e}"))
    };
    match cmd {
        ClientCommand::Get { key: k } | ClientCommand::Delete { key: k } => key(k),
        ClientCommand::Put {
            key: k,
            value: Some(v),
        } => {
            let w = meridian_participant::Write::put(bytes(k), bytes(v));
            meridian_txn::api::check_write(&w).map_err(|e| format!("invalid request: {e}"))
        }
        ClientCommand::Put {
            key: k,
            value: None,
        } => key(k),
        ClientCommand::ReadOnly { keys, .. } => keys.iter().try_for_each(|k| key(k)),
        ClientCommand::Scan { start, end, limit } => {
            let end = end.as_deref().map(bytes);
            meridian_txn::api::check_scan(start.as_bytes(), end.as_ref(), *limit)
                .map_err(|e| format!("invalid request: {e}"))
        }
        ClientCommand::Txn { .. }
        | ClientCommand::Status { .. }
        | ClientCommand::TxnStatus { .. } => Ok(()),
    }
}

/// Reads a value from `input` (standard input), up to one byte past the
/// limit so that a value over it is told apart.
fn read_value(input: impl Read) -> Result<Bytes, String> {
    let mut v = Vec::new();
    input
        .take(meridian_txn::api::MAX_VALUE_BYTES as u64 + 1)
        .read_to_end(&mut v)
        .map_err(|e| format!("cannot read the value from stdin: {e}"))?;
    let max = meridian_txn::api::MAX_VALUE_BYTES;
    if v.len() > max {
        return Err(format!(
            "invalid request: the value on stdin is over the limit of {max} bytes"
        ));
    }
    Ok(Bytes::from(v))
}

async fn execute(
    client: &Client,
    p: &Printer,
    cmd: ClientCommand,
    script: Vec<ScriptOp>,
    at: Option<Timestamp>,
    stdin_value: Option<Bytes>,
) -> Result<(), Error> {
    match cmd {
        ClientCommand::Get { key } => {
            let v = client.get(bytes(&key)).await?;
            p.read(key.as_bytes(), v.as_deref(), false);
        }
        ClientCommand::Put { key, value } => {
            let value = match value {
                Some(v) => bytes(&v),
                None => stdin_value.unwrap_or_default(),
            };
            let c = client.put(bytes(&key), value).await?;
            p.committed(&c);
        }
        ClientCommand::Delete { key } => {
            let c = client.delete(bytes(&key)).await?;
            p.committed(&c);
        }
        ClientCommand::Scan { start, end, limit } => {
            let op = ReadOp::Scan {
                start: bytes(&start),
                end: end.as_deref().map(bytes),
                limit,
            };
            let r = client.read_only(vec![op]).await?;
            if let Some(ReadResult::Rows(rows)) = r.results.first() {
                for (k, v) in rows {
                    p.read(k, Some(v), true);
                }
            }
        }
        ClientCommand::Txn { optimistic, .. } => {
            let mode = if optimistic {
                CcMode::Optimistic
            } else {
                CcMode::Locking
            };
            let (reads, c) = client
                .transaction_with(TxnOptions { mode }, async move |txn| {
                    let mut reads = Vec::new();
                    for op in script.iter() {
                        match op {
                            ScriptOp::Get(k) => {
                                let v = txn.get(k.clone()).await?;
                                reads.push((k.clone(), v));
                            }
                            ScriptOp::Put(k, v) => txn.put(k.clone(), v.clone())?,
                            ScriptOp::Delete(k) => txn.delete(k.clone())?,
                        }
                    }
                    Ok(reads)
                })
                .await?;
            for (k, v) in reads {
                p.read(&k, v.as_deref(), true);
            }
            p.committed(&c);
        }
        ClientCommand::ReadOnly {
            keys,
            max_staleness,
            ..
        } => {
            let ops: Vec<ReadOp> = keys.iter().map(|k| ReadOp::Get(bytes(k))).collect();
            let r = match (at, max_staleness) {
                (Some(ts), _) => client.snapshot_read(ts, ops).await?,
                (None, Some(d)) => client.read_stale(d, ops).await?,
                (None, None) => client.read_only(ops).await?,
            };
            for (k, res) in keys.iter().zip(&r.results) {
                if let ReadResult::Value(v) = res {
                    p.read(k.as_bytes(), v.as_deref(), true);
                }
            }
            p.read_ts(r.read_ts);
        }
        ClientCommand::Status { node } => {
            let s = match node {
                Some(n) => client.status_of(n).await?,
                None => client.status().await?,
            };
            let sizes = status::gather_sizes(client, &s).await;
            print_status(p, &s, &sizes);
        }
        ClientCommand::TxnStatus { id } => {
            let txn = parse_txn_id(&id)?;
            let s = client.txn_status(txn).await?;
            match p.output {
                Output::Json => {
                    let mut obj = json!({ "txn": txn.to_string() });
                    let (status, ts) = match s {
                        TxnStatus::Committed { commit_ts } => {
                            ("committed", Some(commit_ts.as_nanos()))
                        }
                        TxnStatus::Aborted => ("aborted", None),
                        TxnStatus::InProgress => ("in_progress", None),
                        TxnStatus::Unknown => ("unknown", None),
                    };
                    obj["status"] = json!(status);
                    if let Some(ts) = ts {
                        obj["commit_ts"] = json!(ts);
                    }
                    p.json(obj);
                }
                Output::Text => p.line(&match s {
                    TxnStatus::Committed { commit_ts } => format!(
                        "txn {txn}: committed at {commit_ts} ({} ns)",
                        commit_ts.as_nanos()
                    ),
                    TxnStatus::Aborted => format!("txn {txn}: aborted"),
                    TxnStatus::InProgress => format!("txn {txn}: in progress"),
                    TxnStatus::Unknown => format!("txn {txn}: unknown to its home group"),
                }),
            }
        }
    }
    Ok(())
}

/// A range bound as text: `-∞`/`+∞` for none, the key otherwise.
fn bound(b: Option<&[u8]>, open: &str) -> String {
    match b {
        Some(b) if !b.is_empty() => format!("{:?}", text_bytes(b)),
        _ => open.to_string(),
    }
}

fn print_status(p: &Printer, s: &ClusterStatus, sizes: &status::Sizes) {
    match p.output {
        Output::Json => p.json(status::to_json(s, sizes)),
        Output::Text => status::to_text(s, sizes).iter().for_each(|l| p.line(l)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("2 fortnights").is_err());
    }

    #[test]
    fn scripts_parse_values_as_the_rest_of_the_line() {
        let ops = parse_script("# c\n\nget a\nput b hello  world \ndelete c\n").unwrap();
        assert_eq!(
            ops,
            vec![
                ScriptOp::Get(bytes("a")),
                ScriptOp::Put(bytes("b"), bytes("hello  world")),
                ScriptOp::Delete(bytes("c")),
            ]
        );
    }

    #[test]
    fn malformed_script_lines_are_named() {
        for (script, want) in [
            ("get a\nfrobnicate x\n", "line 2: unknown operation"),
            ("put a\n", "line 1: `put` needs a key and a value"),
            ("get a b\n", "line 1: `get` takes one key"),
            ("get\n", "line 1: `get` needs a key"),
        ] {
            let e = parse_script(script).unwrap_err();
            assert!(e.starts_with(want), "{script:?}: {e}");
        }
        let long = format!("get {}\n", "k".repeat(4097));
        assert!(
            parse_script(&long)
                .unwrap_err()
                .contains("exceeds the maximum")
        );
        let many: String = (0..1001).map(|i| format!("put k{i} v\n")).collect();
        assert!(parse_script(&many).unwrap_err().starts_with("line 1001:"));
    }

    #[test]
    fn quoted_script_tokens_undo_their_escapes() {
        let ops = parse_script("put \"a b\" \"x\\ty\\x00\\\"\" # c\nget \"\"\"\n");
        assert!(ops.is_err(), "an empty quoted key is no key");
        let ops = parse_script("put \"a b\" \"x\\ty\\x00\\\"\" # c\ndelete \"a b\"\n").unwrap();
        assert_eq!(
            ops,
            vec![
                ScriptOp::Put(bytes("a b"), Bytes::from_static(b"x\ty\x00\"")),
                ScriptOp::Delete(bytes("a b")),
            ]
        );
    }

    #[test]
    fn a_script_without_operations_is_refused() {
        for s in ["", "\n\n", "# only\n  # comments\n"] {
            assert!(
                parse_script(s).unwrap_err().contains("no operation"),
                "{s:?}"
            );
        }
    }

    #[test]
    fn base64_is_standard() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(&[0xff, 0xfe]), "//4=");
    }
}
