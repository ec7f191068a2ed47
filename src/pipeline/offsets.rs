//! At least once: a batch is acknowledged by storing its offsets once every output of
//! its records (or the dead letter that replaces them) is acknowledged by the broker.
//!
//! Each closed batch becomes one future ([`await_batch`]) that waits for its deliveries,
//! re-sends failures with backoff, and turns outputs refused for good into one dead
//! letter per input; the batch loop goes on consuming meanwhile. When a batch completes,
//! the [`Tracker`] says which offsets may be stored: an offset is stored only when its
//! record and every earlier record of its partition are done, so a crash at any point
//! loses nothing. Stored offsets are committed every `delivery.commit_interval`, on revoke
//! and at shutdown.
//!
//! Back-pressure: at most `max_in_flight` input records are in flight; past that the
//! engine waits for acknowledgements instead of consuming.

use super::boundary::{Input, Kafka, Output, Position};
pub(super) use super::deliveries::await_batch;
use super::engine::{Acknowledge, Batch, Plan, Record, Shared};
use super::tracker::Tracker;
use super::PipelineError;
use crate::health::unix_millis;
use crate::kafka::Context;
use crate::telemetry;
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use std::marker::PhantomData;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// The most records in one batch (one future waits for their deliveries).
const BATCH_RECORDS: usize = 1000;

/// How a batch ended.
#[derive(Debug)]
pub(super) enum Done {
    /// Every output, or the one dead letter that replaces them, is acknowledged.
    Acked,
    /// The producer failed for good: nothing it holds will be delivered; the filter stops.
    Fatal(String),
}

/// A completed batch (its records; its other buffers empty, for reuse), and how it ended.
pub(super) type Completion = (Batch, Done);

/// Completed batches kept for their buffers (no allocation per batch).
const SPARE_BATCHES: usize = 4;

/// The at-least-once acknowledgement.
pub(super) struct OffsetStore<K> {
    tracker: Tracker,
    /// The commit under way, if any.
    committing: Option<BoxFuture<'static, KafkaResult<()>>>,
    /// The newest leader epoch read, by tracker slot: stored with the slot's offsets.
    epochs: Vec<Option<i32>>,
    kafka: PhantomData<fn() -> K>,
    pending: FuturesUnordered<futures::future::BoxFuture<'static, Completion>>,
    commit_tick: tokio::time::Interval,
    /// An offset was stored since the last commit.
    stored: bool,
    max_in_flight: usize,
    context: Context,
    /// The tracker's slot of each input partition seen (no lookup by name per record).
    slots: Vec<(Arc<str>, i32, usize)>,
    /// Completed batches, emptied, for the next ones.
    spare: Vec<Batch>,
    /// The last record's receive time, and it in ms since the Unix epoch.
    received: (Option<std::time::Instant>, u64),
}

impl<K: Kafka> OffsetStore<K> {
    pub(super) fn new(s: &Shared<K>) -> OffsetStore<K> {
        // Offsets of acknowledged records are committed at most every commit_interval
        // (and on revoke, and at shutdown): a crash replays at most about that much input.
        let mut commit_tick = tokio::time::interval(s.settings.commit_interval);
        commit_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        OffsetStore {
            tracker: Tracker::default(),
            committing: None,
            epochs: Vec::new(),
            kafka: PhantomData,
            pending: FuturesUnordered::new(),
            commit_tick,
            stored: false,
            max_in_flight: s.settings.max_in_flight,
            context: s.context.clone(),
            slots: Vec::new(),
            spare: Vec::new(),
            received: (None, 0),
        }
    }

    /// Stores the offsets a completed batch makes storable; a producer that failed for
    /// good is an error.
    fn on_complete(
        &mut self,
        s: &Shared<K>,
        (mut batch, done): Completion,
    ) -> Result<(), PipelineError> {
        if let Done::Fatal(reason) = done {
            return Err(PipelineError::ProducerFatal(reason));
        }
        self.forget_revoked();
        telemetry::emit(telemetry::events::InputsCompleted {
            stats: &s.stats,
            received: batch
                .records
                .iter()
                .filter(|r| r.slot.is_some())
                .map(|r| r.received),
        });
        let mut storable: Vec<Position> = Vec::new();
        for r in &batch.records {
            let Some((p, seq)) = r.slot else { continue };
            if let Some((topic, partition, offset)) = self.tracker.complete(p, seq) {
                // The next record to read, with the newest epoch read on the partition.
                let leader_epoch = self.epochs.get(p).copied().flatten();
                match storable
                    .iter_mut()
                    .find(|q| q.partition == partition && Arc::ptr_eq(&q.topic, &topic))
                {
                    Some(entry) => entry.offset = offset + 1,
                    None => storable.push(Position {
                        topic,
                        partition,
                        offset: offset + 1,
                        leader_epoch,
                    }),
                }
            }
        }
        for position in storable {
            // Fails harmlessly for a partition revoked meanwhile; its new owner
            // reprocesses from the commit.
            match s.consumer.store(std::slice::from_ref(&position)) {
                Ok(()) => self.stored = true,
                Err(e) => {
                    tracing::debug!(topic = %position.topic, partition = position.partition, offset = position.offset, "offset not stored: {e}")
                }
            }
        }
        self.publish_waiting(true);
        if self.spare.len() < SPARE_BATCHES {
            batch.records.clear();
            batch.failure = None;
            batch.interrupted = false;
            batch.alone.clear();
            self.spare.push(batch);
        }
        Ok(())
    }

    /// Publishes when the oldest record in flight was received and, after
    /// acknowledgements (`progress`), that input moved ([`crate::health::Health`]).
    fn publish_waiting(&self, progress: bool) {
        let health = &self.context.health;
        let oldest = self.tracker.oldest_received().unwrap_or(0);
        health.oldest_unacknowledged.store(oldest, Ordering::SeqCst);
        if progress {
            health.last_progress.store(unix_millis(), Ordering::SeqCst);
        }
    }

    /// Drops the records in flight of partitions revoked since the last look (the
    /// rebalance callback runs inside the consumer's poll on this task, so nothing
    /// completes between the revoke and this): their late completions then store nothing.
    fn forget_revoked(&mut self) {
        for (topic, partition) in self.context.take_revoked() {
            let dropped = self.tracker.revoke(&topic, partition);
            if dropped > 0 {
                tracing::debug!(%topic, partition, dropped, "records in flight of a revoked partition: the next owner replays them");
                self.publish_waiting(false);
            }
        }
    }

    /// Shutdown: stops consuming, waits for the batches in flight and the producer's
    /// queue until `deadline`; a batch that ends the filter ends the wait for batches,
    /// and is returned.
    async fn drain(
        &mut self,
        s: &Shared<K>,
        deadline: tokio::time::Instant,
    ) -> Option<PipelineError> {
        let pending = self.tracker.in_flight;
        tracing::info!(pending, "shutting down: draining in-flight records");
        let mut failure = None;
        while !self.pending.is_empty() {
            let next = s.producer.serving(self.pending.next());
            match tokio::time::timeout_at(deadline, next).await {
                Ok(Some(c)) => {
                    if let Err(e) = self.on_complete(s, c) {
                        tracing::error!("stopping: {e}");
                        failure = Some(e);
                        break;
                    }
                }
                Ok(None) | Err(_) => break,
            }
        }
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        let _ = tokio::time::timeout_at(deadline, s.producer.flush(remaining)).await;
        failure
    }

    /// Commits the stored offsets, if any were stored since the last commit.
    fn commit(&mut self, consumer: &Arc<K::Consumer>) {
        if self.committing.is_some() || !std::mem::take(&mut self.stored) {
            return;
        }
        let c = consumer.clone();
        self.committing = Some(Box::pin(async move { c.commit_stored().await }));
    }

    /// A commit's result.
    fn committed(&mut self, result: KafkaResult<()>) {
        self.committing = None;
        match result {
            Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => {
                // The stored offsets stay stored: the next tick commits them again.
                self.stored = true;
                tracing::warn!("offset commit failed, retried at the next interval: {e}")
            }
        }
    }
}

impl<K: Kafka> Acknowledge<K> for OffsetStore<K> {
    const RETRY_ENQUEUE: bool = true;

    async fn start(&mut self, _: &Shared<K>) -> Result<(), PipelineError> {
        Ok(())
    }

    fn may_consume(&self) -> bool {
        self.tracker.in_flight < self.max_in_flight
    }

    async fn serve(&mut self, s: &Shared<K>) -> Result<(), PipelineError> {
        let busy = self.committing.is_some();
        let committing = &mut self.committing;
        tokio::select! {
            biased;
            result = async { committing.as_mut().expect("a commit under way").await }, if busy => {
                self.committed(result);
                Ok(())
            }
            _ = self.commit_tick.tick() => {
                self.commit(&s.consumer);
                Ok(())
            }
            Some(c) = self.pending.next(), if !self.pending.is_empty() => self.on_complete(s, c),
        }
    }

    async fn open(&mut self, _: &Shared<K>) -> Result<Plan, PipelineError> {
        let room = self.max_in_flight.saturating_sub(self.tracker.in_flight);
        Ok(Plan {
            limit: room.clamp(1, BATCH_RECORDS),
            until: None,
        })
    }

    fn batch(&mut self) -> Batch {
        self.spare.pop().unwrap_or_default()
    }

    fn admit(&mut self) -> bool {
        self.forget_revoked();
        true
    }

    fn replacement(&self, _: &super::records::Source) -> Option<String> {
        None
    }

    fn enqueued(&mut self, record: &mut Record) {
        let (topic, partition) = (&record.source.topic, record.source.partition);
        let known = self
            .slots
            .iter()
            .find(|(t, q, _)| *q == partition && (Arc::ptr_eq(t, topic) || t == topic));
        let p = match known {
            Some(&(_, _, p)) => p,
            None => {
                let p = self.tracker.partition(topic, partition);
                self.slots.push((topic.clone(), partition, p));
                p
            }
        };
        if self.epochs.len() <= p {
            self.epochs.resize(p + 1, None);
        }
        if record.leader_epoch.is_some() {
            self.epochs[p] = record.leader_epoch;
        }
        // The records received together share their time: converted once.
        if self.received.0 != Some(record.received) {
            let age = record.received.elapsed().as_millis() as u64;
            self.received = (Some(record.received), unix_millis().saturating_sub(age));
        }
        let received = self.received.1;
        if self.tracker.in_flight == 0 {
            let health = &self.context.health;
            health
                .oldest_unacknowledged
                .store(received, Ordering::SeqCst);
        }
        let seq = self
            .tracker
            .push_received(p, record.source.offset, received);
        record.slot = Some((p, seq));
    }

    async fn acknowledge(&mut self, s: &Shared<K>, batch: Batch) -> Result<(), PipelineError> {
        if batch.records.is_empty() {
            return Ok(());
        }
        self.pending.push(Box::pin(await_batch(
            s.producer.clone(),
            s.context.clone(),
            s.transform.clone(),
            s.stats.clone(),
            batch,
        )));
        Ok(())
    }

    async fn finish(
        mut self,
        s: &Shared<K>,
        failure: Option<PipelineError>,
    ) -> Result<(), PipelineError> {
        let settings = &s.settings;
        let mut failure = failure;
        let deadline = tokio::time::Instant::now() + settings.shutdown_timeout;
        if let Some(e) = &failure {
            // Nothing more will be delivered: no drain. The offsets stored so far belong
            // to acknowledged records and are committed; the rest is processed again
            // after the restart.
            tracing::error!("stopping: {e}");
        } else {
            failure = self.drain(s, deadline).await;
        }
        let unacked = self.tracker.in_flight;
        // No client is held past this point (the batches' futures hold the producer).
        drop(self);
        // Bounded like the rest of shutdown: during an outage the commit may never answer.
        let commit = tokio::time::timeout_at(
            deadline.max(tokio::time::Instant::now() + Duration::from_millis(500)),
            s.consumer.commit_stored(),
        )
        .await;
        if let Some(e) = failure {
            return Err(e);
        }
        let committed = match commit {
            Ok(Ok(())) => true,
            // Nothing was stored since the last commit: nothing to do.
            Ok(Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset))) => false,
            Ok(Err(e)) => return Err(PipelineError::Commit(e)),
            Err(_elapsed) => return Err(PipelineError::CommitTimeout(settings.shutdown_timeout)),
        };
        // Says what the last commit did: never a commit that did not happen (when every
        // output was refused, nothing completed and nothing was committed).
        let (consumed, completed) = (s.stats.consumed(), s.stats.completed());
        let what = match (committed, completed) {
            (true, _) => "stopped: offsets committed",
            (false, 0) => "stopped: no offsets to commit",
            (false, _) => "stopped: offsets committed (at the last periodic commit)",
        };
        tracing::info!(consumed, completed, not_acknowledged = unacked, "{what}");
        if unacked > 0 {
            return Err(PipelineError::ShutdownDeadline {
                deadline: settings.shutdown_timeout,
                pending: unacked,
            });
        }
        Ok(())
    }
}
