//! Telemetry: typed internal events, each emitted from one place, that both log and count.
//!
//! Metric names live here and nowhere else. Labels carry purposes, reasons, topics,
//! partitions, formats and field groups — never a value of a record (no MSISDN, IMSI,
//! IMEI, IP or content). The `metrics` facade records; [`install`] puts the Prometheus
//! recorder behind it and [`server`] serves it on `metrics.listen` with the health probes.

pub mod server;

use crate::policy::table;
use crate::policy::DropReason;
use crate::schema::{self, CdrEvent, Purpose};
use chrono::{DateTime, Utc};
use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Counter,
    Histogram, Unit,
};
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
pub const EVENT_AGE: &str = "cdr_event_age_seconds";
pub const PROCESSING: &str = "cdr_processing_seconds";
pub const CONSUMER_LAG: &str = "cdr_consumer_lag";
pub const PRODUCER_QUEUE: &str = "cdr_producer_queue_messages";
pub const READY: &str = "cdr_ready";
pub const BROKERS_DOWN: &str = "cdr_kafka_brokers_down";
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
    describe_counter!(EVENTS_CONSUMED, "Input records received, by input topic and format (json, protobuf, unknown when undecodable).");
    describe_counter!(
        RECORDS_PRODUCED,
        "Output records handed to the producer, by purpose."
    );
    describe_counter!(RECORDS_DROPPED, "Events a purpose did not take, by purpose and reason (not_billable, not_declared, not_originated, expired; invalid and future_event_time are also dead-lettered).");
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

/// Purposes and drop reasons as array indices, for the per-record counters.
const PURPOSES: [Purpose; 2] = [Purpose::Billing, Purpose::Security];
const REASONS: [&str; 6] = [
    "invalid",
    "future_event_time",
    "expired",
    "not_billable",
    "not_declared",
    "not_originated",
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
    dropped: [[AtomicU64; 6]; 2],
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

/// The handles of the metrics counted for every record, registered once: a registry
/// lookup with labels per record costs more than the policy itself. Create it after
/// [`install`] (handles taken before a recorder is installed count nothing).
///
/// The Prometheus side is counted per batch: a record's counts go to a tally
/// ([`Hot::tally`], one lock per record) and reach the counters and the event-age
/// histogram at [`Hot::flush`] — the engine flushes every batch — or every
/// [`FLUSH_EVERY`] records, whichever comes first (an update of the exporter's counters is
/// two atomic operations; a record made about thirteen). [`Stats`] is counted at once.
pub struct Hot {
    consumed: Vec<(String, [Counter; 3])>,
    produced: [Counter; 2],
    dropped: [[Counter; 6]; 2],
    /// Per purpose: one counter per field group.
    fields_removed: [Vec<Counter>; 2],
    /// Per field group: the mask of its rows in the table (the table has < 64 rows).
    group_masks: Vec<u64>,
    event_age: Histogram,
    json_slow_path: Counter,
    pending: Mutex<Pending>,
}

/// The most records counted in a tally before it reaches the metrics by itself.
pub const FLUSH_EVERY: usize = 4096;

/// Counts not yet added to the metrics, in the shape of [`Hot`]'s handles.
#[derive(Default)]
struct Pending {
    consumed: Vec<[u64; 3]>,
    produced: [u64; 2],
    dropped: [[u64; 6]; 2],
    fields_removed: [Vec<u64>; 2],
    event_ages: Vec<f64>,
    json_slow_path: u64,
    /// Calls since the last flush.
    calls: usize,
}

const FORMATS: [&str; 3] = ["json", "protobuf", "unknown"];

impl Hot {
    pub fn new(input_topics: &[String]) -> Hot {
        let consumed: Vec<_> = input_topics
            .iter()
            .map(|t| {
                let c = |f: &'static str| counter!(EVENTS_CONSUMED, "topic" => t.clone(), "format" => f);
                (t.clone(), [c(FORMATS[0]), c(FORMATS[1]), c(FORMATS[2])])
            })
            .collect();
        let per_purpose = |f: &dyn Fn(&'static str) -> Counter| [f("billing"), f("security")];
        let mut groups: Vec<&'static str> =
            table::schema_rows().iter().map(|f| f.group()).collect();
        groups.dedup();
        let group_masks = groups
            .iter()
            .map(|g| {
                table::schema_rows()
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| f.group() == *g)
                    .fold(0u64, |m, (i, _)| m | 1 << i)
            })
            .collect();
        let removed = |purpose: &'static str| {
            groups
                .iter()
                .map(|g| counter!(FIELDS_REMOVED, "purpose" => purpose, "group" => *g))
                .collect::<Vec<_>>()
        };
        let pending = Pending {
            consumed: vec![[0; 3]; consumed.len()],
            fields_removed: [vec![0; groups.len()], vec![0; groups.len()]],
            ..Pending::default()
        };
        Hot {
            consumed,
            produced: per_purpose(&|p| counter!(RECORDS_PRODUCED, "purpose" => p)),
            dropped: [Purpose::Billing, Purpose::Security].map(|p| {
                REASONS.map(|r| counter!(RECORDS_DROPPED, "purpose" => p.name(), "reason" => r))
            }),
            fields_removed: [removed("billing"), removed("security")],
            group_masks,
            event_age: histogram!(EVENT_AGE),
            json_slow_path: counter!(JSON_SLOW_PATH),
            pending: Mutex::new(pending),
        }
    }

    /// The tally a record's counts go to, held for the record: one lock for them all.
    pub fn tally(&self) -> Tally<'_> {
        Tally {
            hot: self,
            pending: self.pending.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }

    /// Adds the tallied counts to the metrics.
    pub fn flush(&self) {
        self.tally().flush();
    }
}

impl Drop for Hot {
    fn drop(&mut self) {
        self.flush();
    }
}

/// A record's counts, under [`Hot`]'s lock: [`Stats`] at once, the metrics at the next
/// flush (at the latest when the guard drops after [`FLUSH_EVERY`] calls).
pub struct Tally<'a> {
    hot: &'a Hot,
    pending: std::sync::MutexGuard<'a, Pending>,
}

impl Tally<'_> {
    /// An input record was received.
    pub fn consumed(&mut self, stats: &Stats, topic: &str, format: &'static str) {
        stats.consumed.fetch_add(1, Ordering::Relaxed);
        let f = FORMATS.iter().position(|x| *x == format).unwrap_or(2);
        match self.hot.consumed.iter().position(|(t, _)| t == topic) {
            Some(i) => self.pending.consumed[i][f] += 1,
            // A topic matched by a pattern subscription: registered on the fly.
            None => counter!(EVENTS_CONSUMED, "topic" => topic.to_string(), "format" => format)
                .increment(1),
        }
        self.pending.calls += 1;
    }

    /// A JSON input record the fast parser left to the general decoder.
    pub fn json_slow_path(&mut self, stats: &Stats) {
        stats.json_slow_path.fetch_add(1, Ordering::Relaxed);
        self.pending.json_slow_path += 1;
        self.pending.calls += 1;
    }

    /// An output record was handed to the producer.
    pub fn produced(&mut self, stats: &Stats, purpose: Purpose) {
        let i = purpose_index(purpose);
        stats.produced[i].fetch_add(1, Ordering::Relaxed);
        self.pending.produced[i] += 1;
        self.pending.calls += 1;
    }

    /// A purpose did not take an event (not a failure: the policy at work).
    pub fn dropped(&mut self, stats: &Stats, purpose: Purpose, reason: DropReason) {
        let (p, r) = (purpose_index(purpose), reason_index(reason));
        stats.dropped[p][r].fetch_add(1, Ordering::Relaxed);
        tracing::trace!(
            purpose = purpose.name(),
            reason = reason.as_str(),
            "record dropped"
        );
        self.pending.dropped[p][r] += 1;
        self.pending.calls += 1;
    }

    /// A record was forwarded: counts, per field group, the values present in the input
    /// and absent from the output, from the two presence masks (see [`presence`]).
    pub fn fields_removed(&mut self, purpose: Purpose, input_mask: u64, output_mask: u64) {
        let removed = input_mask & !output_mask;
        if removed == 0 {
            return;
        }
        let pending = &mut self.pending.fields_removed[purpose_index(purpose)];
        for (n, mask) in pending.iter_mut().zip(&self.hot.group_masks) {
            *n += u64::from((removed & mask).count_ones());
        }
        self.pending.calls += 1;
    }

    /// An event was decoded: its age at processing (now − event_time; 0 when in the
    /// future within the allowed skew).
    pub fn event_age(&mut self, event: &CdrEvent, now: DateTime<Utc>) {
        if let Some(t) = event.event_time.as_ref().and_then(schema::to_datetime) {
            let age = (now - t).num_milliseconds().max(0) as f64 / 1000.0;
            self.pending.event_ages.push(age);
            self.pending.calls += 1;
        }
    }

    /// Adds the tallied counts to the metrics.
    fn flush(&mut self) {
        let (hot, p) = (self.hot, &mut *self.pending);
        p.calls = 0;
        for ((_, counters), pending) in hot.consumed.iter().zip(&mut p.consumed) {
            add(counters, pending);
        }
        add(&hot.produced, &mut p.produced);
        for (counters, pending) in hot.dropped.iter().zip(&mut p.dropped) {
            add(counters, pending);
        }
        for (counters, pending) in hot.fields_removed.iter().zip(&mut p.fields_removed) {
            add(counters, pending);
        }
        for age in p.event_ages.drain(..) {
            hot.event_age.record(age);
        }
        add(
            std::slice::from_ref(&hot.json_slow_path),
            std::slice::from_mut(&mut p.json_slow_path),
        );
    }
}

impl Drop for Tally<'_> {
    fn drop(&mut self) {
        if self.pending.calls >= FLUSH_EVERY {
            self.flush();
        }
    }
}

/// Adds each count to its counter and zeroes it.
fn add(counters: &[Counter], pending: &mut [u64]) {
    for (c, n) in counters.iter().zip(pending) {
        if *n > 0 {
            c.increment(std::mem::take(n));
        }
    }
}

/// Which rows of the table an event holds a value for, as a bit mask (bit i = row i).
pub fn presence(event: &CdrEvent) -> u64 {
    debug_assert!(
        table::schema_rows().len() <= 64,
        "the presence mask holds one bit per row"
    );
    table::schema_rows()
        .iter()
        .enumerate()
        .fold(
            0,
            |m, (i, f)| if f.is_present(event) { m | 1 << i } else { m },
        )
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

/// The readiness state, sampled at each scrape.
fn health_sampled(ready: bool, brokers_down: bool) {
    gauge!(READY).set(if ready { 1.0 } else { 0.0 });
    gauge!(BROKERS_DOWN).set(if brokers_down { 1.0 } else { 0.0 });
}

pub mod events;
pub use events::{emit, InternalEvent};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_presence_mask_has_a_bit_per_row() {
        assert!(table::schema_rows().len() <= 64);
        let mut g = crate::gen::Generator::new(1, Utc::now());
        let e = g.full_event(
            crate::schema::EventType::Sms,
            crate::schema::Direction::Originating,
            Utc::now(),
        );
        let mask = presence(&e);
        for (i, f) in table::schema_rows().iter().enumerate() {
            assert_eq!(mask >> i & 1 == 1, f.is_present(&e), "{}", f.path);
        }
        assert_eq!(presence(&CdrEvent::default()), 0);
    }

    /// The value of the sample `name{labels}` in a Prometheus text rendering.
    fn sample(text: &str, name: &str, labels: &str) -> Option<f64> {
        let prefix = if labels.is_empty() {
            format!("{name} ")
        } else {
            format!("{name}{{{labels}}} ")
        };
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map(|v| v.trim().parse().unwrap())
    }

    /// A record's counts reach the metrics when the engine flushes after its batch — and
    /// by themselves after `FLUSH_EVERY` records, for a caller that never flushes — each
    /// counted once; `Stats` is counted at once.
    #[test]
    fn tallied_counts_reach_the_metrics_at_the_flush_and_by_themselves() {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(EVENT_AGE.into()), AGE_BUCKETS)
            .unwrap()
            .build_recorder();
        let handle = recorder.handle();
        let hot = metrics::with_local_recorder(&recorder, || Hot::new(&["cdr.raw".into()]));
        let stats = Stats::default();
        let consumed = |h: &PrometheusHandle| {
            sample(
                &h.render(),
                EVENTS_CONSUMED,
                r#"topic="cdr.raw",format="protobuf""#,
            )
            .unwrap_or(0.0)
        };
        let now = Utc::now();
        let event = CdrEvent {
            event_time: Some(crate::schema::Timestamp {
                seconds: now.timestamp() - 60,
                nanos: 0,
            }),
            ..CdrEvent::default()
        };
        {
            let mut t = hot.tally();
            t.consumed(&stats, "cdr.raw", "protobuf");
            t.event_age(&event, now);
            t.produced(&stats, Purpose::Billing);
            t.dropped(&stats, Purpose::Security, DropReason::NotOriginated);
            t.fields_removed(Purpose::Billing, 0b111, 0b001);
        }
        assert_eq!(stats.consumed(), 1, "Stats at once");
        assert_eq!(consumed(&handle), 0.0, "the metrics at the flush");
        hot.flush();
        let text = handle.render();
        assert_eq!(consumed(&handle), 1.0);
        assert_eq!(
            sample(&text, RECORDS_PRODUCED, r#"purpose="billing""#),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                RECORDS_DROPPED,
                r#"purpose="security",reason="not_originated""#
            ),
            Some(1.0)
        );
        let removed: f64 = text
            .lines()
            .filter(|l| l.starts_with(FIELDS_REMOVED) && l.contains(r#"purpose="billing""#))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum();
        assert_eq!(removed, 2.0, "two values removed: {text}");
        assert_eq!(sample(&text, &format!("{EVENT_AGE}_count"), ""), Some(1.0));
        // Flushed counts are not added again.
        hot.flush();
        assert_eq!(consumed(&handle), 1.0);
        // A caller that never flushes: the counts arrive every FLUSH_EVERY calls.
        for _ in 0..FLUSH_EVERY {
            hot.tally().consumed(&stats, "cdr.raw", "protobuf");
        }
        assert_eq!(consumed(&handle), 1.0 + FLUSH_EVERY as f64);
    }
}
