//! A batch and its acknowledgement: what the engine ([`super::engine`]) and the two
//! delivery guarantees ([`super::offsets`], [`super::transaction`]) share — the clients,
//! the batch's records and outputs, the [`Acknowledge`] trait in which the guarantees
//! differ, and the one wording of a refused output's dead letter.

use super::boundary::Kafka;
use super::records::{Outgoing, Source, Transform};
use super::PipelineError;
use crate::config::Settings;
use crate::kafka::acks::{Acks, Ticket};
use crate::kafka::Context;
use crate::telemetry::Stats;
use rdkafka::error::KafkaError;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// What the engine and the acknowledgement share.
pub(super) struct Shared<K: Kafka> {
    pub consumer: Arc<K::Consumer>,
    pub producer: Arc<K::Producer>,
    pub context: Context,
    pub settings: Arc<Settings>,
    pub transform: Arc<Transform>,
    pub stats: Arc<Stats>,
    pub shutdown: CancellationToken,
}

impl<K: Kafka> Shared<K> {
    pub fn new(
        (consumer, producer): (Arc<K::Consumer>, Arc<K::Producer>),
        context: Context,
        settings: Arc<Settings>,
        transform: Arc<Transform>,
        stats: Arc<Stats>,
        shutdown: CancellationToken,
    ) -> Shared<K> {
        Shared {
            consumer,
            producer,
            context,
            settings,
            transform,
            stats,
            shutdown,
        }
    }
}

/// A consumed record of a batch.
pub(super) struct Record {
    pub source: Source,
    /// The leader epoch it was read under.
    pub leader_epoch: Option<i32>,
    pub received: Instant,
    /// Every output (or its dead letter) was enqueued. A record received after the
    /// batch could take no more (a revoke aborted the transaction) or whose outputs
    /// could not all be enqueued is not: it is consumed again.
    pub processed: bool,
    /// Its entry in the at-least-once offset tracker.
    pub slot: Option<(usize, u64)>,
}

impl Record {
    /// A record just received: not processed yet, not tracked.
    pub fn new(source: Source, leader_epoch: Option<i32>, received: Instant) -> Record {
        Record {
            source,
            leader_epoch,
            received,
            processed: false,
            slot: None,
        }
    }
}

/// An enqueued output of the record `record` of its batch; its delivery report is
/// counted under the batch's ticket, at its index in [`Batch::sent`]. The output itself
/// is not kept: a failed delivery's report carries the record, for a re-send.
pub(super) struct Sent {
    pub record: usize,
    pub topic: Arc<str>,
}

/// The records of a batch and what was enqueued for them.
#[derive(Default)]
pub(super) struct Batch {
    pub records: Vec<Record>,
    pub sent: Vec<Sent>,
    /// Outputs the client refused for good when enqueued: (record, topic, why).
    pub refused: Vec<(usize, Arc<str>, String)>,
    /// An enqueue error that ended the batch early (exactly once: it is aborted).
    pub failure: Option<KafkaError>,
    /// The record received after a revoke aborted the transaction: not processed, and
    /// read from its partition's new assignment when that partition came back at once —
    /// the rewind must seek back to it whatever the partition's fate before.
    pub unadmitted: Option<Source>,
    /// Shutdown came while a record's outputs were being enqueued: part of them are in
    /// the batch (exactly once: the transaction is aborted, never committed half).
    pub interrupted: bool,
    /// The records whose outputs were sent alone ([`super::send::alone`]): a refusal of one of
    /// them is a refusal for good.
    pub alone: Vec<usize>,
    /// The slot its outputs' delivery reports are counted in: taken at the first send,
    /// kept with the batch's buffers for the next batch.
    pub ticket: Option<Ticket>,
}

impl Batch {
    /// The batch's ticket, taken from `acks` at the first call.
    pub fn ticket(&mut self, acks: &Arc<Acks>) -> &Ticket {
        self.ticket.get_or_insert_with(|| acks.ticket())
    }

    /// How many records were processed (all their outputs enqueued).
    pub fn processed(&self) -> usize {
        self.records.iter().filter(|r| r.processed).count()
    }
}

/// Why an input is dead-lettered when outputs of it were refused for good, by the client
/// or by the broker: one wording on every path — each refused purpose with why, then the
/// purposes already forwarded (at least once they stay forwarded; else "none").
pub(super) fn refusal<'a>(
    transform: &Transform,
    refused: impl IntoIterator<Item = (&'a str, String)>,
    forwarded: impl IntoIterator<Item = &'a str>,
) -> String {
    let name = |topic: &str| transform.purpose_of_topic(topic).unwrap_or("dead letter");
    let refused: Vec<String> = refused
        .into_iter()
        .map(|(topic, why)| format!("the {} output record was refused: {why}", name(topic)))
        .collect();
    let forwarded: Vec<&str> = forwarded.into_iter().map(name).collect();
    let forwarded = match forwarded.is_empty() {
        true => "none".to_string(),
        false => forwarded.join(", "),
    };
    format!("{}; forwarded: {forwarded}", refused.join("; "))
}

/// The one dead letter of an input an output of which was refused for good
/// (`output_too_large`), its message from [`refusal`].
pub(super) fn refused_dead_letter(
    transform: &Transform,
    source: &Source,
    message: String,
    stats: &Stats,
) -> Outgoing {
    transform.dead_letter(source, "output_too_large", message, None, stats)
}

/// How a batch is gathered: at most `limit` records, and until `until` (`None`: only
/// the records ready now).
pub(super) struct Plan {
    pub limit: usize,
    pub until: Option<tokio::time::Instant>,
}

/// Why a batch or the run stopped early.
pub(super) enum Stop {
    Shutdown,
    Failed(PipelineError),
}

/// How batches are acknowledged: what differs between the delivery guarantees.
pub(super) trait Acknowledge<K: Kafka>: Send {
    /// Enqueue errors (other than a full queue or a record refused for good) are retried
    /// in place (`true`, at least once) or end the batch (`false`, exactly once: the
    /// transaction left its open state and is aborted).
    const RETRY_ENQUEUE: bool;

    /// [`Acknowledge::acknowledge`] returns once the batch is acknowledged (exactly
    /// once: committed); at least once it only starts waiting for the deliveries.
    const ACKNOWLEDGED_ON_RETURN: bool = false;

    /// Before the first record (exactly once: `init_transactions`).
    fn start(&mut self, s: &Shared<K>) -> impl Future<Output = Result<(), PipelineError>> + Send;

    /// Whether a new batch may begin (at least once: fewer than `max_in_flight` records
    /// are waiting for their acknowledgement).
    fn may_consume(&self) -> bool;

    /// Serves what waits between records and while the producer's queue is full;
    /// resolves after each piece of work (at least once: a completed batch, a commit
    /// tick), or with the failure that stops the filter.
    fn serve(&mut self, s: &Shared<K>) -> impl Future<Output = Result<(), PipelineError>> + Send;

    /// Opens a batch, its first record received (exactly once: `begin_transaction`).
    fn open(&mut self, s: &Shared<K>) -> impl Future<Output = Result<Plan, PipelineError>> + Send;

    /// An empty batch to fill (at least once: the buffers of a completed one).
    fn batch(&mut self) -> Batch {
        Batch::default()
    }

    /// Whether a received record may join the open batch (exactly once: not after a
    /// revoke aborted the transaction).
    fn admit(&mut self) -> bool;

    /// The dead-letter message that replaces the processing of a record (exactly once:
    /// an output of it was refused by the broker in an aborted transaction).
    fn replacement(&self, source: &Source) -> Option<String>;

    /// Whether a record's outputs are sent alone, each in a request of its own (exactly
    /// once: one was refused in a request with others, which a request refused whole
    /// does to every record in it).
    fn alone(&self, _source: &Source) -> bool {
        false
    }

    /// Every output of a record is enqueued (at least once: its offset is tracked).
    fn enqueued(&mut self, record: &mut Record);

    /// Acknowledges a closed batch.
    fn acknowledge(
        &mut self,
        s: &Shared<K>,
        batch: Batch,
    ) -> impl Future<Output = Result<(), PipelineError>> + Send;

    /// After the last batch: drains, commits, and says how the run ended, `failure`
    /// included; consumes the acknowledgement so that no client is held after it.
    fn finish(
        self,
        s: &Shared<K>,
        failure: Option<PipelineError>,
    ) -> impl Future<Output = Result<(), PipelineError>> + Send;
}
