//! Secrets are never echoed: a property librdkafka refuses is named with the kind of
//! refusal, never its value nor librdkafka's text about it; librdkafka's sensitive properties
//! and every value read from `${env:}` or `${file:}` are masked; a `${file:}` secret
//! other users can read is refused unless `--allow-insecure-secret-files`.
//!
//! None of these needs a broker: the clients are refused before connecting, and the one
//! run that logs its client configuration uses librdkafka's mock cluster.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const CANARY: &str = "CANARY-s3cr3t-4711";

fn config(dir: &Path, bootstrap: &str, properties: &str) -> PathBuf {
    let path = dir.join("filter.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[kafka]
bootstrap_servers = "{bootstrap}"
group_id = "secrets"
[kafka.properties]
{properties}
[input]
topics = ["cdr.raw"]
[purposes.billing]
topic = "cdr.billing"
[purposes.security]
topic = "cdr.security"
[topics]
mode = "off"
[metrics]
listen = "127.0.0.1:0"
"#
        ),
    )
    .unwrap();
    path
}

fn filter(args: &[&str], config: &Path, env: &[(&str, &str)]) -> Output {
    // `timeout`: a command that waited for a broker instead of refusing would hang.
    Command::new("timeout")
        .arg("60")
        .arg(env!("CARGO_BIN_EXE_cdr-purpose-filter"))
        .args(args)
        .arg("--config")
        .arg(config)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every command that builds a Kafka client, given a property librdkafka refuses
/// holding a secret, exits 2 naming the property — and never prints the value.
#[test]
fn a_refused_property_is_named_never_its_value() {
    let dir = tempfile::tempdir().unwrap();
    let refused = [
        // A Java client's JAAS line pasted into a librdkafka configuration.
        format!(
            "\"sasl.jaas.config\" = 'org.apache.kafka.common.security.plain.PlainLoginModule \
             required username=\"filter\" password=\"{CANARY}\";'"
        ),
        // A value librdkafka refuses for a property it knows.
        format!("\"security.protocol\" = \"{CANARY}\""),
    ];
    for property in &refused {
        let key = property.split('"').nth(1).unwrap();
        let config = config(dir.path(), "127.0.0.1:9", property);
        for args in [
            &["run"][..],
            &["topics", "check"],
            &["topics", "plan"],
            &["topics", "apply"],
            &["gen", "--count", "1", "--topic", "t"],
            &["config", "check"],
        ] {
            let out = filter(args, &config, &[]);
            let all = text(&out);
            assert!(!all.contains(CANARY), "{args:?} printed the secret:\n{all}");
            assert_eq!(out.status.code(), Some(2), "{args:?} exits 2:\n{all}");
            assert!(all.contains(key), "{args:?} names {key}:\n{all}");
        }
    }
}

/// `config check` masks librdkafka's sensitive properties (whatever their name
/// looks like) and shows `${env:}`/`${file:}` references, never what they hold.
#[test]
fn config_check_masks_librdkafka_sensitive_properties() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        "127.0.0.1:9",
        &format!(
            "\"sasl.username\" = \"{CANARY}-user\"\n\
             \"sasl.oauthbearer.config\" = \"principal={CANARY}\"\n\
             \"ssl.keystore.password\" = \"{CANARY}-ks\"\n\
             \"ssl.key.password\" = \"{CANARY}-kp\"\n\
             \"client.rack\" = \"${{env:RACK_FROM_SECRET}}\""
        ),
    );
    let out = filter(
        &["config", "check"],
        &config,
        &[("RACK_FROM_SECRET", CANARY)],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(!all.contains(CANARY), "a secret printed:\n{all}");
    assert!(all.contains("sasl.username"), "{all}");
    assert!(
        all.contains("${env:RACK_FROM_SECRET}"),
        "the reference is shown:\n{all}"
    );
}

/// The client configuration the filter logs (at debug) masks a value read from
/// `${env:}` even under a name that is not a secret's.
#[test]
fn a_value_from_env_is_masked_in_the_logged_client_configuration() {
    let mock = rdkafka::mocking::MockCluster::new(1).unwrap();
    mock.create_topic("cdr.raw", 1, 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        &mock.bootstrap_servers(),
        "\"client.rack\" = \"${env:RACK_FROM_SECRET}\"",
    );
    let log = dir.path().join("filter.log");
    let mut f = common::filter::Filter::start_with(
        &config,
        &log,
        &["--log", "cdr_purpose_filter=debug"],
        &[("RACK_FROM_SECRET", CANARY)],
    );
    let logged = f.wait_for_log(&log, "producer configuration", Duration::from_secs(60));
    f.signal("TERM");
    f.wait(Duration::from_secs(30));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged,
        "the client configuration is logged at debug:\n{text}"
    );
    assert!(text.contains("client.rack=********"), "{text}");
    assert!(!text.contains(CANARY), "a secret logged:\n{text}");
}

/// A `${file:}` secret that other users can read is refused, naming the file
/// and the way out; `--allow-insecure-secret-files` accepts it; an owner-only file is
/// accepted. The value is never printed.
#[cfg(unix)]
#[test]
fn a_secret_file_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("sasl-password");
    std::fs::write(&secret, format!("{CANARY}\n")).unwrap();
    let config = config(
        dir.path(),
        "127.0.0.1:9",
        &format!("\"sasl.password\" = \"${{file:{}}}\"", secret.display()),
    );
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = filter(&["config", "check"], &config, &[]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains("readable by other users"), "{all}");
    assert!(all.contains("--allow-insecure-secret-files"), "{all}");
    assert!(all.contains(&secret.display().to_string()), "{all}");

    let out = filter(
        &["--allow-insecure-secret-files", "config", "check"],
        &config,
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = filter(&["config", "check"], &config, &[]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(!all.contains(CANARY), "{all}");
}

/// A refusal is told from structure — the user's key, librdkafka's name for it, the kind
/// of refusal — never by masking librdkafka's text: a short password ("x", "range", "ms",
/// "a") masked inside that text told where it landed (`outside allowed ******** 0..900000`,
/// `queue.buffering.ma********.ms`), and the refused value (`1e+09`) was echoed. The whole
/// line is compared, for every kind of refusal and every password.
#[test]
fn a_refusal_is_told_by_its_kind_whatever_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let refusals = [
        (
            "\"linger.ms\" = \"1000000000\"",
            "kafka.properties.\"linger.ms\" refused by librdkafka (librdkafka's name for it: \
             `queue.buffering.max.ms`): value out of range (allowed 0..900000); the value is \
             not shown",
        ),
        (
            "\"linger.ms\" = \"soon\"",
            "kafka.properties.\"linger.ms\" refused by librdkafka (librdkafka's name for it: \
             `queue.buffering.max.ms`): wrong type: expected a number; the value is not shown",
        ),
        (
            "\"linger.ms\" = \"\"",
            "kafka.properties.\"linger.ms\" refused by librdkafka (librdkafka's name for it: \
             `queue.buffering.max.ms`): empty value: give a value or remove the property; the \
             value is not shown",
        ),
        (
            "\"socket.keepalive.enable\" = \"maybe\"",
            "kafka.properties.\"socket.keepalive.enable\" refused by librdkafka: wrong type: \
             expected true or false; the value is not shown",
        ),
        (
            "\"security.protocol\" = \"plaintext-please\"",
            "kafka.properties.\"security.protocol\" refused by librdkafka: invalid value: not \
             one of the values librdkafka accepts for it; the value is not shown",
        ),
        (
            "\"no.such.property\" = \"1\"",
            "kafka.properties.\"no.such.property\" refused by librdkafka: unknown property: \
             librdkafka has no property of this name; the value is not shown",
        ),
    ];
    for password in ["x", "range", "ms", "a"] {
        for (property, expected) in &refusals {
            let config = config(
                dir.path(),
                "127.0.0.1:9",
                &format!("\"sasl.password\" = \"{password}\"\n{property}"),
            );
            let out = filter(&["config", "check"], &config, &[]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{property}:\n{stderr}");
            let last = stderr.lines().last().unwrap_or_default();
            assert_eq!(
                last,
                format!("error: {expected}"),
                "password {password:?}, {property}"
            );
            assert!(!stderr.contains("********"), "{stderr}");
            assert!(!stderr.contains("1e+09"), "{stderr}");
        }
    }
}
