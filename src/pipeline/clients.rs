//! The engine's Kafka clients, built once for both delivery guarantees, and what it asks
//! of them: waiting for a broker, subscribing, turning an [`Outgoing`] into a record,
//! enqueueing it, classifying delivery errors, releasing the clients at the end.

use super::boundary::{Input, Output, Position, Record, TxnError};
use super::records::Outgoing;
use super::{PipelineError, TxnCause};
use crate::config::{Guarantee, Settings};
use crate::kafka::producer::Enqueued;
use crate::kafka::{self, Context};
use rdkafka::consumer::{
    CommitMode, Consumer, ConsumerGroupMetadata, MessageStream, StreamConsumer,
};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message, OwnedMessage};
use rdkafka::producer::BaseRecord;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::future::Future;
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
    // MiB the filter would idle about one second in two (`scripts/bench-e2e.sh` shows
    // it).
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
            // 32 MiB holds more than half a second of output at 50,000 records/s of
            // 1.2 kB; twice that only raised the peak RSS (docs/performance.md).
            if c.get("queue.buffering.max.kbytes").is_none() {
                c.set("queue.buffering.max.kbytes", "32768");
            }
        }
    }
    tracing::debug!("producer configuration: {}", kafka::describe(settings, &c));
    kafka::create(settings, &c, context).map_err(PipelineError::ClientConfig)
}

pub(crate) use crate::kafka::producer::is_permanent;

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
pub(super) fn subscribe(consumer: &impl Input, settings: &Settings) -> Result<(), PipelineError> {
    let topics: Vec<&str> = settings.input_topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&topics)
        .map_err(PipelineError::Subscribe)?;
    let exactly_once = settings.guarantee == Guarantee::ExactlyOnce;
    let policy = &settings.policy;
    if let Some(until) = policy.in_force_until() {
        tracing::warn!(
            policy = policy.version.name(),
            until = %crate::retention::rfc3339(until),
            "the configured policy version is a historical text: it applies to communications before `until` only; later events are dropped for every purpose (not_in_force); the text in force is {}",
            crate::policy::Version::IN_FORCE.name()
        );
    }
    tracing::info!(
        policy = policy.version.name(),
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
/// retry). librdkafka retries by itself; the consumer is polled again at once, with no
/// pause: the events queued behind the errors — a rebalance after a broker restart — are
/// served without waiting (a pause growing to 6.4 s per error held a revoke queued
/// behind four errors for 25.6 s).
#[derive(Default)]
pub(super) struct RecvErrors(u32);

impl RecvErrors {
    /// A record arrived: the run of errors is over.
    pub(super) fn ok(&mut self) {
        self.0 = 0;
    }

    /// Logs the error if its rank in the run calls for it.
    pub(super) fn failed(&mut self, e: &KafkaError) {
        self.0 += 1;
        if self.0 == 1 || self.0.is_power_of_two() {
            tracing::warn!(errors = self.0, "consumer error: {e}");
        }
    }
}

/// Destroys the clients off the runtime, waiting for that until the shutdown deadline (at
/// least half a second): librdkafka's destroy closes the consumer (leaving the group) and the
/// producer, which can block for long while the brokers are down. Past the deadline the
/// filter goes on to report and exit; the process ends the destroy.
pub(super) async fn release_clients(
    consumer: Arc<impl Input>,
    producer: Arc<impl Output>,
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

/// librdkafka's consumer behind the engine's boundary.
impl Input for StreamConsumer<Context> {
    type Message<'a> = BorrowedMessage<'a>;
    type Stream<'a> = MessageStream<'a, Context>;
    type Group = ConsumerGroupMetadata;

    fn stream(&self) -> MessageStream<'_, Context> {
        StreamConsumer::stream(self)
    }

    fn leader_epoch(message: &BorrowedMessage<'_>) -> Option<i32> {
        kafka::epoch::of_message(message)
    }

    async fn wait_for_brokers(
        self: &Arc<Self>,
        shutdown: &CancellationToken,
    ) -> Result<bool, PipelineError> {
        wait_for_brokers(self, shutdown).await
    }

    fn subscribe(&self, topics: &[&str]) -> KafkaResult<()> {
        Consumer::subscribe(self, topics)
    }

    fn assignment(&self) -> KafkaResult<Vec<(String, i32)>> {
        Ok(Consumer::assignment(self)?
            .elements()
            .iter()
            .map(|e| (e.topic().to_string(), e.partition()))
            .collect())
    }

    fn pause(&self, partitions: &[(String, i32)]) -> KafkaResult<()> {
        Consumer::pause(self, &list_of(partitions)?)
    }

    fn resume(&self, partitions: &[(String, i32)]) -> KafkaResult<()> {
        Consumer::resume(self, &list_of(partitions)?)
    }

    fn seek(&self, topic: &str, partition: i32, offset: i64) -> KafkaResult<()> {
        Consumer::seek(
            self,
            topic,
            partition,
            Offset::Offset(offset),
            Duration::from_secs(10),
        )
    }

    fn store(&self, positions: &[Position]) -> KafkaResult<()> {
        kafka::epoch::store(
            self,
            positions
                .iter()
                .map(|p| (p.topic.to_string(), p.partition, p.offset, p.leader_epoch)),
        )
    }

    async fn commit_stored(self: &Arc<Self>) -> KafkaResult<()> {
        let c = self.clone();
        tokio::task::spawn_blocking(move || c.commit_consumer_state(CommitMode::Sync))
            .await
            .unwrap_or(Err(KafkaError::Canceled))
    }

    async fn committed(self: &Arc<Self>, timeout: Duration) -> KafkaResult<Vec<Position>> {
        let c = self.clone();
        tokio::task::spawn_blocking(move || Consumer::committed(&*c, timeout))
            .await
            .unwrap_or(Err(KafkaError::Canceled))
            .map(|tpl| positions_of(&tpl))
    }

    fn position(&self) -> KafkaResult<Vec<Position>> {
        Consumer::position(self).map(|tpl| positions_of(&tpl))
    }

    fn group(&self) -> Option<ConsumerGroupMetadata> {
        self.group_metadata()
    }
}

#[allow(dead_code)] // pause, resume, committed, position: for the back-pressure pause and the checks
fn list_of(partitions: &[(String, i32)]) -> KafkaResult<TopicPartitionList> {
    let mut tpl = TopicPartitionList::new();
    for (topic, partition) in partitions {
        tpl.add_partition(topic, *partition);
    }
    Ok(tpl)
}

#[allow(dead_code)] // pause, resume, committed, position: for the back-pressure pause and the checks
fn positions_of(tpl: &TopicPartitionList) -> Vec<Position> {
    tpl.elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some(Position {
                topic: Arc::from(e.topic()),
                partition: e.partition(),
                offset: o,
                leader_epoch: None,
            }),
            _ => None,
        })
        .collect()
}

/// Runs a blocking librdkafka call off the async worker.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// Runs a transactional call on the blocking pool: the task can give up waiting for it.
async fn off_thread(
    producer: &Producer,
    call: impl FnOnce() -> KafkaResult<()> + Send + 'static,
) -> Result<(), TxnError> {
    match tokio::task::spawn_blocking(call).await {
        Ok(result) => result.map_err(|e| txn_error(producer, e)),
        Err(e) => Err(TxnError::Abortable(format!(
            "the call did not complete: {e}"
        ))),
    }
}

/// A transactional call's error, classified: a broker without transactions is told
/// apart here, once, from librdkafka's wording of it (which it may call retriable or
/// fatal); fencing is not that, whatever its words.
pub(super) fn txn_error(producer: &Producer, e: KafkaError) -> TxnError {
    match client_txn_error(producer, e) {
        TxnError::Retriable(t) | TxnError::Abortable(t) | TxnError::Fatal(t)
            if TxnCause::of_reason(&t) == TxnCause::Unsupported =>
        {
            TxnError::Unsupported(t)
        }
        other => other,
    }
}

/// A transactional call's error, classified as librdkafka does: fenced, fatal,
/// retriable, or abortable.
fn client_txn_error(producer: &Producer, e: KafkaError) -> TxnError {
    let fenced = |code: Option<RDKafkaErrorCode>| {
        matches!(
            code,
            Some(RDKafkaErrorCode::Fenced | RDKafkaErrorCode::ProducerFenced)
        )
    };
    if let Some((code, reason)) = rdkafka::producer::Producer::client(&**producer).fatal_error() {
        let text = format!("{reason} ({code})");
        return if fenced(Some(code)) {
            TxnError::Fenced(text)
        } else {
            TxnError::Fatal(text)
        };
    }
    match &e {
        KafkaError::Transaction(t) if t.is_fatal() && fenced(Some(t.code())) => {
            TxnError::Fenced(t.to_string())
        }
        KafkaError::Transaction(t) if t.is_fatal() => TxnError::Fatal(t.to_string()),
        KafkaError::Transaction(t) if t.is_retriable() => TxnError::Retriable(t.to_string()),
        _ if e.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal) => {
            TxnError::Fatal(e.to_string())
        }
        _ => TxnError::Abortable(e.to_string()),
    }
}

/// librdkafka's producer behind the engine's boundary: each transactional call blocks
/// its worker thread (`block_in_place`) for at most its timeout.
impl Output for Producer {
    type Group = ConsumerGroupMetadata;

    fn enqueue(&self, record: Record<'_>, opaque: usize) -> Enqueued {
        match record {
            Record::New(o) => kafka::producer::Producer::enqueue(self, record_of(o, opaque)),
            Record::Again(m) => kafka::producer::Producer::enqueue(self, resend_of(m, opaque)),
        }
    }

    fn fatal_error(&self) -> Option<String> {
        kafka::producer::Producer::fatal_error(self)
    }

    fn fenced(&self) -> bool {
        matches!(
            rdkafka::producer::Producer::client(&**self).fatal_error(),
            Some((
                RDKafkaErrorCode::Fenced | RDKafkaErrorCode::ProducerFenced,
                _
            ))
        )
    }

    fn serve(&self) {
        kafka::producer::Producer::serve(self)
    }

    fn retry_log(&self) -> Option<&crate::telemetry::events::RetryLog> {
        use rdkafka::producer::Producer as _;
        Some(&self.context().retry_log)
    }

    fn reports(&self) -> impl Future<Output = ()> + Send + '_ {
        kafka::producer::Producer::reports(self)
    }

    async fn flush(self: &Arc<Self>, timeout: Duration) -> KafkaResult<()> {
        let p = self.clone();
        tokio::task::spawn_blocking(move || rdkafka::producer::Producer::flush(&**p, timeout))
            .await
            .unwrap_or(Err(KafkaError::Canceled))
    }

    async fn init_transactions(&self, timeout: Duration) -> Result<(), TxnError> {
        blocking(|| rdkafka::producer::Producer::init_transactions(&**self, timeout))
            .map_err(|e| txn_error(self, e))
    }

    async fn begin_transaction(&self) -> Result<(), TxnError> {
        blocking(|| rdkafka::producer::Producer::begin_transaction(&**self))
            .map_err(|e| txn_error(self, e))
    }

    async fn send_offsets(
        &self,
        positions: &[Position],
        group: &ConsumerGroupMetadata,
        timeout: Duration,
    ) -> Result<(), TxnError> {
        let mut tpl = TopicPartitionList::new();
        for p in positions {
            tpl.add_partition_offset(&p.topic, p.partition, Offset::Offset(p.offset))
                .map_err(|e| txn_error(self, e))?;
        }
        blocking(|| {
            rdkafka::producer::Producer::send_offsets_to_transaction(&**self, &tpl, group, timeout)
        })
        .map_err(|e| txn_error(self, e))
    }

    async fn commit_transaction(self: &Arc<Self>, timeout: Duration) -> Result<(), TxnError> {
        let p = self.clone();
        off_thread(self, move || {
            rdkafka::producer::Producer::commit_transaction(&**p, timeout)
        })
        .await
    }

    async fn abort_transaction(self: &Arc<Self>, timeout: Duration) -> Result<(), TxnError> {
        let p = self.clone();
        off_thread(self, move || {
            rdkafka::producer::Producer::abort_transaction(&**p, timeout)
        })
        .await
    }

    fn abort_in_callback(&self, timeout: Duration) -> Result<(), TxnError> {
        rdkafka::producer::Producer::abort_transaction(&**self, timeout)
            .map_err(|e| txn_error(self, e))
    }
}
