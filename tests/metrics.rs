//! Telemetry against a real broker: the filter binary runs on the test broker, its
//! `/metrics` is scraped over HTTP and every counter is checked against what was sent and
//! what was read back; `/healthz` answers, `/readyz` becomes ready, and no personal data
//! sent appears in the scrape. The last scrape is written to
//! `target/tmp/metrics-scrape.txt` for CI's `promtool check metrics`.

mod common;

use cdr_purpose_filter::config;
use cdr_purpose_filter::encode::{self, OutputFormat};
use cdr_purpose_filter::gen::Generator;
use cdr_purpose_filter::policy::table;
use cdr_purpose_filter::policy::Outcome;
use cdr_purpose_filter::schema::CdrEvent;
use chrono::Utc;
use common::{config::Topics, filter::Filter, io::Input};
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

/// A plain HTTP/1.1 GET: (status, body).
fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status code");
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "expected a Content-Length body"
    );
    Ok((status, body.to_string()))
}

/// One sample of the scrape: metric name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the Prometheus text format (the subset the exporter writes).
fn parse(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("`series value`");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("value in {line}"));
        let (name, labels) = match series.split_once('{') {
            None => (series.to_string(), BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("closing brace");
                let mut labels = BTreeMap::new();
                let mut chars = body.chars().peekable();
                while chars.peek().is_some() {
                    let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
                    assert_eq!(chars.next(), Some('"'), "quoted label in {line}");
                    let mut v = String::new();
                    while let Some(c) = chars.next() {
                        match c {
                            '\\' => v.push(chars.next().unwrap()),
                            '"' => break,
                            c => v.push(c),
                        }
                    }
                    if chars.peek() == Some(&',') {
                        chars.next();
                    }
                    labels.insert(key, v);
                }
                (name.to_string(), labels)
            }
        };
        out.push(Sample {
            name,
            labels,
            value,
        });
    }
    out
}

/// The sum of a metric's samples whose labels include `want`.
fn sum(samples: &[Sample], name: &str, want: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            want.iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

/// The address the filter logged it serves metrics on (it listens on port 0).
fn metrics_addr(log: &Path, filter: &mut Filter) -> SocketAddr {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.contains("serving /metrics")) {
            let at = line
                .find("127.0.0.1:")
                .expect("bound address in the log line");
            let addr: String = line[at..]
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                .collect();
            return addr.parse().expect("an address");
        }
        if let Some(code) = filter.wait(Duration::from_millis(100)) {
            panic!("the filter exited with {code} before serving metrics; log:\n{text}");
        }
        assert!(
            Instant::now() < deadline,
            "the filter never served metrics; log:\n{text}"
        );
    }
}

/// Scrapes until `done` holds for the samples (or `limit` passes); returns the last
/// scrape.
fn scrape_until(
    addr: SocketAddr,
    limit: Duration,
    done: impl Fn(&[Sample]) -> bool,
) -> (String, Vec<Sample>) {
    let deadline = Instant::now() + limit;
    loop {
        let (status, body) = get(addr, "/metrics").expect("scrape /metrics");
        assert_eq!(status, 200, "/metrics: {body}");
        let samples = parse(&body);
        if done(&samples) || Instant::now() >= deadline {
            return (body, samples);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_what_the_filter_did_and_hold_no_personal_data() {
    let t = Topics::new("metrics");
    common::broker::create_topics(&[&t.input], 2).await;
    let dir = tempfile::tempdir().unwrap();
    let config = t.config(dir.path());
    let settings = config::load(&config).unwrap();

    // Generated events, alternately JSON and protobuf, and bad records.
    let now = Utc::now();
    let mut g = Generator::new(41, now);
    let events: Vec<CdrEvent> = (0..600).map(|_| g.next_event()).collect();
    let mut inputs = Vec::new();
    let (mut json, mut protobuf) = (0u64, 0u64);
    for (i, e) in events.iter().enumerate() {
        let format = if i % 2 == 0 {
            json += 1;
            OutputFormat::Json
        } else {
            protobuf += 1;
            OutputFormat::Protobuf
        };
        let mut buf = Vec::new();
        encode::encode_event(e, format, &mut buf).unwrap();
        inputs.push(Input::value(buf));
    }
    let garbage = [
        b"\xff\xfe not a CDR +33699998888".to_vec(),
        br#"{"eventId": "m-1", "served": {"msisdn": "+33688887777"}, "timing": {"durationMs": "x"}}"#.to_vec(),
        b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff 208150123456789".to_vec(),
    ];
    for p in &garbage {
        inputs.push(Input::value(p.clone()));
    }
    // Decodes as JSON, refused as invalid (no event_id): a dead letter, and an event age.
    let mut no_id = g.next_event();
    no_id.event_id.clear();
    let mut buf = Vec::new();
    encode::encode_event(&no_id, OutputFormat::Json, &mut buf).unwrap();
    inputs.push(Input::value(buf));
    json += 1;
    let total = inputs.len() as f64;
    common::io::produce(&t.input, &inputs);

    // What the policy decides for the generated events (same as the filter, moments later).
    let mut want_dropped: BTreeMap<(String, String), f64> = BTreeMap::new();
    let mut want_forwarded: BTreeMap<String, usize> = BTreeMap::new();
    for e in &events {
        for (p, o) in settings.policy.apply(e, now).outcomes {
            match o {
                Outcome::Forward(_) => {
                    *want_forwarded.entry(p.name().to_string()).or_default() += 1
                }
                Outcome::Drop(r) => {
                    *want_dropped
                        .entry((p.name().to_string(), r.as_str().to_string()))
                        .or_default() += 1.0
                }
            }
        }
    }

    let log = dir.path().join("filter.log");
    let mut filter = Filter::start(&config, &log);
    let addr = metrics_addr(&log, &mut filter);

    let (status, body) = get(addr, "/healthz").unwrap();
    assert_eq!((status, body.as_str()), (200, "ok\n"));

    // Ready once partitions are assigned and topics verified.
    let deadline = Instant::now() + Duration::from_secs(120);
    let ready = loop {
        let (status, body) = get(addr, "/readyz").unwrap();
        if status == 200 {
            break body;
        }
        assert_eq!(status, 503, "/readyz: {body}");
        assert!(body.starts_with("not ready: "), "{body}");
        assert!(
            Instant::now() < deadline,
            "never ready: {body}; log:\n{}",
            std::fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(ready, "ready\n");

    // Read every output back.
    let billing = common::io::read_all(
        &t.billing,
        want_forwarded["billing"],
        Duration::from_secs(120),
    );
    let security = common::io::read_all(
        &t.security,
        want_forwarded["security"],
        Duration::from_secs(120),
    );
    let dead = common::io::read_all(&t.dead_letter, 4, Duration::from_secs(60));
    assert_eq!(billing.len(), want_forwarded["billing"]);
    assert_eq!(security.len(), want_forwarded["security"]);
    assert_eq!(dead.len(), 4);

    // Scrape until every input is processed and the statistics have reported lag for
    // both input partitions (librdkafka reports every 5 s).
    let input = t.input.as_str();
    let (text, s) = scrape_until(addr, Duration::from_secs(60), |s| {
        sum(s, "cdr_processing_seconds_count", &[]) >= total
            && s.iter()
                .filter(|x| {
                    x.name == "cdr_consumer_lag"
                        && x.labels.get("topic").map(String::as_str) == Some(input)
                })
                .count()
                == 2
    });
    std::fs::write(
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("metrics-scrape.txt"),
        &text,
    )
    .unwrap();

    // Consumed, by topic and format.
    assert_eq!(
        sum(&s, "cdr_events_consumed_total", &[("topic", input)]),
        total
    );
    assert_eq!(
        sum(&s, "cdr_events_consumed_total", &[("format", "json")]),
        json as f64
    );
    assert_eq!(
        sum(&s, "cdr_events_consumed_total", &[("format", "protobuf")]),
        protobuf as f64
    );
    assert_eq!(
        sum(&s, "cdr_events_consumed_total", &[("format", "unknown")]),
        garbage.len() as f64
    );
    assert_eq!(
        sum(&s, "cdr_decode_errors_total", &[]),
        garbage.len() as f64
    );

    // Produced, per purpose, equal to the records read back.
    assert_eq!(
        sum(&s, "cdr_records_produced_total", &[("purpose", "billing")]),
        billing.len() as f64
    );
    assert_eq!(
        sum(&s, "cdr_records_produced_total", &[("purpose", "security")]),
        security.len() as f64
    );

    // Dead letters, per reason, equal to the pointers read back.
    let mut dead_reasons: BTreeMap<String, f64> = BTreeMap::new();
    for d in &dead {
        *dead_reasons
            .entry(d.headers["cdr-dead-letter-reason"].clone())
            .or_default() += 1.0;
    }
    assert_eq!(
        dead_reasons,
        BTreeMap::from([
            ("invalid".to_string(), 1.0),
            ("undecodable".to_string(), 3.0)
        ])
    );
    for (reason, n) in &dead_reasons {
        assert_eq!(sum(&s, "cdr_dead_letters_total", &[("reason", reason)]), *n);
    }
    assert_eq!(sum(&s, "cdr_dead_letters_total", &[]), 4.0);

    // Drops, per purpose and reason, as the policy decides (a refused record is a dead
    // letter, not a drop).
    let mut got_dropped: BTreeMap<(String, String), f64> = BTreeMap::new();
    // Counters registered up front read 0 until used: a 0 is an absent drop.
    for x in s
        .iter()
        .filter(|x| x.name == "cdr_records_dropped_total" && x.value != 0.0)
    {
        got_dropped.insert(
            (x.labels["purpose"].clone(), x.labels["reason"].clone()),
            x.value,
        );
    }
    assert_eq!(got_dropped, want_dropped);

    // Fields removed, per purpose and group: what the outputs read back lack.
    let by_id: HashMap<&str, &CdrEvent> = events.iter().map(|e| (e.event_id.as_str(), e)).collect();
    let mut want_removed: BTreeMap<(String, String), f64> = BTreeMap::new();
    for (purpose, records) in [("billing", &billing), ("security", &security)] {
        for r in records.iter() {
            let out = r.event();
            let input = by_id[out.event_id.as_str()];
            for f in table::schema_rows() {
                if f.is_present(input) && !f.is_present(&out) {
                    *want_removed
                        .entry((purpose.to_string(), f.group().to_string()))
                        .or_default() += 1.0;
                }
            }
        }
    }
    let mut got_removed: BTreeMap<(String, String), f64> = BTreeMap::new();
    for x in s
        .iter()
        .filter(|x| x.name == "cdr_fields_removed_total" && x.value != 0.0)
    {
        got_removed.insert(
            (x.labels["purpose"].clone(), x.labels["group"].clone()),
            x.value,
        );
    }
    assert_eq!(got_removed, want_removed);
    assert!(
        want_removed.contains_key(&("security".to_string(), "content".to_string())),
        "the generator fills content, and content is always removed"
    );

    // Histograms: one event age per decoded event, one latency per input record.
    assert_eq!(
        sum(&s, "cdr_event_age_seconds_count", &[]),
        total - garbage.len() as f64
    );
    assert_eq!(sum(&s, "cdr_processing_seconds_count", &[]), total);
    assert!(sum(&s, "cdr_event_age_seconds_sum", &[]) > 0.0);

    // Statistics: lag of each input partition, producer queue depth.
    for p in ["0", "1"] {
        let lag = s
            .iter()
            .find(|x| {
                x.name == "cdr_consumer_lag"
                    && x.labels.get("topic").map(String::as_str) == Some(input)
                    && x.labels.get("partition").map(String::as_str) == Some(p)
            })
            .unwrap_or_else(|| panic!("no lag for partition {p}:\n{text}"));
        assert!(lag.value >= 0.0, "lag {}", lag.value);
    }
    assert!(
        s.iter().any(|x| x.name == "cdr_producer_queue_messages"),
        "{text}"
    );

    // Build info, readiness.
    let info = s
        .iter()
        .find(|x| x.name == "cdr_build_info")
        .expect("cdr_build_info");
    assert_eq!(info.value, 1.0);
    assert_eq!(info.labels["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(info.labels["policy_version"], "R10-14/2021");
    assert_eq!(sum(&s, "cdr_ready", &[]), 1.0);
    assert_eq!(sum(&s, "cdr_kafka_brokers_down", &[]), 0.0);
    assert!(text.contains("# HELP cdr_events_consumed_total "), "{text}");
    assert!(
        text.contains("# TYPE cdr_event_age_seconds histogram"),
        "{text}"
    );

    // No personal data: no value of any identifier sent appears in the scrape.
    let mut secrets: Vec<String> = vec![
        "+33699998888".into(),
        "+33688887777".into(),
        "208150123456789".into(),
    ];
    for e in events.iter().chain([&no_id]) {
        if let Some(s) = &e.served {
            secrets.extend([
                s.msisdn.clone(),
                s.imsi.clone(),
                s.ue_ip.clone(),
                s.account_id.clone(),
            ]);
        }
        if let Some(t) = &e.terminal {
            secrets.extend([t.imei.clone(), t.imeisv.clone()]);
        }
        for p in [&e.calling, &e.called].into_iter().flatten() {
            secrets.extend([p.number.clone(), p.ip.clone()]);
        }
        if let Some(c) = &e.content {
            secrets.extend([c.sms_text.clone(), c.url.clone(), c.dns_query.clone()]);
        }
    }
    secrets.retain(|s| s.len() >= 6);
    assert!(
        secrets.len() > 1000,
        "the events carry identifiers to look for"
    );
    for secret in &secrets {
        assert!(!text.contains(secret.as_str()), "the scrape holds {secret}");
    }
    let log_text = std::fs::read_to_string(&log).unwrap();
    for secret in &secrets {
        assert!(
            !log_text.contains(secret.as_str()),
            "the log holds {secret}"
        );
    }

    // Graceful stop: exit 0.
    filter.signal("TERM");
    assert_eq!(filter.wait(Duration::from_secs(30)), Some(0));
}
