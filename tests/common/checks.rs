//! The at-least-once check of the outputs: every expected key present, nothing
//! unexpected, and every duplicate a byte-identical replay.

use super::io::Output;
use std::collections::{BTreeMap, BTreeSet};

/// What [`at_least_once`] found in one output topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// Records read.
    pub read: usize,
    /// Copies beyond the first of a key.
    pub duplicates: usize,
    /// Expected keys never read.
    pub missing: usize,
}

impl std::fmt::Display for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "read {}, duplicates {}, missing {}",
            self.read, self.duplicates, self.missing
        )
    }
}

/// Where the outputs missing from one purpose's topic stand in the other's: how many of
/// their keys the other topic holds, and on which of its partitions. A loss that follows
/// the filter's batches takes both purposes' outputs of a record; one that follows a
/// produce request takes one topic-partition's batch.
pub fn missing_beside(want: &BTreeSet<String>, records: &[Output], other: &[Output]) -> String {
    let read: BTreeSet<String> = records.iter().map(Output::key_str).collect();
    let missing: BTreeSet<&String> = want.iter().filter(|k| !read.contains(*k)).collect();
    if missing.is_empty() {
        return "none missing".into();
    }
    let mut partitions: BTreeMap<i32, usize> = BTreeMap::new();
    let mut beside = BTreeSet::new();
    for o in other {
        let k = o.key_str();
        if missing.contains(&k) && beside.insert(k) {
            *partitions.entry(o.partition).or_default() += 1;
        }
    }
    format!(
        "{} missing, {} of them present in the other purpose's topic (by its partition: {partitions:?})",
        missing.len(),
        beside.len()
    )
}

/// At least once, checked: asserts that nothing unexpected was read from `topic` and
/// that every duplicate is a byte-identical replay (same key, value, timestamp and
/// headers); counts what was read, duplicated and missing.
pub fn at_least_once(topic: &str, want: &BTreeSet<String>, records: &[Output]) -> Delivery {
    let mut seen: BTreeMap<String, Vec<&Output>> = BTreeMap::new();
    for r in records {
        seen.entry(r.key_str()).or_default().push(r);
    }
    let missing = want.iter().filter(|k| !seen.contains_key(*k)).count();
    let mut duplicates = 0;
    for (k, copies) in &seen {
        assert!(want.contains(k), "{topic}: unexpected record {k}");
        duplicates += copies.len() - 1;
        for c in &copies[1..] {
            assert_eq!(
                c.payload, copies[0].payload,
                "{topic}: a replay of {k} differs"
            );
            assert_eq!(c.timestamp, copies[0].timestamp, "{topic}: {k} timestamp");
            assert_eq!(c.headers, copies[0].headers, "{topic}: {k} headers");
        }
    }
    Delivery {
        read: records.len(),
        duplicates,
        missing,
    }
}
