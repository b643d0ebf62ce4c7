//! The lock table's uncontended path allocates nothing in the steady state
//! (an allocation costs about as much as the whole 150 ns budget). Checked
//! with a counting global allocator, so this lives in its own test binary.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::Bytes;
use meridian_participant::{Acquire, LockMode, LockTable, Priority, TxnId};
use meridian_truetime::Timestamp;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

/// Counts allocations made by the current thread.
struct Counting;

// SAFETY: forwards every call unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn uncontended_acquire_and_release_allocate_nothing() {
    let keys: Vec<Bytes> = (0..64).map(|i| Bytes::from(format!("key{i}"))).collect();
    let mut table = LockTable::default();
    let round = |table: &mut LockTable, n: u64| {
        for (i, key) in keys.iter().enumerate() {
            let txn = TxnId::local(n * 1000 + i as u64);
            let prio = Priority::new(Timestamp::from_nanos(txn.seq));
            let mode = if i % 2 == 0 {
                LockMode::Shared
            } else {
                LockMode::Exclusive
            };
            assert_eq!(table.acquire(txn, prio, key, mode), Ok(Acquire::Granted));
            if i % 3 == 0 {
                assert!(table.release(txn, key).is_empty());
            } else {
                assert!(table.release_all(txn).is_empty());
            }
        }
    };
    // Warm up: the maps grow and each key's `Bytes` is promoted to shared
    // storage on its first clone (which also shows the counter counts).
    let start = allocations();
    round(&mut table, 0);
    assert!(
        allocations() > start,
        "the allocation counter counts nothing"
    );
    let before = allocations();
    for n in 1..100 {
        round(&mut table, n);
    }
    assert_eq!(allocations() - before, 0, "the uncontended path allocated");
}
