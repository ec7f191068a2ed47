//! `delivery.guarantee = "exactly-once"`: Kafka transactions.
//!
//! One transactional producer per instance, with a stable `transactional.id`
//! (`delivery.transactional_id`, by default `<group_id>-<hostname>`): a restarted instance
//! fences its previous incarnation. Records are consumed in batches; each batch's outputs
//! and the consumed offsets commit in one transaction (`send_offsets_to_transaction`
//! with the consumer's group metadata, so a member that lost its partitions in a
//! rebalance is fenced too — KIP-447). On an abortable error the transaction is aborted
//! and the consumer rewinds to the committed offsets; a fatal error (fenced) stops the
//! filter. Readers with `isolation.level=read_committed` see each event's outputs once.

use super::records::{Outgoing, Source, Transform};
use super::{backoff, is_permanent, wait_for_brokers, PipelineError};
use crate::config::Settings;
use crate::kafka::{self, Context};
use crate::telemetry::{self, Stats};
use chrono::Utc;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const TXN_TIMEOUT: Duration = Duration::from_secs(30);

fn consumer(
    settings: &Settings,
    context: Context,
) -> Result<StreamConsumer<Context>, PipelineError> {
    let mut c = kafka::consumer_config(settings);
    c.set("enable.auto.commit", "false")
        // Never read an upstream producer's aborted records.
        .set("isolation.level", "read_committed");
    kafka::create(settings, &c, context).map_err(PipelineError::ClientConfig)
}

fn producer(
    settings: &Settings,
    context: Context,
) -> Result<FutureProducer<Context>, PipelineError> {
    let mut c = kafka::producer_config(settings);
    c.set("transactional.id", &settings.transactional_id);
    kafka::create(settings, &c, context).map_err(PipelineError::ClientConfig)
}

/// Runs a blocking librdkafka call off the async worker.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// One open transaction's bookkeeping.
#[derive(Default)]
struct Batch {
    /// Next offset to consume, per input partition.
    positions: BTreeMap<(Arc<str>, i32), i64>,
    deliveries: Vec<DeliveryFuture>,
    records: usize,
    /// When each record of the batch was received (processing latency).
    received: Vec<std::time::Instant>,
}

impl Batch {
    fn offsets(&self) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), next) in &self.positions {
            tpl.add_partition_offset(topic, *partition, Offset::Offset(*next))
                .expect("valid offset");
        }
        tpl
    }
}

/// Sends one record inside the open transaction; a record the client refuses for good
/// (too large) is replaced by a dead-letter pointer.
async fn send(
    producer: &FutureProducer<Context>,
    transform: &Transform,
    source: &Source,
    stats: &Stats,
    batch: &mut Batch,
    o: Outgoing,
) {
    let mut o = o;
    loop {
        let mut record = FutureRecord::to(&o.topic)
            .payload(o.value.as_slice())
            .timestamp(o.timestamp_ms)
            .headers(o.headers.clone());
        if let Some(k) = &o.key {
            record = record.key(k.as_str());
        }
        match producer.send_result(record) {
            Ok(d) => {
                batch.deliveries.push(d);
                return;
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                // Wait for the oldest delivery of the batch, then try again.
                if !batch.deliveries.is_empty() {
                    let d = batch.deliveries.remove(0);
                    let _ = d.await;
                } else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            Err((e, _)) if is_permanent(&e) => {
                let message = format!("the client refused the {} output record: {e}", o.topic);
                o = transform.dead_letter(source, "output_too_large", message, None, stats);
            }
            Err((e, _)) => {
                tracing::warn!(topic = %o.topic, "enqueue failed, retrying in 1s: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Rewinds the consumer to the committed offsets of the partitions of an aborted batch.
fn rewind(consumer: &StreamConsumer<Context>, batch: &Batch) {
    let mut tpl = TopicPartitionList::new();
    for (topic, partition) in batch.positions.keys() {
        tpl.add_partition(topic, *partition);
    }
    let committed = match consumer.committed_offsets(tpl, Duration::from_secs(10)) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("cannot read committed offsets to rewind: {e}");
            return;
        }
    };
    for e in committed.elements() {
        let to = match e.offset() {
            Offset::Offset(n) => Offset::Offset(n),
            _ => Offset::Beginning,
        };
        if let Err(err) = consumer.seek(e.topic(), e.partition(), to, Duration::from_secs(10)) {
            tracing::warn!(
                topic = e.topic(),
                partition = e.partition(),
                "rewind failed: {err}"
            );
        }
    }
}

/// Commits a batch: outputs and consumed offsets in one transaction.
fn commit(
    consumer: &StreamConsumer<Context>,
    producer: &FutureProducer<Context>,
    batch: &Batch,
) -> Result<(), KafkaError> {
    let metadata = consumer
        .group_metadata()
        .ok_or_else(|| KafkaError::Subscription("no consumer group metadata".into()))?;
    producer.send_offsets_to_transaction(&batch.offsets(), &metadata, TXN_TIMEOUT)?;
    // A retriable error (a timeout) means: call commit again.
    let mut attempt = 0;
    loop {
        match producer.commit_transaction(TXN_TIMEOUT) {
            Err(KafkaError::Transaction(t)) if t.is_retriable() && attempt < 3 => {
                attempt += 1;
                tracing::warn!(attempt, "commit_transaction: {t}; retrying");
                std::thread::sleep(backoff(attempt));
            }
            other => return other,
        }
    }
}

fn is_fatal(e: &KafkaError) -> bool {
    match e {
        KafkaError::Transaction(t) => t.is_fatal(),
        _ => false,
    }
}

pub(super) async fn run(
    settings: Arc<Settings>,
    transform: Arc<Transform>,
    shutdown: CancellationToken,
    stats: Arc<Stats>,
    context: Context,
) -> Result<(), PipelineError> {
    let consumer = Arc::new(consumer(&settings, context.clone())?);
    let producer = producer(&settings, context.clone())?;
    if !wait_for_brokers(&consumer, &shutdown).await? {
        return Ok(());
    }
    blocking(|| producer.init_transactions(TXN_TIMEOUT)).map_err(PipelineError::Transactions)?;
    let topics: Vec<&str> = settings.input_topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&topics)
        .map_err(PipelineError::Subscribe)?;
    tracing::info!(
        transactional_id = %settings.transactional_id,
        group = %settings.kafka.group_id,
        "filter running, exactly-once (transactions)"
    );
    let mut outgoing = Vec::with_capacity(4);
    let mut recv_errors: u32 = 0;
    'run: loop {
        // Wait for the first record of a batch before opening a transaction.
        let first = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break 'run,
            m = consumer.recv() => m,
        };
        let first = match first {
            Ok(m) => m,
            Err(e) => {
                recv_errors += 1;
                if recv_errors == 1 || recv_errors.is_power_of_two() {
                    tracing::warn!(errors = recv_errors, "consumer error: {e}");
                }
                tokio::time::sleep(backoff(recv_errors.min(6))).await;
                continue;
            }
        };
        recv_errors = 0;
        blocking(|| producer.begin_transaction()).map_err(PipelineError::Transactions)?;
        telemetry::transaction_begun();
        let mut batch = Batch::default();
        let deadline = tokio::time::Instant::now() + settings.transaction_interval;
        let mut next = Some(first);
        loop {
            if let Some(msg) = next.take() {
                batch.received.push(std::time::Instant::now());
                let source = Source {
                    topic: Arc::from(msg.topic()),
                    partition: msg.partition(),
                    offset: msg.offset(),
                };
                transform.process(
                    &source,
                    msg.payload().unwrap_or_default(),
                    Utc::now(),
                    &stats,
                    &mut outgoing,
                );
                for o in outgoing.drain(..) {
                    send(&producer, &transform, &source, &stats, &mut batch, o).await;
                }
                batch
                    .positions
                    .insert((source.topic.clone(), source.partition), source.offset + 1);
                batch.records += 1;
            }
            if batch.records >= settings.max_in_flight {
                break;
            }
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep_until(deadline) => break,
                m = consumer.recv() => match m {
                    Ok(m) => next = Some(m),
                    Err(e) => {
                        tracing::warn!("consumer error: {e}");
                        break;
                    }
                },
            }
        }
        match blocking(|| commit(&consumer, &producer, &batch)) {
            Ok(()) => {
                telemetry::transaction_committed(&batch.received);
                for _ in 0..batch.records {
                    telemetry::input_completed(&stats);
                }
                context.broker_answered();
            }
            Err(e) if is_fatal(&e) => {
                telemetry::transaction_aborted();
                let _ = blocking(|| producer.abort_transaction(TXN_TIMEOUT));
                return Err(PipelineError::Transactions(e));
            }
            Err(e) => {
                tracing::warn!(
                    records = batch.records,
                    "transaction failed, aborting; the batch will be processed again: {e}"
                );
                telemetry::transaction_aborted();
                if let Err(abort) = blocking(|| producer.abort_transaction(TXN_TIMEOUT)) {
                    tracing::error!("abort_transaction failed too: {abort}");
                    return Err(PipelineError::Transactions(e));
                }
                blocking(|| rewind(&consumer, &batch));
            }
        }
    }
    tracing::info!(
        consumed = stats.consumed(),
        completed = stats.completed(),
        "stopped: last transaction committed"
    );
    Ok(())
}
