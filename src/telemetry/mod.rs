//! Telemetry: typed internal events, each emitted from one place, that both log and count.
//!
//! Metric names live here and nowhere else. Labels carry purposes, reasons, topics,
//! partitions, formats and field groups — never a value of a record (no MSISDN, IMSI,
//! IMEI, IP or content). The `metrics` facade records; [`install`] puts the Prometheus
//! recorder behind it and [`server`] serves it on `metrics.listen` with the health probes.

mod hot;
mod retry_log;
pub mod server;

pub use hot::{presence, Hot, Tally, FLUSH_EVERY};

use crate::policy::DropReason;
use crate::schema::Purpose;
use metrics::{describe_counter, describe_gauge, describe_histogram, gauge, Unit};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use rdkafka::statistics::Statistics;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

pub const EVENTS_CONSUMED: &str = "cdr_events_consumed_total";
pub const RECORDS_PRODUCED: &str = "cdr_records_produced_total";
pub const RECORDS_DROPPED: &str = "cdr_records_dropped_total";
pub const DEAD_LETTERS: &str = "cdr_dead_letters_total";
pub const DECODE_ERRORS: &str = "cdr_decode_errors_total";
pub const FIELDS_REMOVED: &str = "cdr_fields_removed_total";
pub const JSON_SLOW_PATH: &str = "cdr_json_slow_path_total";
pub const PRODUCE_RETRIES: &str = "cdr_produce_retries_total";
pub const TRANSACTIONS_ABORTED: &str = "cdr_transactions_aborted_total";
pub const TRANSACTIONS_COMMITTED: &str = "cdr_transactions_committed_total";
pub const TRANSACTIONS_IN_FLIGHT: &str = "cdr_transactions_in_flight";
pub const DELIVERY_MODE: &str = "cdr_delivery_mode";
pub const INPUT_TOPIC_MISSING: &str = "cdr_input_topic_missing";
pub const EVENT_AGE: &str = "cdr_event_age_seconds";
pub const PROCESSING: &str = "cdr_processing_seconds";
pub const CONSUMER_LAG: &str = "cdr_consumer_lag";
pub const PRODUCER_QUEUE: &str = "cdr_producer_queue_messages";
pub const READY: &str = "cdr_ready";
pub const BROKERS_DOWN: &str = "cdr_kafka_brokers_down";
pub const OUTPUT_STALLED: &str = "cdr_output_stalled";
pub const OLDEST_UNACKNOWLEDGED: &str = "cdr_oldest_unacknowledged_input_age_seconds";
pub const SINCE_PROGRESS: &str = "cdr_last_progress_age_seconds";
pub const SINCE_ASSIGNMENT: &str = "cdr_last_assignment_age_seconds";
pub const BUILD_INFO: &str = "cdr_build_info";
pub const COMPLIANT: &str = "cdr_topic_compliant";
pub const RESIDENCY_BOUND: &str = "cdr_topic_residency_bound_seconds";
pub const RECORDS_AUDITED: &str = "cdr_audit_records_total";
pub const AUDIT_FINDINGS: &str = "cdr_audit_findings_total";

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
pub fn install(policy_version: &'static str) -> Result<PrometheusHandle, BuildError> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(EVENT_AGE.into()), AGE_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(PROCESSING.into()), PROCESSING_BUCKETS)?
        .install_recorder()?;
    describe();
    PROCESS
        .get_or_init(metrics_process::Collector::default)
        .describe();
    gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION"), "policy_version" => policy_version)
        .set(1.0);
    Ok(handle)
}

/// Process metrics in the Prometheus client conventions (`process_cpu_seconds_total`,
/// `process_resident_memory_bytes`, `process_open_fds`, `process_max_fds`,
/// `process_start_time_seconds`, `process_threads`, ...), from metrics-process.
static PROCESS: std::sync::OnceLock<metrics_process::Collector> = std::sync::OnceLock::new();

/// Samples the process metrics (on each scrape).
pub fn process_sampled() {
    if let Some(c) = PROCESS.get() {
        c.collect();
    }
}

fn describe() {
    describe_records();
    describe_state();
    describe_retention();
}

/// The counters of records and transactions.
fn describe_records() {
    describe_counter!(EVENTS_CONSUMED, "Input records received, by input topic and format (json, protobuf, unknown when undecodable).");
    describe_counter!(
        RECORDS_PRODUCED,
        "Output records handed to the producer, by purpose."
    );
    describe_counter!(RECORDS_DROPPED, "Events a purpose did not take, by purpose and reason (not_billable, not_declared, not_originated, expired). Records refused as invalid or future_event_time are dead-lettered and counted in cdr_dead_letters_total.");
    describe_counter!(
        DEAD_LETTERS,
        "Records sent to the dead-letter topic, by reason."
    );
    describe_counter!(
        DECODE_ERRORS,
        "Input records that could not be decoded, by kind."
    );
    describe_counter!(FIELDS_REMOVED, "Field values present in an event and removed from its output record, by purpose and field group.");
    describe_counter!(JSON_SLOW_PATH, "JSON input records the fast parser left to the general decoder (escaped or repeated keys, unknown fields, unusual number forms): filtered alike, at several times the CPU.");
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
}

/// The gauges and histograms of the filter's state and progress.
fn describe_state() {
    describe_gauge!(
        TRANSACTIONS_IN_FLIGHT,
        "Kafka transactions open (exactly-once: 0 or 1 per instance)."
    );
    describe_gauge!(
        DELIVERY_MODE,
        "Always 1; the label mode says the delivery guarantee this instance runs with (at_least_once, exactly_once)."
    );
    describe_gauge!(
        INPUT_TOPIC_MISSING,
        "1 while the input topic does not exist on the brokers (nothing is consumed from it), 0 once it does; by topic."
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
    describe_gauge!(OUTPUT_STALLED, "1 while the input partitions are paused because the outputs are not acknowledged (the producer's queue is full or delivery.max_in_flight records wait for more than a second); the consumer is still polled.");
    describe_gauge!(OLDEST_UNACKNOWLEDGED, Unit::Seconds, "Age of the oldest input record received and not yet acknowledged (at least once: all its outputs delivered; exactly once: its transaction committed); 0 when none waits.");
    describe_gauge!(
        SINCE_PROGRESS,
        Unit::Seconds,
        "Seconds since input records were last acknowledged (since the start when none was yet)."
    );
    describe_gauge!(SINCE_ASSIGNMENT, Unit::Seconds, "Seconds since partitions were last assigned to this instance (since the start when none was yet).");
    describe_gauge!(READY, "1 when the filter is ready: partitions assigned, topics verified, brokers reachable, not shutting down.");
    describe_gauge!(
        BROKERS_DOWN,
        "1 while librdkafka reports every broker down."
    );
}

/// Recorded by `topics` (the periodic retention check), and the build.
fn describe_retention() {
    describe_gauge!(
        COMPLIANT,
        "1 when the output topic's settings make the broker delete every record within its purpose's legal limit, 0 when not."
    );
    describe_gauge!(
        RESIDENCY_BOUND,
        Unit::Seconds,
        "The longest a record can stay in the output topic, from its event time, given the topic's and broker's settings."
    );
    describe_gauge!(
        BUILD_INFO,
        "Always 1; the labels say the filter's version and the policy version in force."
    );
}

/// Every reason a record is dead-lettered for: the label values of `cdr_dead_letters_total`
/// (decoding: `undecodable`, `unexpected_schema`; the policy's refusals: `invalid`,
/// `future_event_time`; output: `unencodable`, `output_too_large`).
pub const DEAD_LETTER_REASONS: [&str; 6] = [
    "undecodable",
    "unexpected_schema",
    "invalid",
    "future_event_time",
    "unencodable",
    "output_too_large",
];

/// Purposes and drop reasons as array indices, for the per-record counters.
const PURPOSES: [Purpose; 2] = [Purpose::Billing, Purpose::Security];
const REASONS: [&str; 7] = [
    "invalid",
    "future_event_time",
    "expired",
    "not_billable",
    "not_declared",
    "not_originated",
    "not_in_force",
];

fn purpose_index(p: Purpose) -> usize {
    match p {
        Purpose::Security => 1,
        _ => 0,
    }
}

fn reason_index(r: DropReason) -> usize {
    match r {
        DropReason::Invalid(_) => 0,
        DropReason::FutureEventTime => 1,
        DropReason::Expired => 2,
        DropReason::NotBillable => 3,
        DropReason::NotDeclared => 4,
        DropReason::NotOriginated => 5,
        DropReason::NotInForce => 6,
    }
}

/// Counts kept in process, for `demo`'s summary and the end-of-run log line. The
/// per-record ones are plain atomics (no lock on the hot path).
#[derive(Debug, Default)]
pub struct Stats {
    pub consumed: AtomicU64,
    /// Input records whose outputs are all acknowledged (offset storable).
    pub completed: AtomicU64,
    produced: [AtomicU64; 2],
    dropped: [[AtomicU64; REASONS.len()]; 2],
    pub dead_letters: Mutex<BTreeMap<&'static str, u64>>,
    /// JSON input records the fast parser left to the general decoder.
    pub json_slow_path: AtomicU64,
}

impl Stats {
    pub fn consumed(&self) -> u64 {
        self.consumed.load(Ordering::Relaxed)
    }

    pub fn completed(&self) -> u64 {
        self.completed.load(Ordering::Relaxed)
    }

    /// Records produced, by purpose.
    pub fn produced(&self) -> BTreeMap<&'static str, u64> {
        PURPOSES
            .iter()
            .map(|p| {
                (
                    p.name(),
                    self.produced[purpose_index(*p)].load(Ordering::Relaxed),
                )
            })
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// Drops, by (purpose, reason).
    pub fn dropped(&self) -> BTreeMap<(&'static str, &'static str), u64> {
        let mut m = BTreeMap::new();
        for p in PURPOSES {
            for (i, r) in REASONS.iter().enumerate() {
                let n = self.dropped[purpose_index(p)][i].load(Ordering::Relaxed);
                if n > 0 {
                    m.insert((p.name(), *r), n);
                }
            }
        }
        m
    }

    fn bump<K: Ord>(map: &Mutex<BTreeMap<K, u64>>, key: K) {
        *map.lock().expect("stats lock").entry(key).or_default() += 1;
    }
}

/// librdkafka statistics (every `statistics.interval.ms`): consumer lag per partition
/// from the consumer's, queue depth from the producer's.
fn kafka_statistics(s: &Statistics) {
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

/// The readiness state and the liveness of the consumer, sampled at each scrape (so that
/// a wedged engine cannot leave them stale).
fn health_sampled(ready: bool, health: &crate::health::Health) {
    use crate::health::seconds_since;
    let flag = |b: bool| if b { 1.0 } else { 0.0 };
    gauge!(READY).set(flag(ready));
    gauge!(BROKERS_DOWN).set(flag(health.brokers_down.load(Ordering::SeqCst)));
    let stalled = health.output_stalled_since.load(Ordering::SeqCst) != 0;
    gauge!(OUTPUT_STALLED).set(flag(stalled));
    gauge!(OLDEST_UNACKNOWLEDGED).set(seconds_since(&health.oldest_unacknowledged).unwrap_or(0.0));
    for (name, at) in [
        (SINCE_PROGRESS, &health.last_progress),
        (SINCE_ASSIGNMENT, &health.last_assignment),
    ] {
        if let Some(s) = seconds_since(at) {
            gauge!(name).set(s);
        }
    }
}

pub mod events;
pub use events::{emit, InternalEvent};
