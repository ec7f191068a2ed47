//! Allocations per event on the paths every record takes, counted by a wrapping global
//! allocator: a regression that adds an allocation per record fails here, in CI, without a
//! timed assertion (the count is the same on a loaded machine as on an idle one).
//!
//! The counter is per thread (`alloc_count::thread`), so tests running beside each other in this binary, and the
//! threads a recorder starts, do not add to it. Each path runs once to warm its reused
//! buffers (scratch, the spare buffers of `pipeline::records`), then over every generated
//! event several times; the count over those passes must be zero.
//!
//! `Transform::process` is measured twice: with no metrics recorder (the pipeline's own
//! work: zero), and with the Prometheus recorder `run` installs, whose histogram keeps its
//! samples in blocks it allocates as they fill (one per block of samples of
//! `cdr_event_age_seconds`, drained at each scrape): far below one per event.

use cdr_purpose_filter::alloc_count::{self, Counting};
use cdr_purpose_filter::config::{self, Settings};
use cdr_purpose_filter::decode::InputFormat;
use cdr_purpose_filter::encode::{self, OutputFormat};
use cdr_purpose_filter::framing::{self, BodyKind};
use cdr_purpose_filter::gen::Generator;
use cdr_purpose_filter::json::{self, JsonScratch};
use cdr_purpose_filter::pipeline::records::{self, Outgoing, Source, Transform};
use cdr_purpose_filter::telemetry::Stats;
use cdr_purpose_filter::wire::{WireFilter, WireScratch};
use chrono::Utc;
use std::alloc::System;
use std::hint::black_box;
use std::sync::Arc;

#[global_allocator]
static GLOBAL: Counting<System> = Counting(System);

const EVENTS: usize = 1000;
const PASSES: u64 = 5;

/// Allocations of this thread over `PASSES` calls of `f`, after one warm-up call.
fn allocations(mut f: impl FnMut()) -> u64 {
    f();
    let before = alloc_count::thread();
    for _ in 0..PASSES {
        f();
    }
    alloc_count::thread() - before
}

fn settings(output: &str) -> Arc<Settings> {
    let toml = format!(
        "[output]\nformat = \"{output}\"\n[purposes.billing]\n[purposes.security]\n[topics]\nmode = \"off\"\n"
    );
    Arc::new(Settings::validate(config::parse(&toml, &[]).unwrap()).unwrap())
}

/// Generated events of every type (content and vendor extensions filled in), encoded.
fn encoded(format: OutputFormat) -> Vec<Vec<u8>> {
    let mut g = Generator::new(42, Utc::now());
    (0..EVENTS)
        .map(|_| {
            let mut b = Vec::new();
            encode::encode_event(&g.next_event(), format, &mut b).unwrap();
            b
        })
        .collect()
}

/// Forwarded records of one pass of the wire path over `input`, with every output's
/// headers built (what the producer is handed).
fn wire_pass(filter: &WireFilter, input: &[Vec<u8>], scratch: &mut WireScratch) -> usize {
    let now = Utc::now();
    let mut n = 0;
    for p in input {
        if filter.apply(p, now, scratch).is_err() {
            continue;
        }
        for r in scratch.records() {
            if r.outcome.is_ok() {
                black_box((scratch.key(), &r.value, r.headers(OutputFormat::Protobuf)));
                n += 1;
            }
        }
    }
    n
}

#[test]
fn the_protobuf_wire_path_allocates_nothing_per_event() {
    let input = encoded(OutputFormat::Protobuf);
    let filter = WireFilter::new(&settings("protobuf").policy).unwrap();
    let mut scratch = WireScratch::default();
    let forwarded = wire_pass(&filter, &input, &mut scratch);
    assert!(forwarded > EVENTS / 2, "most events forwarded: {forwarded}");
    let n = allocations(|| {
        black_box(wire_pass(&filter, &input, &mut scratch));
    });
    assert_eq!(n, 0, "allocations over {PASSES} × {EVENTS} events");
}

#[test]
fn the_framed_wire_path_allocates_nothing_per_event() {
    let framed: Vec<Vec<u8>> = encoded(OutputFormat::Protobuf)
        .iter()
        .map(|p| framing::frame(5, BodyKind::Protobuf, &[0], p))
        .collect();
    let filter = WireFilter::new(&settings("protobuf").policy).unwrap();
    let prefix = encode::confluent_header(OutputFormat::Protobuf, 77);
    let mut scratch = WireScratch::default();
    let mut pass = || {
        let now = Utc::now();
        let mut ok = 0;
        for p in &framed {
            let format = InputFormat::ConfluentProtobuf;
            ok += usize::from(
                filter
                    .apply_record(p, format, &[], &prefix, now, &mut scratch)
                    .is_ok(),
            );
        }
        ok
    };
    assert_eq!(pass(), EVENTS, "every framed event is read");
    let n = allocations(|| {
        black_box(pass());
    });
    assert_eq!(n, 0, "allocations over {PASSES} × {EVENTS} framed events");
}

#[test]
fn json_in_on_the_fast_path_allocates_nothing_per_event() {
    let input = encoded(OutputFormat::Json);
    let filter = WireFilter::new(&settings("protobuf").policy).unwrap();
    let mut json = JsonScratch::default();
    let mut scratch = WireScratch::default();
    let mut pass = || {
        let now = Utc::now();
        let mut n = 0;
        for p in &input {
            let Ok(pb) = json.to_protobuf(p) else {
                continue;
            };
            if filter.apply(pb, now, &mut scratch).is_ok() {
                n += scratch
                    .records()
                    .iter()
                    .filter(|r| r.outcome.is_ok())
                    .count();
            }
        }
        n
    };
    assert!(pass() > EVENTS / 2);
    let n = allocations(|| {
        black_box(pass());
    });
    assert_eq!(
        json.fallbacks, 0,
        "every generated event takes the fast parser"
    );
    assert_eq!(n, 0, "allocations over {PASSES} × {EVENTS} JSON events");
}

#[test]
fn json_out_on_the_fast_path_allocates_nothing_per_event() {
    let input = encoded(OutputFormat::Protobuf);
    let filter = WireFilter::new(&settings("json").policy).unwrap();
    let mut scratch = WireScratch::default();
    let mut values = [Vec::new(), Vec::new()];
    let mut pass = || {
        let now = Utc::now();
        let mut n = 0;
        for p in &input {
            if filter.apply(p, now, &mut scratch).is_err() {
                continue;
            }
            for (r, value) in scratch.records().iter().zip(values.iter_mut()) {
                if r.outcome.is_ok() {
                    json::write_json(&r.value, value).unwrap();
                    black_box((&value[..], r.headers(OutputFormat::Json)));
                    n += 1;
                }
            }
        }
        n
    };
    assert!(pass() > EVENTS / 2);
    let n = allocations(|| {
        black_box(pass());
    });
    assert_eq!(n, 0, "allocations over {PASSES} × {EVENTS} events");
}

/// One pass of `Transform::process` over `input`; the outputs' buffers go back to the
/// spare pool, as the engine does once the producer copied them. Returns the outputs.
fn transform_pass(
    t: &Transform,
    input: &[Vec<u8>],
    stats: &Stats,
    source: &Source,
    out: &mut Vec<Outgoing>,
) -> usize {
    let now = Utc::now();
    let mut n = 0;
    for p in input {
        t.process(source, p, now, stats, out);
        n += out.len();
        for o in out.drain(..) {
            records::recycle(o.key, o.value);
        }
    }
    n
}

/// Every pairing of input and output format through the pipeline's `Transform::process`:
/// (name, allocations over the measured passes, outputs per pass).
fn transform_allocations() -> Vec<(String, u64, usize)> {
    let stats = Stats::default();
    let source = Source {
        topic: Arc::from("cdr.raw"),
        partition: 0,
        offset: 0,
    };
    let mut out: Vec<Outgoing> = Vec::with_capacity(4);
    let mut found = Vec::new();
    for input_format in [OutputFormat::Protobuf, OutputFormat::Json] {
        let input = encoded(input_format);
        for output in ["protobuf", "json"] {
            let t = Transform::new(settings(output));
            let outputs = transform_pass(&t, &input, &stats, &source, &mut out);
            let n = allocations(|| {
                black_box(transform_pass(&t, &input, &stats, &source, &mut out));
            });
            found.push((format!("{input_format:?} → {output}"), n, outputs));
        }
    }
    found
}

#[test]
fn transform_process_allocates_nothing_per_event_then_only_the_histograms_blocks() {
    // No recorder: the metrics calls do nothing, what is left is the pipeline's own work.
    for (name, n, outputs) in transform_allocations() {
        assert!(
            outputs > EVENTS,
            "{name}: both purposes forwarded: {outputs}"
        );
        assert_eq!(n, 0, "{name}: allocations over {PASSES} × {EVENTS} events");
    }
    // The recorder `run` installs: the event-age histogram stores its samples in blocks.
    let _handle = cdr_purpose_filter::telemetry::install("R10-14/2021").expect("recorder");
    for (name, n, _) in transform_allocations() {
        let events = PASSES * EVENTS as u64;
        // The histogram takes a block per 64 samples (metrics-util's atomic bucket), one
        // sample per event; the bound leaves room for the recorder's own bookkeeping
        // (measured: 82 over 5,000 events) and still fails on anything allocating once
        // per event, or once per twenty.
        let bound = events / 20;
        assert!(
            n <= bound,
            "{name}: {n} allocations over {events} events with the recorder, bound {bound}"
        );
    }
}
