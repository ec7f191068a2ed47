//! Exactly once, the positions of a batch's input partitions: the next offsets a
//! committed transaction sends with its outputs, and where the consumer rewinds to
//! after an abort.

use super::batch::{Batch, Record};
use super::boundary::{Input, Position};
use super::PipelineError;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The first offset the batch consumed, per input partition: where an abort rewinds to
/// (a record received but not processed included).
fn first_offsets(batch: &Batch) -> BTreeMap<(Arc<str>, i32), i64> {
    let mut first = BTreeMap::new();
    for r in &batch.records {
        first
            .entry((r.source.topic.clone(), r.source.partition))
            .or_insert(r.source.offset);
    }
    first
}

/// The next offset to consume, per input partition, after the processed records.
pub(super) fn positions(records: &[Record]) -> Vec<Position> {
    let mut next = BTreeMap::new();
    for r in records.iter().filter(|r| r.processed) {
        next.insert(
            (&r.source.topic, r.source.partition),
            (r.source.offset + 1, r.leader_epoch),
        );
    }
    next.into_iter()
        .map(|((topic, partition), (offset, leader_epoch))| Position {
            topic: topic.clone(),
            partition,
            offset,
            leader_epoch,
        })
        .collect()
}

/// Rewinds the consumer, per partition still owned, to the first offset the aborted
/// batch consumed. A seek that fails is an error: going on would skip the batch.
pub(super) fn rewind(
    consumer: &impl Input,
    batch: &Batch,
    revoked: &[(String, i32)],
) -> Result<(), PipelineError> {
    for ((topic, partition), first) in first_offsets(batch) {
        let first = if revoked
            .iter()
            .any(|(t, p)| t.as_str() == &*topic && *p == partition)
        {
            // Its new owner resumes from the committed offset — unless it is this
            // member and a record of it was received since: that one is read again.
            match &batch.unadmitted {
                Some(u) if u.topic == topic && u.partition == partition => u.offset,
                _ => continue,
            }
        } else {
            first
        };
        consumer
            .seek(&topic, partition, first)
            .map_err(|error| PipelineError::Rewind {
                topic: topic.to_string(),
                partition,
                offset: first,
                error,
            })?;
    }
    Ok(())
}
