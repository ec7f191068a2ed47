//! SASL/SCRAM against a second test broker that requires authentication
//! (`scripts/test-broker.sh start-sasl`: `tansu broker --authentication`; its address in
//! `CDR_TEST_SASL_BROKERS` — these tests FAIL, never skip, without it).
//!
//! What tansu 0.6 (the `dynostore` build: `memory://` and `s3://` storage) can show: the
//! SCRAM exchange runs (librdkafka's client and tansu's server get through
//! client-first and server-first messages) and the broker refuses the login at the
//! client-final message with `unknown-user`, for every user: that storage keeps no SCRAM
//! credentials (its `upsert_user_scram_credential` does nothing, its
//! `user_scram_credential` finds nothing), `tansu user create` cannot talk to an
//! authenticated broker (its client does not authenticate), and PLAIN is not offered. A
//! login that succeeds needs tansu's sqlite (`--features libsql`) or postgres storage,
//! which the test machines do not have; docs/sasl.md says so.
//!
//! Tested here, on that broker: credentials the broker refuses stop every command that
//! talks to Kafka within seconds, exit 2, with one line naming the mechanism and the
//! `kafka.properties` keys — never the password; and the OIDC example of docs/sasl.md is
//! checked by `config check`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The environment variable that holds the authenticated broker's address.
const SASL_BROKERS_ENV: &str = "CDR_TEST_SASL_BROKERS";

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
[topics]
mode = "create"
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
fn refused_credentials_stop_every_command(mechanism: &str) {
    let dir = tempfile::tempdir().unwrap();
    let t = common::broker::unique(&format!("sasl-{}", &mechanism[5..]).to_lowercase());
    let password = "pw-canary-4711";
    let file = secret_file(dir.path(), "password", password);
    let config = config(dir.path(), mechanism, &format!("{t}-user"), &file, &t);
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
fn scram_sha_256_refused_credentials_stop_every_command_within_seconds() {
    refused_credentials_stop_every_command("SCRAM-SHA-256");
}

#[test]
fn scram_sha_512_refused_credentials_stop_every_command_within_seconds() {
    refused_credentials_stop_every_command("SCRAM-SHA-512");
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
