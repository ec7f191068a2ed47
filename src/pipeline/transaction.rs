//! Exactly once (`delivery.guarantee = "exactly-once"`): a batch is acknowledged by a
//! Kafka transaction.
//!
//! One transactional producer per instance, with a stable `transactional.id`
//! (`delivery.transactional_id`, by default `<group_id>-<hostname>`): a restarted instance
//! fences its previous incarnation. Each batch's outputs and consumed offsets commit in
//! one transaction (`send_offsets_to_transaction` with the consumer's group metadata, so
//! a member that lost its partitions in a rebalance is fenced too — KIP-447). On an
//! abortable error the transaction is aborted and the consumer rewinds, per partition,
//! to the first offset the batch consumed (known locally: no broker lookup that could
//! fail); a rewind that fails, or a fatal error (fenced), stops the filter with exit 1.
//! A revoke during a transaction aborts it before the revoke is acknowledged, so a
//! member never commits outputs or offsets of partitions it no longer owns. A record
//! whose output the broker refuses (too large) is dead-lettered in the next transaction
//! instead of aborting forever. Readers with `isolation.level=read_committed` see each
//! event's outputs once.

use super::clients::{backoff, is_permanent, producer_fatal, record_of, Producer};
use super::engine::{Acknowledge, Batch, Plan, Record, Sent, Shared};
use super::records::{Source, Transform};
use super::PipelineError;
use crate::kafka::{self, Context};
use crate::telemetry;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::Producer as _;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const TXN_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs a blocking librdkafka call off the async worker.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// What the rebalance callback and the batch loop share.
#[derive(Default)]
pub(super) struct TxnState {
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
pub(super) fn on_revoke(producer: Arc<Producer>, state: Arc<TxnState>) -> kafka::RevokeHook {
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

/// The exactly-once acknowledgement.
pub(super) struct Transaction {
    state: Arc<TxnState>,
    /// Inputs whose output the broker refused: dead-lettered when consumed again.
    dead_letter_next: HashMap<(Arc<str>, i32, i64), String>,
}

impl Transaction {
    pub(super) fn new(state: Arc<TxnState>) -> Transaction {
        Transaction {
            state,
            dead_letter_next: HashMap::new(),
        }
    }
}

/// The filter stops: the transactional producer failed for good.
fn stop(reason: String) -> PipelineError {
    tracing::error!("stopping: the transactional producer failed for good: {reason}");
    PipelineError::TransactionFatal(reason)
}

/// The producer's fatal error, if any (fenced, or a fatal transaction error).
fn fatal(producer: &Producer, e: Option<&KafkaError>) -> Option<String> {
    producer_fatal(producer, e).or_else(|| match e {
        Some(KafkaError::Transaction(t)) if t.is_fatal() => Some(t.to_string()),
        _ => None,
    })
}

/// Why an input is dead-lettered after the broker refused one of its outputs.
fn refusal(transform: &Transform, topic: &str, e: &impl std::fmt::Display) -> String {
    let name = transform.purpose_of_topic(topic).unwrap_or("dead letter");
    format!("the broker refused the {name} output record: {e}; forwarded: none")
}

/// The first offset the batch consumed, per input partition: where an abort rewinds to
/// (a record received but not processed included).
fn first_offsets(batch: &Batch) -> BTreeMap<(Arc<str>, i32), i64> {
    let mut first = BTreeMap::new();
    for r in &batch.records {
        first
            .entry((r.source.topic.clone(), r.source.partition))
            .or_insert(r.source.offset);
    }
    first
}

/// The next offset to consume, per input partition, after the processed records.
fn positions(records: &[Record]) -> TopicPartitionList {
    let mut next = BTreeMap::new();
    for r in records.iter().filter(|r| r.processed) {
        next.insert((&r.source.topic, r.source.partition), r.source.offset + 1);
    }
    let mut tpl = TopicPartitionList::new();
    for ((topic, partition), next) in next {
        tpl.add_partition_offset(topic, partition, Offset::Offset(next))
            .expect("valid offset");
    }
    tpl
}

/// Rewinds the consumer, per partition still owned, to the first offset the aborted
/// batch consumed. A seek that fails is an error: going on would skip the batch.
fn rewind(
    consumer: &StreamConsumer<Context>,
    batch: &Batch,
    revoked: &[(String, i32)],
) -> Result<(), PipelineError> {
    for ((topic, partition), first) in first_offsets(batch) {
        if revoked
            .iter()
            .any(|(t, p)| t.as_str() == &*topic && *p == partition)
        {
            // Its new owner resumes from the committed offset.
            continue;
        }
        consumer
            .seek(
                &topic,
                partition,
                Offset::Offset(first),
                Duration::from_secs(10),
            )
            .map_err(|error| PipelineError::Rewind {
                topic: topic.to_string(),
                partition,
                offset: first,
                error,
            })?;
    }
    Ok(())
}

/// After an abort every delivery of the batch has its result: the inputs whose output
/// was refused for good (too large, invalid) are dead-lettered in the next transaction,
/// not retried forever.
async fn refusals(transform: &Transform, batch: &mut Batch) -> Vec<(Source, String)> {
    let mut refused: Vec<(Source, String)> = std::mem::take(&mut batch.refused)
        .into_iter()
        .map(|(record, topic, reason)| {
            let source = batch.records[record].source.clone();
            (source, refusal(transform, &topic, &reason))
        })
        .collect();
    let sent = std::mem::take(&mut batch.sent);
    if let Some(ticket) = &batch.ticket {
        for f in ticket.settled().await {
            let Some(Sent { record, topic }) = sent.get(f.index) else {
                continue;
            };
            if is_permanent(&f.error) {
                let source = batch.records[*record].source.clone();
                refused.push((source, refusal(transform, topic, &f.error)));
            }
        }
    }
    refused
}

/// Commits a batch: outputs and consumed offsets in one transaction.
/// `timeout` bounds each call (at shutdown: `delivery.shutdown_timeout`, no retries).
fn commit(
    consumer: &StreamConsumer<Context>,
    producer: &Producer,
    batch: &Batch,
    timeout: Duration,
    retries: u32,
) -> Result<(), KafkaError> {
    let metadata = consumer
        .group_metadata()
        .ok_or_else(|| KafkaError::Subscription("no consumer group metadata".into()))?;
    producer.send_offsets_to_transaction(&positions(&batch.records), &metadata, timeout)?;
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

impl Transaction {
    /// Remembers the inputs to dead-letter when they are consumed again.
    async fn remember_refusals(&mut self, transform: &Transform, batch: &mut Batch, log: bool) {
        for (source, message) in refusals(transform, batch).await {
            if log {
                tracing::warn!(
                    topic = %source.topic,
                    partition = source.partition,
                    offset = source.offset,
                    "an output was refused by the broker: the record is dead-lettered in the next transaction"
                );
            }
            self.dead_letter_next
                .insert((source.topic, source.partition, source.offset), message);
        }
    }

    /// Sends, inside the open transaction, the dead letter of each input an output of
    /// which the client refused when it was enqueued.
    fn dead_letter_refused(&self, s: &Shared, batch: &mut Batch) -> Result<(), KafkaError> {
        for (record, topic, reason) in std::mem::take(&mut batch.refused) {
            let name = s
                .transform
                .purpose_of_topic(&topic)
                .unwrap_or("dead letter");
            let message = format!("the client refused the {name} output record: {reason}");
            let source = &batch.records[record].source;
            let o = s
                .transform
                .dead_letter(source, "output_too_large", message, None, &s.stats);
            let at = batch.sent.len();
            let opaque = batch.ticket(&s.context.acks).expect(at);
            loop {
                match s.producer.send(record_of(&o, opaque)) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        // The reports free the queue: served here, as the engine does while
                        // its queue is full, not left to the fallback thread.
                        s.producer.serve();
                        blocking(|| std::thread::sleep(Duration::from_millis(10)))
                    }
                    Err((e, _)) => {
                        batch.ticket(&s.context.acks).unsent();
                        return Err(e);
                    }
                }
            }
            batch.sent.push(Sent {
                record,
                topic: o.topic.clone(),
            });
        }
        Ok(())
    }
}

impl Acknowledge for Transaction {
    const RETRY_ENQUEUE: bool = false;
    const ACKNOWLEDGED_ON_RETURN: bool = true;

    fn start(&mut self, s: &Shared) -> Result<(), PipelineError> {
        blocking(|| s.producer.init_transactions(TXN_TIMEOUT)).map_err(PipelineError::Transactions)
    }

    fn may_consume(&self) -> bool {
        true
    }

    async fn serve(&mut self, _: &Shared) -> Result<(), PipelineError> {
        if let Some(reason) = self
            .state
            .fatal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            return Err(stop(reason));
        }
        std::future::pending().await
    }

    fn open(&mut self, s: &Shared) -> Result<Plan, PipelineError> {
        self.state
            .revoked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        if let Err(e) = blocking(|| s.producer.begin_transaction()) {
            return Err(match fatal(&s.producer, Some(&e)) {
                Some(reason) => stop(reason),
                None => PipelineError::Transactions(e),
            });
        }
        self.state.open.store(true, Ordering::SeqCst);
        telemetry::emit(telemetry::events::TransactionBegun);
        Ok(Plan {
            limit: s.settings.max_in_flight,
            until: Some(tokio::time::Instant::now() + s.settings.transaction_interval),
        })
    }

    fn admit(&mut self) -> bool {
        !self.state.aborted_by_revoke.load(Ordering::SeqCst)
    }

    fn replacement(&self, source: &Source) -> Option<String> {
        if self.dead_letter_next.is_empty() {
            return None;
        }
        let key = (source.topic.clone(), source.partition, source.offset);
        self.dead_letter_next.get(&key).cloned()
    }

    fn enqueued(&mut self, _: &mut Record) {}

    async fn acknowledge(&mut self, s: &Shared, mut batch: Batch) -> Result<(), PipelineError> {
        let (consumer, producer) = (&s.consumer, &s.producer);
        let revoked =
            std::mem::take(&mut *self.state.revoked.lock().unwrap_or_else(|e| e.into_inner()));
        if self.state.aborted_by_revoke.swap(false, Ordering::SeqCst) {
            // Aborted in the rebalance callback: the partitions still owned start again.
            self.remember_refusals(&s.transform, &mut batch, false)
                .await;
            return rewind(consumer, &batch, &revoked);
        }
        // At shutdown, commit and abort are bounded by delivery.shutdown_timeout.
        let (timeout, retries) = if s.shutdown.is_cancelled() {
            (s.settings.shutdown_timeout.min(TXN_TIMEOUT), 0)
        } else {
            (TXN_TIMEOUT, 3)
        };
        let result = match batch.failure.take() {
            None => self
                .dead_letter_refused(s, &mut batch)
                .and_then(|()| blocking(|| commit(consumer, producer, &batch, timeout, retries))),
            Some(e) => Err(e),
        };
        self.state.open.store(false, Ordering::SeqCst);
        match result {
            Ok(()) => {
                let received: Vec<_> = batch.records.iter().map(|r| r.received).collect();
                telemetry::emit(telemetry::events::TransactionCommitted { started: &received });
                for _ in 0..batch.processed() {
                    telemetry::emit(telemetry::events::InputCompleted { stats: &s.stats });
                }
                // Dead letters committed: their markers are done with.
                if !self.dead_letter_next.is_empty() {
                    let tpl = positions(&batch.records);
                    for e in tpl.elements() {
                        let (topic, partition) = (e.topic(), e.partition());
                        let Offset::Offset(next) = e.offset() else {
                            continue;
                        };
                        self.dead_letter_next.retain(|(t, p, o), _| {
                            !(&**t == topic && *p == partition && *o < next)
                        });
                    }
                }
                s.context.broker_answered();
                Ok(())
            }
            Err(e) => {
                telemetry::emit(telemetry::events::TransactionAborted);
                if let Some(reason) = fatal(producer, Some(&e)) {
                    let _ = blocking(|| producer.abort_transaction(timeout));
                    return Err(stop(reason));
                }
                tracing::warn!(
                    records = batch.processed(),
                    "transaction failed, aborting; the batch will be processed again: {e}"
                );
                if let Err(abort) = blocking(|| producer.abort_transaction(timeout)) {
                    return Err(stop(format!("{e}; abort_transaction failed too: {abort}")));
                }
                self.remember_refusals(&s.transform, &mut batch, true).await;
                rewind(consumer, &batch, &revoked)
            }
        }
    }

    async fn finish(self, s: &Shared, failure: Option<PipelineError>) -> Result<(), PipelineError> {
        if let Some(e) = failure {
            return Err(e);
        }
        let (consumed, completed) = (s.stats.consumed(), s.stats.completed());
        // Only a transaction that ran may be said committed.
        if completed == 0 {
            tracing::info!(consumed, completed, "stopped: no transaction to commit");
        } else {
            tracing::info!(consumed, completed, "stopped: last transaction committed");
        }
        Ok(())
    }
}
