//! The pipeline's producer: delivery reports served by the task that sends.
//!
//! librdkafka allocates a record's message and headers on the thread that enqueues it and
//! frees them when its delivery report is served. rust-rdkafka's `ThreadedProducer`
//! serves the reports on a thread of its own, so every record's memory was freed on
//! another thread than the one that allocated it — with mimalloc, a cross-thread free
//! and a later collection by the owner, a visible share of the filter's CPU under load
//! (`perf` on the running filter). Here the sending task serves them
//! ([`Producer::serve`]) and waits for them ([`Producer::reports`]), woken by librdkafka
//! when its report queue stops being empty (`rd_kafka_queue_cb_event_enable`, the
//! mechanism rust-rdkafka's stream consumer uses).
//!
//! A fallback thread serves the reports when the task has not for [`FALLBACK`] while
//! some wait (the task blocked in a transaction commit, or gone): no report waits on the
//! task for long, whatever it does.

use super::native::Native;
use super::Context;
use futures::task::AtomicWaker;
use rdkafka::bindings as rd;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::ToBytes;
use rdkafka::producer::BaseRecord;
use rdkafka::producer::{BaseProducer, Producer as _, ProducerContext};
use rdkafka::ClientConfig;
use std::ffi::c_void;
use std::future::Future;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

/// How long reports may wait for the sending task before the fallback thread serves them.
pub const FALLBACK: Duration = Duration::from_millis(10);

/// The most report events served in one [`Producer::serve`] (each holds the reports of
/// one produce response): the rest wake the task again.
const SERVE_EVENTS: usize = 64;

/// An idempotent (or transactional) librdkafka producer whose delivery reports are
/// served by the task that sends. Dereferences to rust-rdkafka's `BaseProducer`.
pub struct Producer {
    inner: Arc<Inner>,
    fallback: Option<std::thread::JoinHandle<()>>,
}

struct Inner {
    // Declared first: dropped (callback disabled, handle destroyed) before the client.
    queue: MainQueue,
    signal: Arc<Signal>,
    base: BaseProducer<Context>,
}

/// What librdkafka's callback, the task and the fallback thread share.
#[derive(Default)]
struct Signal {
    /// The task waiting in [`Producer::reports`].
    waker: AtomicWaker,
    /// [`Producer::serve`] calls, for the fallback to see the task at work.
    served: AtomicU64,
    stop: AtomicBool,
}

/// A handle on the producer's main queue, where librdkafka puts its delivery reports
/// (destroyed by its [`Native`] once the callback is disabled).
struct MainQueue(Native<rd::rd_kafka_queue_t>);

// SAFETY: librdkafka's queues are thread-safe, and the handle is destroyed once, when the
// `Native` drops.
unsafe impl Send for MainQueue {}
// SAFETY: as for `Send`: every call on the handle is thread-safe in librdkafka.
unsafe impl Sync for MainQueue {}

impl MainQueue {
    fn len(&self) -> usize {
        // SAFETY: the handle is valid until the `Native` drops.
        unsafe { rd::rd_kafka_queue_length(self.0.ptr()) }
    }
}

impl Drop for MainQueue {
    fn drop(&mut self) {
        // SAFETY: the handle is valid (the `Native` drops after this); after the disable
        // no callback runs (librdkafka calls it and changes it under the queue's lock), so
        // `Signal` may go.
        unsafe { rd::rd_kafka_queue_cb_event_enable(self.0.ptr(), None, std::ptr::null_mut()) }
    }
}

/// Called by librdkafka, on one of its threads and under the queue's lock, when a report
/// arrives in an empty queue. Only wakes.
unsafe extern "C" fn on_report(_: *mut rd::rd_kafka_t, opaque: *mut c_void) {
    // SAFETY: `opaque` is the `Signal` of the queue's `Inner`, alive until the callback
    // is disabled in `MainQueue::drop`.
    let signal = unsafe { &*(opaque as *const Signal) };
    signal.waker.wake();
}

impl FromClientConfigAndContext<Context> for Producer {
    fn from_config_and_context(config: &ClientConfig, context: Context) -> KafkaResult<Producer> {
        Producer::create(config, context, Some(FALLBACK))
    }
}

impl Producer {
    /// The producer, with a fallback thread that serves reports left waiting for
    /// `fallback` (none: only the task serves them).
    fn create(
        config: &ClientConfig,
        context: Context,
        fallback: Option<Duration>,
    ) -> KafkaResult<Producer> {
        let base = BaseProducer::from_config_and_context(config, context)?;
        let signal = Arc::new(Signal::default());
        // SAFETY: the client is valid; the handle `rd_kafka_queue_get_main` returns is
        // ours to destroy (with `rd_kafka_queue_destroy`, by the `Native`); it lives in
        // `Inner` beside the client and is destroyed first; the opaque is the `Signal`
        // that `Inner` holds.
        let queue = unsafe {
            let main = rd::rd_kafka_queue_get_main(base.client().native_ptr());
            let q = Native::from_ptr(main, rd::rd_kafka_queue_destroy).map(MainQueue);
            let q = q.ok_or_else(|| {
                rdkafka::error::KafkaError::ClientCreation("no main queue".into())
            })?;
            rd::rd_kafka_queue_cb_event_enable(
                q.0.ptr(),
                Some(on_report),
                Arc::as_ptr(&signal) as *mut c_void,
            );
            q
        };
        let inner = Arc::new(Inner {
            queue,
            signal,
            base,
        });
        let fallback = match fallback {
            None => None,
            Some(period) => {
                let inner = inner.clone();
                let thread = std::thread::Builder::new()
                    .name("producer reports".into())
                    .spawn(move || inner.fallback(period))
                    .map_err(|e| {
                        rdkafka::error::KafkaError::ClientCreation(format!(
                            "cannot start the producer's report thread: {e}"
                        ))
                    })?;
                Some(thread)
            }
        };
        Ok(Producer { inner, fallback })
    }
}

impl Inner {
    /// Serves the waiting report events, at most `SERVE_EVENTS` of them.
    fn serve(&self) {
        self.signal.served.fetch_add(1, Ordering::Relaxed);
        for _ in 0..SERVE_EVENTS {
            if self.queue.len() == 0 {
                break;
            }
            self.base.poll(Duration::ZERO);
        }
    }

    /// The fallback thread: every `period`, serves the reports if the task has not
    /// served since the last look.
    fn fallback(&self, period: Duration) {
        let mut seen = self.signal.served.load(Ordering::Relaxed);
        while !self.signal.stop.load(Ordering::Relaxed) {
            std::thread::park_timeout(period);
            let served = self.signal.served.load(Ordering::Relaxed);
            if served == seen && self.queue.len() > 0 {
                self.serve();
                seen = self.signal.served.load(Ordering::Relaxed);
            } else {
                seen = served;
            }
        }
    }
}

impl Producer {
    /// Serves the delivery reports that arrived (each one [`Context`]'s `delivery`), on
    /// the calling thread.
    pub fn serve(&self) {
        self.inner.serve();
    }

    /// Resolves when delivery reports wait to be served ([`Producer::serve`]).
    pub fn reports(&self) -> impl Future<Output = ()> + Send + '_ {
        std::future::poll_fn(move |cx| {
            if self.inner.queue.len() > 0 {
                return Poll::Ready(());
            }
            self.inner.signal.waker.register(cx.waker());
            // A report that came between the look and the registration woke no one.
            if self.inner.queue.len() > 0 {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }

    /// Awaits `f`, serving the delivery reports meanwhile (on the calling task).
    pub async fn serving<F: Future>(&self, f: F) -> F::Output {
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

/// What became of a record handed to the producer, or of its delivery: the one
/// classification of the producer's errors.
#[derive(Debug)]
pub enum Outcome {
    /// Sending again may succeed (a timeout, a broker away, an unknown topic).
    Retry(KafkaError),
    /// The broker (or the client) refuses this record for good: too large, invalid.
    Permanent(KafkaError),
    /// The producer failed for good: nothing it holds will be delivered.
    Fatal(String),
}

/// The error, or the reason the producer failed for good.
impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Retry(e) | Outcome::Permanent(e) => e.fmt(f),
            Outcome::Fatal(reason) => f.write_str(reason),
        }
    }
}

/// What came of an enqueue.
#[derive(Debug)]
pub enum Enqueued {
    Queued,
    /// The producer's queue is full: serve the reports, then try again.
    QueueFull,
    Failed(Outcome),
}

/// Delivery errors that retrying cannot fix: the record itself is refused by the broker.
pub fn is_permanent(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidMessageSize
                | RDKafkaErrorCode::InvalidMessage
                | RDKafkaErrorCode::InvalidRecord
        )
    )
}

/// Classifies a producer error, given the producer's fatal error if it has one (every
/// later send fails the same way and only a new producer recovers: the filter stops
/// rather than retry forever).
///
/// A record refused because the producer is fenced (`PRODUCER_FENCED` from the broker, or
/// librdkafka's own `Fenced`) is fatal too, even when librdkafka has not raised a fatal
/// error for it (an idempotent, non-transactional producer): another producer holds its
/// identity, and every later send would be refused the same way.
pub fn classify(fatal: Option<String>, e: KafkaError) -> Outcome {
    if let Some(reason) = fatal {
        return Outcome::Fatal(reason);
    }
    if matches!(
        e.rdkafka_error_code(),
        Some(RDKafkaErrorCode::Fatal | RDKafkaErrorCode::Fenced | RDKafkaErrorCode::ProducerFenced)
    ) {
        return Outcome::Fatal(e.to_string());
    }
    if is_permanent(&e) {
        Outcome::Permanent(e)
    } else {
        Outcome::Retry(e)
    }
}

impl Producer {
    /// The producer's fatal error, if it has one.
    pub fn fatal_error(&self) -> Option<String> {
        fatal_error(self)
    }

    /// The one send path: enqueues `record`, the outcome classified.
    pub fn enqueue<K, P>(&self, record: BaseRecord<'_, K, P, usize>) -> Enqueued
    where
        K: ToBytes + ?Sized,
        P: ToBytes + ?Sized,
    {
        enqueue(self, record)
    }
}

/// The fatal error of any producer, if it has one.
fn fatal_error<C: ProducerContext>(producer: &BaseProducer<C>) -> Option<String> {
    producer
        .client()
        .fatal_error()
        .map(|(code, reason)| format!("{reason} ({code})"))
}

/// The one send path, on any producer (the pipeline's, `gen`'s): enqueues `record`, the
/// outcome classified ([`classify`]).
pub fn enqueue<C, K, P>(
    producer: &BaseProducer<C>,
    record: BaseRecord<'_, K, P, C::DeliveryOpaque>,
) -> Enqueued
where
    C: ProducerContext,
    K: ToBytes + ?Sized,
    P: ToBytes + ?Sized,
{
    match producer.send(record) {
        Ok(()) => Enqueued::Queued,
        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => Enqueued::QueueFull,
        Err((e, _)) => Enqueued::Failed(classify(fatal_error(producer), e)),
    }
}

impl Deref for Producer {
    type Target = BaseProducer<Context>;

    fn deref(&self) -> &BaseProducer<Context> {
        &self.inner.base
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.inner.signal.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.fallback.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;
    use rdkafka::mocking::MockCluster;
    use rdkafka::producer::{BaseRecord, DefaultProducerContext};

    fn config(bootstrap: &str) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", bootstrap)
            .set("enable.idempotence", "true");
        c
    }

    /// `work`'s output, or a panic after 30 s. The deadline is looked at first: its
    /// timer's wake-up must not rescue a task that nothing else woke.
    async fn within_30s<F: Future>(what: &str, work: F) -> F::Output {
        tokio::select! {
            biased;
            _ = tokio::time::sleep(Duration::from_secs(30)) => panic!("{what}: not within 30 s"),
            out = work => out,
        }
    }

    /// A mock cluster with the topic, and a producer on it (`fallback`: see `create`).
    fn producer(
        fallback: Option<Duration>,
    ) -> (
        MockCluster<'static, DefaultProducerContext>,
        Context,
        Producer,
    ) {
        let mock = MockCluster::new(1).unwrap();
        mock.create_topic("cdr.billing", 1, 1).unwrap();
        let context = Context::default();
        let producer = Producer::create(
            &config(&mock.bootstrap_servers()),
            context.clone(),
            fallback,
        )
        .unwrap();
        (mock, context, producer)
    }

    /// A record refused because the producer is fenced stops the filter (fatal) even when
    /// librdkafka raised no fatal error — an idempotent producer refused `PRODUCER_FENCED`
    /// by the broker retried it forever; other refusals stay retried.
    #[test]
    fn a_fenced_producer_is_fatal_without_a_fatal_error() {
        for code in [RDKafkaErrorCode::ProducerFenced, RDKafkaErrorCode::Fenced] {
            let outcome = classify(None, KafkaError::MessageProduction(code));
            assert!(
                matches!(outcome, Outcome::Fatal(_)),
                "{code:?}: {outcome:?}"
            );
        }
        let timed_out = KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut);
        assert!(matches!(classify(None, timed_out), Outcome::Retry(_)));
    }

    /// Sends `n` records under a new ticket of `context`.
    fn send(producer: &Producer, context: &Context, n: usize) -> crate::kafka::acks::Ticket {
        let ticket = context.acks.ticket();
        for i in 0..n {
            let record = BaseRecord::with_opaque_to("cdr.billing", ticket.expect(i))
                .payload("an output")
                .key("k");
            producer.send(record).map_err(|(e, _)| e).unwrap();
        }
        ticket
    }

    /// Without any thread of its own, the producer's reports reach the task that waits
    /// for them: woken when one arrives, it serves them, and the batch completes.
    #[tokio::test(flavor = "current_thread")]
    async fn the_waiting_task_is_woken_and_serves_the_reports() {
        let (_mock, context, producer) = producer(None);
        let ticket = send(&producer, &context, 500);
        let settled = within_30s("every report served by this task", async {
            loop {
                if let Some(failures) = ticket.settled().now_or_never() {
                    return failures;
                }
                producer.reports().await;
                producer.serve();
            }
        })
        .await;
        assert!(settled.is_empty(), "all delivered");
        assert_eq!(producer.inner.queue.len(), 0);
    }

    /// A task that never serves (blocked elsewhere) does not hold the reports: the
    /// fallback thread serves them.
    #[tokio::test(flavor = "current_thread")]
    async fn reports_no_task_serves_are_served_by_the_fallback() {
        let (_mock, context, producer) = producer(Some(Duration::from_millis(5)));
        let ticket = send(&producer, &context, 500);
        let failures = within_30s("served by the fallback", ticket.settled()).await;
        assert!(failures.is_empty(), "all delivered");
    }

    /// `serving` completes what it awaits while it serves the reports that work needs.
    #[tokio::test(flavor = "current_thread")]
    async fn serving_awaits_a_batch_that_needs_its_reports() {
        let (_mock, context, producer) = producer(None);
        let ticket = send(&producer, &context, 100);
        let failures =
            within_30s("settled while serving", producer.serving(ticket.settled())).await;
        assert!(failures.is_empty());
    }
}
