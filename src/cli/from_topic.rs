//! `dry-run --from-topic`: the first records of a real topic, read-only. The partitions
//! are assigned, not subscribed (no consumer group joins), read from their beginning, and
//! nothing is committed: the filter's group and its offsets are untouched.

use super::UsageError;
use crate::config::Settings;
use crate::error::Failure;
use crate::kafka::Context;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeSet;
use std::io;
use std::time::{Duration, Instant};

/// Reading stops when nothing (no record, no end of partition) arrived for this long.
const IDLE_LIMIT: Duration = Duration::from_secs(15);

/// Calls `each` with the value of up to `count` records of `topic`, partition by
/// partition as they arrive, stopping at the end of every partition.
pub(super) fn read(
    settings: &Settings,
    topic: &str,
    count: u64,
    mut each: impl FnMut(&[u8]) -> io::Result<()>,
) -> Result<(), Failure> {
    super::reach(settings).map_err(|e| e.context(format!("dry-run: cannot read {topic}")))?;
    let group = format!("{}-dry-run", settings.kafka.group_id);
    let config = crate::kafka::reader_config(settings, &group);
    // A property librdkafka refuses is the configuration's to fix. The filter's client
    // context: librdkafka's messages through `tracing`, and the end of a partition
    // (`enable.partition.eof`, the stop condition below) not logged as an error.
    // `kafka::create` names a refused property by the user's key, secrets masked.
    let consumer: BaseConsumer<Context> =
        crate::kafka::create(settings, &config, Context::default()).map_err(|e| {
            Failure::user(e).context("dry-run: kafka consumer configuration refused")
        })?;
    let partitions = partitions(settings, &consumer, topic)?;
    let mut assignment = TopicPartitionList::new();
    for p in &partitions {
        assignment
            .add_partition_offset(topic, *p, Offset::Beginning)
            .map_err(Failure::world)?;
    }
    consumer.assign(&assignment).map_err(Failure::world)?;
    let mut at_end = BTreeSet::new();
    let mut read = 0u64;
    let mut last_progress = Instant::now();
    while read < count && at_end.len() < partitions.len() {
        match consumer.poll(Duration::from_millis(200)) {
            None if last_progress.elapsed() > IDLE_LIMIT => {
                tracing::warn!(
                    topic,
                    read,
                    "dry-run: no record for {}s, stopping",
                    IDLE_LIMIT.as_secs()
                );
                break;
            }
            None => {}
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
                last_progress = Instant::now();
            }
            Some(Err(e)) => {
                return Err(Failure::world(e).context(format!("dry-run: reading {topic} failed")))
            }
            Some(Ok(m)) => {
                at_end.remove(&m.partition());
                read += 1;
                last_progress = Instant::now();
                each(m.payload().unwrap_or_default())?;
            }
        }
    }
    Ok(())
}

/// The partitions of `topic`; a topic that does not exist is a usage error.
fn partitions(
    settings: &Settings,
    consumer: &BaseConsumer<Context>,
    topic: &str,
) -> Result<Vec<i32>, Failure> {
    let metadata = crate::kafka::reach::first_metadata(
        consumer.client(),
        Some(topic),
        &settings.kafka.bootstrap_servers,
    )
    .map_err(|e| {
        match e {
            Ok(unreachable) => Failure::from(unreachable),
            Err(e) => Failure::world(e),
        }
        .context(format!("dry-run: cannot read the metadata of {topic}"))
    })?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(UsageError(format!("--from-topic: topic {topic} does not exist")).into());
    }
    Ok(partitions)
}
