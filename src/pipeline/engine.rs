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
use super::records::{self, Outgoing, Source};
use super::send::{self, Unsent, Wait};
use super::stall::Stall;
use super::PipelineError;
use crate::health::unix_millis;
use crate::telemetry;
use chrono::Utc;
use futures::future::FutureExt;
use futures::stream::StreamExt;
use rdkafka::message::Message;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(super) use super::batch::{
    refusal, refused_dead_letter, Acknowledge, Batch, Plan, Record, Sent, Shared, Stop,
};

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
        #[cfg(feature = "bench-passthrough")]
        transform.forward_key(msg.key(), outgoing);
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
