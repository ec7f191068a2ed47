//! The model's consumer and producer behind the engine's boundary: what librdkafka
//! would do, on the model's state. Rebalances reach the engine inside a poll, through
//! the same [`Context`] hooks librdkafka's callbacks call.

use super::model::{Fate, Queued, Rebalance, State, Txn, World, INPUT};
use crate::kafka::producer::{classify, Enqueued};
use crate::kafka::Context;
use crate::pipeline::boundary::{Input, Kafka, Output, Position, Record, TxnError};
use crate::pipeline::PipelineError;
use futures::Stream;
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::Timestamp;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as Task, Poll};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The model's clients.
pub struct Sim;

impl Kafka for Sim {
    const BLOCKING_DROP: bool = false;
    type Group = i32;
    type Consumer = SimConsumer;
    type Producer = SimProducer;
}

/// The consumer of one instance of the filter.
pub struct SimConsumer {
    pub world: Arc<World>,
    pub instance: u64,
    pub context: Context,
}

/// The producer of one instance of the filter.
pub struct SimProducer {
    pub world: Arc<World>,
    pub instance: u64,
    pub transactional: bool,
    pub acks: Arc<crate::kafka::acks::Acks>,
}

fn names(partitions: &[i32]) -> Vec<(String, i32)> {
    partitions.iter().map(|&p| (INPUT.to_string(), p)).collect()
}

impl SimConsumer {
    /// Commits the stored offsets (`how`: who asks, for the trace).
    fn commit_now(&self, how: &str) -> KafkaResult<()> {
        let mut st = self.world.lock();
        if st.member.instance != self.instance {
            return Err(KafkaError::ConsumerCommit(
                RDKafkaErrorCode::UnknownMemberId,
            ));
        }
        if st.faults.commit_failures > 0 {
            st.faults.commit_failures -= 1;
            st.log(format!("{how}: commit fails"));
            return Err(KafkaError::ConsumerCommit(
                RDKafkaErrorCode::RequestTimedOut,
            ));
        }
        let stored: Vec<(i32, i64)> = st.member.stored.iter().map(|(&p, &o)| (p, o)).collect();
        let mut any = false;
        for (p, o) in stored {
            if st.committed.get(&p).copied().unwrap_or(0) != o {
                st.commit(p, o, how);
                any = true;
            }
        }
        if any {
            Ok(())
        } else {
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset))
        }
    }

    /// Applies the rebalances that wait, calling the context's hooks as librdkafka does.
    fn rebalance(&self) {
        loop {
            let event = {
                let mut st = self.world.lock();
                if st.member.instance != self.instance {
                    return;
                }
                match st.member.pending.pop_front() {
                    Some(e) => e,
                    None => return,
                }
            };
            match event {
                Rebalance::Revoke(ps) => {
                    self.context
                        .before_revoke(&names(&ps), false, || self.commit_now("revoke"));
                    let mut st = self.world.lock();
                    st.log(format!("revoked {ps:?}"));
                    for p in &ps {
                        st.member.assigned.remove(p);
                        st.member.positions.remove(p);
                        st.member.stored.remove(p);
                        // librdkafka keeps the pause of a revoked partition: it holds if
                        // the partition is assigned again and nothing resumes it.
                    }
                    let owns = !st.member.assigned.is_empty();
                    drop(st);
                    self.context.after_rebalance(false, owns, ps.len(), "");
                }
                Rebalance::Assign(ps) => {
                    let mut st = self.world.lock();
                    st.log(format!("assigned {ps:?}"));
                    for &p in &ps {
                        let at = st.committed.get(&p).copied().unwrap_or(0);
                        st.member.assigned.insert(p);
                        st.member.positions.insert(p, at);
                    }
                    // An eager assignment may give nothing: what the member owns, as
                    // librdkafka's `assignment()` tells it.
                    let owns = !st.member.assigned.is_empty();
                    drop(st);
                    self.context.start_unpaused(|| self.resume(&names(&ps)));
                    self.context.after_rebalance(true, owns, ps.len(), "");
                }
            }
        }
    }

    /// The next record of an assigned, unpaused partition, round robin.
    fn next_record(st: &mut State) -> Option<OwnedMessage> {
        let ready: Vec<i32> = st
            .member
            .assigned
            .iter()
            .copied()
            .filter(|p| !st.member.paused.contains(p))
            .filter(|p| st.member.positions[p] < st.input[*p as usize].len() as i64)
            .collect();
        if ready.is_empty() {
            return None;
        }
        let p = ready[st.member.next % ready.len()];
        st.member.next += 1;
        let offset = st.member.positions[&p];
        st.member.positions.insert(p, offset + 1);
        let payload = st.input[p as usize][offset as usize].clone();
        Some(OwnedMessage::new(
            Some(payload),
            None,
            INPUT.to_string(),
            Timestamp::NotAvailable,
            p,
            offset,
            None,
        ))
    }

    fn poll(&self, cx: &mut Task<'_>) -> Poll<Option<KafkaResult<OwnedMessage>>> {
        self.rebalance();
        let mut st = self.world.lock();
        if st.member.instance != self.instance {
            return Poll::Pending;
        }
        st.member.last_poll = Some(tokio::time::Instant::now());
        if st.faults.consumer_errors > 0 {
            st.faults.consumer_errors -= 1;
            return Poll::Ready(Some(Err(KafkaError::MessageConsumption(
                RDKafkaErrorCode::BrokerTransportFailure,
            ))));
        }
        match Self::next_record(&mut st) {
            Some(m) => {
                st.log(format!("poll p{}@{}", m.partition(), m.offset()));
                Poll::Ready(Some(Ok(m)))
            }
            None => {
                st.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// The consumer's stream of records.
pub struct SimStream<'a>(&'a SimConsumer);

impl Stream for SimStream<'_> {
    type Item = KafkaResult<OwnedMessage>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Task<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll(cx)
    }
}

impl Input for SimConsumer {
    type Message<'a> = OwnedMessage;
    type Stream<'a> = SimStream<'a>;
    type Group = i32;

    fn stream(&self) -> SimStream<'_> {
        SimStream(self)
    }

    fn leader_epoch(_: &OwnedMessage) -> Option<i32> {
        Some(0)
    }

    async fn wait_for_brokers(
        self: &Arc<Self>,
        _: &CancellationToken,
    ) -> Result<bool, PipelineError> {
        Ok(true)
    }

    fn subscribe(&self, _: &[&str]) -> KafkaResult<()> {
        Ok(())
    }

    fn assignment(&self) -> KafkaResult<Vec<(String, i32)>> {
        let st = self.world.lock();
        Ok(names(
            &st.member.assigned.iter().copied().collect::<Vec<_>>(),
        ))
    }

    fn pause(&self, partitions: &[(String, i32)]) -> KafkaResult<()> {
        let mut st = self.world.lock();
        st.member.paused.extend(partitions.iter().map(|(_, p)| *p));
        Ok(())
    }

    fn resume(&self, partitions: &[(String, i32)]) -> KafkaResult<()> {
        let mut st = self.world.lock();
        for (_, p) in partitions {
            st.member.paused.remove(p);
        }
        drop(st);
        self.world.wake();
        Ok(())
    }

    fn seek(&self, _: &str, partition: i32, offset: i64) -> KafkaResult<()> {
        let mut st = self.world.lock();
        if st.member.instance != self.instance || !st.member.assigned.contains(&partition) {
            return Err(KafkaError::Seek(format!(
                "partition {partition} not assigned"
            )));
        }
        st.log(format!("seek p{partition}@{offset}"));
        st.member.positions.insert(partition, offset);
        Ok(())
    }

    fn store(&self, positions: &[Position]) -> KafkaResult<()> {
        let mut st = self.world.lock();
        for p in positions {
            if st.member.instance != self.instance || !st.member.assigned.contains(&p.partition) {
                return Err(KafkaError::StoreOffset(RDKafkaErrorCode::UnknownPartition));
            }
            st.member.stored.insert(p.partition, p.offset);
        }
        Ok(())
    }

    async fn commit_stored(self: &Arc<Self>) -> KafkaResult<()> {
        // A round trip to the coordinator.
        tokio::time::sleep(Duration::from_millis(2)).await;
        self.commit_now("commit")
    }

    async fn committed(self: &Arc<Self>, _: Duration) -> KafkaResult<Vec<Position>> {
        let st = self.world.lock();
        if st.faults.committed_unreadable {
            return Err(KafkaError::MetadataFetch(
                RDKafkaErrorCode::GroupAuthorizationFailed,
            ));
        }
        Ok(st.committed.iter().map(|(&p, &o)| position(p, o)).collect())
    }

    fn position(&self) -> KafkaResult<Vec<Position>> {
        let st = self.world.lock();
        Ok(st
            .member
            .positions
            .iter()
            .map(|(&p, &o)| position(p, o))
            .collect())
    }

    fn group(&self) -> Option<i32> {
        Some(self.world.lock().generation)
    }
}

fn position(partition: i32, offset: i64) -> Position {
    Position {
        topic: Arc::from(INPUT),
        partition,
        offset,
        leader_epoch: None,
    }
}

impl SimProducer {
    /// Fenced: the transactional calls fail so (and the scheduler learns that the
    /// filter now knows it must stop).
    fn fenced(&self, st: &mut State) -> Option<TxnError> {
        if st.producer == self.instance {
            return None;
        }
        st.fence_noticed = Some(self.instance);
        Some(TxnError::Fenced(
            "another instance runs with the same transactional id".into(),
        ))
    }

    /// Aborts the open transaction: its queued records are purged (reported failed).
    fn abort(&self, st: &mut State) -> Vec<Queued> {
        let Some(t) = st.open_txn.take() else {
            return Vec::new();
        };
        st.txns[t].fate = Some(Fate::Aborted);
        st.log(format!("txn {t} aborted"));
        let (purged, kept) = st.queue.drain(..).partition(|q| q.txn == Some(t));
        st.queue = kept;
        purged.into_iter().collect()
    }

    /// Reports purged records as failed (outside the lock: the report wakes tasks).
    fn purge(&self, purged: Vec<Queued>) {
        for q in purged {
            let e = KafkaError::MessageProduction(RDKafkaErrorCode::PurgeQueue);
            q.acks
                .report(q.opaque, Some((e, super::broker::message_of(&q))));
        }
    }
}

impl Output for SimProducer {
    type Group = i32;

    fn enqueue(&self, record: Record<'_>, opaque: usize) -> Enqueued {
        let mut st = self.world.lock();
        // Any answer but a full queue ends a stall on it.
        let full_since = st.queue_full_since.take();
        if self.transactional && st.producer != self.instance {
            st.fence_noticed = Some(self.instance);
            let e = KafkaError::MessageProduction(RDKafkaErrorCode::Fatal);
            return Enqueued::Failed(classify(Some("fenced".into()), e));
        }
        if self.transactional && st.open_txn.is_none() {
            // librdkafka refuses a send outside a transaction (`_STATE`).
            let e = KafkaError::MessageProduction(RDKafkaErrorCode::State);
            return Enqueued::Failed(classify(None, e));
        }
        if st.faults.queue_full || st.queue.len() >= st.capacity {
            st.queue_full_since = match full_since {
                Some((i, since)) if i == self.instance => Some((i, since)),
                _ => Some((self.instance, tokio::time::Instant::now())),
            };
            return Enqueued::QueueFull;
        }
        let (topic, key, value) = match record {
            Record::New(o) => (
                o.topic.clone(),
                o.key.as_ref().map(|k| k.as_bytes().to_vec()),
                o.value.clone(),
            ),
            Record::Again(m) => (
                Arc::from(m.topic()),
                m.key().map(<[u8]>::to_vec),
                m.payload().unwrap_or_default().to_vec(),
            ),
        };
        let txn = if self.transactional {
            st.open_txn
        } else {
            None
        };
        st.queue.push_back(Queued {
            topic,
            key,
            value,
            opaque,
            instance: self.instance,
            txn,
            acks: self.acks.clone(),
        });
        Enqueued::Queued
    }

    fn fatal_error(&self) -> Option<String> {
        let mut st = self.world.lock();
        let fenced = self.transactional && st.producer != self.instance;
        if fenced {
            st.fence_noticed = Some(self.instance);
        }
        fenced.then(|| "fenced".to_string())
    }

    fn fenced(&self) -> bool {
        self.transactional && self.world.lock().producer != self.instance
    }

    fn serve(&self) {}

    fn reports(&self) -> impl Future<Output = ()> + Send + '_ {
        // The scheduler serves the reports (librdkafka's fallback thread would).
        std::future::pending()
    }

    async fn flush(self: &Arc<Self>, timeout: Duration) -> KafkaResult<()> {
        let until = tokio::time::Instant::now() + timeout;
        loop {
            let mine = {
                let st = self.world.lock();
                st.queue.iter().any(|q| q.instance == self.instance)
            };
            if !mine {
                return Ok(());
            }
            if tokio::time::Instant::now() >= until {
                return Err(KafkaError::Flush(RDKafkaErrorCode::RequestTimedOut));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    async fn init_transactions(&self, _: Duration) -> Result<(), TxnError> {
        let mut st = self.world.lock();
        // A new instance fences the old one; its open transaction is aborted.
        st.producer = self.instance;
        let purged = self.abort(&mut st);
        drop(st);
        self.purge(purged);
        Ok(())
    }

    async fn begin_transaction(&self) -> Result<(), TxnError> {
        let mut st = self.world.lock();
        if let Some(e) = self.fenced(&mut st) {
            return Err(e);
        }
        if st.open_txn.is_some() {
            return Err(TxnError::Abortable("a transaction is already open".into()));
        }
        st.txns.push(Txn {
            fate: Some(Fate::Open),
            ..Txn::default()
        });
        let t = st.txns.len() - 1;
        st.open_txn = Some(t);
        st.log(format!("txn {t} begun"));
        Ok(())
    }

    async fn send_offsets(
        &self,
        positions: &[Position],
        group: &i32,
        _: Duration,
    ) -> Result<(), TxnError> {
        let mut st = self.world.lock();
        if let Some(e) = self.fenced(&mut st) {
            return Err(e);
        }
        let Some(t) = st.open_txn else {
            return Err(TxnError::Abortable("no open transaction".into()));
        };
        if *group != st.generation {
            return Err(TxnError::Abortable("the group's generation changed".into()));
        }
        let offsets = positions.iter().map(|p| (p.partition, p.offset));
        st.txns[t].offsets.extend(offsets);
        Ok(())
    }

    async fn commit_transaction(self: &Arc<Self>, timeout: Duration) -> Result<(), TxnError> {
        let result = super::broker::commit_transaction(self, timeout).await;
        let line = format!("commit_transaction({timeout:?}): {result:?}");
        self.world.lock().log(line);
        result
    }

    async fn abort_transaction(self: &Arc<Self>, _: Duration) -> Result<(), TxnError> {
        self.abort_in_callback(Duration::ZERO)
    }

    fn abort_in_callback(&self, _: Duration) -> Result<(), TxnError> {
        let mut st = self.world.lock();
        st.log(format!("abort by instance {}", self.instance));
        if let Some(e) = self.fenced(&mut st) {
            return Err(e);
        }
        if st.faults.abort_failures > 0 {
            st.faults.abort_failures -= 1;
            return Err(TxnError::Abortable("abort timed out".into()));
        }
        let purged = self.abort(&mut st);
        drop(st);
        self.purge(purged);
        Ok(())
    }
}
