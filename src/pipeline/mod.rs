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

use crate::config::{Guarantee, Settings};
use crate::kafka::{self, Context};
use crate::telemetry::{self, Stats};
use chrono::Utc;
use futures::stream::{FuturesUnordered, StreamExt};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use records::{Outgoing, Source, Transform};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Why the pipeline stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The client configuration was refused by librdkafka: the user's to fix.
    #[error("kafka client configuration refused")]
    ClientConfig(#[source] KafkaError),
    #[error("cannot subscribe to the input topics")]
    Subscribe(#[source] KafkaError),
    #[error("shutdown deadline of {deadline:?} passed with {pending} input record(s) not acknowledged; they will be processed again after restart")]
    ShutdownDeadline { deadline: Duration, pending: usize },
    #[error("final offset commit failed; the last records may be processed again after restart")]
    Commit(#[source] KafkaError),
    #[error("Kafka transactions failed (delivery.guarantee = \"exactly-once\" needs a broker that supports them)")]
    Transactions(#[source] KafkaError),
    /// No broker was ever reached and TLS or SASL failed: the configuration's to fix.
    #[error(transparent)]
    TransportSecurity(#[from] kafka::TransportSecurityError),
}

/// Builds the consumer: manual offset store, commits of stored offsets only.
pub fn consumer(
    settings: &Settings,
    context: Context,
) -> Result<StreamConsumer<Context>, PipelineError> {
    let mut c = kafka::consumer_config(settings);
    c.set("enable.auto.commit", "true");
    // Bounded memory: librdkafka prefetches up to 64 MiB per consumer by default; 16 MiB
    // keeps the fetch pipeline full at these record sizes.
    if c.get("queued.max.messages.kbytes").is_none() {
        c.set("queued.max.messages.kbytes", "16384");
    }
    tracing::debug!("consumer configuration: {}", kafka::describe(&c));
    c.create_with_context(context)
        .map_err(PipelineError::ClientConfig)
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
    tracing::debug!("producer configuration: {}", kafka::describe(&c));
    c.create_with_context(context)
        .map_err(PipelineError::ClientConfig)
}

/// One input record in flight.
#[derive(Debug)]
struct Entry {
    seq: u64,
    offset: i64,
    done: bool,
}

/// Offsets in flight, per input partition, in consumption order.
#[derive(Default)]
struct Tracker {
    index: HashMap<(Arc<str>, i32), usize>,
    partitions: Vec<(Arc<str>, i32, VecDeque<Entry>)>,
    in_flight: usize,
    next_seq: u64,
}

impl Tracker {
    fn partition(&mut self, topic: &str, partition: i32) -> usize {
        if let Some(&i) = self.index.get(&(Arc::from(topic), partition)) {
            return i;
        }
        let topic: Arc<str> = Arc::from(topic);
        self.partitions
            .push((topic.clone(), partition, VecDeque::new()));
        self.index
            .insert((topic, partition), self.partitions.len() - 1);
        self.partitions.len() - 1
    }

    fn push(&mut self, p: usize, offset: i64) -> u64 {
        self.next_seq += 1;
        self.in_flight += 1;
        self.partitions[p].2.push_back(Entry {
            seq: self.next_seq,
            offset,
            done: false,
        });
        self.next_seq
    }

    /// Marks a record complete; returns the offset that may now be stored, if any.
    fn complete(&mut self, p: usize, seq: u64) -> Option<(Arc<str>, i32, i64)> {
        let (topic, partition, queue) = &mut self.partitions[p];
        if let Ok(i) = queue.binary_search_by_key(&seq, |e| e.seq) {
            queue[i].done = true;
            self.in_flight -= 1;
        }
        let mut storable = None;
        while queue.front().is_some_and(|e| e.done) {
            storable = queue.pop_front().map(|e| e.offset);
        }
        storable.map(|o| (topic.clone(), *partition, o))
    }
}

/// What a per-record future resolves to: its partition slot and sequence number, and
/// whether every output was acknowledged.
type Completion = (usize, u64, bool);

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

pub(crate) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((100u64 << attempt.min(8)).min(30_000))
}

/// Waits for a record's deliveries; re-sends failures with backoff until they succeed,
/// and dead-letters outputs the broker refuses for good (too large).
async fn await_deliveries(
    producer: Arc<FutureProducer<Context>>,
    context: Context,
    deliveries: Vec<DeliveryFuture>,
    source: Source,
    transform: Arc<Transform>,
    stats: Arc<Stats>,
    slot: (usize, u64),
) -> Completion {
    let mut failed: Vec<(KafkaError, OwnedMessage)> = Vec::new();
    for d in futures::future::join_all(deliveries).await {
        match d {
            Ok(Ok(_)) => context.broker_answered(),
            Ok(Err((e, msg))) => failed.push((e, msg)),
            // The producer was dropped or purged: not delivered, offset not stored.
            Err(_canceled) => return (slot.0, slot.1, false),
        }
    }
    let mut attempt = 0;
    while !failed.is_empty() {
        attempt += 1;
        let mut resend = Vec::new();
        for (e, msg) in failed.drain(..) {
            if is_permanent(&e) {
                let message = format!("the broker refused the {} output record: {e}", msg.topic());
                let o = transform.dead_letter(&source, "output_too_large", message, None, &stats);
                let record = FutureRecord::<str, _>::to(&o.topic)
                    .payload(&o.value)
                    .timestamp(o.timestamp_ms)
                    .headers(o.headers);
                resend.push(producer.send(record, Timeout::Never).await);
            } else {
                telemetry::produce_retry(msg.topic(), &e.to_string(), attempt);
                tokio::time::sleep(backoff(attempt)).await;
                let mut record = FutureRecord::to(msg.topic())
                    .payload(msg.payload().unwrap_or_default())
                    .timestamp(msg.timestamp().to_millis().unwrap_or_default());
                if let Some(k) = msg.key() {
                    record = record.key(k);
                }
                if let Some(h) = msg.headers() {
                    record = record.headers(h.clone());
                }
                resend.push(producer.send(record, Timeout::Never).await);
            }
        }
        for r in resend {
            if let Err((e, msg)) = r {
                failed.push((e, msg));
            }
        }
    }
    (slot.0, slot.1, true)
}

/// The state of a run.
struct Run {
    producer: Arc<FutureProducer<Context>>,
    context: Context,
    stats: Arc<Stats>,
    tracker: Tracker,
    pending: FuturesUnordered<futures::future::BoxFuture<'static, Completion>>,
    transform: Arc<Transform>,
    /// Reused between records.
    outgoing: Vec<Outgoing>,
}

impl Run {
    /// Stores the offset a completion makes storable.
    fn on_complete(&mut self, consumer: &StreamConsumer<Context>, (p, seq, ok): Completion) {
        if !ok {
            return;
        }
        telemetry::input_completed(&self.stats);
        if let Some((topic, partition, offset)) = self.tracker.complete(p, seq) {
            // Stores offset + 1: the next record to read. Fails harmlessly for a
            // partition revoked meanwhile; its new owner reprocesses from the commit.
            if let Err(e) = consumer.store_offset(&topic, partition, offset) {
                tracing::debug!(%topic, partition, offset, "offset not stored: {e}");
            }
        }
    }

    /// Enqueues a record, waiting for acknowledgements while the producer's queue is full.
    /// A record the client refuses for good (larger than `message.max.bytes`) is returned
    /// as an error, for the caller to dead-letter.
    async fn send(
        &mut self,
        consumer: &StreamConsumer<Context>,
        mut record: FutureRecord<'_, str, [u8]>,
    ) -> Result<DeliveryFuture, KafkaError> {
        loop {
            match self.producer.send_result(record) {
                Ok(d) => return Ok(d),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    match self.pending.next().await {
                        Some(c) => self.on_complete(consumer, c),
                        None => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                }
                Err((e, _)) if is_permanent(&e) => return Err(e),
                Err((e, r)) => {
                    // Other enqueue errors (unknown topic in the local metadata cache,
                    // ...) are retried like failed deliveries.
                    tracing::warn!(topic = r.topic, "enqueue failed, retrying in 1s: {e}");
                    record = r;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    async fn handle(
        &mut self,
        consumer: &StreamConsumer<Context>,
        msg: &rdkafka::message::BorrowedMessage<'_>,
    ) {
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
        let mut deliveries = Vec::with_capacity(outgoing.len());
        while let Some(o) = outgoing.pop() {
            let mut record = FutureRecord::to(&o.topic)
                .payload(o.value.as_slice())
                .timestamp(o.timestamp_ms)
                .headers(o.headers.clone());
            if let Some(k) = &o.key {
                record = record.key(k.as_str());
            }
            match self.send(consumer, record).await {
                Ok(d) => deliveries.push(d),
                Err(e) => {
                    let message = format!("the client refused the {} output record: {e}", o.topic);
                    outgoing.push(self.transform.dead_letter(
                        &source,
                        "output_too_large",
                        message,
                        None,
                        &self.stats,
                    ));
                }
            }
        }
        self.outgoing = outgoing;
        let p = self.tracker.partition(topic, partition);
        let seq = self.tracker.push(p, offset);
        let fut = await_deliveries(
            self.producer.clone(),
            self.context.clone(),
            deliveries,
            source,
            self.transform.clone(),
            self.stats.clone(),
            (p, seq),
        );
        self.pending.push(Box::pin(async move {
            let completion = fut.await;
            if completion.2 {
                telemetry::input_processed(received.elapsed());
            }
            completion
        }));
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
    let settings = &*settings;
    let consumer = Arc::new(consumer(settings, context.clone())?);
    let producer = Arc::new(producer(settings, context.clone())?);
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
        outgoing: Vec::with_capacity(4),
    };
    let mut recv_errors: u32 = 0;
    loop {
        if run.tracker.in_flight >= settings.max_in_flight {
            // Back-pressure: wait for acknowledgements before consuming more.
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                Some(c) = run.pending.next() => run.on_complete(&consumer, c),
            }
            continue;
        }
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            Some(c) = run.pending.next(), if !run.pending.is_empty() => run.on_complete(&consumer, c),
            msg = consumer.recv() => match msg {
                Ok(msg) => {
                    recv_errors = 0;
                    context.broker_answered();
                    run.handle(&consumer, &msg).await;
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

    // Shutdown: stop consuming, drain, flush, commit.
    let pending = run.tracker.in_flight;
    tracing::info!(pending, "shutting down: draining in-flight records");
    let deadline = tokio::time::Instant::now() + settings.shutdown_timeout;
    while !run.pending.is_empty() {
        match tokio::time::timeout_at(deadline, run.pending.next()).await {
            Ok(Some(c)) => run.on_complete(&consumer, c),
            Ok(None) => break,
            Err(_) => break,
        }
    }
    let unacked = run.tracker.in_flight;
    let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
    let p = producer.clone();
    let _ = tokio::task::spawn_blocking(move || p.flush(remaining)).await;
    let c = consumer.clone();
    let commit = tokio::task::spawn_blocking(move || c.commit_consumer_state(CommitMode::Sync))
        .await
        .expect("commit task");
    drop(run);
    match commit {
        Ok(()) => {}
        // Nothing was stored since the last commit: nothing to do.
        Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
        Err(e) => return Err(PipelineError::Commit(e)),
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
