//! Telemetry: typed internal events, each emitted from one place, that both log and count.
//!
//! Metric names live here and nowhere else. Labels carry purposes, reasons, topics and
//! formats — never a value of a record.

use metrics::counter;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

pub const EVENTS_CONSUMED: &str = "cdr_events_consumed_total";
pub const RECORDS_PRODUCED: &str = "cdr_records_produced_total";
pub const RECORDS_DROPPED: &str = "cdr_records_dropped_total";
pub const DEAD_LETTERS: &str = "cdr_dead_letters_total";
pub const DECODE_ERRORS: &str = "cdr_decode_errors_total";
pub const PRODUCE_RETRIES: &str = "cdr_produce_retries_total";
pub const TRANSACTIONS_ABORTED: &str = "cdr_transactions_aborted_total";

/// Counts kept in process, for `demo`'s summary and the end-of-run log line.
#[derive(Debug, Default)]
pub struct Stats {
    pub consumed: AtomicU64,
    /// Input records whose outputs are all acknowledged (offset storable).
    pub completed: AtomicU64,
    pub produced: Mutex<BTreeMap<&'static str, u64>>,
    pub dropped: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    pub dead_letters: Mutex<BTreeMap<&'static str, u64>>,
}

impl Stats {
    pub fn consumed(&self) -> u64 {
        self.consumed.load(Ordering::Relaxed)
    }

    pub fn completed(&self) -> u64 {
        self.completed.load(Ordering::Relaxed)
    }

    fn bump<K: Ord>(map: &Mutex<BTreeMap<K, u64>>, key: K) {
        *map.lock().expect("stats lock").entry(key).or_default() += 1;
    }
}

/// An input record was received.
pub fn event_consumed(stats: &Stats, topic: &str, format: &'static str) {
    stats.consumed.fetch_add(1, Ordering::Relaxed);
    counter!(EVENTS_CONSUMED, "topic" => topic.to_string(), "format" => format).increment(1);
}

/// An output record was handed to the producer.
pub fn record_produced(stats: &Stats, purpose: &'static str) {
    Stats::bump(&stats.produced, purpose);
    counter!(RECORDS_PRODUCED, "purpose" => purpose).increment(1);
}

/// A purpose did not take an event (not a failure: the policy at work).
pub fn record_dropped(stats: &Stats, purpose: &'static str, reason: &'static str) {
    Stats::bump(&stats.dropped, (purpose, reason));
    tracing::trace!(purpose, reason, "record dropped");
    counter!(RECORDS_DROPPED, "purpose" => purpose, "reason" => reason).increment(1);
}

/// A record went to the dead-letter topic. Logged with its position, never its content.
pub fn dead_lettered(
    stats: &Stats,
    topic: &str,
    partition: i32,
    offset: i64,
    reason: &'static str,
    message: &str,
) {
    Stats::bump(&stats.dead_letters, reason);
    tracing::warn!(topic, partition, offset, reason, "dead-lettered: {message}");
    counter!(DEAD_LETTERS, "reason" => reason).increment(1);
}

/// A record could not be decoded.
pub fn decode_error(kind: &'static str) {
    counter!(DECODE_ERRORS, "kind" => kind).increment(1);
}

/// An input record's outputs are all acknowledged.
pub fn input_completed(stats: &Stats) {
    stats.completed.fetch_add(1, Ordering::Relaxed);
}

/// A produce failed and is retried.
pub fn produce_retry(topic: &str, error: &str, attempt: u32) {
    if attempt == 1 || attempt.is_power_of_two() {
        tracing::warn!(topic, attempt, "delivery failed, retrying: {error}");
    }
    counter!(PRODUCE_RETRIES, "topic" => topic.to_string()).increment(1);
}

/// A transaction was aborted (its batch is processed again).
pub fn transaction_aborted() {
    counter!(TRANSACTIONS_ABORTED).increment(1);
}
