//! SASL/SCRAM end to end, against a second test broker that requires authentication
//! (`scripts/test-broker.sh start-sasl`: `tansu broker --authentication`; its address in
//! `CDR_TEST_SASL_BROKERS` — these tests FAIL, never skip, without it).
//!
//! The authenticated tansu starts without users, and `tansu user create` cannot add one
//! to it: its client does not authenticate, and the broker refuses every request but
//! ApiVersions and the SASL ones from an unauthenticated connection. tansu 0.6 accepts
//! any PLAIN credentials, though (its PLAIN check only asks that a name and a password
//! be given), so the test creates its SCRAM users as librdkafka's admin API does
//! (AlterUserScramCredentials, the salted password computed by librdkafka) over a PLAIN
//! connection. The filter is then tested with SCRAM only: a right password works for
//! every command that talks to Kafka; a wrong one stops the start within seconds with
//! exit 2, naming the mechanism and the key, never the password.

mod common;

use rdkafka::bindings as rd;
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::ClientConfig;
use std::ffi::{CStr, CString};
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

/// Creates (or replaces) a SCRAM user on the authenticated broker, over a PLAIN
/// connection (see the module's comment), waiting for the broker's answer.
fn create_scram_user(mechanism: &str, user: &str, password: &str) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", sasl_brokers())
        .set("security.protocol", "SASL_PLAINTEXT")
        .set("sasl.mechanism", "PLAIN")
        .set("sasl.username", "test-admin")
        .set("sasl.password", "any")
        .create()
        .unwrap();
    let scram = match mechanism {
        "SCRAM-SHA-256" => rd::rd_kafka_ScramMechanism_t::RD_KAFKA_SCRAM_MECHANISM_SHA_256,
        "SCRAM-SHA-512" => rd::rd_kafka_ScramMechanism_t::RD_KAFKA_SCRAM_MECHANISM_SHA_512,
        other => panic!("no SCRAM mechanism {other}"),
    };
    let user_c = CString::new(user).unwrap();
    let rk = producer.client().native_ptr();
    // SAFETY: librdkafka's C API used as documented in rdkafka.h: the alteration array
    // is owned by the call's caller and destroyed after it; the queue and the event are
    // destroyed once read; `rk` outlives them (the producer is alive to the end).
    let errors = unsafe {
        let mut alteration = [rd::rd_kafka_UserScramCredentialUpsertion_new(
            user_c.as_ptr(),
            scram,
            8192,
            password.as_ptr(),
            password.len(),
            std::ptr::null(),
            0,
        )];
        let queue = rd::rd_kafka_queue_new(rk);
        rd::rd_kafka_AlterUserScramCredentials(
            rk,
            alteration.as_mut_ptr(),
            1,
            std::ptr::null(),
            queue,
        );
        rd::rd_kafka_UserScramCredentialAlteration_destroy_array(alteration.as_mut_ptr(), 1);
        let event = rd::rd_kafka_queue_poll(queue, 60_000);
        assert!(!event.is_null(), "no answer to AlterUserScramCredentials");
        let mut errors = Vec::new();
        if rd::rd_kafka_event_error(event) != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            errors.push(
                CStr::from_ptr(rd::rd_kafka_event_error_string(event))
                    .to_string_lossy()
                    .into_owned(),
            );
        } else {
            let result = rd::rd_kafka_event_AlterUserScramCredentials_result(event);
            let mut count = 0;
            let responses =
                rd::rd_kafka_AlterUserScramCredentials_result_responses(result, &mut count);
            for i in 0..count {
                let error =
                    rd::rd_kafka_AlterUserScramCredentials_result_response_error(*responses.add(i));
                if !error.is_null() {
                    errors.push(
                        CStr::from_ptr(rd::rd_kafka_error_string(error))
                            .to_string_lossy()
                            .into_owned(),
                    );
                }
            }
        }
        rd::rd_kafka_event_destroy(event);
        rd::rd_kafka_queue_destroy(queue);
        errors
    };
    assert!(
        errors.is_empty(),
        "creating {user} ({mechanism}): {errors:?}"
    );
    producer.flush(Duration::from_secs(1)).ok();
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
"fetch.wait.max.ms" = "10"
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

/// A right password: the output topics are created and checked, events produced and read
/// back, all over SCRAM — for each mechanism tansu has.
fn a_right_password_works(mechanism: &str) {
    let dir = tempfile::tempdir().unwrap();
    let t = common::broker::unique(&format!("sasl-{}", &mechanism[5..]).to_lowercase());
    let user = format!("{t}-user");
    let password = format!("right-{}", t.len());
    create_scram_user(mechanism, &user, &password);
    let file = secret_file(dir.path(), "password", &format!("{password}\n"));
    let config = config(dir.path(), mechanism, &user, &file, &t);

    let (out, _) = filter(&["topics", "apply"], &config);
    assert_eq!(out.status.code(), Some(0), "topics apply:\n{}", text(&out));
    let (out, _) = filter(&["topics", "check"], &config);
    assert_eq!(out.status.code(), Some(0), "topics check:\n{}", text(&out));
    let billing = format!("{t}.billing");
    let (out, _) = filter(&["gen", "--count", "5", "--topic", &billing], &config);
    assert_eq!(out.status.code(), Some(0), "gen:\n{}", text(&out));
    let (out, _) = filter(
        &["dry-run", "--from-topic", &billing, "--count", "5"],
        &config,
    );
    assert_eq!(out.status.code(), Some(0), "dry-run:\n{}", text(&out));
    let lines = String::from_utf8_lossy(&out.stdout).lines().count();
    assert!(
        lines >= 5,
        "5 events read back over {mechanism}:\n{}",
        text(&out)
    );
    assert!(!text(&out).contains(&password));
}

#[test]
fn scram_sha_256_with_the_right_password_works() {
    a_right_password_works("SCRAM-SHA-256");
}

#[test]
fn scram_sha_512_with_the_right_password_works() {
    a_right_password_works("SCRAM-SHA-512");
}

/// A wrong password: `run` stops within seconds with exit 2 and one line naming the
/// mechanism and the `kafka.properties` keys — never the password.
fn a_wrong_password_stops_the_start(mechanism: &str) {
    let dir = tempfile::tempdir().unwrap();
    let t = common::broker::unique(&format!("sasl-wrong-{}", &mechanism[5..]).to_lowercase());
    let user = format!("{t}-user");
    create_scram_user(mechanism, &user, "the-right-one");
    let wrong = "WRONG-pw-canary-4711";
    let file = secret_file(dir.path(), "password", wrong);
    let config = config(dir.path(), mechanism, &user, &file, &t);
    let (out, took) = filter(&["run"], &config);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(
        took < Duration::from_secs(20),
        "stopped after {took:?}, not within seconds:\n{all}"
    );
    let last = String::from_utf8_lossy(&out.stderr)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    assert!(last.starts_with("error: "), "{last}");
    assert!(last.contains(mechanism), "names the mechanism: {last}");
    assert!(
        last.contains("kafka.properties.\"sasl.username\"")
            && last.contains("kafka.properties.\"sasl.password\""),
        "names the keys: {last}"
    );
    assert!(!all.contains(wrong), "the password printed:\n{all}");
}

#[test]
fn scram_sha_256_with_a_wrong_password_stops_within_seconds() {
    a_wrong_password_stops_the_start("SCRAM-SHA-256");
}

#[test]
fn scram_sha_512_with_a_wrong_password_stops_within_seconds() {
    a_wrong_password_stops_the_start("SCRAM-SHA-512");
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
