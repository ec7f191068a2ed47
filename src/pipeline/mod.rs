//! The Kafka pipeline, the main job: consume → [`decode`] → [`policy`] → [`encode`] →
//! produce, at least once.
//!
//! One consumer in the group and one idempotent producer. Records are handled in the
//! order they are consumed; their outputs are sent without waiting, and a per-message
//! future resolves once every output (or dead letter) of that input record is
//! acknowledged. An input offset is stored — and later committed — only when that
//! record and every earlier one of its partition are complete, so a crash at any point
//! loses nothing: on restart processing resumes from the committed offsets.
//!
//! Back-pressure: at most `max_in_flight` input records are in flight; past that, and
//! whenever the producer's queue is full, the pipeline waits for acknowledgements
//! instead of consuming (memory stays bounded when the input is larger than memory).

mod exactly_once;
pub mod records;
mod tracker;

use tracker::Tracker;

use crate::config::{Guarantee, Settings};
use crate::kafka::{self, Context};
use crate::telemetry::{self, Stats};
use chrono::Utc;
use futures::stream::{FuturesUnordered, StreamExt};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use records::{Outgoing, Source, Transform};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Why the pipeline stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The client configuration was refused by librdkafka: the user's to fix.
    #[error("kafka client configuration refused")]
    ClientConfig(#[source] kafka::ClientConfigError),
    #[error("cannot subscribe to the input topics")]
    Subscribe(#[source] KafkaError),
    #[error("shutdown deadline of {deadline:?} passed with {pending} input record(s) not acknowledged; they will be processed again after restart")]
    ShutdownDeadline { deadline: Duration, pending: usize },
    #[error("final offset commit not confirmed within delivery.shutdown_timeout ({0:?}); the last records may be processed again after restart")]
    CommitTimeout(Duration),
    #[error("final offset commit failed; the last records may be processed again after restart")]
    Commit(#[source] KafkaError),
    /// The producer failed for good (an idempotence failure): a restart builds a new one
    /// and resumes from the committed offsets.
    #[error("the Kafka producer failed for good: {0}; stopping (after a restart the filter resumes from the committed offsets, nothing is lost)")]
    ProducerFatal(String),
    /// Exactly-once: the transactional producer failed for good — fenced by a newer
    /// instance with the same `transactional.id`, or a fatal transaction error.
    #[error("the transactional producer failed for good: {0}; stopping (fenced: another instance runs with the same delivery.transactional_id; the open transaction is not committed, a restart resumes from the last committed one)")]
    TransactionFatal(String),
    /// Exactly-once: the consumer could not be rewound to the start of an aborted batch;
    /// going on would skip it.
    #[error("cannot rewind {topic}[{partition}] to offset {offset} after an aborted transaction: {error}; stopping (after a restart the filter resumes from the committed offsets)")]
    Rewind {
        topic: String,
        partition: i32,
        offset: i64,
        error: KafkaError,
    },
    #[error("Kafka transactions failed (delivery.guarantee = \"exactly-once\" needs a broker that supports them)")]
    Transactions(#[source] KafkaError),
    /// No broker was ever reached and TLS or SASL failed: the configuration's to fix.
    #[error(transparent)]
    TransportSecurity(#[from] kafka::TransportSecurityError),
}

/// A refused client property or a TLS/SASL failure is the configuration's to fix; the
/// rest happened at run time.
impl crate::error::Classify for PipelineError {
    fn fault(&self) -> crate::error::Fault {
        use crate::error::Fault;
        match self {
            PipelineError::ClientConfig(_) | PipelineError::TransportSecurity(_) => Fault::User,
            PipelineError::Subscribe(_)
            | PipelineError::ShutdownDeadline { .. }
            | PipelineError::CommitTimeout(_)
            | PipelineError::Commit(_)
            | PipelineError::ProducerFatal(_)
            | PipelineError::TransactionFatal(_)
            | PipelineError::Rewind { .. }
            | PipelineError::Transactions(_) => Fault::World,
        }
    }
}

/// Builds the consumer: manual offset store, commits of stored offsets only.
pub fn consumer(
    settings: &Settings,
    context: Context,
) -> Result<StreamConsumer<Context>, PipelineError> {
    let mut c = kafka::consumer_config(settings);
    // Offsets are committed by the pipeline, every `delivery.commit_interval`, on revoke
    // ([`Context::commit_on_revoke`]) and at shutdown.
    c.set("enable.auto.commit", "false");
    // Bounded memory: librdkafka prefetches up to 64 MiB per consumer by default; 16 MiB
    // keeps the fetch pipeline full at these record sizes.
    if c.get("queued.max.messages.kbytes").is_none() {
        c.set("queued.max.messages.kbytes", "16384");
    }
    tracing::debug!("consumer configuration: {}", kafka::describe(settings, &c));
    kafka::create(settings, &c, context).map_err(PipelineError::ClientConfig)
}

/// Builds the idempotent producer. Deliveries are retried by librdkafka without a time
/// limit unless `message.timeout.ms` is set: an outage stalls, it does not lose.
pub fn producer(
    settings: &Settings,
    context: Context,
) -> Result<FutureProducer<Context>, PipelineError> {
    let mut c = kafka::producer_config(settings);
    if c.get("message.timeout.ms").is_none() {
        c.set("message.timeout.ms", "0");
    }
    // Bounded memory: a full queue makes the pipeline wait (back-pressure) instead of
    // buffering up to librdkafka's default of 1 GiB.
    if c.get("queue.buffering.max.kbytes").is_none() {
        c.set("queue.buffering.max.kbytes", "65536");
    }
    tracing::debug!("producer configuration: {}", kafka::describe(settings, &c));
    kafka::create(settings, &c, context).map_err(PipelineError::ClientConfig)
}

/// How an input record ended.
#[derive(Debug)]
enum Done {
    /// Every output, or the one dead letter that replaces them, is acknowledged.
    Acked,
    /// The producer failed for good: nothing it holds will be delivered; the filter stops.
    Fatal(String),
}

/// What a per-record future resolves to: its partition slot and sequence number, and
/// how it ended.
type Completion = (usize, u64, Done);

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
pub(crate) fn producer_fatal(
    producer: &FutureProducer<Context>,
    error: Option<&KafkaError>,
) -> Option<String> {
    if let Some((code, reason)) = producer.client().fatal_error() {
        return Some(format!("{reason} ({code})"));
    }
    match error {
        Some(e) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal) => Some(e.to_string()),
        _ => None,
    }
}

pub(crate) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((100u64 << attempt.min(8)).min(30_000))
}

/// The size librdkafka checks against `message.max.bytes` when a record is enqueued
/// (`rd_kafka_msg_new0`): key, value, serialized headers and the largest per-record
/// overhead of the v2 format (36 bytes).
pub(crate) fn wire_size(o: &Outgoing) -> usize {
    fn zigzag_len(n: usize) -> usize {
        let mut v = (n as u64) << 1;
        let mut len = 1;
        while v >= 0x80 {
            v >>= 7;
            len += 1;
        }
        len
    }
    use rdkafka::message::Headers;
    let headers: usize = o
        .headers
        .iter()
        .map(|h| {
            let value = h.value.map_or(0, <[u8]>::len);
            zigzag_len(h.key.len()) + h.key.len() + zigzag_len(value) + value
        })
        .sum();
    36 + o.key.as_ref().map_or(0, String::len) + o.value.len() + headers
}

/// The producer's `message.max.bytes` (librdkafka's default: 1,000,000).
fn max_message_bytes(settings: &Settings) -> usize {
    kafka::producer_config(settings)
        .get("message.max.bytes")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(1_000_000)
}

fn record_of(o: &Outgoing) -> FutureRecord<'_, str, [u8]> {
    let mut record = FutureRecord::to(&o.topic)
        .payload(o.value.as_slice())
        .timestamp(o.timestamp_ms)
        .headers(o.headers.clone());
    if let Some(k) = &o.key {
        record = record.key(k.as_str());
    }
    record
}

/// Why an output could not be enqueued.
enum Refusal {
    /// The client refuses this record for good (larger than `message.max.bytes`).
    Refused(String),
    /// The producer failed for good.
    Fatal(String),
}

/// Enqueues a record for a re-send, waiting while the producer's queue is full.
async fn enqueue(
    producer: &FutureProducer<Context>,
    o: &Outgoing,
) -> Result<DeliveryFuture, Refusal> {
    loop {
        match producer.send_result(record_of(o)) {
            Ok(d) => return Ok(d),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                tokio::time::sleep(Duration::from_millis(10)).await
            }
            Err((e, _)) if is_permanent(&e) => return Err(Refusal::Refused(e.to_string())),
            Err((e, _)) => {
                if let Some(reason) = producer_fatal(producer, Some(&e)) {
                    return Err(Refusal::Fatal(reason));
                }
                tracing::warn!(topic = %o.topic, "enqueue failed, retrying in 1s: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// A delivery being awaited: librdkafka's report, or `Canceled` when the producer
/// purged or dropped the message without one.
type Pending = futures::future::BoxFuture<
    'static,
    Result<
        rdkafka::producer::future_producer::OwnedDeliveryResult,
        futures::channel::oneshot::Canceled,
    >,
>;

/// Names the purposes of output topics, for a dead letter's message.
fn purposes_of(transform: &Transform, topics: &[Arc<str>]) -> String {
    let names: Vec<&str> = topics
        .iter()
        .map(|t| transform.purpose_of_topic(t).unwrap_or("dead letter"))
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// Waits for a record's deliveries. Failures are re-sent with backoff until they succeed
/// — a cancelled delivery (the producer purged or dropped it) too. Outputs refused for
/// good (too large) make the input one dead letter, `output_too_large`, which names the
/// purposes already forwarded (those are not recalled). A producer that failed for good
/// ends the record as [`Done::Fatal`].
#[allow(clippy::too_many_arguments)]
async fn await_deliveries(
    producer: Arc<FutureProducer<Context>>,
    context: Context,
    sent: Vec<(Outgoing, Pending)>,
    mut refused: Vec<(Arc<str>, String)>,
    source: Source,
    transform: Arc<Transform>,
    stats: Arc<Stats>,
    slot: (usize, u64),
) -> Completion {
    let fatal = |reason| (slot.0, slot.1, Done::Fatal(reason));
    let mut waiting = sent;
    let mut forwarded: Vec<Arc<str>> = Vec::new();
    let mut dead_lettered = false;
    let mut attempt = 0;
    loop {
        if waiting.is_empty() {
            if refused.is_empty() {
                return (slot.0, slot.1, Done::Acked);
            }
            if dead_lettered {
                return fatal(format!(
                    "the dead-letter topic refused a pointer record: {}",
                    refused[0].1
                ));
            }
            // One dead letter for the input, whatever number of outputs were refused.
            let refusals: Vec<String> = refused
                .iter()
                .map(|(topic, reason)| {
                    let name = transform.purpose_of_topic(topic).unwrap_or("dead letter");
                    format!("the {name} output record was refused: {reason}")
                })
                .collect();
            let message = format!(
                "{}; forwarded: {}",
                refusals.join("; "),
                purposes_of(&transform, &forwarded)
            );
            refused.clear();
            dead_lettered = true;
            let o = transform.dead_letter(&source, "output_too_large", message, None, &stats);
            match enqueue(&producer, &o).await {
                Ok(d) => waiting.push((o, Box::pin(d))),
                Err(Refusal::Refused(reason)) => refused.push((o.topic.clone(), reason)),
                Err(Refusal::Fatal(reason)) => return fatal(reason),
            }
            continue;
        }
        let (outputs, deliveries): (Vec<Outgoing>, Vec<Pending>) = waiting.drain(..).unzip();
        let mut retry = Vec::new();
        for (o, d) in outputs
            .into_iter()
            .zip(futures::future::join_all(deliveries).await)
        {
            let error = match d {
                Ok(Ok(_)) => {
                    context.broker_answered();
                    if !Arc::ptr_eq(&o.topic, transform.dead_letter_topic()) {
                        forwarded.push(o.topic.clone());
                    }
                    continue;
                }
                Ok(Err((e, _))) => e,
                // The producer purged or dropped the message: not delivered, send again.
                Err(_canceled) => KafkaError::Canceled,
            };
            if let Some(reason) = producer_fatal(&producer, Some(&error)) {
                return fatal(reason);
            }
            if is_permanent(&error) {
                refused.push((o.topic.clone(), error.to_string()));
            } else {
                retry.push((o, error));
            }
        }
        if retry.is_empty() {
            continue;
        }
        attempt += 1;
        tokio::time::sleep(backoff(attempt)).await;
        for (o, e) in retry {
            telemetry::emit(telemetry::events::ProduceRetry {
                topic: &o.topic,
                error: &e.to_string(),
                attempt,
            });
            match enqueue(&producer, &o).await {
                Ok(d) => waiting.push((o, Box::pin(d))),
                Err(Refusal::Refused(reason)) => refused.push((o.topic.clone(), reason)),
                Err(Refusal::Fatal(reason)) => return fatal(reason),
            }
        }
    }
}

/// Why consuming stopped before shutdown was requested.
enum Stop {
    Shutdown,
    Failed(PipelineError),
}

/// The state of a run.
struct Run {
    producer: Arc<FutureProducer<Context>>,
    context: Context,
    stats: Arc<Stats>,
    tracker: Tracker,
    pending: FuturesUnordered<futures::future::BoxFuture<'static, Completion>>,
    transform: Arc<Transform>,
    shutdown: CancellationToken,
    /// The producer's `message.max.bytes`: an input with a larger output is dead-lettered
    /// whole before any of its outputs is sent.
    max_message_bytes: usize,
    /// An offset was stored since the last commit.
    stored: bool,
    /// Reused between records.
    outgoing: Vec<Outgoing>,
}

impl Run {
    /// Stores the offset a completion makes storable; a producer that failed for good
    /// is an error.
    fn on_complete(
        &mut self,
        consumer: &StreamConsumer<Context>,
        (p, seq, done): Completion,
    ) -> Result<(), PipelineError> {
        if let Done::Fatal(reason) = done {
            return Err(PipelineError::ProducerFatal(reason));
        }
        self.forget_revoked();
        telemetry::emit(telemetry::events::InputCompleted { stats: &self.stats });
        if let Some((topic, partition, offset)) = self.tracker.complete(p, seq) {
            // Stores offset + 1: the next record to read. Fails harmlessly for a
            // partition revoked meanwhile; its new owner reprocesses from the commit.
            match consumer.store_offset(&topic, partition, offset) {
                Ok(()) => self.stored = true,
                Err(e) => tracing::debug!(%topic, partition, offset, "offset not stored: {e}"),
            }
        }
        Ok(())
    }

    /// Drops the records in flight of partitions revoked since the last look (the
    /// rebalance callback runs inside `recv` on this task, so nothing completes between
    /// the revoke and this): their late completions then store nothing.
    fn forget_revoked(&mut self) {
        for (topic, partition) in self.context.take_revoked() {
            let dropped = self.tracker.revoke(&topic, partition);
            if dropped > 0 {
                tracing::debug!(%topic, partition, dropped, "records in flight of a revoked partition: the next owner replays them");
            }
        }
    }

    /// Commits the stored offsets, if any were stored since the last commit.
    fn commit(&mut self, consumer: &StreamConsumer<Context>) {
        if !std::mem::take(&mut self.stored) {
            return;
        }
        match consumer.commit_consumer_state(CommitMode::Async) {
            Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => tracing::warn!("offset commit failed, retried at the next interval: {e}"),
        }
    }

    /// Enqueues a record, waiting for acknowledgements while the producer's queue is full.
    /// A record the client refuses for good (larger than `message.max.bytes`) comes back
    /// as `Ok(Err(reason))`, for the caller to dead-letter.
    async fn send(
        &mut self,
        consumer: &StreamConsumer<Context>,
        o: &Outgoing,
    ) -> Result<Result<DeliveryFuture, String>, Stop> {
        loop {
            match self.producer.send_result(record_of(o)) {
                Ok(d) => return Ok(Ok(d)),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    tokio::select! {
                        biased;
                        _ = self.shutdown.cancelled() => return Err(Stop::Shutdown),
                        Some(c) = self.pending.next(), if !self.pending.is_empty() => {
                            self.on_complete(consumer, c).map_err(Stop::Failed)?
                        }
                        _ = tokio::time::sleep(Duration::from_millis(10)) => {}
                    }
                }
                Err((e, _)) if is_permanent(&e) => return Ok(Err(e.to_string())),
                Err((e, _)) => {
                    if let Some(reason) = producer_fatal(&self.producer, Some(&e)) {
                        return Err(Stop::Failed(PipelineError::ProducerFatal(reason)));
                    }
                    // Other enqueue errors (unknown topic in the local metadata cache,
                    // ...) are retried like failed deliveries.
                    tracing::warn!(topic = %o.topic, "enqueue failed, retrying in 1s: {e}");
                    tokio::select! {
                        biased;
                        _ = self.shutdown.cancelled() => return Err(Stop::Shutdown),
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
    }

    async fn handle(
        &mut self,
        consumer: &StreamConsumer<Context>,
        msg: &rdkafka::message::BorrowedMessage<'_>,
    ) -> Result<(), Stop> {
        let received = std::time::Instant::now();
        let topic = msg.topic();
        let (partition, offset) = (msg.partition(), msg.offset());
        let source = Source {
            topic: Arc::from(topic),
            partition,
            offset,
        };
        let mut outgoing = std::mem::take(&mut self.outgoing);
        self.transform.process(
            &source,
            msg.payload().unwrap_or_default(),
            Utc::now(),
            &self.stats,
            &mut outgoing,
        );
        // An output larger than the producer accepts: the input becomes one dead letter
        // before any of its outputs is sent, never a half-forwarded record.
        let too_large = outgoing.iter().find_map(|o| {
            let size = wire_size(o);
            let purpose = self.transform.purpose_of_topic(&o.topic)?;
            (size > self.max_message_bytes).then_some((purpose, size))
        });
        if let Some((purpose, size)) = too_large {
            let message = format!(
                "the {purpose} output record is {size} bytes, more than the producer's \
                 message.max.bytes ({}); forwarded: none",
                self.max_message_bytes
            );
            outgoing.clear();
            outgoing.push(self.transform.dead_letter(
                &source,
                "output_too_large",
                message,
                None,
                &self.stats,
            ));
        }
        let mut sent: Vec<(Outgoing, Pending)> = Vec::with_capacity(outgoing.len());
        let mut refused = Vec::new();
        let mut stop = None;
        for o in outgoing.drain(..) {
            if stop.is_some() {
                continue;
            }
            match self.send(consumer, &o).await {
                Ok(Ok(d)) => sent.push((o, Box::pin(d) as Pending)),
                Ok(Err(reason)) => refused.push((o.topic.clone(), reason)),
                Err(s) => stop = Some(s),
            }
        }
        self.outgoing = outgoing;
        if let Some(stop) = stop {
            return Err(stop);
        }
        self.forget_revoked();
        let p = self.tracker.partition(topic, partition);
        let seq = self.tracker.push(p, offset);
        let fut = await_deliveries(
            self.producer.clone(),
            self.context.clone(),
            sent,
            refused,
            source,
            self.transform.clone(),
            self.stats.clone(),
            (p, seq),
        );
        self.pending.push(Box::pin(async move {
            let completion = fut.await;
            if matches!(completion.2, Done::Acked) {
                telemetry::emit(telemetry::events::InputProcessed {
                    elapsed: received.elapsed(),
                });
            }
            completion
        }));
        Ok(())
    }
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
        let result = tokio::task::spawn_blocking(move || {
            c.fetch_metadata(None, Duration::from_secs(5))
                .map(|m| m.brokers().len())
        })
        .await
        .expect("metadata task");
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

/// Runs the filter until `shutdown` is cancelled, then drains, flushes and commits.
pub async fn run(
    settings: Arc<Settings>,
    shutdown: CancellationToken,
    stats: Arc<Stats>,
    context: Context,
) -> Result<(), PipelineError> {
    let transform = Arc::new(Transform::new(settings.clone()));
    run_with(settings, transform, shutdown, stats, context).await
}

/// [`run`] with a given transformation (the benchmark's pass-through floor uses this).
pub async fn run_with(
    settings: Arc<Settings>,
    transform: Arc<Transform>,
    shutdown: CancellationToken,
    stats: Arc<Stats>,
    context: Context,
) -> Result<(), PipelineError> {
    if settings.guarantee == Guarantee::ExactlyOnce {
        return exactly_once::run(settings, transform, shutdown, stats, context).await;
    }
    let consumer = Arc::new(consumer(
        &settings,
        Context {
            commit_on_revoke: true,
            ..context.clone()
        },
    )?);
    let producer = Arc::new(producer(&settings, context.clone())?);
    run_with_clients(
        settings, transform, consumer, producer, shutdown, stats, context,
    )
    .await
}

/// The at-least-once pipeline on given clients (from [`consumer`] and [`producer`]);
/// tests hold the producer to inject faults.
#[doc(hidden)]
pub async fn run_with_clients(
    settings: Arc<Settings>,
    transform: Arc<Transform>,
    consumer: Arc<StreamConsumer<Context>>,
    producer: Arc<FutureProducer<Context>>,
    shutdown: CancellationToken,
    stats: Arc<Stats>,
    context: Context,
) -> Result<(), PipelineError> {
    let settings = &*settings;
    if !wait_for_brokers(&consumer, &shutdown).await? {
        return Ok(());
    }
    let topics: Vec<&str> = settings.input_topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&topics)
        .map_err(PipelineError::Subscribe)?;
    tracing::info!(
        input = ?settings.input_topics,
        outputs = ?settings.purposes.iter().map(|p| (p.purpose.name(), p.topic.as_str())).collect::<Vec<_>>(),
        dead_letter = %settings.dead_letter.topic,
        group = %settings.kafka.group_id,
        "filter running"
    );
    let mut run = Run {
        producer: producer.clone(),
        context: context.clone(),
        stats: stats.clone(),
        tracker: Tracker::default(),
        pending: FuturesUnordered::new(),
        transform,
        shutdown: shutdown.clone(),
        max_message_bytes: max_message_bytes(settings),
        stored: false,
        outgoing: Vec::with_capacity(4),
    };
    // Offsets of acknowledged records are committed at most every commit_interval (and
    // on revoke, and at shutdown): a crash replays at most about that much input.
    let mut commit_tick = tokio::time::interval(settings.commit_interval);
    commit_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failure: Option<PipelineError> = None;
    let mut recv_errors: u32 = 0;
    loop {
        if run.tracker.in_flight >= settings.max_in_flight {
            // Back-pressure: wait for acknowledgements before consuming more.
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                _ = commit_tick.tick() => run.commit(&consumer),
                Some(c) = run.pending.next() => if let Err(e) = run.on_complete(&consumer, c) {
                    failure = Some(e);
                    break;
                },
            }
            continue;
        }
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            _ = commit_tick.tick() => run.commit(&consumer),
            Some(c) = run.pending.next(), if !run.pending.is_empty() => {
                if let Err(e) = run.on_complete(&consumer, c) {
                    failure = Some(e);
                    break;
                }
            }
            msg = consumer.recv() => match msg {
                Ok(msg) => {
                    recv_errors = 0;
                    context.broker_answered();
                    match run.handle(&consumer, &msg).await {
                        Ok(()) => {}
                        Err(Stop::Shutdown) => break,
                        Err(Stop::Failed(e)) => {
                            failure = Some(e);
                            break;
                        }
                    }
                }
                Err(e) => {
                    recv_errors += 1;
                    if recv_errors == 1 || recv_errors.is_power_of_two() {
                        tracing::warn!(errors = recv_errors, "consumer error: {e}");
                    }
                    tokio::time::sleep(backoff(recv_errors.min(6))).await;
                }
            },
        }
    }

    let deadline = tokio::time::Instant::now() + settings.shutdown_timeout;
    if let Some(e) = &failure {
        // Nothing more will be delivered: no drain. The offsets stored so far belong to
        // acknowledged records and are committed; the rest is processed again after the
        // restart.
        tracing::error!("stopping: {e}");
    } else {
        // Shutdown: stop consuming, drain, flush, commit.
        let pending = run.tracker.in_flight;
        tracing::info!(pending, "shutting down: draining in-flight records");
        while !run.pending.is_empty() {
            match tokio::time::timeout_at(deadline, run.pending.next()).await {
                Ok(Some(c)) => {
                    if let Err(e) = run.on_complete(&consumer, c) {
                        tracing::error!("stopping: {e}");
                        failure = Some(e);
                        break;
                    }
                }
                Ok(None) | Err(_) => break,
            }
        }
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        let p = producer.clone();
        let _ = tokio::time::timeout_at(
            deadline,
            tokio::task::spawn_blocking(move || p.flush(remaining)),
        )
        .await;
    }
    let unacked = run.tracker.in_flight;
    let c = consumer.clone();
    // Bounded like the rest of shutdown: during an outage the commit may never answer.
    let commit = tokio::time::timeout_at(
        deadline.max(tokio::time::Instant::now() + Duration::from_secs(1)),
        tokio::task::spawn_blocking(move || c.commit_consumer_state(CommitMode::Sync)),
    )
    .await;
    drop(run);
    release_clients(consumer, producer, deadline).await;
    if let Some(e) = failure {
        return Err(e);
    }
    match commit {
        Ok(Ok(Ok(()))) => {}
        // Nothing was stored since the last commit: nothing to do.
        Ok(Ok(Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)))) => {}
        Ok(Ok(Err(e))) => return Err(PipelineError::Commit(e)),
        Ok(Err(_panicked)) => return Err(PipelineError::Commit(KafkaError::Canceled)),
        Err(_elapsed) => return Err(PipelineError::CommitTimeout(settings.shutdown_timeout)),
    }
    tracing::info!(
        consumed = stats.consumed(),
        completed = stats.completed.load(Ordering::Relaxed),
        "stopped: offsets committed"
    );
    if unacked > 0 {
        return Err(PipelineError::ShutdownDeadline {
            deadline: settings.shutdown_timeout,
            pending: unacked,
        });
    }
    Ok(())
}

/// Destroys the clients off the runtime, waiting for that until the shutdown deadline (at
/// least a second): librdkafka's destroy closes the consumer (leaving the group) and the
/// producer, which can block for long while the brokers are down. Past the deadline the
/// filter goes on to report and exit; the process ends the destroy.
async fn release_clients(
    consumer: Arc<StreamConsumer<Context>>,
    producer: Arc<FutureProducer<Context>>,
    deadline: tokio::time::Instant,
) {
    let (done, released) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        drop(consumer);
        drop(producer);
        let _ = done.send(());
    });
    let until = deadline.max(tokio::time::Instant::now() + Duration::from_secs(1));
    if tokio::time::timeout_at(until, released).await.is_err() {
        tracing::warn!("Kafka clients not closed within the shutdown deadline; exiting without waiting for them");
    }
}

#[cfg(test)]
mod tests;
