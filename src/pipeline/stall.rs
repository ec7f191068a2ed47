//! Back-pressure that keeps the member in its group: while the outputs are not
//! acknowledged fast enough (the producer's queue is full, or `delivery.max_in_flight`
//! records await their acknowledgement) the engine takes no new record, but it keeps
//! polling the consumer — heartbeats, rebalances and `max.poll.interval.ms` are served —
//! with the assigned partitions paused, so that the poll returns no record.
//!
//! A short stall (less than [`PAUSE_AFTER`]) only stops taking records: pausing drops
//! what librdkafka prefetched, which a busy filter would fetch again at every burst.
//! Past it the partitions are paused and the stall is published ([`Health`]
//! `output_stalled_since`, read by `/readyz` and the `cdr_output_stalled` gauge). A
//! record that still arrives (a partition assigned during the stall, not paused yet) is
//! not taken: its partition is paused and sought back to it, so it is read again on
//! resume. The partitions are resumed when the outputs move again.

use super::boundary::Input;
use crate::health::{unix_millis, Health};
use rdkafka::error::KafkaResult;
use rdkafka::message::Message;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::Instant;

/// How long the outputs may stall before the input partitions are paused.
pub(super) const PAUSE_AFTER: Duration = Duration::from_secs(1);

/// The state of a stall on the outputs.
#[derive(Default)]
pub(super) struct Stall {
    /// When the current stall began; `None` while the outputs move.
    since: Option<Instant>,
    /// The assigned partitions are paused (the consumer is polled for its events only).
    paused: bool,
}

impl Stall {
    /// The outputs cannot take more: the stall begins (or goes on).
    pub(super) fn begin(&mut self) {
        self.since.get_or_insert_with(Instant::now);
    }

    /// Whether the partitions are paused: the consumer is polled, what it returns is
    /// [`Stall::hold_back`]'s.
    pub(super) fn paused(&self) -> bool {
        self.paused
    }

    /// When the partitions are to be paused: never while the outputs move or once paused.
    pub(super) fn pause_at(&self) -> Option<Instant> {
        match (self.since, self.paused) {
            (Some(since), false) => Some(since + PAUSE_AFTER),
            _ => None,
        }
    }

    /// Pauses the assigned partitions and publishes the stall.
    pub(super) fn pause(&mut self, consumer: &impl Input, health: &Health) {
        if let Err(e) = consumer.assignment().and_then(|a| consumer.pause(&a)) {
            tracing::debug!("pausing the input partitions failed: {e}");
        }
        self.paused = true;
        health
            .output_stalled_since
            .store(unix_millis(), Ordering::SeqCst);
        tracing::info!(
            "outputs stalled: the input partitions are paused until the outputs are acknowledged (the consumer is still polled)"
        );
    }

    /// A record (or an error) the consumer returned while paused: not taken. Its
    /// partition is paused and sought back to it, so that it is read again on resume.
    pub(super) fn hold_back<M: Message>(&mut self, consumer: &impl Input, m: KafkaResult<M>) {
        let m = match m {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!("consumer error while the outputs are stalled: {e}");
                return;
            }
        };
        let (topic, partition, offset) = (m.topic().to_string(), m.partition(), m.offset());
        drop(m);
        let sought = consumer
            .pause(&[(topic.clone(), partition)])
            .and_then(|()| consumer.seek(&topic, partition, offset));
        if let Err(e) = sought {
            // Revoked meanwhile: its next owner reads it from the committed offset.
            tracing::debug!(%topic, partition, offset, "record not held back: {e}");
        }
    }

    /// The outputs move again: the paused partitions are resumed.
    pub(super) fn over(&mut self, consumer: &impl Input, health: &Health) {
        if self.since.take().is_none() || !self.paused {
            return;
        }
        self.paused = false;
        let since = health.output_stalled_since.swap(0, Ordering::SeqCst);
        if let Err(e) = consumer.assignment().and_then(|a| consumer.resume(&a)) {
            tracing::warn!("resuming the input partitions failed: {e}");
        }
        tracing::info!(
            stalled_ms = unix_millis().saturating_sub(since),
            "outputs moving again: the input partitions are resumed"
        );
    }
}
