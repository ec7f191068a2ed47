//! The broker side of the model: input partitions, the group's committed offsets, the
//! output log with each record's transaction, the producer's queue and its faults.
//! Everything is one state under one lock ([`World`]); the scheduler ([`super::run`])
//! and the clients ([`super::clients`]) change it, the checks ([`super::check`]) read it.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;

pub const INPUT: &str = "cdr.raw";

/// A transaction's fate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Open,
    Committed,
    Aborted,
}

/// An output record the broker wrote.
#[derive(Debug, Clone)]
pub struct Written {
    pub topic: Arc<str>,
    pub value: Vec<u8>,
    /// Its transaction (`None`: not transactional).
    pub txn: Option<usize>,
}

/// A record in the producer's queue.
#[derive(Clone)]
pub struct Queued {
    pub topic: Arc<str>,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub opaque: usize,
    pub instance: u64,
    pub txn: Option<usize>,
    /// Where its delivery report goes.
    pub acks: Arc<crate::kafka::acks::Acks>,
}

/// A rebalance the member will see at its next poll.
#[derive(Debug, Clone)]
pub enum Rebalance {
    Revoke(Vec<i32>),
    Assign(Vec<i32>),
}

/// The consumer of the live instance.
#[derive(Debug, Default)]
pub struct Member {
    pub instance: u64,
    pub assigned: BTreeSet<i32>,
    pub positions: BTreeMap<i32, i64>,
    pub paused: BTreeSet<i32>,
    pub stored: BTreeMap<i32, i64>,
    pub pending: VecDeque<Rebalance>,
    /// Where the round-robin over partitions starts next.
    pub next: usize,
    /// When the member last polled (or joined): past `max.poll.interval.ms` without a
    /// poll while assigned, it is evicted.
    pub last_poll: Option<tokio::time::Instant>,
}

/// A transaction of the model.
#[derive(Debug, Default)]
pub struct Txn {
    pub fate: Option<Fate>,
    pub offsets: Vec<(i32, i64)>,
    /// A delivery of it failed: it can only abort.
    pub failed: bool,
}

/// Faults the scheduler turns on and off.
#[derive(Debug, Default)]
pub struct Faults {
    /// Output values the broker refuses for good (`MSG_SIZE_TOO_LARGE`).
    pub poison: HashSet<Vec<u8>>,
    /// Inputs whose dead letter the broker refuses for good.
    pub poison_dead_letter: HashSet<(i32, i64)>,
    /// A request holding a poisoned record is refused whole.
    pub whole_request: bool,
    /// No request is answered (an outage).
    pub stalled: bool,
    /// Enqueues are refused with a full queue.
    pub queue_full: bool,
    /// The next commits of stored offsets that fail.
    pub commit_failures: u32,
    /// The next transaction commits that fail (abortable).
    pub txn_commit_failures: u32,
    /// The next transaction commits that time out (retriable).
    pub txn_commit_timeouts: u32,
    /// The next aborts that fail (abortable, nothing fenced).
    pub abort_failures: u32,
    /// The next consumer polls that return an error.
    pub consumer_errors: u32,
    /// The group's committed offsets cannot be read (`OffsetFetch` refused).
    pub committed_unreadable: bool,
}

/// The broker, the group and the producer's queue.
#[derive(Default)]
pub struct State {
    /// The payloads of each input partition.
    pub input: Vec<Vec<Vec<u8>>>,
    pub committed: BTreeMap<i32, i64>,
    pub written: Vec<Written>,
    pub txns: Vec<Txn>,
    pub generation: i32,
    pub member: Member,
    /// The producer instance that owns the transactional id; older ones are fenced.
    pub producer: u64,
    pub open_txn: Option<usize>,
    pub queue: VecDeque<Queued>,
    pub capacity: usize,
    pub faults: Faults,
    /// Broken invariants, seen when they broke (the commits are checked as they happen).
    pub violations: Vec<String>,
    /// Why each input was refused for good, by the checks of the scheduler's draws.
    pub trace: Vec<String>,
    pub waker: Option<Waker>,
    /// Every commit, with the records visible when it was made: checked after the run.
    pub commits: Vec<Commit>,
    /// The broker refused a dead letter for good: the filter must stop.
    pub dead_letter_refused: bool,
    /// Fenced by the scheduler (a "fenced" error is right only then).
    pub fences: usize,
    /// The fenced instance met its fencing: it must stop.
    pub fence_noticed: Option<u64>,
    /// Since when the producer of an instance refuses every enqueue with a full queue
    /// (cleared by its next enqueue that is not refused so): its outputs stall.
    pub queue_full_since: Option<(u64, tokio::time::Instant)>,
}

/// A commit of an input partition's offset and what was visible then.
#[derive(Debug)]
pub struct Commit {
    pub partition: i32,
    pub offset: i64,
    /// Indexes in [`State::written`] of the records visible at the commit.
    pub visible: Vec<usize>,
}

/// The model, shared by the scheduler and the clients.
#[derive(Default)]
pub struct World(Mutex<State>);

impl World {
    pub fn new(state: State) -> Arc<World> {
        Arc::new(World(Mutex::new(state)))
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the consumer (a record or a rebalance waits).
    pub fn wake(&self) {
        if let Some(w) = self.lock().waker.take() {
            w.wake();
        }
    }
}

impl State {
    pub fn log(&mut self, line: String) {
        self.trace.push(line);
    }

    /// A new rebalance generation.
    pub fn rebalance(&mut self, event: Rebalance) {
        self.generation += 1;
        self.member.pending.push_back(event);
    }

    /// The member's partitions once the rebalances that wait are applied.
    pub fn assigned_after_pending(&self) -> BTreeSet<i32> {
        let mut assigned = self.member.assigned.clone();
        for event in &self.member.pending {
            match event {
                Rebalance::Revoke(ps) => ps.iter().for_each(|p| {
                    assigned.remove(p);
                }),
                Rebalance::Assign(ps) => assigned.extend(ps.iter().copied()),
            }
        }
        assigned
    }

    /// Records a commit of `offset` for `partition`: never backwards.
    pub fn commit(&mut self, partition: i32, offset: i64, how: &str) {
        let before = self.committed.get(&partition).copied().unwrap_or(0);
        if offset < before {
            self.violations.push(format!(
                "{how}: committed offset of partition {partition} moved back from {before} to {offset}"
            ));
        }
        self.log(format!("{how}: commit p{partition}@{offset}"));
        self.committed.insert(partition, offset);
        let visible = (0..self.written.len())
            .filter(|&i| self.is_visible(&self.written[i]))
            .collect();
        self.commits.push(Commit {
            partition,
            offset,
            visible,
        });
    }

    fn is_visible(&self, w: &Written) -> bool {
        match w.txn {
            None => true,
            Some(t) => self.txns[t].fate == Some(Fate::Committed),
        }
    }
}
