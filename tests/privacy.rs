//! No personal data where it must not be. The filter runs at its most verbose (`--log
//! trace`, and librdkafka's `debug = "all"`) on events full of recognisable identifiers
//! — MSISDNs, IMSI, IMEI, IP addresses, SMS text, URLs, vendor fields — good ones and
//! malformed ones that end as dead letters, with identifiers in the input key and
//! headers too. None of those values may appear in the logs, the metrics page, the
//! dead-letter records, or any output record of a purpose that may not keep that field;
//! nor may the configured password appear in the logs.

mod common;

use cdr_purpose_filter::gen::Generator;
use cdr_purpose_filter::policy::{self, table};
use cdr_purpose_filter::schema::{self, CdrEvent, Direction, EventType};
use chrono::Utc;
use common::canaries::{canary, CANARIES, PASSWORD, VENDOR};
use common::{config::Topics, filter::Filter, io::Input, io::Output};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

fn every_value() -> Vec<&'static str> {
    CANARIES
        .iter()
        .map(|(_, v)| *v)
        .chain([VENDOR, PASSWORD])
        .collect()
}

/// The canaries found in some bytes.
fn leaks(bytes: &[u8], values: &[&str]) -> Vec<String> {
    values
        .iter()
        .filter(|v| bytes.windows(v.len()).any(|w| w == v.as_bytes()))
        .map(|v| v.to_string())
        .collect()
}

/// The fields a purpose may keep for an event, by the table (no operator removals).
fn may_keep(purpose: schema::Purpose, event: &CdrEvent, path: &str) -> bool {
    let version = policy::Version::IN_FORCE;
    let Ok(column) = policy::route(version, purpose, event) else {
        return false;
    };
    let row = version.field(path).unwrap();
    match row.cell(column).rule {
        table::Rule::Keep => true,
        table::Rule::KeepIfCaller => policy::about_the_caller(event.event_type, event.direction),
        table::Rule::Optional | table::Rule::Remove => false,
    }
}

fn record_bytes(r: &Output) -> Vec<u8> {
    let mut b = r.payload.clone();
    b.extend(r.key.clone().unwrap_or_default());
    for (k, v) in &r.headers {
        b.extend(k.as_bytes());
        b.extend(v.as_bytes());
    }
    b
}

#[tokio::test(flavor = "multi_thread")]
async fn identifiers_never_reach_logs_metrics_dead_letters_or_purposes_that_may_not_keep_them() {
    let t = Topics::new("privacy");
    common::broker::create_topics(&[&t.input], 2).await;
    let dir = tempfile::tempdir().unwrap();
    let config = t.config_with(dir.path(), |c| {
        common::config::set(&mut c.kafka.properties, "debug", "all");
        common::config::set(&mut c.kafka.properties, "sasl.password", PASSWORD);
    });
    let now = Utc::now();
    let mut g = Generator::new(91, now);
    let events = common::canaries::events(&mut g, now);
    let pb = |e: &CdrEvent| prost::Message::encode_to_vec(e);
    let json = |e: &CdrEvent| serde_json::to_vec(e).unwrap();
    let mut inputs: Vec<Input> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let mut input = Input::value(if i % 2 == 0 { pb(e) } else { json(e) });
        input.key = Some(canary("served.msisdn").as_bytes().to_vec());
        input.headers = vec![("x-imsi".into(), canary("served.imsi").into())];
        inputs.push(input);
    }
    // Malformed records full of identifiers: each must become a pointer.
    let base = events[0].clone();
    let mut no_id = base.clone();
    no_id.event_id.clear();
    let mut future = base.clone();
    future.event_time = Some(schema::to_timestamp(now + chrono::Duration::days(2)));
    let truncated = {
        let b = pb(&base);
        b[..b.len() - 3].to_vec()
    };
    let msisdn = canary("served.msisdn");
    let sms = canary("content.sms_text");
    let bad: Vec<Vec<u8>> = vec![
        truncated,
        pb(&no_id),
        json(&future),
        format!(
            r#"{{"eventId": "{msisdn}", "served": {{"msisdn": "{msisdn}"}}, "timing": {{"durationMs": "{msisdn}"}}}}"#
        )
        .into_bytes(),
        format!(r#"{{"eventId": "bad-enum", "eventType": "{sms}"}}"#).into_bytes(),
        format!(r#"{{"eventId": "bad-time", "eventTime": "{msisdn}"}}"#).into_bytes(),
        [
            format!(r#"{{"eventId": "bad-utf8", "content": {{"smsText": "{sms}"#).as_bytes(),
            b"\xff\xfe\"}}",
        ]
        .concat(),
        format!(r#"{{"served": {{"imsi": "{}"}}"#, canary("served.imsi")).into_bytes(),
    ];
    for b in &bad {
        let mut input = Input::value(b.clone());
        input.key = Some(msisdn.as_bytes().to_vec());
        inputs.push(input);
    }
    common::io::produce(&t.input, &inputs);

    let log = dir.path().join("filter.log");
    let mut filter = Filter::start_with(&config, &log, &["--log", "trace"], &[]);
    let addr = filter.http_address(&log);
    let dead = common::io::read_all(&t.dead_letter, bad.len(), Duration::from_secs(120));
    assert_eq!(
        dead.len(),
        bad.len(),
        "every malformed record is dead-lettered"
    );
    let by_id: HashMap<&str, &CdrEvent> = events.iter().map(|e| (e.event_id.as_str(), e)).collect();
    let mut outputs = BTreeMap::new();
    for (purpose, topic) in [
        (schema::Purpose::Billing, &t.billing),
        (schema::Purpose::Security, &t.security),
    ] {
        let want = events
            .iter()
            .filter(|e| policy::route(policy::Version::IN_FORCE, purpose, e).is_ok())
            .count();
        let records = common::io::read_all(topic, want, Duration::from_secs(120));
        assert!(!records.is_empty(), "{topic}: nothing forwarded");
        outputs.insert(purpose, records);
    }
    // The last scrape, after everything went through.
    let (status, metrics) = common::filter::http_get(addr, "/metrics").expect("scrape /metrics");
    assert_eq!(status, 200);
    filter.signal("TERM");
    assert_eq!(filter.wait(Duration::from_secs(30)), Some(0), "clean stop");
    let log_text = std::fs::read(&log).unwrap();

    let all = every_value();
    let mut found = Vec::new();
    for (place, bytes) in [
        ("the log", log_text.clone()),
        ("the metrics page", metrics.clone().into_bytes()),
    ] {
        for v in leaks(&bytes, &all) {
            found.push(format!("{v} in {place}"));
        }
    }
    for d in &dead {
        for v in leaks(&record_bytes(d), &all) {
            found.push(format!("{v} in a dead letter"));
        }
    }
    let mut kept = 0;
    for (purpose, records) in &outputs {
        for r in records {
            let event = by_id[r.key_str().as_str()];
            let bytes = record_bytes(r);
            for (path, value) in CANARIES {
                let present = !leaks(&bytes, &[value]).is_empty();
                if may_keep(*purpose, event, path) {
                    kept += usize::from(present);
                } else if present {
                    found.push(format!(
                        "{path} ({value}) in a {} record of a {:?} {:?} event",
                        purpose.name(),
                        EventType::try_from(event.event_type).unwrap(),
                        Direction::try_from(event.direction).unwrap(),
                    ));
                }
            }
            for v in [VENDOR, PASSWORD] {
                if !leaks(&bytes, &[v]).is_empty() {
                    found.push(format!("{v} in a {} record", purpose.name()));
                }
            }
        }
    }
    let log_lines = log_text.split(|b| *b == b'\n').count();
    println!(
        "privacy: {} events, {} malformed; {} log lines at trace with librdkafka debug=all; \
         {} dead letters; outputs {:?}; {kept} allowed identifier values kept",
        events.len(),
        bad.len(),
        log_lines,
        dead.len(),
        outputs
            .iter()
            .map(|(p, r)| (p.name(), r.len()))
            .collect::<Vec<_>>()
    );
    // The test sees what it checks: a verbose log, and identifiers the law lets through.
    assert!(log_lines > 1000, "the log is verbose ({log_lines} lines)");
    assert!(
        String::from_utf8_lossy(&log_text).contains("librdkafka"),
        "librdkafka's debug log is in"
    );
    assert!(
        kept > 0,
        "allowed identifiers are kept (the check can see them)"
    );
    assert!(
        found.is_empty(),
        "personal data leaked:\n{}",
        found.join("\n")
    );
}
