//! Typed internal events: one struct per thing that happens, with named fields, emitted
//! through [`emit`], which logs and counts it in one place (the style of vector's
//! `internal_events`). The per-record counters of the hot path are the registered
//! handles of [`super::Hot`] and the atomics of [`super::Stats`]; these events are the
//! rest. None carries personal data: positions, reasons and kinds, never a value.

use super::retry_log::{join_counts, Wave};
pub use super::retry_log::{RetryLog, RETRY_LOG_FIRST_WAIT, RETRY_LOG_MAX_WAIT, RETRY_LOG_QUIET};
use super::{
    Stats, DEAD_LETTERS, DECODE_ERRORS, DELIVERY_MODE, EVENTS_CONSUMED, PROCESSING,
    PRODUCE_RETRIES, TRANSACTIONS_ABORTED, TRANSACTIONS_COMMITTED, TRANSACTIONS_IN_FLIGHT,
};
use crate::delivery::Guarantee;
use metrics::{counter, gauge, histogram};
use rdkafka::statistics::Statistics;
use std::collections::BTreeMap;
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
pub struct RecordUndecodable {
    pub kind: &'static str,
}

impl InternalEvent for RecordUndecodable {
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
        // A broken producer upstream sends undecodable records at the input rate: the
        // first few of an interval at WARN, the rest at debug and summed up once per
        // interval (see `DeadLettersSummary`).
        if DEAD_LETTER_LOG.note(reason, Instant::now()) {
            tracing::warn!(
                topic,
                partition,
                offset,
                reason,
                "dead-lettered: {}",
                self.message
            );
        } else {
            tracing::debug!(
                topic,
                partition,
                offset,
                reason,
                "dead-lettered: {}",
                self.message
            );
        }
        counter!(DEAD_LETTERS, "reason" => reason).increment(1);
    }
}

/// How long an interval of the dead-letter log lasts.
pub const DEAD_LETTER_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// How many dead letters of an interval are logged one by one at WARN.
pub const DEAD_LETTER_LOG_BURST: u64 = 5;

/// The dead letters logged in the current interval, and those only counted, by reason.
static DEAD_LETTER_LOG: DeadLetterLog = DeadLetterLog {
    state: std::sync::Mutex::new(DeadLetterWindow {
        start: None,
        logged: 0,
        suppressed: BTreeMap::new(),
    }),
};

struct DeadLetterLog {
    state: std::sync::Mutex<DeadLetterWindow>,
}

struct DeadLetterWindow {
    start: Option<Instant>,
    logged: u64,
    suppressed: BTreeMap<&'static str, u64>,
}

impl DeadLetterLog {
    /// Counts a dead letter: true when it is to be logged at WARN (one of the first of its
    /// interval). Sums up the previous interval first when it is over.
    fn note(&self, reason: &'static str, now: Instant) -> bool {
        let mut w = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if w.start
            .is_none_or(|s| now.saturating_duration_since(s) >= DEAD_LETTER_LOG_INTERVAL)
        {
            summarize(&mut w, now);
            w.start = Some(now);
        }
        if w.logged < DEAD_LETTER_LOG_BURST {
            w.logged += 1;
            true
        } else {
            *w.suppressed.entry(reason).or_default() += 1;
            false
        }
    }

    /// Logs the summary of the current interval when it is over (`force`: at once).
    fn summarize(&self, now: Instant, force: bool) {
        let mut w = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let over = w
            .start
            .is_some_and(|s| now.saturating_duration_since(s) >= DEAD_LETTER_LOG_INTERVAL);
        if over || force {
            summarize(&mut w, now);
        }
    }
}

/// Logs "N more records dead-lettered in the last T s, by reason: ..." for the records of
/// the window not logged one by one, and starts a new window.
fn summarize(w: &mut DeadLetterWindow, now: Instant) {
    let n: u64 = w.suppressed.values().sum();
    if n > 0 {
        let secs = w
            .start
            .map_or(0, |s| now.saturating_duration_since(s).as_secs().max(1));
        let reasons = join_counts(w.suppressed.iter().map(|(r, n)| (*r, *n)));
        tracing::warn!(
            records = n,
            "{n} more records dead-lettered in the last {secs} s, by reason: {reasons}"
        );
    }
    w.suppressed.clear();
    w.logged = 0;
    w.start = None;
}

/// The dead-letter log's interval may be over: sums up the records it did not log one by
/// one (emitted every few seconds by the batch loop, and at shutdown with `force`).
pub struct DeadLettersSummary {
    pub force: bool,
}

impl InternalEvent for DeadLettersSummary {
    fn emit(self) {
        DEAD_LETTER_LOG.summarize(Instant::now(), self.force);
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

/// A wave of failed produces of one batch is sent again (its `attempt`-th retry): each
/// `(topic, error)` is one output record. Counted per record (`cdr_produce_retries_total`
/// by topic). Logged for the whole process, not per batch ([`RetryLog`]): every batch of
/// a stuck output retries on its own, and one line per batch and wave made thousands of
/// lines a minute for a few hundred records. The per-record line is at debug. No record
/// content: topics and errors only.
pub struct ProduceRetries<'l, I> {
    /// The retry log of the pipeline's clients ([`crate::kafka::Context`]).
    pub log: &'l RetryLog,
    pub retries: I,
    pub attempt: u32,
}

impl<'a, I: Iterator<Item = (&'a str, String)>> InternalEvent for ProduceRetries<'_, I> {
    fn emit(self) {
        let attempt = self.attempt;
        let mut wave = Wave::default();
        for (topic, error) in self.retries {
            tracing::debug!(topic, attempt, "delivery failed, retrying: {error}");
            *wave.topics.entry(topic.to_string()).or_default() += 1;
            *wave.errors.entry(error).or_default() += 1;
            wave.records += 1;
        }
        if wave.records == 0 {
            return;
        }
        for (topic, n) in &wave.topics {
            counter!(PRODUCE_RETRIES, "topic" => topic.clone()).increment(*n);
        }
        wave.batches = 1;
        wave.attempt = attempt;
        if let Some(line) = self.log.note(wave, Instant::now()) {
            line.log();
        }
    }
}

/// An output record the client refused to enqueue for now (its topic unknown or in
/// error in the client's metadata: deleted, not authorized) is tried again in a second:
/// counted as a retry and logged with the failed deliveries, for the whole process
/// ([`RetryLog`]) — not one line per record and second.
pub struct EnqueueRetried<'a> {
    /// The retry log of the pipeline's clients ([`crate::kafka::Context`]).
    pub log: &'a RetryLog,
    pub topic: &'a str,
    pub error: String,
}

impl InternalEvent for EnqueueRetried<'_> {
    fn emit(self) {
        let topic = self.topic;
        tracing::debug!(topic, "enqueue failed, retrying in 1s: {}", self.error);
        counter!(PRODUCE_RETRIES, "topic" => topic.to_string()).increment(1);
        let mut wave = Wave {
            records: 1,
            batches: 1,
            ..Wave::default()
        };
        wave.topics.insert(topic.to_string(), 1);
        wave.errors.insert(self.error, 1);
        if let Some(line) = self.log.note(wave, Instant::now()) {
            line.log();
        }
    }
}

/// Sums up the retries the log has not written yet when their line is due (`force`: at
/// once): retries that stopped before the next one would have written them. Emitted by
/// the batch loop every few seconds and at shutdown.
pub struct RetriesSummary<'a> {
    pub log: &'a RetryLog,
    pub force: bool,
}

impl InternalEvent for RetriesSummary<'_> {
    fn emit(self) {
        if let Some(line) = self.log.tick(Instant::now(), self.force) {
            line.log();
        }
    }
}

/// The pipeline starts with this delivery guarantee: `cdr_delivery_mode{mode}` says
/// which (the dashboard shows it), and under exactly-once the transaction metrics exist
/// at 0 from the start rather than from the first transaction. At least once there are
/// no transactions and no transaction metrics.
pub struct DeliveryModeStarted(pub Guarantee);

impl InternalEvent for DeliveryModeStarted {
    fn emit(self) {
        let mode = match self.0 {
            Guarantee::AtLeastOnce => "at_least_once",
            Guarantee::ExactlyOnce => "exactly_once",
        };
        gauge!(DELIVERY_MODE, "mode" => mode).set(1.0);
        if self.0 == Guarantee::ExactlyOnce {
            gauge!(TRANSACTIONS_IN_FLIGHT).set(0.0);
            counter!(TRANSACTIONS_COMMITTED).absolute(0);
            counter!(TRANSACTIONS_ABORTED).absolute(0);
        }
    }
}

/// An input topic was looked up: `missing` or not; `changed` since the last look
/// (`first`: the first look). Logged when it changes; the gauge set each time.
pub struct InputTopicChecked<'a> {
    pub topic: &'a str,
    pub missing: bool,
    pub changed: bool,
    pub first: bool,
    /// How often it is looked up.
    pub every: Duration,
}

impl InternalEvent for InputTopicChecked<'_> {
    fn emit(self) {
        let topic = self.topic;
        gauge!(super::INPUT_TOPIC_MISSING, "topic" => topic.to_string()).set(if self.missing {
            1.0
        } else {
            0.0
        });
        match (self.changed, self.missing, self.first) {
            (true, true, _) => tracing::warn!(
                topic,
                "input topic {topic} does not exist: nothing is consumed from it until it is created (looked up every {} s; /readyz is 503 meanwhile)",
                self.every.as_secs()
            ),
            (true, false, false) => tracing::info!(
                topic,
                "input topic {topic} exists now: the consumer takes it up at its next metadata refresh"
            ),
            _ => {}
        }
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
pub struct HealthSampled<'a> {
    pub ready: bool,
    pub health: &'a crate::health::Health,
}

impl InternalEvent for HealthSampled<'_> {
    fn emit(self) {
        super::health_sampled(self.ready, self.health);
    }
}

/// Log capture for tests: what the current thread logs at WARN and above.
#[cfg(test)]
pub(crate) mod test_logs {
    use std::sync::{Arc, Mutex};

    /// The lines logged so far.
    #[derive(Clone, Default)]
    pub(crate) struct Logs(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Logs {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Logs {
        pub(crate) fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }
    }

    /// Keeps the capture in force on this thread while it lives.
    pub(crate) struct Capture {
        _default: tracing::subscriber::DefaultGuard,
        _other: tracing::Dispatch,
    }

    /// Captures this thread's WARN and ERROR lines. A second dispatcher stays registered
    /// alongside: with one alone, tracing computes interest and the global level from
    /// whichever thread rebuilds them (other tests' threads have no subscriber, and would
    /// turn these events off for all).
    pub(crate) fn capture() -> (Logs, Capture) {
        let logs = Logs::default();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer({
                let logs = logs.clone();
                move || logs.clone()
            })
            .finish();
        let other = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
        let default = tracing::subscriber::set_default(subscriber);
        tracing::callsite::rebuild_interest_cache();
        (
            logs,
            Capture {
                _default: default,
                _other: other,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 300 undecodable records: a few WARN lines, then one summary with the count by
    /// reason — not a WARN line per record; no record content in any.
    #[test]
    fn dead_letters_are_logged_a_few_at_a_time_then_summed_up() {
        let (logs, _capture) = test_logs::capture();
        let stats = Stats::default();
        for offset in 0..300 {
            emit(DeadLettered {
                stats: &stats,
                topic: "cdr.raw",
                partition: 0,
                offset,
                reason: if offset % 3 == 0 {
                    "invalid"
                } else {
                    "undecodable"
                },
                message: "the record is not a CDR event",
            });
        }
        emit(DeadLettersSummary { force: true });
        let text = logs.text();
        let one_by_one = text
            .lines()
            .filter(|l| l.contains("dead-lettered:"))
            .count();
        // Other tests of this binary may dead-letter in the same interval: at most the burst.
        assert!(
            one_by_one <= DEAD_LETTER_LOG_BURST as usize,
            "a few at WARN, not one per record ({one_by_one}): {text}"
        );
        let summary: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("more records dead-lettered in the last"))
            .collect();
        assert_eq!(summary.len(), 1, "{text}");
        assert!(summary[0].contains("WARN"), "{}", summary[0]);
        assert!(summary[0].contains("undecodable ("), "{}", summary[0]);
        assert!(summary[0].contains("invalid ("), "{}", summary[0]);
        assert!(!summary[0].contains("CDR event"), "{}", summary[0]);
        assert_eq!(
            stats.dead_letters.lock().unwrap().values().sum::<u64>(),
            300
        );
    }
}
