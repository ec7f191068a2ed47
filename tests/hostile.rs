//! Hostile input: the corpus in `tests/corpus/` (written by
//! `examples/make_hostile_corpus/` from the prost types: truncated and garbage protobuf, wrong wire types,
//! invalid UTF-8, JSON with wrong types, duplicate keys, deep nesting, huge strings,
//! timestamps at the limits of their range, unknown enum values, negative durations),
//! plus records of 10 MB made here.
//!
//! In process, every file goes through decode → policy → encode (both output formats)
//! and through the pipeline's own transform, without panicking, and ends as its
//! manifest (`expect.tsv`) says: a dead letter with the expected reason, or accepted
//! (forwarded and/or dropped with a counted reason). On the test broker, the running
//! filter dead-letters each bad record as a pointer, keeps running, and lets the good
//! records after them through.

mod common;
// The corpus generator, for the test that the checked-in corpus is what it writes.
#[allow(dead_code)]
#[path = "../examples/make_hostile_corpus/main.rs"]
mod make_hostile_corpus;

use cdr_purpose_filter::config::{self, Settings};
use cdr_purpose_filter::dead_letter::Pointer;
use cdr_purpose_filter::decode::{self, InputFormat};
use cdr_purpose_filter::encode::{self, OutputFormat};
use cdr_purpose_filter::gen::Generator;
use cdr_purpose_filter::pipeline::records::{Outgoing, Source, Transform};
use cdr_purpose_filter::policy::Outcome;
use cdr_purpose_filter::telemetry::Stats;
use chrono::{DateTime, Utc};
use common::{config::Topics, filter::Filter};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus");

/// The corpus: (file name, bytes, expected outcome).
fn corpus() -> Vec<(String, Vec<u8>, String)> {
    let manifest = std::fs::read_to_string(Path::new(CORPUS).join("expect.tsv")).unwrap();
    let entries: Vec<_> = manifest
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (name, expect) = l.split_once('\t').expect("name<TAB>outcome");
            let bytes = std::fs::read(Path::new(CORPUS).join(name)).unwrap();
            (name.to_string(), bytes, expect.to_string())
        })
        .collect();
    // Every file in the folder is in the manifest, and the other way round.
    let on_disk: BTreeSet<String> = std::fs::read_dir(CORPUS)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "expect.tsv")
        .collect();
    let listed: BTreeSet<String> = entries.iter().map(|(n, _, _)| n.clone()).collect();
    assert_eq!(on_disk, listed, "tests/corpus and expect.tsv disagree");
    entries
}

/// Records made here rather than checked in: 10 MB ones, and one whose outputs are too
/// large for the producer (a 2 MB `event_id`, which every output carries as its key).
fn generated() -> Vec<(String, Vec<u8>, String)> {
    const MB: usize = 1024 * 1024;
    let huge_sms = format!(
        r#"{{"eventId": "hostile-10mb", "eventTime": "2026-11-28T10:00:00Z", "eventType": "SMS",
            "direction": "ORIGINATING", "served": {{"msisdn": "+33699001122"}},
            "charging": {{"chargeable": true}}, "content": {{"smsText": "{}"}}}}"#,
        "s".repeat(10 * MB)
    );
    let huge_id = format!(
        r#"{{"eventId": "{}", "eventTime": "{}", "eventType": "VOICE_CALL"}}"#,
        "i".repeat(2 * MB),
        cdr_purpose_filter::retention::rfc3339(Utc::now() - chrono::Duration::hours(1))
    );
    vec![
        (
            "generated: 10 MB JSON event (10 MB SMS text)".into(),
            huge_sms.into_bytes(),
            "accepted".into(),
        ),
        (
            "generated: 10 MB of garbage".into(),
            vec![0xff; 10 * MB],
            "undecodable".into(),
        ),
        (
            "generated: 10 MB unterminated JSON string".into(),
            [b"{\"eventId\": \"".as_slice(), &vec![b'a'; 10 * MB]].concat(),
            "undecodable".into(),
        ),
        (
            "generated: 2 MB event_id".into(),
            huge_id.into_bytes(),
            "output_too_large".into(),
        ),
    ]
}

/// Larger than librdkafka's default `message.max.bytes`: refused by the producer.
fn too_large(o: &Outgoing) -> bool {
    o.value.len() + o.key.as_ref().map_or(0, String::len) > 1_000_000
}

fn settings(output: &str) -> Settings {
    let text = format!(
        r#"
[output]
format = "{output}"
[purposes.billing]
[purposes.security]
"#
    );
    Settings::validate(config::parse(&text, &[]).unwrap()).unwrap()
}

/// What the pipeline's transform makes of one record: the dead-letter reason, if any,
/// and the keys forwarded per topic.
fn classify(
    transform: &Transform,
    payload: &[u8],
    offset: i64,
    now: DateTime<Utc>,
) -> (Option<String>, Vec<Outgoing>) {
    let source = Source {
        topic: Arc::from("cdr.raw"),
        partition: 0,
        offset,
    };
    let mut out = Vec::new();
    transform.process(&source, payload, now, &Stats::default(), &mut out);
    let dead: Vec<&Outgoing> = out
        .iter()
        .filter(|o| &o.topic == transform.dead_letter_topic())
        .collect();
    assert!(dead.len() <= 1, "at most one dead letter per record");
    let reason = dead.first().map(|d| {
        let p: Pointer = serde_json::from_slice(&d.value).expect("a pointer");
        assert_eq!(p.source_offset, offset);
        p.reason
    });
    if reason.is_some() {
        assert_eq!(
            out.len(),
            1,
            "a dead-lettered record is never half-forwarded"
        );
    }
    (reason, out)
}

/// The checked-in corpus is exactly what the generator writes from the prost types:
/// neither can drift from the schema (or from each other) unnoticed.
#[test]
fn the_checked_in_corpus_is_what_the_generator_writes() {
    let dir = tempfile::tempdir().unwrap();
    let n = make_hostile_corpus::write(dir.path()).unwrap();
    let names = |d: &Path| -> BTreeSet<String> {
        std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect()
    };
    assert_eq!(names(dir.path()), names(Path::new(CORPUS)));
    assert_eq!(
        n + 1,
        names(Path::new(CORPUS)).len(),
        "the files and expect.tsv"
    );
    for name in names(dir.path()) {
        assert!(
            std::fs::read(dir.path().join(&name)).unwrap()
                == std::fs::read(Path::new(CORPUS).join(&name)).unwrap(),
            "tests/corpus/{name} differs from what `cargo run --example \
             make_hostile_corpus` writes"
        );
    }
}

#[test]
fn every_corpus_file_goes_through_decode_policy_and_encode_without_panicking() {
    let now = Utc::now();
    let policy = settings("protobuf").policy;
    let mut decoded = 0;
    let mut encoded = 0;
    for (name, bytes, _) in corpus() {
        for format in [InputFormat::Auto, InputFormat::Json, InputFormat::Protobuf] {
            let Ok((event, _)) = decode::decode(&bytes, format) else {
                continue;
            };
            decoded += 1;
            for (_, outcome) in policy.apply(&event, now).outcomes {
                if let Outcome::Forward(r) = outcome {
                    let _ = encode::headers(&r, OutputFormat::Json);
                    for f in [OutputFormat::Protobuf, OutputFormat::Json] {
                        let mut buf = Vec::new();
                        if encode::encode_event(&r.event, f, &mut buf).is_ok() {
                            encoded += 1;
                            // What was written reads back (protobuf always; JSON when
                            // it could be written at all).
                            let back = decode::decode(&buf, InputFormat::Auto);
                            assert!(back.is_ok(), "{name}: {f:?} output does not decode");
                        }
                    }
                }
            }
        }
    }
    assert!(
        decoded > 10 && encoded > 10,
        "{decoded} decoded, {encoded} encoded"
    );
}

#[test]
fn every_corpus_file_ends_as_its_manifest_says_in_both_output_formats() {
    let now = Utc::now();
    let mut wrong = Vec::new();
    let entries: Vec<_> = corpus().into_iter().chain(generated()).collect();
    for output in ["protobuf", "json"] {
        let transform = Transform::new(Arc::new(settings(output)));
        for (i, (name, bytes, expect)) in entries.iter().enumerate() {
            let (reason, out) = classify(&transform, bytes, i as i64, now);
            let mut got = reason.unwrap_or_else(|| "accepted".into());
            if got == "accepted" && out.iter().any(too_large) {
                // What the producer refuses at send, in the pipeline.
                got = "output_too_large".into();
            }
            // JSON output cannot express an unknown enum number: that record is
            // dead-lettered as `unencodable` instead of crashing the filter.
            let allowed = got == *expect || (output == "json" && got == "unencodable");
            if !allowed {
                wrong.push(format!(
                    "{name} ({output} output): expected {expect}, got {got}"
                ));
            }
            for o in &out {
                assert!(o.value.len() < 4 * 1024 * 1024, "{name}: an output of 4 MB");
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A producer that can send the 10 MB records (librdkafka's default limit is 1 MB).
fn produce_large(topic: &str, payloads: &[Vec<u8>]) {
    use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
    let producer: ThreadedProducer<rdkafka::producer::DefaultProducerContext> =
        common::broker::client_config()
            .set("message.max.bytes", "33554432")
            .set("linger.ms", "5")
            .create()
            .unwrap();
    for p in payloads {
        producer
            .send(BaseRecord::<[u8], [u8]>::to(topic).payload(p).partition(0))
            .map_err(|(e, _)| e)
            .expect("enqueue");
        // One at a time keeps the order (and the offsets) those of the list.
        producer.flush(Duration::from_secs(60)).expect("flush");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_running_filter_dead_letters_hostile_records_and_keeps_going() {
    let t = Topics::new("hostile");
    common::broker::create_topics(&[&t.input], 1).await;
    let dir = tempfile::tempdir().unwrap();
    let config = t.config(dir.path());
    let settings = config::load(&config).unwrap();
    let transform = Transform::new(Arc::new(settings));

    let now = Utc::now();
    let mut g = Generator::new(41, now);
    let goods: Vec<Vec<u8>> = (0..200)
        .map(|_| prost::Message::encode_to_vec(&g.next_event()))
        .collect();
    let hostile: Vec<(String, Vec<u8>, String)> = corpus().into_iter().chain(generated()).collect();
    // Good records before, between and after the bad ones.
    let mut payloads: Vec<Vec<u8>> = goods[..50].to_vec();
    for (_, bytes, _) in &hostile {
        payloads.push(bytes.clone());
    }
    payloads.extend_from_slice(&goods[50..]);

    // Expected, by the same transform in process: dead letters by offset, keys per topic.
    let mut want_dead: Vec<(i64, String)> = Vec::new();
    let mut want_out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (offset, p) in payloads.iter().enumerate() {
        let offset = offset as i64;
        let (reason, out) = classify(&transform, p, offset, now);
        match reason {
            Some(r) => want_dead.push((offset, r)),
            None => {
                for o in out {
                    if too_large(&o) {
                        want_dead.push((offset, "output_too_large".into()));
                    } else {
                        want_out
                            .entry(o.topic.to_string())
                            .or_default()
                            .insert(o.key.unwrap());
                    }
                }
            }
        }
    }
    for (i, (name, _, expect)) in hostile.iter().enumerate() {
        let offset = 50 + i as i64;
        let got = want_dead
            .iter()
            .find(|(o, _)| *o == offset)
            .map_or("accepted", |(_, r)| r.as_str());
        assert_eq!(got, expect, "{name}");
    }
    assert!(want_dead.len() >= 30, "the corpus is mostly bad records");

    produce_large(&t.input, &payloads);
    let log = dir.path().join("filter.log");
    let mut filter = Filter::start(&config, &log);
    let dead = common::io::read_all(&t.dead_letter, want_dead.len(), Duration::from_secs(180));
    let mut got_dead: Vec<(i64, String)> = Vec::new();
    for d in &dead {
        let p: Pointer = serde_json::from_slice(&d.payload).expect("a pointer is JSON");
        assert_eq!(p.source_topic, t.input);
        assert!(d.key.is_none(), "a pointer has no key");
        assert!(d.payload.len() < 4096, "a pointer never copies the record");
        got_dead.push((p.source_offset, p.reason));
    }
    got_dead.sort();
    want_dead.sort();
    assert_eq!(got_dead, want_dead, "dead letters (offset, reason)");
    for topic in [&t.billing, &t.security] {
        let want = want_out.get(topic.as_str()).cloned().unwrap_or_default();
        let got: BTreeSet<String> =
            common::io::read_all(topic, want.len(), Duration::from_secs(120))
                .iter()
                .map(|r| r.key_str())
                .collect();
        assert_eq!(
            got, want,
            "{topic}: the accepted records, good ones included"
        );
    }
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        filter.wait(Duration::ZERO),
        None,
        "the filter is still running; log:\n{log_text}"
    );
    assert!(!log_text.contains("panicked"), "{log_text}");
    filter.signal("TERM");
    assert_eq!(filter.wait(Duration::from_secs(30)), Some(0), "clean stop");
    println!(
        "hostile: {} records sent ({} hostile), {} dead letters, outputs {:?}",
        payloads.len(),
        hostile.len(),
        dead.len(),
        want_out
            .iter()
            .map(|(t, k)| (t, k.len()))
            .collect::<Vec<_>>()
    );
}
