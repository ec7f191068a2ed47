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
//! instead of aborting forever — once refused alone: refused in a request with others
//! (a request refused whole names every record in it), its outputs are first sent again
//! alone in the next transaction. Readers with `isolation.level=read_committed` see each
//! event's outputs once.

use super::boundary::{Input, Kafka, Output, Record as Out, TxnError};
use super::clients::{backoff, is_permanent};
use super::engine::{refusal, refused_dead_letter, Acknowledge, Batch, Plan, Record, Sent, Shared};
use super::positions::{positions, rewind};
use super::records::{Source, Transform};
use super::send::{self, Sleep, Unsent};
use super::PipelineError;
use crate::kafka;
use crate::telemetry;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

const TXN_TIMEOUT: Duration = Duration::from_secs(30);

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
    fatal: Mutex<Option<TxnError>>,
}

/// The consumer's revoke hook: the open transaction is aborted before the revoke is
/// acknowledged, so this member never commits outputs or offsets of partitions it no
/// longer owns (librdkafka reads the group metadata at commit time: fencing would not
/// catch it), and a re-assigned partition's offset is never overwritten with a lower one.
pub(super) fn on_revoke<P: Output>(producer: Arc<P>, state: Arc<TxnState>) -> kafka::RevokeHook {
    Arc::new(move |revoked: &[(String, i32)]| {
        state
            .revoked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(revoked.iter().cloned());
        if !state.open.swap(false, Ordering::SeqCst) {
            return;
        }
        tracing::warn!(
            partitions = revoked.len(),
            "partitions revoked during a transaction: aborting it before acknowledging the revoke; its records are processed again"
        );
        telemetry::emit(telemetry::events::TransactionAborted);
        match producer.abort_in_callback(TXN_TIMEOUT) {
            Ok(()) => state.aborted_by_revoke.store(true, Ordering::SeqCst),
            Err(e) => {
                // Nothing more may join the transaction; the batch stops with the error.
                *state.fatal.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                state.aborted_by_revoke.store(true, Ordering::SeqCst);
            }
        }
    })
}

/// The exactly-once acknowledgement.
pub(super) struct Transaction<K> {
    state: Arc<TxnState>,
    /// Inputs whose output the broker refused: dead-lettered when consumed again.
    dead_letter_next: HashMap<(Arc<str>, i32, i64), String>,
    /// Inputs whose output the broker refused in a request with others: their outputs
    /// are sent alone when consumed again.
    send_alone: HashSet<(Arc<str>, i32, i64)>,
    /// How many times the dead letter of an input was refused for good.
    dead_letters_refused: HashMap<(Arc<str>, i32, i64), u32>,
    /// Shutdown was seen: everything left must be done by then
    /// (`delivery.shutdown_timeout` after it).
    deadline: Option<Instant>,
    kafka: PhantomData<fn() -> K>,
}

impl<K: Kafka> Transaction<K> {
    pub(super) fn new(state: Arc<TxnState>) -> Transaction<K> {
        Transaction {
            state,
            dead_letter_next: HashMap::new(),
            send_alone: HashSet::new(),
            dead_letters_refused: HashMap::new(),
            deadline: None,
            kafka: PhantomData,
        }
    }
}

/// The filter stops: an abort failed — fenced only if the abort says so.
fn failed_abort(e: TxnError) -> PipelineError {
    match e {
        TxnError::Fenced(reason) => stop(reason),
        TxnError::Fatal(reason) => PipelineError::ProducerFatal(reason),
        // Exactly once cannot work here: the configuration's to change (exit 2).
        e @ TxnError::Unsupported(_) => PipelineError::Transactions(e),
        other => PipelineError::Abort(other.to_string()),
    }
}

/// The filter stops: the transactional producer failed for good.
fn stop(reason: String) -> PipelineError {
    tracing::error!("stopping: the transactional producer failed for good: {reason}");
    PipelineError::TransactionFatal(reason)
}

/// Why an input is dead-lettered after one of its outputs was refused: nothing of it
/// is forwarded (the transaction that held the others was aborted).
fn refusal_of(transform: &Transform, topic: &str, e: &impl std::fmt::Display) -> String {
    refusal(transform, [(topic, e.to_string())], [])
}

/// Inputs and why one of their records was refused.
type Refused = Vec<(Source, String)>;

/// The refusals of an aborted batch.
#[derive(Default)]
struct Refusals {
    /// Inputs an output of which was refused for good: by the client, or by the broker
    /// when sent alone.
    refused: Refused,
    /// Inputs an output of which the broker refused in a request with others: a request
    /// refused whole (too large, an invalid record) names every record in it, though one
    /// was at fault.
    suspects: Vec<Source>,
    /// Dead letters refused, each with why.
    dead_letters: Refused,
}

/// After an abort every delivery of the batch has its result: the inputs whose output
/// was refused for good (too large, invalid) are dead-lettered in the next transaction,
/// not retried forever; those refused in a request with others are sent again alone.
async fn refusals(transform: &Transform, batch: &mut Batch) -> Refusals {
    let mut dead_letters = Vec::new();
    let mut suspects = Vec::new();
    let mut refused: Vec<(Source, String)> = std::mem::take(&mut batch.refused)
        .into_iter()
        .map(|(record, topic, reason)| {
            let source = batch.records[record].source.clone();
            (source, refusal_of(transform, &topic, &reason))
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
                if topic == transform.dead_letter_topic() {
                    dead_letters.push((source, f.error.to_string()));
                } else if batch.alone.contains(record) {
                    refused.push((source, refusal_of(transform, topic, &f.error)));
                } else {
                    suspects.push(source);
                }
            }
        }
    }
    Refusals {
        refused,
        suspects,
        dead_letters,
    }
}

/// Commits a batch: outputs and consumed offsets in one transaction, every call bounded
/// by `until`; a retriable error (a timeout, the flush inside the commit included) is
/// retried `retries` times while time is left.
async fn commit<K: Kafka>(
    s: &Shared<K>,
    batch: &Batch,
    until: Instant,
    retries: u32,
) -> Result<(), TxnError> {
    let group = s
        .consumer
        .group()
        .ok_or_else(|| TxnError::Abortable("no consumer group metadata".into()))?;
    s.producer
        .send_offsets(&positions(&batch.records), &group, left(until))
        .await?;
    let mut attempt = 0;
    loop {
        match bounded(s, until, s.producer.commit_transaction(left(until))).await {
            Err(TxnError::Retriable(t))
                if attempt < retries && Instant::now() + backoff(attempt + 1) < until =>
            {
                attempt += 1;
                tracing::warn!(attempt, "commit_transaction: {t}; retrying");
                tokio::time::sleep(backoff(attempt)).await;
            }
            other => return other,
        }
    }
}

/// Awaits a transactional call, giving up at `until` — and, when shutdown comes while
/// it waits, `delivery.shutdown_timeout` after that at the latest: the shutdown is
/// bounded whatever the broker does (an open transaction left so is never visible to
/// `read_committed` readers; the next instance's start aborts it).
async fn bounded<K: Kafka>(
    s: &Shared<K>,
    until: Instant,
    call: impl Future<Output = Result<(), TxnError>>,
) -> Result<(), TxnError> {
    let shutdown = async {
        s.shutdown.cancelled().await;
        let deadline = Instant::now() + s.settings.shutdown_timeout;
        tokio::time::sleep_until(deadline.min(until)).await;
    };
    tokio::select! {
        biased;
        result = call => result,
        () = tokio::time::sleep_until(until) => {
            Err(TxnError::Abortable("no answer within its deadline".into()))
        }
        () = shutdown => Err(TxnError::Abortable(
            "no answer within delivery.shutdown_timeout after shutdown".into(),
        )),
    }
}

/// The time left until `until`, for one call (at most [`TXN_TIMEOUT`]).
fn left(until: Instant) -> Duration {
    until
        .saturating_duration_since(Instant::now())
        .min(TXN_TIMEOUT)
}

impl<K: Kafka> Transaction<K> {
    /// Remembers the inputs to dead-letter when they are consumed again.
    /// A dead letter refused for good stops the filter.
    async fn remember_refusals(
        &mut self,
        transform: &Transform,
        batch: &mut Batch,
        log: bool,
    ) -> Result<(), PipelineError> {
        let Refusals {
            refused,
            suspects,
            dead_letters,
        } = refusals(transform, batch).await;
        for (source, error) in dead_letters {
            // Refused once, it may have shared a request refused whole: sent again (its
            // marker kept). Refused twice, nothing can stand for the record: retrying
            // would loop forever.
            let key = (source.topic, source.partition, source.offset);
            let times = self.dead_letters_refused.entry(key).or_insert(0);
            *times += 1;
            if *times >= 2 {
                return Err(PipelineError::ProducerFatal(format!(
                    "the dead-letter topic refused a pointer record for good: {error}"
                )));
            }
        }
        for (source, message) in refused {
            if log {
                tracing::warn!(
                    topic = %source.topic,
                    partition = source.partition,
                    offset = source.offset,
                    "an output was refused by the broker: the record is dead-lettered in the next transaction"
                );
            }
            let key = (source.topic, source.partition, source.offset);
            self.send_alone.remove(&key);
            self.dead_letter_next.insert(key, message);
        }
        for source in suspects {
            if log {
                tracing::warn!(
                    topic = %source.topic,
                    partition = source.partition,
                    offset = source.offset,
                    "an output was refused by the broker in a request with others: it is sent again alone in the next transaction"
                );
            }
            self.send_alone
                .insert((source.topic, source.partition, source.offset));
        }
        Ok(())
    }

    /// Sends, inside the open transaction, the dead letter of each input an output of
    /// which the client refused when it was enqueued.
    async fn dead_letter_refused(
        &self,
        s: &Shared<K>,
        batch: &mut Batch,
        until: Instant,
    ) -> Result<(), TxnError> {
        for (record, topic, reason) in std::mem::take(&mut batch.refused) {
            let message = refusal_of(&s.transform, &topic, &reason);
            let source = &batch.records[record].source;
            let o = refused_dead_letter(&s.transform, source, message, &s.stats);
            let at = batch.sent.len();
            let ticket = batch.ticket(&s.context.acks);
            let mut wait = Sleep {
                producer: &*s.producer,
                until: Some(until),
            };
            match send::send(&*s.producer, Out::New(&o), ticket, at, false, &mut wait).await {
                Ok(()) => {}
                Err(Unsent::Fatal(reason)) => return Err(TxnError::Fatal(reason)),
                Err(Unsent::Refused(reason)) => {
                    return Err(TxnError::Fatal(format!(
                        "the client refused a dead-letter pointer record for good: {reason}"
                    )))
                }
                Err(Unsent::Failed(e)) => return Err(TxnError::Abortable(e.to_string())),
                Err(Unsent::Stopped) => {
                    return Err(TxnError::Abortable("dead letter not enqueued".into()))
                }
            }
            batch.sent.push(Sent {
                record,
                topic: o.topic.clone(),
            });
        }
        Ok(())
    }

    /// How long a batch's commit (or abort) may take, and how many times a retriable
    /// error is retried: at shutdown, until the shutdown deadline whatever the broker
    /// does; else four times the transaction timeout.
    fn budget(&mut self, s: &Shared<K>) -> (Instant, u32) {
        if s.shutdown.is_cancelled() {
            let deadline = *self
                .deadline
                .get_or_insert_with(|| Instant::now() + s.settings.shutdown_timeout);
            (deadline, u32::MAX)
        } else {
            (Instant::now() + 4 * TXN_TIMEOUT, 3)
        }
    }

    /// A failed batch: the transaction is aborted and the consumer rewound (a fatal
    /// error, or a failed abort, stops the filter); the refused inputs are remembered.
    async fn abort(
        &mut self,
        s: &Shared<K>,
        mut batch: Batch,
        e: TxnError,
        until: Instant,
        revoked: &[(String, i32)],
    ) -> Result<(), PipelineError> {
        telemetry::emit(telemetry::events::TransactionAborted);
        match &e {
            TxnError::Fenced(reason) => {
                let _ = bounded(s, until, s.producer.abort_transaction(left(until))).await;
                return Err(stop(reason.clone()));
            }
            TxnError::Fatal(reason) => {
                let _ = bounded(s, until, s.producer.abort_transaction(left(until))).await;
                tracing::error!("stopping: {reason}");
                return Err(PipelineError::ProducerFatal(reason.clone()));
            }
            TxnError::Unsupported(_) => {
                // Exactly once cannot work here: the configuration's to change (exit 2).
                let _ = bounded(s, until, s.producer.abort_transaction(left(until))).await;
                tracing::error!("stopping: {e}");
                return Err(PipelineError::Transactions(e));
            }
            TxnError::Retriable(_) | TxnError::Abortable(_) => {}
        }
        tracing::warn!(
            records = batch.processed(),
            "transaction failed, aborting; the batch will be processed again: {e}"
        );
        if let Err(abort) = bounded(s, until, s.producer.abort_transaction(left(until))).await {
            tracing::error!("stopping: the transaction failed ({e}) and its abort too");
            return Err(failed_abort(abort));
        }
        self.remember_refusals(&s.transform, &mut batch, true)
            .await?;
        rewind(&*s.consumer, &batch, revoked)
    }

    /// A committed batch: counted, and its dead letters' markers done with.
    fn committed(&mut self, s: &Shared<K>, batch: &Batch) {
        let received: Vec<_> = batch.records.iter().map(|r| r.received).collect();
        telemetry::emit(telemetry::events::TransactionCommitted { started: &received });
        for _ in 0..batch.processed() {
            telemetry::emit(telemetry::events::InputCompleted { stats: &s.stats });
        }
        if !self.dead_letter_next.is_empty() || !self.send_alone.is_empty() {
            for p in positions(&batch.records) {
                let done = |(t, q, o): &(Arc<str>, i32, i64)| {
                    *t == p.topic && *q == p.partition && *o < p.offset
                };
                self.dead_letter_next.retain(|k, _| !done(k));
                self.send_alone.retain(|k| !done(k));
            }
        }
        s.context.broker_answered();
    }
}

impl<K: Kafka> Acknowledge<K> for Transaction<K> {
    const RETRY_ENQUEUE: bool = false;
    const ACKNOWLEDGED_ON_RETURN: bool = true;

    async fn start(&mut self, s: &Shared<K>) -> Result<(), PipelineError> {
        s.producer
            .init_transactions(TXN_TIMEOUT)
            .await
            .map_err(PipelineError::Transactions)
    }

    fn may_consume(&self) -> bool {
        true
    }

    async fn serve(&mut self, _: &Shared<K>) -> Result<(), PipelineError> {
        if let Some(reason) = self
            .state
            .fatal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            return Err(failed_abort(reason));
        }
        std::future::pending().await
    }

    async fn open(&mut self, s: &Shared<K>) -> Result<Plan, PipelineError> {
        self.state
            .revoked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        match s.producer.begin_transaction().await {
            Ok(()) => {}
            Err(TxnError::Fenced(reason)) => return Err(stop(reason)),
            Err(TxnError::Fatal(reason)) => return Err(PipelineError::ProducerFatal(reason)),
            Err(e) => return Err(PipelineError::Transactions(e)),
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

    fn alone(&self, source: &Source) -> bool {
        !self.send_alone.is_empty()
            && self
                .send_alone
                .contains(&(source.topic.clone(), source.partition, source.offset))
    }

    fn enqueued(&mut self, _: &mut Record) {}

    async fn acknowledge(&mut self, s: &Shared<K>, mut batch: Batch) -> Result<(), PipelineError> {
        let revoked =
            std::mem::take(&mut *self.state.revoked.lock().unwrap_or_else(|e| e.into_inner()));
        let failed = self
            .state
            .fatal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(e) = failed {
            // The abort in the revoke failed: the transaction must not be committed.
            return Err(failed_abort(e));
        }
        if self.state.aborted_by_revoke.swap(false, Ordering::SeqCst) {
            // Aborted in the rebalance callback: the partitions still owned start again.
            self.remember_refusals(&s.transform, &mut batch, false)
                .await?;
            return rewind(&*s.consumer, &batch, &revoked);
        }
        // At shutdown, commit and abort are bounded by delivery.shutdown_timeout.
        let (until, retries) = self.budget(s);
        let result = match batch.failure.take() {
            None if batch.interrupted => Err(TxnError::Abortable(
                "shutdown while a record's outputs were enqueued".into(),
            )),
            None => match self.dead_letter_refused(s, &mut batch, until).await {
                Ok(()) => commit(s, &batch, until, retries).await,
                Err(e) => Err(e),
            },
            Some(e) => Err(TxnError::Abortable(e.to_string())),
        };
        self.state.open.store(false, Ordering::SeqCst);
        let e = match result {
            Ok(()) => {
                self.committed(s, &batch);
                return Ok(());
            }
            Err(e) => e,
        };
        self.abort(s, batch, e, until, &revoked).await
    }

    async fn finish(
        self,
        s: &Shared<K>,
        failure: Option<PipelineError>,
    ) -> Result<(), PipelineError> {
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
