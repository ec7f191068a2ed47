//! `delivery.guarantee = "exactly-once"`: Kafka transactions.
//!
//! One transactional producer per instance, with a stable `transactional.id`
//! (`delivery.transactional_id`, by default `<group_id>-<hostname>`): a restarted instance
//! fences its previous incarnation. Records are consumed in batches; each batch's outputs
//! and the consumed offsets commit in one transaction (`send_offsets_to_transaction`
//! with the consumer's group metadata, so a member that lost its partitions in a
//! rebalance is fenced too — KIP-447). On an abortable error the transaction is aborted
//! and the consumer rewinds, per partition, to the first offset the batch consumed
//! (known locally: no broker lookup that could fail); a rewind that fails, or a fatal
//! error (fenced), stops the filter with exit 1. A revoke during a transaction aborts it
//! before the revoke is acknowledged, so a member never commits outputs or offsets of
//! partitions it no longer owns. A record whose output the broker refuses (too large) is
//! dead-lettered in the next transaction instead of aborting forever. Readers with
//! `isolation.level=read_committed` see each event's outputs once.

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
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
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
    /// The first offset consumed, per input partition: where an abort rewinds to.
    first: BTreeMap<(Arc<str>, i32), i64>,
    /// Each output's delivery, with the input it came from.
    deliveries: Vec<(Source, DeliveryFuture)>,
    /// Inputs an output of which the broker refused for good, with why.
    refused: Vec<(Source, String)>,
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
/// (too large) is replaced by a dead-letter pointer. Any other enqueue error (the
/// transaction left its open state after an abortable or fatal error) is returned: the
/// batch is aborted, never retried in place.
async fn send(
    producer: &FutureProducer<Context>,
    transform: &Transform,
    source: &Source,
    stats: &Stats,
    batch: &mut Batch,
    o: Outgoing,
) -> Result<(), KafkaError> {
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
                batch.deliveries.push((source.clone(), d));
                return Ok(());
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                // Wait for the oldest delivery of the batch, then try again.
                if !batch.deliveries.is_empty() {
                    let (s, d) = batch.deliveries.remove(0);
                    match d.await {
                        Ok(Ok(_)) => {}
                        Ok(Err((e, msg))) => {
                            if is_permanent(&e) {
                                batch.refused.push((s, refusal(transform, msg.topic(), &e)));
                            }
                            return Err(e);
                        }
                        Err(_) => return Err(KafkaError::Canceled),
                    }
                } else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            Err((e, _)) if is_permanent(&e) => {
                let name = transform
                    .purpose_of_topic(&o.topic)
                    .unwrap_or("dead letter");
                let message = format!("the client refused the {name} output record: {e}");
                o = transform.dead_letter(source, "output_too_large", message, None, stats);
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// Why an input is dead-lettered after the broker refused one of its outputs.
fn refusal(transform: &Transform, topic: &str, e: &KafkaError) -> String {
    let name = transform.purpose_of_topic(topic).unwrap_or("dead letter");
    format!("the broker refused the {name} output record: {e}; forwarded: none")
}

/// Rewinds the consumer, per partition still owned, to the first offset the aborted
/// batch consumed. A seek that fails is an error: going on would skip the batch.
fn rewind(
    consumer: &StreamConsumer<Context>,
    batch: &Batch,
    revoked: &[(String, i32)],
) -> Result<(), PipelineError> {
    for ((topic, partition), first) in &batch.first {
        if revoked
            .iter()
            .any(|(t, p)| t.as_str() == &**topic && p == partition)
        {
            // Its new owner resumes from the committed offset.
            continue;
        }
        consumer
            .seek(
                topic,
                *partition,
                Offset::Offset(*first),
                Duration::from_secs(10),
            )
            .map_err(|error| PipelineError::Rewind {
                topic: topic.to_string(),
                partition: *partition,
                offset: *first,
                error,
            })?;
    }
    Ok(())
}

/// After an abort every delivery of the batch has its result: the inputs whose output
/// the broker refused for good (too large, invalid) are dead-lettered in the next
/// transaction, not retried forever.
async fn refusals(transform: &Transform, batch: &mut Batch) -> Vec<(Source, String)> {
    let mut refused = std::mem::take(&mut batch.refused);
    for (source, d) in batch.deliveries.drain(..) {
        if let Ok(Err((e, msg))) = d.await {
            if is_permanent(&e) {
                refused.push((source, refusal(transform, msg.topic(), &e)));
            }
        }
    }
    refused
}

/// What the rebalance callback and the run loop share.
#[derive(Default)]
struct TxnState {
    /// A transaction is open: begun, not yet committed or aborted.
    open: AtomicBool,
    /// The open transaction was aborted in the rebalance callback.
    aborted_by_revoke: AtomicBool,
    /// Partitions revoked since the batch began: not rewound, their positions dropped.
    revoked: Mutex<Vec<(String, i32)>>,
    /// A failure in the callback that stops the filter.
    fatal: Mutex<Option<String>>,
}

/// The consumer's revoke hook: the open transaction is aborted before the revoke is
/// acknowledged, so this member never commits outputs or offsets of partitions it no
/// longer owns (librdkafka reads the group metadata at commit time: fencing would not
/// catch it), and a re-assigned partition's offset is never overwritten with a lower one.
fn on_revoke(producer: Arc<FutureProducer<Context>>, state: Arc<TxnState>) -> kafka::RevokeHook {
    Arc::new(move |tpl: &TopicPartitionList| {
        state
            .revoked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(
                tpl.elements()
                    .iter()
                    .map(|e| (e.topic().to_string(), e.partition())),
            );
        if !state.open.swap(false, Ordering::SeqCst) {
            return;
        }
        tracing::warn!(
            partitions = tpl.count(),
            "partitions revoked during a transaction: aborting it before acknowledging the revoke; its records are processed again"
        );
        telemetry::emit(telemetry::events::TransactionAborted);
        match producer.abort_transaction(TXN_TIMEOUT) {
            Ok(()) => state.aborted_by_revoke.store(true, Ordering::SeqCst),
            Err(e) => {
                *state.fatal.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(format!("abort_transaction on revoke failed: {e}"))
            }
        }
    })
}

/// The producer's fatal error, if any (fenced, or a fatal transaction error).
fn fatal(producer: &FutureProducer<Context>, e: Option<&KafkaError>) -> Option<String> {
    super::producer_fatal(producer, e).or_else(|| match e {
        Some(e) if is_fatal(e) => Some(e.to_string()),
        _ => None,
    })
}

/// Commits a batch: outputs and consumed offsets in one transaction.
/// `timeout` bounds each call (at shutdown: `delivery.shutdown_timeout`, no retries).
fn commit(
    consumer: &StreamConsumer<Context>,
    producer: &FutureProducer<Context>,
    batch: &Batch,
    timeout: Duration,
    retries: u32,
) -> Result<(), KafkaError> {
    let metadata = consumer
        .group_metadata()
        .ok_or_else(|| KafkaError::Subscription("no consumer group metadata".into()))?;
    producer.send_offsets_to_transaction(&batch.offsets(), &metadata, timeout)?;
    // A retriable error (a timeout) means: call commit again.
    let mut attempt = 0;
    loop {
        match producer.commit_transaction(timeout) {
            Err(KafkaError::Transaction(t)) if t.is_retriable() && attempt < retries => {
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
    let producer = Arc::new(producer(&settings, context.clone())?);
    let state = Arc::new(TxnState::default());
    let consumer = Arc::new(consumer(
        &settings,
        Context {
            on_revoke: Some(on_revoke(producer.clone(), state.clone())),
            ..context.clone()
        },
    )?);
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
    // Inputs whose output the broker refused: dead-lettered when consumed again.
    let mut dead_letter_next: HashMap<(Arc<str>, i32, i64), String> = HashMap::new();
    let mut outgoing = Vec::with_capacity(4);
    let mut recv_errors: u32 = 0;
    let stop = |reason: String| {
        tracing::error!("stopping: the transactional producer failed for good: {reason}");
        Err(PipelineError::TransactionFatal(reason))
    };
    'run: loop {
        if let Some(reason) = state.fatal.lock().unwrap_or_else(|e| e.into_inner()).take() {
            return stop(reason);
        }
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
        state
            .revoked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        if let Err(e) = blocking(|| producer.begin_transaction()) {
            return match fatal(&producer, Some(&e)) {
                Some(reason) => stop(reason),
                None => Err(PipelineError::Transactions(e)),
            };
        }
        state.open.store(true, Ordering::SeqCst);
        telemetry::emit(telemetry::events::TransactionBegun);
        let mut batch = Batch::default();
        let mut failure: Option<KafkaError> = None;
        let deadline = tokio::time::Instant::now() + settings.transaction_interval;
        let mut next = Some(first);
        'batch: loop {
            if state.aborted_by_revoke.load(Ordering::SeqCst) {
                break;
            }
            if let Some(msg) = next.take() {
                let source = Source {
                    topic: Arc::from(msg.topic()),
                    partition: msg.partition(),
                    offset: msg.offset(),
                };
                batch
                    .first
                    .entry((source.topic.clone(), source.partition))
                    .or_insert(source.offset);
                batch.received.push(std::time::Instant::now());
                let key = (source.topic.clone(), source.partition, source.offset);
                match dead_letter_next.get(&key) {
                    Some(message) => outgoing.push(transform.dead_letter(
                        &source,
                        "output_too_large",
                        message.clone(),
                        None,
                        &stats,
                    )),
                    None => transform.process(
                        &source,
                        msg.payload().unwrap_or_default(),
                        Utc::now(),
                        &stats,
                        &mut outgoing,
                    ),
                }
                for o in outgoing.drain(..) {
                    if failure.is_none() {
                        if let Err(e) =
                            send(&producer, &transform, &source, &stats, &mut batch, o).await
                        {
                            failure = Some(e);
                        }
                    }
                }
                if failure.is_some() {
                    break 'batch;
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
        // A record received but not processed is rewound with the batch.
        if let Some(m) = next.take() {
            batch
                .first
                .entry((Arc::from(m.topic()), m.partition()))
                .or_insert(m.offset());
        }
        let revoked = std::mem::take(&mut *state.revoked.lock().unwrap_or_else(|e| e.into_inner()));
        if state.aborted_by_revoke.swap(false, Ordering::SeqCst) {
            // Aborted in the rebalance callback: the partitions still owned start again.
            for (source, message) in refusals(&transform, &mut batch).await {
                dead_letter_next.insert((source.topic, source.partition, source.offset), message);
            }
            rewind(&consumer, &batch, &revoked)?;
            continue 'run;
        }
        // At shutdown, commit and abort are bounded by delivery.shutdown_timeout.
        let (timeout, retries) = if shutdown.is_cancelled() {
            (settings.shutdown_timeout.min(TXN_TIMEOUT), 0)
        } else {
            (TXN_TIMEOUT, 3)
        };
        let result = match failure {
            None => blocking(|| commit(&consumer, &producer, &batch, timeout, retries)),
            Some(e) => Err(e),
        };
        state.open.store(false, Ordering::SeqCst);
        match result {
            Ok(()) => {
                telemetry::emit(telemetry::events::TransactionCommitted {
                    started: &batch.received,
                });
                for _ in 0..batch.records {
                    telemetry::emit(telemetry::events::InputCompleted { stats: &stats });
                }
                // Dead letters committed: their markers are done with.
                for ((topic, partition), next) in &batch.positions {
                    dead_letter_next
                        .retain(|(t, p, o), _| !(t == topic && p == partition && o < next));
                }
                context.broker_answered();
            }
            Err(e) => {
                telemetry::emit(telemetry::events::TransactionAborted);
                if let Some(reason) = fatal(&producer, Some(&e)) {
                    let _ = blocking(|| producer.abort_transaction(timeout));
                    return stop(reason);
                }
                tracing::warn!(
                    records = batch.records,
                    "transaction failed, aborting; the batch will be processed again: {e}"
                );
                if let Err(abort) = blocking(|| producer.abort_transaction(timeout)) {
                    return stop(format!("{e}; abort_transaction failed too: {abort}"));
                }
                for (source, message) in refusals(&transform, &mut batch).await {
                    tracing::warn!(
                        topic = %source.topic,
                        partition = source.partition,
                        offset = source.offset,
                        "an output was refused by the broker: the record is dead-lettered in the next transaction"
                    );
                    dead_letter_next
                        .insert((source.topic, source.partition, source.offset), message);
                }
                rewind(&consumer, &batch, &revoked)?;
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
