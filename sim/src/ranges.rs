//! Placement and routing of the cluster layer: which physical node hosts
//! which group's replicas, and which group serves which key range.
//!
//! Placement spreads replicas as `meridian cluster init --replicas R` does:
//! the `G·R` replicas, group by group, are dealt round the `N` nodes, so a
//! group's `R` replicas are on `R` distinct nodes and every node hosts
//! `⌈G·R/N⌉` or `⌊G·R/N⌋` replicas. Each round of dealing starts one node
//! further on (when `N ≥ R + 2`, which keeps a group's nodes distinct), so
//! groups dealt in different rounds share nodes in different
//! combinations, and one node's crash hits groups whose other replicas
//! differ. Keys are routed by range: a [`RangeTable`] maps the
//! start of each range to its group; each simulated client keeps its own
//! copy (its cache), as a real client caches range descriptors.

use bytes::Bytes;
use meridian_txn::GroupId;
use rand::Rng;
use rand::rngs::SmallRng;

use crate::history::{Bank, Roster};
use crate::lists;

/// The machines (index from zero) hosting the replicas of each group
/// (index `group - 1`), `replicas` per group over `nodes` machines.
pub(crate) fn place(groups: u64, replicas: u64, nodes: u64) -> Vec<Vec<usize>> {
    assert!(replicas <= nodes, "R distinct nodes per group need R <= N");
    let shift = u64::from(nodes >= replicas + 2);
    (0..groups)
        .map(|g| {
            (0..replicas)
                .map(|k| {
                    let slot = g * replicas + k;
                    ((slot + slot / nodes * shift) % nodes) as usize
                })
                .collect()
        })
        .collect()
}

/// Which group serves each key range: range `i` runs from `starts[i].0`
/// (the first from the empty key) to the next range's start (the last one
/// to the end of the key space).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RangeTable {
    starts: Vec<(Bytes, GroupId)>,
}

impl RangeTable {
    /// One group serving every key.
    pub(crate) fn single(group: GroupId) -> RangeTable {
        RangeTable {
            starts: vec![(Bytes::new(), group)],
        }
    }

    /// Groups `1..=cuts.len() + 1` in key order, split at `cuts` (sorted,
    /// distinct, none empty).
    pub(crate) fn with_cuts(cuts: &[Bytes]) -> RangeTable {
        let mut starts = vec![(Bytes::new(), 1)];
        for (i, c) in cuts.iter().enumerate() {
            assert!(
                !c.is_empty() && starts.last().is_some_and(|(s, _)| s < c),
                "cuts sorted and distinct"
            );
            starts.push((c.clone(), i as GroupId + 2));
        }
        RangeTable { starts }
    }

    /// The index of the range holding `key`.
    fn position(&self, key: &[u8]) -> usize {
        // The first range starts at the empty key, so one always matches.
        self.starts.partition_point(|(s, _)| s.as_ref() <= key) - 1
    }

    /// The group serving `key`.
    pub(crate) fn group_of(&self, key: &[u8]) -> GroupId {
        self.starts[self.position(key)].1
    }

    /// The range `[start, end)` group `group` serves, if it serves one.
    pub(crate) fn range_of(&self, group: GroupId) -> Option<(Bytes, Option<Bytes>)> {
        let i = self.starts.iter().position(|(_, g)| *g == group)?;
        Some((
            self.starts[i].0.clone(),
            self.starts.get(i + 1).map(|(s, _)| s.clone()),
        ))
    }

    /// The parts of the span `[start, end)` (`end` `None`: to the end of
    /// the key space), one per range it overlaps, in key order: the group
    /// and the part's bounds.
    pub(crate) fn spans(
        &self,
        start: &Bytes,
        end: Option<&Bytes>,
    ) -> Vec<(GroupId, Bytes, Option<Bytes>)> {
        let mut parts = Vec::new();
        let mut i = self.position(start);
        let mut from = start.clone();
        loop {
            let next = self.starts.get(i + 1).map(|(s, _)| s.clone());
            let to = match (&next, end) {
                (Some(n), Some(e)) if n < e => Some(n.clone()),
                (Some(n), None) => Some(n.clone()),
                (_, e) => e.cloned(),
            };
            parts.push((self.starts[i].1, from, to.clone()));
            match (next, end) {
                (Some(n), Some(e)) if n < *e => {
                    from = n;
                    i += 1;
                }
                (Some(n), None) => {
                    from = n;
                    i += 1;
                }
                _ => break,
            }
        }
        parts
    }

    /// The groups in key order of their ranges.
    pub(crate) fn groups(&self) -> impl Iterator<Item = GroupId> + '_ {
        self.starts.iter().map(|(_, g)| *g)
    }

    /// Group `child` takes over `[key, end)` of the range holding `key`
    /// (which must not start there).
    pub(crate) fn split(&mut self, key: Bytes, child: GroupId) {
        let i = self.position(&key);
        assert!(self.starts[i].0 != key, "a split key inside its range");
        self.starts.insert(i + 1, (key, child));
    }
}

/// The initial cut points of a cluster seed with `groups` groups: each cut
/// inside one workload's keys (the accounts, the roster, the registers,
/// then the lists), so transfers, roster changes and blind writes cross
/// groups. With fewer cuts than those three, the cut workloads are drawn.
pub(crate) fn initial_cuts(
    rng: &mut SmallRng,
    groups: u64,
    bank: &Bank,
    roster: &Roster,
    registers: &[Bytes],
) -> Vec<Bytes> {
    let mut workloads: Vec<Vec<Bytes>> = vec![
        bank.accounts.clone(),
        roster.keys.clone(),
        registers.to_vec(),
    ];
    let wanted = (groups as usize).saturating_sub(1);
    while workloads.len() > wanted {
        let drop = rng.random_range(0..workloads.len());
        workloads.remove(drop);
    }
    if wanted > workloads.len() {
        workloads.push((0..lists::LISTS).map(lists::key).collect());
    }
    let mut cuts: Vec<Bytes> = workloads
        .into_iter()
        .take(wanted)
        .map(|mut keys| {
            keys.sort();
            // Near the middle, so a transaction over two random keys of
            // the workload crosses groups about half the time.
            let mid = keys.len() / 2;
            let lo = (keys.len() - 1) / 2;
            keys[rng.random_range(lo.max(1)..=mid)].clone()
        })
        .collect();
    cuts.sort();
    cuts.dedup();
    cuts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn placement_spreads_replicas_over_distinct_nodes_evenly() {
        for nodes in 3..=9 {
            for groups in 1..=8 {
                let p = place(groups, 3, nodes);
                let mut per_node = vec![0; nodes as usize];
                for g in &p {
                    let mut distinct = g.clone();
                    distinct.sort_unstable();
                    distinct.dedup();
                    assert_eq!(distinct.len(), 3);
                    for &n in g {
                        per_node[n] += 1;
                    }
                }
                let (lo, hi) = (
                    per_node.iter().min().copied().unwrap_or(0),
                    per_node.iter().max().copied().unwrap_or(0),
                );
                assert!(hi - lo <= 1, "{per_node:?}");
            }
        }
    }

    #[test]
    fn range_routing_sends_each_key_and_span_part_to_one_group() {
        let mut t = RangeTable::with_cuts(&[b("b"), b("d")]);
        assert_eq!(t.group_of(b"a"), 1);
        assert_eq!(t.group_of(b"b"), 2);
        assert_eq!(t.group_of(b"c"), 2);
        assert_eq!(t.group_of(b"z"), 3);
        assert_eq!(
            t.spans(&b("a"), Some(&b("c"))),
            vec![(1, b("a"), Some(b("b"))), (2, b("b"), Some(b("c")))]
        );
        assert_eq!(
            t.spans(&b("b"), Some(&b("d"))),
            vec![(2, b("b"), Some(b("d")))]
        );
        assert_eq!(
            t.spans(&b("c"), None),
            vec![(2, b("c"), Some(b("d"))), (3, b("d"), None)]
        );
        t.split(b("c"), 4);
        assert_eq!(t.group_of(b"c"), 4);
        assert_eq!(t.group_of(b"bz"), 2);
        assert_eq!(t.range_of(4), Some((b("c"), Some(b("d")))));
        assert_eq!(t.groups().collect::<Vec<_>>(), vec![1, 2, 4, 3]);
    }
}
