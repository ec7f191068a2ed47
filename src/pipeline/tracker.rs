//! The at-least-once invariant, as data: which input offsets may be stored.
//!
//! Every consumed record gets an entry in its partition's queue, in consumption order.
//! When every output (or the one dead letter) of a record is acknowledged it is marked
//! done; an offset becomes storable only when its record and every earlier record of the
//! same partition are done, so a crash at any point never skips an unacknowledged record.
//! Completions may arrive in any order. When a partition is revoked its entries are
//! dropped: a completion that arrives later (stale) stores nothing, so a partition handed
//! back to this member never has its offset moved back by an old record.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// One input record in flight.
#[derive(Debug)]
struct Entry {
    seq: u64,
    offset: i64,
    done: bool,
    /// When the record was received (ms since the Unix epoch; 0: not known).
    received: u64,
}

/// Offsets in flight, per input partition, in consumption order.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    index: HashMap<(Arc<str>, i32), usize>,
    partitions: Vec<(Arc<str>, i32, VecDeque<Entry>)>,
    /// Records consumed and not yet done (nor dropped by a revoke).
    pub(crate) in_flight: usize,
    next_seq: u64,
}

impl Tracker {
    /// The slot of a partition (created on first use; slots are never reused).
    pub(crate) fn partition(&mut self, topic: &str, partition: i32) -> usize {
        if let Some(&i) = self.index.get(&(Arc::from(topic), partition)) {
            return i;
        }
        let topic: Arc<str> = Arc::from(topic);
        self.partitions
            .push((topic.clone(), partition, VecDeque::new()));
        self.index
            .insert((topic, partition), self.partitions.len() - 1);
        self.partitions.len() - 1
    }

    /// Records a consumed offset; returns its sequence number, for [`Tracker::complete`].
    #[cfg(test)]
    pub(crate) fn push(&mut self, p: usize, offset: i64) -> u64 {
        self.push_received(p, offset, 0)
    }

    /// [`Tracker::push`] for a record received at `received` (ms since the Unix epoch).
    pub(crate) fn push_received(&mut self, p: usize, offset: i64, received: u64) -> u64 {
        self.next_seq += 1;
        self.in_flight += 1;
        self.partitions[p].2.push_back(Entry {
            seq: self.next_seq,
            offset,
            done: false,
            received,
        });
        self.next_seq
    }

    /// When the oldest record not done was received (ms since the Unix epoch): the
    /// first of a partition's queue is its oldest, and not done.
    pub(crate) fn oldest_received(&self) -> Option<u64> {
        self.partitions
            .iter()
            .filter_map(|(_, _, q)| q.front().map(|e| e.received))
            .min()
    }

    /// Marks a record done; returns the offset that may now be stored (the newest of the
    /// leading done records), if any. A stale completion — its entry was dropped by a
    /// revoke — changes nothing.
    pub(crate) fn complete(&mut self, p: usize, seq: u64) -> Option<(Arc<str>, i32, i64)> {
        let (topic, partition, queue) = &mut self.partitions[p];
        match queue.binary_search_by_key(&seq, |e| e.seq) {
            Ok(i) if !queue[i].done => {
                queue[i].done = true;
                self.in_flight -= 1;
            }
            _ => return None,
        }
        let mut storable = None;
        while queue.front().is_some_and(|e| e.done) {
            storable = queue.pop_front().map(|e| e.offset);
        }
        storable.map(|o| (topic.clone(), *partition, o))
    }

    /// Drops the entries of a revoked partition: their records are the new owner's to
    /// process again from the last commit. Returns how many were still in flight.
    pub(crate) fn revoke(&mut self, topic: &str, partition: i32) -> usize {
        let Some(&p) = self.index.get(&(Arc::from(topic), partition)) else {
            return 0;
        };
        let queue = &mut self.partitions[p].2;
        let dropped = queue.iter().filter(|e| !e.done).count();
        queue.clear();
        self.in_flight -= dropped;
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(t: &mut Tracker, p: usize, seq: u64) -> Option<i64> {
        t.complete(p, seq).map(|(_, _, o)| o)
    }

    #[test]
    fn an_offset_is_storable_only_when_every_earlier_record_is_done() {
        let mut t = Tracker::default();
        let p = t.partition("in", 0);
        let seqs: Vec<u64> = (10..15).map(|o| t.push(p, o)).collect();
        assert_eq!(t.in_flight, 5);
        // Out of order: 12 and 11 complete before 10.
        assert_eq!(stored(&mut t, p, seqs[2]), None);
        assert_eq!(stored(&mut t, p, seqs[1]), None);
        assert_eq!(stored(&mut t, p, seqs[0]), Some(12));
        assert_eq!(stored(&mut t, p, seqs[4]), None);
        assert_eq!(stored(&mut t, p, seqs[3]), Some(14));
        assert_eq!(t.in_flight, 0);
    }

    /// The oldest record not done is the first of some partition's queue: the wedged
    /// consumer's age (`cdr_oldest_unacknowledged_input_age_seconds`).
    #[test]
    fn the_oldest_record_not_done_is_known() {
        let mut t = Tracker::default();
        let (a, b) = (t.partition("in", 0), t.partition("in", 1));
        assert_eq!(t.oldest_received(), None);
        let a1 = t.push_received(a, 10, 1_000);
        let b1 = t.push_received(b, 7, 2_000);
        let a2 = t.push_received(a, 11, 3_000);
        assert_eq!(t.oldest_received(), Some(1_000));
        // A later record done first changes nothing; the oldest done moves it on.
        t.complete(a, a2);
        assert_eq!(t.oldest_received(), Some(1_000));
        t.complete(a, a1);
        assert_eq!(t.oldest_received(), Some(2_000));
        t.complete(b, b1);
        assert_eq!(t.oldest_received(), None);
        t.push_received(b, 8, 4_000);
        t.revoke("in", 1);
        assert_eq!(
            t.oldest_received(),
            None,
            "a revoked partition waits no more"
        );
    }

    #[test]
    fn partitions_are_independent() {
        let mut t = Tracker::default();
        let (a, b) = (t.partition("in", 0), t.partition("in", 1));
        assert_eq!(t.partition("in", 0), a, "the same slot again");
        let a1 = t.push(a, 100);
        let b1 = t.push(b, 7);
        let a2 = t.push(a, 101);
        assert_eq!(stored(&mut t, b, b1), Some(7));
        assert_eq!(stored(&mut t, a, a2), None, "waits for 100");
        let (topic, partition, offset) = t.complete(a, a1).unwrap();
        assert_eq!((&*topic, partition, offset), ("in", 0, 101));
    }

    #[test]
    fn a_completion_counts_once() {
        let mut t = Tracker::default();
        let p = t.partition("in", 0);
        let s1 = t.push(p, 1);
        let s2 = t.push(p, 2);
        assert_eq!(stored(&mut t, p, s2), None);
        assert_eq!(stored(&mut t, p, s2), None);
        assert_eq!(t.in_flight, 1, "a repeated completion is not counted again");
        assert_eq!(stored(&mut t, p, s1), Some(2));
        assert_eq!(t.in_flight, 0);
    }

    #[test]
    fn a_revoke_drops_the_partition_and_stale_completions_store_nothing() {
        let mut t = Tracker::default();
        let p = t.partition("in", 3);
        let other = t.partition("in", 4);
        let old: Vec<u64> = (50..53).map(|o| t.push(p, o)).collect();
        let o1 = t.push(other, 9);
        assert_eq!(stored(&mut t, p, old[0]), Some(50));
        assert_eq!(t.revoke("in", 3), 2);
        assert_eq!(t.in_flight, 1, "only the other partition's record");
        assert_eq!(t.revoke("in", 99), 0, "an unknown partition");
        // Re-assigned: consumption resumes from the commit (51) with new entries.
        let new: Vec<u64> = (51..53).map(|o| t.push(p, o)).collect();
        // The old records' deliveries complete late: nothing stored, nothing counted.
        assert_eq!(stored(&mut t, p, old[2]), None);
        assert_eq!(stored(&mut t, p, old[1]), None);
        assert_eq!(t.in_flight, 3);
        // The new entries store their own offsets, never moving back.
        assert_eq!(stored(&mut t, p, new[0]), Some(51));
        assert_eq!(stored(&mut t, p, new[1]), Some(52));
        assert_eq!(stored(&mut t, other, o1), Some(9));
        assert_eq!(t.in_flight, 0);
    }

    #[test]
    fn without_the_revoke_a_late_old_completion_would_move_the_offset_back() {
        // What the revoke prevents: the replayed records are pushed behind old entries
        // that complete late, and offsets are stored in queue order: 10, 11, 12, then
        // 10 again — the stored offset moves back, and the next commit with it.
        let run = |revoke: bool| {
            let mut t = Tracker::default();
            let p = t.partition("in", 0);
            let old: Vec<u64> = (10..13).map(|o| t.push(p, o)).collect();
            if revoke {
                t.revoke("in", 0);
            }
            let new: Vec<u64> = (10..13).map(|o| t.push(p, o)).collect();
            let mut offsets = Vec::new();
            for s in old.iter().chain(&new) {
                offsets.extend(stored(&mut t, p, *s));
            }
            offsets
        };
        assert_eq!(run(false), [10, 11, 12, 10, 11, 12]);
        assert_eq!(run(true), [10, 11, 12]);
    }
}
