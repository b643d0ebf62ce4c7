//! Script-driven lock table tests, in the style of etcd's and CockroachDB's
//! `datadriven` files (`pkg/kv/kvserver/concurrency/testdata/lock_table`).
//!
//! Each file in `testdata/lock_table/` is one scenario: a comment header
//! (`#` lines) saying what it checks and where the paper says so, then
//! blocks of
//!
//! ```text
//! <command>
//! ----
//! <expected output, one or more lines>
//! ```
//!
//! separated by blank lines. Commands:
//!
//! | command | output |
//! |---|---|
//! | `new [max_waiters_per_key=N] [max_total_waiters=N]` | `ok` (fresh table) |
//! | `acquire txn=N prio=N key=K mode=s\|x` | `granted`, or `waiting` then `wounded txn=N` lines, or `error: …` |
//! | `try_acquire txn=N prio=N key=K mode=s\|x` | `granted`, `conflict` or `error: …` |
//! | `release txn=N key=K` | `granted txn=N key=K mode=M` lines, or `no grants` |
//! | `release_all txn=N` | as `release` |
//! | `mark_prepared txn=N` | `ok` or `error: …` |
//! | `waits_for` | `txn=N waits for txn=M on key=K` lines, or `none` |
//! | `locks_held_by txn=N` | `key=K mode=M` lines, or `none` |
//! | `print key=K` | `holders: N:M …` and `queue: N:M …` |
//!
//! `prio` is the transaction's first start timestamp in nanoseconds
//! (Spanner §4.2.1's wound-wait priority; lower is older). After every
//! command the runner checks [`LockTable::assert_invariants`]. A mismatch
//! fails the test showing, for every block that differs, its file and line,
//! the command, and the expected and actual output.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use bytes::Bytes;
use meridian_participant::locks::LockLimits;
use meridian_participant::{Acquire, Grant, LockMode, LockTable, Priority, TxnId};
use meridian_truetime::Timestamp;

/// One `command ---- expected` block of a scenario file.
struct Block {
    line: usize,
    command: String,
    expected: Vec<String>,
}

fn parse(file: &str, text: &str) -> Vec<Block> {
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        if line.is_empty() || line.starts_with('#') {
            i += 1;
            continue;
        }
        let command_line = i + 1;
        assert_eq!(
            lines.get(i + 1).map(|l| l.trim()),
            Some("----"),
            "{file}:{command_line}: command {line:?} must be followed by a `----` line"
        );
        let mut expected = Vec::new();
        i += 2;
        while i < lines.len() && !lines[i].trim().is_empty() {
            expected.push(lines[i].trim().to_owned());
            i += 1;
        }
        assert!(
            !expected.is_empty(),
            "{file}:{command_line}: command {line:?} has no expected output"
        );
        blocks.push(Block {
            line: command_line,
            command: line.to_owned(),
            expected,
        });
    }
    blocks
}

/// `name=value` arguments of a command.
struct Args<'a> {
    context: String,
    args: BTreeMap<&'a str, &'a str>,
}

impl<'a> Args<'a> {
    fn parse(context: String, words: &[&'a str]) -> Self {
        let args = words
            .iter()
            .map(|w| {
                w.split_once('=')
                    .unwrap_or_else(|| panic!("{context}: argument {w:?} is not name=value"))
            })
            .collect();
        Args { context, args }
    }

    fn str(&self, name: &str) -> &'a str {
        self.args
            .get(name)
            .unwrap_or_else(|| panic!("{}: missing argument {name}=", self.context))
    }

    fn u64(&self, name: &str) -> u64 {
        let v = self.str(name);
        v.parse()
            .unwrap_or_else(|_| panic!("{}: {name}={v} is not a number", self.context))
    }

    fn opt_usize(&self, name: &str) -> Option<usize> {
        self.args.get(name).map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{}: {name}={v} is not a number", self.context))
        })
    }

    fn txn(&self) -> TxnId {
        TxnId::local(self.u64("txn"))
    }

    fn prio(&self) -> Priority {
        Priority::new(Timestamp::from_nanos(self.u64("prio")))
    }

    fn key(&self) -> Bytes {
        Bytes::copy_from_slice(self.str("key").as_bytes())
    }

    fn mode(&self) -> LockMode {
        match self.str("mode") {
            "s" => LockMode::Shared,
            "x" => LockMode::Exclusive,
            m => panic!("{}: mode={m}: expected s or x", self.context),
        }
    }
}

fn mode(m: LockMode) -> &'static str {
    match m {
        LockMode::Shared => "s",
        LockMode::Exclusive => "x",
    }
}

fn key(k: &[u8]) -> String {
    String::from_utf8_lossy(k).into_owned()
}

fn grants(grants: Vec<Grant>) -> Vec<String> {
    if grants.is_empty() {
        return vec!["no grants".to_owned()];
    }
    grants
        .into_iter()
        .map(|g| {
            format!(
                "granted txn={} key={} mode={}",
                g.txn,
                key(&g.key),
                mode(g.mode)
            )
        })
        .collect()
}

fn or_none(lines: Vec<String>) -> Vec<String> {
    if lines.is_empty() {
        vec!["none".to_owned()]
    } else {
        lines
    }
}

fn run_command(table: &mut LockTable, context: String, command: &str) -> Vec<String> {
    let words: Vec<&str> = command.split_whitespace().collect();
    let args = Args::parse(context.clone(), &words[1..]);
    match words[0] {
        "new" => {
            let defaults = LockLimits::default();
            *table = LockTable::new(LockLimits {
                max_waiters_per_key: args
                    .opt_usize("max_waiters_per_key")
                    .unwrap_or(defaults.max_waiters_per_key),
                max_total_waiters: args
                    .opt_usize("max_total_waiters")
                    .unwrap_or(defaults.max_total_waiters),
            });
            vec!["ok".to_owned()]
        }
        "acquire" => match table.acquire(args.txn(), args.prio(), &args.key(), args.mode()) {
            Ok(Acquire::Granted) => vec!["granted".to_owned()],
            Ok(Acquire::GrantedWounding { wounded }) => std::iter::once("granted".to_owned())
                .chain(wounded.iter().map(|t| format!("wounded txn={t}")))
                .collect(),
            Ok(Acquire::Waiting { wounded }) => std::iter::once("waiting".to_owned())
                .chain(wounded.iter().map(|t| format!("wounded txn={t}")))
                .collect(),
            Err(e) => vec![format!("error: {e}")],
        },
        "try_acquire" => {
            match table.try_acquire(args.txn(), args.prio(), &args.key(), args.mode()) {
                Ok(true) => vec!["granted".to_owned()],
                Ok(false) => vec!["conflict".to_owned()],
                Err(e) => vec![format!("error: {e}")],
            }
        }
        "release" => grants(table.release(args.txn(), &args.key())),
        "release_all" => grants(table.release_all(args.txn())),
        "mark_prepared" => match table.mark_prepared(args.txn()) {
            Ok(()) => vec!["ok".to_owned()],
            Err(e) => vec![format!("error: {e}")],
        },
        "waits_for" => or_none(
            table
                .waits_for()
                .into_iter()
                .map(|e| {
                    format!(
                        "txn={} waits for txn={} on key={}",
                        e.waiter,
                        e.blocker,
                        key(&e.key)
                    )
                })
                .collect(),
        ),
        "locks_held_by" => or_none(
            table
                .locks_held_by(args.txn())
                .into_iter()
                .map(|(k, m)| format!("key={} mode={}", key(&k), mode(m)))
                .collect(),
        ),
        "print" => {
            let k = args.key();
            let list = |entries: Vec<(TxnId, LockMode)>| {
                if entries.is_empty() {
                    return " none".to_owned();
                }
                entries.iter().fold(String::new(), |mut s, (t, m)| {
                    let _ = write!(s, " {t}:{}", mode(*m));
                    s
                })
            };
            vec![
                format!("holders:{}", list(table.holders(&k))),
                format!("queue:{}", list(table.waiters(&k))),
            ]
        }
        other => panic!("{context}: unknown command {other:?}"),
    }
}

/// Runs one scenario file and panics with a diff of every block whose
/// output differs from the expected one.
fn run_scenario(file: &str, text: &str) {
    let blocks = parse(file, text);
    assert!(!blocks.is_empty(), "{file}: no commands");
    let mut table = LockTable::default();
    let mut failures = String::new();
    for block in &blocks {
        let context = format!("{file}:{}", block.line);
        let actual = run_command(&mut table, context.clone(), &block.command);
        table.assert_invariants();
        if actual != block.expected {
            let _ = writeln!(failures, "\n{context}: {}\n  expected:", block.command);
            for line in &block.expected {
                let _ = writeln!(failures, "    {line}");
            }
            let _ = writeln!(failures, "  actual:");
            for line in &actual {
                let _ = writeln!(failures, "    {line}");
            }
        }
    }
    assert!(
        failures.is_empty(),
        "scenario {file} diverged from its expected output:\n{failures}"
    );
}

macro_rules! scenario {
    ($test:ident, $file:literal) => {
        #[test]
        fn $test() {
            run_scenario(
                $file,
                include_str!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/testdata/lock_table/",
                    $file
                )),
            );
        }
    };
}

/// Every scenario file, with the test that runs it.
const SCENARIOS: &[&str] = &[
    "wound.txt",
    "wait.txt",
    "upgrade.txt",
    "release.txt",
    "prepared_holder.txt",
    "fifo.txt",
    "shared_compat.txt",
    "queue_full.txt",
    "waits_for.txt",
    "wound_waiter.txt",
    "try_acquire.txt",
];

scenario!(older_requester_wounds_younger_holder, "wound.txt");
scenario!(younger_requester_waits_for_older_holder, "wait.txt");
scenario!(
    sole_holder_upgrades_at_once_others_follow_wound_wait,
    "upgrade.txt"
);
scenario!(
    release_grants_waiters_and_release_all_withdraws_waits,
    "release.txt"
);
scenario!(prepared_txn_cannot_be_wounded, "prepared_holder.txt");
scenario!(waiters_are_granted_in_fifo_order, "fifo.txt");
scenario!(
    shared_locks_are_compatible_and_granted_together,
    "shared_compat.txt"
);
scenario!(
    full_queues_admit_an_older_requester_in_place_of_a_younger_last_waiter,
    "queue_full.txt"
);
scenario!(waits_for_lists_who_waits_for_whom, "waits_for.txt");
scenario!(
    older_requester_wounds_younger_waiter_ahead,
    "wound_waiter.txt"
);
scenario!(try_acquire_never_waits_or_wounds, "try_acquire.txt");

#[test]
fn every_scenario_file_has_a_test() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/lock_table");
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .expect("testdata/lock_table exists")
        .map(|e| {
            e.expect("readable entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = SCENARIOS.iter().map(|s| (*s).to_owned()).collect();
    listed.sort();
    assert_eq!(
        on_disk, listed,
        "every file in testdata/lock_table needs a scenario! test and an entry in SCENARIOS"
    );
}
