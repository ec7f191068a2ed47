//! The context of every client: librdkafka's callbacks turned into log lines — one per
//! state change, not one per retry — its delivery reports counted by batch, its
//! rebalances noted for the pipeline.

use super::{acks, is_transport_security, Health};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The context of every client: logs librdkafka's messages through `tracing`, tracks
/// whether brokers are reachable (logging only the transitions), and logs rebalances.
#[derive(Clone, Default)]
pub struct Context {
    pub health: Arc<Health>,
    /// The at-least-once consumer commits its stored offsets when partitions are revoked,
    /// before the revoke is acknowledged (auto-commit is off). Never under exactly-once:
    /// there offsets are committed inside transactions only.
    pub commit_on_revoke: bool,
    /// Called with the revoked partitions before a revoke is acknowledged (the
    /// exactly-once consumer ends its open transaction there).
    pub on_revoke: Option<RevokeHook>,
    /// Partitions revoked since the pipeline last looked (topic, partition): the
    /// at-least-once pipeline drops their records in flight, so that their late
    /// completions never store an offset for a partition it may own again.
    pub revoked: Arc<std::sync::Mutex<Vec<(String, i32)>>>,
    /// `revoked` may hold partitions: the pipeline looks at every record, without a lock
    /// when nothing was revoked.
    pub revoked_any: Arc<std::sync::atomic::AtomicBool>,
    /// The pipeline producer's delivery reports, counted by batch ([`acks`]).
    pub acks: Arc<acks::Acks>,
    /// The log of failed deliveries and refused enqueues, one for all the clients.
    pub retry_log: Arc<crate::telemetry::events::RetryLog>,
}

impl Context {
    /// The partitions revoked since the last call.
    pub fn take_revoked(&self) -> Vec<(String, i32)> {
        if !self.revoked_any.swap(false, Ordering::SeqCst) {
            return Vec::new();
        }
        std::mem::take(&mut *self.revoked.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// A record's delivery opaque is its batch's slot and its index there: the report
/// counts down the batch ([`acks::Acks::report`]), with no channel or allocation per
/// record.
impl ProducerContext for Context {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: usize) {
        // A failed record is copied out of the report, for a re-send: the sender keeps
        // nothing once a record is enqueued.
        let failure = result.as_ref().err().map(|(e, m)| (e.clone(), m.detach()));
        self.acks.report(opaque, failure);
    }
}

/// See [`Context::on_revoke`].
pub type RevokeHook = Arc<dyn Fn(&[(String, i32)]) + Send + Sync>;

impl ClientContext for Context {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        // librdkafka's messages name brokers and topics, never record contents.
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", "{fac}: {log_message}")
            }
            RDKafkaLogLevel::Warning => {
                tracing::warn!(target: "librdkafka", "{fac}: {log_message}")
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", "{fac}: {log_message}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", "{fac}: {log_message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let all_down = matches!(
            error.rdkafka_error_code(),
            Some(RDKafkaErrorCode::AllBrokersDown)
        );
        if is_transport_security(error.rdkafka_error_code(), reason) {
            // Every reconnect repeats it: logged when it changes, not each time.
            let mut last = self
                .health
                .transport_security_error
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if last.as_deref() != Some(reason) {
                tracing::error!("TLS/SASL failure: {reason}");
                *last = Some(reason.to_string());
            }
        } else if all_down {
            self.brokers_down(reason);
        } else if matches!(
            error.rdkafka_error_code(),
            Some(RDKafkaErrorCode::PartitionEOF)
        ) {
            // Not an error: the end-of-partition marker of a reader that asked for it
            // (`enable.partition.eof`: `dry-run --from-topic`, `audit`), which it receives
            // from its poll too.
            tracing::debug!("end of partition: {reason}");
        } else {
            // Transport errors repeat at every reconnect attempt: debug, not a flood.
            tracing::debug!("kafka client error: {error}: {reason}");
        }
    }

    /// librdkafka statistics (`statistics.interval.ms`, set by the pipeline): consumer
    /// lag and producer queue depth as metrics; a broker connection that is up again
    /// ends a "brokers down" state even when no record flows.
    fn stats(&self, statistics: Statistics) {
        crate::telemetry::emit(crate::telemetry::events::KafkaStatistics(&statistics));
        if statistics.brokers.values().any(|b| b.state == "UP") {
            self.broker_answered();
            // A broker answered over the configured transport: whatever TLS/SASL failure
            // came before is over.
            *self
                .health
                .transport_security_error
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = None;
        }
    }
}

impl Context {
    /// librdkafka reports every broker down: not ready; the first report of an outage is
    /// logged, the others are counted ([`Health::outage_since`]).
    fn brokers_down(&self, reason: &str) {
        let h = &self.health;
        let now = crate::health::unix_millis();
        h.brokers_down.store(true, Ordering::SeqCst);
        h.outage_last_report.store(now, Ordering::SeqCst);
        h.outage_reports.fetch_add(1, Ordering::SeqCst);
        if h.outage_since
            .compare_exchange(0, now, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            tracing::error!(
                "all brokers are down: {reason}; librdkafka keeps reconnecting with backoff \
                 (one more line when they stay reachable for {}s)",
                crate::health::OUTAGE_SETTLES_AFTER_MS / 1000
            );
        }
    }

    /// Called when a broker answered: ready again at once; the outage ends (one line,
    /// with how often every broker was reported down) once no such report came for
    /// [`crate::health::OUTAGE_SETTLES_AFTER_MS`].
    pub fn broker_answered(&self) {
        let h = &self.health;
        h.brokers_down.store(false, Ordering::SeqCst);
        let since = h.outage_since.load(Ordering::SeqCst);
        let now = crate::health::unix_millis();
        let last = h.outage_last_report.load(Ordering::SeqCst);
        if since == 0 || now.saturating_sub(last) < crate::health::OUTAGE_SETTLES_AFTER_MS {
            return;
        }
        if h.outage_since
            .compare_exchange(since, 0, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            let reports = h.outage_reports.swap(0, Ordering::SeqCst);
            tracing::info!(
                outage_s = last.saturating_sub(since) / 1000,
                all_brokers_down_reports = reports,
                "brokers reachable again (for {}s without an 'all brokers down' report; \
                 reported {reports} time(s) during the outage)",
                crate::health::OUTAGE_SETTLES_AFTER_MS / 1000
            );
        }
    }
}

impl Context {
    /// Before a revoke is acknowledged (inside the consumer's poll): the hook runs, the
    /// partitions are noted for the pipeline, and the at-least-once consumer commits its
    /// stored offsets with `commit` — unless the assignment was lost.
    pub fn before_revoke(
        &self,
        revoked: &[(String, i32)],
        lost: bool,
        commit: impl FnOnce() -> KafkaResult<()>,
    ) {
        if let Some(hook) = &self.on_revoke {
            hook(revoked);
        }
        self.revoked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(revoked.iter().cloned());
        self.revoked_any.store(true, Ordering::SeqCst);
        if !self.commit_on_revoke || revoked.is_empty() || lost {
            return;
        }
        // The offsets of acknowledged records, before another member takes the
        // partitions over: it resumes where this one stopped, not a commit interval
        // earlier.
        match commit() {
            Ok(()) => tracing::debug!("offsets committed before the revoke"),
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => tracing::warn!(
                "offsets not committed before the revoke ({e}); the new owner replays from the last commit"
            ),
        }
    }

    /// On an assign, before anything is read: the assigned partitions are resumed
    /// (`resume`). librdkafka keeps a partition's pause across a revoke and a later
    /// assign: one paused during a stall of the outputs and revoked before the stall
    /// ended would otherwise stay paused for good once assigned again. A record that
    /// arrives during a stall is held back by the pipeline.
    pub fn start_unpaused(&self, resume: impl FnOnce() -> KafkaResult<()>) {
        if let Err(e) = resume() {
            tracing::warn!("resuming the assigned partitions failed: {e}");
        }
    }

    /// After an assign (`assigned`) or a revoke: readiness follows what the member owns
    /// (`owns`; with `cooperative-sticky` a change names only the partitions that moved).
    pub fn after_rebalance(&self, assigned: bool, owns: bool, moved: usize, names: &str) {
        self.health.assigned.store(owns, Ordering::SeqCst);
        if assigned {
            let now = crate::health::unix_millis();
            self.health.last_assignment.store(now, Ordering::SeqCst);
            tracing::info!(partitions = moved, "partitions assigned: {names}");
        } else {
            tracing::info!(partitions = moved, "partitions revoked: {names}");
        }
    }
}

impl ConsumerContext for Context {
    fn pre_rebalance(
        &self,
        consumer: &rdkafka::consumer::BaseConsumer<Self>,
        rebalance: &Rebalance<'_>,
    ) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let revoked: Vec<(String, i32)> = tpl
                .elements()
                .iter()
                .map(|e| (e.topic().to_string(), e.partition()))
                .collect();
            self.before_revoke(&revoked, consumer.assignment_lost(), || {
                consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync)
            });
        }
    }

    fn post_rebalance(
        &self,
        consumer: &rdkafka::consumer::BaseConsumer<Self>,
        rebalance: &Rebalance<'_>,
    ) {
        let owns = || {
            consumer
                .assignment()
                .map(|a| a.count() > 0)
                .unwrap_or(false)
        };
        match rebalance {
            Rebalance::Assign(tpl) => {
                self.start_unpaused(|| consumer.resume(tpl));
                self.after_rebalance(true, owns(), tpl.count(), &partitions(tpl))
            }
            Rebalance::Revoke(tpl) => {
                self.after_rebalance(false, owns(), tpl.count(), &partitions(tpl))
            }
            Rebalance::Error(e) => tracing::warn!("rebalance error: {e}"),
        }
    }
}

fn partitions(tpl: &rdkafka::TopicPartitionList) -> String {
    tpl.elements()
        .iter()
        .map(|e| format!("{}[{}]", e.topic(), e.partition()))
        .collect::<Vec<_>>()
        .join(", ")
}
