//! End-to-end harness: the filter against a minimal pass-through floor, on a real broker.
//!
//! Loads N events (default 1,000,000, mixed types; `E2E_EVENTS` to change; `E2E_INPUTS=json`
//! or `protobuf` for one input only) into an input topic of the broker named by
//! `CDR_TEST_BROKERS` — one protobuf, one JSON — and measures on each input, in each of
//! `E2E_ROUNDS` rounds (default 5; the order of the processes reversed every other round),
//! with `E2E_RESTART_BROKER=1` (as `scripts/bench-e2e.sh` sets it) every process on a
//! freshly started test broker loaded with the input alone (tansu slows down as its
//! in-memory store grows, which would favour whichever runs first):
//! 1. **floor**: `benches/floor.rs`, a pass-through written apart from the pipeline (it
//!    shares none of its code), run as its own process (this binary re-run with
//!    `E2E_ROLE=floor`): consume in a group, hand each record's key and value unchanged to
//!    a `ThreadedProducer` for two topics, await nothing (the delivery callback counts),
//!    offsets stored as read, with the filter's memory bounds; then **floor+headers**,
//!    the same with five fixed headers of the contract's names and sizes on every copy
//!    (`FLOOR_HEADERS`), shown, not a target: its header blocks are freed on the
//!    `ThreadedProducer`'s polling thread, and mimalloc's collection of blocks freed by
//!    another thread is half of its CPU (docs/performance.md);
//! 2. **run --passthrough**: the pipeline forwarding each record unchanged to both output
//!    topics — the pipeline's own overhead over the floor;
//! 3. **run** with both purposes (protobuf input → protobuf output; JSON input → JSON
//!    output);
//! 4. with `E2E_BASELINE=PATH[:PATH...]`, **run@NAME** for each: the same with another
//!    build of the filter (e.g. the previous commit's `target/release/cdr-purpose-filter`,
//!    copied aside), in every round beside this build's.
//!
//! Each process is measured the same way, from outside, from its first committed input
//! offset to the moment every expected output is acknowledged (readable): the filter
//! commits an offset only after its outputs are acknowledged, so its end is every input
//! offset committed; the floor stores offsets as it reads, so its end is the file it
//! creates once its delivery callback counted every copy (`FLOOR_DONE`). Over that span:
//! events/s, CPU time per event (user and system time of the process, every thread, from
//! `/proc/PID/stat`), the broker's CPU per event (`E2E_BROKER_PID`, or the test broker's
//! `.broker/pid`), allocations per event (Rust's allocations, counted by
//! `alloc_count::Counting` in the floor and in a `bench-passthrough` build of the filter),
//! and peak RSS (VmHWM); and the rest of the machine (**others, cores**: the cores busy
//! with anything but the process and the broker, from `/proc/stat` — this harness, the
//! kernel's interrupt work, and whatever else runs: a profiler or a build beside a round
//! shows there, and moves events/s far more than CPU per event; a note under the table
//! names each process with rounds above 0.1 cores). The table gives the
//! median of the rounds and their spread (lowest–highest); ratios are of medians, to the
//! floor of the same input.
//!
//! Then the latency: the floor and `run`, each on an input of its own, fed events paced
//! at half the floor's median throughput (or `E2E_LATENCY_RATE` events/s) for
//! `E2E_LATENCY_SECS` (default 10) seconds; p50, p99 and max from each event's hand-over
//! to the producer to its output being read back, and the same for the set-up alone
//! (**broker**: the reader on the topic the events are sent to). The events are made
//! before the phase and the reader runs on a thread of its own, so neither the pacing nor
//! the reading waits on the other. `E2E_ROUNDS=0` with `E2E_LATENCY_RATE` runs the latency
//! phase alone; `E2E_LATENCY_SECS=0` skips it. The paced producer lingers 5 ms
//! (`E2E_PACED_LINGER`), as librdkafka does by default. The filter inherits this
//! process's environment: a `CDR_PURPOSE_FILTER_<SECTION>__<KEY>` variable (e.g.
//! `CDR_PURPOSE_FILTER_KAFKA__PRODUCER_PROPERTIES__LINGER_MS=20`) measures `run` with
//! that setting; the floor keeps its own.
//!
//! `E2E_PROCESSES=floor,run` measures only those (of `floor`, `floor+headers`,
//! `passthrough`, `run`; the floor always).
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
use std::sync::atomic::{AtomicBool, Ordering};
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

/// One process's figures in one round.
struct Phase {
    name: String,
    events_per_s: f64,
    cpu_us_per_event: f64,
    /// The broker's CPU per event over the same span, when its pid is known.
    broker_us_per_event: Option<f64>,
    peak_rss_mib: f64,
    /// Allocations per event over the same span (Rust's allocations: librdkafka's own
    /// `malloc`s are not counted).
    allocations_per_event: Option<f64>,
    /// The rest of the machine over the same span: the cores busy with anything but the
    /// process and the broker (this harness, the kernel's interrupt work, whatever else
    /// runs), from `/proc/stat`. A profiler or a build beside a round shows here, and
    /// moves events/s far more than CPU per event.
    others_cores: f64,
}

/// The machine's busy CPU time, every core, in microseconds: the first line of
/// `/proc/stat` less idle and iowait (clock ticks of 1/100 s, as in [`cpu_us`]).
fn machine_busy_us() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").expect("/proc/stat");
    let line = stat.lines().next().expect("the cpu line of /proc/stat");
    // cpu user nice system idle iowait irq softirq steal (guest time is in user).
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|f| f.parse().expect("a tick count"))
        .collect();
    let busy: u64 = ticks.iter().sum::<u64>() - ticks[3] - ticks[4];
    busy * 10_000
}

/// When a followed process is done with the input.
enum End<'a> {
    /// Every input offset committed: the filter commits an offset only once the records
    /// it produced are acknowledged. It writes its allocation count to the file
    /// (`CDR_BENCH_ALLOCATIONS`).
    Committed(&'a Path),
    /// The floor stores offsets as it reads: it creates this file once every copy is
    /// acknowledged (`FLOOR_DONE`).
    File(&'a Path),
}

/// User + system CPU time of a running process, every thread, in microseconds (the
/// floor's own reading of `/proc/PID/stat`).
fn cpu_us(pid: u32) -> u64 {
    floor::process_cpu_us(&pid.to_string())
}

/// The filter (or `run --passthrough`) at warn level, writing its allocation count to
/// `allocations` (a build with the `bench-passthrough` feature).
fn start(
    config: &Path,
    passthrough: bool,
    log: &Path,
    binary: Option<&Path>,
    allocations: &Path,
) -> Filter {
    let after_run: &[&str] = if passthrough { &["--passthrough"] } else { &[] };
    let allocations = allocations.to_str().expect("a UTF-8 temporary path");
    let env = [("RUST_LOG", "warn"), ("CDR_BENCH_ALLOCATIONS", allocations)];
    match binary {
        Some(b) => Filter::launch_binary(b, config, log, &[], after_run, &env),
        None => Filter::launch(config, log, &[], after_run, &env),
    }
}

/// One run of the floor: its input of `n` records, its group, its two outputs, the file
/// it creates when done, and whether it adds the contract's five headers.
struct FloorRun<'a> {
    input: &'a str,
    n: u64,
    group: &'a str,
    outputs: [String; 2],
    done: &'a Path,
    headers: bool,
}

/// The floor: this binary again, as `E2E_ROLE=floor`.
fn start_floor(floor: &FloorRun<'_>, log: &Path) -> Filter {
    let log = std::fs::File::create(log).unwrap();
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    if floor.headers {
        cmd.env("FLOOR_HEADERS", "1");
    }
    let (input, n, group) = (floor.input, floor.n, floor.group);
    let child = cmd
        .env("E2E_ROLE", "floor")
        .env("FLOOR_DONE", floor.done)
        .env("FLOOR_OUTPUTS", floor.outputs.join(","))
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
    finish: End<'_>,
) -> (Phase, Filter) {
    let deadline = Instant::now() + Duration::from_secs(1800);
    let mut first: Option<(Instant, i64, u64, Option<u64>, u64)> = None;
    let mut allocations0: Option<Option<u64>> = None;
    let mut rss = 0;
    let pid = process.pid();
    let broker = broker_pid();
    let (end, cpu_end, broker_end, machine_end) = loop {
        std::thread::sleep(Duration::from_millis(100));
        if let Some(status) = process.child.try_wait().unwrap() {
            panic!("{name}: exited early ({status}); see {}", log.display());
        }
        rss = rss.max(process.peak_rss_kib());
        let cpu = cpu_us(pid);
        let broker_cpu = broker.map(cpu_us);
        let machine = machine_busy_us();
        let done = committed(group, input);
        if first.is_none() && done > 0 {
            first = Some((Instant::now(), done, cpu, broker_cpu, machine));
        }
        let finished = match finish {
            End::Committed(_) => done >= n as i64,
            End::File(f) => first.is_some() && f.exists(),
        };
        if first.is_some() && allocations0.is_none() {
            allocations0 = Some(read_count(&finish));
        }
        if finished {
            break (Instant::now(), cpu, broker_cpu, machine);
        }
        assert!(
            Instant::now() < deadline,
            "{name}: not done after 30 minutes ({done} of {n})"
        );
    };
    let (t0, d0, cpu0, broker0, machine0) = first.unwrap();
    // The span runs from the first commit seen: a process that read most of the input
    // before its first commit leaves too few events to measure.
    assert!(
        d0 <= n as i64 / 2,
        "{name}: {d0} of {n} events were done at the first commit seen: too few left to \
         measure; load more events (E2E_EVENTS)"
    );
    let events = (n as i64 - d0).max(1) as f64;
    let allocations_per_event = match finish {
        // The floor counts its own span, from its first record: all n events.
        End::File(_) => read_count(&finish).map(|a| a as f64 / n as f64),
        End::Committed(_) => read_count(&finish)
            .zip(allocations0.flatten())
            .map(|(b, a)| (b - a) as f64 / events),
    };
    let span_s = (end - t0).as_secs_f64().max(1e-3);
    let others_us = machine_end.saturating_sub(machine0) as f64
        - (cpu_end - cpu0) as f64
        - broker0
            .zip(broker_end)
            .map_or(0.0, |(a, b)| b.saturating_sub(a) as f64);
    let phase = Phase {
        name,
        events_per_s: events / span_s,
        cpu_us_per_event: (cpu_end - cpu0) as f64 / events,
        broker_us_per_event: broker0
            .zip(broker_end)
            .map(|(a, b)| (b - a) as f64 / events),
        peak_rss_mib: rss as f64 / 1024.0,
        allocations_per_event,
        // Tick counts read at different moments can make it slightly negative.
        others_cores: (others_us / 1e6 / span_s).max(0.0),
    };
    eprintln!(
        "e2e: {}: {n} events, {:.0} events/s, {:.1} CPU-µs/event (broker {}), peak RSS {:.0} MiB, {} allocations/event, the rest of the machine {:.2} cores",
        phase.name,
        phase.events_per_s,
        phase.cpu_us_per_event,
        phase
            .broker_us_per_event
            .map(|b| format!("{b:.1}"))
            .unwrap_or_else(|| "-".into()),
        phase.peak_rss_mib,
        phase
            .allocations_per_event
            .map(|a| format!("{a:.2}"))
            .unwrap_or_else(|| "-".into()),
        phase.others_cores
    );
    (phase, process)
}

/// The allocation count a followed process wrote, if it wrote one.
fn read_count(end: &End<'_>) -> Option<u64> {
    let path = match end {
        End::Committed(p) | End::File(p) => p,
    };
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
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

/// A figure over the rounds: its median and its spread (lowest, highest).
#[derive(Clone, Copy)]
struct Spread {
    median: f64,
    low: f64,
    high: f64,
}

impl Spread {
    fn of(mut v: Vec<f64>) -> Spread {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        Spread {
            median: v[v.len() / 2],
            low: v[0],
            high: v[v.len() - 1],
        }
    }

    /// `median (low–high)`, or `median ×ratio (low–high)` against a reference median.
    fn show(&self, digits: usize) -> String {
        format!(
            "{:.d$} ({:.d$}–{:.d$})",
            self.median,
            self.low,
            self.high,
            d = digits
        )
    }
}

/// One mode's figures over every round.
struct Summary {
    name: String,
    events_per_s: Spread,
    cpu_us_per_event: Spread,
    broker_us_per_event: Option<Spread>,
    peak_rss_mib: f64,
    allocations_per_event: Option<Spread>,
    others_cores: Spread,
    /// Rounds in which the rest of the machine was busier than [`BUSY_OTHERS`].
    busy_rounds: usize,
}

/// The rest of the machine above this many cores during a round: the round did not
/// measure the process alone (a quiet round here shows 0.00–0.06).
const BUSY_OTHERS: f64 = 0.1;

fn summarise(runs: &[Phase]) -> Summary {
    let broker: Option<Vec<f64>> = runs.iter().map(|p| p.broker_us_per_event).collect();
    Summary {
        name: runs[0].name.clone(),
        events_per_s: Spread::of(runs.iter().map(|p| p.events_per_s).collect()),
        cpu_us_per_event: Spread::of(runs.iter().map(|p| p.cpu_us_per_event).collect()),
        broker_us_per_event: broker.map(Spread::of),
        peak_rss_mib: runs.iter().map(|p| p.peak_rss_mib).fold(0.0, f64::max),
        allocations_per_event: runs
            .iter()
            .map(|p| p.allocations_per_event)
            .collect::<Option<Vec<f64>>>()
            .map(Spread::of),
        others_cores: Spread::of(runs.iter().map(|p| p.others_cores).collect()),
        busy_rounds: runs.iter().filter(|p| p.others_cores > BUSY_OTHERS).count(),
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
    let allocations = dir.join(format!("{name}.allocations"));
    let process = start(&cfg, passthrough, &log, binary, &allocations);
    let (phase, process) = measure(
        name.to_string(),
        process,
        &t.group,
        input,
        n,
        &log,
        End::Committed(&allocations),
    );
    (phase, process, t)
}

/// The floor (with the contract's headers if `headers`) on one input.
fn floor_phase(name: &str, dir: &Path, input: &str, n: u64, headers: bool) -> (Phase, Filter) {
    let group = format!("e2e-{name}-{}", std::process::id());
    let done = dir.join(format!("{name}.done"));
    let log = dir.join(format!("{name}.log"));
    let run = FloorRun {
        input,
        n,
        group: &group,
        outputs: [format!("{input}.{name}.a"), format!("{input}.{name}.b")],
        done: &done,
        headers,
    };
    let process = start_floor(&run, &log);
    measure(
        name.to_string(),
        process,
        &group,
        input,
        n,
        &log,
        End::File(&done),
    )
}

/// p50, p99 and max in milliseconds from an input record's send to its output being
/// read back.
#[derive(Clone, Copy)]
struct Latency {
    p50: f64,
    p99: f64,
    max: f64,
}

/// An event of the latency phase: it happened now, so every purpose keeps it.
fn fresh_event(g: &mut Generator, format: OutputFormat, buf: &mut Vec<u8>) -> String {
    let mut e = g.next_event();
    e.declared_purposes.clear();
    e.event_time = Some(cdr_purpose_filter::schema::to_timestamp(Utc::now()));
    encode::encode_event(&e, format, buf).unwrap();
    e.event_id
}

/// The latency phase's events, made before it starts so that making them does not hold
/// up the pacing: `count` events of now, as (key = event id, value).
fn fresh_events(format: OutputFormat, count: usize) -> Vec<(String, Vec<u8>)> {
    let mut g = Generator::new(7, Utc::now());
    (0..count)
        .map(|_| {
            let mut buf = Vec::new();
            let key = fresh_event(&mut g, format, &mut buf);
            (key, buf)
        })
        .collect()
}

/// A reader of `topic` from its end, in a group of its own, joined before anything is sent.
fn reader(topic: &str) -> BaseConsumer {
    let reader: BaseConsumer = client_config()
        .set(
            "group.id",
            format!("e2e-latency-{topic}-{}", std::process::id()),
        )
        .set("auto.offset.reset", "latest")
        .set("fetch.wait.max.ms", "5")
        .create()
        .unwrap();
    reader.subscribe(&[topic]).unwrap();
    let t = Instant::now();
    while reader.assignment().map(|a| a.count()).unwrap_or(0) == 0
        && t.elapsed() < Duration::from_secs(30)
    {
        reader.poll(Duration::from_millis(50));
    }
    reader
}

/// Reads `output` on a thread of its own until every event of the phase is read back or
/// `deadline`: the instant each was read, by index in `events`. A record of no event of
/// the phase (the warm-up's) sets `warm`.
fn read_back(
    output: &str,
    index: &HashMap<&str, usize>,
    joined: std::sync::mpsc::Sender<()>,
    warm: &AtomicBool,
    deadline: &std::sync::Mutex<Instant>,
) -> Vec<Option<Instant>> {
    let reader = reader(output);
    joined.send(()).unwrap();
    let mut read: Vec<Option<Instant>> = vec![None; index.len()];
    let mut left = index.len();
    while left > 0 && Instant::now() < *deadline.lock().unwrap() {
        let Some(Ok(m)) = reader.poll(Duration::from_millis(20)) else {
            continue;
        };
        let at = Instant::now();
        let key = m.key().and_then(|k| std::str::from_utf8(k).ok());
        match key.and_then(|k| index.get(k)) {
            Some(&i) if read[i].is_none() => {
                read[i] = Some(at);
                left -= 1;
            }
            Some(_) => {}
            None => warm.store(true, Ordering::Relaxed),
        }
    }
    read
}

/// Sends batches of 20 fresh events to `input` until the reader sees one of them on
/// `output` (`warm`): the process between them has joined its group and fetches. Then
/// lets the warm-up's records drain for a second before the first measured one.
fn warm_up(
    p: &BaseProducer,
    (input, output): (&str, &str),
    format: OutputFormat,
    warm: &AtomicBool,
) {
    let mut g = Generator::new(11, Utc::now());
    let mut buf = Vec::new();
    let t = Instant::now();
    while !warm.load(Ordering::Relaxed) {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "latency: nothing read back from {output}"
        );
        for _ in 0..20 {
            let key = fresh_event(&mut g, format, &mut buf);
            send(p, input, &key, &buf);
        }
        p.flush(Duration::from_secs(10)).unwrap();
        let w = Instant::now();
        while !warm.load(Ordering::Relaxed) && w.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    std::thread::sleep(Duration::from_secs(1));
}

/// Sends `events` to `input`, paced at `per_s`, while a process forwards them to `output`
/// (after a warm-up: until one of its events is read back, the process has not yet
/// joined its group); the latency of every event read back, from the instant it was
/// handed to the producer to the instant the reader had it. The reader runs on a thread
/// of its own and every event is made beforehand, so neither waits on the other.
fn paced(
    (input, output): (&str, &str),
    format: OutputFormat,
    events: &[(String, Vec<u8>)],
    per_s: f64,
) -> Latency {
    let index: HashMap<&str, usize> = events
        .iter()
        .enumerate()
        .map(|(i, (k, _))| (k.as_str(), i))
        .collect();
    let warm = AtomicBool::new(false);
    // Until the last event is sent, then 60 s more.
    let deadline = std::sync::Mutex::new(Instant::now() + Duration::from_secs(3600));
    let (joined_tx, joined) = std::sync::mpsc::channel();
    // `linger.ms` 5 (librdkafka's default): at 0 every record goes in a produce request
    // of its own, and tansu, which serves ~10,000 of those a second on this machine,
    // queues them for seconds before any process is involved (`E2E_PACED_LINGER`).
    let linger = std::env::var("E2E_PACED_LINGER").unwrap_or_else(|_| "5".into());
    let p: BaseProducer = client_config().set("linger.ms", linger).create().unwrap();
    let mut sent: Vec<Instant> = Vec::with_capacity(events.len());
    let read = std::thread::scope(|s| {
        let reader = s.spawn(|| read_back(output, &index, joined_tx, &warm, &deadline));
        joined
            .recv_timeout(Duration::from_secs(60))
            .expect("latency: the reader joined its group");
        warm_up(&p, (input, output), format, &warm);
        let start = Instant::now();
        for (i, (key, value)) in events.iter().enumerate() {
            let due = start + Duration::from_secs_f64(i as f64 / per_s);
            let now = Instant::now();
            if now < due {
                std::thread::sleep(due - now);
            }
            sent.push(Instant::now());
            send(&p, input, key, value);
        }
        p.flush(Duration::from_secs(30)).unwrap();
        *deadline.lock().unwrap() = Instant::now() + Duration::from_secs(60);
        reader.join().expect("the latency reader")
    });
    let mut latencies: Vec<f64> = read
        .iter()
        .zip(&sent)
        .filter_map(|(r, s)| r.map(|r| r.duration_since(*s).as_secs_f64() * 1000.0))
        .collect();
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert!(!latencies.is_empty(), "latency: nothing read back");
    let pct = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q) as usize];
    eprintln!(
        "e2e: latency to {output}: {} read back of {} sent at {per_s:.0}/s",
        latencies.len(),
        sent.len()
    );
    Latency {
        p50: pct(0.50),
        p99: pct(0.99),
        max: latencies[latencies.len() - 1],
    }
}

/// SIGTERM, and up to two minutes to drain (killed on drop after that).
fn stop(mut filter: Filter) {
    filter.signal("TERM");
    filter.wait(Duration::from_secs(120));
}

/// The settings of one benchmark run, from the environment.
struct Plan {
    n: u64,
    rounds: usize,
    restart: bool,
    only: Option<String>,
    baselines: Vec<PathBuf>,
    latency_secs: f64,
    /// The latency phase's pace (events/s); `None`: half the floor's median throughput.
    latency_rate: Option<f64>,
    /// The processes a round measures, by index (see [`MODES`], then each baseline).
    modes: Vec<usize>,
}

impl Plan {
    fn from_env() -> Plan {
        let number = |name: &str, default: f64| -> f64 {
            std::env::var(name)
                .ok()
                .map(|v| v.parse().unwrap_or_else(|_| panic!("{name} is a number")))
                .unwrap_or(default)
        };
        let baselines: Vec<PathBuf> = std::env::var_os("E2E_BASELINE")
            .map(|v| std::env::split_paths(&v).collect())
            .unwrap_or_default();
        for b in &baselines {
            assert!(b.is_file(), "E2E_BASELINE: {}: no such file", b.display());
        }
        let plan = Plan {
            n: number("E2E_EVENTS", 1_000_000.0) as u64,
            rounds: number("E2E_ROUNDS", 5.0) as usize,
            restart: std::env::var_os("E2E_RESTART_BROKER").is_some(),
            only: std::env::var("E2E_INPUTS").ok(),
            latency_secs: number("E2E_LATENCY_SECS", 10.0),
            latency_rate: std::env::var_os("E2E_LATENCY_RATE")
                .map(|_| number("E2E_LATENCY_RATE", 0.0)),
            modes: modes(
                std::env::var("E2E_PROCESSES").ok().as_deref(),
                baselines.len(),
            ),
            baselines,
        };
        assert!(
            plan.rounds > 0 || plan.latency_rate.is_some(),
            "E2E_ROUNDS=0 (the latency phase alone) needs E2E_LATENCY_RATE: without rounds there is no floor throughput to pace at half of"
        );
        plan
    }
}

/// The processes of a round, by index: the floor, floor+headers, the pass-through, the
/// filter; then each baseline build.
const MODES: [&str; 4] = ["floor", "floor+headers", "passthrough", "run"];

/// The modes to measure: those `processes` (`E2E_PROCESSES`, e.g. `floor,run`) names of
/// [`MODES`], or all; the floor always (every ratio is to it); every baseline.
fn modes(processes: Option<&str>, baselines: usize) -> Vec<usize> {
    let wanted: Option<Vec<&str>> = processes.map(|w| w.split(',').collect());
    for name in wanted.iter().flatten() {
        assert!(
            MODES.contains(name),
            "E2E_PROCESSES: {name:?} is none of {MODES:?}"
        );
    }
    let kept = |m: usize| {
        m == 0 || m >= MODES.len() || wanted.as_ref().is_none_or(|w| w.contains(&MODES[m]))
    };
    (0..MODES.len() + baselines).filter(|m| kept(*m)).collect()
}

/// Runs mode `m` of round `tag` on `input` (`n` records), stops it, returns its figures.
fn run_mode(
    plan: &Plan,
    m: usize,
    dir: &Path,
    (label, input, format): (&str, &str, OutputFormat),
    tag: &str,
) -> Phase {
    let n = plan.n;
    let (mut phase, process) = match m {
        0 => floor_phase(&format!("floor{tag}-{label}"), dir, input, n, false),
        1 => floor_phase(&format!("floor+headers{tag}-{label}"), dir, input, n, true),
        2 | 3 => {
            let name = if m == 2 { "passthrough" } else { "filter" };
            let (p, process, _) = pipeline(
                &format!("{name}-{label}{tag}"),
                dir,
                input,
                n,
                format,
                m == 2,
                None,
            );
            (p, process)
        }
        _ => {
            let b = &plan.baselines[m - MODES.len()];
            let build = b.file_name().unwrap_or_default().to_string_lossy();
            let (p, process, _) = pipeline(
                &format!("{build}-{label}{tag}"),
                dir,
                input,
                n,
                format,
                false,
                Some(b),
            );
            (p, process)
        }
    };
    stop(process);
    phase.name = match m {
        0 => "floor".into(),
        1 => "floor+headers".into(),
        2 => "run --passthrough".into(),
        3 => "run".into(),
        _ => format!(
            "run@{}",
            plan.baselines[m - MODES.len()]
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
        ),
    };
    phase
}

/// The latency phase of one input: the floor, then the filter, each on an input of its
/// own, paced at half the floor's median throughput.
fn latency_phase(
    plan: &Plan,
    dir: &Path,
    rt: &tokio::runtime::Runtime,
    (label, format): (&str, OutputFormat),
    floor_events_per_s: f64,
) -> [Latency; 3] {
    let per_s = plan
        .latency_rate
        .unwrap_or(floor_events_per_s / 2.0)
        .max(100.0);
    let count = (per_s * plan.latency_secs) as usize;
    let events = fresh_events(format, count);
    let stamp = format!("{}-{}", std::process::id(), Utc::now().timestamp());
    let floor_input = format!("e2e-latency-floor-{label}-{stamp}");
    let filter_input = format!("e2e-latency-filter-{label}-{stamp}");
    let direct = format!("e2e-latency-broker-{label}-{stamp}");
    if plan.restart {
        restart_broker();
    }
    rt.block_on(common::broker::create_topics(
        &[&floor_input, &filter_input, &direct],
        PARTITIONS,
    ));
    // The set-up's own latency: the reader on the topic the events are sent to, no
    // process between them.
    let broker_latency = paced((&direct, &direct), format, &events, per_s);
    // The floor, told to stop only after more records than will ever come.
    let group = format!("e2e-latency-floor-{label}-{stamp}");
    let done = dir.join(format!("latency-floor-{label}.done"));
    let outputs = [format!("{floor_input}.a"), format!("{floor_input}.b")];
    let run = FloorRun {
        input: &floor_input,
        n: u64::MAX / 4,
        group: &group,
        outputs: outputs.clone(),
        done: &done,
        headers: false,
    };
    let floor = start_floor(&run, &dir.join(format!("latency-floor-{label}.log")));
    // The floor creates its outputs: wait for it to have done so before reading.
    std::thread::sleep(Duration::from_secs(2));
    let floor_latency = paced((&floor_input, &outputs[1]), format, &events, per_s);
    stop(floor);
    let name = format!("latency-filter-{label}");
    let t = topics(&name, &filter_input);
    let cfg = config(dir, &t, &name, format);
    let allocations = dir.join(format!("{name}.allocations"));
    let filter = start(
        &cfg,
        false,
        &dir.join(format!("{name}.log")),
        None,
        &allocations,
    );
    // `run` creates its outputs at start (topics.mode = "apply" in the tests' config).
    std::thread::sleep(Duration::from_secs(2));
    let filter_latency = paced((&filter_input, &t.security), format, &events, per_s);
    stop(filter);
    [broker_latency, floor_latency, filter_latency]
}

/// The figures of one input over every round, then its latency phase.
fn bench_input(
    plan: &Plan,
    dir: &Path,
    rt: &tokio::runtime::Runtime,
    (label, format): (&str, OutputFormat),
) -> (usize, Vec<Summary>, Option<[Latency; 3]>) {
    let input = format!(
        "e2e-{label}-{}-{}",
        std::process::id(),
        Utc::now().timestamp()
    );
    let mut mean = 0;
    let mut loaded = false;
    // Loads the input (once, or before every process on a fresh broker).
    let mut prepare = || {
        if plan.restart {
            restart_broker();
        } else if loaded {
            return;
        }
        rt.block_on(common::broker::create_topics(&[&input], PARTITIONS));
        let t = Instant::now();
        mean = load(&input, plan.n, format);
        loaded = true;
        eprintln!(
            "e2e: loaded {} {label} events ({mean} B mean) in {:.1} s",
            plan.n,
            t.elapsed().as_secs_f64()
        );
    };
    let mut runs: Vec<Vec<Phase>> = (0..MODES.len() + plan.baselines.len())
        .map(|_| Vec::new())
        .collect();
    for round in 0..plan.rounds {
        let tag = format!("-r{round}");
        // The order of the processes alternates between rounds, so that neither a slower
        // stretch of the shared machine nor the broker's warm-up favours one of them.
        let mut order = plan.modes.clone();
        if round % 2 == 1 {
            order.reverse();
        }
        for m in order {
            prepare();
            let phase = run_mode(plan, m, dir, (label, &input, format), &tag);
            runs[m].push(phase);
        }
    }
    let rows: Vec<Summary> = runs
        .iter()
        .filter(|r| !r.is_empty())
        .map(|r| summarise(r))
        .collect();
    let floor = rows.first().map_or(0.0, |r| r.events_per_s.median);
    // `E2E_LATENCY_SECS=0`: throughput only.
    let latency =
        (plan.latency_secs > 0.0).then(|| latency_phase(plan, dir, rt, (label, format), floor));
    (mean, rows, latency)
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
    let plan = Plan::from_env();
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut results = Vec::new();
    for (label, format) in [
        ("protobuf", OutputFormat::Protobuf),
        ("json", OutputFormat::Json),
    ] {
        if plan.only.as_deref().is_some_and(|o| o != label) {
            continue;
        }
        let (mean, rows, latency) = bench_input(&plan, dir.path(), &rt, (label, format));
        results.push((label, mean, rows, latency));
    }
    report(&plan, &results);
}

/// One input's figures: its label, its mean event size, one summary per process, and the
/// latency of the broker, the floor and `run` (none with `E2E_LATENCY_SECS=0`).
type InputFigures<'a> = (&'a str, usize, Vec<Summary>, Option<[Latency; 3]>);

/// The table: median (lowest–highest) of each figure over the rounds, ratios of medians to
/// the floor of the same input; then the latency of the floor and the filter.
fn report(plan: &Plan, results: &[InputFigures<'_>]) {
    println!(
        "\nend-to-end, {} events per input, median (lowest–highest) of {} round(s){}, broker {}, {} CPU(s); ratios of medians to the floor of the same input",
        plan.n,
        plan.rounds,
        if plan.restart { ", a fresh broker for each process" } else { "" },
        brokers(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!(
        "{:<14} {:<18} {:>26} {:>6} {:>20} {:>6} {:>20} {:>8} {:>18} {:>18}",
        "input",
        "process",
        "events/s",
        "× floor",
        "CPU-µs/event",
        "× floor",
        "broker µs/event",
        "RSS MiB",
        "allocs/event",
        "others, cores"
    );
    for (label, mean, rows, _) in results {
        let Some(floor) = rows.first() else {
            continue;
        };
        for p in rows {
            println!(
                "{:<14} {:<18} {:>26} {:>6.2} {:>20} {:>6.2} {:>20} {:>8.0} {:>18} {:>18}",
                format!("{label} {mean}B"),
                p.name,
                p.events_per_s.show(0),
                p.events_per_s.median / floor.events_per_s.median,
                p.cpu_us_per_event.show(2),
                p.cpu_us_per_event.median / floor.cpu_us_per_event.median,
                p.broker_us_per_event
                    .map(|b| b.show(2))
                    .unwrap_or_else(|| "-".into()),
                p.peak_rss_mib,
                p.allocations_per_event
                    .map(|a| a.show(2))
                    .unwrap_or_else(|| "-".into()),
                p.others_cores.show(2),
            );
        }
    }
    for (label, _, rows, _) in results {
        for p in rows.iter().filter(|p| p.busy_rounds > 0) {
            println!(
                "note: {label} {}: the rest of the machine used more than {BUSY_OTHERS} cores in {} of {} round(s) — those rounds did not measure the process alone (others, cores)",
                p.name,
                p.busy_rounds,
                plan.rounds
            );
        }
    }
    // `E2E_LATENCY_SECS=0`: no input has a latency phase.
    if results.iter().all(|(.., latency)| latency.is_none()) {
        return;
    }
    let pace = match plan.latency_rate {
        Some(rate) => format!("{rate:.0} events/s"),
        None => "half the floor's median throughput".to_string(),
    };
    println!(
        "\nlatency, send → output read back, paced at {pace} for {} s",
        plan.latency_secs
    );
    println!(
        "{:<10} {:<8} {:>8} {:>8} {:>8}",
        "input", "process", "p50 ms", "p99 ms", "max ms"
    );
    for (label, _, _, latency) in results {
        let Some(latency) = latency else { continue };
        for (name, l) in ["broker", "floor", "run"].iter().zip(latency) {
            println!(
                "{:<10} {:<8} {:>8.1} {:>8.1} {:>8.1}",
                label, name, l.p50, l.p99, l.max
            );
        }
    }
}
