//! The shape of one group's log by slot numbers alone: which slots are
//! live and in which segment each was written. The write-ahead log keeps
//! one per group to know when an old segment holds nothing live; recovery
//! replays the same rules, so both follow `Recovered::apply` exactly.

use meridian_paxos::{Entry, Slot};

/// Segments are numbered from 1; this stands for "written in a segment
/// that was deleted". Recovery finds a group's first checkpoint in the
/// oldest kept segment, and the entries live at that point are known only
/// by their slots until later records drop them.
pub(crate) const DELETED_SEGMENT: u64 = 0;

/// A run of live slots written to one segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Run {
    /// The first slot of the run; it ends where the next run starts.
    pub(crate) start: Slot,
    /// The segment holding it.
    pub(crate) segment: u64,
}

/// A group's log as slot ranges. Live entries are `runs[0].start ..= end`
/// when `runs` is not empty; there are none otherwise, and then `end` is
/// the snapshot's last slot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct LogShape {
    snapshot_last: Slot,
    end: Slot,
    runs: Vec<Run>,
}

/// An append that does not continue the log (what `Recovered::apply`
/// asserts against).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Gap {
    /// The slot the log expected next.
    pub(crate) expected: Slot,
    /// The slot it was given.
    pub(crate) got: Slot,
}

impl LogShape {
    /// The shape at a checkpoint: a snapshot through `snapshot_last`, then
    /// live entries through `end`, written in a segment no longer known.
    pub(crate) fn at_checkpoint(snapshot_last: Slot, end: Slot) -> LogShape {
        let runs = if end > snapshot_last {
            vec![Run {
                start: snapshot_last + 1,
                segment: DELETED_SEGMENT,
            }]
        } else {
            Vec::new()
        };
        LogShape {
            snapshot_last,
            end: end.max(snapshot_last),
            runs,
        }
    }

    /// The last slot of the log (the snapshot's if no entries follow it).
    pub(crate) fn end(&self) -> Slot {
        self.end
    }

    /// The first live entry's slot, if any.
    pub(crate) fn first_live(&self) -> Option<Slot> {
        self.runs.first().map(|r| r.start)
    }

    /// The oldest segment holding a live entry of this group.
    pub(crate) fn oldest_segment(&self) -> Option<u64> {
        self.runs.iter().map(|r| r.segment).min()
    }

    /// Installs a snapshot through `last`: drops entries it covers, and all
    /// entries if what remains does not follow it.
    pub(crate) fn snapshot(&mut self, last: Slot) {
        let next = last.saturating_add(1);
        if self.end <= last {
            self.runs.clear();
        } else if let Some(i) = self.runs.iter().rposition(|r| r.start <= next) {
            self.runs.drain(..i);
            if self.runs[0].start < next {
                self.runs[0].start = next;
            }
        }
        if self.runs.first().is_some_and(|r| r.start != next) {
            self.runs.clear();
        }
        self.snapshot_last = last;
        if self.runs.is_empty() {
            self.end = last;
        }
    }

    /// Drops every entry at or after `from`.
    pub(crate) fn truncate(&mut self, from: Slot) {
        self.runs.retain(|r| r.start < from);
        self.end = match self.runs.is_empty() {
            true => self.snapshot_last,
            false => self.end.min(from - 1),
        };
    }

    /// Appends `entries` written in `segment`, skipping those already
    /// covered as `Recovered::apply` does; returns how many were taken
    /// (they are the last ones of `entries`).
    pub(crate) fn append(&mut self, entries: &[Entry], segment: u64) -> Result<usize, Gap> {
        let mut taken = 0;
        for e in entries {
            let expected = self.end.saturating_add(1);
            if e.slot < expected {
                if taken > 0 {
                    // An entry skipped after one was taken: `apply` would
                    // skip it too, but the taken ones would no longer be a
                    // suffix of the request; no Paxos request looks so.
                    return Err(Gap {
                        expected,
                        got: e.slot,
                    });
                }
                continue;
            }
            if e.slot != expected {
                return Err(Gap {
                    expected,
                    got: e.slot,
                });
            }
            if taken == 0 && self.runs.last().is_none_or(|r| r.segment != segment) {
                self.runs.push(Run {
                    start: e.slot,
                    segment,
                });
            }
            self.end = e.slot;
            taken += 1;
        }
        Ok(taken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meridian_paxos::{Ballot, Payload};
    use meridian_truetime::Timestamp;

    fn e(slot: Slot) -> Entry {
        Entry {
            slot,
            ballot: Ballot::new(1, 1),
            ts: Timestamp::ZERO,
            payload: Payload::Noop,
        }
    }

    fn es(slots: std::ops::RangeInclusive<Slot>) -> Vec<Entry> {
        slots.map(e).collect()
    }

    #[test]
    fn runs_follow_the_segments_entries_were_written_to() {
        let mut s = LogShape::default();
        assert_eq!(s.append(&es(1..=3), 1), Ok(3));
        assert_eq!(s.append(&es(4..=5), 2), Ok(2));
        assert_eq!(s.oldest_segment(), Some(1));
        s.snapshot(3);
        assert_eq!(s.oldest_segment(), Some(2));
        assert_eq!(s.first_live(), Some(4));
        s.truncate(4);
        assert_eq!(s.oldest_segment(), None);
        assert_eq!(s.end(), 3);
    }

    #[test]
    fn a_snapshot_past_the_log_clears_it() {
        let mut s = LogShape::default();
        s.append(&es(1..=3), 1).unwrap();
        s.snapshot(10);
        assert_eq!(s.first_live(), None);
        assert_eq!(s.end(), 10);
        assert_eq!(
            s.append(&es(12..=12), 1),
            Err(Gap {
                expected: 11,
                got: 12
            })
        );
    }

    #[test]
    fn an_older_snapshot_that_does_not_meet_the_log_clears_it() {
        let mut s = LogShape::default();
        s.append(&es(1..=3), 1).unwrap();
        s.snapshot(2);
        s.snapshot(1);
        // entries 3.. do not follow slot 1.
        assert_eq!(s.first_live(), None);
        assert_eq!(s.end(), 1);
    }

    #[test]
    fn covered_entries_are_skipped() {
        let mut s = LogShape::default();
        s.snapshot(5);
        assert_eq!(s.append(&es(4..=7), 3), Ok(2));
        assert_eq!(s.first_live(), Some(6));
    }
}
