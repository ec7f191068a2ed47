//! Telemetry: typed internal events, each emitted from one place, that both log and count.
//!
//! Metric names live here and nowhere else. Labels carry purposes, reasons, topics,
//! partitions, formats and field groups — never a value of a record (no MSISDN, IMSI,
//! IMEI, IP or content). The `metrics` facade records; [`install`] puts the Prometheus
//! recorder behind it and [`server`] serves it on `metrics.listen` with the health probes.

pub mod server;

use crate::policy::table::{FIELDS, POLICY_VERSION};
use crate::schema::{self, CdrEvent};
use chrono::{DateTime, Utc};
use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit,
};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use rdkafka::statistics::Statistics;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

pub const EVENTS_CONSUMED: &str = "cdr_events_consumed_total";
pub const RECORDS_PRODUCED: &str = "cdr_records_produced_total";
pub const RECORDS_DROPPED: &str = "cdr_records_dropped_total";
pub const DEAD_LETTERS: &str = "cdr_dead_letters_total";
pub const DECODE_ERRORS: &str = "cdr_decode_errors_total";
pub const FIELDS_REMOVED: &str = "cdr_fields_removed_total";
pub const PRODUCE_RETRIES: &str = "cdr_produce_retries_total";
pub const TRANSACTIONS_ABORTED: &str = "cdr_transactions_aborted_total";
pub const TRANSACTIONS_COMMITTED: &str = "cdr_transactions_committed_total";
pub const TRANSACTIONS_IN_FLIGHT: &str = "cdr_transactions_in_flight";
pub const EVENT_AGE: &str = "cdr_event_age_seconds";
pub const PROCESSING: &str = "cdr_processing_seconds";
pub const CONSUMER_LAG: &str = "cdr_consumer_lag";
pub const PRODUCER_QUEUE: &str = "cdr_producer_queue_messages";
pub const READY: &str = "cdr_ready";
pub const BROKERS_DOWN: &str = "cdr_kafka_brokers_down";
pub const BUILD_INFO: &str = "cdr_build_info";

/// Buckets of the event-age histogram: from a second to past the three-month limit of
/// security data (an event older than its purpose's limit is dropped as `expired`).
const AGE_BUCKETS: &[f64] = &[
    1.0,
    5.0,
    30.0,
    60.0,
    300.0,
    900.0,
    3600.0,
    6.0 * 3600.0,
    86_400.0,
    7.0 * 86_400.0,
    30.0 * 86_400.0,
    89.0 * 86_400.0,
    365.0 * 86_400.0,
];

/// Buckets of the processing-latency histogram: consumption to acknowledgement.
const PROCESSING_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Installs the Prometheus recorder behind the `metrics` facade (once per process),
/// describes every metric and sets the build-info gauge. The handle renders the scrape.
pub fn install() -> Result<PrometheusHandle, BuildError> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(EVENT_AGE.into()), AGE_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(PROCESSING.into()), PROCESSING_BUCKETS)?
        .install_recorder()?;
    describe();
    gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION"), "policy_version" => POLICY_VERSION)
        .set(1.0);
    Ok(handle)
}

fn describe() {
    describe_counter!(EVENTS_CONSUMED, "Input records received, by input topic and format (json, protobuf, unknown when undecodable).");
    describe_counter!(
        RECORDS_PRODUCED,
        "Output records handed to the producer, by purpose."
    );
    describe_counter!(RECORDS_DROPPED, "Events a purpose did not take, by purpose and reason (not_billable, not_declared, expired; invalid and future_event_time are also dead-lettered).");
    describe_counter!(
        DEAD_LETTERS,
        "Records sent to the dead-letter topic, by reason."
    );
    describe_counter!(
        DECODE_ERRORS,
        "Input records that could not be decoded, by kind."
    );
    describe_counter!(FIELDS_REMOVED, "Field values present in an event and removed from its output record, by purpose and field group.");
    describe_counter!(
        PRODUCE_RETRIES,
        "Failed deliveries retried, by output topic."
    );
    describe_counter!(
        TRANSACTIONS_ABORTED,
        "Kafka transactions aborted (exactly-once; the batch is processed again)."
    );
    describe_counter!(
        TRANSACTIONS_COMMITTED,
        "Kafka transactions committed (exactly-once)."
    );
    describe_gauge!(
        TRANSACTIONS_IN_FLIGHT,
        "Kafka transactions open (exactly-once: 0 or 1 per instance)."
    );
    describe_histogram!(
        EVENT_AGE,
        Unit::Seconds,
        "Age of an event when the filter processes it: processing time minus event_time."
    );
    describe_histogram!(PROCESSING, Unit::Seconds, "Time from receiving an input record to the acknowledgement (or transaction commit) of all its outputs.");
    describe_gauge!(CONSUMER_LAG, "Records in the partition after the consumer's position, by input topic and partition (librdkafka statistics; 0 for a partition not assigned to this instance).");
    describe_gauge!(
        PRODUCER_QUEUE,
        "Messages waiting in the producer's queue for delivery (librdkafka statistics)."
    );
    describe_gauge!(READY, "1 when the filter is ready: partitions assigned, topics verified, brokers reachable, not shutting down.");
    describe_gauge!(
        BROKERS_DOWN,
        "1 while librdkafka reports every broker down."
    );
    // Recorded by `topics` (the periodic retention check); described here with the rest.
    describe_gauge!(
        crate::topics::COMPLIANT,
        "1 when the output topic's settings make the broker delete every record within its purpose's legal limit, 0 when not."
    );
    describe_gauge!(
        crate::topics::RESIDENCY_BOUND,
        Unit::Seconds,
        "The longest a record can stay in the output topic, from its event time, given the topic's and broker's settings."
    );
    describe_gauge!(
        BUILD_INFO,
        "Always 1; the labels say the filter's version and the policy version in force."
    );
}

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

/// A transaction was opened.
pub fn transaction_begun() {
    gauge!(TRANSACTIONS_IN_FLIGHT).set(1.0);
}

/// A transaction committed: each of its input records is processed, `started` being
/// when each was received.
pub fn transaction_committed(started: &[std::time::Instant]) {
    gauge!(TRANSACTIONS_IN_FLIGHT).set(0.0);
    counter!(TRANSACTIONS_COMMITTED).increment(1);
    let h = histogram!(PROCESSING);
    for s in started {
        h.record(s.elapsed().as_secs_f64());
    }
}

/// A transaction was aborted (its batch is processed again).
pub fn transaction_aborted() {
    gauge!(TRANSACTIONS_IN_FLIGHT).set(0.0);
    counter!(TRANSACTIONS_ABORTED).increment(1);
}

/// Every output of an input record is acknowledged, `elapsed` after it was received.
pub fn input_processed(elapsed: Duration) {
    histogram!(PROCESSING).record(elapsed.as_secs_f64());
}

/// An event was decoded: its age at processing (now − event_time; 0 when in the future
/// within the allowed skew). Events without a valid time are refused elsewhere.
pub fn event_age(event: &CdrEvent, now: DateTime<Utc>) {
    if let Some(t) = event.event_time.as_ref().and_then(schema::to_datetime) {
        let age = (now - t).num_milliseconds().max(0) as f64 / 1000.0;
        histogram!(EVENT_AGE).record(age);
    }
}

/// A record was forwarded: counts, per field group, the values present in the input
/// event and absent from the output. One pass over the table's presence checks (no
/// encoding, no allocation); the table is ordered by group, so each group's count is
/// flushed once.
pub fn fields_removed(purpose: &'static str, input: &CdrEvent, output: &CdrEvent) {
    let mut group = "";
    let mut n: u64 = 0;
    for f in FIELDS {
        let g = f.group();
        if g != group {
            if n > 0 {
                counter!(FIELDS_REMOVED, "purpose" => purpose, "group" => group).increment(n);
            }
            group = g;
            n = 0;
        }
        if f.is_present(input) && !f.is_present(output) {
            n += 1;
        }
    }
    if n > 0 {
        counter!(FIELDS_REMOVED, "purpose" => purpose, "group" => group).increment(n);
    }
}

/// librdkafka statistics (every `statistics.interval.ms`): consumer lag per partition
/// from the consumer's, queue depth from the producer's.
pub fn kafka_statistics(s: &Statistics) {
    match s.client_type.as_str() {
        "producer" => gauge!(PRODUCER_QUEUE).set(s.msg_cnt as f64),
        "consumer" => {
            for (topic, t) in &s.topics {
                for (&partition, p) in &t.partitions {
                    // -1 is librdkafka's internal "unassigned" partition.
                    if partition < 0 {
                        continue;
                    }
                    let assigned = !matches!(p.fetch_state.as_str(), "none" | "stopped");
                    let lag = match (assigned, p.consumer_lag) {
                        (false, _) => 0,
                        (true, lag) if lag >= 0 => lag,
                        // Assigned, position not known yet: leave the last value.
                        (true, _) => continue,
                    };
                    gauge!(CONSUMER_LAG, "topic" => topic.clone(), "partition" => partition.to_string())
                        .set(lag as f64);
                }
            }
        }
        _ => {}
    }
}

/// The readiness state, sampled at each scrape.
pub fn health_sampled(ready: bool, brokers_down: bool) {
    gauge!(READY).set(if ready { 1.0 } else { 0.0 });
    gauge!(BROKERS_DOWN).set(if brokers_down { 1.0 } else { 0.0 });
}
