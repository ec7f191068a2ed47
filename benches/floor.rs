//! The floor: a minimal pass-through written separately from the filter's pipeline — it
//! shares none of its code. It consumes an input topic in a consumer group, sends each
//! record unchanged (key, value) to two output topics, and awaits the sends in batches of
//! 1,000; it stops when every input record's two copies are acknowledged by the broker
//! (written: readable). It prints events/s and the process's CPU time per event (user +
//! system, from `/proc/self/stat`, every thread of the process: librdkafka's included).
//!
//! It loads its own input first (N generated protobuf events, `FLOOR_EVENTS`, default
//! 200,000, into a fresh 3-partition topic), unless `FLOOR_INPUT=topic:N` names an
//! existing topic holding N records — e.g. the input `benches/e2e.rs` loaded, so that
//! both measure the same records on the same broker.
//!
//! Settings are those of the comparison: `fetch.wait.max.ms=10`, idempotent
//! producer, `linger.ms=5`.
//!
//! `CDR_TEST_BROKERS=$(scripts/test-broker.sh start) cargo bench --bench floor`

use cdr_purpose_filter::encode::{self, OutputFormat};
use cdr_purpose_filter::gen::Generator;
use chrono::Utc;
use futures::StreamExt;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::ClientConfig;
use std::time::{Duration, Instant};

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
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
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

#[tokio::main]
async fn main() {
    let stamp = format!("{}-{}", std::process::id(), Utc::now().timestamp());
    let (input, n) = match std::env::var("FLOOR_INPUT") {
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
    };
    let outputs = [format!("floor-a-{stamp}"), format!("floor-b-{stamp}")];
    create(&outputs).await;

    let consumer: StreamConsumer = client()
        .set("group.id", format!("floor-{stamp}"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "true")
        .set("fetch.wait.max.ms", "10")
        .create()
        .unwrap();
    let producer: FutureProducer = client()
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()
        .unwrap();
    consumer.subscribe(&[input.as_str()]).unwrap();

    let (cpu0, t0) = (cpu_us(), Instant::now());
    let mut stream = consumer.stream();
    let mut pending = Vec::with_capacity(2 * BATCH);
    let mut seen = 0u64;
    while seen < n {
        let msg = stream
            .next()
            .await
            .expect("the consumer stream ended")
            .expect("consume");
        for topic in &outputs {
            let mut record = FutureRecord::to(topic).payload(msg.payload().unwrap_or_default());
            if let Some(k) = msg.key() {
                record = record.key(k);
            }
            pending.push(producer.send_result(record).map_err(|(e, _)| e).unwrap());
        }
        seen += 1;
        if pending.len() >= 2 * BATCH || seen == n {
            for d in futures::future::join_all(pending.drain(..)).await {
                d.expect("delivery").map_err(|(e, _)| e).expect("delivered");
            }
        }
    }
    let (cpu, wall) = (cpu_us() - cpu0, t0.elapsed());
    println!(
        "floor: {n} events, {:.0} events/s, {:.1} CPU-µs/event ({:.2} s wall, {:.2} s CPU)",
        n as f64 / wall.as_secs_f64(),
        cpu as f64 / n as f64,
        wall.as_secs_f64(),
        cpu as f64 / 1e6,
    );
}
