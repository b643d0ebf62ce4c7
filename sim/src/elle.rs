//! An adapter from Meridian's list-append histories to the Elle-style
//! isolation checker [`adya`].
//!
//! An Elle list-append workload runs transactions that append unique
//! integers to lists under a few keys and read whole lists back. Every read
//! then reveals the order of every append before it, so the checker can
//! recover each key's version order and with it Adya's dependency graph
//! (`ww`, `wr`, `rw` edges), add real-time order, and look for the cycles a
//! consistency model forbids.
//!
//! [`check_list_append`] takes the history as clients saw it, as
//! [`ListTxn`]s, and checks it for **strict serializability**
//! ([`CONSISTENCY_MODEL`]). In adya that model forbids, besides everything
//! serializability forbids (G0, G1a, G1b, G1c, G-single, G2, lost update,
//! internal inconsistency, duplicated elements, incompatible version
//! orders...), the cycles that need a real-time edge: `G0-realtime`,
//! `G1c-realtime`, `G-single-item-realtime`, `G-nonadjacent-item-realtime`
//! and `G2-item-realtime`.
//!
//! # Real-time order
//!
//! adya does not read timestamps: it takes real-time order from the order of
//! events in the history. A transaction precedes another iff its `ok`
//! completion comes before the other's invocation. The adapter therefore
//! emits one invocation event at each transaction's [`ListTxn::invoked_at`]
//! and one completion event at its [`ListTxn::completed_at`], sorted by
//! virtual time. **At equal times, invocations come first**: a transaction
//! that completes at the very instant another is invoked is treated as
//! concurrent with it, never as preceding it. That rule can only drop a
//! real-time edge (when the two were in fact causally ordered, as two
//! transactions of one client back to back at one virtual instant); it never
//! invents one, so it can never turn a strictly serializable history into a
//! rejected one. Ties among invocations, or among completions, are broken by
//! position in the input, which adds no edge either.
//!
//! Because of that rule a client's next invocation may precede its previous
//! completion in the event order. adya's own pairing (each completion with
//! the latest invocation of its process) would then date a transaction
//! from its successor's invocation and invent real-time edges, so the
//! adapter pairs each invocation with its completion itself.
//!
//! # Outcomes
//!
//! - [`ListOutcome::Committed`]: an `ok` completion carrying the lists read.
//! - [`ListOutcome::Aborted`]: a `fail` completion; any element it appended
//!   that a committed read sees is an aborted read (G1a).
//! - [`ListOutcome::Unknown`]: an `info` completion. The transaction may or
//!   may not have committed; it precedes nothing in real time. What it read
//!   is dropped (read as "unknown"): were it not committed, its reads would
//!   constrain nothing, and giving them to adya would let it build cycles
//!   through a transaction that may never have happened. Its appends stay,
//!   so a read that sees one shows it committed.
//!
//! In explanations, `T<n>` names `txns[n]`, the `n`th transaction of the
//! slice given to [`check_list_append`].

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::Duration;

use adya::history::{Interner, Mop, Op, OpType, ReadValue, Scalar};
use adya::{History, Valid, Workload};

/// The consistency model checked: strict serializability, adya's name for
/// serializability plus real-time order.
pub const CONSISTENCY_MODEL: &str = "strict-serializable";

/// How long adya may search each strongly connected component of the
/// dependency graph for a cycle before giving up (which fails the check as
/// [`ElleError::Inconclusive`]). adya's own default is one second; histories
/// of a simulation run are small, so a timeout means something is wrong.
pub const CYCLE_SEARCH_TIMEOUT: Duration = Duration::from_secs(60);

/// The anomaly type [`check_list_append`] reports, itself, for a committed
/// read of an element that no transaction in the history appended (a
/// corrupted or invented value). adya has no such check: it fits the
/// element into the version order like any other.
pub const GARBAGE_READ: &str = "garbage-read";

/// At most this many anomalies of each type are explained in an error's
/// text; the rest are only counted.
pub const MAX_EXPLAINED_PER_TYPE: usize = 3;

/// One micro-operation of a list-append transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListOp {
    /// Append `value` to the list under `key`. Values must be unique per
    /// key over the whole history.
    Append {
        /// The list's key.
        key: u64,
        /// The element appended.
        value: u64,
    },
    /// Read the whole list under `key`.
    Read {
        /// The list's key.
        key: u64,
        /// The list read, oldest element first; `None` if the client never
        /// learned it. A committed transaction must carry every list it
        /// read; an aborted or unknown one's lists are ignored.
        list: Option<Vec<u64>>,
    },
}

/// How a transaction attempt ended, as its client saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListOutcome {
    /// It committed, and its reads carry the lists they returned.
    Committed,
    /// It definitely did not commit.
    Aborted,
    /// The commit was sent but the answer was lost: it may or may not have
    /// committed.
    Unknown,
}

/// One transaction attempt, as a client saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListTxn {
    /// The client that ran it.
    pub process: u64,
    /// Its micro-operations, in the order they ran.
    pub ops: Vec<ListOp>,
    /// Virtual time the client invoked it, nanoseconds.
    pub invoked_at: u64,
    /// Virtual time the client learned its outcome (or gave up on it),
    /// nanoseconds; not before [`ListTxn::invoked_at`].
    pub completed_at: u64,
    /// How it ended.
    pub outcome: ListOutcome,
}

/// How to check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElleOpts {
    /// Budget of the cycle search in each strongly connected component
    /// (default [`CYCLE_SEARCH_TIMEOUT`]).
    pub cycle_search_timeout: Duration,
}

impl Default for ElleOpts {
    fn default() -> Self {
        ElleOpts {
            cycle_search_timeout: CYCLE_SEARCH_TIMEOUT,
        }
    }
}

/// What a passing check covered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ElleSummary {
    /// Transactions checked (every outcome).
    pub transactions: usize,
    /// Of which committed.
    pub committed: usize,
    /// Of which aborted.
    pub aborted: usize,
    /// Of which of unknown outcome.
    pub unknown: usize,
}

/// Why a history did not pass.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ElleError {
    /// The history breaks a rule of the workload itself (a value appended
    /// twice, a completion before its invocation, a committed read without
    /// its list, a number adya cannot represent), so no verdict on
    /// isolation is possible: the recorder is at fault, not the database.
    #[error("malformed list-append history at T{txn}: {reason}")]
    Malformed {
        /// Index of the offending transaction in the input.
        txn: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// Not one transaction committed: such a history says nothing about
    /// isolation, and passing it would hide a workload that never ran.
    #[error("no committed transaction among {transactions}: nothing to check")]
    NothingCommitted {
        /// Transactions in the history.
        transactions: usize,
    },
    /// adya found anomalies that strict serializability forbids.
    #[error(
        "history is not {CONSISTENCY_MODEL}: {anomaly_types:?} (rules out {not:?})\n{explanation}"
    )]
    Anomalies {
        /// adya's names of the anomaly types found (for example
        /// `G2-item`, `G-single-item-realtime`, `lost-update`, `G1a`), or
        /// [`GARBAGE_READ`], which the adapter finds itself before calling
        /// adya.
        anomaly_types: Vec<String>,
        /// The weakest consistency models those anomalies rule out, as
        /// adya names them (empty for [`GARBAGE_READ`]).
        not: Vec<String>,
        /// adya's explanation of each anomaly (at most
        /// [`MAX_EXPLAINED_PER_TYPE`] of each type).
        explanation: String,
    },
    /// adya could not decide: its cycle search timed out, or it could infer
    /// no dependency at all between transactions. Never a pass.
    #[error("checker could not decide: {anomaly_types:?}\n{explanation}")]
    Inconclusive {
        /// Why, in adya's words (`cycle-search-timeout`,
        /// `empty-transaction-graph`).
        anomaly_types: Vec<String>,
        /// adya's explanation.
        explanation: String,
    },
}

/// Checks a list-append history for strict serializability
/// ([`CONSISTENCY_MODEL`]), with real-time order taken from the virtual
/// times of each transaction (see the module documentation for the
/// ordering rule).
///
/// # Errors
///
/// [`ElleError::Malformed`] if the history breaks the workload's rules,
/// [`ElleError::NothingCommitted`] if no transaction committed,
/// [`ElleError::Anomalies`] if a committed read returned an element never
/// appended ([`GARBAGE_READ`]) or adya found an anomaly the model forbids,
/// and [`ElleError::Inconclusive`] if adya could not decide.
pub fn check_list_append(txns: &[ListTxn], opts: &ElleOpts) -> Result<ElleSummary, ElleError> {
    let (summary, appended) = validate(txns)?;
    if summary.committed == 0 {
        return Err(ElleError::NothingCommitted {
            transactions: txns.len(),
        });
    }
    garbage_reads(txns, &appended)?;
    let history = to_history(txns)?;
    let report = adya::check(
        &history,
        Workload::ListAppend,
        &adya::Opts {
            models: vec![CONSISTENCY_MODEL.into()],
            timeout: opts.cycle_search_timeout,
            ..adya::Opts::default()
        },
    );
    match report.valid {
        Valid::True => Ok(summary),
        Valid::False => Err(ElleError::Anomalies {
            anomaly_types: report.anomaly_types,
            not: report.not,
            explanation: explain(&report.anomalies),
        }),
        Valid::Unknown => Err(ElleError::Inconclusive {
            anomaly_types: report.anomaly_types,
            explanation: explain(&report.anomalies),
        }),
    }
}

/// Checks what adya assumes but does not enforce, and counts outcomes.
///
/// adya flags a value appended twice as `duplicate-appends` but does not
/// count that among the failures of any model, so such a history would
/// pass; it is refused here. Returns the counts and, for each appended
/// `(key, value)`, the transaction that appended it.
fn validate(txns: &[ListTxn]) -> Result<(ElleSummary, Appended), ElleError> {
    let mut summary = ElleSummary {
        transactions: txns.len(),
        ..ElleSummary::default()
    };
    let mut appended = Appended::new();
    for (i, t) in txns.iter().enumerate() {
        let malformed = |reason: String| ElleError::Malformed { txn: i, reason };
        if t.completed_at < t.invoked_at {
            return Err(malformed(format!(
                "completed at {} ns, before its invocation at {} ns",
                t.completed_at, t.invoked_at
            )));
        }
        match t.outcome {
            ListOutcome::Committed => summary.committed += 1,
            ListOutcome::Aborted => summary.aborted += 1,
            ListOutcome::Unknown => summary.unknown += 1,
        }
        for op in &t.ops {
            match op {
                ListOp::Append { key, value } => {
                    if let Some(first) = appended.insert((*key, *value), i) {
                        return Err(malformed(format!(
                            "appends {value} to key {key}, which T{first} appended already"
                        )));
                    }
                }
                ListOp::Read { key, list: None } if t.outcome == ListOutcome::Committed => {
                    return Err(malformed(format!(
                        "committed, but its read of key {key} carries no list"
                    )));
                }
                ListOp::Read { .. } => {}
            }
        }
    }
    Ok((summary, appended))
}

/// For each appended `(key, value)`, the index of the transaction that
/// appended it.
type Appended = HashMap<(u64, u64), usize>;

/// Fails with [`GARBAGE_READ`] if a committed read returned an element no
/// transaction of the history ever appended, which adya does not check:
/// such a read fits any version order it infers.
fn garbage_reads(txns: &[ListTxn], appended: &Appended) -> Result<(), ElleError> {
    let mut found = Vec::new();
    for (i, t) in txns.iter().enumerate() {
        if t.outcome != ListOutcome::Committed {
            continue;
        }
        for op in &t.ops {
            let ListOp::Read {
                key,
                list: Some(list),
            } = op
            else {
                continue;
            };
            if let Some(e) = list.iter().find(|e| !appended.contains_key(&(*key, **e))) {
                found.push(format!(
                    "T{i} read key {key} as {list:?}, but no transaction appended {e} to it"
                ));
            }
        }
    }
    if found.is_empty() {
        return Ok(());
    }
    let mut explanation = format!("{GARBAGE_READ} ({} found):\n", found.len());
    for f in found.iter().take(MAX_EXPLAINED_PER_TYPE) {
        let _ = writeln!(explanation, "  {f}");
    }
    if found.len() > MAX_EXPLAINED_PER_TYPE {
        let _ = writeln!(
            explanation,
            "  ... and {} more {GARBAGE_READ}",
            found.len() - MAX_EXPLAINED_PER_TYPE
        );
    }
    Err(ElleError::Anomalies {
        anomaly_types: vec![GARBAGE_READ.into()],
        not: vec![],
        explanation,
    })
}

/// A number as adya's integer, or why it cannot be one.
fn int(what: &str, n: u64, txn: usize) -> Result<i64, ElleError> {
    i64::try_from(n).map_err(|_| ElleError::Malformed {
        txn,
        reason: format!("{what} {n} does not fit adya's signed 64-bit integers"),
    })
}

/// Whether an event is a transaction's invocation or its completion; the
/// order of the variants is the order of events at one virtual instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Invoke,
    Complete,
}

/// The events of `txns` in history order: by virtual time, then
/// invocations before completions (so no real-time edge is invented
/// between a completion and an invocation at one instant), then by
/// position in the input. Each is `(time, event, txn)`.
fn event_order(txns: &[ListTxn]) -> Vec<(u64, Event, usize)> {
    let mut events: Vec<(u64, Event, usize)> = txns
        .iter()
        .enumerate()
        .flat_map(|(i, t)| {
            [
                (t.invoked_at, Event::Invoke, i),
                (t.completed_at, Event::Complete, i),
            ]
        })
        .collect();
    events.sort_unstable();
    events
}

/// Builds adya's history: one invocation and one completion per
/// transaction in [`event_order`], each paired explicitly with the other.
fn to_history(txns: &[ListTxn]) -> Result<History, ElleError> {
    let mut interner = Interner::default();
    let events = event_order(txns);
    let mut ops = Vec::with_capacity(events.len());
    // Position in `ops` of each transaction's invocation.
    let mut invoked: Vec<Option<usize>> = vec![None; txns.len()];
    let mut pair = vec![None; events.len()];
    for (pos, &(time, event, i)) in events.iter().enumerate() {
        let t = &txns[i];
        let kind = match (event, t.outcome) {
            (Event::Invoke, _) => OpType::Invoke,
            (Event::Complete, ListOutcome::Committed) => OpType::Ok,
            (Event::Complete, ListOutcome::Aborted) => OpType::Fail,
            (Event::Complete, ListOutcome::Unknown) => OpType::Info,
        };
        let mut value = Vec::with_capacity(t.ops.len());
        for op in &t.ops {
            value.push(match op {
                ListOp::Append { key, value } => Mop::Append {
                    key: interner.intern(Scalar::Int(int("key", *key, i)?)),
                    value: interner.intern(Scalar::Int(int("value", *value, i)?)),
                },
                ListOp::Read { key, list } => {
                    let key = interner.intern(Scalar::Int(int("key", *key, i)?));
                    let value = match (kind, list) {
                        (OpType::Ok, Some(list)) => ReadValue::List(
                            list.iter()
                                .map(|e| Ok(interner.intern(Scalar::Int(int("element", *e, i)?))))
                                .collect::<Result<_, ElleError>>()?,
                        ),
                        // Not yet known (an invocation), or not to be
                        // trusted (an aborted or unknown transaction).
                        _ => ReadValue::Nil,
                    };
                    Mop::Read { key, value }
                }
            });
        }
        ops.push(Op {
            index: i as u64,
            kind,
            process: Some(int("process", t.process, i)?),
            value,
            time: Some(int("time", time, i)?),
        });
        match event {
            Event::Invoke => invoked[i] = Some(pos),
            Event::Complete => {
                // Every invocation sorts before its own completion: the
                // times are ordered (see `validate`), and at one time
                // invocations come first.
                if let Some(inv) = invoked[i] {
                    pair[inv] = Some(pos);
                    pair[pos] = Some(inv);
                }
            }
        }
    }
    Ok(History {
        ops,
        pair,
        interner,
    })
}

/// adya's explanations, grouped by anomaly type, at most
/// [`MAX_EXPLAINED_PER_TYPE`] of each.
fn explain(anomalies: &BTreeMap<String, Vec<adya::Anomaly>>) -> String {
    let mut text = String::new();
    for (kind, found) in anomalies {
        let _ = writeln!(text, "{kind} ({} found):", found.len());
        for a in found.iter().take(MAX_EXPLAINED_PER_TYPE) {
            for line in a.explanation.lines() {
                let _ = writeln!(text, "  {line}");
            }
        }
        if found.len() > MAX_EXPLAINED_PER_TYPE {
            let _ = writeln!(
                text,
                "  ... and {} more {kind}",
                found.len() - MAX_EXPLAINED_PER_TYPE
            );
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(process: u64, at: (u64, u64), ops: Vec<ListOp>, outcome: ListOutcome) -> ListTxn {
        ListTxn {
            process,
            ops,
            invoked_at: at.0,
            completed_at: at.1,
            outcome,
        }
    }

    #[test]
    fn the_model_forbids_realtime_cycles() {
        assert_eq!(
            adya::model::canonical(CONSISTENCY_MODEL),
            Some(CONSISTENCY_MODEL)
        );
        let forbidden = adya::model::prohibited_by(&[CONSISTENCY_MODEL]);
        for a in [
            "G0",
            "G1a",
            "G1b",
            "G1c",
            "G-single-item",
            "G2-item",
            "lost-update",
            "internal",
            "incompatible-order",
            "G0-realtime",
            "G1c-realtime",
            "G-single-item-realtime",
            "G-nonadjacent-item-realtime",
            "G2-item-realtime",
        ] {
            assert!(forbidden.contains(a), "{a} is not forbidden: {forbidden:?}");
        }
    }

    #[test]
    fn invocations_sort_before_completions_at_one_instant() {
        let txns = [
            txn(0, (0, 10), vec![], ListOutcome::Committed),
            txn(0, (10, 20), vec![], ListOutcome::Committed),
        ];
        let order: Vec<(Event, usize)> = event_order(&txns)
            .into_iter()
            .map(|(_, e, i)| (e, i))
            .collect();
        assert_eq!(
            order,
            [
                (Event::Invoke, 0),
                (Event::Invoke, 1),
                (Event::Complete, 0),
                (Event::Complete, 1),
            ]
        );
    }

    #[test]
    fn pairs_each_invocation_with_its_own_completion() {
        // One client, back to back at one instant: adya's per-process
        // pairing would pair T0's completion with T1's invocation.
        let txns = [
            txn(
                0,
                (0, 10),
                vec![ListOp::Append { key: 1, value: 1 }],
                ListOutcome::Committed,
            ),
            txn(
                0,
                (10, 20),
                vec![ListOp::Read {
                    key: 1,
                    list: Some(vec![1]),
                }],
                ListOutcome::Committed,
            ),
        ];
        let h = to_history(&txns).unwrap();
        assert_eq!(h.pair, [Some(2), Some(3), Some(0), Some(1)]);
        for (pos, op) in h.ops.iter().enumerate() {
            let other = &h.ops[h.pair[pos].unwrap()];
            assert_eq!(op.index, other.index);
            assert_ne!(op.kind == OpType::Invoke, other.kind == OpType::Invoke);
        }
        assert_eq!(h.ops[0].value, h.ops[2].value);
        assert_eq!(
            [h.ops[0].kind, h.ops[1].kind, h.ops[2].kind, h.ops[3].kind],
            [OpType::Invoke, OpType::Invoke, OpType::Ok, OpType::Ok]
        );
        assert!(matches!(
            h.ops[1].value[0],
            Mop::Read {
                value: ReadValue::Nil,
                ..
            }
        ));
        assert!(matches!(
            &h.ops[3].value[0],
            Mop::Read { value: ReadValue::List(l), .. } if l.len() == 1
        ));
    }

    #[test]
    fn unknown_and_aborted_reads_are_dropped() {
        let read = || ListOp::Read {
            key: 1,
            list: Some(vec![]),
        };
        let txns = [
            txn(0, (0, 10), vec![read()], ListOutcome::Unknown),
            txn(1, (0, 10), vec![read()], ListOutcome::Aborted),
        ];
        let h = to_history(&txns).unwrap();
        for op in &h.ops {
            assert!(matches!(
                op.value[0],
                Mop::Read {
                    value: ReadValue::Nil,
                    ..
                }
            ));
        }
    }

    #[test]
    fn explanations_are_capped() {
        let many = (0..MAX_EXPLAINED_PER_TYPE + 2)
            .map(|i| adya::Anomaly {
                kind: "G1a".into(),
                ops: vec![],
                explanation: format!("reason {i}"),
                detail: Default::default(),
            })
            .collect();
        let text = explain(&BTreeMap::from([("G1a".to_string(), many)]));
        assert!(text.contains("reason 0"));
        assert!(!text.contains(&format!("reason {MAX_EXPLAINED_PER_TYPE}")));
        assert!(text.contains("... and 2 more G1a"), "{text}");
    }
}
