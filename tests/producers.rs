//! Real producers and the operator's first hour: Schema Registry framed
//! records through `dry-run` and `run`, framed output, `schema`, `completions`, log
//! formats, configuration from the environment alone, `dry-run --from-topic`, and a
//! `gen` stream pinned across dependency updates.
//!
//! The tests named `broker_*` need the test broker (`CDR_TEST_BROKERS`) and fail without it.

mod common;

use cdr_purpose_filter::config;
use cdr_purpose_filter::dead_letter::Pointer;
use cdr_purpose_filter::encode::OutputFormat;
use cdr_purpose_filter::framing::{self, BodyKind};
use cdr_purpose_filter::gen::Generator;
use cdr_purpose_filter::schema::{CdrEvent, Direction, EventType};
use chrono::{DateTime, Duration, Utc};
use common::{config::Topics, filter::Filter, io::Input};
use prost::Message;
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_cdr-purpose-filter");
const NOW: &str = "2026-11-28T12:00:00Z";

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(NOW).unwrap().to_utc()
}

/// The binary, with no configuration variable inherited from the test's environment.
fn command() -> Command {
    let mut c = Command::new(BIN);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("CDR_PURPOSE_FILTER_") || k == "RUST_LOG" || k == "NO_COLOR" {
            c.env_remove(&k);
        }
    }
    c
}

fn run(c: &mut Command) -> Output {
    c.output().expect("the binary runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn assert_exit(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
}

fn file(bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(bytes).unwrap();
    f.flush().unwrap();
    f
}

/// A voice call both purposes take, with a distinct id.
fn billable_call(id: &str) -> CdrEvent {
    let mut e = Generator::new(5, now()).full_event(
        EventType::VoiceCall,
        Direction::Originating,
        now() - Duration::hours(1),
    );
    e.event_id = id.into();
    e
}

fn json_of(e: &CdrEvent) -> Vec<u8> {
    serde_json::to_vec(e).unwrap()
}

/// Length-delimited records (dry-run's binary input).
fn delimited(records: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records {
        prost::encoding::encode_varint(r.len() as u64, &mut out);
        out.extend_from_slice(r);
    }
    out
}

/// The framed records of the tests: protobuf with `[0]` and non-trivial message indexes,
/// and JSON Schema framed JSON; the ids of their events.
fn framed_records(schema_id: u32) -> Vec<(String, Vec<u8>)> {
    let pb = |id: &str| billable_call(id).encode_to_vec();
    vec![
        (
            "pb-first".into(),
            framing::frame(schema_id, BodyKind::Protobuf, &[0], &pb("pb-first")),
        ),
        (
            "pb-indexed".into(),
            framing::frame(schema_id, BodyKind::Protobuf, &[10], &pb("pb-indexed")),
        ),
        (
            "pb-nested".into(),
            framing::frame(schema_id, BodyKind::Protobuf, &[3, 1, 4], &pb("pb-nested")),
        ),
        (
            "json-framed".into(),
            framing::frame(
                schema_id,
                BodyKind::Json,
                &[],
                &json_of(&billable_call("json-framed")),
            ),
        ),
    ]
}

fn config_file(text: &str) -> tempfile::NamedTempFile {
    file(text.as_bytes())
}

fn dry_run(config: &Path, input: &Path, format: &str) -> Vec<Value> {
    let o = run(command()
        .args(["dry-run", "--now", NOW, "--format", format, "--config"])
        .arg(config)
        .arg(input));
    assert_exit(&o, 0);
    text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

const BOTH: &str = "[purposes.billing]\n[purposes.security]\n";

// ---------------------------------------------------------------------------------------
// Schema Registry framed input, without Kafka
// ---------------------------------------------------------------------------------------

#[test]
fn dry_run_reads_framed_protobuf_and_json_records() {
    let records = framed_records(42);
    let input = file(&delimited(
        &records.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>(),
    ));
    let config = config_file(BOTH);
    // `auto` (configuration and flag) tells the framings apart per record.
    let lines = dry_run(config.path(), input.path(), "auto");
    assert_eq!(lines.len(), records.len() * 2, "{lines:?}");
    for (id, _) in &records {
        for purpose in ["billing", "security"] {
            let line = lines
                .iter()
                .find(|l| l["event_id"] == id.as_str() && l["purpose"] == purpose)
                .unwrap_or_else(|| panic!("no line for {id} {purpose}: {lines:?}"));
            assert_eq!(line["outcome"], "forward", "{line}");
        }
    }
    // The explicit formats read only their own framing.
    let pb: Vec<Vec<u8>> = records[..3].iter().map(|(_, r)| r.clone()).collect();
    let lines = dry_run(
        config.path(),
        file(&delimited(&pb)).path(),
        "confluent-protobuf",
    );
    assert_eq!(
        lines.iter().filter(|l| l["outcome"] == "forward").count(),
        6
    );
    let lines = dry_run(
        config.path(),
        file(&delimited(&[records[3].1.clone()])).path(),
        "confluent-json",
    );
    assert_eq!(
        lines.iter().filter(|l| l["outcome"] == "forward").count(),
        2
    );
    // Bare protobuf does not strip a header: a framed record is undecodable there.
    let lines = dry_run(
        config.path(),
        file(&delimited(&[records[0].1.clone()])).path(),
        "protobuf",
    );
    assert!(
        lines.iter().all(|l| l["reason"] == "undecodable"),
        "{lines:?}"
    );
}

#[test]
fn dry_run_refuses_other_schema_ids_naming_the_id_only() {
    let config = config_file(&format!("[input]\nschema_ids = [42, 43]\n{BOTH}"));
    let mut records: Vec<Vec<u8>> = framed_records(42).into_iter().map(|(_, r)| r).collect();
    let secret = billable_call("secret-id");
    records.push(framing::frame(
        7,
        BodyKind::Protobuf,
        &[0],
        &secret.encode_to_vec(),
    ));
    // A framed record whose body does not decode.
    records.push(framing::frame(42, BodyKind::Json, &[], b"{\"eventId\": "));
    let lines = dry_run(config.path(), file(&delimited(&records)).path(), "auto");
    let refused: Vec<&Value> = lines
        .iter()
        .filter(|l| l["reason"] == "unexpected_schema")
        .collect();
    assert_eq!(refused.len(), 2, "{lines:?}");
    for l in &refused {
        assert_eq!(l["schema_id"], 7);
        assert_eq!(l["event_id"], Value::Null);
        assert!(!l.to_string().contains("secret-id"), "{l}");
    }
    assert_eq!(
        lines
            .iter()
            .filter(|l| l["reason"] == "undecodable")
            .count(),
        2
    );
    assert_eq!(
        lines.iter().filter(|l| l["outcome"] == "forward").count(),
        8
    );
}

#[test]
fn framing_keys_are_checked_naming_the_key() {
    for (toml, key) in [
        ("[output]\nframing = \"confluent\"\n", "output.schema_id"),
        ("[output]\nschema_id = 3\n", "output.schema_id"),
        (
            "[input]\nformat = \"json\"\nschema_ids = [1]\n",
            "input.schema_ids",
        ),
    ] {
        let config = config_file(&format!("{toml}{BOTH}"));
        let o = run(command()
            .args(["config", "check", "--config"])
            .arg(config.path()));
        assert_exit(&o, 2);
        assert!(text(&o.stderr).contains(key), "{}", text(&o.stderr));
    }
    let config = config_file(&format!(
        "[input]\nformat = \"confluent-protobuf\"\nschema_ids = [1]\n\
         [output]\nframing = \"confluent\"\nschema_id = 3\n{BOTH}"
    ));
    let o = run(command()
        .args(["config", "check", "--config"])
        .arg(config.path()));
    assert_exit(&o, 0);
    let out = text(&o.stdout);
    assert!(out.contains("framing = \"confluent\""), "{out}");
    assert!(out.contains("format = \"confluent-protobuf\""), "{out}");
}

// ---------------------------------------------------------------------------------------
// schema, completions
// ---------------------------------------------------------------------------------------

/// The subset of JSON Schema the generated schema uses: type, properties, items,
/// additionalProperties, anyOf, enum, pattern, $ref to $defs.
fn conforms(root: &Value, schema: &Value, v: &Value) -> Result<(), String> {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.strip_prefix("#/$defs/").ok_or(r)?;
        return conforms(root, &root["$defs"][name], v);
    }
    if let Some(any) = schema["anyOf"].as_array() {
        return any
            .iter()
            .find(|s| conforms(root, s, v).is_ok())
            .map(|_| ())
            .ok_or(format!("{v} matches none of {schema}"));
    }
    if let Some(values) = schema["enum"].as_array() {
        return values
            .contains(v)
            .then_some(())
            .ok_or(format!("{v} not in {schema}"));
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => return Err(format!("no type in {schema}")),
    };
    let ok = types.iter().any(|t| match *t {
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        _ => false,
    });
    if !ok {
        return Err(format!("{v} is not {types:?}"));
    }
    if let (Some(p), Some(s)) = (schema["pattern"].as_str(), v.as_str()) {
        // The generated patterns are digit strings.
        let digits = s
            .strip_prefix('-')
            .filter(|_| p.contains("-?"))
            .unwrap_or(s);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{s} does not match {p}"));
        }
    }
    if let (Some(items), Some(a)) = (schema.get("items"), v.as_array()) {
        for x in a {
            conforms(root, items, x)?;
        }
    }
    if let Some(o) = v.as_object() {
        for (k, x) in o {
            match (
                schema["properties"].get(k),
                schema.get("additionalProperties"),
            ) {
                (Some(s), _) => conforms(root, s, x).map_err(|e| format!("{k}: {e}"))?,
                (None, Some(s)) => conforms(root, s, x).map_err(|e| format!("{k}: {e}"))?,
                (None, None) => return Err(format!("{k} is not in the schema")),
            }
        }
    }
    Ok(())
}

#[test]
fn schema_prints_the_proto_and_a_json_schema_the_canonical_json_conforms_to() {
    let o = run(command().arg("schema"));
    assert_exit(&o, 0);
    let proto = text(&o.stdout);
    assert_eq!(proto, cdr_purpose_filter::schema::PROTO);
    assert!(proto.contains("package cdr.v1;") && proto.contains("message CdrEvent {"));

    let o = run(command().args(["schema", "--format", "json-schema"]));
    assert_exit(&o, 0);
    let schema: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(schema["title"], "cdr.v1.CdrEvent");
    let mut g = Generator::new(3, now());
    let mut events: Vec<CdrEvent> = (0..200).map(|_| g.next_event()).collect();
    events.push(billable_call("full"));
    for e in &events {
        let json = serde_json::to_value(e).unwrap();
        conforms(&schema, &schema, &json).unwrap_or_else(|err| panic!("{err}\n{json}"));
    }
    // The schema constrains: a wrong type is refused.
    let bad = serde_json::json!({"eventId": 5});
    assert!(conforms(&schema, &schema, &bad).is_err());
    let bad = serde_json::json!({"eventType": "TELEGRAM"});
    assert!(conforms(&schema, &schema, &bad).is_err());
}

#[test]
fn completions_for_bash_zsh_and_fish() {
    for shell in ["bash", "zsh", "fish"] {
        let o = run(command().args(["completions", shell]));
        assert_exit(&o, 0);
        let script = text(&o.stdout);
        for word in ["dry-run", "from-topic", "log-format", "completions"] {
            assert!(script.contains(word), "{shell}: no {word}");
        }
    }
    assert_exit(&run(command().args(["completions", "tcsh"])), 2);
}

// ---------------------------------------------------------------------------------------
// gen: the same stream for the same seed
// ---------------------------------------------------------------------------------------

/// FNV-1a, 64 bits: a digest with no dependency to change under it.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[test]
fn gen_output_for_a_seed_is_pinned() {
    let o = run(command().args([
        "gen", "--count", "50", "--seed", "1", "--now", NOW, "--format", "json",
    ]));
    assert_exit(&o, 0);
    assert_eq!(text(&o.stdout).lines().count(), 50);
    // The first event, and a digest of all fifty: a change of generator, stream or
    // sampling changes them (update both deliberately, with a CHANGELOG entry).
    let first: Value = serde_json::from_str(text(&o.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(first["eventId"], PINNED_FIRST_ID, "{first}");
    assert_eq!(
        fnv1a(&o.stdout),
        PINNED_DIGEST,
        "gen --count 50 --seed 1 changed"
    );
}

const PINNED_FIRST_ID: &str = "gen-1-00000001-000429";
const PINNED_DIGEST: u64 = 0x5024_605a_6d96_c1a7;

// ---------------------------------------------------------------------------------------
// Configuration from the environment alone
// ---------------------------------------------------------------------------------------

#[test]
fn configuration_from_the_environment_alone() {
    let o = run(command().args(["config", "check"]).envs([
        ("CDR_PURPOSE_FILTER_KAFKA__GROUP_ID", "12345"),
        (
            "CDR_PURPOSE_FILTER_KAFKA__BOOTSTRAP_SERVERS",
            "10.0.0.1:9092",
        ),
        ("CDR_PURPOSE_FILTER_PURPOSES__BILLING__TOPIC", "billing.v1"),
        ("CDR_PURPOSE_FILTER_PURPOSES__SECURITY__TTL", "88d"),
        ("CDR_PURPOSE_FILTER_INPUT__TOPICS", "[\"a\", \"b\"]"),
        ("CDR_PURPOSE_FILTER_TOPICS__PARTITIONS", "3"),
        ("CDR_PURPOSE_FILTER_OUTPUT__FRAMING", "confluent"),
        ("CDR_PURPOSE_FILTER_OUTPUT__SCHEMA_ID", "17"),
        (
            "CDR_PURPOSE_FILTER_KAFKA__CONSUMER_PROPERTIES__FETCH_WAIT_MAX_MS",
            "10",
        ),
        (
            "CDR_PURPOSE_FILTER_KAFKA__PRODUCER_PROPERTIES__LINGER_MS",
            "5",
        ),
        ("CDR_PURPOSE_FILTER_LOG_FORMAT", "json"),
    ]));
    assert_exit(&o, 0);
    let effective: toml::Value = toml::from_str(&text(&o.stdout)).unwrap();
    assert_eq!(effective["kafka"]["group_id"].as_str(), Some("12345"));
    assert_eq!(
        effective["kafka"]["bootstrap_servers"].as_str(),
        Some("10.0.0.1:9092")
    );
    assert_eq!(
        effective["kafka"]["consumer_properties"]["fetch.wait.max.ms"].as_str(),
        Some("10")
    );
    assert_eq!(
        effective["kafka"]["producer_properties"]["linger.ms"].as_str(),
        Some("5")
    );
    assert_eq!(
        effective["purposes"]["billing"]["topic"].as_str(),
        Some("billing.v1")
    );
    assert_eq!(effective["topics"]["partitions"].as_integer(), Some(3));
    assert_eq!(effective["output"]["schema_id"].as_integer(), Some(17));
    assert_eq!(
        effective["input"]["topics"].as_array().map(Vec::len),
        Some(2)
    );

    // The file can come from CDR_PURPOSE_FILTER_CONFIG, the environment still overrides.
    let config = config_file("[kafka]\ngroup_id = \"from-file\"\n[purposes.billing]\n");
    let o = run(command().args(["config", "check"]).envs([
        ("CDR_PURPOSE_FILTER_CONFIG", config.path().to_str().unwrap()),
        ("CDR_PURPOSE_FILTER_METRICS__LISTEN", "0.0.0.0:9898"),
    ]));
    assert_exit(&o, 0);
    let out = text(&o.stdout);
    assert!(out.contains("group_id = \"from-file\""), "{out}");
    assert!(out.contains("listen = \"0.0.0.0:9898\""), "{out}");
    let o = run(command()
        .args(["config", "check"])
        .env("CDR_PURPOSE_FILTER_CONFIG", "/nonexistent/filter.toml"));
    assert_exit(&o, 2);
    assert!(text(&o.stderr).contains("/nonexistent/filter.toml"));
    // Neither file nor purpose: the refusal names the key.
    let o = run(command().args(["config", "check"]));
    assert_exit(&o, 2);
    assert!(text(&o.stderr).contains("purposes"), "{}", text(&o.stderr));
}

#[test]
fn string_keys_stay_strings_in_the_library_too() {
    let env = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let raw = config::parse(
        "",
        &env(&[
            ("CDR_PURPOSE_FILTER_KAFKA__GROUP_ID", "12345"),
            ("CDR_PURPOSE_FILTER_DEAD_LETTER__TOPIC", "007"),
            ("CDR_PURPOSE_FILTER_DELIVERY__MAX_IN_FLIGHT", "64"),
            ("CDR_PURPOSE_FILTER_PURPOSES__BILLING__TTL", "364d"),
            (
                "CDR_PURPOSE_FILTER_KAFKA__PRODUCER_PROPERTIES__COMPRESSION_TYPE",
                "zstd",
            ),
        ]),
    )
    .unwrap();
    assert_eq!(raw.kafka.group_id, "12345");
    assert_eq!(raw.dead_letter.topic, "007");
    assert_eq!(raw.delivery.max_in_flight, 64);
    assert_eq!(
        raw.kafka.producer_properties.get("compression.type"),
        Some(&"zstd".to_string())
    );
    let s = config::Settings::validate(raw).unwrap();
    assert_eq!(s.kafka.group_id, "12345");
    // A number where a number is wanted is still checked.
    let err = config::parse(
        "",
        &env(&[("CDR_PURPOSE_FILTER_DELIVERY__MAX_IN_FLIGHT", "many")]),
    )
    .unwrap_err();
    assert!(err.to_string().contains("max_in_flight"), "{err}");
}

// ---------------------------------------------------------------------------------------
// Logs
// ---------------------------------------------------------------------------------------

/// Starts `run` towards a closed port, waits for the metrics line, stops it; stderr.
fn first_log_lines(args: &[&str], env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("filter.toml");
    std::fs::write(
        &config,
        format!(
            "[kafka]\nbootstrap_servers = \"127.0.0.1:{}\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n{BOTH}",
            common::broker::free_port()
        ),
    )
    .unwrap();
    let log = dir.path().join("log");
    let mut cmd = command();
    cmd.args(args)
        .args(["run", "--config"])
        .arg(&config)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    let mut filter = Filter {
        child: cmd.spawn().unwrap(),
    };
    assert!(
        filter.wait_for_log(&log, "serving /metrics", std::time::Duration::from_secs(30)),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    drop(filter);
    std::fs::read_to_string(&log).unwrap()
}

#[test]
fn json_log_lines_have_level_target_and_message() {
    for (args, env) in [
        (&["--log-format", "json"][..], &[][..]),
        (&[][..], &[("CDR_PURPOSE_FILTER_LOG_FORMAT", "json")][..]),
    ] {
        let log = first_log_lines(args, env);
        assert!(!log.contains('\x1b'), "ANSI codes in JSON logs:\n{log}");
        let lines: Vec<Value> = log
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        let serving = lines
            .iter()
            .find(|l| {
                l["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("serving /metrics"))
            })
            .unwrap_or_else(|| panic!("{log}"));
        assert_eq!(serving["level"], "INFO");
        assert!(serving["target"]
            .as_str()
            .unwrap()
            .starts_with("cdr_purpose_filter"));
        assert!(serving["timestamp"].is_string());
    }
}

#[test]
fn text_logs_have_no_colour_codes_when_stderr_is_not_a_terminal() {
    // Neither NO_COLOR nor a terminal: plain text (the old subscriber wrote ANSI codes).
    let log = first_log_lines(&[], &[]);
    assert!(log.contains("serving /metrics"), "{log}");
    assert!(!log.contains('\x1b'), "ANSI codes in a log file:\n{log:?}");
    let log = first_log_lines(&["--log-format", "text"], &[("NO_COLOR", "1")]);
    assert!(!log.contains('\x1b'));
    assert!(serde_json::from_str::<Value>(log.lines().next().unwrap()).is_err());
}

// ---------------------------------------------------------------------------------------
// On the test broker
// ---------------------------------------------------------------------------------------

fn start(
    topics: &Topics,
    dir: &Path,
    edit: impl FnOnce(&mut config::RawConfig),
    env: &[(&str, &str)],
) -> (Filter, std::path::PathBuf) {
    let config = topics.config_with(dir, edit);
    let log = dir.join("filter.log");
    let filter = Filter::start_with(&config, &log, &["--log-format", "json"], env);
    (filter, log)
}

fn stop(mut filter: Filter, log: &Path) -> String {
    filter.signal("TERM");
    assert_eq!(
        filter.wait(std::time::Duration::from_secs(60)),
        Some(0),
        "{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
    std::fs::read_to_string(log).unwrap()
}

fn keys(outputs: &[common::io::Output]) -> BTreeSet<String> {
    outputs.iter().map(common::io::Output::key_str).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn broker_run_reads_framed_records_and_writes_both_purpose_topics() {
    let topics = Topics::new("framed-in");
    common::broker::create_topics(&[&topics.input], 1).await;
    let records = framed_records(42);
    let mut inputs: Vec<Input> = records
        .iter()
        .map(|(_, r)| Input::value(r.clone()))
        .collect();
    // A hand-built byte string: magic, id 42, `[0]`, then the message.
    let mut hand = vec![0x00, 0x00, 0x00, 0x00, 0x2a, 0x00];
    hand.extend(billable_call("hand-built").encode_to_vec());
    inputs.push(Input::value(hand));
    // Another schema: dead-lettered with its id, nothing of the record.
    inputs.push(Input::value(framing::frame(
        99,
        BodyKind::Protobuf,
        &[0],
        &billable_call("other-schema").encode_to_vec(),
    )));
    common::io::produce(&topics.input, &inputs);
    let dir = tempfile::tempdir().unwrap();
    // (The test configuration has an [input] table already.)
    let (filter, log) = start(
        &topics,
        dir.path(),
        |_| {},
        &[("CDR_PURPOSE_FILTER_INPUT__SCHEMA_IDS", "[42]")],
    );
    let want: BTreeSet<String> = records
        .iter()
        .map(|(id, _)| id.clone())
        .chain(["hand-built".to_string()])
        .collect();
    let limit = std::time::Duration::from_secs(90);
    let billing = common::io::read_keys(&topics.billing, &want, limit);
    let security = common::io::read_keys(&topics.security, &want, limit);
    let dead = common::io::read_all(&topics.dead_letter, 1, limit);
    let log = stop(filter, &log);
    assert_eq!(keys(&billing), want, "billing; log:\n{log}");
    assert_eq!(keys(&security), want, "security; log:\n{log}");
    for o in billing.iter().chain(&security) {
        // Bare protobuf out (output.framing = "none"), readable as is.
        assert_eq!(o.event().event_id, o.key_str());
    }
    assert_eq!(dead.len(), 1, "{dead:?}");
    let pointer: Pointer = serde_json::from_slice(&dead[0].payload).unwrap();
    assert_eq!(pointer.reason, "unexpected_schema");
    assert_eq!(pointer.schema_id, Some(99));
    assert_eq!(pointer.source_offset, 5);
    assert!(!text(&dead[0].payload).contains("other-schema"));
    assert!(
        !log.contains("other-schema"),
        "the log names the event:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn broker_run_writes_confluent_framed_output() {
    for (format, output_format, prefix) in [
        (
            "protobuf",
            OutputFormat::Protobuf,
            &b"\x00\x00\x00\x00\x4d\x02\x14"[..],
        ),
        ("json", OutputFormat::Json, &b"\x00\x00\x00\x00\x4d{"[..]),
    ] {
        let topics = Topics::new(&format!("framed-out-{format}"));
        common::broker::create_topics(&[&topics.input], 1).await;
        common::io::produce(
            &topics.input,
            &[Input::value(framing::frame(
                5,
                BodyKind::Protobuf,
                &[0],
                &billable_call("framed-out").encode_to_vec(),
            ))],
        );
        let dir = tempfile::tempdir().unwrap();
        let (filter, log) = start(
            &topics,
            dir.path(),
            |c| {
                c.output.format = output_format;
                c.output.framing = config::OutputFraming::Confluent;
                c.output.schema_id = Some(77);
            },
            &[],
        );
        let limit = std::time::Duration::from_secs(90);
        let billing = common::io::read_all(&topics.billing, 1, limit);
        let security = common::io::read_all(&topics.security, 1, limit);
        let log = stop(filter, &log);
        for out in [&billing, &security] {
            assert_eq!(out.len(), 1, "{log}");
            let value = &out[0].payload;
            eprintln!(
                "{format} output value, first 6 bytes: {:02x?}",
                &value[..6.min(value.len())]
            );
            assert_eq!(&value[..prefix.len()], prefix);
            let kind = if format == "json" {
                BodyKind::Json
            } else {
                BodyKind::Protobuf
            };
            let u = framing::unframe(value, kind).unwrap();
            assert_eq!(u.schema_id, 77);
            let (event, _) = cdr_purpose_filter::decode::decode(
                u.body,
                if format == "json" {
                    cdr_purpose_filter::decode::InputFormat::Json
                } else {
                    cdr_purpose_filter::decode::InputFormat::Protobuf
                },
            )
            .unwrap();
            assert_eq!(event.event_id, "framed-out");
            assert_eq!(out[0].key_str(), "framed-out");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn broker_dry_run_from_topic_reads_without_committing() {
    let topics = Topics::new("from-topic");
    common::broker::create_topics(&[&topics.input], 1).await;
    let records = framed_records(8);
    let mut inputs: Vec<Input> = records
        .iter()
        .map(|(_, r)| Input::value(r.clone()))
        .collect();
    inputs.push(Input::value(json_of(&billable_call("bare-json"))));
    inputs.push(Input::value(b"not an event".to_vec()));
    common::io::produce(&topics.input, &inputs);
    let dir = tempfile::tempdir().unwrap();
    let config = topics.config(dir.path());
    let dry = |count: &str| {
        let o = run(command()
            .args(["dry-run", "--now", NOW, "--config"])
            .arg(&config)
            .args(["--from-topic", &topics.input, "--count", count]));
        assert_exit(&o, 0);
        // Reaching the end of a partition is the normal end, not an error.
        let stderr = text(&o.stderr);
        assert!(
            !stderr.contains("ERROR") && !stderr.contains("PartitionEOF"),
            "{stderr}"
        );
        let lines: Vec<Value> = text(&o.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (lines, stderr)
    };
    let (lines, summary) = dry("3");
    assert_eq!(lines.len(), 6, "{lines:?}");
    assert!(summary.contains("3 records read"), "{summary}");
    let (lines, summary) = dry("100");
    assert!(summary.contains("6 records read"), "{summary}");
    let forwarded: BTreeSet<&str> = lines
        .iter()
        .filter(|l| l["outcome"] == "forward")
        .map(|l| l["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(forwarded.len(), 5, "{lines:?}");
    assert!(forwarded.contains("bare-json") && forwarded.contains("pb-nested"));
    assert_eq!(
        lines
            .iter()
            .filter(|l| l["reason"] == "undecodable")
            .count(),
        2
    );
    // Read-only: neither the filter's group nor the dry run's has committed anything.
    for group in [topics.group.clone(), format!("{}-dry-run", topics.group)] {
        let committed = common::broker::committed(&group, &topics.input);
        assert!(
            committed.values().all(|o| *o < 0),
            "{group} committed {committed:?}"
        );
    }
    // A topic that does not exist is a usage error.
    let o = run(command()
        .args(["dry-run", "--config"])
        .arg(&config)
        .args(["--from-topic", "no-such-topic-here"]));
    assert_exit(&o, 2);
    assert!(text(&o.stderr).contains("no-such-topic-here"));
}

#[tokio::test(flavor = "multi_thread")]
async fn broker_run_configured_by_the_environment_alone() {
    let topics = Topics::new("env-only");
    common::broker::create_topics(&[&topics.input], 1).await;
    common::io::produce(
        &topics.input,
        &[Input::value(framing::frame(
            1,
            BodyKind::Json,
            &[],
            &json_of(&billable_call("env-only")),
        ))],
    );
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("filter.log");
    let brokers = common::broker::brokers();
    let mut cmd = command();
    cmd.arg("run")
        .envs([
            (
                "CDR_PURPOSE_FILTER_KAFKA__BOOTSTRAP_SERVERS",
                brokers.as_str(),
            ),
            ("CDR_PURPOSE_FILTER_KAFKA__GROUP_ID", topics.group.as_str()),
            (
                "CDR_PURPOSE_FILTER_KAFKA__CONSUMER_PROPERTIES__FETCH_WAIT_MAX_MS",
                "10",
            ),
            (
                "CDR_PURPOSE_FILTER_INPUT__TOPICS",
                &format!("[\"{}\"]", topics.input),
            ),
            (
                "CDR_PURPOSE_FILTER_PURPOSES__BILLING__TOPIC",
                topics.billing.as_str(),
            ),
            (
                "CDR_PURPOSE_FILTER_PURPOSES__SECURITY__TOPIC",
                topics.security.as_str(),
            ),
            (
                "CDR_PURPOSE_FILTER_DEAD_LETTER__TOPIC",
                topics.dead_letter.as_str(),
            ),
            ("CDR_PURPOSE_FILTER_TOPICS__MODE", "create"),
            ("CDR_PURPOSE_FILTER_TOPICS__PARTITIONS", "1"),
            ("CDR_PURPOSE_FILTER_TOPICS__REPLICATION_FACTOR", "1"),
            ("CDR_PURPOSE_FILTER_METRICS__LISTEN", "127.0.0.1:0"),
            ("CDR_PURPOSE_FILTER_LOG_FORMAT", "json"),
            ("CDR_PURPOSE_FILTER_LOG", "info"),
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    let filter = Filter {
        child: cmd.spawn().unwrap(),
    };
    let limit = std::time::Duration::from_secs(90);
    let billing = common::io::read_all(&topics.billing, 1, limit);
    let security = common::io::read_all(&topics.security, 1, limit);
    let text = stop(filter, &log);
    eprintln!("env-only run, first log lines:");
    for l in text.lines().take(4) {
        eprintln!("  {l}");
    }
    assert_eq!(
        keys(&billing),
        BTreeSet::from(["env-only".to_string()]),
        "{text}"
    );
    assert_eq!(keys(&security), BTreeSet::from(["env-only".to_string()]));
    for l in text.lines() {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        assert!(v["level"].is_string() && v["target"].is_string(), "{l}");
    }
}

#[test]
fn process_metrics_are_scraped() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("filter.toml");
    std::fs::write(
        &config,
        format!(
            "[kafka]\nbootstrap_servers = \"127.0.0.1:{}\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n{BOTH}",
            common::broker::free_port()
        ),
    )
    .unwrap();
    let log = dir.path().join("log");
    let mut filter = Filter::start(&config, &log);
    let addr = filter.http_address(&log);
    let (status, body) = common::filter::http_get(addr, "/metrics").expect("a scrape");
    assert_eq!(status, 200);
    let value = |name: &str| -> f64 {
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in the scrape:\n{body}"))
    };
    assert!(value("process_resident_memory_bytes") > 1e6);
    assert!(value("process_open_fds") >= 3.0);
    assert!(value("process_cpu_seconds_total") >= 0.0);
    let start = value("process_start_time_seconds");
    let now = Utc::now().timestamp() as f64;
    assert!(
        start > now - 600.0 && start <= now + 1.0,
        "{start} vs {now}"
    );
    assert!(
        body.contains("# TYPE process_cpu_seconds_total counter"),
        "{body}"
    );
}

#[test]
fn topics_render_strimzi_in_either_api_version() {
    let config = config_file(BOTH);
    let render = |api: Option<&str>| {
        let mut c = command();
        c.args(["topics", "render", "--format", "strimzi", "--config"])
            .arg(config.path());
        if let Some(api) = api {
            c.args(["--api", api]);
        }
        let o = run(&mut c);
        assert_exit(&o, 0);
        text(&o.stdout)
    };
    let v1 = render(Some("v1"));
    assert_eq!(
        v1.matches("apiVersion: kafka.strimzi.io/v1\n").count(),
        3,
        "{v1}"
    );
    let v1beta2 = render(Some("v1beta2"));
    assert_eq!(
        v1beta2
            .matches("apiVersion: kafka.strimzi.io/v1beta2\n")
            .count(),
        3
    );
    assert_eq!(render(None), v1beta2, "v1beta2 stays the default");
    assert_eq!(
        v1.replace("/v1\n", "/v1beta2\n"),
        v1beta2,
        "only the version differs"
    );
}

// ---------------------------------------------------------------------------------------
// `gen --config --topic`: every event delivered, or exit 1 naming why
// ---------------------------------------------------------------------------------------

/// `gen --count N --config CONFIG --topic TOPIC`.
fn gen_to(config: &Path, topic: &str, count: u32) -> Output {
    run(command().args([
        "gen",
        "--count",
        &count.to_string(),
        "--now",
        NOW,
        "--config",
        config.to_str().unwrap(),
        "--topic",
        topic,
    ]))
}

#[tokio::test(flavor = "multi_thread")]
async fn broker_gen_delivers_every_event_to_the_topic() {
    let topics = Topics::new("gen-to");
    common::broker::create_topics(&[&topics.input], 2).await;
    let dir = tempfile::tempdir().unwrap();
    let o = gen_to(&topics.config(dir.path()), &topics.input, 300);
    assert_exit(&o, 0);
    assert!(
        text(&o.stderr).contains(&format!("produced 300 events to {}", topics.input)),
        "{}",
        text(&o.stderr)
    );
    let got = common::io::read_all(&topics.input, 300, std::time::Duration::from_secs(60));
    assert_eq!(got.len(), 300);
    assert_eq!(keys(&got).len(), 300, "300 distinct events");
}

#[test]
fn broker_gen_to_a_topic_that_does_not_exist_fails_naming_it() {
    let topics = Topics::new("gen-missing");
    let dir = tempfile::tempdir().unwrap();
    let missing = common::broker::unique("gen.no-such-topic");
    let o = gen_to(&topics.config(dir.path()), &missing, 3);
    assert_exit(&o, 1);
    let err = text(&o.stderr);
    assert!(err.contains(&missing), "{err}");
    assert!(err.contains("Unknown topic"), "{err}");
    assert!(!err.contains("produced"), "{err}");
}

#[test]
fn gen_to_unreachable_brokers_fails_in_a_few_lines() {
    let topics = Topics::new("gen-down");
    let dir = tempfile::tempdir().unwrap();
    let config = common::config::write(
        dir.path(),
        &topics.on(&format!("127.0.0.1:{}", common::broker::free_port())),
    );
    let o = gen_to(&config, &topics.input, 3);
    assert_exit(&o, 2);
    let err = text(&o.stderr);
    assert!(err.contains("kafka.bootstrap_servers"), "{err}");
    // librdkafka's reconnects are logged once, not at every attempt.
    assert!(
        err.lines().count() <= 5,
        "{} lines:\n{err}",
        err.lines().count()
    );
}
