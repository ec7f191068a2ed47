//! The floor: a minimal pass-through written separately from the filter's pipeline — it
//! shares none of its code. It consumes an input topic in a consumer group and hands each
//! record's key, value and timestamp, as slices, unchanged to a producer for two output
//! topics; it awaits nothing: a `ThreadedProducer` whose delivery callback only counts,
//! offsets stored as records are read and committed by librdkafka every
//! `commit_interval_ms`. It stops when the delivery callback has counted both copies of
//! every input record acknowledged by the broker (written: readable). It prints events/s
//! and the process's CPU time per event (user + system, from `/proc/self/stat`, every
//! thread of the process: librdkafka's included).
//!
//! This is the least any consume → produce-twice program does with librdkafka; the
//! filter's pipeline (`run`) must also decode, filter, encode, add headers, and store an
//! offset only once its outputs are acknowledged. A ratio of `run` to this floor is
//! therefore ≥ 1 in CPU per event unless the filter writes less than the floor copies
//! (it does: the outputs are smaller than the input).
//!
//! It loads its own input first (N generated protobuf events, `FLOOR_EVENTS`, default
//! 200,000, into a fresh 3-partition topic), unless `FLOOR_INPUT=topic:N` names an
//! existing topic holding N records — e.g. the input `benches/e2e.rs` loaded, so that
//! both measure the same records on the same broker.
//!
//! Settings are those of the filter's benchmark configuration: `fetch.wait.max.ms=10`,
//! idempotent producer, `linger.ms=5`, and the filter's memory bounds (a 16 MiB prefetch
//! fetched again after 20 ms, a 32 MiB producer queue holding at most twice the filter's
//! default records in flight, `FLOOR_QUEUE_MESSAGES`) — librdkafka's defaults (64 MiB,
//! 1 s, 1 GiB, 100,000 messages) made the floor slower and costlier per event than the
//! filter's own pass-through on the same records. And the filter's allocator, mimalloc,
//! for Rust and for librdkafka alike (see `GLOBAL`): with glibc's, the floor still cost
//! more CPU per event than that pass-through.
//!
//! `FLOOR_HEADERS=1`: each copy also carries five fixed headers the size of the
//! contract's (`cdr-purpose`, `cdr-expires-at`, `cdr-legal-basis`, `cdr-policy-version`,
//! `content-type`), each copy a clone of one prepared list. Not what the headers cost:
//! the clones are freed on the `ThreadedProducer`'s polling thread, and mimalloc's
//! collection of blocks freed by another thread is half of this floor's CPU
//! (docs/performance.md).
//!
//! `FLOOR_OUTPUTS=A,B` names the two output topics (created by the floor).
//!
//! `FLOOR_DONE=PATH`: the file is created once every copy is acknowledged, so that a
//! harness following the floor from outside sees the same end as the filter's (all
//! outputs readable), not the committed offsets, which the floor stores as it reads.
//!
//! `CDR_TEST_BROKERS=$(scripts/test-broker.sh start) cargo bench --bench floor`
//!
//! `benches/e2e.rs` runs this same code as a separate process (its own binary re-run with
//! `E2E_ROLE=floor`), measured from outside exactly like the filter.

use cdr_purpose_filter::alloc_count::{self, Counting};
use cdr_purpose_filter::encode::{self, OutputFormat};
use cdr_purpose_filter::gen::Generator;
use chrono::Utc;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{
    BaseRecord, DeliveryResult, FutureProducer, FutureRecord, Producer, ProducerContext,
    ThreadedProducer,
};
use rdkafka::ClientConfig;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The filter's allocator, mimalloc, counted: the floor reports its allocations per event
/// beside the filter's (`benches/e2e.rs` includes this file, so its binary counts too).
/// The allocator is a choice of the process, not work of the pipeline: with glibc's,
/// librdkafka's `malloc`/`free` of every message (freed on its report thread) made the
/// floor cost more CPU per event than the filter's own pass-through, whose binary
/// overrides `malloc` with mimalloc. Naming mimalloc here links its override too, so
/// librdkafka's allocations in this binary are mimalloc's as in the filter's.
#[global_allocator]
static GLOBAL: Counting<mimalloc::MiMalloc> = Counting(mimalloc::MiMalloc);

const PARTITIONS: i32 = 3;
const BATCH: usize = 1000;

fn brokers() -> String {
    std::env::var("CDR_TEST_BROKERS")
        .expect("CDR_TEST_BROKERS is not set: start a broker with scripts/test-broker.sh start")
}

fn client() -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers());
    c
}

/// User + system CPU time of this process so far, in microseconds.
fn cpu_us() -> u64 {
    process_cpu_us("self")
}

/// User + system CPU time of process `pid` (or `self`) so far, every thread, in
/// microseconds.
pub fn process_cpu_us(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // Fields after the command name (which may hold spaces): utime is the 14th field,
    // stime the 15th, in clock ticks.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // USER_HZ is 100 on Linux for every architecture this runs on.
    ticks * 10_000
}

async fn create(topics: &[String]) {
    let admin: AdminClient<DefaultClientContext> = client().create().unwrap();
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| NewTopic::new(t, PARTITIONS, TopicReplication::Fixed(1)))
        .collect();
    for r in admin
        .create_topics(&new, &AdminOptions::new())
        .await
        .unwrap()
    {
        r.unwrap();
    }
}

async fn load(topic: &str, n: u64) {
    let p: FutureProducer = client()
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "500000")
        .create()
        .unwrap();
    let mut g = Generator::new(2026, Utc::now());
    let mut buf = Vec::with_capacity(1024);
    let mut pending = Vec::with_capacity(BATCH);
    for _ in 0..n {
        let e = g.next_event();
        encode::encode_event(&e, OutputFormat::Protobuf, &mut buf).unwrap();
        pending.push(
            p.send_result(FutureRecord::to(topic).key(&e.event_id).payload(&buf))
                .map_err(|(e, _)| e)
                .unwrap(),
        );
        if pending.len() == BATCH {
            for d in futures::future::join_all(pending.drain(..)).await {
                d.unwrap().map_err(|(e, _)| e).unwrap();
            }
        }
    }
    for d in futures::future::join_all(pending.drain(..)).await {
        d.unwrap().map_err(|(e, _)| e).unwrap();
    }
    p.flush(Duration::from_secs(60)).unwrap();
}

/// Where the floor reads and writes, and how it reports.
pub struct Run {
    pub input: String,
    /// Records in `input`: the floor stops when each one's two copies are acknowledged.
    pub n: u64,
    pub group: String,
    pub outputs: [String; 2],
    /// Offsets committed every this many ms (librdkafka's auto-commit of consumed
    /// positions), so that a harness can follow the progress from outside, like the
    /// filter's.
    pub commit_interval_ms: u64,
    /// Five fixed headers on every copy (`FLOOR_HEADERS`).
    pub headers: bool,
    /// Created once every copy is acknowledged (`FLOOR_DONE`).
    pub done: Option<std::path::PathBuf>,
}

/// Five headers of the contract's names and typical sizes, fixed.
fn contract_headers() -> OwnedHeaders {
    [
        ("cdr-purpose", "security"),
        ("cdr-expires-at", "2027-02-28T10:00:00Z"),
        ("cdr-legal-basis", "CPCE R10-14 IV"),
        ("cdr-policy-version", "R10-14/2021"),
        ("content-type", "application/x-protobuf"),
    ]
    .into_iter()
    .fold(OwnedHeaders::new_with_capacity(5), |h, (key, value)| {
        h.insert(Header {
            key,
            value: Some(value),
        })
    })
}

/// Wall and CPU time from the first record received to the last copy acknowledged.
pub struct Measured {
    pub wall: Duration,
    pub cpu_us: u64,
    /// Allocations of the process over the same span (every thread).
    pub allocations: u64,
}

/// The floor's producer context: the delivery callback counts, and does nothing else.
#[derive(Default)]
struct Counted {
    delivered: AtomicU64,
    failed: AtomicU64,
}

#[derive(Clone, Default)]
struct Counter(Arc<Counted>);

impl ClientContext for Counter {}

impl ProducerContext for Counter {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.0.delivered.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.0.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

/// Hands one copy to the producer; while its queue is full, waits for its own thread to
/// serve deliveries (the only wait the floor has: librdkafka's queue bound).
fn send_copy(producer: &ThreadedProducer<Counter>, mut record: BaseRecord<'_, [u8], [u8]>) {
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                std::thread::sleep(Duration::from_micros(200));
            }
            Err((e, _)) => panic!("floor: send: {e}"),
        }
    }
}

/// The most copies in the producer's queue: `FLOOR_QUEUE_MESSAGES`, or twice the
/// filter's default `delivery.max_in_flight` (two outputs per input record).
fn queue_messages() -> usize {
    std::env::var("FLOOR_QUEUE_MESSAGES")
        .ok()
        .map(|v| v.parse().expect("FLOOR_QUEUE_MESSAGES is a number"))
        .unwrap_or(2 * cdr_purpose_filter::config::DeliverySection::default().max_in_flight)
}

/// The floor's consumer: in `run.group`, offsets stored as read and auto-committed every
/// `run.commit_interval_ms`, with the filter's fetch settings.
fn consumer(run: &Run) -> BaseConsumer {
    client()
        .set("group.id", &run.group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "true")
        .set(
            "auto.commit.interval.ms",
            run.commit_interval_ms.to_string(),
        )
        .set("fetch.wait.max.ms", "10")
        // The filter's memory bounds (its defaults in at-least-once), so that both hold
        // the same queues: a 16 MiB prefetch, fetching again 20 ms after the local queue
        // went over it (librdkafka: 64 MiB, then 1 s).
        .set("queued.max.messages.kbytes", "16384")
        .set("fetch.queue.backoff.ms", "20")
        .create()
        .unwrap()
}

/// The floor's producer: idempotent, `linger.ms` 5, its reports counted by `counter`.
fn producer(counter: &Counter) -> ThreadedProducer<Counter> {
    client()
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        // And a 32 MiB producer queue (librdkafka: 1 GiB), holding at most as many copies
        // as the filter holds outputs in flight: two per input record, for its default
        // `delivery.max_in_flight` (librdkafka: 100,000). A deeper queue costs librdkafka
        // CPU per record and throughput; `FLOOR_QUEUE_MESSAGES` sets another bound.
        .set("queue.buffering.max.kbytes", "32768")
        .set("queue.buffering.max.messages", queue_messages().to_string())
        .create_with_context(counter.clone())
        .unwrap()
}

/// The pass-through itself: consume `run.input` in `run.group`, hand every record
/// unchanged to both outputs without awaiting anything, stop once the delivery callback
/// counted `2 × run.n` acknowledged copies, then commit. The outputs exist already.
pub fn pass_through(run: &Run) -> Measured {
    let consumer = consumer(run);
    let counter = Counter::default();
    let producer = producer(&counter);
    consumer.subscribe(&[run.input.as_str()]).unwrap();
    let headers = run.headers.then(contract_headers);
    let mut seen = 0u64;
    let mut started: Option<(u64, Instant, u64)> = None;
    while seen < run.n {
        let Some(msg) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let msg = msg.expect("consume");
        // The clock starts with the first record: the group join is not the floor's work.
        started.get_or_insert_with(|| (cpu_us(), Instant::now(), alloc_count::process()));
        for topic in &run.outputs {
            let mut record = BaseRecord::to(topic).payload(msg.payload().unwrap_or_default());
            // The input record's timestamp, as the filter stamps its outputs: without one
            // librdkafka reads the clock for every copy.
            if let Some(ms) = msg.timestamp().to_millis() {
                record = record.timestamp(ms);
            }
            if let Some(k) = msg.key() {
                record = record.key(k);
            }
            if let Some(h) = &headers {
                record = record.headers(h.clone());
            }
            send_copy(&producer, record);
        }
        seen += 1;
    }
    let expected = 2 * run.n;
    while counter.0.delivered.load(Ordering::Relaxed) + counter.0.failed.load(Ordering::Relaxed)
        < expected
    {
        // Served by the producer's own thread; the consumer is kept in its group.
        consumer.poll(Duration::from_millis(1));
    }
    let (cpu0, t0, allocations0) = started.expect("at least one record");
    let measured = Measured {
        wall: t0.elapsed(),
        cpu_us: cpu_us() - cpu0,
        allocations: alloc_count::process() - allocations0,
    };
    let failed = counter.0.failed.load(Ordering::Relaxed);
    assert_eq!(failed, 0, "floor: {failed} copies were not delivered");
    if let Some(done) = &run.done {
        // The harness reads the allocations of the span from it.
        let tmp = done.with_extension("tmp");
        std::fs::write(&tmp, measured.allocations.to_string()).expect("write FLOOR_DONE");
        std::fs::rename(&tmp, done).expect("write FLOOR_DONE");
    }
    // Auto-commit may already have committed every stored offset: nothing left is fine.
    match consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync) {
        Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
        Err(e) => panic!("floor: commit the offsets: {e}"),
    }
    measured
}

/// `FLOOR_INPUT=topic:N`, or N (`FLOOR_EVENTS`, default 200,000) events loaded now.
async fn input(stamp: &str) -> (String, u64) {
    match std::env::var("FLOOR_INPUT") {
        Ok(spec) => {
            let (t, n) = spec.rsplit_once(':').expect("FLOOR_INPUT=topic:N");
            (
                t.to_string(),
                n.parse::<u64>().expect("FLOOR_INPUT=topic:N"),
            )
        }
        Err(_) => {
            let n = std::env::var("FLOOR_EVENTS")
                .ok()
                .map(|v| v.parse().expect("FLOOR_EVENTS is a number"))
                .unwrap_or(200_000);
            let input = format!("floor-raw-{stamp}");
            create(std::slice::from_ref(&input)).await;
            eprintln!("floor: loading {n} events into {input}");
            load(&input, n).await;
            (input, n)
        }
    }
}

#[tokio::main]
pub async fn main() {
    let stamp = format!("{}-{}", std::process::id(), Utc::now().timestamp());
    let (input, n) = input(&stamp).await;
    let run = Run {
        input,
        n,
        group: std::env::var("FLOOR_GROUP").unwrap_or_else(|_| format!("floor-{stamp}")),
        outputs: match std::env::var("FLOOR_OUTPUTS") {
            Ok(names) => {
                let (a, b) = names.split_once(',').expect("FLOOR_OUTPUTS=A,B");
                [a.to_string(), b.to_string()]
            }
            Err(_) => [format!("floor-a-{stamp}"), format!("floor-b-{stamp}")],
        },
        commit_interval_ms: 100,
        headers: std::env::var_os("FLOOR_HEADERS").is_some(),
        done: std::env::var_os("FLOOR_DONE").map(Into::into),
    };
    create(&run.outputs).await;
    let m = tokio::task::block_in_place(|| pass_through(&run));
    println!(
        "floor: {n} events, {:.0} events/s, {:.1} CPU-µs/event, {:.2} allocations/event ({:.2} s wall, {:.2} s CPU)",
        n as f64 / m.wall.as_secs_f64(),
        m.cpu_us as f64 / n as f64,
        m.allocations as f64 / n as f64,
        m.wall.as_secs_f64(),
        m.cpu_us as f64 / 1e6,
    );
    // A harness following the progress from outside (`benches/e2e.rs`) stops this
    // process itself once it saw every offset committed.
    if std::env::var_os("FLOOR_WAIT").is_some() {
        std::future::pending::<()>().await;
    }
}
