//! Row 0 of the layers: the shared health of the filter — brokers reachable, partitions
//! assigned, output topics compliant — written by the Kafka clients' context and by
//! `topics`, read by `/readyz` and the pipeline. Plain atomics, no I/O.

use std::sync::atomic::AtomicBool;

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
