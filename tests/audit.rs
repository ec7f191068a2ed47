//! `audit`: every record of an output topic checked against the law, independently of the
//! filter that wrote it. The checks on records built in memory (no broker), then the
//! command on the test broker: topics written by the filter audit clean; records written
//! directly, one per finding kind, are each found exactly once at their offset, and
//! nothing of a record appears in the output.

mod common;

use cdr_purpose_filter::audit::{Auditor, Finding, Kind, RecordView, Timestamp, TopicContext};
use cdr_purpose_filter::config;
use cdr_purpose_filter::encode::{self, OutputFormat};
use cdr_purpose_filter::gen::Generator;
use cdr_purpose_filter::policy::{Outcome, Policy, Version};
use cdr_purpose_filter::schema::{self, CdrEvent, Direction, EventType, Purpose};
use chrono::{DateTime, Duration, Months, Utc};
use common::{config::Topics, filter::Filter};
use prost::Message as _;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

/// A record as the test writes it.
#[derive(Debug, Clone)]
struct Rec {
    key: Vec<u8>,
    value: Vec<u8>,
    headers: Vec<(String, String)>,
    timestamp_ms: i64,
}

/// The output record the filter's library would write for `event` and `purpose` at
/// `now` (the test's fixture; the audit never calls this path).
fn written(
    version: Version,
    event: &CdrEvent,
    purpose: Purpose,
    format: OutputFormat,
    now: DateTime<Utc>,
) -> Option<Rec> {
    let policy = Policy::legal_maximum_of(version);
    let outcome = policy
        .apply(event, now)
        .outcomes
        .into_iter()
        .find(|(p, _)| *p == purpose)?
        .1;
    let Outcome::Forward(r) = outcome else {
        return None;
    };
    let mut value = Vec::new();
    encode::encode_event(&r.event, format, &mut value).unwrap();
    Some(Rec {
        key: r.key.clone().into_bytes(),
        value,
        headers: encode::headers(&r, format)
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        timestamp_ms: r.timestamp_ms,
    })
}

fn decode(rec: &Rec) -> CdrEvent {
    CdrEvent::decode(rec.value.as_slice()).unwrap()
}

fn set_header(rec: &mut Rec, name: &str, value: &str) {
    for (k, v) in &mut rec.headers {
        if k == name {
            *v = value.to_string();
        }
    }
}

fn auditor() -> Auditor {
    Auditor {
        fallback_version: Version::IN_FORCE,
        legal_time: cdr_purpose_filter::retention::LegalTime::PARIS,
        kept: vec![],
        removed: vec![],
    }
}

fn check(purpose: Purpose, rec: &Rec, offset: i64, now: DateTime<Utc>) -> Vec<Finding> {
    let ctx = TopicContext {
        topic: Arc::from(purpose.name()),
        purpose: Some(purpose),
        slack_ms: 8 * 86_400_000,
    };
    let view = RecordView {
        partition: 0,
        offset,
        key: Some(&rec.key),
        value: Some(&rec.value),
        timestamp: Timestamp::CreateTime(rec.timestamp_ms),
        headers: rec
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), Some(v.as_bytes())))
            .collect(),
    };
    let mut out = Vec::new();
    auditor().check(&ctx, &view, now, &mut out);
    out
}

fn kinds(findings: &[Finding]) -> Vec<(Kind, Option<&'static str>)> {
    findings.iter().map(|f| (f.kind, f.detail)).collect()
}

/// Confluent framing: magic byte, schema id 7, and for protobuf the message index [0].
fn framed(value: &[u8], format: OutputFormat) -> Vec<u8> {
    let mut v = vec![0, 0, 0, 0, 7];
    if format == OutputFormat::Protobuf {
        v.push(0);
    }
    v.extend_from_slice(value);
    v
}

#[test]
fn what_the_filter_writes_audits_clean_in_memory() {
    // A time both versions cover (R10-14/2012: communications before 21 October 2021).
    let now = chrono::TimeZone::with_ymd_and_hms(&Utc, 2021, 10, 15, 12, 0, 0).unwrap();
    let mut g = Generator::new(5, now);
    let mut checked = 0;
    for i in 0..3000 {
        let e = g.next_event();
        for version in Version::ALL {
            for purpose in [Purpose::Billing, Purpose::Security] {
                let format = if i % 2 == 0 {
                    OutputFormat::Protobuf
                } else {
                    OutputFormat::Json
                };
                let Some(mut rec) = written(version, &e, purpose, format, now) else {
                    continue;
                };
                if i % 3 == 0 {
                    rec.value = framed(&rec.value, format);
                }
                let f = check(purpose, &rec, i, now);
                assert!(f.is_empty(), "{version} {purpose:?} record {i}: {f:?}");
                checked += 1;
            }
        }
    }
    assert!(checked > 5000, "{checked}");
}

/// A voice call of the subscriber (ORIGINATING, chargeable) at `t`.
fn call(g: &mut Generator, t: DateTime<Utc>) -> CdrEvent {
    let mut e = g.full_event(EventType::VoiceCall, Direction::Originating, t);
    e.charging.get_or_insert_with(Default::default).chargeable = true;
    e.declared_purposes.clear();
    e
}

/// One record per finding kind `audit` reports (and a few more), each built from a
/// clean record with one defect.
fn defects(now: DateTime<Utc>) -> Vec<(Purpose, Rec, Kind)> {
    let mut g = Generator::new(9, now);
    let t = now - Duration::hours(2);
    let v = Version::R2021;
    let fw = |e: &CdrEvent, p: Purpose| written(v, e, p, OutputFormat::Protobuf, now).unwrap();
    let reencode = |rec: &mut Rec, e: &CdrEvent| rec.value = e.encode_to_vec();
    let mut out = Vec::new();

    // A content field in security.
    let mut r = fw(&call(&mut g, t), Purpose::Security);
    let mut e = decode(&r);
    e.content.get_or_insert_with(Default::default).sms_text = "rendez-vous 18h".into();
    reencode(&mut r, &e);
    out.push((Purpose::Security, r, Kind::Content));

    // An IMEI in security.
    let mut r = fw(&call(&mut g, t), Purpose::Security);
    let mut e = decode(&r);
    e.terminal.get_or_insert_with(Default::default).imei = "35209900176148".into();
    reencode(&mut r, &e);
    out.push((Purpose::Security, r, Kind::FieldNotAllowed));

    // A TERMINATING call in billing under R10-14/2021 (the rest as the filter would keep
    // it for a record not about the caller).
    let mut r = fw(&call(&mut g, t), Purpose::Billing);
    let mut e = decode(&r);
    e.direction = Direction::Terminating as i32;
    e.calling = None;
    reencode(&mut r, &e);
    out.push((Purpose::Billing, r, Kind::NotRouted));

    // An expiry past the limit: four months for security, header and retention agreeing.
    let mut r = fw(&call(&mut g, t), Purpose::Security);
    let mut e = decode(&r);
    let late = t.checked_add_months(Months::new(4)).unwrap();
    e.retention.as_mut().unwrap().expires_at = Some(schema::to_timestamp(late));
    reencode(&mut r, &e);
    set_header(
        &mut r,
        "cdr-expires-at",
        &cdr_purpose_filter::retention::rfc3339(late),
    );
    out.push((Purpose::Security, r, Kind::ExpiryPastLimit));

    // A Kafka timestamp that is not event_time.
    let mut r = fw(&call(&mut g, t), Purpose::Billing);
    r.timestamp_ms += 3_600_000;
    out.push((Purpose::Billing, r, Kind::TimestampNotEventTime));

    // A header outside the contract.
    let mut r = fw(&call(&mut g, t), Purpose::Billing);
    r.headers.push(("x-trace".into(), "abc".into()));
    out.push((Purpose::Billing, r, Kind::ExtraHeader));

    // No policy version.
    let mut r = fw(&call(&mut g, t), Purpose::Security);
    r.headers.retain(|(k, _)| k != "cdr-policy-version");
    out.push((Purpose::Security, r, Kind::MissingVersion));

    // An expired record still present: written two years ago, when it was in force.
    let old = now - Duration::days(730);
    let e = call(&mut g, old);
    let r = written(
        v,
        &e,
        Purpose::Security,
        OutputFormat::Protobuf,
        old + Duration::minutes(1),
    )
    .unwrap();
    out.push((Purpose::Security, r, Kind::RetentionFailure));

    // A key that is not the event_id.
    let mut r = fw(&call(&mut g, t), Purpose::Billing);
    r.key = b"input-key-7".to_vec();
    out.push((Purpose::Billing, r, Kind::KeyNotEventId));

    // A value that is not a CdrEvent.
    let mut r = fw(&call(&mut g, t), Purpose::Billing);
    r.value = vec![0xff, 0xff, 0xff, 0x01];
    out.push((Purpose::Billing, r, Kind::Undecodable));

    // A protobuf field the schema does not know (field 99, varint 1).
    let mut r = fw(&call(&mut g, t), Purpose::Security);
    r.value.extend_from_slice(&[0x98, 0x06, 0x01]);
    out.push((Purpose::Security, r, Kind::UnknownField));

    // An unknown policy version.
    let mut r = fw(&call(&mut g, t), Purpose::Billing);
    set_header(&mut r, "cdr-policy-version", "R10-14/2030");
    let mut e = decode(&r);
    e.retention.as_mut().unwrap().policy_version = "R10-14/2030".into();
    reencode(&mut r, &e);
    out.push((Purpose::Billing, r, Kind::UnknownVersion));

    // The header says security, the topic is billing's.
    let mut r = fw(&call(&mut g, t), Purpose::Billing);
    set_header(&mut r, "cdr-purpose", "security");
    out.push((Purpose::Billing, r, Kind::HeaderMismatch));

    // retention disagrees with the headers.
    let mut r = fw(&call(&mut g, t), Purpose::Billing);
    let mut e = decode(&r);
    e.retention.as_mut().unwrap().expires_at = Some(schema::to_timestamp(t));
    reencode(&mut r, &e);
    out.push((Purpose::Billing, r, Kind::RetentionMismatch));

    // A contract header missing.
    let mut r = fw(&call(&mut g, t), Purpose::Billing);
    r.headers.retain(|(k, _)| k != "cdr-legal-basis");
    out.push((Purpose::Billing, r, Kind::MissingHeader));

    // A record of today labelled R10-14/2012, in header and retention alike: that text
    // covers communications before 21 October 2021 only (the fields kept are a subset of
    // both versions' security column).
    let mut r = fw(&call(&mut g, t), Purpose::Security);
    set_header(&mut r, "cdr-policy-version", "R10-14/2012");
    let mut e = decode(&r);
    e.retention.as_mut().unwrap().policy_version = "R10-14/2012".into();
    reencode(&mut r, &e);
    out.push((Purpose::Security, r, Kind::VersionNotInForce));
    out
}

/// A raw event — content, vendor extensions, no header — on a topic of no purpose: no
/// column to read its fields in, but what no purpose may hold is still found (it was
/// not: only the missing headers were).
#[test]
fn what_no_purpose_may_hold_is_found_without_a_purpose() {
    let now = Utc::now();
    let mut g = Generator::new(13, now);
    let mut e = call(&mut g, now - Duration::hours(1));
    e.content.get_or_insert_with(Default::default).sms_text = "rendez-vous 18h".into();
    e.extensions.insert("vendor.x".into(), "1".into());
    let value = e.encode_to_vec();
    let ctx = TopicContext {
        topic: Arc::from("cdr.raw"),
        purpose: None,
        slack_ms: 0,
    };
    let view = RecordView {
        partition: 0,
        offset: 0,
        key: None,
        value: Some(&value),
        timestamp: Timestamp::CreateTime(now.timestamp_millis()),
        headers: vec![],
    };
    let mut f = Vec::new();
    auditor().check(&ctx, &view, now, &mut f);
    let found = kinds(&f);
    assert!(
        found.contains(&(Kind::Content, Some("content.sms_text"))),
        "{found:?}"
    );
    assert!(
        found.iter().any(|(k, _)| *k == Kind::UnknownField),
        "{found:?}"
    );
    assert!(
        !found.iter().any(|(k, _)| *k == Kind::FieldNotAllowed),
        "{found:?}"
    );
}

#[test]
fn each_defect_is_one_finding_of_its_kind() {
    let now = Utc::now();
    for (i, (purpose, rec, kind)) in defects(now).into_iter().enumerate() {
        let f = check(purpose, &rec, i as i64, now);
        assert_eq!(
            f.iter().map(|f| f.kind).collect::<Vec<_>>(),
            vec![kind],
            "defect {i}: {:?}",
            kinds(&f)
        );
        assert_eq!(f[0].offset, i as i64);
    }
}

#[test]
fn fields_are_read_by_path_in_the_records_version_and_column() {
    let now = Utc::now();
    let t = now - Duration::hours(1);
    let mut g = Generator::new(3, now);
    // A calling number on a billing record not about the caller: FORWARDED is routed
    // in both versions but not about the caller.
    let mut e = g.full_event(EventType::VoiceCall, Direction::Forwarded, t);
    e.charging.get_or_insert_with(Default::default).chargeable = true;
    let mut r = written(
        Version::R2021,
        &e,
        Purpose::Billing,
        OutputFormat::Protobuf,
        now,
    )
    .unwrap();
    assert!(check(Purpose::Billing, &r, 0, now).is_empty());
    let mut out = decode(&r);
    out.calling.get_or_insert_with(Default::default).number = "+33600000001".into();
    r.value = out.encode_to_vec();
    assert_eq!(
        kinds(&check(Purpose::Billing, &r, 0, now)),
        vec![(Kind::FieldNotAllowed, Some("calling.number"))]
    );

    // terminal.imeisv: optional for billing in 2012 (a finding unless the configuration
    // keeps it), removed in 2021. At a time both versions cover (R10-14/2012:
    // communications before 21 October 2021).
    let now = chrono::TimeZone::with_ymd_and_hms(&Utc, 2021, 10, 15, 12, 0, 0).unwrap();
    let t = now - Duration::hours(1);
    let e = call(&mut g, t);
    for version in Version::ALL {
        let mut r = written(version, &e, Purpose::Billing, OutputFormat::Protobuf, now).unwrap();
        let mut out = decode(&r);
        out.terminal.get_or_insert_with(Default::default).imeisv = "3520990017614823".into();
        r.value = out.encode_to_vec();
        assert_eq!(
            kinds(&check(Purpose::Billing, &r, 0, now)),
            vec![(Kind::FieldNotAllowed, Some("terminal.imeisv"))],
            "{version}"
        );
        let keeping = Auditor {
            kept: vec![(Purpose::Billing, vec!["terminal.imeisv"])],
            ..auditor()
        };
        let ctx = TopicContext {
            topic: Arc::from("b"),
            purpose: Some(Purpose::Billing),
            slack_ms: 0,
        };
        let view = RecordView {
            partition: 0,
            offset: 0,
            key: Some(&r.key),
            value: Some(&r.value),
            timestamp: Timestamp::CreateTime(r.timestamp_ms),
            headers: r
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), Some(v.as_bytes())))
                .collect(),
        };
        let mut f = Vec::new();
        keeping.check(&ctx, &view, now, &mut f);
        let want: Vec<(Kind, Option<&str>)> = match version {
            Version::R2012 => vec![],
            Version::R2021 => vec![(Kind::FieldNotAllowed, Some("terminal.imeisv"))],
        };
        assert_eq!(
            kinds(&f),
            want,
            "{version}, imeisv kept by the configuration"
        );
    }

    // Vendor extensions, and an unknown JSON key.
    let mut r = written(
        Version::R2021,
        &e,
        Purpose::Billing,
        OutputFormat::Json,
        now,
    )
    .unwrap();
    let mut doc: serde_json::Value = serde_json::from_slice(&r.value).unwrap();
    doc["extensions"] = serde_json::json!({"vendor.x": "1"});
    r.value = serde_json::to_vec(&doc).unwrap();
    assert_eq!(
        kinds(&check(Purpose::Billing, &r, 0, now)),
        vec![(Kind::UnknownField, Some("extensions"))]
    );
    let mut doc: serde_json::Value = serde_json::from_slice(&r.value).unwrap();
    doc.as_object_mut().unwrap().remove("extensions");
    doc["served"]["homeAddress"] = serde_json::json!("1 rue de la Paix");
    r.value = serde_json::to_vec(&doc).unwrap();
    assert_eq!(
        kinds(&check(Purpose::Billing, &r, 0, now)),
        vec![(Kind::UnknownField, None)]
    );
}

// ---- On the test broker.

/// Writes the records as they are (key, value, headers, timestamp) to partition 0.
fn produce(topic: &str, records: &[Rec]) {
    let inputs: Vec<common::io::Input> = records
        .iter()
        .map(|r| common::io::Input {
            payload: r.value.clone(),
            key: Some(r.key.clone()),
            headers: r.headers.clone(),
            partition: Some(0),
            timestamp_ms: Some(r.timestamp_ms),
        })
        .collect();
    common::io::produce(topic, &inputs);
}

fn audit(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cdr-purpose-filter"))
        .arg("audit")
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("CDR_PURPOSE_FILTER_CONFIG")
        .output()
        .expect("run audit");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// A configuration for the audit of `billing` and `security` on the test broker, written
/// to `DIR/filter.toml`: the tests' configuration on them (`audit` reads neither its
/// input nor its dead-letter topic).
fn audit_config(dir: &Path, billing: &str, security: &str) -> std::path::PathBuf {
    let mut t = Topics::new("audit");
    (t.billing, t.security) = (billing.to_string(), security.to_string());
    common::config::write(dir, &t.on(&common::broker::brokers()))
}

fn json(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn records_written_directly_are_each_found_once_at_their_offset() {
    let now = Utc::now();
    let billing = common::broker::unique("audit.billing");
    let security = common::broker::unique("audit.security");
    common::broker::create_topics(&[&billing, &security], 1).await;
    // Clean records around the defects, in both formats and both versions.
    let mut g = Generator::new(21, now);
    let mut topics: BTreeMap<Purpose, Vec<Rec>> = BTreeMap::new();
    let mut want: BTreeSet<(String, i64, String)> = BTreeSet::new();
    let mut identifiers: Vec<String> = Vec::new();
    let defects = defects(now);
    for (i, (purpose, rec, kind)) in defects.iter().enumerate() {
        for j in 0..20 {
            let e = g.next_event();
            let version = Version::ALL[j % 2];
            let format = [OutputFormat::Protobuf, OutputFormat::Json][(i + j) % 2];
            if let Some(r) = written(version, &e, *purpose, format, now) {
                topics.entry(*purpose).or_default().push(r);
            }
        }
        let list = topics.entry(*purpose).or_default();
        let topic = match purpose {
            Purpose::Billing => &billing,
            _ => &security,
        };
        want.insert((topic.clone(), list.len() as i64, kind.as_str().to_string()));
        if let Ok(e) = CdrEvent::decode(rec.value.as_slice()) {
            identifiers.push(e.event_id.clone());
            if let Some(s) = &e.served {
                identifiers.extend([s.msisdn.clone(), s.imsi.clone()]);
            }
        }
        list.push(rec.clone());
    }
    identifiers.extend([
        "35209900176148".into(),
        "rendez-vous".into(),
        "input-key-7".into(),
    ]);
    identifiers.retain(|s| !s.is_empty());
    produce(&billing, &topics[&Purpose::Billing]);
    produce(&security, &topics[&Purpose::Security]);
    let total = topics.values().map(Vec::len).sum::<usize>() as u64;

    let dir = tempfile::tempdir().unwrap();
    let config = audit_config(dir.path(), &billing, &security);
    let cfg = config.to_str().unwrap();
    let (code, stdout, stderr) = audit(&["--config", cfg, "--format", "json"]);
    assert_eq!(code, 1, "findings exit 1; stderr: {stderr}");
    let doc = json(&stdout);
    assert_eq!(doc["records"], total, "every record read");
    assert_eq!(doc["verdict"], "findings");
    let got: BTreeSet<(String, i64, String)> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert_eq!(f["partition"], 0);
            (
                f["topic"].as_str().unwrap().to_string(),
                f["offset"].as_i64().unwrap(),
                f["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        doc["findings"].as_array().unwrap().len(),
        want.len(),
        "one finding per defect: {got:?}"
    );
    assert_eq!(got, want);

    // The table says the same, and neither output nor log holds an identifier.
    let (code, table, stderr2) = audit(&["--config", cfg]);
    assert_eq!(code, 1, "{stderr2}");
    println!("{table}");
    for (topic, offset, kind) in &want {
        assert!(
            table.lines().any(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                w.len() >= 4
                    && w[0] == topic
                    && w[1] == "0"
                    && w[2] == offset.to_string()
                    && w[3] == kind
            }),
            "{topic} {offset} {kind} not in the table:\n{table}"
        );
    }
    for text in [&stdout, &stderr, &table, &stderr2] {
        for id in &identifiers {
            assert!(
                !text.contains(id.as_str()),
                "an identifier of a record in the output"
            );
        }
    }

    // --topic narrows; --max-records stops early.
    let (code, stdout, _) = audit(&["--config", cfg, "--format", "json", "--topic", &security]);
    assert_eq!(code, 1);
    let doc = json(&stdout);
    assert_eq!(doc["records"], topics[&Purpose::Security].len() as u64);
    assert!(doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["topic"] == security.as_str()));
    let (_, stdout, _) = audit(&[
        "--config",
        cfg,
        "--format",
        "json",
        "--topic",
        &billing,
        "--max-records",
        "3",
    ]);
    let doc = json(&stdout);
    assert_eq!(doc["records"], 3);
    assert_eq!(doc["truncated"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn what_the_filter_wrote_in_both_formats_audits_clean() {
    let t = Topics::new("audit");
    common::broker::create_topics(&[&t.input], 1).await;
    // The filter creates its output topics (3 partitions).
    let now = Utc::now();
    let mut g = Generator::new(17, now);
    let events: Vec<CdrEvent> = (0..1200).map(|_| g.next_event()).collect();
    let inputs: Vec<common::io::Input> = events
        .iter()
        .map(|e| {
            let mut buf = Vec::new();
            encode::encode_event(e, OutputFormat::Protobuf, &mut buf).unwrap();
            common::io::Input::value(buf)
        })
        .collect();
    common::io::produce(&t.input, &inputs);
    let dir = tempfile::tempdir().unwrap();

    // The filter in protobuf, then in JSON, into the same topics, each with its own
    // group. Both under the text in force: R10-14/2012 takes no communication of today
    // (`not_in_force`), and a record of today naming it is a finding (`defects`).
    let mut expected: BTreeMap<Purpose, usize> = BTreeMap::new();
    for (i, (version, format)) in [
        (Version::R2021, OutputFormat::Protobuf),
        (Version::R2021, OutputFormat::Json),
    ]
    .iter()
    .enumerate()
    {
        let run = Topics {
            input: t.input.clone(),
            billing: t.billing.clone(),
            security: t.security.clone(),
            dead_letter: t.dead_letter.clone(),
            group: common::broker::unique("audit.group"),
        };
        let sub = dir.path().join(format!("run{i}"));
        std::fs::create_dir_all(&sub).unwrap();
        let config = run.config_with(&sub, |c| {
            c.policy.version = version.name().into();
            c.output.format = *format;
        });
        let settings = config::load(&config).unwrap();
        for e in &events {
            for (p, o) in settings.policy.apply(e, Utc::now()).outcomes {
                if matches!(o, Outcome::Forward(_)) {
                    *expected.entry(p).or_default() += 1;
                }
            }
        }
        let log = sub.join("filter.log");
        let mut filter = Filter::start(&config, &log);
        for (p, topic) in [
            (Purpose::Billing, &t.billing),
            (Purpose::Security, &t.security),
        ] {
            let got =
                common::io::read_all(topic, expected[&p], std::time::Duration::from_secs(120));
            assert!(
                got.len() >= expected[&p],
                "{topic}: {} of {} records; log:\n{}",
                got.len(),
                expected[&p],
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        filter.signal("TERM");
        assert_eq!(filter.wait(std::time::Duration::from_secs(60)), Some(0));
    }
    // What the topics hold: both versions, both formats, 1,000+ records.
    let mut in_topics = Vec::new();
    for (p, topic) in [
        (Purpose::Billing, &t.billing),
        (Purpose::Security, &t.security),
    ] {
        in_topics.extend(common::io::read_all(
            topic,
            expected[&p],
            std::time::Duration::from_secs(120),
        ));
    }
    let total = in_topics.len();
    assert!(total >= 1000 && total >= expected.values().sum(), "{total}");
    let seen = |h: &str| -> BTreeSet<String> {
        in_topics
            .iter()
            .filter_map(|r| r.headers.get(h).cloned())
            .collect()
    };
    assert_eq!(
        seen("cdr-policy-version"),
        BTreeSet::from(["R10-14/2021".to_string()])
    );
    assert_eq!(
        seen("content-type"),
        BTreeSet::from([
            "application/json".to_string(),
            "application/x-protobuf".to_string()
        ])
    );

    let config = audit_config(dir.path(), &t.billing, &t.security);
    let (code, stdout, stderr) = audit(&["--config", config.to_str().unwrap(), "--format", "json"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let doc = json(&stdout);
    assert_eq!(doc["verdict"], "clean");
    assert_eq!(
        doc["records"].as_u64().unwrap() as usize,
        total,
        "every record audited: {}",
        doc["partitions"]
    );
    assert_eq!(doc["findings"].as_array().unwrap().len(), 0);
    let (code, table, _) = audit(&["--config", config.to_str().unwrap()]);
    assert_eq!(code, 0);
    println!("{table}");
    assert!(table.contains("verdict: clean"), "{table}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_topic_or_an_unreachable_broker_cannot_be_audited() {
    let dir = tempfile::tempdir().unwrap();
    let missing = common::broker::unique("audit.none");
    let present = common::broker::unique("audit.present");
    common::broker::create_topics(&[&present], 1).await;
    let config = audit_config(dir.path(), &present, &missing);
    let (code, stdout, stderr) = audit(&["--config", config.to_str().unwrap()]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!("topic {missing} does not exist")),
        "{stderr}"
    );
    assert!(stdout.is_empty());

    let down = tempfile::tempdir().unwrap();
    let nobody = format!("127.0.0.1:{}", common::broker::free_port());
    let path = common::config::write(down.path(), &Topics::new("audit.down").on(&nobody));
    let (code, _, stderr) = audit(&["--config", path.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("could not audit: no broker at kafka.bootstrap_servers"),
        "{stderr}"
    );
}

/// The value of a sample of a Prometheus scrape with all of the given labels.
fn sample(scrape: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_records_and_findings_by_kind() {
    let now = Utc::now();
    let billing = common::broker::unique("audit.mb");
    let security = common::broker::unique("audit.ms");
    common::broker::create_topics(&[&billing, &security], 1).await;
    let mut g = Generator::new(4, now);
    let t = now - Duration::hours(1);
    let clean = written(
        Version::R2021,
        &call(&mut g, t),
        Purpose::Security,
        OutputFormat::Protobuf,
        now,
    )
    .unwrap();
    let content = defects(now)
        .into_iter()
        .find(|(_, _, k)| *k == Kind::Content)
        .unwrap()
        .1;
    produce(&security, &[clean.clone(), content, clean]);
    let dir = tempfile::tempdir().unwrap();
    let config = audit_config(dir.path(), &billing, &security);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", common::broker::free_port())
        .parse()
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cdr-purpose-filter"))
        .args(["audit", "--config"])
        .arg(&config)
        .args([
            "--metrics-listen",
            &addr.to_string(),
            "--metrics-linger",
            "60s",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut scrape = String::new();
    while std::time::Instant::now() < deadline {
        if let Some((200, body)) = common::filter::http_get(addr, "/metrics") {
            scrape = body;
            if sample(&scrape, "cdr_audit_records_total", &[("topic", &security)]) == Some(3.0) {
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    let records = |topic: &str| sample(&scrape, "cdr_audit_records_total", &[("topic", topic)]);
    assert_eq!(records(&security), Some(3.0), "{scrape}");
    assert_eq!(records(&billing), Some(0.0), "{scrape}");
    let findings = |topic: &str, kind: &str| {
        sample(
            &scrape,
            "cdr_audit_findings_total",
            &[("topic", topic), ("kind", kind)],
        )
    };
    assert_eq!(findings(&security, "content"), Some(1.0), "{scrape}");
    // Every kind exists from the start, at zero.
    for kind in Kind::ALL {
        if kind != Kind::Content {
            assert_eq!(findings(&security, kind.as_str()), Some(0.0), "{kind}");
        }
        assert_eq!(findings(&billing, kind.as_str()), Some(0.0), "{kind}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn from_time_starts_at_the_first_record_at_or_after_it() {
    let now = Utc::now();
    let billing = common::broker::unique("audit.fb");
    let security = common::broker::unique("audit.fs");
    common::broker::create_topics(&[&billing, &security], 1).await;
    let mut g = Generator::new(6, now);
    let records: Vec<Rec> = [5, 4, 3, 1, 0]
        .iter()
        .map(|h| {
            let t = now - Duration::hours(*h) - Duration::minutes(1);
            written(
                Version::R2021,
                &call(&mut g, t),
                Purpose::Security,
                OutputFormat::Protobuf,
                now,
            )
            .unwrap()
        })
        .collect();
    produce(&security, &records);
    let dir = tempfile::tempdir().unwrap();
    let config = audit_config(dir.path(), &billing, &security);
    let from = cdr_purpose_filter::retention::rfc3339(now - Duration::hours(2));
    let (code, stdout, stderr) = audit(&[
        "--config",
        config.to_str().unwrap(),
        "--format",
        "json",
        "--topic",
        &security,
        "--from-time",
        &from,
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let doc = json(&stdout);
    assert_eq!(doc["records"], 2, "{}", doc["partitions"]);
    assert_eq!(doc["partitions"][0]["start"], 3);
}

#[test]
fn timestamp_type_duplicate_headers_and_content_type_are_checked() {
    let now = Utc::now();
    let mut g = Generator::new(8, now);
    let rec = written(
        Version::R2021,
        &call(&mut g, now - Duration::hours(1)),
        Purpose::Security,
        OutputFormat::Protobuf,
        now,
    )
    .unwrap();
    let ctx = TopicContext {
        topic: Arc::from("s"),
        purpose: Some(Purpose::Security),
        slack_ms: 0,
    };
    let run = |rec: &Rec, timestamp: Timestamp| {
        let view = RecordView {
            partition: 1,
            offset: 42,
            key: Some(&rec.key),
            value: Some(&rec.value),
            timestamp,
            headers: rec
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), Some(v.as_bytes())))
                .collect(),
        };
        let mut f = Vec::new();
        auditor().check(&ctx, &view, now, &mut f);
        kinds(&f)
    };
    assert_eq!(run(&rec, Timestamp::CreateTime(rec.timestamp_ms)), vec![]);
    // The broker's append time replaced the CreateTime.
    assert_eq!(
        run(&rec, Timestamp::LogAppendTime(rec.timestamp_ms)),
        vec![(Kind::TimestampTypeNotCreateTime, None)]
    );
    // A contract header twice.
    let mut twice = rec.clone();
    twice
        .headers
        .push(("cdr-purpose".into(), "security".into()));
    assert_eq!(
        run(&twice, Timestamp::CreateTime(rec.timestamp_ms)),
        vec![(Kind::ExtraHeader, Some("cdr-purpose"))]
    );
    // A protobuf value said to be JSON.
    let mut json = rec.clone();
    set_header(&mut json, "content-type", "application/json");
    assert_eq!(
        run(&json, Timestamp::CreateTime(rec.timestamp_ms)),
        vec![(Kind::Undecodable, None)]
    );
    // An unknown content type: a header finding; the value is still read.
    let mut other = rec.clone();
    set_header(&mut other, "content-type", "text/plain");
    assert_eq!(
        run(&other, Timestamp::CreateTime(rec.timestamp_ms)),
        vec![(Kind::HeaderMismatch, Some("content-type"))]
    );
}
