//! The filter's core, single thread, on realistic generated events (every type, content
//! and vendor extensions present): events per second.
//!
//! `cargo bench --bench core`

use cdr_purpose_filter::config::{self, Settings};
use cdr_purpose_filter::encode::{self, OutputFormat};
use cdr_purpose_filter::retention::{self, LegalTime, Ttl};
use cdr_purpose_filter::gen::Generator;
use cdr_purpose_filter::pipeline::records::{Source, Transform};
use cdr_purpose_filter::schema::{self, CdrEvent};
use cdr_purpose_filter::telemetry::Stats;
use chrono::{Duration, Utc};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::sync::Arc;

const BATCH: usize = 1000;

/// The binary's allocator, so the bench measures what runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
                black_box(retention::expires_at(*t, Ttl::Months(3), 3, LegalTime::PARIS));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, pipeline, policy);
criterion_main!(benches);
