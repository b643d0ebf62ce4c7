//! Tests of range splits in the group state machine (docs/design.md §9).

use bytes::Bytes;
use meridian_paxos::{Ballot, Entry, Payload};
use meridian_truetime::Timestamp;

use super::*;
use crate::command::{Command, Write};

fn ts(n: u64) -> Timestamp {
    Timestamp::from_nanos(n)
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn entry(slot: u64, at: u64, cmd: &Command) -> Entry {
    Entry {
        slot,
        ballot: Ballot::new(1, 1),
        ts: ts(at),
        payload: Payload::Command(cmd.encode()),
    }
}

fn commit(txn: u64, writes: &[(&str, Option<&str>)]) -> Command {
    Command::Commit {
        txn: TxnId::local(txn),
        writes: writes
            .iter()
            .map(|(k, v)| Write {
                key: b(k),
                value: v.map(b),
            })
            .collect(),
    }
}

fn prepare_writes(txn: TxnId, writes: Vec<Write>, coordinator: u64) -> Command {
    Command::Prepare {
        txn,
        coordinator,
        priority: Priority::new(ts(1)),
        deadline: ts(1_000_000),
        writes,
        reads: vec![],
        ranges: vec![],
    }
}

fn split_cmd(key: &str, child: u64, generation: u64) -> Command {
    Command::Split {
        key: b(key),
        child,
        generation,
    }
}

#[test]
fn design_s9_a_split_hands_the_right_half_with_its_history_and_prepared_parts_to_the_child() {
    let mut s = GroupState::default().with_descriptor(RangeDescriptor::whole(1));
    s.apply(&entry(
        1,
        10,
        &commit(1, &[("a", Some("1")), ("z", Some("1"))]),
    ))
    .unwrap();
    s.apply(&entry(2, 20, &commit(2, &[("z", Some("2"))])))
        .unwrap();
    let spanning = TxnId::local(3);
    let writes = vec![Write::put(b("b"), b("x")), Write::put(b("y"), b("x"))];
    s.apply(&entry(3, 30, &prepare_writes(spanning, writes, 9)))
        .unwrap();
    let applied = s.apply(&entry(4, 40, &split_cmd("m", 2, 2))).unwrap();
    let Applied::Split { left, right } = applied else {
        panic!("{applied:?}");
    };
    assert_eq!(
        (left.end, right.start.clone(), right.group),
        (Some(b("m")), b("m"), 2)
    );
    let child = s.take_split_off().expect("the child's state");
    assert_eq!(child.descriptor(), &right);
    assert_eq!((child.applied_slot(), child.t_paxos_safe()), (4, ts(40)));
    // History above the horizon moved: both versions of z.
    assert_eq!(
        child.read(b"z", ts(15)).unwrap().map(|(_, v)| v),
        Some(b("1"))
    );
    assert_eq!(
        child.read(b"z", ts(25)).unwrap().map(|(_, v)| v),
        Some(b("2"))
    );
    assert_eq!(s.read(b"z", ts(25)).unwrap(), None);
    assert_eq!(s.read(b"a", ts(25)).unwrap().map(|(_, v)| v), Some(b("1")));
    // The spanning prepared transaction is prepared on both sides, each
    // with its own keys; the parent forwards its decision.
    let keys = |p: &PreparedTxn| p.writes.iter().map(|w| w.key.clone()).collect::<Vec<_>>();
    assert_eq!(keys(s.prepared_txn(spanning).unwrap()), vec![b("b")]);
    assert_eq!(keys(child.prepared_txn(spanning).unwrap()), vec![b("y")]);
    assert_eq!(s.moved_txn(spanning).map(|m| m.child), Some(2));
    assert_eq!(child.committed(TxnId::local(2)), Some(ts(20)));
    // A commit record behind the split naming a moved key is void.
    assert_eq!(
        s.apply(&entry(5, 50, &commit(4, &[("q", Some("1"))])))
            .unwrap(),
        Applied::CommitVoid {
            txn: TxnId::local(4)
        }
    );
    // Snapshots carry the descriptor, the moved transactions and children.
    let back = GroupState::decode(&s.encode(), DEFAULT_COMMIT_RECORD_RETENTION_NANOS).unwrap();
    assert_eq!(back.descriptor(), s.descriptor());
    assert_eq!(back.children(), std::slice::from_ref(&right));
    assert_eq!(back.moved_txn(spanning), s.moved_txn(spanning));
    let child_back =
        GroupState::decode(&child.encode(), DEFAULT_COMMIT_RECORD_RETENTION_NANOS).unwrap();
    assert_eq!(child_back.descriptor(), &right);
    assert!(child_back.prepared_txn(spanning).is_some());
}

#[test]
fn design_s9_a_split_at_a_stale_generation_or_outside_the_range_changes_nothing() {
    let mut s = GroupState::default().with_descriptor(RangeDescriptor::whole(1));
    assert_eq!(
        s.apply(&entry(1, 10, &split_cmd("m", 2, 3))).unwrap(),
        Applied::SplitVoid { child: 2 }
    );
    s.apply(&entry(2, 20, &split_cmd("m", 2, 2))).unwrap();
    let _ = s.take_split_off();
    for (slot, key) in [(3, "m"), (4, "q")] {
        assert_eq!(
            s.apply(&entry(slot, 10 * slot, &split_cmd(key, 3, 3)))
                .unwrap(),
            Applied::SplitVoid { child: 3 }
        );
    }
    assert_eq!(s.descriptor().generation, 2);
    assert!(s.take_split_off().is_none());
}
