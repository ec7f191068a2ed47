//! Tests of the `cdr-purpose-filter` binary: `policy show`, `gen`, `dry-run` and
//! `config check`, against the contract (docs/cdr-event.md) and the library in-process.

use cdr_purpose_filter::config;
use cdr_purpose_filter::decode::{self, InputFormat};
use cdr_purpose_filter::encode;
use cdr_purpose_filter::gen::Generator;
use cdr_purpose_filter::policy::table::Column;
use cdr_purpose_filter::policy::Version;
use cdr_purpose_filter::policy::{Outcome, Policy};
use cdr_purpose_filter::schema::CdrEvent;
use chrono::{DateTime, Utc};
use prost::Message;
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_cdr-purpose-filter");
const NOW: &str = "2026-11-28T12:00:00Z";
const COUNT: usize = 1000;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(NOW).unwrap().to_utc()
}

fn example_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/config.example.toml")
}

/// The binary, with no configuration override inherited from the test's environment.
fn command() -> Command {
    let mut c = Command::new(BIN);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("CDR_PURPOSE_FILTER_") {
            c.env_remove(&k);
        }
    }
    c.env_remove("RUST_LOG");
    c
}

fn run(c: &mut Command) -> Output {
    c.output().expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_exit(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "exit status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        stderr(o)
    );
}

fn temp_file(bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(bytes).unwrap();
    f.flush().unwrap();
    f
}

// ---------------------------------------------------------------------------------------
// policy show
// ---------------------------------------------------------------------------------------

#[test]
fn policy_show_markdown_has_one_row_per_field_with_legal_references() {
    for version in Version::ALL {
        let o = run(command().args([
            "policy",
            "show",
            "--format",
            "markdown",
            "--version",
            version.name(),
        ]));
        assert_exit(&o, 0);
        let out = stdout(&o);
        assert!(out.starts_with(&format!("# Policy {version}")), "{out}");
        let rows: Vec<&str> = out.lines().filter(|l| l.starts_with("| `")).collect();
        let table = version.fields();
        assert_eq!(rows.len(), table.len(), "{out}");
        for (f, row) in table.iter().zip(&rows) {
            assert!(
                row.starts_with(&format!("| `{}` |", f.path)),
                "row of {} is {row}",
                f.path
            );
            // | `path` | category | bt | bo | sec |
            let cells: Vec<&str> = row.trim_matches('|').split(" | ").map(str::trim).collect();
            assert_eq!(cells.len(), 5, "{row}");
            assert_eq!(cells[1], f.category, "{row}");
            for (cell, column) in cells[2..].iter().zip(Column::ALL) {
                let c = f.cell(column);
                assert!(
                    cell.starts_with(&format!("{} — ", c.rule.symbol())),
                    "{} / {column:?}: {cell}",
                    f.path
                );
                assert!(cell.contains(c.basis), "{} / {column:?}: {cell}", f.path);
            }
        }
        let row_of = |path: &str| {
            rows.iter()
                .find(|r| r.starts_with(&format!("| `{path}` |")))
                .unwrap_or_else(|| panic!("no row for {path}"))
                .to_string()
        };
        assert!(row_of("content.sms_text").contains("L34-1"));
        assert!(row_of("location.cell_id").contains("R10-14 II"));
        assert!(row_of("terminal.imei").contains("R10-14 IV"));
        assert!(row_of("extensions").contains("L34-1"));
        assert!(row_of("location.latitude").contains("O (optional) — "));
        // The routing of billing, with the reading of the version.
        let terminating_call = out
            .lines()
            .find(|l| l.starts_with("| VOICE_CALL | TERMINATING |"))
            .unwrap_or_else(|| panic!("no routing row in {out}"));
        match version {
            Version::R2021 => assert!(
                terminating_call.contains("dropped (not_originated)"),
                "{terminating_call}"
            ),
            Version::R2012 => assert!(
                terminating_call.contains("taken (Billing, telephony)"),
                "{terminating_call}"
            ),
        }
    }
}

#[test]
fn policy_show_defaults_to_the_text_in_force_and_refuses_an_unknown_version() {
    let o = run(command().args(["policy", "show", "--format", "json"]));
    assert_exit(&o, 0);
    let doc: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(doc["policy_version"], "R10-14/2021");
    assert_eq!(doc["in_force"], true);
    let o = run(command().args(["policy", "show", "--version", "R10-14/2099"]));
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert!(err.contains("R10-14/2099"), "{err}");
    assert!(
        err.contains("R10-14/2021") && err.contains("R10-14/2012"),
        "{err}"
    );
    // A configuration names its own version; --version must agree with it.
    let f = config_file("[policy]\nversion = \"R10-14/2012\"\n[purposes.billing]\n");
    let o = run(command()
        .args(["policy", "show", "--format", "json", "--config"])
        .arg(f.path()));
    assert_exit(&o, 0);
    let doc: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(doc["policy_version"], "R10-14/2012");
    let o = run(command()
        .args(["policy", "show", "--version", "R10-14/2021", "--config"])
        .arg(f.path()));
    assert_exit(&o, 2);
}

#[test]
fn policy_diff_lists_the_rows_and_routing_that_differ_with_both_references() {
    let o = run(command().args([
        "policy",
        "diff",
        "R10-14/2012",
        "R10-14/2021",
        "--format",
        "json",
    ]));
    assert_exit(&o, 0);
    let doc: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let diffs = doc["differences"].as_array().unwrap();
    let has = |what: &str, column: &str, from: &str, to: &str| {
        diffs.iter().any(|d| {
            d["what"] == what
                && d["column"] == column
                && d["from"].as_str().unwrap().starts_with(from)
                && d["to"].as_str().unwrap().starts_with(to)
        })
    };
    assert!(
        has("terminal.imeisv", "Billing, telephony", "O", "N"),
        "{diffs:#?}"
    );
    assert!(
        has("terminal.imeisv", "Billing, other", "O", "N"),
        "{diffs:#?}"
    );
    for t in ["VOICE_CALL", "SMS", "DATA_SESSION", "SUPPLEMENTARY_SERVICE"] {
        assert!(
            has(
                &format!("{t} TERMINATING"),
                "Billing",
                "taken",
                "dropped (not_originated)"
            ),
            "{t}: {diffs:#?}"
        );
    }
    assert!(has(
        "VOICE_CALL NONE",
        "Billing",
        "taken",
        "dropped (not_originated)"
    ));
    // Rows that agree are not listed; both references are given.
    assert!(!diffs
        .iter()
        .any(|d| d["what"] == "served.imsi" && d["from"] == d["to"]));
    assert!(diffs
        .iter()
        .all(|d| d["from_basis"].as_str().is_some_and(|b| !b.is_empty())
            && d["to_basis"].as_str().is_some_and(|b| !b.is_empty())));
    assert!(!diffs.iter().any(|d| d["what"] == "DATA_SESSION NONE"));
    // The table format too, and an unknown version is a usage error.
    let o = run(command().args(["policy", "diff", "R10-14/2012", "R10-14/2021"]));
    assert_exit(&o, 0);
    assert!(stdout(&o).contains("not_originated"));
    let o = run(command().args(["policy", "diff", "R10-14/2012", "R10-14/2030"]));
    assert_exit(&o, 2);
}

#[test]
fn policy_show_json_lists_every_field() {
    let o = run(command().args(["policy", "show", "--format", "json"]));
    assert_exit(&o, 0);
    let doc: Value = serde_json::from_str(&stdout(&o)).expect("policy show --format json");
    assert_eq!(doc["policy_version"], "R10-14/2021");
    let table = Version::R2021.fields();
    let fields = doc["fields"].as_array().expect("a fields array");
    assert_eq!(fields.len(), table.len());
    for (f, row) in table.iter().zip(fields) {
        assert_eq!(row["field"], f.path);
        assert_eq!(row["required"], f.required, "{}", f.path);
        for (column, name) in
            Column::ALL
                .iter()
                .zip(["billing_telephony", "billing_other", "security"])
        {
            let cell = f.cell(*column);
            assert_eq!(
                row[name]["rule"],
                serde_json::to_value(cell.rule).unwrap(),
                "{} / {name}",
                f.path
            );
            assert_eq!(row[name]["basis"], cell.basis, "{} / {name}", f.path);
        }
    }
    let purposes = doc["purposes"].as_array().expect("a purposes array");
    let limits: Vec<(&str, u64)> = purposes
        .iter()
        .map(|p| {
            (
                p["purpose"].as_str().unwrap(),
                p["limit_months"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(limits, [("billing", 12), ("security", 3)]);
}

#[test]
fn policy_show_table_lists_every_field() {
    for version in Version::ALL {
        let o = run(command().args([
            "policy",
            "show",
            "--format",
            "table",
            "--version",
            version.name(),
        ]));
        assert_exit(&o, 0);
        let out = stdout(&o);
        for f in version.fields() {
            assert!(
                out.lines().any(|l| l.starts_with(&format!("{} ", f.path))),
                "no line for {}",
                f.path
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// gen and dry-run
// ---------------------------------------------------------------------------------------

fn gen(format: &str, seed: u64) -> Vec<u8> {
    let o = run(command().args([
        "gen",
        "--count",
        &COUNT.to_string(),
        "--seed",
        &seed.to_string(),
        "--now",
        NOW,
        "--format",
        format,
    ]));
    assert_exit(&o, 0);
    o.stdout
}

fn dry_run(input: &Path, format: &str) -> Vec<Value> {
    let o = run(command()
        .args(["dry-run", "--config"])
        .arg(example_config())
        .args(["--now", NOW, "--format", format])
        .arg(input));
    assert_exit(&o, 0);
    stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn generated_events() -> Vec<CdrEvent> {
    let mut g = Generator::new(1, now());
    (0..COUNT).map(|_| g.next_event()).collect()
}

/// A JSON value as it reads after a print and a parse: the form of dry-run's lines.
fn reparsed(v: &Value) -> Value {
    serde_json::from_str(&serde_json::to_string(v).unwrap()).unwrap()
}

/// Checks dry-run's lines against `Policy::apply` on the same events, in-process.
fn assert_agrees_with_the_library(lines: &[Value], events: &[CdrEvent]) {
    let settings = config::load(&example_config()).expect("the example configuration is valid");
    let policy: &Policy = &settings.policy;
    let per_event = policy.purposes.len();
    assert_eq!(per_event, 2, "the example configures billing and security");
    assert_eq!(lines.len(), per_event * events.len());
    let mut forwards = 0;
    let mut drops = 0;
    let mut forwards_of_content = 0;
    for (event, lines) in events.iter().zip(lines.chunks(per_event)) {
        let evaluation = policy.apply(event, now());
        for ((purpose, outcome), line) in evaluation.outcomes.iter().zip(lines) {
            let obj = line.as_object().expect("a JSON object per line");
            for key in [
                "event_id",
                "purpose",
                "outcome",
                "reason",
                "expires_at",
                "record",
            ] {
                assert!(obj.contains_key(key), "no {key} in {line}");
            }
            assert_eq!(line["event_id"], event.event_id.as_str(), "{line}");
            assert_eq!(line["purpose"], purpose.name(), "{line}");
            match outcome {
                Outcome::Forward(r) => {
                    forwards += 1;
                    assert_eq!(line["outcome"], "forward", "{line}");
                    assert_eq!(line["reason"], Value::Null, "{line}");
                    let expires_at = line["expires_at"].as_str().expect("an expiry");
                    assert_eq!(
                        DateTime::parse_from_rfc3339(expires_at).unwrap().to_utc(),
                        r.expires_at,
                        "{line}"
                    );
                    let record = line["record"].as_object().expect("a record");
                    for key in ["content", "extensions", "declaredPurposes"] {
                        assert!(!record.contains_key(key), "{key} in {line}");
                    }
                    assert_eq!(
                        record["retention"]["purpose"],
                        purpose.name().to_uppercase()
                    );
                    let expected = serde_json::to_value(&r.event).unwrap();
                    assert_eq!(line["record"], reparsed(&expected), "{line}");
                    // The headers `run` writes for this configuration.
                    let headers: serde_json::Map<String, Value> =
                        encode::headers(r, settings.output_format)
                            .into_iter()
                            .map(|(k, v)| (k.to_string(), Value::from(v.into_owned())))
                            .collect();
                    assert_eq!(line["headers"], Value::Object(headers), "{line}");
                    if event.content.is_some() {
                        forwards_of_content += 1;
                    }
                }
                Outcome::Drop(reason) => {
                    drops += 1;
                    assert_eq!(line["outcome"], "drop", "{line}");
                    assert_eq!(line["reason"], reason.as_str(), "{line}");
                    assert_eq!(line["expires_at"], Value::Null, "{line}");
                    assert_eq!(line["record"], Value::Null, "{line}");
                }
            }
        }
    }
    assert!(forwards > COUNT / 2, "{forwards} forwards");
    assert!(drops > 0, "no drop at all");
    assert!(forwards_of_content > 0, "no forwarded event had content");
}

#[test]
fn dry_run_of_gen_json_agrees_with_the_library() {
    let bytes = gen("json", 1);
    let file = temp_file(&bytes);
    // The same events as the generator in-process.
    let text = std::str::from_utf8(&bytes).unwrap();
    let events: Vec<CdrEvent> = text
        .lines()
        .map(|l| decode::decode(l.as_bytes(), InputFormat::Json).unwrap().0)
        .collect();
    let ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    let in_process = generated_events();
    let want: Vec<&str> = in_process.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids, want);

    let lines = dry_run(file.path(), "json");
    assert_agrees_with_the_library(&lines, &events);
    // `auto` reads JSON lines too.
    assert_eq!(dry_run(file.path(), "auto"), lines);
}

#[test]
fn dry_run_of_gen_protobuf_agrees_with_the_library() {
    let bytes = gen("protobuf", 1);
    let mut buf = &bytes[..];
    let mut events = Vec::new();
    while !buf.is_empty() {
        events.push(CdrEvent::decode_length_delimited(&mut buf).expect("length-delimited"));
    }
    assert_eq!(events, generated_events(), "gen = Generator::new(1, now)");

    let file = temp_file(&bytes);
    let lines = dry_run(file.path(), "protobuf");
    assert_agrees_with_the_library(&lines, &events);

    // Same events, same lines, whatever the input format.
    let json = temp_file(&gen("json", 1));
    let from_json = dry_run(json.path(), "json");
    let ids = |ls: &[Value]| {
        ls.iter()
            .map(|l| {
                (
                    l["event_id"].clone(),
                    l["outcome"].clone(),
                    l["reason"].clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&lines), ids(&from_json));
}

/// The `content-type` of every forwarded line of `dry-run` for the example configuration
/// with `env` overrides.
fn dry_run_content_types(input: &Path, env: &[(&str, &str)]) -> BTreeSet<String> {
    let mut c = command();
    c.args(["dry-run", "--config"])
        .arg(example_config())
        .args(["--now", NOW, "--format", "json"])
        .arg(input);
    for (k, v) in env {
        c.env(k, v);
    }
    let o = run(&mut c);
    assert_exit(&o, 0);
    let lines: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let forwarded: Vec<&Value> = lines.iter().filter(|l| l["outcome"] == "forward").collect();
    assert!(!forwarded.is_empty(), "nothing forwarded");
    for line in &forwarded {
        let names: Vec<&str> = line["headers"]
            .as_object()
            .expect("headers")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            names,
            [
                "cdr-expires-at",
                "cdr-legal-basis",
                "cdr-policy-version",
                "cdr-purpose",
                "content-type"
            ],
            "{line}"
        );
    }
    forwarded
        .iter()
        .map(|l| l["headers"]["content-type"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn dry_run_headers_carry_the_content_type_of_the_configured_output_format() {
    let input = temp_file(&gen("json", 3));
    let protobuf = BTreeSet::from(["application/x-protobuf".to_string()]);
    let json = BTreeSet::from(["application/json".to_string()]);
    // The example configures protobuf output.
    assert_eq!(dry_run_content_types(input.path(), &[]), protobuf);
    assert_eq!(
        dry_run_content_types(
            input.path(),
            &[("CDR_PURPOSE_FILTER_OUTPUT__FORMAT", "json")]
        ),
        json
    );
    // Schema Registry framing does not change the content type.
    let framed = [
        ("CDR_PURPOSE_FILTER_OUTPUT__FRAMING", "confluent"),
        ("CDR_PURPOSE_FILTER_OUTPUT__SCHEMA_ID", "17"),
    ];
    assert_eq!(dry_run_content_types(input.path(), &framed), protobuf);
    let framed_json = [
        framed[0],
        framed[1],
        ("CDR_PURPOSE_FILTER_OUTPUT__FORMAT", "json"),
    ];
    assert_eq!(dry_run_content_types(input.path(), &framed_json), json);
}

/// `dry-run --format protobuf` of `input`: exit 2, the lines of the records before the
/// bad framing, and an error naming the record and its byte offset, never its bytes.
fn dry_run_bad_framing(input: &[u8]) -> (usize, String) {
    let file = temp_file(input);
    let o = run(command()
        .args(["dry-run", "--config"])
        .arg(example_config())
        .args(["--now", NOW, "--format", "protobuf"])
        .arg(file.path()));
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert!(err.contains("JSON lines need --format json"), "{err}");
    assert!(
        !err.contains("33612345678"),
        "record bytes in the error: {err}"
    );
    (stdout(&o).lines().count(), err)
}

#[test]
fn dry_run_of_input_that_is_not_length_delimited_names_the_record_and_byte_and_exits_2() {
    let records = gen("protobuf", 1);
    // A prefix announcing 9223 bytes (varint 0x87 0x48), then 41 bytes of a phone number.
    let mut cut = records.clone();
    cut.extend([0x87, 0x48]);
    cut.extend(b"33612345678".iter().cycle().take(41));
    let (lines, err) = dry_run_bad_framing(&cut);
    assert_eq!(lines, 2 * COUNT, "the records before it are printed");
    let want = format!(
        "error: dry-run: input record {} at byte {}: the length prefix announces 9223 bytes \
         but only 41 remain",
        COUNT + 1,
        records.len()
    );
    assert!(err.contains(&want), "{err}");

    // A varint longer than ten bytes.
    let mut overlong = records.clone();
    overlong.extend([0xff; 11]);
    overlong.extend(b"33612345678");
    let (lines, err) = dry_run_bad_framing(&overlong);
    assert_eq!(lines, 2 * COUNT);
    assert!(
        err.contains(&format!(
            "input record {} at byte {}",
            COUNT + 1,
            records.len()
        )),
        "{err}"
    );
    assert!(err.contains("not a valid varint"), "{err}");
}

#[test]
fn a_path_on_the_command_line_that_cannot_be_opened_or_created_is_bad_usage() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-input.jsonl");
    let o = run(command()
        .args(["dry-run", "--config"])
        .arg(example_config())
        .arg(&missing));
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains(&missing.display().to_string()),
        "{}",
        stderr(&o)
    );

    let out = dir.path().join("no-such-dir").join("events.jsonl");
    let o = run(command().args(["gen", "--count", "1", "--out"]).arg(&out));
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert!(err.contains(&out.display().to_string()), "{err}");
    assert!(err.contains("no-such-dir does not exist"), "{err}");
}

#[test]
fn gen_is_deterministic() {
    for format in ["json", "protobuf"] {
        let a = gen(format, 1);
        assert!(!a.is_empty());
        assert_eq!(a, gen(format, 1), "{format}: same seed, same bytes");
        assert_ne!(a, gen(format, 2), "{format}: another seed, other events");
    }
    let json = gen("json", 1);
    assert_eq!(json.iter().filter(|&&b| b == b'\n').count(), COUNT);
}

#[test]
fn gen_out_writes_the_same_bytes_as_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let o = run(command()
        .args(["gen", "--count", "50", "--seed", "1", "--now", NOW, "--out"])
        .arg(&path));
    assert_exit(&o, 0);
    let o2 = run(command().args(["gen", "--count", "50", "--seed", "1", "--now", NOW]));
    assert_exit(&o2, 0);
    assert_eq!(std::fs::read(&path).unwrap(), o2.stdout);
}

// ---------------------------------------------------------------------------------------
// config check
// ---------------------------------------------------------------------------------------

fn config_check(path: &Path, env: &[(&str, &str)]) -> Output {
    let mut c = command();
    c.args(["config", "check", "--config"]).arg(path);
    for (k, v) in env {
        c.env(k, v);
    }
    run(&mut c)
}

fn config_file(text: &str) -> tempfile::NamedTempFile {
    temp_file(text.as_bytes())
}

#[test]
fn config_check_prints_the_effective_configuration() {
    let o = config_check(&example_config(), &[]);
    assert_exit(&o, 0);
    let effective: toml::Value = toml::from_str(&stdout(&o)).expect("config check prints TOML");
    assert_eq!(
        effective["purposes"]["billing"]["ttl"].as_str(),
        Some("12mo")
    );
    assert_eq!(
        effective["purposes"]["security"]["ttl"].as_str(),
        Some("3mo")
    );
    assert_eq!(effective["policy"]["version"].as_str(), Some("R10-14/2021"));
    assert_eq!(
        effective["policy"]["time_zone"].as_str(),
        Some("Europe/Paris")
    );
    assert!(
        stderr(&o).contains("policy R10-14/2021, legal time Europe/Paris"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        effective["purposes"]["billing"]["topic"].as_str(),
        Some("cdr.billing")
    );
}

/// The client properties the filter sets itself are shown, as TOML comments (the output
/// stays the effective configuration); one the configuration sets is not.
#[test]
fn config_check_shows_the_client_timeouts_the_filter_sets() {
    let o = config_check(&example_config(), &[]);
    assert_exit(&o, 0);
    let out = stdout(&o);
    toml::from_str::<toml::Value>(&out).expect("still TOML");
    for line in [
        "#   socket.timeout.ms = \"5000\" (every client): ",
        "#   topic.metadata.refresh.interval.ms = \"10000\" (every client): ",
        "#   session.timeout.ms = \"10000\" (consumer): ",
    ] {
        assert!(out.contains(line), "{line} not in:\n{out}");
    }
    let f = config_file(
        "[kafka.properties]\n\"socket.timeout.ms\" = \"20000\"\n\
         [purposes.billing]\ntopic = \"cdr.billing\"\n",
    );
    let o = config_check(f.path(), &[]);
    assert_exit(&o, 0);
    let out = stdout(&o);
    assert!(!out.contains("#   socket.timeout.ms"), "{out}");
    assert!(out.contains("#   session.timeout.ms"), "{out}");
}

#[test]
fn config_check_refuses_a_day_ttl_longer_than_the_shortest_year_in_legal_time() {
    // In Paris legal time the shortest year is 364 days 23 hours (across the spring change).
    let f = config_file("[purposes.billing]\ntopic = \"cdr.billing\"\nttl = \"365d\"\n");
    let o = config_check(f.path(), &[]);
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert!(err.contains("purposes.billing.ttl"), "{err}");
    assert!(err.contains("364 days 23 hours"), "{err}");
    assert!(err.contains("12mo"), "{err}");

    // 364d is accepted, and 365d in UTC legal time.
    let f = config_file("[purposes.billing]\ntopic = \"cdr.billing\"\nttl = \"364d\"\n");
    assert_exit(&config_check(f.path(), &[]), 0);
    let f = config_file(
        "[policy]\ntime_zone = \"UTC\"\n[purposes.billing]\ntopic = \"cdr.billing\"\nttl = \"365d\"\n",
    );
    assert_exit(&config_check(f.path(), &[]), 0);
}

#[test]
fn config_check_and_start_refuse_two_purposes_in_one_topic() {
    let f = config_file("[purposes.billing]\ntopic = \"cdr.security\"\n[purposes.security]\n");
    let o = config_check(f.path(), &[]);
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert!(
        err.contains("purposes.billing.topic") && err.contains("purposes.security.topic"),
        "{err}"
    );
    assert!(err.contains("cdr.security"), "{err}");
    // `run` refuses it before touching a broker.
    let o = run(command().args(["run", "--config"]).arg(f.path()));
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("purposes.billing.topic"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn config_check_refuses_an_unknown_key() {
    let f = config_file("[purposes.billing]\nttl = \"12mo\"\nretention_days = 30\n");
    let o = config_check(f.path(), &[]);
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert!(err.contains("retention_days"), "{err}");

    let f = config_file("[purposes.billing]\nttl = \"12mo\"\n\n[colour]\nname = \"blue\"\n");
    let o = config_check(f.path(), &[]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("colour"), "{}", stderr(&o));
}

#[test]
fn config_check_refuses_keeping_what_the_law_removes() {
    let f = config_file("[purposes.security]\nkeep = [\"terminal.imei\"]\n");
    let o = config_check(f.path(), &[]);
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert!(err.contains("purposes.security.keep"), "{err}");
    assert!(err.contains("terminal.imei"), "{err}");
    assert!(err.contains("R10-14 IV"), "{err}");

    // What the law allows may be listed.
    let f = config_file("[purposes.security]\nkeep = [\"calling.number\"]\n");
    assert_exit(&config_check(f.path(), &[]), 0);
}

#[test]
fn config_check_of_a_missing_file_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-config.toml");
    let o = config_check(&missing, &[]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("no-such-config.toml"), "{}", stderr(&o));
    // The OS error once, not once per layer.
    assert_eq!(
        stderr(&o).trim_end(),
        format!(
            "error: cannot read configuration file {}: No such file or directory (os error 2)",
            missing.display()
        )
    );
}

#[test]
fn config_check_refuses_an_environment_override_past_the_limit() {
    let o = config_check(
        &example_config(),
        &[("CDR_PURPOSE_FILTER_PURPOSES__BILLING__TTL", "400d")],
    );
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert!(err.contains("purposes.billing.ttl"), "{err}");
    assert!(err.contains("400d"), "{err}");

    // A lawful override is applied.
    let o = config_check(
        &example_config(),
        &[("CDR_PURPOSE_FILTER_PURPOSES__BILLING__TTL", "180d")],
    );
    assert_exit(&o, 0);
    let effective: toml::Value = toml::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        effective["purposes"]["billing"]["ttl"].as_str(),
        Some("180d")
    );
}

/// The README's first command: the whole pipeline on the embedded broker, a summary that
/// names the guarantee as the configuration writes it and accounts for every event.
#[test]
fn demo_runs_the_pipeline_and_prints_its_summary() {
    let o = run(command().arg("demo"));
    assert_exit(&o, 0);
    let out = stdout(&o);
    let first = out.lines().next().unwrap_or_default();
    assert!(
        first.contains("policy R10-14/2021, at-least-once,"),
        "{first}"
    );
    for line in [
        "records out:",
        "dead letters (pointers only, no payload):",
        "Kafka timestamps equal to event_time: all",
    ] {
        assert!(out.contains(line), "{line:?} missing from:\n{out}");
    }
    // Every event is accounted for, per purpose: written, dropped by the policy (the
    // "dropped" section: purpose, reason, count), or dead-lettered.
    let count = |label: &str| -> u64 {
        out.lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("{label} missing from:\n{out}"))
    };
    let dropped = |purpose: &str| -> u64 {
        out.lines()
            .skip_while(|l| !l.starts_with("dropped"))
            .skip(1)
            .take_while(|l| l.starts_with("  "))
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() == 3 && f[0] == purpose).then(|| f[2].parse::<u64>().unwrap())
            })
            .sum()
    };
    let (events, dead) = (count("events in:"), count("cdr.dead-letter"));
    assert!(events > 0 && dead > 0, "{out}");
    for purpose in ["billing", "security"] {
        let written = count(&format!("cdr.{purpose}"));
        assert!(written > 0, "{out}");
        assert_eq!(
            written + dropped(purpose) + dead,
            events,
            "{purpose}:\n{out}"
        );
    }
}

#[test]
fn config_check_refuses_broker_addresses_librdkafka_misreads_from_the_file_or_the_environment() {
    // librdkafka reads `host:abc` as port 0 and `host:99999` as another port; it gives up
    // on an unknown protocol.
    let f = config_file(
        "[kafka]\nbootstrap_servers = \"host:abc, host:99999,http://host:9092\"\n[purposes.billing]\n",
    );
    let o = config_check(f.path(), &[]);
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert!(err.contains("(3 problem(s))"), "{err}");
    for entry in ["`host:abc`", "`host:99999`", "`http://host:9092`"] {
        assert!(
            err.contains(&format!("kafka.bootstrap_servers: {entry}: ")),
            "{entry}: {err}"
        );
    }
    assert!(err.contains("not a number from 1 to 65535"), "{err}");

    let o = config_check(
        &example_config(),
        &[("CDR_PURPOSE_FILTER_KAFKA__BOOTSTRAP_SERVERS", "broker:abc")],
    );
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("kafka.bootstrap_servers: `broker:abc`: port `abc`"),
        "{}",
        stderr(&o)
    );
    // A password in an address is refused without being echoed.
    let o = config_check(
        &example_config(),
        &[(
            "CDR_PURPOSE_FILTER_KAFKA__BOOTSTRAP_SERVERS",
            "SASL_SSL://alice:s3cr3t@broker:9094",
        )],
    );
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("holds credentials"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("s3cr3t"), "{}", stderr(&o));
    assert!(!stdout(&o).contains("s3cr3t"), "{}", stdout(&o));

    // The forms librdkafka reads, from the environment.
    let o = config_check(
        &example_config(),
        &[(
            "CDR_PURPOSE_FILTER_KAFKA__BOOTSTRAP_SERVERS",
            "a.example:9092, [::1]:9093,plaintext://c",
        )],
    );
    assert_exit(&o, 0);
}

/// dry-run's lines say what `run` does with a record it refuses (`dead_letter`, with
/// its reason and message, for every purpose), and a leap second arrives as the last
/// nanosecond before it (docs/timestamps.md).
#[test]
fn dry_run_shows_dead_letters_and_reads_a_leap_second_as_the_nanosecond_before() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let leap = std::fs::read(corpus.join("json-answer-time-leap-second.json")).unwrap();
    let refused = [
        r#"{"eventId": "no-time"}"#,
        r#"{"eventId": "late", "eventTime": "2026-11-28T12:05:00.000000001Z"}"#,
        r#"{"eventId": "y0", "eventTime": "2026-11-28T10:00:00Z", "timing": {"releaseTime": "0000-01-01T00:00:00Z"}}"#,
        r#"{"eventId": 12}"#,
    ];
    let mut input = leap.clone();
    input.push(b'\n');
    for r in refused {
        input.extend_from_slice(r.as_bytes());
        input.push(b'\n');
    }
    let lines = dry_run(temp_file(&input).path(), "json");
    assert_eq!(lines.len(), 2 * (1 + refused.len()), "{lines:#?}");
    for line in &lines[..2] {
        assert_eq!(line["outcome"], "forward", "{line}");
        let timing = &line["record"]["timing"];
        assert_eq!(
            timing["answerTime"], "2016-12-31T23:59:59.999999999Z",
            "{line}"
        );
        assert_eq!(
            timing["releaseTime"], "2016-12-31T23:59:59.999999999Z",
            "{line}"
        );
    }
    let expected = [
        ("invalid", "event_time is missing"),
        (
            "future_event_time",
            "event_time is later than now + max_clock_skew",
        ),
        ("invalid", "timing.release_time is outside"),
        ("undecodable", "not a JSON cdr.v1.CdrEvent"),
    ];
    for (pair, (reason, message)) in lines[2..].chunks(2).zip(expected) {
        for line in pair {
            assert_eq!(line["outcome"], "dead_letter", "{line}");
            assert_eq!(line["reason"], reason, "{line}");
            let text = line["message"].as_str().unwrap_or_default();
            assert!(text.starts_with(message), "{line}");
            assert_eq!(line["record"], Value::Null, "{line}");
        }
    }
}
