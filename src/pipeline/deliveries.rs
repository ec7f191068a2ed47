//! At least once, one batch's deliveries awaited ([`await_batch`]): failures sent again
//! with backoff, outputs refused in a request with others sent again alone, and an
//! input with an output refused for good made one dead letter.

use super::batch::{refusal, refused_dead_letter, Batch, Sent};
use super::boundary::{Output, Record as Out};
use super::clients::backoff;
use super::offsets::{Completion, Done};
use super::records::Transform;
use super::send::{self, Sleep, Unsent};
use crate::kafka::acks::{FailedDelivery, Ticket};
use crate::kafka::producer::{classify, Outcome};
use crate::kafka::Context;
use crate::telemetry::{self, Stats};
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedMessage;
use std::ops::ControlFlow;
use std::sync::Arc;

/// How a re-send (or a dead letter) of a batch went.
enum Resent {
    /// Enqueued: its report is awaited with the round's.
    Waiting,
    /// The client refused it for good.
    Refused(String),
    /// The producer failed for good.
    Fatal(String),
}

/// Sends a record of a batch again, or its dead letter, at `at` in the round under way
/// (`alone`: in a request of its own, [`send::alone`]); retriable enqueue errors are
/// retried in place, with no deadline (the filter's shutdown drops the batch).
async fn resend<P: Output>(
    producer: &P,
    record: Out<'_>,
    ticket: &Ticket,
    at: usize,
    alone: bool,
) -> Resent {
    let mut wait = Sleep {
        producer,
        until: None,
    };
    let sent = if alone {
        send::alone(producer, record, ticket, at, true, &mut wait).await
    } else {
        send::send(producer, record, ticket, at, true, &mut wait).await
    };
    match sent {
        Ok(()) => Resent::Waiting,
        Err(Unsent::Refused(reason)) => Resent::Refused(reason),
        Err(Unsent::Fatal(reason)) => Resent::Fatal(reason),
        Err(Unsent::Failed(_) | Unsent::Stopped) => unreachable!("retried in place, no deadline"),
    }
}

/// Waits for a batch's deliveries. Failures are re-sent with backoff until they succeed.
/// The outputs of an input refused for good (too large) make that input one dead letter,
/// `output_too_large`, which names the purposes already forwarded (those are not
/// recalled). A producer that failed for good ends the batch as [`Done::Fatal`].
///
/// The deliveries are awaited in rounds: every record sent in a round (the batch's
/// outputs, then its re-sends and dead letters) is counted under the batch's ticket at
/// its index in the round, and the round ends when all their reports came.
pub(super) async fn await_batch<P: Output>(
    producer: Arc<P>,
    context: Context,
    transform: Arc<Transform>,
    stats: Arc<Stats>,
    batch: Batch,
) -> Completion {
    let mut batch = batch;
    let ticket = match batch.ticket.take() {
        Some(t) => t,
        None => context.acks.ticket(),
    };
    let mut rounds = Rounds {
        waiting: std::mem::take(&mut batch.sent),
        refused: std::mem::take(&mut batch.refused),
        spare: None,
        forwarded: Vec::new(),
        dead_lettered: Vec::new(),
        solo: Vec::new(),
        alone: Vec::new(),
        attempt: 0,
        producer,
        context,
        transform,
        stats,
        ticket,
    };
    let done = rounds.run(&batch).await;
    rounds.end(batch, done)
}

/// An output to send again after a failed delivery: (record, topic, the record, why).
type Retry = (usize, Arc<str>, OwnedMessage, KafkaError);

/// The rounds of [`await_batch`]: what one batch's deliveries have come to so far.
struct Rounds<P> {
    producer: Arc<P>,
    context: Context,
    transform: Arc<Transform>,
    stats: Arc<Stats>,
    ticket: Ticket,
    /// The records sent in the current round, awaiting their reports.
    waiting: Vec<Sent>,
    /// Outputs refused for good: (record, topic, why).
    refused: Vec<(usize, Arc<str>, String)>,
    /// The first round's buffer, kept for the next batch.
    spare: Option<Vec<Sent>>,
    /// The outputs acknowledged, by record: named in a dead letter's message.
    forwarded: Vec<(usize, Arc<str>)>,
    /// The records a dead letter was sent for.
    dead_lettered: Vec<usize>,
    /// Outputs refused for good in a request with others, to send again alone: a
    /// request refused whole (too large, an invalid record) names every record in it,
    /// though one was at fault. An output refused when sent alone is refused for good.
    solo: Vec<(usize, Arc<str>, OwnedMessage)>,
    alone: Vec<(usize, Arc<str>)>,
    attempt: u32,
}

impl<P: Output> Rounds<P> {
    /// Runs rounds until every output (or its dead letter) is acknowledged, or the
    /// producer failed for good.
    async fn run(&mut self, batch: &Batch) -> Done {
        loop {
            let flow = if !self.waiting.is_empty() {
                self.settle().await
            } else if let Some(output) = self.solo.pop() {
                self.send_alone(output).await
            } else if self.refused.is_empty() {
                ControlFlow::Break(Done::Acked)
            } else {
                self.dead_letter_refused(batch).await
            };
            if let ControlFlow::Break(done) = flow {
                return done;
            }
        }
    }

    /// Gives the batch its buffers and its ticket back, for the next batch.
    fn end(self, mut batch: Batch, done: Done) -> Completion {
        let mut refused = self.refused;
        if let Some(mut sent) = self.spare {
            sent.clear();
            batch.sent = sent;
        }
        refused.clear();
        batch.refused = refused;
        batch.ticket = Some(self.ticket);
        (batch, done)
    }

    /// Sends an output refused in a request with others again, alone: a request it
    /// shares with another batch's record could be refused whole again.
    async fn send_alone(
        &mut self,
        (record, topic, message): (usize, Arc<str>, OwnedMessage),
    ) -> ControlFlow<Done> {
        self.alone.push((record, topic.clone()));
        match resend(&*self.producer, Out::Again(&message), &self.ticket, 0, true).await {
            Resent::Waiting => self.waiting.push(Sent { record, topic }),
            Resent::Refused(reason) => self.refused.push((record, topic, reason)),
            Resent::Fatal(reason) => return ControlFlow::Break(Done::Fatal(reason)),
        }
        ControlFlow::Continue(())
    }

    /// One dead letter per input, whatever number of its outputs were refused; a
    /// refused dead letter stops the filter.
    async fn dead_letter_refused(&mut self, batch: &Batch) -> ControlFlow<Done> {
        let transform = &self.transform;
        self.refused.sort_by_key(|r| r.0);
        let mut again = Vec::new();
        for group in self.refused.chunk_by(|a, b| a.0 == b.0) {
            let index = group[0].0;
            if self.dead_lettered.contains(&index) {
                let reason = format!(
                    "the dead-letter topic refused a pointer record: {}",
                    group[0].2
                );
                return ControlFlow::Break(Done::Fatal(reason));
            }
            let refused = group.iter().map(|(_, t, why)| (&**t, why.clone()));
            let done = self.forwarded.iter().filter(|(r, _)| *r == index);
            let message = refusal(transform, refused, done.map(|(_, t)| &**t));
            self.dead_lettered.push(index);
            let source = &batch.records[index].source;
            let o = refused_dead_letter(transform, source, message, &self.stats);
            let at = self.waiting.len();
            match resend(&*self.producer, Out::New(&o), &self.ticket, at, false).await {
                Resent::Waiting => self.waiting.push(Sent {
                    record: index,
                    topic: o.topic.clone(),
                }),
                Resent::Refused(reason) => again.push((index, o.topic.clone(), reason)),
                Resent::Fatal(reason) => return ControlFlow::Break(Done::Fatal(reason)),
            }
        }
        self.refused = again;
        ControlFlow::Continue(())
    }

    /// Awaits every report of the round and sorts its failures: refused for good, to
    /// send again alone, to retry.
    async fn settle(&mut self) -> ControlFlow<Done> {
        // Every report of the round, its failures by index.
        let mut failures = self.ticket.settled().await;
        // Which purposes were forwarded matters only to the dead letter of an input with a
        // refused output: one pending now, or one this round's failures may make.
        let track = !self.refused.is_empty() || !failures.is_empty();
        failures.sort_by_key(|f| f.index);
        let mut failures = failures.into_iter().peekable();
        let mut retry = Vec::new();
        let mut answered = false;
        let mut round = std::mem::take(&mut self.waiting);
        for (index, Sent { record, topic }) in round.drain(..).enumerate() {
            let Some(FailedDelivery { error, message, .. }) =
                failures.next_if(|f| f.index == index)
            else {
                answered = true;
                if track && !Arc::ptr_eq(&topic, self.transform.dead_letter_topic()) {
                    self.forwarded.push((record, topic));
                }
                continue;
            };
            match classify(self.producer.fatal_error(), error) {
                Outcome::Fatal(reason) => return ControlFlow::Break(Done::Fatal(reason)),
                Outcome::Permanent(error)
                    if self.alone.iter().any(|(r, t)| *r == record && *t == topic) =>
                {
                    self.refused.push((record, topic, error.to_string()))
                }
                Outcome::Permanent(_) => self.solo.push((record, topic, message)),
                Outcome::Retry(error) => retry.push((record, topic, message, error)),
            }
        }
        if self.spare.is_none() {
            self.spare = Some(round);
        }
        if answered {
            self.context.broker_answered();
        }
        if retry.is_empty() {
            return ControlFlow::Continue(());
        }
        self.retry(retry).await
    }

    /// Sends the failed deliveries of a round again, after a backoff.
    async fn retry(&mut self, retry: Vec<Retry>) -> ControlFlow<Done> {
        self.attempt += 1;
        let attempt = self.attempt;
        tokio::time::sleep(backoff(attempt)).await;
        // One line for the wave, not one per record (a broker refusing every write would
        // log thousands per wave); counted per record.
        telemetry::emit(telemetry::events::ProduceRetries {
            log: &self.context.retry_log,
            retries: retry.iter().map(|(_, t, _, e)| (&**t, e.to_string())),
            attempt,
        });
        for (record, topic, message, _) in retry {
            let at = self.waiting.len();
            match resend(
                &*self.producer,
                Out::Again(&message),
                &self.ticket,
                at,
                false,
            )
            .await
            {
                Resent::Waiting => self.waiting.push(Sent { record, topic }),
                Resent::Refused(reason) => self.refused.push((record, topic, reason)),
                Resent::Fatal(reason) => return ControlFlow::Break(Done::Fatal(reason)),
            }
        }
        ControlFlow::Continue(())
    }
}
