//! CPU per event of the running filter: `run` (or `run --passthrough`, built
//! with `--features bench-passthrough`) on an input topic already loaded with N records
//! (e.g. by `benches/floor.rs`, which prints its topic name and can reuse it with
//! `FLOOR_INPUT=topic:N`), on the test broker.
//!
//! It works out the expected output records first (every input record read back and
//! passed through the same `Transform`: 2 per record for the pass-through), starts the
//! filter binary, reads every output topic from the beginning while it runs, and stops
//! when every expected output record is readable. It prints events/s and CPU-µs/event
//! of the filter process (user + system from `/proc/PID/stat`, every thread), both
//! measured from the first output record readable to the last, and its peak RSS.
//!
//! ```text
//! CDR_TEST_BROKERS=127.0.0.1:9092 PIPELINE_BIN=target/release/cdr-purpose-filter \
//!   cargo run --release --features bench-passthrough --example pipeline_cpu -- TOPIC N filter|passthrough
//! ```

use cdr_purpose_filter::config::{self, PurposeSection, RawConfig, Settings, TopicsMode};
use cdr_purpose_filter::decode::InputFormat;
use cdr_purpose_filter::pipeline::records::{Source, Transform};
use cdr_purpose_filter::telemetry::Stats;
use chrono::Utc;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn brokers() -> String {
    std::env::var("CDR_TEST_BROKERS").expect("CDR_TEST_BROKERS")
}

fn client(group: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10");
    c
}

/// Assigns every partition of `topics` from the beginning (waiting for them to exist).
fn assign_all(consumer: &BaseConsumer, topics: &[&str]) {
    let mut tpl = TopicPartitionList::new();
    for t in topics {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let md = consumer.fetch_metadata(Some(t), Duration::from_secs(10));
            let n = md
                .ok()
                .and_then(|m| m.topics().first().map(|t| t.partitions().len()))
                .unwrap_or(0);
            if n > 0 {
                for p in 0..n as i32 {
                    tpl.add_partition_offset(t, p, Offset::Beginning).unwrap();
                }
                break;
            }
            assert!(Instant::now() < deadline, "topic {t} never appeared");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    consumer.assign(&tpl).unwrap();
}

/// utime + stime of a process, in microseconds.
fn cpu_us(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    (f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()) * 10_000
}

fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (input, n, mode) = (&args[1], args[2].parse::<usize>().unwrap(), &args[3]);
    let passthrough = mode == "passthrough";
    let bin = std::env::var("PIPELINE_BIN").expect("PIPELINE_BIN");
    let stamp = format!("{}-{}", std::process::id(), Utc::now().timestamp());
    let out = |p: &str| format!("{input}.{mode}-{stamp}.{p}");
    let (billing, security, dlq) = (out("billing"), out("security"), out("dlq"));

    let mut c = RawConfig::default();
    c.kafka.bootstrap_servers = brokers();
    c.kafka.group_id = format!("cpu-{mode}-{stamp}");
    c.kafka
        .consumer_properties
        .insert("fetch.wait.max.ms".into(), "10".into());
    c.input.topics = vec![input.clone()];
    c.input.format = InputFormat::Protobuf;
    let purpose = |t: &str| PurposeSection {
        topic: Some(t.to_string()),
        ..PurposeSection::default()
    };
    c.purposes.billing = Some(purpose(&billing));
    c.purposes.security = Some(purpose(&security));
    c.dead_letter.topic = dlq.clone();
    c.metrics.listen = "127.0.0.1:0".into();
    c.topics.mode = TopicsMode::Create;
    c.topics.partitions = 3;
    c.topics.replication_factor = 1;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("filter.toml");
    let text = toml::to_string(&c).unwrap();
    std::fs::write(&path, &text).unwrap();

    // The expected outputs.
    let expected = if passthrough {
        2 * n
    } else {
        let settings = Arc::new(Settings::validate(config::parse(&text, &[]).unwrap()).unwrap());
        let transform = Transform::new(settings);
        let stats = Stats::default();
        let reader: BaseConsumer = client(&format!("cpu-expect-{stamp}")).create().unwrap();
        assign_all(&reader, &[input]);
        let (mut seen, mut outputs, mut out) = (0, 0, Vec::new());
        let deadline = Instant::now() + Duration::from_secs(600);
        while seen < n && Instant::now() < deadline {
            if let Some(Ok(m)) = reader.poll(Duration::from_millis(100)) {
                let source = Source {
                    topic: Arc::from(m.topic()),
                    partition: m.partition(),
                    offset: m.offset(),
                };
                transform.process(
                    &source,
                    m.payload().unwrap_or_default(),
                    Utc::now(),
                    &stats,
                    &mut out,
                );
                outputs += out.len();
                out.clear();
                seen += 1;
            }
        }
        assert_eq!(seen, n, "input records read back");
        outputs
    };
    eprintln!("pipeline_cpu: {mode}: {n} input records, {expected} output records expected");

    let log_path = dir.path().join("filter.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut cmd = Command::new(&bin);
    cmd.args(["run", "--config"]).arg(&path);
    if passthrough {
        cmd.arg("--passthrough");
    }
    let mut child = cmd
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let pid = child.id();
    let reader: BaseConsumer = client(&format!("cpu-read-{stamp}")).create().unwrap();
    assign_all(&reader, &[&billing, &security, &dlq]);
    let mut per_topic: HashMap<String, usize> = HashMap::new();
    let (mut count, mut first) = (0usize, None);
    let deadline = Instant::now() + Duration::from_secs(1800);
    let mut rss: f64 = 0.0;
    let mut last_rss = Instant::now();
    while count < expected {
        assert!(
            Instant::now() < deadline,
            "{count} of {expected} after 30 min"
        );
        if let Some(Ok(m)) = reader.poll(Duration::from_millis(100)) {
            if first.is_none() {
                first = Some((Instant::now(), cpu_us(pid), count));
            }
            count += 1;
            *per_topic.entry(m.topic().to_string()).or_default() += 1;
        }
        if last_rss.elapsed() > Duration::from_millis(200) {
            rss = rss.max(peak_rss_mib(pid));
            last_rss = Instant::now();
            // A filter that stopped (a binary built without `bench-passthrough`, a
            // refused configuration) would otherwise be waited for 30 minutes.
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "the filter exited ({status}) with {count} of {expected} outputs readable: {}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
        }
    }
    let (t1, cpu1) = (Instant::now(), cpu_us(pid));
    rss = rss.max(peak_rss_mib(pid));
    let (t0, cpu0, c0) = first.unwrap();
    let _ = Command::new("kill").arg(pid.to_string()).status();
    let _ = child.wait();
    // Events of the measured span: outputs readable in it, per input record.
    let events = (expected - c0) as f64 * n as f64 / expected as f64;
    let wall = (t1 - t0).as_secs_f64();
    println!(
        "pipeline_cpu: {mode}: {n} events, {:.0} events/s, {:.1} CPU-µs/event ({wall:.2} s wall, {:.2} s CPU), peak RSS {rss:.0} MiB; outputs {per_topic:?}",
        events / wall,
        (cpu1 - cpu0) as f64 / events,
        (cpu1 - cpu0) as f64 / 1e6,
    );
}
