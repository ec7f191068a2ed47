//! The one send path of the pipeline: enqueue a record under its batch's ticket, wait
//! while the producer's queue is full, retry what may succeed, and say why a record
//! was not enqueued — every producer error classified once
//! ([`crate::kafka::producer::classify`]).

use super::boundary::{Output, Record};
use crate::kafka::acks::Ticket;
use crate::kafka::producer::{Enqueued, Outcome};
use crate::telemetry;
use rdkafka::error::KafkaError;
use std::future::Future;
use std::time::Duration;

/// How long to wait before trying again while the producer's queue is full.
pub(super) const FULL_PAUSE: Duration = Duration::from_millis(10);

/// How long to wait before enqueueing again after a retriable enqueue error (unknown
/// topic in the local metadata cache, ...).
pub(super) const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// Why a record was not enqueued.
#[derive(Debug)]
pub(super) enum Unsent {
    /// The client refuses this record for good (larger than `message.max.bytes`).
    Refused(String),
    /// A retriable error, when the caller does not retry in place.
    Failed(KafkaError),
    /// The producer failed for good.
    Fatal(String),
    /// The wait was cut short (shutdown, a deadline, a failure the waiter holds).
    Stopped,
}

/// What a sender does while it waits: serve what must be served, and say whether to go
/// on (`false`: stop trying).
pub(super) trait Wait {
    fn wait(&mut self, pause: Duration) -> impl Future<Output = bool> + Send;
}

/// A wait that only sleeps, serving the producer's reports, until an optional deadline.
pub(super) struct Sleep<'a, P> {
    pub producer: &'a P,
    pub until: Option<tokio::time::Instant>,
}

impl<P: Output> Wait for Sleep<'_, P> {
    async fn wait(&mut self, pause: Duration) -> bool {
        self.producer.serve();
        let wake = tokio::time::Instant::now() + pause;
        match self.until {
            Some(until) if until <= wake => {
                tokio::time::sleep_until(until).await;
                false
            }
            _ => {
                tokio::time::sleep_until(wake).await;
                true
            }
        }
    }
}

/// Enqueues `record` as the record at `index` of `ticket`'s batch. `retry`: retriable
/// enqueue errors are retried in place (else returned as [`Unsent::Failed`]).
pub(super) async fn send<P: Output>(
    producer: &P,
    record: Record<'_>,
    ticket: &Ticket,
    index: usize,
    retry: bool,
    wait: &mut impl Wait,
) -> Result<(), Unsent> {
    // Another batch sends a record alone: wait as for a full queue (before the record
    // counts as waiting for its report: the other waits for those to come).
    while ticket.held_back() {
        if !wait.wait(FULL_PAUSE).await {
            return Err(Unsent::Stopped);
        }
    }
    let opaque = ticket.expect(index);
    let result = loop {
        let pause = match producer.enqueue(record, opaque) {
            Enqueued::Queued => break Ok(()),
            Enqueued::QueueFull => FULL_PAUSE,
            Enqueued::Failed(Outcome::Permanent(e)) => break Err(Unsent::Refused(e.to_string())),
            Enqueued::Failed(Outcome::Fatal(reason)) => break Err(Unsent::Fatal(reason)),
            Enqueued::Failed(Outcome::Retry(e)) if !retry => break Err(Unsent::Failed(e)),
            Enqueued::Failed(Outcome::Retry(e)) => {
                // Counted and logged with the failed deliveries, for the whole process.
                match producer.retry_log() {
                    Some(log) => telemetry::emit(telemetry::events::EnqueueRetried {
                        log,
                        topic: record.topic(),
                        error: e.to_string(),
                    }),
                    None => tracing::debug!(topic = record.topic(), "enqueue failed: {e}"),
                }
                RETRY_PAUSE
            }
        };
        if !wait.wait(pause).await {
            break Err(Unsent::Stopped);
        }
    };
    if result.is_err() {
        ticket.unsent();
    }
    result
}

/// Sends `record` alone: once no other batch sends and no other record waits for its
/// report, so that it shares no produce request with another (a request refused whole —
/// too large, an invalid record — names every record in it, though one was at fault);
/// returns once its report came (its failure, if any, in the ticket's next
/// [`Ticket::settled`]). Refused so, the record is refused for good.
pub(super) async fn alone<P: Output>(
    producer: &P,
    record: Record<'_>,
    ticket: &Ticket,
    index: usize,
    retry: bool,
    wait: &mut impl Wait,
) -> Result<(), Unsent> {
    let _alone = loop {
        if let Some(alone) = ticket.alone() {
            break alone;
        }
        if !wait.wait(FULL_PAUSE).await {
            return Err(Unsent::Stopped);
        }
    };
    while ticket.outstanding() > 0 {
        if !wait.wait(FULL_PAUSE).await {
            return Err(Unsent::Stopped);
        }
    }
    send(producer, record, ticket, index, retry, wait).await?;
    // Until its report came (cut short, it comes to the ticket all the same).
    while ticket.outstanding() > 0 && wait.wait(FULL_PAUSE).await {}
    Ok(())
}

impl Record<'_> {
    fn topic(&self) -> &str {
        use rdkafka::message::Message;
        match self {
            Record::New(o) => &o.topic,
            Record::Again(m) => m.topic(),
        }
    }
}
