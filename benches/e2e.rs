//! End-to-end harness: the filter against the pass-through floor, on a real broker.
//!
//! Loads N events (default 1,000,000, mixed types, protobuf; `E2E_EVENTS` to change) into
//! an input topic of the broker named by `CDR_TEST_BROKERS`, then runs, one after the
//! other on the same input, broker and settings:
//! 1. pass-through: `run --passthrough`, the same consumer and producer code forwarding
//!    each input record unchanged to both output topics (the floor no filter can beat);
//! 2. the filter: `run` with both purposes;
//!
//! and prints events/s of each, their ratio, peak RSS (VmHWM of the process), and the
//! p50/p99 end-to-end latency of paced events sent while the filter runs (send → read
//! back from the security topic). Repeatable: fixed seed, fresh topics every run.
//!
//! `scripts/bench-e2e.sh` starts the test broker and runs it; or
//! `CDR_TEST_BROKERS=host:port cargo bench --bench e2e --features bench-passthrough` (the
//! pass-through mode exists only in a build with that feature).

#[allow(dead_code)]
#[path = "../tests/common/mod.rs"]
mod common;

use cdr_purpose_filter::decode::InputFormat;
use cdr_purpose_filter::encode::{self, OutputFormat};
use cdr_purpose_filter::gen::Generator;
use chrono::Utc;
use common::broker::{brokers, client_config};
use common::config::Topics;
use common::filter::Filter;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 3;

/// A producer for the bulk load: large batches (the tests' `common::io::produce` sends
/// one record per batch, too slow for a million).
fn producer() -> BaseProducer {
    client_config()
        .set("linger.ms", "20")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "500000")
        .create()
        .unwrap()
}

fn send(p: &BaseProducer, topic: &str, key: &str, payload: &[u8]) {
    let mut rec = BaseRecord::to(topic).key(key).payload(payload);
    loop {
        match p.send(rec) {
            Ok(()) => break,
            Err((_, r)) => {
                rec = r;
                p.poll(Duration::from_millis(5));
            }
        }
    }
    p.poll(Duration::ZERO);
}

fn load(topic: &str, n: u64) -> usize {
    let p = producer();
    let mut g = Generator::new(2026, Utc::now());
    let mut buf = Vec::with_capacity(1024);
    let mut bytes = 0;
    for _ in 0..n {
        let e = g.next_event();
        encode::encode_event(&e, OutputFormat::Protobuf, &mut buf).unwrap();
        bytes += buf.len();
        send(&p, topic, &e.event_id, &buf);
    }
    p.flush(Duration::from_secs(300)).unwrap();
    bytes / n as usize
}

/// The topics of one phase: `INPUT.NAME.{billing,security,dlq}`, group `e2e-NAME-PID`.
fn topics(name: &str, input: &str) -> Topics {
    Topics {
        input: input.to_string(),
        billing: format!("{input}.{name}.billing"),
        security: format!("{input}.{name}.security"),
        dead_letter: format!("{input}.{name}.dlq"),
        group: format!("e2e-{name}-{}", std::process::id()),
    }
}

/// The tests' configuration (`common::config`) for one phase, in `DIR/NAME/filter.toml`:
/// protobuf input, offsets committed every 100 ms, the default session and shutdown
/// timeouts.
fn config(dir: &Path, t: &Topics, name: &str) -> PathBuf {
    let dir = dir.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    t.config_with(&dir, |c| {
        let consumer = &mut c.kafka.consumer_properties;
        consumer.remove("session.timeout.ms");
        common::config::set(consumer, "auto.commit.interval.ms", "100");
        c.input.format = InputFormat::Protobuf;
        c.topics.partitions = PARTITIONS;
        c.delivery.shutdown_timeout =
            cdr_purpose_filter::config::DeliverySection::default().shutdown_timeout;
    })
}

/// Input records the group has committed, over every partition.
fn committed(group: &str, topic: &str) -> i64 {
    common::broker::committed(group, topic)
        .values()
        .filter(|o| **o > 0)
        .sum()
}

struct Phase {
    name: &'static str,
    events_per_s: f64,
    peak_rss_mib: f64,
    latency_ms: Option<(f64, f64)>,
}

/// The filter (or the pass-through floor) at warn level.
fn start(config: &Path, passthrough: bool, log: &Path) -> Filter {
    let after_run: &[&str] = if passthrough { &["--passthrough"] } else { &[] };
    Filter::launch(config, log, &[], after_run, &[("RUST_LOG", "warn")])
}

/// Runs one phase over the loaded input; returns events/s and peak RSS.
fn throughput(
    name: &'static str,
    dir: &Path,
    input: &str,
    n: u64,
    passthrough: bool,
) -> (Phase, Filter, Topics) {
    let t = topics(name, input);
    let cfg = config(dir, &t, name);
    let mut filter = start(&cfg, passthrough, &dir.join(format!("{name}.log")));
    let deadline = Instant::now() + Duration::from_secs(1800);
    let mut first: Option<(Instant, i64)> = None;
    let mut rss = 0;
    let end = loop {
        std::thread::sleep(Duration::from_millis(200));
        if let Some(status) = filter.child.try_wait().unwrap() {
            panic!(
                "{name}: the filter exited early ({status}); see {}",
                dir.join(format!("{name}.log")).display()
            );
        }
        rss = rss.max(filter.peak_rss_kib());
        let done = committed(&t.group, input);
        if first.is_none() && done > 0 {
            first = Some((Instant::now(), done));
        }
        if done >= n as i64 {
            break Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "{name}: not done after 30 minutes ({done} of {n})"
        );
    };
    let (t0, d0) = first.unwrap();
    let rate = (n as i64 - d0) as f64 / (end - t0).as_secs_f64().max(1e-3);
    eprintln!(
        "e2e: {name}: {n} events, {rate:.0} events/s, peak RSS {:.0} MiB",
        rss as f64 / 1024.0
    );
    (
        Phase {
            name,
            events_per_s: rate,
            peak_rss_mib: rss as f64 / 1024.0,
            latency_ms: None,
        },
        filter,
        t,
    )
}

/// Sends `count` paced events while the filter runs and measures send → read back.
fn latency(input: &str, security_topic: &str, count: usize, per_s: u64) -> (f64, f64) {
    let reader: BaseConsumer = client_config()
        .set("group.id", format!("e2e-latency-{}", std::process::id()))
        .set("auto.offset.reset", "latest")
        .set("fetch.wait.max.ms", "5")
        .create()
        .unwrap();
    reader.subscribe(&[security_topic]).unwrap();
    // Join the group before sending.
    let t = Instant::now();
    while reader.assignment().map(|a| a.count()).unwrap_or(0) == 0
        && t.elapsed() < Duration::from_secs(30)
    {
        reader.poll(Duration::from_millis(50));
    }
    let p: BaseProducer = client_config().set("linger.ms", "0").create().unwrap();
    let mut g = Generator::new(7, Utc::now());
    let mut sent: HashMap<String, Instant> = HashMap::new();
    let mut latencies = Vec::with_capacity(count);
    let mut buf = Vec::new();
    let start = Instant::now();
    let mut i = 0;
    let deadline = start + Duration::from_secs(count as u64 / per_s + 60);
    while (latencies.len() < sent.len() || i < count) && Instant::now() < deadline {
        if i < count && start.elapsed() >= Duration::from_secs_f64(i as f64 / per_s as f64) {
            let mut e = g.next_event();
            e.declared_purposes.clear();
            e.event_time = Some(cdr_purpose_filter::schema::to_timestamp(Utc::now()));
            encode::encode_event(&e, OutputFormat::Protobuf, &mut buf).unwrap();
            sent.insert(e.event_id.clone(), Instant::now());
            send(&p, input, &e.event_id, &buf);
            i += 1;
        }
        if let Some(Ok(m)) = reader.poll(Duration::from_millis(1)) {
            if let Some(k) = m.key() {
                if let Some(t0) = sent.get(std::str::from_utf8(k).unwrap_or_default()) {
                    latencies.push(t0.elapsed().as_secs_f64() * 1000.0);
                }
            }
        }
    }
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q) as usize];
    eprintln!(
        "e2e: latency over {} of {} paced events",
        latencies.len(),
        sent.len()
    );
    (pct(0.50), pct(0.99))
}

/// SIGTERM, and up to two minutes to drain (killed on drop after that).
fn stop(mut filter: Filter) {
    filter.signal("TERM");
    filter.wait(Duration::from_secs(120));
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs this with no broker: skip
    // only in that compile-check mode, never silently in a real run.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n: u64 = std::env::var("E2E_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let input = format!("e2e-raw-{}-{}", std::process::id(), Utc::now().timestamp());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(common::broker::create_topics(&[&input], PARTITIONS));
    let t = Instant::now();
    let mean = load(&input, n);
    eprintln!(
        "e2e: loaded {n} events ({mean} B mean) in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let (pass, child, _) = throughput("passthrough", dir.path(), &input, n, true);
    stop(child);
    let (mut filter, child, t) = throughput("filter", dir.path(), &input, n, false);
    filter.latency_ms = Some(latency(&input, &t.security, 5_000, 1_000));
    stop(child);

    println!(
        "\nend-to-end, {n} events ({mean} B protobuf mean), broker {}, {} CPU(s)",
        brokers(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!(
        "{:<14} {:>12} {:>8} {:>14} {:>10} {:>10}",
        "mode", "events/s", "ratio", "peak RSS MiB", "p50 ms", "p99 ms"
    );
    for p in [&pass, &filter] {
        let (p50, p99) = p
            .latency_ms
            .map(|(a, b)| (format!("{a:.1}"), format!("{b:.1}")))
            .unwrap_or(("-".into(), "-".into()));
        println!(
            "{:<14} {:>12.0} {:>8.2} {:>14.0} {:>10} {:>10}",
            p.name,
            p.events_per_s,
            p.events_per_s / pass.events_per_s,
            p.peak_rss_mib,
            p50,
            p99
        );
    }
}
