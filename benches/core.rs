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

use cdr_purpose_filter::config::{self, Settings};
use cdr_purpose_filter::decode::{self, InputFormat};
use cdr_purpose_filter::encode::{self, OutputFormat};
use cdr_purpose_filter::framing::{self, BodyKind};
use cdr_purpose_filter::gen::Generator;
use cdr_purpose_filter::pipeline::records::{Source, Transform};
use cdr_purpose_filter::policy::{Outcome, Policy};
use cdr_purpose_filter::retention::{self, LegalTime, Ttl};
use cdr_purpose_filter::schema::{self, CdrEvent};
use cdr_purpose_filter::telemetry::Stats;
use cdr_purpose_filter::wire::{WireFilter, WireScratch};
use chrono::{Duration, Utc};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const BATCH: usize = 1000;

/// The binary's allocator, so the bench measures what runs, counting allocations.
#[global_allocator]
static GLOBAL: Counting = Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

struct Counting;

// SAFETY: forwards every call to mimalloc unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }
}

/// Allocations (alloc, alloc_zeroed, realloc) per call of `f`, after one warm-up call.
fn allocations_per_event(events: usize, mut f: impl FnMut()) -> f64 {
    f();
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    const ROUNDS: u64 = 5;
    for _ in 0..ROUNDS {
        f();
    }
    (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / (ROUNDS as f64 * events as f64)
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
                r.headers(),
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
                            r.headers(),
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
    ] {
        let transform = Transform::new(settings(output));
        let mut out = Vec::with_capacity(4);
        group.bench_function(BenchmarkId::new(name, BATCH), |b| {
            b.iter(|| {
                let now = Utc::now();
                for payload in input.iter() {
                    out.clear();
                    transform.process(&source, payload, now, &stats, &mut out);
                    black_box(&out);
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

criterion_group!(benches, core, pipeline, policy);
criterion_main!(benches);
