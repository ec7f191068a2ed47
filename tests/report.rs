//! `report`: the evidence page and its JSON twin, on the test broker. What the filter
//! wrote reports clean (exit 0) with the figures of the topics and the audit; a saved
//! audit gives the same report; a drifted topic setting, or records with injected
//! violations, give exit 1 and a summary that names what is wrong; no value of a record
//! (the privacy corpus, through the filter) reaches the page or the JSON; the JSON
//! validates against `docs/report.schema.json`.

mod common;

use cdr_purpose_filter::encode::{self, OutputFormat};
use cdr_purpose_filter::gen::Generator;
use cdr_purpose_filter::policy::{Outcome, Policy, Version};
use cdr_purpose_filter::schema::{CdrEvent, Direction, EventType, Purpose};
use chrono::{DateTime, Duration, Utc};
use common::{config::Topics, filter::Filter, io::Input};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_cdr-purpose-filter");
const SCHEMA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/report.schema.json");

/// Runs the binary: (exit code, stdout, stderr).
fn cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("CDR_PURPOSE_FILTER_CONFIG")
        .output()
        .expect("run cdr-purpose-filter");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

// ---- The schema check: the subset of JSON Schema docs/report.schema.json uses.

/// Every place where `v` breaks `schema` (resolving `$ref` against `root`).
fn violations(root: &Value, schema: &Value, v: &Value, at: &str, out: &mut Vec<String>) {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.strip_prefix("#/$defs/").expect("a local $ref");
        return violations(root, &root["$defs"][name], v, at, out);
    }
    let type_of = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    if let Some(t) = schema.get("type") {
        let allowed: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => panic!("type at {at}"),
        };
        let actual = type_of(v);
        let integer_as_number = actual == "integer" && allowed.contains(&"number");
        if !(allowed.contains(&actual) || integer_as_number) {
            out.push(format!("{at}: {actual}, want {allowed:?}"));
            return;
        }
    }
    if let Some(c) = schema.get("const") {
        if c != v {
            out.push(format!("{at}: {v}, want {c}"));
        }
    }
    if let Some(e) = schema["enum"].as_array() {
        if !e.contains(v) {
            out.push(format!("{at}: {v} not in {e:?}"));
        }
    }
    if let (Some(min), Some(n)) = (schema["minimum"].as_f64(), v.as_f64()) {
        if n < min {
            out.push(format!("{at}: {n} < {min}"));
        }
    }
    if let Some(s) = v.as_str() {
        let len = s.chars().count() as u64;
        if schema["minLength"].as_u64().is_some_and(|m| len < m)
            || schema["maxLength"].as_u64().is_some_and(|m| len > m)
        {
            out.push(format!("{at}: length {len}"));
        }
    }
    if let Value::Array(items) = v {
        if let Some(s) = schema.get("items") {
            for (i, item) in items.iter().enumerate() {
                violations(root, s, item, &format!("{at}[{i}]"), out);
            }
        }
    }
    if let Value::Object(map) = v {
        for r in schema["required"].as_array().into_iter().flatten() {
            let r = r.as_str().unwrap();
            if !map.contains_key(r) {
                out.push(format!("{at}: missing {r}"));
            }
        }
        for (k, item) in map {
            let here = format!("{at}.{k}");
            if let Some(names) = schema.get("propertyNames") {
                if let Some(p) = names["pattern"].as_str() {
                    assert_eq!(p, "^-?[0-9]+$", "the one pattern the schema uses");
                    if k.trim_start_matches('-').parse::<u64>().is_err() {
                        out.push(format!("{here}: name not an integer"));
                    }
                }
                violations(root, names, &Value::String(k.clone()), &here, out);
            }
            match (
                schema["properties"].get(k),
                schema.get("additionalProperties"),
            ) {
                (Some(s), _) => violations(root, s, item, &here, out),
                (None, Some(Value::Bool(false))) => out.push(format!("{here}: not allowed")),
                (None, Some(s @ Value::Object(_))) => violations(root, s, item, &here, out),
                _ => {}
            }
        }
    }
}

fn assert_valid(doc: &Value) {
    let schema: Value = parse(&std::fs::read_to_string(SCHEMA).unwrap());
    let mut out = Vec::new();
    violations(&schema, &schema, doc, "$", &mut out);
    assert!(
        out.is_empty(),
        "the report breaks its schema:\n{}",
        out.join("\n")
    );
}

#[test]
fn the_schema_check_catches_what_it_must() {
    let schema: Value = parse(&std::fs::read_to_string(SCHEMA).unwrap());
    let check = |doc: &Value| {
        let mut out = Vec::new();
        violations(&schema, &schema, doc, "$", &mut out);
        out
    };
    // Not a report at all, an unknown verdict, a finding kind that does not exist.
    assert!(!check(&serde_json::json!({})).is_empty());
    assert!(check(&serde_json::json!({"verdict": "fine"}))
        .iter()
        .any(|e| e.contains("verdict")));
    let counts = &schema["properties"]["audit"]["properties"]["counts"];
    let mut out = Vec::new();
    violations(
        &schema,
        counts,
        &serde_json::json!({"t": {"no_such_kind": 1}}),
        "$",
        &mut out,
    );
    assert_eq!(out.len(), 1, "{out:?}");
    // The kinds the schema lists are the audit's.
    let kinds: BTreeSet<String> = schema["properties"]["audit"]["properties"]["findings"]["items"]
        ["properties"]["kind"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    let audit: BTreeSet<String> = cdr_purpose_filter::audit::Kind::ALL
        .iter()
        .map(|k| k.as_str().to_string())
        .collect();
    assert_eq!(kinds, audit);
}

// ---- The page in a real browser: Debian's chromium, headless.

const CHROMIUM: &str = "/usr/bin/chromium";

/// Runs headless chromium on a local page with a fresh profile and no network; returns
/// its stdout. Fails — never skips — when chromium is missing.
fn chromium(page: &Path, args: &[&str]) -> Vec<u8> {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: the report tests render the page with it \
         (scripts/install-chromium.sh installs it; scripts/test.sh calls it)"
    );
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            // Nothing may be fetched: the page is self-contained.
            "--host-resolver-rules=MAP * ~NOTFOUND",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The DOM as the browser built it.
fn rendered_dom(page: &Path) -> String {
    let dom = String::from_utf8(chromium(page, &["--dump-dom"])).unwrap();
    assert!(dom.contains("</html>"), "a DOM was dumped: {dom}");
    dom
}

/// The text between `start` (which must be there) and the next `end`.
fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let a = text
        .find(start)
        .unwrap_or_else(|| panic!("{start} not in the page"))
        + start.len();
    let b = text[a..].find(end).unwrap() + a;
    &text[a..b]
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

/// The PDF pages of a file: `/Type /Page` objects (not `/Pages`).
fn pdf_pages(pdf: &[u8]) -> usize {
    let needle = b"/Type /Page";
    pdf.windows(needle.len() + 1)
        .filter(|w| &w[..needle.len()] == needle && w[needle.len()] != b's')
        .count()
}

/// The page checked in the browser: self-contained, every section, the summary and the
/// figures of the JSON twin, which it embeds byte for byte; a screenshot; a PDF with
/// pages. Returns the rendered DOM.
fn check_in_browser(page: &Path, doc: &Value, shots: &Path) -> String {
    let source = std::fs::read_to_string(page).unwrap();
    for forbidden in [
        "<script", "<link", "<img", "<iframe", "@import", " src=", "http://", "https://",
    ] {
        let allowed = forbidden == "http://"
            && source.matches(forbidden).count()
                == source
                    .matches("xmlns=\"http://www.w3.org/2000/svg\"")
                    .count();
        assert!(
            !source.contains(forbidden) || allowed,
            "the page is not self-contained: {forbidden}"
        );
    }
    let dom = rendered_dom(page);
    for id in [
        "summary",
        "identity",
        "policy",
        "topics",
        "audit",
        "expiry",
        "json-twin",
    ] {
        assert!(
            dom.contains(&format!("<section id=\"{id}\">")),
            "section {id}"
        );
    }
    let summary = unescape(between(
        &dom,
        "<p class=\"summary\" id=\"summary-sentence\">",
        "</p>",
    ));
    assert_eq!(summary, doc["summary"].as_str().unwrap());
    assert!(dom.contains(&format!(
        "data-verdict=\"{}\"",
        doc["verdict"].as_str().unwrap()
    )));
    assert_eq!(
        between(&dom, "<b id=\"records-checked\">", "</b>"),
        cdr_purpose_filter_thousands(doc["audit"]["records"].as_u64().unwrap())
    );
    let residency = between(&dom, "<table id=\"residency\">", "</table>");
    for t in doc["topics"].as_array().unwrap() {
        let row = between(
            residency,
            &format!("<tr><td>{}</td>", t["topic"].as_str().unwrap()),
            "</tr>",
        );
        if t["bound_ms"].is_i64() {
            let b = bound_text(doc, t["topic"].as_str().unwrap());
            let short = b.replace(" days", "d").replace(" hours", "h");
            assert!(row.contains(&b) || row.contains(&short), "{b} in {row}");
        }
        let verdict = if t["compliant"] == true {
            "COMPLIANT"
        } else {
            "NOT COMPLIANT"
        };
        assert!(
            row.contains(&format!(">{verdict}</td>")),
            "{verdict} in {row}"
        );
    }
    // Each chart has its text alternative, and a table beside it.
    let charts = dom.matches("<svg ").count();
    assert!(charts >= 2, "{charts} charts");
    assert_eq!(dom.matches("<title id=\"chart-").count(), charts);
    assert_eq!(dom.matches("<desc id=\"chart-").count(), charts);
    // The JSON twin, embedded: the document itself, and the hash the identity gives.
    let twin = unescape(between(
        &dom,
        "<pre class=\"json\" id=\"json-twin-text\">",
        "</pre>",
    ));
    let mut twin_doc = parse(&twin);
    let mut expected = doc.clone();
    for d in [&mut twin_doc, &mut expected] {
        d["identity"]["generated_at"] = Value::Null;
        d["audit"]["seconds"] = Value::Null;
        d["summary"] = Value::Null;
    }
    assert_eq!(twin_doc, expected, "the page's data is the JSON report's");
    assert!(
        dom.contains(&sha256(twin.as_bytes())),
        "the twin's SHA-256 is shown"
    );

    let png = shots.join("report.png");
    chromium(
        page,
        &[
            "--window-size=1280,2400",
            &format!("--screenshot={}", png.display()),
        ],
    );
    let png = std::fs::read(&png).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
    let pdf = shots.join("report.pdf");
    chromium(
        page,
        &[
            "--no-pdf-header-footer",
            &format!("--print-to-pdf={}", pdf.display()),
        ],
    );
    let pdf = std::fs::read(&pdf).unwrap();
    assert!(pdf.starts_with(b"%PDF"));
    let pages = pdf_pages(&pdf);
    // A page break before each section after the summary: at least seven pages.
    assert!(pages >= 7, "{pages} pages");
    println!(
        "browser: {} bytes of DOM, {} bytes of PNG, {pages} PDF pages",
        dom.len(),
        png.len()
    );
    dom
}

// ---- Records.

/// Produces events to the input topic, alternately protobuf and JSON.
fn load(topic: &str, events: &[CdrEvent]) {
    let inputs: Vec<Input> = events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let format = if i % 2 == 0 {
                OutputFormat::Protobuf
            } else {
                OutputFormat::Json
            };
            let mut buf = Vec::new();
            encode::encode_event(e, format, &mut buf).unwrap();
            Input::value(buf)
        })
        .collect();
    common::io::produce(topic, &inputs);
}

/// Runs the filter on `config` until every input record is committed, then stops it.
fn filter_all(config: &Path, dir: &Path, group: &str, input: &str, records: i64) {
    let log = dir.join("filter.log");
    let mut filter = Filter::start(config, &log);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    while common::broker::committed(group, input)
        .values()
        .sum::<i64>()
        < records
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the filter did not get through its input; log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    filter.signal("TERM");
    assert_eq!(
        filter.wait(std::time::Duration::from_secs(60)),
        Some(0),
        "clean stop"
    );
}

/// Records in a topic, counted by reading it (this broker's watermarks are not to be
/// trusted on multi-partition topics).
fn count(topic: &str, at_least: usize) -> usize {
    common::io::read_all(topic, at_least, std::time::Duration::from_secs(60)).len()
}

/// The bound of a topic in the report's topics, as the summary words it.
fn bound_text(doc: &Value, topic: &str) -> String {
    let t = doc["topics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["topic"] == topic)
        .unwrap_or_else(|| panic!("{topic} in topics"));
    let hours = (t["bound_ms"].as_i64().unwrap() + 3_599_999) / 3_600_000;
    let (d, h) = (hours / 24, hours % 24);
    match h {
        0 => format!("{d} days"),
        1 => format!("{d} days 1 hour"),
        h => format!("{d} days {h} hours"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn what_the_filter_wrote_reports_clean_and_a_drifted_topic_does_not() {
    let t = Topics::new("report");
    common::broker::create_topics(&[&t.input], 1).await;
    let now = Utc::now();
    let mut g = Generator::new(21, now);
    let events: Vec<CdrEvent> = (0..400).map(|_| g.next_event()).collect();
    load(&t.input, &events);
    let dir = tempfile::tempdir().unwrap();
    let config = t.config(dir.path());
    let cfg = config.to_str().unwrap();
    filter_all(&config, dir.path(), &t.group, &t.input, events.len() as i64);
    let billing = count(&t.billing, 1);
    let security = count(&t.security, 1);
    assert!(billing > 0 && security > 0, "{billing} {security}");
    let total = (billing + security) as u64;

    // JSON.
    let (code, stdout, stderr) = cli(&["report", "--config", cfg, "--format", "json"]);
    assert_eq!(code, 0, "clean exits 0: {stdout}\n{stderr}");
    let doc = parse(&stdout);
    assert_valid(&doc);
    assert_eq!(doc["verdict"], "clean");
    assert_eq!(doc["audit"]["records"], total, "every record checked");
    assert_eq!(doc["audit"]["findings"].as_array().unwrap().len(), 0);
    let summary = doc["summary"].as_str().unwrap();
    let figure = |n: u64| cdr_purpose_filter_thousands(n);
    for part in [
        format!(
            "all {} records of {} and {} were checked against R10-14 as in force since 21 October 2021 (R10-14/2021): no finding.",
            figure(total),
            t.billing,
            t.security
        ),
        format!(
            "{} deletes a record at most {} after the communication",
            t.billing,
            bound_text(&doc, &t.billing)
        ),
        format!("{} at most {}", t.security, bound_text(&doc, &t.security)),
    ] {
        assert!(summary.contains(&part), "{part:?} not in: {summary}");
    }
    assert!(summary.starts_with("On "), "{summary}");
    // Identity: the configuration's hash is that of `config check`'s output.
    let (code, effective, _) = cli(&["config", "check", "--config", cfg]);
    assert_eq!(code, 0);
    assert_eq!(
        doc["identity"]["configuration_sha256"],
        sha256(effective.as_bytes())
    );
    assert_eq!(doc["identity"]["policy_version"], "R10-14/2021");
    assert_eq!(doc["identity"]["legal_time_zone"], "Europe/Paris");
    assert_eq!(doc["identity"]["audit_source"], "live");
    // The topics as `topics plan` sees them; the partitions and expiry figures add up.
    let (_, plan, _) = cli(&["topics", "plan", "--config", cfg, "--format", "json"]);
    assert_eq!(doc["topics"], parse(&plan)["topics"]);
    let parts = doc["audit"]["partitions"].as_array().unwrap();
    assert_eq!(
        parts
            .iter()
            .map(|p| p["records"].as_u64().unwrap())
            .sum::<u64>(),
        total
    );
    for p in parts.iter().filter(|p| p["records"].as_u64() > Some(0)) {
        assert!(p["first_timestamp"].as_str() <= p["last_timestamp"].as_str());
    }
    for e in doc["expiry"].as_array().unwrap() {
        let want = if e["topic"] == t.billing.as_str() {
            billing
        } else {
            security
        };
        assert_eq!(e["records"], want as u64, "{e}");
        assert!(
            e["max_hours"].as_i64() <= e["limit_longest_hours"].as_i64(),
            "{e}"
        );
    }
    // The policy section is `policy show`'s.
    let (_, show, _) = cli(&["policy", "show", "--config", cfg, "--format", "json"]);
    assert_eq!(doc["policy"], parse(&show));
    let (_, diff, _) = cli(&[
        "policy",
        "diff",
        "R10-14/2012",
        "R10-14/2021",
        "--format",
        "json",
    ]);
    assert_eq!(doc["policy_differences"], parse(&diff));

    // A saved audit gives the same audit.
    let saved = dir.path().join("audit.json");
    let (code, audit, _) = cli(&["audit", "--config", cfg, "--format", "json"]);
    assert_eq!(code, 0);
    std::fs::write(&saved, &audit).unwrap();
    let (code, stdout, stderr) = cli(&[
        "report",
        "--config",
        cfg,
        "--format",
        "json",
        "--audit-result",
        saved.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let again = parse(&stdout);
    assert_valid(&again);
    assert_eq!(again["identity"]["audit_source"], "saved");
    assert_eq!(
        again["identity"]["audit_result_sha256"],
        sha256(audit.as_bytes())
    );
    assert_eq!(again["audit"]["records"], total);
    assert_eq!(again["audit"]["expiry_hours"], doc["audit"]["expiry_hours"]);

    // --out: the file, whole; nothing on stdout, no temporary file left.
    let page = dir.path().join("report.html");
    let (code, stdout, stderr) = cli(&["report", "--config", cfg, "--out", page.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.is_empty());
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
    assert!(std::fs::read_dir(dir.path()).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .contains(".tmp.")));
    let dom = check_in_browser(&page, &doc, dir.path());
    assert!(dom.contains("<p id=\"no-finding\" class=\"good\">No finding of any kind.</p>"));

    // A topic setting drifts: retention forever. Exit 1; the summary says which topic.
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        common::broker::client_config().create().unwrap();
    cdr_purpose_filter::topics::alter::set_topic_configs(
        admin.inner(),
        &[(t.security.clone(), vec![("retention.ms", "-1".to_string())])],
        std::time::Duration::from_secs(10),
    )
    .unwrap();
    let (code, stdout, stderr) = cli(&["report", "--config", cfg, "--format", "json"]);
    assert_eq!(code, 1, "a non-compliant topic exits 1: {stderr}");
    let doc = parse(&stdout);
    assert_valid(&doc);
    assert_eq!(doc["verdict"], "not_compliant");
    assert_eq!(doc["audit"]["findings"].as_array().unwrap().len(), 0);
    let summary = doc["summary"].as_str().unwrap();
    assert!(
        summary.contains(&format!("{} (security) is not compliant: ", t.security))
            && summary.contains("residency unbounded"),
        "{summary}"
    );
    assert!(
        !summary.contains(&format!("{} at most", t.security)),
        "{summary}"
    );
}

/// `1,234`: the summary's figures (as the report writes them).
fn cdr_purpose_filter_thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A record as written to a topic.
struct Rec {
    key: Vec<u8>,
    value: Vec<u8>,
    headers: Vec<(String, String)>,
    timestamp_ms: i64,
}

/// The record the filter's library writes for `event` and `purpose` (the fixture; the
/// audit never calls this path).
fn written(event: &CdrEvent, purpose: Purpose, now: DateTime<Utc>) -> Rec {
    let policy = Policy::legal_maximum_of(Version::R2021);
    let Outcome::Forward(r) = policy
        .apply(event, now)
        .outcomes
        .into_iter()
        .find(|(p, _)| *p == purpose)
        .unwrap()
        .1
    else {
        panic!("{purpose:?} takes the event");
    };
    let mut value = Vec::new();
    encode::encode_event(&r.event, OutputFormat::Protobuf, &mut value).unwrap();
    Rec {
        key: r.key.clone().into_bytes(),
        value,
        headers: encode::headers(&r, OutputFormat::Protobuf)
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        timestamp_ms: r.timestamp_ms,
    }
}

fn produce(topic: &str, records: &[Rec]) {
    let inputs: Vec<Input> = records
        .iter()
        .map(|r| Input {
            payload: r.value.clone(),
            key: Some(r.key.clone()),
            headers: r.headers.clone(),
            partition: Some(0),
            timestamp_ms: Some(r.timestamp_ms),
        })
        .collect();
    common::io::produce(topic, &inputs);
}

/// A chargeable voice call of the subscriber at `t`.
fn call(g: &mut Generator, t: DateTime<Utc>) -> CdrEvent {
    let mut e = g.full_event(EventType::VoiceCall, Direction::Originating, t);
    e.charging.get_or_insert_with(Default::default).chargeable = true;
    e.declared_purposes.clear();
    e
}

const SMS: &str = "report-canary: see you at 6";
const FOREIGN_KEY: &str = "input-key-report-77";
const TRACE: &str = "trace-report-4242";

/// Clean records and one record per injected violation: (topic purpose, record, kind).
fn with_violations(now: DateTime<Utc>) -> Vec<(Purpose, Rec, Option<&'static str>)> {
    use prost::Message as _;
    let mut g = Generator::new(33, now);
    let t = now - Duration::hours(3);
    let mut out = Vec::new();
    for _ in 0..5 {
        out.push((
            Purpose::Billing,
            written(&call(&mut g, t), Purpose::Billing, now),
            None,
        ));
        out.push((
            Purpose::Security,
            written(&call(&mut g, t), Purpose::Security, now),
            None,
        ));
    }
    // Content in security.
    let mut r = written(&call(&mut g, t), Purpose::Security, now);
    let mut e = CdrEvent::decode(r.value.as_slice()).unwrap();
    e.content.get_or_insert_with(Default::default).sms_text = SMS.into();
    r.value = e.encode_to_vec();
    out.push((Purpose::Security, r, Some("content")));
    // A header outside the contract.
    let mut r = written(&call(&mut g, t), Purpose::Billing, now);
    r.headers.push(("x-trace".into(), TRACE.into()));
    out.push((Purpose::Billing, r, Some("extra_header")));
    // A key that is not the event id.
    let mut r = written(&call(&mut g, t), Purpose::Billing, now);
    r.key = FOREIGN_KEY.as_bytes().to_vec();
    out.push((Purpose::Billing, r, Some("key_not_event_id")));
    // A Kafka timestamp that is not the event time.
    let mut r = written(&call(&mut g, t), Purpose::Billing, now);
    r.timestamp_ms += 3_600_000;
    out.push((Purpose::Billing, r, Some("timestamp_not_event_time")));
    // No policy version.
    let mut r = written(&call(&mut g, t), Purpose::Security, now);
    r.headers.retain(|(k, _)| k != "cdr-policy-version");
    out.push((Purpose::Security, r, Some("missing_version")));
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn injected_violations_are_named_in_the_summary_and_exit_1() {
    let t = Topics::new("reportv");
    let dir = tempfile::tempdir().unwrap();
    let config = t.config(dir.path());
    let cfg = config.to_str().unwrap();
    // The topics, compliant: only the records can be wrong.
    let (code, out, err) = cli(&["topics", "apply", "--config", cfg]);
    assert_eq!(code, 0, "{out}{err}");
    let now = Utc::now();
    let records = with_violations(now);
    let (mut b, mut s) = (Vec::new(), Vec::new());
    let mut want: BTreeSet<(String, i64, String)> = BTreeSet::new();
    for (purpose, rec, kind) in records {
        let (topic, list) = match purpose {
            Purpose::Security => (&t.security, &mut s),
            _ => (&t.billing, &mut b),
        };
        if let Some(k) = kind {
            want.insert((topic.clone(), list.len() as i64, k.to_string()));
        }
        list.push(rec);
    }
    produce(&t.billing, &b);
    produce(&t.security, &s);

    let (code, stdout, stderr) = cli(&["report", "--config", cfg, "--format", "json"]);
    assert_eq!(code, 1, "findings exit 1: {stderr}");
    let doc = parse(&stdout);
    assert_valid(&doc);
    assert_eq!(doc["verdict"], "not_compliant");
    assert_eq!(doc["audit"]["records"], (b.len() + s.len()) as u64);
    assert!(
        doc["topics"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["compliant"] == true),
        "the topics are compliant: only the records are wrong"
    );
    let got: BTreeSet<(String, i64, String)> = doc["audit"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["topic"].as_str().unwrap().to_string(),
                f["offset"].as_i64().unwrap(),
                f["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(got, want);
    let summary = doc["summary"].as_str().unwrap();
    assert!(summary.contains(": 5 findings."), "{summary}");
    for (topic, _, kind) in &want {
        assert!(
            summary.contains(&format!("{kind} (1)")) && summary.contains(topic.as_str()),
            "{kind} of {topic} not named in: {summary}"
        );
    }
    let page = dir.path().join("report.html");
    let (code, _, _) = cli(&["report", "--config", cfg, "--out", page.to_str().unwrap()]);
    assert_eq!(code, 1);
    let html = check_in_browser(&page, &doc, dir.path());
    for (topic, offset, kind) in &want {
        assert!(
            html.contains(&format!(
                "<tr><td>{topic}</td><td class=\"n\">0</td><td class=\"n\">{offset}</td><td><code>{kind}</code></td>"
            )),
            "{topic} {offset} {kind} not listed in the page"
        );
    }
    for text in [&stdout, &html] {
        for value in [SMS, FOREIGN_KEY, TRACE] {
            assert!(!text.contains(value), "{value} in the report");
        }
    }
}

/// The string values of a corpus file (JSON as written, protobuf decoded), except what
/// is not a record's own: enum names, times, and words of the law (which the report's
/// policy section prints).
fn corpus_values(bytes: &[u8], law: &str) -> Vec<String> {
    use prost::Message as _;
    let doc: Option<Value> = serde_json::from_slice(bytes).ok().or_else(|| {
        CdrEvent::decode(bytes)
            .ok()
            .and_then(|e| serde_json::to_value(e).ok())
    });
    fn leaves(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Array(a) => a.iter().for_each(|v| leaves(v, out)),
            Value::Object(m) => m.values().for_each(|v| leaves(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Some(d) = doc {
        leaves(&d, &mut out);
    }
    out.retain(|s| {
        s.chars().count() >= 6
            && !s
                .chars()
                .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit())
            && DateTime::parse_from_rfc3339(s).is_err()
            && !law.contains(s.as_str())
    });
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn no_record_value_reaches_the_page_or_the_json() {
    let t = Topics::new("reportp");
    common::broker::create_topics(&[&t.input], 1).await;
    let dir = tempfile::tempdir().unwrap();
    let config = t.config_with(dir.path(), |c| {
        common::config::set(
            &mut c.kafka.properties,
            "sasl.password",
            common::canaries::PASSWORD,
        );
    });
    let cfg = config.to_str().unwrap();
    let now = Utc::now();
    let mut g = Generator::new(91, now);
    let events = common::canaries::events(&mut g, now);
    let mut inputs: Vec<Input> = events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let mut buf = Vec::new();
            let f = if i % 2 == 0 {
                OutputFormat::Protobuf
            } else {
                OutputFormat::Json
            };
            encode::encode_event(e, f, &mut buf).unwrap();
            let mut input = Input::value(buf);
            input.key = Some(
                common::canaries::canary("served.msisdn")
                    .as_bytes()
                    .to_vec(),
            );
            input.headers = vec![(
                "x-imsi".into(),
                common::canaries::canary("served.imsi").into(),
            )];
            input
        })
        .collect();
    // The hostile corpus's accepted records: forwarded (or dropped) by the filter.
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let manifest = std::fs::read_to_string(corpus.join("expect.tsv")).unwrap();
    let (_, law, _) = cli(&["policy", "show", "--config", cfg, "--format", "json"]);
    let (_, diff, _) = cli(&[
        "policy",
        "diff",
        "R10-14/2012",
        "R10-14/2021",
        "--format",
        "json",
    ]);
    let law = law + &diff;
    let mut values: Vec<String> = Vec::new();
    for line in manifest.lines().filter(|l| l.ends_with("\taccepted")) {
        let name = line.split('\t').next().unwrap();
        let bytes = std::fs::read(corpus.join(name)).unwrap();
        values.extend(corpus_values(&bytes, &law));
        inputs.push(Input::value(bytes));
    }
    common::io::produce(&t.input, &inputs);
    filter_all(&config, dir.path(), &t.group, &t.input, inputs.len() as i64);

    let (code, json, stderr) = cli(&["report", "--config", cfg, "--format", "json"]);
    assert!(code == 0 || code == 1, "{stderr}");
    let doc = parse(&json);
    assert_valid(&doc);
    assert!(
        doc["audit"]["records"].as_u64() > Some(events.len() as u64),
        "the report saw the records: {}",
        doc["audit"]["records"]
    );
    let page = dir.path().join("report.html");
    let (code2, _, stderr) = cli(&["report", "--config", cfg, "--out", page.to_str().unwrap()]);
    assert_eq!(code2, code, "{stderr}");
    let html = std::fs::read_to_string(&page).unwrap();

    values.extend(
        common::canaries::CANARIES
            .iter()
            .map(|(_, v)| v.to_string())
            .chain([
                common::canaries::VENDOR.into(),
                common::canaries::PASSWORD.into(),
            ])
            .chain(events.iter().map(|e| e.event_id.clone())),
    );
    values.sort();
    values.dedup();
    assert!(values.len() > 40, "{} values searched", values.len());
    let escaped = |v: &str| {
        v.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&#39;")
    };
    let mut leaks = Vec::new();
    for v in &values {
        let in_json = serde_json::to_string(v).unwrap();
        let in_json = &in_json[1..in_json.len() - 1];
        if json.contains(v.as_str()) || json.contains(in_json) {
            leaks.push(format!("{v:?} in the JSON"));
        }
        if html.contains(v.as_str()) || html.contains(&escaped(v)) {
            leaks.push(format!("{v:?} in the page"));
        }
    }
    println!(
        "privacy: {} values searched in a report of {} records ({} bytes of JSON, {} of HTML)",
        values.len(),
        doc["audit"]["records"],
        json.len(),
        html.len()
    );
    assert!(
        leaks.is_empty(),
        "record values in the report:\n{}",
        leaks.join("\n")
    );
}
