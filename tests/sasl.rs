//! SASL/SCRAM against a second test broker that requires authentication
//! (`scripts/test-broker.sh start-sasl`: `tansu broker --authentication` on sqlite
//! storage, which keeps SCRAM credentials; its address in `CDR_TEST_SASL_BROKERS` — these
//! tests FAIL, never skip, without it). The script creates one user for SCRAM-SHA-256 and
//! SCRAM-SHA-512 with fixed test values ([`TEST_USER`], [`TEST_PASSWORD`]).
//!
//! Tested here, on that broker, for both mechanisms: the right password runs — `topics
//! apply`, `gen --topic`, `dry-run --from-topic` and `run`, which consumes the generated
//! events and writes them to the purpose topics, read back; a wrong password (and an
//! unknown user) stops every command that talks to Kafka within seconds, exit 2, with
//! one line naming the mechanism and the `kafka.properties` keys — never the password;
//! and the OIDC example of docs/sasl.md is checked by `config check`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The environment variable that holds the authenticated broker's address.
const SASL_BROKERS_ENV: &str = "CDR_TEST_SASL_BROKERS";

/// The SCRAM user `scripts/test-broker.sh start-sasl` creates on the authenticated broker
/// (SCRAM-SHA-256 and SCRAM-SHA-512), and its password: fixed test values.
const TEST_USER: &str = "cdr-test-user";
const TEST_PASSWORD: &str = "cdr-test-password";

/// The authenticated broker's address. Fails — never skips — when it is not set.
fn sasl_brokers() -> String {
    std::env::var(SASL_BROKERS_ENV).unwrap_or_else(|_| {
        panic!(
            "{SASL_BROKERS_ENV} is not set: these tests need a broker that requires SASL. \
             Run them with scripts/test.sh, or start one with \
             `export {SASL_BROKERS_ENV}=$(scripts/test-broker.sh start-sasl)`"
        )
    })
}

/// A configuration for the authenticated broker, the password read from a file.
fn config(dir: &Path, mechanism: &str, user: &str, password_file: &Path, t: &str) -> PathBuf {
    let path = dir.join(format!("{mechanism}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"
[kafka]
bootstrap_servers = "{brokers}"
group_id = "{t}.group"
[kafka.properties]
"security.protocol" = "SASL_PLAINTEXT"
"sasl.mechanism" = "{mechanism}"
"sasl.username" = "{user}"
"sasl.password" = "${{file:{password}}}"
[input]
topics = ["{t}.raw"]
[purposes.billing]
topic = "{t}.billing"
[purposes.security]
topic = "{t}.security"
[dead_letter]
topic = "{t}.dlq"
[kafka.consumer_properties]
"fetch.wait.max.ms" = "10"
[topics]
mode = "create"
partitions = 1
replication_factor = 1
[metrics]
listen = "127.0.0.1:0"
"#,
            brokers = sasl_brokers(),
            password = password_file.display(),
        ),
    )
    .unwrap();
    path
}

fn secret_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

fn filter(args: &[&str], config: &Path) -> (Output, Duration) {
    let began = Instant::now();
    let out = Command::new("timeout")
        .arg("120")
        .arg(env!("CARGO_BIN_EXE_cdr-purpose-filter"))
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    (out, began.elapsed())
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Refused credentials: every command that talks to Kafka stops within seconds (it used
/// to wait 30 s and say no broker answered, except `run`), exit 2, its last line naming
/// the mechanism and the keys, never the password.
fn refused_credentials_stop_every_command(mechanism: &str, user: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let t = common::broker::unique(&format!("sasl-{}", &mechanism[5..]).to_lowercase());
    let password = "pw-canary-4711";
    let file = secret_file(dir.path(), "password", password);
    let user = user.map_or_else(|| format!("{t}-user"), str::to_string);
    let config = config(dir.path(), mechanism, &user, &file, &t);
    let billing = format!("{t}.billing");
    for args in [
        &["run"][..],
        &["topics", "plan"],
        &["topics", "apply"],
        &["topics", "check"],
        &["audit"],
        &["dry-run", "--from-topic", &billing],
        &["gen", "--count", "1", "--topic", &billing],
    ] {
        let (out, took) = filter(args, &config);
        let all = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}:\n{all}");
        assert!(
            took < Duration::from_secs(20),
            "{args:?} stopped after {took:?}, not within seconds:\n{all}"
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().last().unwrap_or_default();
        assert!(last.starts_with("error: "), "{args:?}: {last}");
        assert!(last.contains("SASL authentication"), "{args:?}: {last}");
        assert!(
            last.contains(&format!(
                "SASL mechanism {mechanism} (kafka.properties.\"sasl.mechanism\")"
            )),
            "{args:?} names the mechanism: {last}"
        );
        assert!(
            last.contains("kafka.properties.\"sasl.username\"")
                && last.contains("kafka.properties.\"sasl.password\""),
            "{args:?} names the keys: {last}"
        );
        assert!(
            !all.contains(password),
            "{args:?} printed the password:\n{all}"
        );
    }
}

#[test]
fn scram_sha_256_wrong_password_stops_every_command_within_seconds() {
    refused_credentials_stop_every_command("SCRAM-SHA-256", Some(TEST_USER));
}

#[test]
fn scram_sha_512_wrong_password_stops_every_command_within_seconds() {
    refused_credentials_stop_every_command("SCRAM-SHA-512", Some(TEST_USER));
}

#[test]
fn scram_sha_256_unknown_user_stops_every_command_within_seconds() {
    refused_credentials_stop_every_command("SCRAM-SHA-256", None);
}

#[test]
fn scram_sha_512_unknown_user_stops_every_command_within_seconds() {
    refused_credentials_stop_every_command("SCRAM-SHA-512", None);
}

/// Creates the input topic (one partition) as the test user with `mechanism` — the filter
/// creates only its output topics.
fn create_input(topic: &str, mechanism: &str) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", sasl_brokers())
        .set("security.protocol", "SASL_PLAINTEXT")
        .set("sasl.mechanism", mechanism)
        .set("sasl.username", TEST_USER)
        .set("sasl.password", TEST_PASSWORD)
        .create()
        .unwrap();
    let created = futures::executor::block_on(admin.create_topics(
        &[NewTopic::new(topic, 1, TopicReplication::Fixed(1))],
        &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
    ))
    .unwrap_or_else(|e| panic!("create {topic} as {TEST_USER} with {mechanism}: {e}"));
    for r in created {
        r.unwrap_or_else(|(t, e)| panic!("create {t} as {TEST_USER} with {mechanism}: {e}"));
    }
}

/// `dry-run --from-topic TOPIC` with `config`: how many records it read and, per
/// purpose, how many it would forward (from its summary line).
fn read_back(topic: &str, config: &Path) -> (u64, u64, u64) {
    let (out, _) = filter(
        &["dry-run", "--from-topic", topic, "--count", "1000"],
        config,
    );
    let all = text(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "dry-run --from-topic {topic}:\n{all}"
    );
    let summary = all
        .lines()
        .find(|l| l.contains("records read"))
        .unwrap_or_else(|| panic!("no summary from dry-run --from-topic {topic}:\n{all}"));
    let number_before = |what: &str| -> u64 {
        summary
            .split(what)
            .next()
            .and_then(|head| head.split([' ', ':']).rev().find(|w| !w.is_empty()))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let number_after = |what: &str| -> u64 {
        summary
            .split(what)
            .nth(1)
            .and_then(|tail| tail.split([';', ' ']).find(|w| !w.is_empty()))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (
        number_before(" records read"),
        number_after("billing forward:"),
        number_after("security forward:"),
    )
}

/// The right password runs: every kind of client (an admin client creating the input
/// topic, the filter's admin client, producer, a consumer assigned partitions, the
/// filter's group consumer and producers) logs in with SCRAM and works.
fn right_password_runs(mechanism: &str) {
    let dir = tempfile::tempdir().unwrap();
    let t = common::broker::unique(&format!("sasl-ok-{}", &mechanism[5..]).to_lowercase());
    let file = secret_file(dir.path(), "password", TEST_PASSWORD);
    let config = config(dir.path(), mechanism, TEST_USER, &file, &t);
    let raw = format!("{t}.raw");

    create_input(&raw, mechanism);
    let (out, _) = filter(&["topics", "apply"], &config);
    assert_eq!(out.status.code(), Some(0), "topics apply:\n{}", text(&out));

    let events = 40;
    let (out, _) = filter(
        &["gen", "--count", &events.to_string(), "--topic", &raw],
        &config,
    );
    assert_eq!(out.status.code(), Some(0), "gen --topic:\n{}", text(&out));

    // Read back through SASL, read-only: the generated events, and what `run` will write.
    let (read, billing, security) = read_back(&raw, &config);
    assert_eq!(read, events, "dry-run --from-topic {raw} read back");
    assert!(
        billing > 0 && security > 0,
        "the generated events give both purposes something: billing {billing}, security {security}"
    );

    // `run`: the group consumer and the producers log in too; what it wrote is read back.
    let log = dir.path().join("run.log");
    let mut run = common::filter::Filter::start(&config, &log);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut got = (0, 0);
    while Instant::now() < deadline && got != (billing, security) {
        if let Some(code) = run.child.try_wait().unwrap() {
            panic!(
                "run exited ({code:?}) before its output was read back:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        got = (
            read_back(&format!("{t}.billing"), &config).0,
            read_back(&format!("{t}.security"), &config).0,
        );
        if got != (billing, security) {
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    run.signal("TERM");
    let code = run.wait(Duration::from_secs(60));
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(
        got,
        (billing, security),
        "records read back from {t}.billing and {t}.security (dry-run said it would forward \
         billing {billing}, security {security}); run's log:\n{logged}"
    );
    assert_eq!(code, Some(0), "run after SIGTERM:\n{logged}");
    assert!(
        !logged.contains(TEST_PASSWORD),
        "run logged the password:\n{logged}"
    );
}

#[test]
fn scram_sha_256_right_password_runs() {
    right_password_runs("SCRAM-SHA-256");
}

#[test]
fn scram_sha_512_right_password_runs() {
    right_password_runs("SCRAM-SHA-512");
}

/// The OAUTHBEARER/OIDC example of docs/sasl.md, checked by `config check` (no broker):
/// this build says it has no OIDC (librdkafka needs libcurl for it), as the document
/// says, naming the property — the client secret never printed; the rest is accepted.
#[test]
fn the_oidc_example_of_the_docs_is_checked_by_config_check() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/sasl.md")).unwrap();
    let section = doc
        .split("## OAUTHBEARER")
        .nth(1)
        .expect("the OIDC section");
    let example = section
        .split("```toml\n")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .expect("the OIDC example");
    let dir = tempfile::tempdir().unwrap();
    let secret = "oidc-client-secret-canary-4711";
    let file = secret_file(dir.path(), "oidc-client-secret", secret);
    let example = example.replace(
        "/run/secrets/kafka/oidc-client-secret",
        file.to_str().unwrap(),
    );
    assert!(
        example.contains("\"sasl.oauthbearer.method\" = \"oidc\""),
        "{example}"
    );
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("{text}\n[purposes.billing]\n")).unwrap();
        path
    };
    let check = |path: &Path| {
        Command::new(env!("CARGO_BIN_EXE_cdr-purpose-filter"))
            .args(["config", "check", "--config"])
            .arg(path)
            .output()
            .unwrap()
    };

    let out = check(&write("oidc.toml", &example));
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    let last = all.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: kafka.properties.\"sasl.oauthbearer.")
            && last.ends_with(
                "\" refused by librdkafka: not supported by this build of librdkafka: \
                 OAuth/OIDC depends on libcurl and OpenSSL which were not available at build \
                 time; the value is not shown"
            ),
        "{all}"
    );
    assert!(!all.contains(secret), "{all}");

    // The rest of the example (protocol, mechanism) is accepted: only OIDC is missing.
    let without_oidc: String = example
        .lines()
        .filter(|l| !l.starts_with("\"sasl.oauthbearer."))
        .map(|l| format!("{l}\n"))
        .collect();
    let out = check(&write("oauthbearer.toml", &without_oidc));
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("OAUTHBEARER"), "{all}");
}
