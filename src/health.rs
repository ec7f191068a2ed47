//! Row 0 of the layers: the shared health of the filter — brokers reachable, partitions
//! assigned, output topics compliant — written by the Kafka clients' context and by
//! `topics`, read by `/readyz` and the pipeline. Plain atomics, no I/O.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Shared state of the clients' health, read by readiness and the pipeline.
#[derive(Debug, Default)]
pub struct Health {
    /// True while librdkafka reports every broker down.
    pub brokers_down: AtomicBool,
    /// True once the consumer has partitions assigned.
    pub assigned: AtomicBool,
    /// True when the output topics were last found compliant (or `topics.mode = "off"`).
    /// Set by `topics`.
    pub topics_verified: AtomicBool,
    /// The output topics last found not compliant, named by `/readyz`.
    pub non_compliant_topics: std::sync::Mutex<Vec<String>>,
    /// The input topics found missing on the brokers at the last look, named by
    /// `/readyz`. Set by `topics`.
    pub missing_input_topics: std::sync::Mutex<Vec<String>>,
    /// The last TLS or SASL failure librdkafka reported (wrong CA, bad certificate or
    /// password): a configuration problem, not an outage. It makes a start that never
    /// reached a broker stop with that reason instead of retrying forever.
    pub transport_security_error: std::sync::Mutex<Option<String>>,
    /// Since when (ms since the Unix epoch; 0: not stalled) the input partitions are
    /// paused because the outputs are not acknowledged (the producer's queue is full or
    /// `delivery.max_in_flight` records wait). Set by the pipeline.
    pub output_stalled_since: AtomicU64,
    /// When the oldest input record not yet acknowledged was received (ms since the Unix
    /// epoch; 0: none waits). Set by the pipeline.
    pub oldest_unacknowledged: AtomicU64,
    /// When input records were last acknowledged (ms since the Unix epoch; 0: never).
    pub last_progress: AtomicU64,
    /// The current outage: when librdkafka first reported every broker down (ms since
    /// the Unix epoch; 0: none), the last time it did, and how many times. It ends once
    /// the brokers stayed reachable for [`OUTAGE_SETTLES_AFTER_MS`]: one line when it
    /// begins, one when it ends, however often the state flaps in between.
    pub outage_since: AtomicU64,
    pub outage_last_report: AtomicU64,
    pub outage_reports: AtomicU64,
    /// When partitions were last assigned to the consumer (ms since the Unix epoch; 0:
    /// never).
    pub last_assignment: AtomicU64,
}

/// How long the brokers must stay reachable before an outage is over (its second line).
pub const OUTAGE_SETTLES_AFTER_MS: u64 = 30_000;

/// Now, in milliseconds since the Unix epoch (the unit of [`Health`]'s times).
pub fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The seconds from a [`Health`] time to now; `None` for a time never set (0).
pub fn seconds_since(at: &AtomicU64) -> Option<f64> {
    match at.load(Ordering::SeqCst) {
        0 => None,
        t => Some(unix_millis().saturating_sub(t) as f64 / 1000.0),
    }
}

impl Health {
    /// The input topics missing at the last look.
    pub fn missing_input_topics(&self) -> Vec<String> {
        self.missing_input_topics
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The last TLS or SASL failure, if any.
    pub fn transport_security_error(&self) -> Option<String> {
        self.transport_security_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}
