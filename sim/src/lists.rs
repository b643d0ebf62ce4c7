//! The list-append workload (Elle's, Kingsbury & Alvaro, VLDB 2020): read-write
//! transactions read a few lists and append a unique number to some of
//! them. Meridian stores a list as one value (`"3,17,42"`), so an append is
//! a read under a lock followed by a write of the longer list. Every
//! attempt's appends are unique across the run, so the order of the
//! elements in any list read reveals the order of the transactions that
//! wrote them, and [`check`] hands the history to the external
//! strict-serializability checker ([`crate::elle`]).

use bytes::Bytes;
use meridian_participant::Write;
use meridian_truetime::Timestamp;

use crate::elle::{self, ElleError, ElleOpts, ListOp, ListOutcome, ListTxn};
use crate::history::{History, Outcome, TxnRecord};

/// Prefix of the list keys.
pub(crate) const PREFIX: &[u8] = b"list/";
/// Lists in the workload: few, so transactions meet.
pub(crate) const LISTS: usize = 4;
/// Fewest committed list-append transactions a run must have for the check
/// to judge it: below that the dependency graph can be trivially empty,
/// which the checker rightly calls inconclusive.
pub(crate) const MIN_COMMITTED: usize = 8;
/// Appends per attempt at most; values are `(history index + 1) × this + j`,
/// unique in the run.
const MAX_APPENDS: u64 = 8;

/// The key of list `i`.
pub(crate) fn key(i: usize) -> Bytes {
    Bytes::from(format!("list/{i}"))
}

/// The list a value holds: `None` (no value) is the empty list.
pub(crate) fn decode(v: Option<&Bytes>) -> Result<Vec<u64>, String> {
    let Some(v) = v.filter(|v| !v.is_empty()) else {
        return Ok(Vec::new());
    };
    std::str::from_utf8(v)
        .map_err(|e| format!("list value is not text: {e}"))?
        .split(',')
        .map(|x| x.parse().map_err(|e| format!("list element {x:?}: {e}")))
        .collect()
}

fn encode(list: &[u64]) -> Bytes {
    let text: Vec<String> = list.iter().map(u64::to_string).collect();
    Bytes::from(text.join(","))
}

/// The value attempt `record` appends in its `j`-th append.
fn value(record: usize, j: usize) -> u64 {
    assert!((j as u64) < MAX_APPENDS, "too many appends in one attempt");
    (record as u64 + 1) * MAX_APPENDS + j as u64
}

/// The writes of attempt `record` that read `lists` (keys in `read_keys`
/// order, values in `values`) and appends to each list in `append`.
pub(crate) fn appends(
    record: usize,
    read_keys: &[Bytes],
    values: &[Option<Bytes>],
    append: &[usize],
) -> Vec<Write> {
    append
        .iter()
        .enumerate()
        .map(|(j, &i)| {
            let k = key(i);
            let pos = read_keys
                .iter()
                .position(|r| *r == k)
                .expect("an appended list was read first");
            // A malformed list read here is reported by the check at the
            // end; the append still happens, to an empty list.
            let mut list = decode(values[pos].as_ref()).unwrap_or_default();
            list.push(value(record, j));
            Write::put(k, encode(&list))
        })
        .collect()
}

fn list_index(k: &[u8]) -> Option<u64> {
    std::str::from_utf8(k.strip_prefix(PREFIX)?)
        .ok()?
        .parse()
        .ok()
}

/// The attempt as an Elle transaction, if it touched a list: its reads (in
/// the order read) then its appends. `end` stands in for the completion of
/// an attempt whose outcome never arrived.
fn as_list_txn(rec: &TxnRecord, end: Timestamp) -> Result<Option<ListTxn>, String> {
    let mut ops = Vec::new();
    for (k, v) in &rec.reads {
        if let Some(key) = list_index(k) {
            ops.push(ListOp::Read {
                key,
                list: Some(decode(v.as_ref())?),
            });
        }
    }
    for w in &rec.writes {
        if let Some(key) = list_index(&w.key) {
            let list = decode(w.value.as_ref())?;
            let value = *list.last().ok_or("an append wrote an empty list")?;
            ops.push(ListOp::Append { key, value });
        }
    }
    if ops.is_empty() {
        return Ok(None);
    }
    let outcome = match rec.outcome {
        Outcome::Committed(_) => ListOutcome::Committed,
        Outcome::Aborted => ListOutcome::Aborted,
        Outcome::Unknown => ListOutcome::Unknown,
    };
    Ok(Some(ListTxn {
        process: rec.client as u64,
        ops,
        invoked_at: rec.invoked.as_nanos(),
        completed_at: rec.completed.unwrap_or(end).as_nanos(),
        outcome,
    }))
}

/// Judges the run's list-append transactions for strict serializability
/// with the external checker. Runs with fewer than [`MIN_COMMITTED`]
/// committed ones are not judged (`Ok(false)`); a verdict other than
/// valid — an anomaly, or inconclusive — is an error.
pub(crate) fn check(history: &History, end: Timestamp) -> Result<bool, String> {
    let mut txns = Vec::new();
    for rec in &history.txns {
        if let Some(t) = as_list_txn(rec, end)? {
            txns.push(t);
        }
    }
    let committed = txns
        .iter()
        .filter(|t| t.outcome == ListOutcome::Committed)
        .count();
    if committed < MIN_COMMITTED {
        return Ok(false);
    }
    match elle::check_list_append(&txns, &ElleOpts::default()) {
        Ok(_) => Ok(true),
        Err(e @ (ElleError::Anomalies { .. } | ElleError::Inconclusive { .. })) => {
            Err(e.to_string())
        }
        Err(e) => Err(format!("the list history is malformed: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_round_trip_and_absent_is_empty() {
        assert_eq!(decode(None), Ok(vec![]));
        assert_eq!(decode(Some(&encode(&[]))), Ok(vec![]));
        assert_eq!(decode(Some(&encode(&[3, 17, 42]))), Ok(vec![3, 17, 42]));
        assert!(decode(Some(&Bytes::from_static(b"3,x"))).is_err());
    }

    #[test]
    fn each_attempt_appends_values_of_its_own() {
        let keys = [key(0), key(1)];
        let values = [Some(encode(&[8])), None];
        let w = appends(5, &keys, &values, &[1, 0]);
        assert_eq!(w[0], Write::put(key(1), encode(&[48])));
        assert_eq!(w[1], Write::put(key(0), encode(&[8, 49])));
        assert_ne!(value(5, 0), value(6, 0));
    }
}
