//! The engine's Kafka clients, built once for both delivery guarantees, and what it asks
//! of them: waiting for a broker, subscribing, turning an [`Outgoing`] into a record,
//! enqueueing it, classifying delivery errors, releasing the clients at the end.

use super::records::Outgoing;
use super::PipelineError;
use crate::config::{Guarantee, Settings};
use crate::kafka::{self, Context};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::{BaseRecord, Producer as _};
use rdkafka::ClientConfig;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Builds the consumer: offsets stored by the pipeline and never auto-committed — under
/// at-least-once committed every `delivery.commit_interval`, on revoke
/// ([`Context::commit_on_revoke`]) and at shutdown; under exactly-once inside the
/// transactions only, reading `read_committed`.
pub fn consumer(
    settings: &Settings,
    context: Context,
) -> Result<StreamConsumer<Context>, PipelineError> {
    let c = consumer_config(settings);
    tracing::debug!("consumer configuration: {}", kafka::describe(settings, &c));
    kafka::create(settings, &c, context).map_err(PipelineError::ClientConfig)
}

/// The consumer's properties: the configured ones, and the filter's own defaults where
/// the configuration does not set them.
pub(super) fn consumer_config(settings: &Settings) -> ClientConfig {
    let mut c = kafka::consumer_config(settings);
    c.set("enable.auto.commit", "false");
    match settings.guarantee {
        // Never read an upstream producer's aborted records.
        Guarantee::ExactlyOnce => {
            c.set("isolation.level", "read_committed");
        }
        // Bounded memory: librdkafka prefetches up to 64 MiB per consumer by default;
        // 16 MiB keeps the fetch pipeline full at these record sizes.
        Guarantee::AtLeastOnce => {
            if c.get("queued.max.messages.kbytes").is_none() {
                c.set("queued.max.messages.kbytes", "16384");
            }
        }
    }
    // librdkafka waits `fetch.queue.backoff.ms` (1 s by default) before it fetches again
    // for a partition whose local queue went over that bound: with fetches of several
    // MiB the filter idled about one second in two (57,720 events/s end to end against
    // 163,244 with 20 ms, `scripts/bench-e2e.sh`).
    if c.get("fetch.queue.backoff.ms").is_none() {
        c.set("fetch.queue.backoff.ms", "20");
    }
    c
}

/// The pipeline's producer: librdkafka's, its delivery reports served by the engine's
/// task ([`crate::kafka::producer`]) and counted by batch in the context's
/// [`crate::kafka::acks::Acks`] — no future, channel or allocation per record.
pub type Producer = kafka::producer::Producer;

/// Builds the producer: idempotent, and under exactly-once transactional with
/// `delivery.transactional_id`. At least once, deliveries are retried by librdkafka
/// without a time limit unless `message.timeout.ms` is set (an outage stalls, it does
/// not lose), and its queue is bounded (a full queue makes the pipeline wait).
pub fn producer(settings: &Settings, context: Context) -> Result<Producer, PipelineError> {
    let mut c = kafka::producer_config(settings);
    match settings.guarantee {
        Guarantee::ExactlyOnce => {
            c.set("transactional.id", &settings.transactional_id);
        }
        Guarantee::AtLeastOnce => {
            if c.get("message.timeout.ms").is_none() {
                c.set("message.timeout.ms", "0");
            }
            // Bounded memory: instead of buffering up to librdkafka's default of 1 GiB.
            // 32 MiB is more than half a second of output at 50,000 records/s of 1.2 kB
            // (the JSON end-to-end run peaked at 230-247 MiB RSS with 64 MiB).
            if c.get("queue.buffering.max.kbytes").is_none() {
                c.set("queue.buffering.max.kbytes", "32768");
            }
        }
    }
    tracing::debug!("producer configuration: {}", kafka::describe(settings, &c));
    kafka::create(settings, &c, context).map_err(PipelineError::ClientConfig)
}

/// Delivery errors that retrying cannot fix: the record itself is refused by the broker.
pub(crate) fn is_permanent(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidMessageSize
                | RDKafkaErrorCode::InvalidMessage
                | RDKafkaErrorCode::InvalidRecord
        )
    )
}

/// The producer's fatal error, if it has one (an idempotence failure, or `_FATAL` on a
/// send): every later send fails the same way and only a new producer recovers, so the
/// filter stops rather than retry forever.
pub(crate) fn producer_fatal(producer: &Producer, error: Option<&KafkaError>) -> Option<String> {
    if let Some((code, reason)) = producer.client().fatal_error() {
        return Some(format!("{reason} ({code})"));
    }
    match error {
        Some(e) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal) => Some(e.to_string()),
        _ => None,
    }
}

/// The wait before retry `attempt` (100 ms doubling, at most 30 s).
pub(crate) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((100u64 << attempt.min(8)).min(30_000))
}

/// The size librdkafka checks against `message.max.bytes` when a record is enqueued
/// (`rd_kafka_msg_new0`): key, value, serialized headers and the largest per-record
/// overhead of the v2 format (36 bytes).
pub(crate) fn wire_size(o: &Outgoing) -> usize {
    36 + o.key.as_ref().map_or(0, String::len) + o.value.len() + o.headers.wire_len()
}

/// The producer's `message.max.bytes` (librdkafka's default: 1,000,000).
pub(super) fn max_message_bytes(settings: &Settings) -> usize {
    kafka::producer_config(settings)
        .get("message.max.bytes")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(1_000_000)
}

/// An [`Outgoing`] as the producer's record (librdkafka copies what it needs).
/// `opaque` is the record's place in its batch ([`crate::kafka::acks::Ticket::expect`]).
pub(super) fn record_of(o: &Outgoing, opaque: usize) -> BaseRecord<'_, str, [u8], usize> {
    let mut record = BaseRecord::with_opaque_to(&o.topic, opaque)
        .payload(o.value.as_slice())
        .timestamp(o.timestamp_ms);
    if let Some(h) = o.headers.to_kafka() {
        record = record.headers(h);
    }
    if let Some(k) = &o.key {
        record = record.key(k.as_str());
    }
    record
}

/// A record whose delivery failed, as its report gave it, for a re-send under `opaque`.
pub(super) fn resend_of(m: &OwnedMessage, opaque: usize) -> BaseRecord<'_, [u8], [u8], usize> {
    let mut record =
        BaseRecord::with_opaque_to(m.topic(), opaque).payload(m.payload().unwrap_or_default());
    if let Some(k) = m.key() {
        record = record.key(k);
    }
    if let Some(ms) = m.timestamp().to_millis() {
        record = record.timestamp(ms);
    }
    if let Some(h) = m.headers() {
        record = record.headers(h.clone());
    }
    record
}

/// Waits until a broker answers a metadata request, retrying with backoff; false when
/// shutdown came first. A TLS or SASL failure (wrong CA, bad password) is not retried:
/// it is an error, for the configuration to be fixed.
pub async fn wait_for_brokers(
    consumer: &Arc<StreamConsumer<Context>>,
    shutdown: &CancellationToken,
) -> Result<bool, PipelineError> {
    let mut attempt: u32 = 0;
    loop {
        let c = consumer.clone();
        let metadata = tokio::task::spawn_blocking(move || {
            c.fetch_metadata(None, Duration::from_secs(5))
                .map(|m| m.brokers().len())
        });
        // A shutdown does not wait for the request (it holds nothing to drain).
        let result = tokio::select! {
            _ = shutdown.cancelled() => return Ok(false),
            r = metadata => r.expect("metadata task"),
        };
        match result {
            Ok(n) => {
                tracing::info!(brokers = n, "connected to the Kafka cluster");
                return Ok(true);
            }
            Err(e) => {
                if let Some(reason) = consumer.context().health.transport_security_error() {
                    return Err(kafka::TransportSecurityError {
                        reason,
                        source: Some(e.into()),
                    }
                    .into());
                }
                attempt += 1;
                let wait = backoff(attempt + 2);
                tracing::warn!(
                    attempt,
                    "Kafka cluster unreachable: {e}; retrying in {wait:?}"
                );
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(false),
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}

/// Subscribes to the input topics and says the filter runs.
pub(super) fn subscribe(
    consumer: &StreamConsumer<Context>,
    settings: &Settings,
) -> Result<(), PipelineError> {
    let topics: Vec<&str> = settings.input_topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&topics)
        .map_err(PipelineError::Subscribe)?;
    let exactly_once = settings.guarantee == Guarantee::ExactlyOnce;
    tracing::info!(
        input = ?settings.input_topics,
        outputs = ?settings.purposes.iter().map(|p| (p.purpose.name(), p.topic.as_str())).collect::<Vec<_>>(),
        dead_letter = %settings.dead_letter.topic,
        group = %settings.kafka.group_id,
        transactional_id = exactly_once.then_some(settings.transactional_id.as_str()),
        "filter running{}",
        if exactly_once { ", exactly-once (transactions)" } else { "" }
    );
    Ok(())
}

/// Consumer errors, logged on the 1st, 2nd, 4th, 8th... in a row (not one line per
/// retry), with a growing pause while they last.
#[derive(Default)]
pub(super) struct RecvErrors(u32);

impl RecvErrors {
    /// A record arrived: the run of errors is over.
    pub(super) fn ok(&mut self) {
        self.0 = 0;
    }

    /// Logs the error if its rank in the run calls for it; returns the pause before the
    /// next attempt.
    pub(super) fn failed(&mut self, e: &KafkaError) -> Duration {
        self.0 += 1;
        if self.0 == 1 || self.0.is_power_of_two() {
            tracing::warn!(errors = self.0, "consumer error: {e}");
        }
        backoff(self.0.min(6))
    }
}

/// Destroys the clients off the runtime, waiting for that until the shutdown deadline (at
/// least half a second): librdkafka's destroy closes the consumer (leaving the group) and the
/// producer, which can block for long while the brokers are down. Past the deadline the
/// filter goes on to report and exit; the process ends the destroy.
pub(super) async fn release_clients(
    consumer: Arc<StreamConsumer<Context>>,
    producer: Arc<Producer>,
    deadline: tokio::time::Instant,
) {
    let (done, released) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        drop(consumer);
        drop(producer);
        let _ = done.send(());
    });
    let until = deadline.max(tokio::time::Instant::now() + Duration::from_millis(500));
    if tokio::time::timeout_at(until, released).await.is_err() {
        tracing::warn!("Kafka clients not closed within the shutdown deadline; exiting without waiting for them");
    }
}
