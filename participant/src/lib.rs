//! Sans-IO participant group state machine (DESIGN.md §4): the MVCC store,
//! the wound-wait lock table, prepared transactions, safe time and closed
//! timestamps. It applies committed Paxos entries and does no I/O.
#![deny(missing_docs)]
