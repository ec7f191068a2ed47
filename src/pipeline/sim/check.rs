//! The invariants, checked after every run against an oracle: what each input must
//! become, computed by the same transformation before the run.
//!
//! - at least once: every expected output of every input is present at least once (or
//!   the input's dead letter, when one of its outputs was refused for good); no offset
//!   was committed before every record before it was done (its outputs or dead letter
//!   written); committed offsets never move back (checked at each commit);
//! - exactly once: the `read_committed` view holds every expected output and dead letter
//!   at most once and nothing from an aborted transaction; never an output of an input
//!   beside its dead letter (half-forwarded); every output's input offset
//!   is committed in the output's own transaction;
//! - both: a dead letter only for an input that was refused (by the policy or for good
//!   by the broker); no output that no input explains.
//!
//! Checked during the run, at every step ([`super::run`]): shutdown and fatal faults
//! within their bounds, no eviction, and readiness (`/readyz`'s own verdict): never
//! ready while the live instance owns no partition or its outputs stall past the pause,
//! ready again at quiescence.

use super::model::{Fate, State, INPUT};
use crate::dead_letter::Pointer;
use crate::pipeline::records::{Outgoing, Source, Transform};
use crate::telemetry::Stats;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// What an input must become.
#[derive(Debug, Default)]
pub struct Expected {
    pub outputs: Vec<(Arc<str>, Vec<u8>)>,
    /// The policy refuses it: its one output is a dead letter.
    pub dead_letter: bool,
}

/// The expected outputs of every input, and the input each output comes from.
#[derive(Debug, Default)]
pub struct Oracle {
    pub expected: BTreeMap<(i32, i64), Expected>,
    by_value: HashMap<(Arc<str>, Vec<u8>), (i32, i64)>,
    dead_letter_topic: Arc<str>,
}

impl Oracle {
    /// The oracle of `input` (payloads by partition); false if two inputs would have
    /// the same output (then outputs could not be told apart).
    pub fn new(transform: &Transform, input: &[Vec<Vec<u8>>]) -> Option<Oracle> {
        let mut oracle = Oracle {
            dead_letter_topic: transform.dead_letter_topic().clone(),
            ..Oracle::default()
        };
        let (stats, now) = (Stats::default(), chrono::Utc::now());
        for (p, records) in input.iter().enumerate() {
            for (o, payload) in records.iter().enumerate() {
                let source = Source {
                    topic: Arc::from(INPUT),
                    partition: p as i32,
                    offset: o as i64,
                };
                let mut out: Vec<Outgoing> = Vec::new();
                transform.process(&source, payload, now, &stats, &mut out);
                let mut e = Expected::default();
                for x in out {
                    if x.topic == oracle.dead_letter_topic {
                        e.dead_letter = true;
                        continue;
                    }
                    let key = (x.topic.clone(), x.value.clone());
                    if oracle.by_value.insert(key, source_key(&source)).is_some() {
                        return None;
                    }
                    e.outputs.push((x.topic, x.value));
                }
                oracle.expected.insert(source_key(&source), e);
            }
        }
        Some(oracle)
    }

    /// The input a written record comes from, and whether it is a dead letter.
    fn source_of(&self, topic: &Arc<str>, value: &[u8]) -> Option<((i32, i64), bool)> {
        if *topic == self.dead_letter_topic {
            let p: Pointer = serde_json::from_slice(value).ok()?;
            return Some(((p.source_partition, p.source_offset), true));
        }
        let key = (topic.clone(), value.to_vec());
        self.by_value.get(&key).map(|&s| (s, false))
    }
}

fn source_key(s: &Source) -> (i32, i64) {
    (s.partition, s.offset)
}

/// What the records at the given indexes of the log hold, by input.
#[derive(Default)]
struct Tally {
    outputs: HashMap<(i32, i64), HashMap<Arc<str>, usize>>,
    dead_letters: HashMap<(i32, i64), usize>,
}

impl Tally {
    fn of(oracle: &Oracle, st: &State, indexes: &[usize], problems: &mut Vec<String>) -> Tally {
        let mut t = Tally::default();
        for &i in indexes {
            let w = &st.written[i];
            match oracle.source_of(&w.topic, &w.value) {
                Some((s, true)) => *t.dead_letters.entry(s).or_default() += 1,
                Some((s, false)) => {
                    *t.outputs
                        .entry(s)
                        .or_default()
                        .entry(w.topic.clone())
                        .or_default() += 1
                }
                None => problems.push(format!("a record on {} no input explains", w.topic)),
            }
        }
        t
    }

    /// The input's outputs (or its dead letter) are all there.
    fn done(&self, s: (i32, i64), e: &Expected) -> bool {
        if self.dead_letters.get(&s).copied().unwrap_or(0) > 0 {
            return true;
        }
        let got = self.outputs.get(&s);
        !e.dead_letter
            && e.outputs
                .iter()
                .all(|(topic, _)| got.and_then(|g| g.get(topic)).copied().unwrap_or(0) > 0)
    }
}

/// Every broken invariant of a finished run.
pub fn check(oracle: &Oracle, st: &State, exactly_once: bool) -> Vec<String> {
    let mut problems = st.violations.clone();
    let visible: Vec<usize> = (0..st.written.len())
        .filter(|&i| match st.written[i].txn {
            None => true,
            Some(t) => st.txns[t].fate == Some(Fate::Committed),
        })
        .collect();
    let tally = Tally::of(oracle, st, &visible, &mut problems);
    for (&s, e) in &oracle.expected {
        if !tally.done(s, e) {
            problems.push(format!(
                "input p{}@{}: an expected output is missing",
                s.0, s.1
            ));
        }
        let refused = e.outputs.iter().any(|(_, v)| st.faults.poison.contains(v));
        let dead = tally.dead_letters.get(&s).copied().unwrap_or(0);
        if dead > 0 && !e.dead_letter && !refused {
            problems.push(format!(
                "input p{}@{}: dead-lettered though none of its outputs was refused",
                s.0, s.1
            ));
        }
        if exactly_once {
            let twice = tally
                .outputs
                .get(&s)
                .is_some_and(|g| g.values().any(|&n| n > 1));
            if twice || dead > 1 {
                problems.push(format!("input p{}@{}: an output visible twice", s.0, s.1));
            }
            let forwarded = tally
                .outputs
                .get(&s)
                .is_some_and(|g| g.values().any(|&n| n > 0));
            if dead > 0 && !e.dead_letter && forwarded {
                problems.push(format!(
                    "input p{}@{}: half-forwarded (an output and its dead letter visible)",
                    s.0, s.1
                ));
            }
        }
    }
    commits_after_outputs(oracle, st, &mut problems);
    if exactly_once {
        offsets_in_the_same_transaction(oracle, st, &mut problems);
    }
    problems
}

/// No offset committed before every record before it was done.
fn commits_after_outputs(oracle: &Oracle, st: &State, problems: &mut Vec<String>) {
    for c in &st.commits {
        let tally = Tally::of(oracle, st, &c.visible, &mut Vec::new());
        let early = (0..c.offset).find(|&o| {
            let s = (c.partition, o);
            oracle.expected.get(&s).is_some_and(|e| !tally.done(s, e))
        });
        if let Some(o) = early {
            problems.push(format!(
                "offset {} of partition {} committed before the outputs of offset {o} were written",
                c.offset, c.partition
            ));
            return;
        }
    }
}

/// Every output of a committed transaction has its input's offset committed in it.
fn offsets_in_the_same_transaction(oracle: &Oracle, st: &State, problems: &mut Vec<String>) {
    for w in &st.written {
        let Some(t) = w.txn else { continue };
        let txn = &st.txns[t];
        if txn.fate != Some(Fate::Committed) {
            continue;
        }
        let Some(((p, o), _)) = oracle.source_of(&w.topic, &w.value) else {
            continue;
        };
        if !txn.offsets.iter().any(|&(q, next)| q == p && next > o) {
            problems.push(format!(
                "transaction {t}: an output of p{p}@{o} without the input's offset"
            ));
            return;
        }
    }
}
