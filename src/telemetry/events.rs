//! Typed internal events: one struct per thing that happens, with named fields, emitted
//! through [`emit`], which logs and counts it in one place (the style of vector's
//! `internal_events`). The per-record counters of the hot path are the registered
//! handles of [`super::Hot`] and the atomics of [`super::Stats`]; these events are the
//! rest. None carries personal data: positions, reasons and kinds, never a value.

use super::{
    Stats, DEAD_LETTERS, DECODE_ERRORS, EVENTS_CONSUMED, PROCESSING, PRODUCE_RETRIES,
    TRANSACTIONS_ABORTED, TRANSACTIONS_COMMITTED, TRANSACTIONS_IN_FLIGHT,
};
use metrics::{counter, gauge, histogram};
use rdkafka::statistics::Statistics;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Something the filter reports: it logs and counts itself.
pub trait InternalEvent {
    fn emit(self);
}

/// Emits an event.
pub fn emit(event: impl InternalEvent) {
    event.emit();
}

/// An undecodable input record was received.
pub struct UndecodableConsumed<'a> {
    pub stats: &'a Stats,
    pub topic: &'a str,
}

impl InternalEvent for UndecodableConsumed<'_> {
    fn emit(self) {
        self.stats.consumed.fetch_add(1, Ordering::Relaxed);
        counter!(EVENTS_CONSUMED, "topic" => self.topic.to_string(), "format" => "unknown")
            .increment(1);
    }
}

/// A record could not be decoded (`kind`: the decoder's error class).
pub struct DecodeError {
    pub kind: &'static str,
}

impl InternalEvent for DecodeError {
    fn emit(self) {
        counter!(DECODE_ERRORS, "kind" => self.kind).increment(1);
    }
}

/// A record went to the dead-letter topic. Logged with its position, never its content.
pub struct DeadLettered<'a> {
    pub stats: &'a Stats,
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub reason: &'static str,
    /// What was wrong, in words holding no value of the record.
    pub message: &'a str,
}

impl InternalEvent for DeadLettered<'_> {
    fn emit(self) {
        Stats::bump(&self.stats.dead_letters, self.reason);
        let (topic, partition, offset, reason) =
            (self.topic, self.partition, self.offset, self.reason);
        tracing::warn!(
            topic,
            partition,
            offset,
            reason,
            "dead-lettered: {}",
            self.message
        );
        counter!(DEAD_LETTERS, "reason" => reason).increment(1);
    }
}

/// Every output of an input record is acknowledged (or its dead letter is).
pub struct InputCompleted<'a> {
    pub stats: &'a Stats,
}

impl InternalEvent for InputCompleted<'_> {
    fn emit(self) {
        self.stats.completed.fetch_add(1, Ordering::Relaxed);
    }
}

/// An input record is processed, `elapsed` after it was received.
pub struct InputProcessed {
    pub elapsed: Duration,
}

impl InternalEvent for InputProcessed {
    fn emit(self) {
        histogram!(PROCESSING).record(self.elapsed.as_secs_f64());
    }
}

/// A batch of input records is done — every output (or dead letter) acknowledged — each
/// received at one of `received`: counted once, and each one's processing time recorded
/// on one histogram handle (not a registry lookup per record).
pub struct InputsCompleted<'a, I> {
    pub stats: &'a Stats,
    pub received: I,
}

impl<I: Iterator<Item = Instant>> InternalEvent for InputsCompleted<'_, I> {
    fn emit(self) {
        let now = Instant::now();
        let h = histogram!(PROCESSING);
        let mut n = 0;
        for r in self.received {
            h.record(now.saturating_duration_since(r).as_secs_f64());
            n += 1;
        }
        self.stats.completed.fetch_add(n, Ordering::Relaxed);
    }
}

/// A produce failed and is retried (logged on the 1st, 2nd, 4th, 8th... attempt).
pub struct ProduceRetry<'a> {
    pub topic: &'a str,
    pub error: &'a str,
    pub attempt: u32,
}

impl InternalEvent for ProduceRetry<'_> {
    fn emit(self) {
        let (topic, attempt) = (self.topic, self.attempt);
        if attempt == 1 || attempt.is_power_of_two() {
            tracing::warn!(topic, attempt, "delivery failed, retrying: {}", self.error);
        }
        counter!(PRODUCE_RETRIES, "topic" => topic.to_string()).increment(1);
    }
}

/// A transaction was opened.
pub struct TransactionBegun;

impl InternalEvent for TransactionBegun {
    fn emit(self) {
        gauge!(TRANSACTIONS_IN_FLIGHT).set(1.0);
    }
}

/// A transaction committed: each of its input records is processed, `started` being
/// when each was received.
pub struct TransactionCommitted<'a> {
    pub started: &'a [Instant],
}

impl InternalEvent for TransactionCommitted<'_> {
    fn emit(self) {
        gauge!(TRANSACTIONS_IN_FLIGHT).set(0.0);
        counter!(TRANSACTIONS_COMMITTED).increment(1);
        let h = histogram!(PROCESSING);
        for s in self.started {
            h.record(s.elapsed().as_secs_f64());
        }
    }
}

/// A transaction was aborted (its batch is processed again).
pub struct TransactionAborted;

impl InternalEvent for TransactionAborted {
    fn emit(self) {
        gauge!(TRANSACTIONS_IN_FLIGHT).set(0.0);
        counter!(TRANSACTIONS_ABORTED).increment(1);
    }
}

/// librdkafka statistics arrived (every `statistics.interval.ms`).
pub struct KafkaStatistics<'a>(pub &'a Statistics);

impl InternalEvent for KafkaStatistics<'_> {
    fn emit(self) {
        super::kafka_statistics(self.0);
    }
}

/// The readiness state, sampled at each scrape.
pub struct HealthSampled {
    pub ready: bool,
    pub brokers_down: bool,
}

impl InternalEvent for HealthSampled {
    fn emit(self) {
        super::health_sampled(self.ready, self.brokers_down);
    }
}
