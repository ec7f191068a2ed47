//! The filter's core, single thread, on realistic generated events (every type, content
//! and vendor extensions present): events per second.
//!
//! `cargo bench --bench core`
//!
//! `core/*` compares the struct path (prost decode → `Policy::apply_owned` → prost encode
//! → headers) with the wire path (`policy::wire`), both from protobuf bytes to records
//! ready to send (key, value, headers) for both purposes, without the pipeline's
//! telemetry; `transform/*` is the pipeline's `Transform::process`, telemetry included.
//! Before measuring, the allocations per event of each path are counted with the
//! counting allocator below and printed.

use cdr_purpose_filter::alloc_count::{self, Counting};
use cdr_purpose_filter::config::{self, Settings};
use cdr_purpose_filter::decode::{self, InputFormat};
use cdr_purpose_filter::encode::{self, OutputFormat};
use cdr_purpose_filter::framing::{self, BodyKind};
use cdr_purpose_filter::gen::Generator;
use cdr_purpose_filter::json::{self, JsonScratch};
use cdr_purpose_filter::pipeline::records::{self, Outgoing, Source, Transform};
use cdr_purpose_filter::policy::{Outcome, Policy};
use cdr_purpose_filter::retention::{self, LegalTime, Ttl};
use cdr_purpose_filter::schema::{self, CdrEvent};
use cdr_purpose_filter::telemetry::Stats;
use cdr_purpose_filter::wire::{WireFilter, WireScratch};
use chrono::{Duration, Utc};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::sync::Arc;

const BATCH: usize = 1000;

/// The binary's allocator, so the bench measures what runs, counting allocations.
#[global_allocator]
static GLOBAL: Counting<mimalloc::MiMalloc> = Counting(mimalloc::MiMalloc);

/// Allocations (alloc, alloc_zeroed, realloc) per call of `f`, after one warm-up call.
fn allocations_per_event(events: usize, mut f: impl FnMut()) -> f64 {
    f();
    let before = alloc_count::process();
    const ROUNDS: u64 = 5;
    for _ in 0..ROUNDS {
        f();
    }
    (alloc_count::process() - before) as f64 / (ROUNDS as f64 * events as f64)
}

/// This thread's time on a CPU, in nanoseconds (`/proc/thread-self/schedstat`): unlike
/// wall time, it does not count the time other work on the machine holds the cores.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Events per CPU-second of this thread over `rounds` calls of `f` (each `events` events).
fn events_per_cpu_second(events: usize, rounds: u32, mut f: impl FnMut()) -> Option<f64> {
    f();
    let before = thread_cpu_ns()?;
    for _ in 0..rounds {
        f();
    }
    let spent = thread_cpu_ns()?.checked_sub(before)?;
    (spent > 0).then(|| events as f64 * f64::from(rounds) * 1e9 / spent as f64)
}

/// A record ready to send: what `rdkafka`'s `BaseRecord` borrows.
type Ready<'a> = (
    &'a str,
    &'a [u8],
    &'a [u8],
    [(&'static str, &'a str); 5],
    i64,
);

/// The struct path, protobuf in and out, both purposes: records ready to send.
fn struct_path(
    policy: &Policy,
    payload: &[u8],
    now: chrono::DateTime<Utc>,
    values: &mut [Vec<u8>; 2],
) -> usize {
    let Ok((event, _)) = decode::decode(payload, InputFormat::Protobuf) else {
        return 0;
    };
    let evaluation = policy.apply_owned(event, now);
    let mut n = 0;
    for ((_, o), value) in evaluation.outcomes.iter().zip(values.iter_mut()) {
        if let Outcome::Forward(r) = o {
            encode::encode_event(&r.event, OutputFormat::Protobuf, value).unwrap();
            let headers = encode::headers(r, OutputFormat::Protobuf);
            black_box((&r.key, &value[..], &headers, r.timestamp_ms));
            n += 1;
        }
    }
    n
}

/// The wire path, protobuf in and out, both purposes: records ready to send.
fn wire_path(
    filter: &WireFilter,
    payload: &[u8],
    now: chrono::DateTime<Utc>,
    scratch: &mut WireScratch,
) -> usize {
    if filter.apply(payload, now, scratch).is_err() {
        return 0;
    }
    let mut n = 0;
    for r in scratch.records() {
        if r.outcome.is_ok() {
            let ready: Ready<'_> = (
                scratch.key(),
                scratch.key().as_bytes(),
                &r.value,
                r.headers(OutputFormat::Protobuf),
                r.timestamp_ms,
            );
            black_box(&ready);
            n += 1;
        }
    }
    n
}

fn core(c: &mut Criterion) {
    let events = events();
    let pb = encoded(&events, OutputFormat::Protobuf);
    let policy = settings("protobuf").policy.clone();
    let filter = WireFilter::new(&policy).unwrap();
    let now = Utc::now();
    let mut values = [Vec::new(), Vec::new()];
    let mut scratch = WireScratch::default();
    let forwarded: usize = pb
        .iter()
        .map(|p| struct_path(&policy, p, now, &mut values))
        .sum();
    let wire_forwarded: usize = pb
        .iter()
        .map(|p| wire_path(&filter, p, now, &mut scratch))
        .sum();
    assert_eq!(
        forwarded, wire_forwarded,
        "both paths forward the same records"
    );
    // Schema Registry framing in and out: the body a slice, the prefix written into the
    // reused buffer (compare with `protobuf_wire_path`).
    let framed: Vec<Vec<u8>> = pb
        .iter()
        .map(|p| framing::frame(5, BodyKind::Protobuf, &[0], p))
        .collect();
    let prefix = encode::confluent_header(OutputFormat::Protobuf, 77);
    let struct_allocs = allocations_per_event(pb.len(), || {
        for p in &pb {
            black_box(struct_path(&policy, p, now, &mut values));
        }
    });
    let wire_allocs = allocations_per_event(pb.len(), || {
        for p in &pb {
            black_box(wire_path(&filter, p, now, &mut scratch));
        }
    });
    let framed_allocs = allocations_per_event(pb.len(), || {
        for p in &framed {
            let format = InputFormat::ConfluentProtobuf;
            let applied = filter.apply_record(p, format, &[], &prefix, now, &mut scratch);
            black_box(applied.is_ok());
        }
    });
    eprintln!(
        "allocations per event, protobuf → both purposes → protobuf ({forwarded} records from {} events): struct path {struct_allocs:.2}, wire path {wire_allocs:.2}, wire path framed in and out {framed_allocs:.2}",
        pb.len()
    );
    let mut group = c.benchmark_group("core");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function(BenchmarkId::new("protobuf_struct_path", BATCH), |b| {
        b.iter(|| {
            let now = Utc::now();
            for p in &pb {
                black_box(struct_path(&policy, p, now, &mut values));
            }
        })
    });
    group.bench_function(BenchmarkId::new("protobuf_wire_path", BATCH), |b| {
        b.iter(|| {
            let now = Utc::now();
            for p in &pb {
                black_box(wire_path(&filter, p, now, &mut scratch));
            }
        })
    });
    group.bench_function(BenchmarkId::new("protobuf_wire_path_framed", BATCH), |b| {
        b.iter(|| {
            let now = Utc::now();
            for p in &framed {
                let format = InputFormat::ConfluentProtobuf;
                if filter
                    .apply_record(p, format, &[], &prefix, now, &mut scratch)
                    .is_err()
                {
                    continue;
                }
                for r in scratch.records() {
                    if r.outcome.is_ok() {
                        let ready: Ready<'_> = (
                            scratch.key(),
                            scratch.key().as_bytes(),
                            &r.value,
                            r.headers(OutputFormat::Protobuf),
                            r.timestamp_ms,
                        );
                        black_box(&ready);
                    }
                }
            }
        })
    });
    group.finish();
}

/// The struct path from JSON: serde decode → policy → protobuf, records ready to send.
fn json_struct_path(
    policy: &Policy,
    payload: &[u8],
    now: chrono::DateTime<Utc>,
    values: &mut [Vec<u8>; 2],
    output: OutputFormat,
) -> usize {
    let Ok((event, _)) = decode::decode(payload, InputFormat::Json) else {
        return 0;
    };
    let evaluation = policy.apply_owned(event, now);
    let mut n = 0;
    for ((_, o), value) in evaluation.outcomes.iter().zip(values.iter_mut()) {
        if let Outcome::Forward(r) = o {
            encode::encode_event(&r.event, output, value).unwrap();
            let headers = encode::headers(r, output);
            black_box((&r.key, &value[..], &headers, r.timestamp_ms));
            n += 1;
        }
    }
    n
}

/// The struct path from protobuf to JSON.
fn struct_path_to_json(
    policy: &Policy,
    payload: &[u8],
    now: chrono::DateTime<Utc>,
    values: &mut [Vec<u8>; 2],
) -> usize {
    let Ok((event, _)) = decode::decode(payload, InputFormat::Protobuf) else {
        return 0;
    };
    let evaluation = policy.apply_owned(event, now);
    let mut n = 0;
    for ((_, o), value) in evaluation.outcomes.iter().zip(values.iter_mut()) {
        if let Outcome::Forward(r) = o {
            encode::encode_event(&r.event, OutputFormat::Json, value).unwrap();
            let headers = encode::headers(r, OutputFormat::Json);
            black_box((&r.key, &value[..], &headers, r.timestamp_ms));
            n += 1;
        }
    }
    n
}

/// JSON in on the fast path: JSON → canonical protobuf (`json::JsonScratch`) → wire path.
fn json_fast_path(
    filter: &WireFilter,
    payload: &[u8],
    now: chrono::DateTime<Utc>,
    json: &mut JsonScratch,
    scratch: &mut WireScratch,
) -> usize {
    let Ok(pb) = json.to_protobuf(payload) else {
        return 0;
    };
    wire_path(filter, pb, now, scratch)
}

/// JSON out on the fast path: wire path → `json::write_json` of each output.
fn to_json_fast_path(
    filter: &WireFilter,
    payload: &[u8],
    now: chrono::DateTime<Utc>,
    scratch: &mut WireScratch,
    values: &mut [Vec<u8>; 2],
) -> usize {
    if filter.apply(payload, now, scratch).is_err() {
        return 0;
    }
    let mut n = 0;
    for (r, value) in scratch.records().iter().zip(values.iter_mut()) {
        if r.outcome.is_ok() {
            json::write_json(&r.value, value).unwrap();
            let headers = r.headers(OutputFormat::Json);
            let ready: Ready<'_> = (
                scratch.key(),
                scratch.key().as_bytes(),
                value,
                headers,
                r.timestamp_ms,
            );
            black_box(&ready);
            n += 1;
        }
    }
    n
}

/// `json/*`: JSON → both purposes → protobuf and protobuf → both purposes → JSON, the
/// struct path and the fast path side by side, allocations per event printed first.
fn json_paths(c: &mut Criterion) {
    let events = events();
    let pb = encoded(&events, OutputFormat::Protobuf);
    let js = encoded(&events, OutputFormat::Json);
    let policy = settings("protobuf").policy.clone();
    let filter = WireFilter::new(&policy).unwrap();
    let now = Utc::now();
    let mut values = [Vec::new(), Vec::new()];
    let mut scratch = WireScratch::default();
    let mut json = JsonScratch::default();
    let a: usize = js
        .iter()
        .map(|p| json_struct_path(&policy, p, now, &mut values, OutputFormat::Protobuf))
        .sum();
    let b: usize = js
        .iter()
        .map(|p| json_fast_path(&filter, p, now, &mut json, &mut scratch))
        .sum();
    let c2: usize = pb
        .iter()
        .map(|p| struct_path_to_json(&policy, p, now, &mut values))
        .sum();
    let d: usize = pb
        .iter()
        .map(|p| to_json_fast_path(&filter, p, now, &mut scratch, &mut values))
        .sum();
    assert_eq!((a, c2), (b, d), "both paths forward the same records");
    assert_eq!(
        json.fallbacks, 0,
        "every generated event takes the fast parser"
    );
    let allocs = [
        allocations_per_event(js.len(), || {
            for p in &js {
                black_box(json_struct_path(
                    &policy,
                    p,
                    now,
                    &mut values,
                    OutputFormat::Protobuf,
                ));
            }
        }),
        allocations_per_event(js.len(), || {
            for p in &js {
                black_box(json_fast_path(&filter, p, now, &mut json, &mut scratch));
            }
        }),
        allocations_per_event(pb.len(), || {
            for p in &pb {
                black_box(struct_path_to_json(&policy, p, now, &mut values));
            }
        }),
        allocations_per_event(pb.len(), || {
            for p in &pb {
                black_box(to_json_fast_path(
                    &filter,
                    p,
                    now,
                    &mut scratch,
                    &mut values,
                ));
            }
        }),
    ];
    eprintln!(
        "allocations per event: JSON → protobuf ({a} records): struct path {:.2}, fast path {:.2}; protobuf → JSON ({c2} records): struct path {:.2}, fast path {:.2}",
        allocs[0], allocs[1], allocs[2], allocs[3]
    );
    let cpu = |f: &mut dyn FnMut()| {
        events_per_cpu_second(BATCH, 100, f)
            .map(|r| format!("{:.0}", r))
            .unwrap_or_else(|| "n/a".into())
    };
    let rates = [
        cpu(&mut || {
            for p in &js {
                black_box(json_struct_path(
                    &policy,
                    p,
                    now,
                    &mut values,
                    OutputFormat::Protobuf,
                ));
            }
        }),
        cpu(&mut || {
            for p in &js {
                black_box(json_fast_path(&filter, p, now, &mut json, &mut scratch));
            }
        }),
        cpu(&mut || {
            for p in &pb {
                black_box(struct_path_to_json(&policy, p, now, &mut values));
            }
        }),
        cpu(&mut || {
            for p in &pb {
                black_box(to_json_fast_path(
                    &filter,
                    p,
                    now,
                    &mut scratch,
                    &mut values,
                ));
            }
        }),
    ];
    eprintln!(
        "events per CPU-second of the bench thread: JSON → protobuf: struct path {}, fast path {}; protobuf → JSON: struct path {}, fast path {}",
        rates[0], rates[1], rates[2], rates[3]
    );
    let mut group = c.benchmark_group("json");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function(
        BenchmarkId::new("json_to_protobuf_struct_path", BATCH),
        |b| {
            b.iter(|| {
                let now = Utc::now();
                for p in &js {
                    black_box(json_struct_path(
                        &policy,
                        p,
                        now,
                        &mut values,
                        OutputFormat::Protobuf,
                    ));
                }
            })
        },
    );
    group.bench_function(BenchmarkId::new("json_to_protobuf_fast_path", BATCH), |b| {
        b.iter(|| {
            let now = Utc::now();
            for p in &js {
                black_box(json_fast_path(&filter, p, now, &mut json, &mut scratch));
            }
        })
    });
    group.bench_function(
        BenchmarkId::new("json_to_protobuf_conversion_only", BATCH),
        |b| {
            b.iter(|| {
                for p in &js {
                    black_box(json.to_protobuf(p).map(<[u8]>::len).ok());
                }
            })
        },
    );
    group.bench_function(
        BenchmarkId::new("protobuf_to_json_struct_path", BATCH),
        |b| {
            b.iter(|| {
                let now = Utc::now();
                for p in &pb {
                    black_box(struct_path_to_json(&policy, p, now, &mut values));
                }
            })
        },
    );
    group.bench_function(BenchmarkId::new("protobuf_to_json_fast_path", BATCH), |b| {
        b.iter(|| {
            let now = Utc::now();
            for p in &pb {
                black_box(to_json_fast_path(
                    &filter,
                    p,
                    now,
                    &mut scratch,
                    &mut values,
                ));
            }
        })
    });
    group.finish();
}

fn settings(output: &str) -> Arc<Settings> {
    let toml = format!(
        "[output]\nformat = \"{output}\"\n[purposes.billing]\n[purposes.security]\n[topics]\nmode = \"off\"\n"
    );
    Arc::new(Settings::validate(config::parse(&toml, &[]).unwrap()).unwrap())
}

fn events() -> Vec<CdrEvent> {
    let mut g = Generator::new(42, Utc::now());
    (0..BATCH).map(|_| g.next_event()).collect()
}

fn encoded(events: &[CdrEvent], format: OutputFormat) -> Vec<Vec<u8>> {
    events
        .iter()
        .map(|e| {
            let mut b = Vec::new();
            encode::encode_event(e, format, &mut b).unwrap();
            b
        })
        .collect()
}

/// What the engine does with outputs once the producer copied them: their buffers go
/// back for the next ones.
fn spend(out: &mut Vec<Outgoing>) {
    for o in out.drain(..) {
        records::recycle(o.key, o.value);
    }
}

fn pipeline(c: &mut Criterion) {
    // The Prometheus recorder, as in `run`: counting is part of the cost.
    let _handle = cdr_purpose_filter::telemetry::install("R10-14/2021").expect("recorder");
    let events = events();
    let pb = encoded(&events, OutputFormat::Protobuf);
    let json = encoded(&events, OutputFormat::Json);
    let mean = pb.iter().map(Vec::len).sum::<usize>() / pb.len();
    eprintln!(
        "mean protobuf event size: {mean} bytes; mean JSON: {} bytes",
        json.iter().map(Vec::len).sum::<usize>() / json.len()
    );
    let stats = Stats::default();
    let source = Source {
        topic: Arc::from("cdr.raw"),
        partition: 0,
        offset: 0,
    };
    let mut group = c.benchmark_group("transform");
    group.throughput(Throughput::Elements(BATCH as u64));
    for (name, input, output) in [
        ("protobuf_to_protobuf", &pb, "protobuf"),
        ("json_to_protobuf", &json, "protobuf"),
        ("protobuf_to_json", &pb, "json"),
        ("json_to_json", &json, "json"),
    ] {
        let transform = Transform::new(settings(output));
        let mut out = Vec::with_capacity(4);
        // The outputs the pipeline hands to the producer own their key and value.
        let allocs = allocations_per_event(input.len(), || {
            let now = Utc::now();
            for payload in input.iter() {
                transform.process(&source, payload, now, &stats, &mut out);
                spend(&mut out);
            }
        });
        eprintln!("allocations per event, Transform::process {name}: {allocs:.2}");
        group.bench_function(BenchmarkId::new(name, BATCH), |b| {
            b.iter(|| {
                let now = Utc::now();
                for payload in input.iter() {
                    transform.process(&source, payload, now, &stats, &mut out);
                    black_box(&out);
                    spend(&mut out);
                }
            })
        });
    }
    group.finish();
}

fn policy(c: &mut Criterion) {
    let events = events();
    let policy = settings("protobuf").policy.clone();
    let now = Utc::now();
    let mut group = c.benchmark_group("policy");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("apply_both_purposes", |b| {
        b.iter(|| {
            for e in &events {
                black_box(policy.apply(e, now));
            }
        })
    });
    group.bench_function("expiry", |b| {
        let times: Vec<_> = events
            .iter()
            .map(|e| schema::to_datetime(e.event_time.as_ref().unwrap()).unwrap())
            .collect();
        b.iter(|| {
            for t in &times {
                black_box(retention::expires_at(
                    *t,
                    Ttl::Fixed(Duration::days(364)),
                    12,
                    LegalTime::PARIS,
                ));
                black_box(retention::expires_at(
                    *t,
                    Ttl::Months(3),
                    3,
                    LegalTime::PARIS,
                ));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, core, pipeline, policy, json_paths);
criterion_main!(benches);
