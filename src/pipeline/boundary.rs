//! The engine's boundary: the little it asks of a Kafka consumer and producer.
//!
//! The engine ([`super::engine`], [`super::offsets`], [`super::transaction`]) talks to
//! Kafka only through [`Input`] and [`Output`], bundled by [`Kafka`]. librdkafka's
//! clients implement them ([`Librdkafka`], a thin adapter over rust-rdkafka); a
//! deterministic in-process model of Kafka implements them too, so that the engine's
//! guarantees are checked under seeded schedules of rebalances, failures and shutdowns
//! that no real broker produces on demand.
//!
//! Rebalances reach the engine as they do with librdkafka: inside the consumer's poll,
//! through the [`Context`]'s hooks ([`Context::before_revoke`], [`Context::after_rebalance`]).

use super::records::Outgoing;
use super::PipelineError;
use crate::kafka::producer::Enqueued;
use crate::kafka::Context;
use futures::Stream;
use rdkafka::error::KafkaResult;
use rdkafka::message::{Message, OwnedMessage};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// An input partition's position to store or commit: the next offset to read, and the
/// leader epoch of the record before it (`None`: unknown), so that a commit after a
/// leader change is checked against the log (KIP-320).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: Option<i32>,
}

/// A transactional call's outcome, classified once where the client's error is read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TxnError {
    /// Call again (a timeout): the transaction is still in its state.
    #[error("{0} (retriable)")]
    Retriable(String),
    /// The transaction must be aborted; the producer goes on.
    #[error("{0} (abortable)")]
    Abortable(String),
    /// Fenced by another instance with the same `transactional.id`.
    #[error("{0} (fenced)")]
    Fenced(String),
    /// The producer failed for good otherwise.
    #[error("{0} (fatal)")]
    Fatal(String),
    /// The broker does not implement a request transactions need (tansu: no `EndTxn`),
    /// whatever librdkafka calls it (it says a commit's "not supported by broker" is
    /// retriable): never retried, exactly once cannot work with this broker — the
    /// configuration's to change.
    #[error("{0} (unsupported)")]
    Unsupported(String),
}

/// A record to enqueue: a new output, or one a delivery report gave back for a re-send.
#[derive(Clone, Copy)]
pub enum Record<'a> {
    New(&'a Outgoing),
    Again(&'a OwnedMessage),
}

/// What the engine asks of the consumer (some of it only the simulation asks yet).
#[allow(dead_code)] // committed, position: for the checks
pub trait Input: Send + Sync + 'static {
    /// A consumed record.
    type Message<'a>: Message + Send + Sync
    where
        Self: 'a;
    /// The consumed records, in the order of each partition; never ends.
    type Stream<'a>: Stream<Item = KafkaResult<Self::Message<'a>>> + Unpin + Send
    where
        Self: 'a;
    /// The group's metadata, for a transaction's offsets.
    type Group: Send + Sync;

    fn stream(&self) -> Self::Stream<'_>;
    /// The leader epoch the record was read under.
    fn leader_epoch(message: &Self::Message<'_>) -> Option<i32>;
    /// Waits until a broker answers; false when shutdown came first.
    fn wait_for_brokers(
        self: &Arc<Self>,
        shutdown: &CancellationToken,
    ) -> impl Future<Output = Result<bool, PipelineError>> + Send;
    fn subscribe(&self, topics: &[&str]) -> KafkaResult<()>;
    /// The partitions assigned to this member.
    fn assignment(&self) -> KafkaResult<Vec<(String, i32)>>;
    /// Stops fetching these partitions; the consumer goes on being polled (rebalances and
    /// the group's liveness are served).
    fn pause(&self, partitions: &[(String, i32)]) -> KafkaResult<()>;
    fn resume(&self, partitions: &[(String, i32)]) -> KafkaResult<()>;
    /// The next record of `partition` read is the one at `offset`.
    fn seek(&self, topic: &str, partition: i32, offset: i64) -> KafkaResult<()>;
    /// Stores positions for the next [`Input::commit_stored`].
    fn store(&self, positions: &[Position]) -> KafkaResult<()>;
    /// Commits the stored positions and says how it went (no stored position:
    /// `ConsumerCommit(NoOffset)`).
    fn commit_stored(self: &Arc<Self>) -> impl Future<Output = KafkaResult<()>> + Send;
    /// The group's committed positions of the assigned partitions.
    fn committed(
        self: &Arc<Self>,
        timeout: Duration,
    ) -> impl Future<Output = KafkaResult<Vec<Position>>> + Send;
    /// The positions of the assigned partitions (the next offset to read).
    fn position(&self) -> KafkaResult<Vec<Position>>;
    fn group(&self) -> Option<Self::Group>;
}

/// What the engine asks of the producer.
pub trait Output: Send + Sync + 'static {
    /// See [`Input::Group`].
    type Group: Send + Sync;

    /// Enqueues a record under its delivery `opaque` (its report goes to the context's
    /// [`crate::kafka::acks::Acks`]); the outcome classified once.
    fn enqueue(&self, record: Record<'_>, opaque: usize) -> Enqueued;
    /// The producer's fatal error, if it has one: nothing more will be delivered.
    fn fatal_error(&self) -> Option<String>;
    /// That fatal error is fencing: another instance has the same `transactional.id`.
    fn fenced(&self) -> bool;
    /// Serves the delivery reports that arrived, on the calling task.
    fn serve(&self);
    /// The process-wide log of retried deliveries and enqueues, where the producer's
    /// client keeps one ([`crate::kafka::Context::retry_log`]).
    fn retry_log(&self) -> Option<&crate::telemetry::events::RetryLog> {
        None
    }
    /// Resolves when delivery reports wait to be served.
    fn reports(&self) -> impl Future<Output = ()> + Send + '_;
    /// Waits until every enqueued record has its report, or `timeout`.
    fn flush(self: &Arc<Self>, timeout: Duration) -> impl Future<Output = KafkaResult<()>> + Send;

    fn init_transactions(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), TxnError>> + Send;
    fn begin_transaction(&self) -> impl Future<Output = Result<(), TxnError>> + Send;
    fn send_offsets(
        &self,
        positions: &[Position],
        group: &Self::Group,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), TxnError>> + Send;
    fn commit_transaction(
        self: &Arc<Self>,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), TxnError>> + Send;
    fn abort_transaction(
        self: &Arc<Self>,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), TxnError>> + Send;
    /// The commit and the abort may be abandoned (dropped) at the shutdown deadline:
    /// they must not hold the task's thread while they wait.
    ///
    /// [`Output::abort_transaction`] from inside the consumer's rebalance callback, where
    /// nothing can be awaited.
    fn abort_in_callback(&self, timeout: Duration) -> Result<(), TxnError>;

    /// Awaits `f`, serving the delivery reports meanwhile (on the calling task).
    fn serving<F: Future + Send>(&self, f: F) -> impl Future<Output = F::Output> + Send
    where
        Self: Sized,
    {
        async move {
            let mut f = std::pin::pin!(f);
            loop {
                tokio::select! {
                    biased;
                    out = &mut f => return out,
                    () = self.reports() => self.serve(),
                }
            }
        }
    }
}

/// A consumer and a producer that go together.
pub trait Kafka: Send + Sync + 'static {
    /// Dropping the clients may block (librdkafka's destroy leaves the group and closes
    /// connections): they are dropped on a thread of their own.
    const BLOCKING_DROP: bool = true;
    type Group: Send + Sync;
    type Consumer: Input<Group = Self::Group>;
    type Producer: Output<Group = Self::Group>;
}

/// librdkafka's clients (the adapter is in [`super::clients`]).
pub struct Librdkafka;

impl Kafka for Librdkafka {
    type Group = rdkafka::consumer::ConsumerGroupMetadata;
    type Consumer = rdkafka::consumer::StreamConsumer<Context>;
    type Producer = super::clients::Producer;
}
