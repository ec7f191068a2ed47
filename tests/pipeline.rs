//! The Kafka pipeline against a real broker over TCP: forwarding, dead letters, restart
//! after SIGKILL, graceful SIGTERM.

mod common;

use cdr_purpose_filter::config;
use cdr_purpose_filter::dead_letter::Pointer;
use cdr_purpose_filter::encode::{self, OutputFormat};
use cdr_purpose_filter::gen::Generator;
use cdr_purpose_filter::policy::{table, Outcome};
use cdr_purpose_filter::schema::{self, CdrEvent, Purpose};
use chrono::Utc;
use common::{config::Topics, filter::Filter, io::Input};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

/// Generated events, encoded alternately as JSON and protobuf, with an input key and an
/// input header that must never reach an output.
fn load(n: usize, seed: u64) -> (Vec<CdrEvent>, Vec<Input>) {
    let mut g = Generator::new(seed, Utc::now());
    let events: Vec<CdrEvent> = (0..n).map(|_| g.next_event()).collect();
    let inputs = events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let mut buf = Vec::new();
            let format = if i % 2 == 0 {
                OutputFormat::Json
            } else {
                OutputFormat::Protobuf
            };
            encode::encode_event(e, format, &mut buf).unwrap();
            Input {
                payload: buf,
                key: Some(format!("input-key-{i}").into_bytes()),
                headers: vec![("x-input-secret".into(), "+33600000000".into())],
                partition: None,
                timestamp_ms: None,
            }
        })
        .collect();
    (events, inputs)
}

/// The keys each purpose must receive, by the policy in force for `config`.
fn expected(config: &std::path::Path, events: &[CdrEvent]) -> BTreeMap<Purpose, BTreeSet<String>> {
    let settings = config::load(config).unwrap();
    let now = Utc::now();
    let mut want: BTreeMap<Purpose, BTreeSet<String>> = BTreeMap::new();
    for e in events {
        for (p, o) in settings.policy.apply(e, now).outcomes {
            if matches!(o, Outcome::Forward(_)) {
                want.entry(p).or_default().insert(e.event_id.clone());
            }
        }
    }
    want
}

#[tokio::test(flavor = "multi_thread")]
async fn forwards_json_and_protobuf_with_the_contract_and_commits_on_sigterm() {
    let t = Topics::new("fwd");
    common::broker::create_topics(&[&t.input], 3).await;
    let dir = tempfile::tempdir().unwrap();
    let config = t.config(dir.path());
    let (events, inputs) = load(3000, 11);
    common::io::produce(&t.input, &inputs);
    let want = expected(&config, &events);
    let by_id: HashMap<&str, &CdrEvent> = events.iter().map(|e| (e.event_id.as_str(), e)).collect();

    // dry-run on the same events must agree with what the filter writes.
    let file = dir.path().join("events.jsonl");
    let mut lines = Vec::new();
    for e in &events {
        let mut buf = Vec::new();
        encode::encode_event(e, OutputFormat::Json, &mut buf).unwrap();
        lines.extend_from_slice(&buf);
        lines.push(b'\n');
    }
    std::fs::write(&file, lines).unwrap();
    let dry = std::process::Command::new(env!("CARGO_BIN_EXE_cdr-purpose-filter"))
        .args(["dry-run", "--config"])
        .arg(&config)
        .arg(&file)
        .output()
        .unwrap();
    assert!(dry.status.success());
    let mut dry_counts: BTreeMap<String, usize> = BTreeMap::new();
    // The headers dry-run shows, by (event_id, purpose).
    let mut dry_headers: HashMap<(String, String), BTreeMap<String, String>> = HashMap::new();
    for line in String::from_utf8(dry.stdout).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["outcome"] == "forward" {
            let purpose = v["purpose"].as_str().unwrap().to_string();
            *dry_counts.entry(purpose.clone()).or_default() += 1;
            dry_headers.insert(
                (v["event_id"].as_str().unwrap().to_string(), purpose),
                serde_json::from_value(v["headers"].clone()).unwrap(),
            );
        }
    }

    let log = dir.path().join("filter.log");
    let mut filter = Filter::start(&config, &log);
    let billing = common::io::read_all(
        &t.billing,
        want[&Purpose::Billing].len(),
        Duration::from_secs(120),
    );
    let security = common::io::read_all(
        &t.security,
        want[&Purpose::Security].len(),
        Duration::from_secs(120),
    );

    for (purpose, topic, records) in [
        (Purpose::Billing, &t.billing, &billing),
        (Purpose::Security, &t.security, &security),
    ] {
        let keys: Vec<String> = records.iter().map(|r| r.key_str()).collect();
        let unique: BTreeSet<String> = keys.iter().cloned().collect();
        assert_eq!(keys.len(), unique.len(), "{topic}: a record appears twice");
        assert_eq!(unique, want[&purpose], "{topic}: not the expected events");
        assert_eq!(
            records.len(),
            dry_counts[purpose.name()],
            "{topic}: dry-run disagrees"
        );
        for r in records.iter() {
            let out = r.event();
            let input = by_id[out.event_id.as_str()];
            assert_eq!(
                r.key_str(),
                input.event_id,
                "key is event_id, never the input key"
            );
            let event_ms = schema::to_datetime(input.event_time.as_ref().unwrap())
                .unwrap()
                .timestamp_millis();
            assert_eq!(r.timestamp, Some(event_ms), "timestamp is event_time");
            let names: Vec<&str> = r.headers.keys().map(String::as_str).collect();
            assert_eq!(
                names,
                [
                    "cdr-expires-at",
                    "cdr-legal-basis",
                    "cdr-policy-version",
                    "cdr-purpose",
                    "content-type"
                ],
                "only the contract's headers"
            );
            assert_eq!(r.headers["cdr-purpose"], purpose.name());
            assert_eq!(r.headers["content-type"], "application/x-protobuf");
            assert_eq!(
                r.headers,
                dry_headers[&(out.event_id.clone(), purpose.name().to_string())],
                "{topic}: dry-run shows other headers than run writes"
            );
            assert_eq!(r.headers["cdr-policy-version"], "R10-14/2021");
            let retention = out.retention.clone().unwrap();
            assert_eq!(retention.purpose, purpose as i32);
            let expires = schema::to_datetime(retention.expires_at.as_ref().unwrap()).unwrap();
            assert_eq!(
                r.headers["cdr-expires-at"],
                cdr_purpose_filter::retention::rfc3339(expires)
            );
            // Field by field, against the table.
            let version = cdr_purpose_filter::policy::Version::R2021;
            let column = cdr_purpose_filter::policy::route(version, purpose, input).unwrap();
            let caller =
                cdr_purpose_filter::policy::about_the_caller(input.event_type, input.direction);
            for f in version.fields() {
                let allowed = match f.cell(column).rule {
                    table::Rule::Keep => true,
                    table::Rule::KeepIfCaller => caller,
                    table::Rule::Optional | table::Rule::Remove => false,
                };
                assert_eq!(
                    f.is_present(&out),
                    allowed && f.is_present(input),
                    "{} in {topic}",
                    f.path
                );
            }
        }
    }

    // Graceful stop: exit 0, every input offset committed.
    filter.signal("TERM");
    let code = filter.wait(Duration::from_secs(30));
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(code, Some(0), "SIGTERM exits 0; log:\n{log_text}");
    assert!(log_text.contains("offsets committed"), "{log_text}");
    let committed: i64 = common::broker::committed(&t.group, &t.input)
        .values()
        .filter(|o| **o > 0)
        .sum();
    assert_eq!(
        committed,
        events.len() as i64,
        "every input record committed"
    );
    for secret in ["+33600000000", "input-key-"] {
        assert!(!log_text.contains(secret), "log holds {secret}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_records_become_pointers_and_the_partition_keeps_flowing() {
    let t = Topics::new("dlq");
    common::broker::create_topics(&[&t.input], 1).await;
    let dir = tempfile::tempdir().unwrap();
    let config = t.config(dir.path());
    let now = Utc::now();
    let mut g = Generator::new(5, now);
    let good = |g: &mut Generator| {
        let mut e = g.full_event(
            schema::EventType::VoiceCall,
            schema::Direction::Originating,
            now - chrono::Duration::hours(1),
        );
        e.charging.as_mut().unwrap().chargeable = true;
        e
    };
    let goods: Vec<CdrEvent> = (0..4).map(|_| good(&mut g)).collect();
    let mut no_id = good(&mut g);
    no_id.event_id.clear();
    let mut future = good(&mut g);
    future.event_time = Some(schema::to_timestamp(now + chrono::Duration::days(1)));
    let pb = |e: &CdrEvent| prost::Message::encode_to_vec(e);
    let secret_json = br#"{"eventId": "x", "served": {"msisdn": "+33611112222"}, "timing": {"durationMs": "oops"}}"#.to_vec();
    let payloads = vec![
        pb(&goods[0]),
        b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff garbage +33622223333".to_vec(),
        pb(&goods[1]),
        pb(&no_id),
        secret_json,
        pb(&goods[2]),
        pb(&future),
        Vec::new(),
        pb(&goods[3]),
    ];
    let inputs: Vec<Input> = payloads.iter().cloned().map(Input::value).collect();
    common::io::produce(&t.input, &inputs);

    let _filter = Filter::start(&config, &dir.path().join("filter.log"));
    let dead = common::io::read_all(&t.dead_letter, 5, Duration::from_secs(120));
    let billing = common::io::read_all(&t.billing, 4, Duration::from_secs(60));
    let mut reasons: Vec<(i64, String)> = dead
        .iter()
        .map(|d| {
            let p: Pointer = serde_json::from_slice(&d.payload).expect("a pointer is JSON");
            assert_eq!(p.source_topic, t.input);
            assert_eq!(p.source_partition, 0);
            assert_eq!(d.headers["cdr-dead-letter-reason"], p.reason);
            assert!(d.key.is_none(), "no key in a pointer");
            let text = String::from_utf8_lossy(&d.payload);
            for secret in ["+33611112222", "+33622223333", "oops"] {
                assert!(!text.contains(secret), "pointer copies raw data: {text}");
            }
            (p.source_offset, p.reason)
        })
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        vec![
            (1, "undecodable".to_string()),
            (3, "invalid".to_string()),
            (4, "undecodable".to_string()),
            (6, "future_event_time".to_string()),
            (7, "undecodable".to_string()),
        ]
    );
    let ids: BTreeSet<String> = billing.iter().map(|r| r.key_str()).collect();
    let want: BTreeSet<String> = goods.iter().map(|e| e.event_id.clone()).collect();
    assert_eq!(ids, want, "every good record after a bad one went through");
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_after_sigkill_loses_nothing() {
    let t = Topics::new("kill");
    common::broker::create_topics(&[&t.input], 3).await;
    let dir = tempfile::tempdir().unwrap();
    // A small in-flight window and frequent commits (appended to [delivery]), so that
    // the kill lands between commits, mid-stream.
    let config = t.config_with(dir.path(), |c| {
        c.delivery.max_in_flight = 500;
        c.delivery.commit_interval = "200ms".into();
    });
    let (events, inputs) = load(50_000, 23);
    common::io::produce(&t.input, &inputs);
    let want = expected(&config, &events);

    let mut first = Filter::start(&config, &dir.path().join("first.log"));
    // Let it get part of the way, then kill it without warning.
    assert!(
        common::io::wait_for_records(&t.security, 2000, Duration::from_secs(120)),
        "the first run made progress"
    );
    first.signal("KILL");
    assert_eq!(
        first.wait(Duration::from_secs(10)),
        Some(-1),
        "killed by a signal"
    );
    let committed_at_kill: i64 = common::broker::committed(&t.group, &t.input)
        .values()
        .filter(|o| **o > 0)
        .sum();
    assert!(
        committed_at_kill < events.len() as i64,
        "the kill landed mid-stream ({committed_at_kill} committed)"
    );

    let _second = Filter::start(&config, &dir.path().join("second.log"));
    let mut report = Vec::new();
    for (purpose, topic) in [
        (Purpose::Billing, &t.billing),
        (Purpose::Security, &t.security),
    ] {
        let wanted = &want[&purpose];
        // Until every expected key is read: duplicates would reach a count early.
        let records = common::io::read_keys(topic, wanted, Duration::from_secs(180));
        let delivery = common::checks::at_least_once(topic, wanted, &records);
        report.push(format!(
            "{}: expected {}, {delivery}",
            purpose.name(),
            wanted.len(),
        ));
        assert_eq!(delivery.missing, 0, "{topic}: records lost across SIGKILL");
    }
    println!(
        "restart test: {} events sent; committed at kill {committed_at_kill}; {}",
        events.len(),
        report.join("; ")
    );
}
