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
/// by topic); logged in one line for the wave — how many records, to which topics, with
/// which errors — on the 1st, 2nd, 4th, 8th... attempt (debug otherwise), never one line
/// per record: a broker refusing every write would otherwise log thousands of lines per
/// wave. The per-record line is at debug. No record content: topics and errors only.
pub struct ProduceRetries<I> {
    pub retries: I,
    pub attempt: u32,
}

impl<'a, I: Iterator<Item = (&'a str, String)>> InternalEvent for ProduceRetries<I> {
    fn emit(self) {
        let attempt = self.attempt;
        // By topic: how many; by error: how many (the few distinct ones, sorted).
        let mut topics: BTreeMap<&str, u64> = BTreeMap::new();
        let mut errors: BTreeMap<String, u64> = BTreeMap::new();
        let mut records = 0u64;
        for (topic, error) in self.retries {
            tracing::debug!(topic, attempt, "delivery failed, retrying: {error}");
            *topics.entry(topic).or_default() += 1;
            *errors.entry(error).or_default() += 1;
            records += 1;
        }
        if records == 0 {
            return;
        }
        for (topic, n) in &topics {
            counter!(PRODUCE_RETRIES, "topic" => topic.to_string()).increment(*n);
        }
        let topics = join_counts(topics.iter().map(|(t, n)| (*t, *n)));
        let errors = join_counts(errors.iter().map(|(e, n)| (e.as_str(), *n)));
        if attempt == 1 || attempt.is_power_of_two() {
            tracing::warn!(
                records,
                attempt,
                topics = %topics,
                "delivery failed, retrying {records} records: {errors}"
            );
        } else {
            tracing::debug!(
                records,
                attempt,
                topics = %topics,
                "delivery failed, retrying {records} records: {errors}"
            );
        }
    }
}

/// `a (3), b (1)`.
fn join_counts<'a>(items: impl Iterator<Item = (&'a str, u64)>) -> String {
    items
        .map(|(k, n)| format!("{k} ({n})"))
        .collect::<Vec<_>>()
        .join(", ")
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
