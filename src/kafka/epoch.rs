//! Leader epochs, which rust-rdkafka does not expose: read from a consumed record, and
//! stored with its offset, so that a commit after a leader change is checked against the
//! log instead of trusted blindly.

use rdkafka::bindings as rd;
use rdkafka::consumer::{Consumer, ConsumerContext};
use rdkafka::error::KafkaResult;
use rdkafka::message::BorrowedMessage;
use rdkafka::{Offset, TopicPartitionList};

/// The leader epoch a record was read under (`None`: the broker gave none).
pub fn of_message(message: &BorrowedMessage<'_>) -> Option<i32> {
    // SAFETY: the message pointer is valid while `message` borrows it.
    let epoch = unsafe { rd::rd_kafka_message_leader_epoch(message.ptr()) };
    (epoch >= 0).then_some(epoch)
}

/// Stores `(topic, partition, next offset, leader epoch)` for the next commit of the
/// stored offsets (librdkafka's `rd_kafka_offsets_store`, the epoch-carrying store).
pub fn store<X: ConsumerContext, C: Consumer<X>>(
    consumer: &C,
    positions: impl Iterator<Item = (String, i32, i64, Option<i32>)>,
) -> KafkaResult<()> {
    let mut tpl = TopicPartitionList::new();
    for (topic, partition, offset, epoch) in positions {
        tpl.add_partition_offset(&topic, partition, Offset::Offset(offset))?;
        if let Some(epoch) = epoch {
            let elements = tpl.count();
            // SAFETY: the list is valid and owned here; the element just added is its
            // last one (index `elements - 1`, in bounds).
            unsafe {
                let list = &*tpl.ptr();
                let element = list.elems.add(elements - 1);
                rd::rd_kafka_topic_partition_set_leader_epoch(element, epoch);
            }
        }
    }
    consumer.store_offsets(&tpl)
}
