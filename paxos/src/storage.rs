//! Durable state of a replica: the [`Storage`] trait and an in-memory
//! implementation that loses unsynced writes on a crash.
//!
//! The replica never calls storage itself. It emits
//! [`crate::Output::Persist`] requests in order; the driver writes each with
//! [`Storage::write`], makes a batch durable with one [`Storage::sync`]
//! (group commit), and then reports [`crate::Input::Persisted`] with the
//! highest sequence number covered. On restart the driver calls
//! [`Storage::load`] and hands the result to [`crate::Replica::new`].

use crate::types::{Entry, HardState, Slot, Snapshot};

/// One batch of changes to durable state, applied in field order:
/// snapshot, truncation, entries, hard state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PersistRequest {
    /// Sequence number; requests are written and acknowledged in order.
    pub seq: u64,
    /// Replace the snapshot and drop log entries it covers.
    pub snapshot: Option<Snapshot>,
    /// Drop every log entry at or after this slot.
    pub truncate_from: Option<Slot>,
    /// Append these entries (contiguous slots).
    pub entries: Vec<Entry>,
    /// Replace the hard state.
    pub hard_state: Option<HardState>,
}

impl PersistRequest {
    /// Whether the request changes nothing.
    pub fn is_empty(&self) -> bool {
        self.snapshot.is_none()
            && self.truncate_from.is_none()
            && self.entries.is_empty()
            && self.hard_state.is_none()
    }
}

/// What a replica finds on disk when it restarts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// The last durable hard state.
    pub hard_state: HardState,
    /// The last durable snapshot, if any.
    pub snapshot: Option<Snapshot>,
    /// Durable entries after the snapshot, contiguous.
    pub entries: Vec<Entry>,
}

impl Recovered {
    /// Applies one request to this state, as a disk would.
    pub fn apply(&mut self, req: &PersistRequest) {
        if let Some(snap) = &req.snapshot {
            self.entries.retain(|e| e.slot > snap.last_slot);
            // A snapshot that does not match the retained suffix replaces it.
            if let Some(first) = self.entries.first() {
                if first.slot != snap.last_slot + 1 {
                    self.entries.clear();
                }
            }
            self.snapshot = Some(snap.clone());
        }
        if let Some(from) = req.truncate_from {
            self.entries.retain(|e| e.slot < from);
        }
        for e in &req.entries {
            let expected = self
                .entries
                .last()
                .map(|l| l.slot + 1)
                .unwrap_or_else(|| self.snapshot.as_ref().map_or(1, |s| s.last_slot + 1));
            if e.slot < expected {
                // Already covered by a snapshot installed in the same request.
                continue;
            }
            assert_eq!(e.slot, expected, "log append must be contiguous");
            self.entries.push(e.clone());
        }
        if let Some(hs) = req.hard_state {
            self.hard_state = hs;
        }
    }
}

/// Where a replica's durable state lives (docs/design.md §3). Today only
/// [`MemStorage`] implements it (the simulator and the test drivers); the
/// node runtime will implement it with segment files, CRC32C per record
/// and `fdatasync`.
pub trait Storage {
    /// The implementation's error type. An error from [`Storage::sync`] is
    /// fatal to the process: after a failed fsync the page cache can no
    /// longer be trusted (PostgreSQL's lesson).
    type Error: std::error::Error + Send + Sync + 'static;

    /// Saves the promised ballot.
    fn save_hard_state(&mut self, hs: HardState) -> Result<(), Self::Error>;
    /// Appends entries after the current last one.
    fn append_entries(&mut self, entries: &[Entry]) -> Result<(), Self::Error>;
    /// Drops every entry at or after `from`.
    fn truncate_suffix(&mut self, from: Slot) -> Result<(), Self::Error>;
    /// Replaces the snapshot and drops entries it covers.
    fn install_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), Self::Error>;
    /// Makes every write so far durable (one fsync for many entries).
    fn sync(&mut self) -> Result<(), Self::Error>;
    /// Reads back what is durable.
    fn load(&self) -> Result<Recovered, Self::Error>;

    /// Writes one [`PersistRequest`] in its defined order (not yet durable).
    fn write(&mut self, req: &PersistRequest) -> Result<(), Self::Error> {
        if let Some(s) = &req.snapshot {
            self.install_snapshot(s)?;
        }
        if let Some(from) = req.truncate_from {
            self.truncate_suffix(from)?;
        }
        if !req.entries.is_empty() {
            self.append_entries(&req.entries)?;
        }
        if let Some(hs) = req.hard_state {
            self.save_hard_state(hs)?;
        }
        Ok(())
    }
}

/// Never fails: [`MemStorage`] has no I/O.
#[derive(Debug, thiserror::Error)]
#[error("memory storage cannot fail")]
pub struct NoError;

/// In-memory [`Storage`]: writes are buffered until [`Storage::sync`];
/// [`MemStorage::crash`] keeps only a prefix of the unsynced writes, as a
/// disk whose page cache was partly flushed would.
#[derive(Clone, Debug, Default)]
pub struct MemStorage {
    durable: Recovered,
    unsynced: Vec<PersistRequest>,
}

impl MemStorage {
    /// Empty storage.
    pub fn new() -> MemStorage {
        MemStorage::default()
    }

    /// Simulates a power loss: the first `keep` unsynced writes reached the
    /// disk, the rest are gone.
    pub fn crash(&mut self, keep: usize) {
        let keep = keep.min(self.unsynced.len());
        for req in self.unsynced.drain(..keep) {
            self.durable.apply(&req);
        }
        self.unsynced.clear();
    }

    /// How many writes are not yet synced.
    pub fn unsynced_len(&self) -> usize {
        self.unsynced.len()
    }

    /// Buffers a whole request (cheaper than the per-part trait methods).
    fn buffer(&mut self, req: PersistRequest) {
        self.unsynced.push(req);
    }
}

impl Storage for MemStorage {
    type Error = NoError;

    fn save_hard_state(&mut self, hs: HardState) -> Result<(), NoError> {
        self.buffer(PersistRequest {
            hard_state: Some(hs),
            ..PersistRequest::default()
        });
        Ok(())
    }

    fn append_entries(&mut self, entries: &[Entry]) -> Result<(), NoError> {
        self.buffer(PersistRequest {
            entries: entries.to_vec(),
            ..PersistRequest::default()
        });
        Ok(())
    }

    fn truncate_suffix(&mut self, from: Slot) -> Result<(), NoError> {
        self.buffer(PersistRequest {
            truncate_from: Some(from),
            ..PersistRequest::default()
        });
        Ok(())
    }

    fn install_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), NoError> {
        self.buffer(PersistRequest {
            snapshot: Some(snapshot.clone()),
            ..PersistRequest::default()
        });
        Ok(())
    }

    fn write(&mut self, req: &PersistRequest) -> Result<(), NoError> {
        self.buffer(req.clone());
        Ok(())
    }

    fn sync(&mut self) -> Result<(), NoError> {
        for req in self.unsynced.drain(..) {
            self.durable.apply(&req);
        }
        Ok(())
    }

    fn load(&self) -> Result<Recovered, NoError> {
        Ok(self.durable.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Ballot, Payload};
    use meridian_truetime::Timestamp;

    fn e(slot: Slot) -> Entry {
        Entry {
            slot,
            ballot: Ballot::new(1, 1),
            ts: Timestamp::ZERO,
            payload: Payload::Noop,
        }
    }

    #[test]
    fn unsynced_writes_are_lost_on_crash() {
        let mut s = MemStorage::new();
        s.write(&PersistRequest {
            entries: vec![e(1)],
            ..Default::default()
        })
        .unwrap();
        s.sync().unwrap();
        s.write(&PersistRequest {
            entries: vec![e(2)],
            ..Default::default()
        })
        .unwrap();
        s.crash(0);
        assert_eq!(s.load().unwrap().entries, vec![e(1)]);
    }

    #[test]
    fn crash_keeps_a_prefix_of_unsynced_writes() {
        let mut s = MemStorage::new();
        for slot in 1..=3 {
            s.write(&PersistRequest {
                entries: vec![e(slot)],
                ..Default::default()
            })
            .unwrap();
        }
        s.crash(2);
        assert_eq!(s.load().unwrap().entries, vec![e(1), e(2)]);
    }

    #[test]
    fn snapshot_then_truncate_then_append_applies_in_order() {
        let mut r = Recovered::default();
        r.apply(&PersistRequest {
            entries: vec![e(1), e(2), e(3)],
            ..Default::default()
        });
        r.apply(&PersistRequest {
            snapshot: Some(Snapshot {
                last_slot: 1,
                ..Default::default()
            }),
            truncate_from: Some(3),
            entries: vec![e(3)],
            hard_state: Some(HardState {
                promised: Ballot::new(2, 2),
            }),
            ..Default::default()
        });
        assert_eq!(r.entries, vec![e(2), e(3)]);
        assert_eq!(r.hard_state.promised, Ballot::new(2, 2));
    }
}
