//! `dry-run` says what `run` does: a differential test of dry-run's judgement of a record
//! (`cli::dry_run::judge::Judge`, the code path of every dry-run line) against the
//! engine's `Transform::process` (which takes the wire, JSON and struct paths), and of
//! what `run` writes against `audit`'s per-record check (`Auditor::check`).
//!
//! Inputs: the hostile corpus (`tests/corpus`), events of the `gen` module, and those
//! events mutated — every timestamp field set to an edge (leap seconds, nine-digit
//! fractions, years 0001 and 9999 and past them, offsets +14:00 and -12:00, the
//! clock-skew boundary, the legal limits, nanoseconds out of range) and other values
//! at their edges (unknown enum numbers, NaN coordinates, declared purposes, missing
//! identifiers). Each goes through every input format that can carry it (json,
//! protobuf, auto, confluent-json, confluent-protobuf), every output (json, protobuf,
//! bare or Schema Registry framed) and both policy versions. For every case: the same
//! outcome per purpose, the same dead-letter reason and message, byte-identical values,
//! the same keys, headers and timestamps, the same drops as `run` counts; and every
//! record `run` writes audits clean.

use cdr_purpose_filter::audit::{self, Auditor, RecordView, TopicContext};
use cdr_purpose_filter::cli::dry_run::judge::{Judge, Line, Verdict};
use cdr_purpose_filter::config::{self, Settings};
use cdr_purpose_filter::dead_letter::Pointer;
use cdr_purpose_filter::encode;
use cdr_purpose_filter::framing::{frame, BodyKind};
use cdr_purpose_filter::gen::Generator;
use cdr_purpose_filter::pipeline::records::{Outgoing, Source, Transform};
use cdr_purpose_filter::schema::{self, CdrEvent, Location, Timestamp, Timing};
use cdr_purpose_filter::telemetry::Stats;
use chrono::{DateTime, TimeZone, Utc};
use prost::Message;
use rdkafka::message::Headers;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The clock of most cases.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap()
}

/// A clock in the last year the timestamps carry: expiries past 9999-12-31.
fn late_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(9999, 6, 1, 0, 0, 0).unwrap()
}

const SCHEMA_ID: u32 = 42;
const VERSIONS: [&str; 2] = ["R10-14/2021", "R10-14/2012"];
/// Output format and framing.
const OUTPUTS: [(&str, bool); 4] = [
    ("json", false),
    ("protobuf", false),
    ("json", true),
    ("protobuf", true),
];
const INPUTS: [&str; 5] = [
    "json",
    "protobuf",
    "auto",
    "confluent-json",
    "confluent-protobuf",
];

/// The configuration of a case. The framed outputs also keep the optional coordinates
/// for billing (a NaN one cannot be written as JSON: `unencodable`).
fn settings(input: &str, output: &str, framed: bool, version: &str) -> Settings {
    let (framing, keep) = if framed {
        (
            format!("framing = \"confluent\"\nschema_id = {SCHEMA_ID}\n"),
            "keep = [\"location.latitude\", \"location.longitude\"]\n",
        )
    } else {
        (String::new(), "")
    };
    let toml = format!(
        "[input]\nformat = \"{input}\"\n[output]\nformat = \"{output}\"\n{framing}\
         [purposes.billing]\n{keep}[purposes.security]\n[topics]\nmode = \"off\"\n\
         [policy]\nversion = \"{version}\"\n"
    );
    Settings::validate(config::parse(&toml, &[]).unwrap()).unwrap()
}

/// One input: the same event (or bytes) in the forms it can be written in.
#[derive(Debug, Clone)]
struct Input {
    name: String,
    json: Option<Vec<u8>>,
    protobuf: Option<Vec<u8>>,
    /// Bytes given as they are to every input format (the corpus).
    raw: Option<Vec<u8>>,
    late: bool,
}

impl Input {
    /// The payloads of this input for an input format.
    fn payloads(&self, format: &str) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let (json, pb) = (self.json.as_deref(), self.protobuf.as_deref());
        match format {
            "json" => out.extend(json.map(<[u8]>::to_vec)),
            "protobuf" => out.extend(pb.map(<[u8]>::to_vec)),
            "auto" => out.extend(json.into_iter().chain(pb).map(<[u8]>::to_vec)),
            "confluent-json" => out.extend(json.map(|j| frame(SCHEMA_ID, BodyKind::Json, &[], j))),
            "confluent-protobuf" => {
                out.extend(pb.map(|p| frame(SCHEMA_ID, BodyKind::Protobuf, &[0], p)))
            }
            _ => unreachable!("{format}"),
        }
        out.extend(self.raw.clone());
        out
    }
}

fn of_event(name: String, e: &CdrEvent) -> Input {
    Input {
        name,
        json: serde_json::to_vec(e).ok(),
        protobuf: Some(e.encode_to_vec()),
        raw: None,
        late: false,
    }
}

/// The timestamp fields an edge is written into.
#[derive(Debug, Clone, Copy)]
enum Field {
    Event,
    Answer,
    Release,
}

impl Field {
    const ALL: [Field; 3] = [Field::Event, Field::Answer, Field::Release];

    fn set(self, e: &mut CdrEvent, ts: Option<Timestamp>) {
        match self {
            Field::Event => e.event_time = ts,
            Field::Answer => e.timing.get_or_insert_with(Timing::default).answer_time = ts,
            Field::Release => e.timing.get_or_insert_with(Timing::default).release_time = ts,
        }
    }

    fn set_text(self, v: &mut Value, text: &str) {
        match self {
            Field::Event => v["eventTime"] = text.into(),
            Field::Answer | Field::Release => {
                if !v["timing"].is_object() {
                    v["timing"] = serde_json::json!({});
                }
                let name = if matches!(self, Field::Answer) {
                    "answerTime"
                } else {
                    "releaseTime"
                };
                v["timing"][name] = text.into();
            }
        }
    }
}

/// RFC 3339 texts at the edges: JSON input only (`set_text`).
const EDGE_TEXTS: &[&str] = &[
    // Leap seconds: real ones, with fractions and offsets, and one at a date that had
    // none (read the same way), recent enough to be forwarded.
    "2016-12-31T23:59:60Z",
    "2016-12-31T23:59:60.5Z",
    "2016-12-31T23:59:60.999999999Z",
    "2017-01-01T00:59:60+01:00",
    "2016-12-31T09:59:60-14:00",
    "2026-06-30T23:59:60Z",
    "2026-11-28T11:59:60.123456789Z",
    "2026-11-28T12:04:60Z",
    // Nine-digit fractions, and other widths.
    "2026-11-28T10:00:00.123456789Z",
    "2026-11-28T10:00:00.000000001Z",
    "2026-11-28T10:00:00.999999999Z",
    "2026-11-28T10:00:00.100Z",
    "2026-11-28T10:00:00.1Z",
    "2026-11-28T10:00:00.1234567891Z",
    // Years 0001, 9999, 0000.
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00.000000001Z",
    "9999-12-31T23:59:59.999999999Z",
    "9999-12-31T23:59:59Z",
    "0000-01-01T00:00:00Z",
    "0000-12-31T23:59:59.999999999Z",
    "0001-01-01T00:00:00+00:01",
    "9999-12-31T23:59:59-00:01",
    // Offsets.
    "2026-11-29T02:00:00+14:00",
    "2026-11-28T00:00:00-12:00",
    "2026-11-28T12:00:00+00:00",
    "2026-11-28T12:00:00-00:00",
    "2026-11-28T10:00:00.5+02:00",
    // The clock-skew boundary (now + 5 minutes), on and just past it.
    "2026-11-28T12:05:00Z",
    "2026-11-28T12:05:00.000000001Z",
    "2026-11-28T12:04:59.999999999Z",
    "2026-11-29T02:05:00+14:00",
    "2026-11-28T00:05:00.000000001-12:00",
    // The legal limits: 12 and 3 months before now, in UTC and Paris time.
    "2025-11-28T12:00:00Z",
    "2025-11-28T12:00:00.000000001Z",
    "2025-11-28T11:00:00Z",
    "2026-08-28T12:00:00Z",
    "2026-08-28T10:00:00.000000001Z",
    "2026-02-28T23:00:00Z",
    "2025-03-30T01:00:00Z",
];

/// Protobuf timestamps at the edges, some that no canonical form carries.
fn edge_timestamps() -> Vec<Timestamp> {
    let n = now().timestamp();
    let ts = |seconds, nanos| Timestamp { seconds, nanos };
    vec![
        ts(schema::MIN_SECONDS, 0),
        ts(schema::MIN_SECONDS - 1, 999_999_999),
        ts(schema::MAX_SECONDS, 999_999_999),
        ts(schema::MAX_SECONDS + 1, 0),
        ts(n, 1_000_000_000),
        ts(n - 1, 1_999_999_999),
        ts(n, -1),
        ts(n, i32::MIN),
        ts(n, 999_999_999),
        ts(n + 300, 0),
        ts(n + 300, 1),
        ts(n - 365 * 86_400, 0),
        ts(i64::MAX, 0),
        ts(i64::MIN, 0),
        ts(0, 0),
    ]
}

/// A change to an event.
type Edit = fn(&mut CdrEvent);

/// Other values at their edges, one mutation each.
fn value_edges() -> Vec<(&'static str, Edit)> {
    vec![
        ("no event_id", |e| e.event_id.clear()),
        ("no event_time", |e| e.event_time = None),
        ("unknown event type", |e| e.event_type = 99),
        ("unknown direction", |e| e.direction = 42),
        ("terminating", |e| e.direction = 2),
        ("signalling", |e| e.event_type = 4),
        ("declared billing", |e| e.declared_purposes = vec![1]),
        ("declared security", |e| e.declared_purposes = vec![2]),
        ("declared unknown", |e| e.declared_purposes = vec![7]),
        ("NaN latitude", |e| {
            e.location.get_or_insert_with(Location::default).latitude = f64::NAN
        }),
        ("not chargeable", |e| {
            if let Some(c) = e.charging.as_mut() {
                c.chargeable = false;
            }
        }),
        ("no timing", |e| e.timing = None),
    ]
}

fn inputs() -> Vec<Input> {
    let mut inputs = Vec::new();
    // The hostile corpus, as it is, to every input format.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap() != "expect.tsv")
        .collect();
    files.sort();
    for path in files {
        inputs.push(Input {
            name: path.file_name().unwrap().to_string_lossy().into_owned(),
            json: None,
            protobuf: None,
            raw: Some(std::fs::read(&path).unwrap()),
            late: false,
        });
    }
    // Generated events.
    let mut g = Generator::new(29, Utc.with_ymd_and_hms(2026, 11, 28, 11, 0, 0).unwrap());
    let events: Vec<CdrEvent> = (0..300).map(|_| g.next_event()).collect();
    for (i, e) in events.iter().enumerate() {
        inputs.push(of_event(format!("gen {i}"), e));
        // The same in a protobuf that prost decodes alike but spells out default values:
        // empty scalars first (the event's own values come later and win), explicit
        // zeros in sub-messages last (merged in).
        let mut pb = vec![0x0a, 0x00, 0x18, 0x00, 0x20, 0x00, 0x32, 0x00, 0x52, 0x00];
        pb.extend(e.encode_to_vec());
        pb.extend([
            0x42, 0x02, 0x18, 0x00, 0x4a, 0x02, 0x18, 0x00, 0x72, 0x02, 0x28, 0x00,
        ]);
        inputs.push(Input {
            name: format!("gen {i}, defaults spelled out"),
            json: None,
            protobuf: Some(pb),
            raw: None,
            late: false,
        });
    }
    // Their mutations: a few events of each kind, every edge in every timestamp field.
    let bases: Vec<&CdrEvent> = events.iter().step_by(25).collect();
    for (b, base) in bases.iter().enumerate() {
        for field in Field::ALL {
            let v = serde_json::to_value(base).unwrap();
            for text in EDGE_TEXTS {
                let mut v = v.clone();
                field.set_text(&mut v, text);
                inputs.push(Input {
                    name: format!("base {b}, {field:?} = {text}"),
                    json: Some(serde_json::to_vec(&v).unwrap()),
                    // The same instant in protobuf, as the JSON reader reads it.
                    protobuf: serde_json::from_value::<CdrEvent>(v)
                        .ok()
                        .map(|e| e.encode_to_vec()),
                    raw: None,
                    late: false,
                });
            }
            for ts in edge_timestamps() {
                let mut e = (*base).clone();
                field.set(&mut e, Some(ts));
                inputs.push(of_event(format!("base {b}, {field:?} = {ts:?}"), &e));
            }
        }
        for (name, edit) in value_edges() {
            let mut e = (*base).clone();
            edit(&mut e);
            inputs.push(of_event(format!("base {b}, {name}"), &e));
        }
        // With the clock in 9999: expiries past the last representable second.
        for days in [1, 100, 200, 300] {
            let mut e = (*base).clone();
            let t = late_now() - chrono::Duration::days(days);
            e.event_time = Some(schema::to_timestamp(t));
            inputs.push(Input {
                late: true,
                ..of_event(format!("base {b}, late clock, {days} days old"), &e)
            });
        }
    }
    inputs
}

fn header_list(o: &Outgoing) -> Vec<(String, String)> {
    o.headers
        .iter()
        .map(|h| {
            let v = String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned();
            (h.key.to_string(), v)
        })
        .collect()
}

/// Every timestamp of an output event is one a `google.protobuf.Timestamp` may hold.
fn canonical_times(e: &CdrEvent) -> bool {
    let timing = e.timing.as_ref();
    [
        e.event_time.as_ref(),
        timing.and_then(|t| t.answer_time.as_ref()),
        timing.and_then(|t| t.release_time.as_ref()),
        e.retention.as_ref().and_then(|r| r.expires_at.as_ref()),
    ]
    .into_iter()
    .flatten()
    .all(schema::is_canonical)
}

/// What one case found.
#[derive(Default)]
struct Tally {
    cases: u64,
    forwards: u64,
    drops: u64,
    dead_letters: BTreeMap<&'static str, u64>,
    audited: u64,
    disagreements: Vec<String>,
}

/// One case: `payload` through dry-run's judge and through `Transform::process`.
#[allow(clippy::too_many_arguments)]
fn compare(
    judge: &Judge<'_>,
    settings: &Settings,
    transform: &Transform,
    auditor: &Auditor,
    payload: &[u8],
    now: DateTime<Utc>,
    tally: &mut Tally,
) -> Result<(), String> {
    tally.cases += 1;
    let lines: Vec<Line> = judge.judge(payload, settings.input_format, now);
    let source = Source {
        topic: Arc::from("cdr.raw"),
        partition: 0,
        offset: 7,
    };
    let stats = Stats::default();
    let mut out = Vec::new();
    transform.process(&source, payload, now, &stats, &mut out);
    if lines.len() != settings.purposes.len() {
        return Err(format!(
            "{} lines for {} purposes",
            lines.len(),
            settings.purposes.len()
        ));
    }
    for (line, p) in lines.iter().zip(&settings.purposes) {
        if line.purpose != p.purpose {
            return Err(format!(
                "line for {:?} where {:?} is configured",
                line.purpose, p.purpose
            ));
        }
    }
    let dead_topic = transform.dead_letter_topic().clone();
    let (dead, written): (Vec<&Outgoing>, Vec<&Outgoing>) =
        out.iter().partition(|o| o.topic == dead_topic);
    // The drops `run` counts are dry-run's drop lines.
    let drops: BTreeMap<(&str, &str), u64> = lines
        .iter()
        .filter_map(|l| match &l.verdict {
            Verdict::Drop(r) => Some(((l.purpose.name(), r.as_str()), 1)),
            _ => None,
        })
        .collect();
    if drops != stats.dropped() {
        return Err(format!(
            "drops: dry-run {drops:?}, run {:?}",
            stats.dropped()
        ));
    }
    tally.drops += drops.len() as u64;
    let letters: Vec<_> = lines
        .iter()
        .filter_map(|l| match &l.verdict {
            Verdict::DeadLetter(d) => Some(d),
            _ => None,
        })
        .collect();
    match dead.as_slice() {
        [] if letters.is_empty() => {}
        [] => {
            return Err(format!(
                "dry-run dead-letters ({:?}), run does not",
                letters[0]
            ))
        }
        [d] => {
            let pointer: Pointer = serde_json::from_slice(&d.value).map_err(|e| e.to_string())?;
            if !written.is_empty() {
                return Err("run dead-letters and forwards the same record".into());
            }
            let Some(first) = letters.first() else {
                return Err(format!(
                    "run dead-letters ({}), dry-run does not",
                    pointer.reason
                ));
            };
            for l in &letters {
                let ours = (l.reason, l.message.as_str(), l.schema_id);
                let theirs = (
                    pointer.reason.as_str(),
                    pointer.message.as_str(),
                    pointer.schema_id,
                );
                if ours != theirs {
                    return Err(format!("dead letter: dry-run {ours:?}, run {theirs:?}"));
                }
            }
            *tally.dead_letters.entry(first.reason).or_default() += 1;
            return Ok(());
        }
        _ => return Err(format!("{} dead letters for one record", dead.len())),
    }
    // No dead letter: the forwards, in configuration order, byte for byte.
    let forwards: Vec<_> = lines
        .iter()
        .filter_map(|l| match &l.verdict {
            Verdict::Forward(f) => Some((l.purpose, f)),
            _ => None,
        })
        .collect();
    if forwards.len() != written.len() {
        return Err(format!(
            "dry-run forwards {} records, run writes {}",
            forwards.len(),
            written.len()
        ));
    }
    for ((purpose, f), o) in forwards.into_iter().zip(written) {
        tally.forwards += 1;
        let ours = (f.topic.as_str(), Some(f.key.as_str()), f.timestamp_ms);
        let theirs = (&*o.topic, o.key.as_deref(), o.timestamp_ms);
        if ours != theirs {
            return Err(format!("{purpose:?}: dry-run {ours:?}, run {theirs:?}"));
        }
        if f.value != o.value {
            return Err(format!(
                "{purpose:?}: values differ:\n dry-run {}\n run     {}",
                String::from_utf8_lossy(&f.value),
                String::from_utf8_lossy(&o.value)
            ));
        }
        let headers: Vec<(String, String)> = f
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        if headers != header_list(o) {
            return Err(format!(
                "{purpose:?}: headers: dry-run {headers:?}, run {:?}",
                header_list(o)
            ));
        }
        // The record dry-run shows is the one written; its timestamps follow the rule.
        let body = audit::unframe(
            &o.value,
            settings.output_format == encode::OutputFormat::Json,
        )
        .ok_or("an output with a malformed prefix")?;
        let written_event: CdrEvent = match settings.output_format {
            encode::OutputFormat::Protobuf => {
                let e = CdrEvent::decode(body).map_err(|e| e.to_string())?;
                // (By their Debug text: a NaN coordinate is not equal to itself.)
                if format!("{e:?}") != format!("{:?}", f.event) {
                    return Err(format!(
                        "{purpose:?}: the written event is not dry-run's record"
                    ));
                }
                e
            }
            encode::OutputFormat::Json => {
                // As dry-run prints its record and a reader parses it (a coordinate is
                // compared as the same decimal text, not as the f64 before printing).
                let shown = encode::to_json_value(&f.event).map_err(|e| e.to_string())?;
                let shown: Value = serde_json::from_str(&shown.to_string()).unwrap();
                let got: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
                if got != shown {
                    return Err(format!(
                        "{purpose:?}: the written JSON is not dry-run's record"
                    ));
                }
                serde_json::from_slice(body).map_err(|e| e.to_string())?
            }
        };
        if !canonical_times(&written_event) {
            return Err(format!(
                "{purpose:?}: a timestamp out of range: {written_event:?}"
            ));
        }
        // What `run` writes is what `audit` accepts.
        let ctx = TopicContext {
            topic: o.topic.clone(),
            purpose: Some(purpose),
            slack_ms: 8 * 86_400_000,
        };
        let headers = header_list(o);
        let view = RecordView {
            partition: 0,
            offset: 0,
            key: o.key.as_deref().map(str::as_bytes),
            value: Some(&o.value),
            timestamp: audit::Timestamp::CreateTime(o.timestamp_ms),
            headers: headers
                .iter()
                .map(|(k, v)| (k.as_str(), Some(v.as_bytes())))
                .collect(),
        };
        let mut findings = Vec::new();
        auditor.check(&ctx, &view, now, &mut findings);
        tally.audited += 1;
        if !findings.is_empty() {
            let kinds: Vec<_> = findings.iter().map(|f| (f.kind, f.detail)).collect();
            return Err(format!("{purpose:?}: audit findings {kinds:?}"));
        }
    }
    Ok(())
}

#[test]
fn dry_run_says_what_run_does_and_audit_accepts_what_run_writes() {
    let inputs = inputs();
    let mut tally = Tally::default();
    for version in VERSIONS {
        for (output, framed) in OUTPUTS {
            for input in INPUTS {
                let settings = settings(input, output, framed, version);
                let judge = Judge::new(&settings);
                let transform = Transform::new(Arc::new(settings.clone()));
                let auditor = Auditor::from_settings(&settings);
                for i in &inputs {
                    let now = if i.late { late_now() } else { now() };
                    for payload in i.payloads(input) {
                        let r = compare(
                            &judge, &settings, &transform, &auditor, &payload, now, &mut tally,
                        );
                        if let Err(e) = r {
                            tally.disagreements.push(format!(
                                "{version}, {input} → {output}{}, {}: {e}",
                                if framed { " (framed)" } else { "" },
                                i.name
                            ));
                        }
                    }
                }
            }
        }
    }
    eprintln!(
        "{} cases: {} forwards compared and audited ({} audited), {} drops, dead letters {:?}",
        tally.cases, tally.forwards, tally.audited, tally.drops, tally.dead_letters
    );
    // The first case of each kind of disagreement (the text after the case's name).
    let mut kinds: BTreeMap<String, (usize, &String)> = BTreeMap::new();
    for d in &tally.disagreements {
        let what = d.rsplit(": ").next().unwrap_or(d).to_string();
        kinds.entry(what).or_insert((0, d)).0 += 1;
    }
    assert!(
        tally.disagreements.is_empty(),
        "{} disagreements, by kind (count, first case): {kinds:#?}",
        tally.disagreements.len()
    );
    // Not vacuous: every kind of answer is reached.
    assert!(tally.cases > 50_000, "{} cases", tally.cases);
    assert!(tally.forwards > 10_000, "{} forwards", tally.forwards);
    for reason in ["undecodable", "invalid", "future_event_time", "unencodable"] {
        assert!(
            tally.dead_letters.contains_key(reason),
            "no {reason} dead letter: {:?}",
            tally.dead_letters
        );
    }
}
