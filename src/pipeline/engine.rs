//! The engine: one consume → transform → produce loop for both delivery guarantees.
//!
//! Records are consumed in batches. A batch opens with its first record
//! ([`Acknowledge::open`]); each record is turned into its outputs by
//! [`Transform::process`] and every output is enqueued on the producer without waiting;
//! the batch closes when it is full, or when its [`Plan`] says (at least once: as soon as
//! no record is ready; exactly once: at `delivery.transaction_interval`), and is handed
//! to [`Acknowledge::acknowledge`]. The two guarantees differ only there: at least once
//! waits for the batch's deliveries in the background and stores the offsets
//! ([`super::offsets::OffsetStore`]); exactly once commits the outputs and the offsets
//! in one transaction, or aborts and rewinds ([`super::transaction::Transaction`]).

use super::boundary::{Input, Kafka, Output, Record as Out};
use super::clients::{max_message_bytes, release_clients, subscribe, wire_size, RecvErrors};
use super::records::{self, Outgoing, Source, Transform};
use super::send::{self, Unsent, Wait};
use super::stall::Stall;
use super::PipelineError;
use crate::config::Settings;
use crate::health::unix_millis;
use crate::kafka::acks::{Acks, Ticket};
use crate::kafka::Context;
use crate::telemetry::{self, Stats};
use chrono::Utc;
use futures::future::FutureExt;
use futures::stream::StreamExt;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
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
    /// The records whose outputs were sent alone ([`send::alone`]): a refusal of one of
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

/// Runs the filter on the given clients until shutdown or a failure, then has `ack`
/// finish and releases the clients.
pub(super) async fn run<K: Kafka, A: Acknowledge<K>>(
    s: Shared<K>,
    mut ack: A,
) -> Result<(), PipelineError> {
    if !s.consumer.wait_for_brokers(&s.shutdown).await? {
        return Ok(());
    }
    ack.start(&s).await?;
    // The times since progress and since an assignment count from the start.
    let health = &s.context.health;
    for at in [&health.last_progress, &health.last_assignment] {
        at.store(unix_millis(), Ordering::SeqCst);
    }
    subscribe(&*s.consumer, &s.settings)?;
    let failure = consume(&s, &mut ack).await.err();
    // One deadline from the shutdown (or the failure) on: `finish` bounds its steps by
    // it, and the clients are released by it too (SIGTERM to exit within
    // delivery.shutdown_timeout and a second or so).
    let deadline = tokio::time::Instant::now() + s.settings.shutdown_timeout;
    let result = ack.finish(&s, failure).await;
    telemetry::emit(telemetry::events::DeadLettersSummary { force: true });
    telemetry::emit(telemetry::events::RetriesSummary {
        log: &s.context.retry_log,
        force: true,
    });
    if K::BLOCKING_DROP {
        release_clients(s.consumer, s.producer, deadline).await;
    }
    result
}

/// The consumer's records, and the stall that holds them back while the outputs wait.
struct Consumed<'s, K: Kafka> {
    stream: <K::Consumer as Input>::Stream<'s>,
    stall: Stall,
    errors: RecvErrors,
}

/// A consumed record.
type Msg<'s, K> = <<K as Kafka>::Consumer as Input>::Message<'s>;

/// What the loop does next, between batches.
enum Next<M> {
    Batch(M),
    Again,
    Stop,
}

/// Waits for the first record of a batch, serving meanwhile what waits: the shutdown,
/// the dead-letter summary, the delivery reports, the acknowledgement — and, while the
/// acknowledgement takes no more, the consumer with its partitions paused ([`Stall`]).
async fn first<'s, K: Kafka, A: Acknowledge<K>>(
    s: &'s Shared<K>,
    ack: &mut A,
    input: &mut Consumed<'s, K>,
    summary: &mut tokio::time::Interval,
) -> Result<Next<Msg<'s, K>>, PipelineError> {
    let consuming = ack.may_consume();
    if consuming {
        input.stall.over(&*s.consumer, &s.context.health);
    } else {
        input.stall.begin();
    }
    let pause_at = input.stall.pause_at();
    let polled = consuming || input.stall.paused();
    let m = tokio::select! {
        biased;
        _ = s.shutdown.cancelled() => return Ok(Next::Stop),
        _ = summary.tick() => {
            telemetry::emit(telemetry::events::DeadLettersSummary { force: false });
            telemetry::emit(telemetry::events::RetriesSummary {
                log: &s.context.retry_log,
                force: false,
            });
            return Ok(Next::Again);
        }
        () = s.producer.reports() => {
            s.producer.serve();
            return Ok(Next::Again);
        }
        served = ack.serve(s) => {
            served?;
            return Ok(Next::Again);
        }
        _ = sleep_until_some(pause_at) => {
            input.stall.pause(&*s.consumer, &s.context.health);
            return Ok(Next::Again);
        }
        m = input.stream.next(), if polled => m.expect("a Kafka stream never ends"),
    };
    if !consuming {
        input.stall.hold_back(&*s.consumer, m);
        return Ok(Next::Again);
    }
    match m {
        Ok(m) => Ok(Next::Batch(m)),
        Err(e) => {
            input.errors.failed(&e);
            Ok(Next::Again)
        }
    }
}

/// Sleeps until `at`; never when `None`.
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The batch loop.
async fn consume<K: Kafka, A: Acknowledge<K>>(
    s: &Shared<K>,
    ack: &mut A,
) -> Result<(), PipelineError> {
    let mut input = Consumed {
        stream: s.consumer.stream(),
        stall: Stall::default(),
        errors: RecvErrors::default(),
    };
    let mut engine = Engine {
        s,
        clock: Clock::now(),
        outgoing: Vec::with_capacity(4),
        max_message_bytes: max_message_bytes(&s.settings),
        topics: Vec::new(),
    };
    // The dead letters not logged one by one are summed up once per interval.
    let mut summary = tokio::time::interval(telemetry::events::DEAD_LETTER_LOG_INTERVAL);
    summary.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let first = match first(s, ack, &mut input, &mut summary).await? {
            Next::Batch(m) => m,
            Next::Again => continue,
            Next::Stop => return Ok(()),
        };
        input.errors.ok();
        s.context.broker_answered();
        let plan = ack.open(s).await?;
        if A::ACKNOWLEDGED_ON_RETURN {
            let oldest = &s.context.health.oldest_unacknowledged;
            let _ = oldest.compare_exchange(0, unix_millis(), Ordering::SeqCst, Ordering::SeqCst);
        }
        let mut batch = ack.batch();
        engine.clock = Clock::now();
        engine
            .gather(ack, &mut input, &mut batch, &plan, first)
            .await?;
        s.transform.flush_metrics();
        // The reports that came while the batch was processed: served here, on the
        // thread that allocated their records.
        s.producer.serve();
        ack.acknowledge(s, batch).await?;
        if A::ACKNOWLEDGED_ON_RETURN {
            let health = &s.context.health;
            health.oldest_unacknowledged.store(0, Ordering::SeqCst);
            health.last_progress.store(unix_millis(), Ordering::SeqCst);
        }
    }
}

/// The time a record is received and processed at, read once for the records ready
/// together (a clock read per record is a measurable part of the pipeline's cost).
#[derive(Clone, Copy)]
struct Clock {
    received: Instant,
    now: chrono::DateTime<Utc>,
}

impl Clock {
    fn now() -> Clock {
        Clock {
            received: Instant::now(),
            now: Utc::now(),
        }
    }
}

/// The state of the batch loop between records.
struct Engine<'s, K: Kafka> {
    s: &'s Shared<K>,
    clock: Clock,
    /// Reused between records.
    outgoing: Vec<Outgoing>,
    /// The producer's `message.max.bytes`: an input with a larger output is dead-lettered
    /// whole before any of its outputs is sent.
    max_message_bytes: usize,
    /// The input topics' names, shared by every record's [`Source`].
    topics: Vec<Arc<str>>,
}

impl<'s, K: Kafka> Engine<'s, K> {
    /// Fills a batch from its first record, as its plan says.
    async fn gather<A: Acknowledge<K>>(
        &mut self,
        ack: &mut A,
        input: &mut Consumed<'s, K>,
        batch: &mut Batch,
        plan: &Plan,
        first: Msg<'s, K>,
    ) -> Result<(), PipelineError> {
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            let (source, leader_epoch) = self.source(&msg);
            if !ack.admit() {
                // Rewound with the batch.
                batch.unadmitted = Some(source.clone());
                let record = Record::new(source, leader_epoch, self.clock.received);
                batch.records.push(record);
                break;
            }
            match self
                .handle(ack, input, batch, &msg, (source, leader_epoch))
                .await
            {
                Ok(()) => {}
                Err(Stop::Shutdown) => {
                    batch.interrupted = true;
                    break;
                }
                Err(Stop::Failed(e)) => return Err(e),
            }
            if batch.failure.is_some() || batch.records.len() >= plan.limit {
                break;
            }
            next = self.next(input, plan.until).await;
        }
        Ok(())
    }

    /// The next record of the batch: one ready now (`until` None), or the first to come
    /// before `until`.
    async fn next(
        &mut self,
        input: &mut Consumed<'s, K>,
        until: Option<tokio::time::Instant>,
    ) -> Option<Msg<'s, K>> {
        let s = self.s;
        let Some(until) = until else {
            return match input.stream.next().now_or_never() {
                Some(Some(Ok(m))) => Some(m),
                Some(Some(Err(e))) => {
                    input.errors.failed(&e);
                    None
                }
                _ => None,
            };
        };
        let stream = &mut input.stream;
        let next = s
            .producer
            .serving(async {
                tokio::select! {
                    biased;
                    _ = s.shutdown.cancelled() => None,
                    _ = tokio::time::sleep_until(until) => None,
                    m = stream.next() => match m.expect("a Kafka stream never ends") {
                        Ok(m) => Some(m),
                        Err(e) => {
                            tracing::warn!("consumer error: {e}");
                            None
                        }
                    },
                }
            })
            .await;
        // The batch waited for this record: its own time.
        self.clock = Clock::now();
        next
    }

    fn source(&mut self, msg: &<K::Consumer as Input>::Message<'_>) -> (Source, Option<i32>) {
        let name = msg.topic();
        let topic = match self.topics.iter().find(|t| &***t == name) {
            Some(t) => t.clone(),
            None => {
                let t: Arc<str> = Arc::from(name);
                self.topics.push(t.clone());
                t
            }
        };
        let source = Source {
            topic,
            partition: msg.partition(),
            offset: msg.offset(),
        };
        (source, K::Consumer::leader_epoch(msg))
    }

    /// Processes one record and enqueues its outputs (or its one dead letter).
    async fn handle<A: Acknowledge<K>>(
        &mut self,
        ack: &mut A,
        input: &mut Consumed<'s, K>,
        batch: &mut Batch,
        msg: &<K::Consumer as Input>::Message<'_>,
        (source, leader_epoch): (Source, Option<i32>),
    ) -> Result<(), Stop> {
        let mut outgoing = std::mem::take(&mut self.outgoing);
        let alone = self.outputs(ack, &source, msg, &mut outgoing);
        let index = batch.records.len();
        let record = Record::new(source, leader_epoch, self.clock.received);
        batch.records.push(record);
        let mut stop = None;
        for o in outgoing.drain(..) {
            if stop.is_none() && batch.failure.is_none() {
                let sent = self.send_output(ack, input, batch, (index, o), alone);
                stop = sent.await.err();
            }
        }
        self.outgoing = outgoing;
        if let Some(stop) = stop {
            return Err(stop);
        }
        if alone {
            batch.alone.push(index);
        }
        if batch.failure.is_none() {
            let record = &mut batch.records[index];
            record.processed = true;
            ack.enqueued(record);
        }
        Ok(())
    }

    /// A record's outputs, or the one dead letter that replaces them; whether they are
    /// to be sent alone ([`Acknowledge::alone`]).
    fn outputs<A: Acknowledge<K>>(
        &self,
        ack: &A,
        source: &Source,
        msg: &<K::Consumer as Input>::Message<'_>,
        outgoing: &mut Vec<Outgoing>,
    ) -> bool {
        let (transform, stats) = (&self.s.transform, &self.s.stats);
        if let Some(message) = ack.replacement(source) {
            outgoing.push(refused_dead_letter(transform, source, message, stats));
            return false;
        }
        let payload = msg.payload().unwrap_or_default();
        transform.process(source, payload, self.clock.now, stats, outgoing);
        self.dead_letter_too_large(source, outgoing);
        ack.alone(source)
    }

    /// Sends output `o` of the record at `index` of the batch and notes how it went in
    /// the batch; why the batch stops, if it does.
    async fn send_output<A: Acknowledge<K>>(
        &self,
        ack: &mut A,
        input: &mut Consumed<'s, K>,
        batch: &mut Batch,
        (index, o): (usize, Outgoing),
        alone: bool,
    ) -> Result<(), Stop> {
        let at = batch.sent.len();
        let ticket = batch.ticket(&self.s.context.acks);
        let mut wait = Serving {
            s: self.s,
            ack,
            input: &mut *input,
            failed: None,
        };
        let (producer, retry) = (&*self.s.producer, A::RETRY_ENQUEUE);
        let sent = if alone {
            send::alone(producer, Out::New(&o), ticket, at, retry, &mut wait).await
        } else {
            send::send(producer, Out::New(&o), ticket, at, retry, &mut wait).await
        };
        let failed = wait.failed.take();
        match sent {
            Ok(()) => {
                input.stall.over(&*self.s.consumer, &self.s.context.health);
                batch.sent.push(Sent {
                    record: index,
                    topic: o.topic,
                });
                // librdkafka copied the key and value: their buffers serve again.
                records::recycle(o.key, o.value);
            }
            Err(Unsent::Refused(reason)) => batch.refused.push((index, o.topic.clone(), reason)),
            Err(Unsent::Failed(e)) => batch.failure = Some(e),
            Err(Unsent::Fatal(reason)) => {
                return Err(Stop::Failed(if self.s.producer.fenced() {
                    tracing::error!("stopping: the transactional producer is fenced: {reason}");
                    PipelineError::TransactionFatal(reason)
                } else {
                    PipelineError::ProducerFatal(reason)
                }))
            }
            Err(Unsent::Stopped) => {
                return Err(match failed {
                    Some(e) => Stop::Failed(e),
                    None => Stop::Shutdown,
                })
            }
        }
        Ok(())
    }

    /// An output larger than the producer accepts: the input becomes one dead letter
    /// before any of its outputs is sent, never a half-forwarded record.
    fn dead_letter_too_large(&self, source: &Source, outgoing: &mut Vec<Outgoing>) {
        let transform = &self.s.transform;
        let too_large = outgoing.iter().find_map(|o| {
            let size = wire_size(o);
            if size <= self.max_message_bytes {
                return None;
            }
            transform.purpose_of_topic(&o.topic)?;
            Some((o.topic.clone(), size))
        });
        if let Some((topic, size)) = too_large {
            let why = format!(
                "{size} bytes, more than the producer's message.max.bytes ({})",
                self.max_message_bytes
            );
            let message = refusal(transform, [(&*topic, why)], []);
            outgoing.clear();
            outgoing.push(refused_dead_letter(
                transform,
                source,
                message,
                &self.s.stats,
            ));
        }
    }
}

/// The engine's wait while the producer's queue is full: serves the reports, the
/// acknowledgement (at least once: completed batches free the queue) and, past
/// [`super::stall::PAUSE_AFTER`], the consumer with its partitions paused ([`Stall`]),
/// until shutdown or a failure, which it keeps.
struct Serving<'a, 's, K: Kafka, A> {
    s: &'s Shared<K>,
    ack: &'a mut A,
    input: &'a mut Consumed<'s, K>,
    failed: Option<PipelineError>,
}

impl<K: Kafka, A: Acknowledge<K>> Wait for Serving<'_, '_, K, A> {
    async fn wait(&mut self, pause: Duration) -> bool {
        let s = self.s;
        s.producer.serve();
        let input = &mut *self.input;
        input.stall.begin();
        let pause_at = input.stall.pause_at();
        let paused = input.stall.paused();
        tokio::select! {
            biased;
            _ = s.shutdown.cancelled() => false,
            () = s.producer.reports() => {
                s.producer.serve();
                true
            }
            served = self.ack.serve(s) => match served {
                Ok(()) => true,
                Err(e) => {
                    self.failed = Some(e);
                    false
                }
            },
            _ = sleep_until_some(pause_at) => {
                input.stall.pause(&*s.consumer, &s.context.health);
                true
            }
            m = input.stream.next(), if paused => {
                input.stall.hold_back(&*s.consumer, m.expect("a Kafka stream never ends"));
                true
            }
            _ = tokio::time::sleep(pause) => true,
        }
    }
}
