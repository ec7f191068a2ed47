//! End-to-end harness: the filter against a minimal pass-through floor, on a real broker.
//!
//! Loads N events (default 1,000,000, mixed types; `E2E_EVENTS` to change; `E2E_INPUTS=json`
//! or `protobuf` for one input only; `E2E_ROUNDS=K` to run every mode K times and report
//! the medians; `E2E_RESTART_BROKER=1`, as `scripts/bench-e2e.sh` sets it, to measure
//! every process on a freshly started test broker loaded with the input alone) into two input
//! topics of the broker named by `CDR_TEST_BROKERS` — one protobuf, one JSON — then runs,
//! one after the other on each input, same broker and settings (`fetch.wait.max.ms=10`,
//! idempotent producer, offsets committed every 100 ms):
//! 1. **floor**: `benches/floor.rs`, a pass-through written apart from the pipeline (it
//!    shares none of its code), run as its own process (this binary re-run with
//!    `E2E_ROLE=floor`): consume in a group, send each record unchanged to two topics,
//!    await the sends in batches of 1,000; then **floor+headers**, the same with five
//!    fixed headers of the contract's names and sizes on every copy (`FLOOR_HEADERS`):
//!    what librdkafka charges for the headers every output must carry, apart from the
//!    filtering;
//! 2. **pass-through**: `run --passthrough`, the pipeline forwarding each record unchanged
//!    to both output topics — the pipeline's own overhead over the floor;
//! 3. **filter**: `run` with both purposes (protobuf input → protobuf output; JSON input →
//!    JSON output);
//! 4. with `E2E_BASELINE=PATH[:PATH...]`, **filter@NAME** for each: the same with
//!    another build of the filter (e.g. the previous commit's
//!    `target/release/cdr-purpose-filter`, copied aside; NAME is its file name), in
//!    every round beside this build's — an A/B comparison in one run, since runs minutes
//!    apart on a shared machine differ by more than most changes.
//!
//! Each process is measured the same way, from outside: from the first committed input
//! offset to every input offset committed (the filter commits an offset only after the
//! records it produced are acknowledged: written and readable; the floor awaits its sends
//! before it stops), events/s over that span, CPU time per event over the same span (user
//! and system time of the process, every thread, from `/proc/PID/stat`), peak RSS (VmHWM). Ratios
//! are to the floor of the same input; beside them the broker's CPU per event over the
//! same span (`E2E_BROKER_PID`, or the test broker's `.broker/pid`), since on one machine
//! the broker's work sets the pace. Then the p50/p99 latency (send → read back) of
//! 5,000 paced events sent while the protobuf filter runs.
//!
//! `scripts/bench-e2e.sh` starts the test broker and runs it; or
//! `CDR_TEST_BROKERS=host:port cargo bench --bench e2e --features bench-passthrough` (the
//! pass-through mode exists only in a build with that feature).

#[allow(dead_code)]
#[path = "../tests/common/mod.rs"]
mod common;

/// The floor, compiled into this binary and run as a separate process.
#[allow(dead_code)]
#[path = "floor.rs"]
mod floor;

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

fn load(topic: &str, n: u64, format: OutputFormat) -> usize {
    let p = producer();
    let mut g = Generator::new(2026, Utc::now());
    let mut buf = Vec::with_capacity(1024);
    let mut bytes = 0;
    for _ in 0..n {
        let e = g.next_event();
        encode::encode_event(&e, format, &mut buf).unwrap();
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
/// `format` in and out, offsets committed every 100 ms (`delivery.commit_interval` and
/// librdkafka's auto-commit), the default session and shutdown timeouts.
fn config(dir: &Path, t: &Topics, name: &str, format: OutputFormat) -> PathBuf {
    let dir = dir.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    t.config_with(&dir, |c| {
        let consumer = &mut c.kafka.consumer_properties;
        consumer.remove("session.timeout.ms");
        common::config::set(consumer, "auto.commit.interval.ms", "100");
        c.input.format = match format {
            OutputFormat::Json => InputFormat::Json,
            OutputFormat::Protobuf => InputFormat::Protobuf,
        };
        c.output.format = format;
        c.topics.partitions = PARTITIONS;
        c.delivery.shutdown_timeout =
            cdr_purpose_filter::config::DeliverySection::default().shutdown_timeout;
        // Offsets committed as often as the floor's, so that both are followed alike.
        c.delivery.commit_interval = "100ms".into();
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
    name: String,
    events_per_s: f64,
    cpu_us_per_event: f64,
    /// The broker's CPU per event over the same span, when its pid is known.
    broker_us_per_event: Option<f64>,
    peak_rss_mib: f64,
    latency_ms: Option<(f64, f64)>,
}

/// User + system CPU time of a running process, every thread, in microseconds (the
/// floor's own reading of `/proc/PID/stat`).
fn cpu_us(pid: u32) -> u64 {
    floor::process_cpu_us(&pid.to_string())
}

/// The filter (or `run --passthrough`) at warn level.
fn start(config: &Path, passthrough: bool, log: &Path, binary: Option<&Path>) -> Filter {
    let after_run: &[&str] = if passthrough { &["--passthrough"] } else { &[] };
    let env = [("RUST_LOG", "warn")];
    match binary {
        Some(b) => Filter::launch_binary(b, config, log, &[], after_run, &env),
        None => Filter::launch(config, log, &[], after_run, &env),
    }
}

/// The floor: this binary again, as `E2E_ROLE=floor`, on `input` in `group`; with the
/// contract's five headers on every copy if `headers`.
fn start_floor(input: &str, n: u64, group: &str, log: &Path, headers: bool) -> Filter {
    let log = std::fs::File::create(log).unwrap();
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    if headers {
        cmd.env("FLOOR_HEADERS", "1");
    }
    let child = cmd
        .env("E2E_ROLE", "floor")
        .env("FLOOR_INPUT", format!("{input}:{n}"))
        .env("FLOOR_GROUP", group)
        .env("FLOOR_WAIT", "1")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start the floor");
    Filter { child }
}

/// The broker's pid: `E2E_BROKER_PID`, or the test broker's state file.
fn broker_pid() -> Option<u32> {
    std::env::var("E2E_BROKER_PID")
        .ok()
        .or_else(|| std::fs::read_to_string(".broker/pid").ok())
        .and_then(|p| p.trim().parse().ok())
        .filter(|p| std::path::Path::new(&format!("/proc/{p}/stat")).exists())
}

/// Follows one process over the loaded input, from outside: events/s and CPU-µs/event
/// from the first committed offset to the last, peak RSS.
fn measure(
    name: String,
    mut process: Filter,
    group: &str,
    input: &str,
    n: u64,
    log: &Path,
) -> (Phase, Filter) {
    let deadline = Instant::now() + Duration::from_secs(1800);
    let mut first: Option<(Instant, i64, u64, Option<u64>)> = None;
    let mut rss = 0;
    let pid = process.pid();
    let broker = broker_pid();
    let (end, cpu_end, broker_end) = loop {
        std::thread::sleep(Duration::from_millis(100));
        if let Some(status) = process.child.try_wait().unwrap() {
            panic!("{name}: exited early ({status}); see {}", log.display());
        }
        rss = rss.max(process.peak_rss_kib());
        let cpu = cpu_us(pid);
        let broker_cpu = broker.map(cpu_us);
        let done = committed(group, input);
        if first.is_none() && done > 0 {
            first = Some((Instant::now(), done, cpu, broker_cpu));
        }
        if done >= n as i64 {
            break (Instant::now(), cpu, broker_cpu);
        }
        assert!(
            Instant::now() < deadline,
            "{name}: not done after 30 minutes ({done} of {n})"
        );
    };
    let (t0, d0, cpu0, broker0) = first.unwrap();
    let events = (n as i64 - d0).max(1) as f64;
    let phase = Phase {
        name,
        events_per_s: events / (end - t0).as_secs_f64().max(1e-3),
        cpu_us_per_event: (cpu_end - cpu0) as f64 / events,
        broker_us_per_event: broker0
            .zip(broker_end)
            .map(|(a, b)| (b - a) as f64 / events),
        peak_rss_mib: rss as f64 / 1024.0,
        latency_ms: None,
    };
    eprintln!(
        "e2e: {}: {n} events, {:.0} events/s, {:.1} CPU-µs/event (broker {}), peak RSS {:.0} MiB",
        phase.name,
        phase.events_per_s,
        phase.cpu_us_per_event,
        phase
            .broker_us_per_event
            .map(|b| format!("{b:.1}"))
            .unwrap_or_else(|| "-".into()),
        phase.peak_rss_mib
    );
    (phase, process)
}

/// Stops the test broker and starts a fresh one (`scripts/test-broker.sh`); its address
/// becomes `CDR_TEST_BROKERS` for this process and the ones it starts.
fn restart_broker() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/test-broker.sh");
    let status = std::process::Command::new(&script)
        .arg("stop")
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run scripts/test-broker.sh stop");
    assert!(status.success(), "scripts/test-broker.sh stop: {status}");
    let out = std::process::Command::new(&script)
        .arg("start")
        .output()
        .expect("run scripts/test-broker.sh start");
    assert!(
        out.status.success(),
        "scripts/test-broker.sh start: {}",
        out.status
    );
    let address = String::from_utf8(out.stdout).unwrap().trim().to_string();
    std::env::set_var(common::broker::BROKERS_ENV, &address);
}

/// The median of each figure over the rounds of one mode (RSS: the highest; latency:
/// the round that measured it).
fn median(mut runs: Vec<Phase>) -> Phase {
    fn mid(mut v: Vec<f64>) -> f64 {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    }
    let events_per_s = mid(runs.iter().map(|p| p.events_per_s).collect());
    let cpu_us_per_event = mid(runs.iter().map(|p| p.cpu_us_per_event).collect());
    let broker: Option<Vec<f64>> = runs.iter().map(|p| p.broker_us_per_event).collect();
    let peak_rss_mib = runs.iter().map(|p| p.peak_rss_mib).fold(0.0, f64::max);
    let latency_ms = runs.iter().find_map(|p| p.latency_ms);
    let first = runs.swap_remove(0);
    Phase {
        name: first.name,
        events_per_s,
        cpu_us_per_event,
        broker_us_per_event: broker.map(mid),
        peak_rss_mib,
        latency_ms,
    }
}

/// The pipeline (`run`, or `run --passthrough`) on one input.
fn pipeline(
    name: &str,
    dir: &Path,
    input: &str,
    n: u64,
    format: OutputFormat,
    passthrough: bool,
    binary: Option<&Path>,
) -> (Phase, Filter, Topics) {
    let t = topics(name, input);
    let cfg = config(dir, &t, name, format);
    let log = dir.join(format!("{name}.log"));
    let process = start(&cfg, passthrough, &log, binary);
    let (phase, process) = measure(name.to_string(), process, &t.group, input, n, &log);
    (phase, process, t)
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
    if std::env::var("E2E_ROLE").as_deref() == Ok("floor") {
        return floor::main();
    }
    // `cargo bench` passes --bench; `cargo test --benches` runs this with no broker: skip
    // only in that compile-check mode, never silently in a real run.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n: u64 = std::env::var("E2E_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    // `E2E_ROUNDS=K`: every mode K times, the median reported.
    let rounds: usize = std::env::var("E2E_ROUNDS")
        .ok()
        .map(|v| v.parse().expect("E2E_ROUNDS is a number"))
        .unwrap_or(1)
        .max(1);
    // `E2E_RESTART_BROKER=1` (set by `scripts/bench-e2e.sh`, which owns the test broker):
    // every process measured on a freshly started broker holding only its input — tansu
    // slows down as its in-memory store grows, which would favour whichever runs first.
    let restart = std::env::var_os("E2E_RESTART_BROKER").is_some();
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut phases: Vec<(&str, usize, Vec<Phase>)> = Vec::new();
    // `E2E_INPUTS=json` (or `protobuf`) runs one input only.
    let only = std::env::var("E2E_INPUTS").ok();
    // `E2E_BASELINE=PATH[:PATH...]`: other builds of the filter, measured in every round
    // too.
    let baselines: Vec<PathBuf> = std::env::var_os("E2E_BASELINE")
        .map(|v| std::env::split_paths(&v).collect())
        .unwrap_or_default();
    for b in &baselines {
        assert!(b.is_file(), "E2E_BASELINE: {}: no such file", b.display());
    }
    for (label, format) in [
        ("protobuf", OutputFormat::Protobuf),
        ("json", OutputFormat::Json),
    ] {
        if only.as_deref().is_some_and(|o| o != label) {
            continue;
        }
        let input = format!(
            "e2e-{label}-{}-{}",
            std::process::id(),
            Utc::now().timestamp()
        );
        // Loads the input (once, or before every process on a fresh broker).
        let mut mean = 0;
        let mut prepare = |first: bool| {
            if restart {
                restart_broker();
            } else if !first {
                return;
            }
            rt.block_on(common::broker::create_topics(&[&input], PARTITIONS));
            let t = Instant::now();
            mean = load(&input, n, format);
            eprintln!(
                "e2e: loaded {n} {label} events ({mean} B mean) in {:.1} s",
                t.elapsed().as_secs_f64()
            );
        };
        // Each mode once per round, the rounds one after the other (a slower minute of
        // the shared machine falls on every mode alike); the median of the rounds.
        let mut runs: Vec<Vec<Phase>> = (0..4 + baselines.len()).map(|_| Vec::new()).collect();
        for round in 0..rounds {
            let tag = if rounds > 1 {
                format!("-r{round}")
            } else {
                String::new()
            };
            for (i, (name, headers)) in [("floor", false), ("floor+headers", true)]
                .into_iter()
                .enumerate()
            {
                prepare(round == 0 && i == 0);
                let group = format!("e2e-{name}{tag}-{label}-{}", std::process::id());
                let log = dir.path().join(format!("{name}{tag}-{label}.log"));
                let (floor, process) = measure(
                    name.to_string(),
                    start_floor(&input, n, &group, &log, headers),
                    &group,
                    &input,
                    n,
                    &log,
                );
                stop(process);
                runs[i].push(floor);
            }
            prepare(false);
            let (mut pass, process, _) = pipeline(
                &format!("passthrough-{label}{tag}"),
                dir.path(),
                &input,
                n,
                format,
                true,
                None,
            );
            stop(process);
            pass.name = format!("passthrough-{label}");
            runs[2].push(pass);
            prepare(false);
            let (mut filter, process, t) = pipeline(
                &format!("filter-{label}{tag}"),
                dir.path(),
                &input,
                n,
                format,
                false,
                None,
            );
            if format == OutputFormat::Protobuf && round == 0 {
                filter.latency_ms = Some(latency(&input, &t.security, 5_000, 1_000));
            }
            stop(process);
            filter.name = format!("filter-{label}");
            runs[3].push(filter);
            for (i, b) in baselines.iter().enumerate() {
                let build = b.file_name().unwrap_or_default().to_string_lossy();
                prepare(false);
                let (mut filter, process, _) = pipeline(
                    &format!("{build}-{label}{tag}"),
                    dir.path(),
                    &input,
                    n,
                    format,
                    false,
                    Some(b),
                );
                stop(process);
                filter.name = format!("filter-{label}@{build}");
                runs[4 + i].push(filter);
            }
        }
        let rows: Vec<Phase> = runs.into_iter().map(median).collect();
        phases.push((label, mean, rows));
    }

    println!(
        "\nend-to-end, {n} events per input, {} broker {}, {} CPU(s); ratios to the floor of the same input",
        match (rounds > 1, restart) {
            (true, true) => format!("median of {rounds} rounds, a fresh broker for each process,"),
            (true, false) => format!("median of {rounds} rounds,"),
            (false, true) => "a fresh broker for each process,".to_string(),
            (false, false) => "one".to_string(),
        },
        brokers(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!(
        "{:<14} {:<30} {:>10} {:>7} {:>13} {:>7} {:>11} {:>9} {:>8} {:>8}",
        "input",
        "mode",
        "events/s",
        "ratio",
        "CPU-µs/event",
        "ratio",
        "broker µs",
        "RSS MiB",
        "p50 ms",
        "p99 ms"
    );
    for (label, mean, rows) in &phases {
        let floor = &rows[0];
        for p in rows {
            let (p50, p99) = p
                .latency_ms
                .map(|(a, b)| (format!("{a:.1}"), format!("{b:.1}")))
                .unwrap_or(("-".into(), "-".into()));
            println!(
                "{:<14} {:<30} {:>10.0} {:>7.2} {:>13.1} {:>7.2} {:>11} {:>9.0} {:>8} {:>8}",
                format!("{label} {mean}B"),
                p.name,
                p.events_per_s,
                p.events_per_s / floor.events_per_s,
                p.cpu_us_per_event,
                p.cpu_us_per_event / floor.cpu_us_per_event,
                p.broker_us_per_event
                    .map(|b| format!("{b:.1}"))
                    .unwrap_or_else(|| "-".into()),
                p.peak_rss_mib,
                p50,
                p99
            );
        }
    }
}
