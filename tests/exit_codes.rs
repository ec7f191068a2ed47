//! One rule for exit codes (docs/exit-codes.md), and stderr that a log pipeline can read:
//! - every command that talks to Kafka, given a broker address nothing listens on, exits
//!   2 ("could not do its work": Kafka unavailable, as for a bad configuration) with one
//!   last line naming `kafka.bootstrap_servers` and the time it truly waited;
//! - under `--log-format json` (or `CDR_PURPOSE_FILTER_LOG_FORMAT=json`) every line of
//!   stderr is a JSON object, the final error included, with its fault and exit code.
//!
//! Nothing here needs the test broker: nothing listens on the address on purpose.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The commands that talk to Kafka, each with the arguments it needs.
const KAFKA_COMMANDS: &[&[&str]] = &[
    &["run"],
    &["topics", "plan"],
    &["topics", "apply"],
    &["topics", "check"],
    &["audit"],
    &["report", "--format", "json"],
    &["dry-run", "--from-topic", "cdr.raw"],
    &["gen", "--count", "1", "--topic", "cdr.raw"],
];

fn config(dir: &Path, bootstrap: &str) -> PathBuf {
    let path = dir.join("filter.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[kafka]
bootstrap_servers = "{bootstrap}"
group_id = "exit-codes"
[input]
topics = ["cdr.raw"]
[purposes.billing]
topic = "cdr.billing"
[purposes.security]
topic = "cdr.security"
[metrics]
listen = "127.0.0.1:0"
"#
        ),
    )
    .unwrap();
    path
}

/// Runs the binary (bounded by `timeout`: a command that waited for ever would hang),
/// with the time it took.
fn filter(args: &[&str], env: &[(&str, &str)]) -> (Output, Duration) {
    let began = Instant::now();
    let out = Command::new("timeout")
        .arg("120")
        .arg(env!("CARGO_BIN_EXE_cdr-purpose-filter"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (out, began.elapsed())
}

/// Each Kafka command in parallel (they wait for a broker that never answers).
fn each_command(
    config: &Path,
    extra: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
) -> Vec<(String, Output, Duration)> {
    let config = config.to_str().unwrap().to_string();
    let runs: Vec<_> = KAFKA_COMMANDS
        .iter()
        .map(|command| {
            let config = config.clone();
            std::thread::spawn(move || {
                let mut args: Vec<&str> = extra.to_vec();
                args.extend_from_slice(command);
                args.extend_from_slice(&["--config", &config]);
                let (out, took) = filter(&args, env);
                (command.join(" "), out, took)
            })
        })
        .collect();
    runs.into_iter().map(|r| r.join().unwrap()).collect()
}

/// "answered in N s": N.
fn waited_s(line: &str) -> Option<f64> {
    let (_, rest) = line.split_once("answered in ")?;
    rest.split_once(" s")?.0.parse().ok()
}

/// An unreachable broker: exit 2 for every command, one last line naming the key and
/// the address, and a waiting time that is the one the command truly waited.
#[test]
fn every_command_exits_2_when_no_broker_answers_and_says_how_long_it_waited() {
    let dir = tempfile::tempdir().unwrap();
    let address = format!("127.0.0.1:{}", common::broker::free_port());
    let config = config(dir.path(), &address);
    for (command, out, took) in each_command(&config, &[], &[]) {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}:\n{stderr}");
        let last = stderr.lines().last().unwrap_or_default();
        assert!(last.starts_with("error: "), "{command}: {last}");
        if command == "topics check" {
            // Its own bound, --timeout (30 s by default), may come first.
            assert!(last.contains("cannot check the output topics"), "{last}");
            continue;
        }
        assert!(
            last.contains(&format!(
                "no broker at kafka.bootstrap_servers ({address}) answered in"
            )),
            "{command}: {last}"
        );
        let said = waited_s(last).unwrap_or_else(|| panic!("{command}: {last}"));
        // True: not more than it waited, and not the half of it (it once said 30 s after
        // waiting 41 s). Generous bounds for a shared machine.
        let took = took.as_secs_f64();
        assert!(
            said <= took + 1.0 && took <= said + 8.0,
            "{command}: said {said} s, took {took:.1} s: {last}"
        );
    }
}

/// `topics check --timeout` bounds the whole check, the first contact with the brokers
/// included: against a broker that never answers, 2 s gives up saying so (it waited the
/// 30 s of that first contact, and said so, whatever `--timeout` was).
#[test]
fn topics_check_gives_up_at_its_timeout_when_no_broker_answers() {
    let dir = tempfile::tempdir().unwrap();
    let address = format!("127.0.0.1:{}", common::broker::free_port());
    let config = config(dir.path(), &address);
    let args = ["topics", "check", "--timeout", "2s", "--config"];
    let (out, _) = filter(&[&args[..], &[config.to_str().unwrap()]].concat(), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("cannot check the output topics")
            && last.contains("no answer within --timeout 2 s"),
        "{last}"
    );
}

/// Checks every line of stderr is a JSON object; returns the last one.
fn all_json(command: &str, stderr: &str) -> serde_json::Value {
    let mut last = None;
    for line in stderr.lines() {
        let value: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{command}: a line that is not JSON ({e}): {line}"));
        assert!(value.is_object(), "{command}: {line}");
        last = Some(value);
    }
    last.unwrap_or_else(|| panic!("{command}: no line on stderr"))
}

/// The final error as JSON: level, message, fault, exit code — equal to the exit status.
fn assert_final_error(command: &str, last: &serde_json::Value, code: i32, fault: &str) {
    assert_eq!(last["level"], "ERROR", "{command}: {last}");
    assert_eq!(last["fields"]["exit_code"], code, "{command}: {last}");
    assert_eq!(last["fields"]["fault"], fault, "{command}: {last}");
    assert!(
        last["fields"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty() && !m.starts_with("error:")),
        "{command}: {last}"
    );
    assert!(last["timestamp"].is_string(), "{command}: {last}");
}

/// `--log-format json`: the Kafka commands' failures, every stderr line parsed.
#[test]
fn under_json_logs_every_stderr_line_of_a_failing_kafka_command_is_json() {
    let dir = tempfile::tempdir().unwrap();
    let address = format!("127.0.0.1:{}", common::broker::free_port());
    let config = config(dir.path(), &address);
    for (command, out, _) in each_command(&config, &["--log-format", "json"], &[]) {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}:\n{stderr}");
        let last = all_json(&command, &stderr);
        assert_final_error(&command, &last, 2, "unavailable");
    }
}

/// `CDR_PURPOSE_FILTER_LOG_FORMAT=json`: a refused configuration, a usage error, a
/// missing input file, a summary line, every stderr line parsed.
#[test]
fn under_json_logs_every_stderr_line_of_other_commands_is_json() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[kafka]\nbootstrap_servers = 12\n").unwrap();
    let good = config(dir.path(), "127.0.0.1:9");
    let json = [("CDR_PURPOSE_FILTER_LOG_FORMAT", "json")];
    let cases: [(&[&str], i32, Option<&str>); 5] = [
        (
            &["config", "check", "--config", bad.to_str().unwrap()],
            2,
            Some("user"),
        ),
        (&["topics", "plan", "--no-such-flag"], 2, Some("user")),
        (&["dry-run", "/no/such/input.jsonl"], 2, Some("user")),
        (
            &["--log-format", "json", "policy", "show", "--format", "nope"],
            2,
            Some("user"),
        ),
        // Success: its summary line is JSON too.
        (
            &["config", "check", "--config", good.to_str().unwrap()],
            0,
            None,
        ),
    ];
    for (args, code, fault) in cases {
        let (out, _) = filter(args, &json);
        let command = args.join(" ");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{command}:\n{stderr}");
        let last = all_json(&command, &stderr);
        if let Some(fault) = fault {
            assert_final_error(&command, &last, code, fault);
        }
    }
}
